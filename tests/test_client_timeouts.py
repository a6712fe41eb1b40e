"""Each time limit holds for its own phase on every transport; the total bounds whole calls.

Regressions: sync calls always took 30 s, the websocket connect waited once per retry, sync
HTTP applied the smallest limit to every phase, async ``transcribe`` never timed out, and an
HTTP body cut short was accepted as complete.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import pytest
from raw_server import FRAME_PCM, RawServer
from server_fixtures import LOAD_SLACK
from test_client_support import expected_audio, run_isolated, voice  # noqa: F401  (fixture)

from cartesia.errors import CartesiaTimeoutError, TotalTimeoutError, TruncatedStreamError
from cartesia.tts import AsyncCartesiaTTS, CartesiaTTS

LONG = "Long enough for a dozen chunks of audio, so that a stall can hit the middle of it."
TRANSPORTS = pytest.mark.parametrize("websocket", [True, False], ids=["ws", "http"])
#: Every limit short, the total a little longer: a hung server must fail the call quickly.
SHORT = dict(
    connect_timeout=1.0,
    first_audio_timeout=1.0,
    chunk_gap_timeout=1.0,
    total_timeout=2.5,
    max_retries=3,
    backoff_factor=0.05,
)
#: Generous: the calls end after ~2.5 s; before the fix they took 8 s to minutes.
BOUND = 7.0


def _timed(call: Callable[[], Any]) -> float:
    start = time.monotonic()
    with pytest.raises(CartesiaTimeoutError):
        call()
    return time.monotonic() - start


def _voice() -> list:
    return [0.1] * 192


@pytest.mark.parametrize(
    "call",
    ["generate_ws", "generate_http", "get_voices", "transcribe", "embedding"],
)
def test_sync_calls_against_a_silent_server_are_bounded(call: str) -> None:
    with RawServer("silent") as server:
        client = CartesiaTTS(api_key="k" * 12, base_url=server.host_for_env, **SHORT)
        try:
            action = {
                "generate_ws": lambda: client.generate(transcript="hi", voice=_voice()),
                "generate_http": lambda: client.generate(
                    transcript="hi", voice=_voice(), websocket=False
                ),
                "get_voices": client.get_voices,
                "transcribe": lambda: client.transcribe(b"RIFF...."),
                "embedding": lambda: client.get_voice_embedding(voice_id="v"),
            }[call]
            assert _timed(action) < BOUND
        finally:
            client.close()


@pytest.mark.parametrize("call", ["generate_ws", "generate_http", "transcribe"])
def test_async_calls_against_a_silent_server_are_bounded(call: str) -> None:
    async def main() -> float:
        with RawServer("silent") as server:
            client = AsyncCartesiaTTS(api_key="k" * 12, base_url=server.host_for_env, **SHORT)
            try:
                if call == "transcribe":
                    coro: Callable[[], Any] = lambda: client.transcribe(b"RIFF....")  # noqa: E731
                else:
                    coro = lambda: client.generate(  # noqa: E731
                        transcript="hi", voice=_voice(), websocket=call == "generate_ws"
                    )
                start = time.monotonic()
                with pytest.raises(CartesiaTimeoutError):
                    await coro()
                return time.monotonic() - start
            finally:
                await client.close()

    assert run_isolated(main()) < BOUND


def test_total_timeout_bounds_the_retries_of_a_connect() -> None:
    """Three 1 s connect attempts would take over 3 s; the 1.5 s total ends the call first."""
    with RawServer("silent") as server:
        client = CartesiaTTS(
            api_key="k" * 12,
            base_url=server.host_for_env,
            connect_timeout=1.0,
            total_timeout=1.5,
            max_retries=3,
            backoff_factor=0.01,
        )
        try:
            start = time.monotonic()
            with pytest.raises(CartesiaTimeoutError) as info:
                client.generate(transcript="hi", voice=_voice())
            assert time.monotonic() - start < 1.5 + 1.5 + LOAD_SLACK
            assert isinstance(info.value, TotalTimeoutError) or server.connections <= 2
        finally:
            client.close()


# The first audio must come within FIRST_AUDIO_S on a loaded machine too (1.0 s was not always
# enough there, with a new websocket to open first); the stall lasts longer than that limit.
FIRST_AUDIO_S = 2.0
STALL_S = 2.5


@TRANSPORTS
def test_sync_first_audio_limit_does_not_cut_a_mid_stream_stall(
    local_server: Any, server_faults: Any, voice: list, websocket: bool
) -> None:
    """A short first-audio limit applies before the first chunk only; the generous chunk-gap
    limit covers the longer stall in the middle (sync HTTP used to raise after the first one)."""
    client = CartesiaTTS(
        api_key=local_server.api_key,
        base_url=local_server.host_for_env,
        first_audio_timeout=FIRST_AUDIO_S,
        chunk_gap_timeout=10.0,
        max_retries=1,
    )
    try:
        server_faults.add("stall", after_frames=2, seconds=STALL_S, on="ws" if websocket else "stream")
        out = client.generate(transcript=LONG, voice=voice, websocket=websocket)
        assert out["audio"] == expected_audio(LONG, voice)
        assert client.last_metrics.max_gap >= STALL_S - 0.1
    finally:
        client.close()


@TRANSPORTS
async def test_async_first_audio_limit_does_not_cut_a_mid_stream_stall(
    local_server: Any, server_faults: Any, voice: list, websocket: bool
) -> None:
    client = AsyncCartesiaTTS(
        api_key=local_server.api_key,
        base_url=local_server.host_for_env,
        first_audio_timeout=FIRST_AUDIO_S,
        chunk_gap_timeout=10.0,
        max_retries=1,
    )
    try:
        server_faults.add("stall", after_frames=2, seconds=STALL_S, on="ws" if websocket else "stream")
        out = await client.generate(transcript=LONG, voice=voice, websocket=websocket)
        assert out["audio"] == expected_audio(LONG, voice)
    finally:
        await client.close()


def test_http_body_without_done_is_truncated_sync() -> None:
    with RawServer("truncated", frames=2) as server:
        client = CartesiaTTS(api_key="k" * 12, base_url=server.host_for_env, max_retries=1)
        try:
            with pytest.raises(TruncatedStreamError):
                client.generate(transcript="hi", voice=_voice(), websocket=False)
            got = []
            with pytest.raises(TruncatedStreamError):
                for chunk in client.generate(
                    transcript="hi", voice=_voice(), websocket=False, stream=True
                ):
                    got.append(chunk["audio"])
            assert b"".join(got) == FRAME_PCM * 2  # what came is delivered, then the error
        finally:
            client.close()


def test_http_body_without_done_is_truncated_async() -> None:
    async def main() -> None:
        with RawServer("truncated", frames=2) as server:
            client = AsyncCartesiaTTS(api_key="k" * 12, base_url=server.host_for_env, max_retries=1)
            try:
                with pytest.raises(TruncatedStreamError):
                    await client.generate(transcript="hi", voice=_voice(), websocket=False)
            finally:
                await client.close()

    run_isolated(main())


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_connect_timeout_is_one_budget_not_one_per_retry(kind: str) -> None:
    """A handshake that never completes: ``connect_timeout=1`` ends the call after about 1 s,
    not 3 x 1 s plus backoff (the message names the limit that really held)."""
    options = dict(connect_timeout=1.0, max_retries=3, backoff_factor=0.05)
    with RawServer("silent") as server:
        if kind == "sync":
            client = CartesiaTTS(api_key="k" * 12, base_url=server.host_for_env, **options)
            try:
                start = time.monotonic()
                with pytest.raises(CartesiaTimeoutError, match="longer than 1.0 s"):
                    client.generate(transcript="hi", voice=_voice())
                elapsed = time.monotonic() - start
            finally:
                client.close()
        else:

            async def main() -> float:
                client = AsyncCartesiaTTS(api_key="k" * 12, base_url=server.host_for_env, **options)
                try:
                    start = time.monotonic()
                    with pytest.raises(CartesiaTimeoutError, match="longer than 1.0 s"):
                        await client.generate(transcript="hi", voice=_voice())
                    return time.monotonic() - start
                finally:
                    await client.close()

            elapsed = run_isolated(main())
    assert elapsed < 2.5 + LOAD_SLACK
    assert server.connections == 1
