"""The v0 async HTTP body read past aiohttp's timers: each wait on an empty buffer stays bounded by
its phase (first audio, chunk gap, total) with one lazy timer, and buffered audio is never cut."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from test_client_support import expected_audio, voice  # noqa: F401  (fixture)

from cartesia.errors import ChunkGapTimeoutError, FirstAudioTimeoutError, TotalTimeoutError
from cartesia.tts import AsyncCartesiaTTS

LONG = "Long enough for a dozen chunks of audio, so that a stall can hit the middle of it."
#: Bounds each call: far above the limit under test, far below the limits it must not wait for.
BOUND = 3.0


def _client(local_server: Any, **limits: Any) -> AsyncCartesiaTTS:
    return AsyncCartesiaTTS(
        api_key=local_server.api_key, base_url=local_server.host_for_env, max_retries=1, **limits
    )


async def test_a_short_chunk_gap_ends_a_stall_well_before_the_long_first_audio_limit(
    local_server: Any, server_faults: Any, voice: list
) -> None:
    """The timer set for the first wait (first audio, 20 s) is set earlier for the shorter
    chunk-gap wait; a timer left at 20 s would let the 10 s stall run past BOUND."""
    client = _client(local_server, first_audio_timeout=20.0, chunk_gap_timeout=0.3)
    server_faults.add("stall", after_frames=2, seconds=10.0, on="stream")
    try:
        with pytest.raises(ChunkGapTimeoutError):
            await asyncio.wait_for(
                client.generate(transcript=LONG, voice=voice, websocket=False), BOUND
            )
    finally:
        await client.close()


async def test_a_body_without_its_first_frame_hits_the_first_audio_limit(
    local_server: Any, server_faults: Any, voice: list
) -> None:
    client = _client(local_server, first_audio_timeout=0.3, chunk_gap_timeout=20.0)
    server_faults.add("stall", after_frames=0, seconds=10.0, on="stream")
    try:
        with pytest.raises(FirstAudioTimeoutError):
            await asyncio.wait_for(
                client.generate(transcript=LONG, voice=voice, websocket=False), BOUND
            )
    finally:
        await client.close()


async def test_the_total_limit_ends_a_wait_inside_a_longer_chunk_gap(
    local_server: Any, server_faults: Any, voice: list
) -> None:
    client = _client(local_server, chunk_gap_timeout=20.0, total_timeout=0.5)
    server_faults.add("stall", after_frames=1, seconds=10.0, on="stream")
    try:
        with pytest.raises(TotalTimeoutError):
            await asyncio.wait_for(
                client.generate(transcript=LONG, voice=voice, websocket=False), BOUND
            )
    finally:
        await client.close()


async def test_stalls_shorter_than_the_gap_keep_every_sample(
    local_server: Any, server_faults: Any, voice: list
) -> None:
    """Two stalls in one body: the lazy timer, set at the first, must not fail the second wait
    (it is due while a later wait runs whose end is still ahead)."""
    client = _client(local_server, first_audio_timeout=2.0, chunk_gap_timeout=0.5)
    server_faults.add("stall", after_frames=1, seconds=0.25, on="stream")
    server_faults.add("stall", after_frames=3, seconds=0.25, on="stream")
    try:
        got = []
        async for chunk in await client.generate(
            transcript=LONG, voice=voice, websocket=False, stream=True
        ):
            got.append(chunk["audio"])
        assert b"".join(got) == expected_audio(LONG, voice)
    finally:
        await client.close()
