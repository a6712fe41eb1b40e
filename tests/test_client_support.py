"""Shared helpers of the client tests: clients bound to the local server and expected tone audio."""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Awaitable, Dict, Optional

import pytest

from cartesia.server.engines.tone import ToneEngine
from cartesia.server.generation import Renderer, parse_generation
from cartesia.tts import DEFAULT_MODEL_ID, AsyncCartesiaTTS, CartesiaTTS

#: Time limits that end a hung test quickly yet survive a loaded CI machine; the fault tests
#: that expect a timeout set their own, much shorter, limits.
FAST = dict(
    connect_timeout=10.0,
    first_audio_timeout=10.0,
    chunk_gap_timeout=10.0,
    total_timeout=30.0,
    backoff_factor=0.01,
)


def sync_client(server: Any, **options: Any) -> CartesiaTTS:
    """A sync client for ``server`` (explicit base URL and key; env vars are tested elsewhere)."""
    options = {"api_key": server.api_key, "base_url": server.host_for_env, **FAST, **options}
    return CartesiaTTS(**options)


def async_client(server: Any, **options: Any) -> AsyncCartesiaTTS:
    options = {"api_key": server.api_key, "base_url": server.host_for_env, **FAST, **options}
    return AsyncCartesiaTTS(**options)


def run_isolated(coro: Awaitable[Any]) -> Any:
    """``asyncio.run`` without touching the thread's current event loop.

    Same shutdown as ``asyncio.run`` (pending tasks cancelled, async generators closed), but
    ``set_event_loop(None)`` is not called: on Python 3.9, pytest-asyncio leaves a current loop
    behind after async tests, and dropping it makes a sync test fail with an "unclosed event
    loop" ResourceWarning that has nothing to do with the code under test.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            if hasattr(loop, "shutdown_default_executor"):
                loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


@functools.lru_cache(maxsize=64)
def _render(transcript: str, voice: tuple, model_id: str, duration: Optional[float], chunk_time: Optional[float]):
    body: Dict[str, Any] = {"transcript": transcript, "voice": list(voice), "model_id": model_id}
    if duration is not None:
        body["duration"] = duration
    if chunk_time is not None:
        body["chunk_time"] = chunk_time
    return Renderer(ToneEngine()).render_sync(parse_generation(body))


def expected_audio(
    transcript: str,
    voice: list,
    *,
    model_id: str = DEFAULT_MODEL_ID,
    duration: Optional[float] = None,
    chunk_time: Optional[float] = None,
) -> bytes:
    """The float32 LE bytes the tone engine renders for this request (what the server sends)."""
    rendition = _render(transcript, tuple(voice), model_id, duration, chunk_time)
    return rendition.samples.astype("<f4").tobytes()


def expected_chunks(transcript: str, voice: list, **kw: Any) -> int:
    """How many audio chunks the server sends for this request."""
    rendition = _render(
        transcript, tuple(voice), kw.get("model_id", DEFAULT_MODEL_ID), kw.get("duration"), kw.get("chunk_time")
    )
    return len(rendition.http_frames) - 1  # the last object is the end marker


@pytest.fixture(scope="session")
def voice(local_server: Any) -> list:
    """The embedding of one catalogue voice, fetched once through the client."""
    client = sync_client(local_server)
    try:
        voices = client.get_voices()
        return client.get_voice_embedding(voice_id=voices["Milo"]["id"])
    finally:
        client.close()


@pytest.fixture(scope="session")
def other_voice(local_server: Any) -> list:
    client = sync_client(local_server)
    try:
        voices = client.get_voices()
        return client.get_voice_embedding(voice_id=voices["Olivia"]["id"])
    finally:
        client.close()


def test_expected_audio_is_deterministic_and_voice_dependent(voice: list, other_voice: list) -> None:
    a = expected_audio("Hello there", voice)
    assert a == expected_audio("Hello there", voice)
    assert a != expected_audio("Hello there", other_voice)
    assert len(a) % 4 == 0 and len(a) > 0
