"""The async client under load: multiplexing, backpressure, event loops and resource hygiene."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import warnings
from typing import Any

import pytest
from test_client_support import (  # noqa: F401  (fixtures)
    async_client,
    expected_audio,
    expected_chunks,
    other_voice,
    run_isolated,
    voice,
)

from cartesia.tts import AsyncCartesiaTTS

LONG = "A longer sentence that the server cuts into many chunks, so a consumer can fall behind."


def _texts(n: int) -> list:
    return [f"Concurrent generation number {i}" for i in range(n)]


@pytest.mark.parametrize("websocket", [True, False], ids=["ws", "http"])
async def test_100_concurrent_generations_are_each_exact(
    local_server: Any, voice: list, other_voice: list, websocket: bool
) -> None:
    before = local_server.stats["ws_connections"]
    texts = _texts(100)
    voices = [voice if i % 2 else other_voice for i in range(100)]
    async with async_client(local_server, max_connections=20) as client:

        async def one(i: int) -> bytes:
            if i % 3 == 0:  # a mix of streamed and whole generations on the same socket
                stream = await client.generate(
                    transcript=texts[i], voice=voices[i], websocket=websocket, stream=True
                )
                return b"".join([c["audio"] async for c in stream])
            out = await client.generate(transcript=texts[i], voice=voices[i], websocket=websocket)
            return out["audio"]

        results = await asyncio.gather(*(one(i) for i in range(100)))
        if websocket:
            mux = client._runtime().current_pool
            assert mux is not None and mux.connections_opened == 1 and not mux.contexts
    for i, audio in enumerate(results):
        assert audio == expected_audio(texts[i], voices[i]), i
    if websocket:
        assert local_server.stats["ws_connections"] - before == 1  # all 100 on one socket


async def test_frames_interleave_and_route_by_context(local_server: Any, voice: list) -> None:
    async with async_client(local_server) as client:
        a = await client.generate(transcript=LONG, voice=voice, stream=True)
        b = await client.generate(transcript=LONG + " Second.", voice=voice, stream=True)
        got_a, got_b = [], []
        # Read them alternately: both contexts are live on one socket at the same time.
        ia, ib = a.__aiter__(), b.__aiter__()
        done_a = done_b = False
        while not (done_a and done_b):
            if not done_a:
                try:
                    got_a.append((await ia.__anext__())["audio"])
                except StopAsyncIteration:
                    done_a = True
            if not done_b:
                try:
                    got_b.append((await ib.__anext__())["audio"])
                except StopAsyncIteration:
                    done_b = True
        assert b"".join(got_a) == expected_audio(LONG, voice)
        assert b"".join(got_b) == expected_audio(LONG + " Second.", voice)


async def test_queue_per_context_is_bounded(local_server: Any, voice: list) -> None:
    n = expected_chunks(LONG, voice)
    assert n > 8
    async with async_client(local_server, max_queued_chunks=2) as client:
        stream = await client.generate(transcript=LONG, voice=voice, stream=True)
        first = await stream.__anext__()
        await asyncio.sleep(0.2)  # the server has sent everything by now; we read nothing
        mux = client._runtime().current_pool
        (ctx,) = mux.contexts.values()
        assert ctx.queue.qsize() <= 2  # the reader waits instead of buffering the rest
        rest = [c["audio"] async for c in stream]
        assert first["audio"] + b"".join(rest) == expected_audio(LONG, voice)
        # A slow context does not lose anything, and the socket still serves others afterwards.
        assert (await client.generate(transcript="next", voice=voice))["audio"] == expected_audio("next", voice)


async def test_cancelled_slow_context_unblocks_the_socket(local_server: Any, voice: list) -> None:
    async with async_client(local_server, max_queued_chunks=1) as client:
        stream = await client.generate(transcript=LONG, voice=voice, stream=True)
        await stream.__anext__()
        await asyncio.sleep(0.1)  # reader now waits on the full queue of this context
        await stream.aclose()
        out = await asyncio.wait_for(client.generate(transcript="free again", voice=voice), 5)
        assert out["audio"] == expected_audio("free again", voice)


def test_one_client_across_event_loops(local_server: Any, voice: list) -> None:
    client = AsyncCartesiaTTS(api_key=local_server.api_key, base_url=local_server.host_for_env)

    async def use() -> bytes:
        out = await client.generate(transcript="loop", voice=voice)
        stream = await client.generate(transcript="loop", voice=voice, websocket=False, stream=True)
        return out["audio"] + b"".join([c["audio"] async for c in stream])

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = run_isolated(use())  # never closed explicitly: the loop's end releases it
        second = run_isolated(use())
        gc.collect()
    assert first == second == 2 * expected_audio("loop", voice)
    run_isolated(client.close())


def test_loop_in_another_thread(local_server: Any, voice: list) -> None:
    client = AsyncCartesiaTTS(api_key=local_server.api_key, base_url=local_server.host_for_env)
    results: list = []

    def worker() -> None:
        results.append(asyncio.run(client.generate(transcript="thread", voice=voice))["audio"])

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    results.append(run_isolated(client.generate(transcript="thread", voice=voice))["audio"])
    assert results == [expected_audio("thread", voice)] * 3
    run_isolated(client.close())


async def test_close_is_idempotent_and_client_reusable(local_server: Any, voice: list) -> None:
    client = async_client(local_server)
    await client.close()  # nothing opened yet
    assert (await client.generate(transcript="a", voice=voice))["audio"] == expected_audio("a", voice)
    ws = client.websocket
    await client.close()
    await client.close()
    assert ws.closed
    assert (await client.generate(transcript="b", voice=voice))["audio"] == expected_audio("b", voice)
    assert client.websocket is not ws
    await client.close()


async def test_dropped_client_leaves_no_warnings(local_server: Any, voice: list) -> None:
    client = async_client(local_server)
    await client.generate(transcript="gc", voice=voice)
    await client.generate(transcript="gc", voice=voice, websocket=False)
    del client
    gc.collect()
    await asyncio.sleep(0.05)  # the loop releases the session and socket


async def test_concurrent_streams_mid_stream_close(local_server: Any, server_faults: Any, voice: list) -> None:
    """A socket dying under several contexts fails each of them; none hangs; next use reconnects."""
    async with async_client(local_server) as client:
        server_faults.add("close1011", after_frames=3, on="ws")

        async def consume(text: str) -> Any:
            got = []
            try:
                async for c in await client.generate(transcript=text, voice=voice, stream=True):
                    got.append(c["audio"])
                    await asyncio.sleep(0.01)  # slower than the server: contexts overlap
            except Exception as exc:  # noqa: BLE001 - the test inspects what each one got
                return exc, b"".join(got)
            return None, b"".join(got)

        start = time.monotonic()
        results = await asyncio.gather(*(consume(f"{LONG} {i}") for i in range(4)))
        assert time.monotonic() - start < 5
        for i, (exc, audio) in enumerate(results):
            expected = expected_audio(f"{LONG} {i}", voice)
            if exc is None:
                assert audio == expected  # finished, or was retried before any audio
            else:
                assert isinstance(exc, RuntimeError) and expected.startswith(audio)
        assert any(exc is not None for exc, _ in results)
        assert (await client.generate(transcript="after", voice=voice))["audio"] == expected_audio("after", voice)


async def test_duplicate_context_id_is_refused_and_active_count(local_server: Any, voice: list) -> None:
    async with async_client(local_server) as client:
        assert client.active_generations == 0
        first = await client.generate(transcript=LONG, voice=voice, stream=True, context_id="dup")
        await first.__anext__()
        assert client.active_generations == 1
        second = await client.generate(transcript="x", voice=voice, stream=True, context_id="dup")
        with pytest.raises(ValueError, match="already in use"):
            await second.__anext__()
        rest = [c["audio"] async for c in first]
        assert len(rest) == expected_chunks(LONG, voice) - 1
        assert client.active_generations == 0
        again = await client.generate(transcript="x", voice=voice, context_id="dup")  # free again
        assert again["audio"] == expected_audio("x", voice)


async def test_starved_context_times_out_without_killing_the_socket(local_server: Any, voice: list) -> None:
    """Head-of-line cost of backpressure: a context starved by a stalled consumer on the same
    socket times out, but the socket (and the slow context's audio) survives."""
    async with async_client(local_server, max_queued_chunks=1, first_audio_timeout=0.3) as client:
        slow = await client.generate(transcript=LONG, voice=voice, stream=True)
        first = await slow.__anext__()
        await asyncio.sleep(0.1)  # the reader now waits on the slow context's full queue
        from cartesia.errors import FirstAudioTimeoutError

        with pytest.raises(FirstAudioTimeoutError):
            await client.generate(transcript="starved", voice=voice)
        rest = [c["audio"] async for c in slow]
        assert first["audio"] + b"".join(rest) == expected_audio(LONG, voice)
        assert client._runtime().current_pool.connections_opened == 1
        assert (await client.generate(transcript="fed", voice=voice))["audio"] == expected_audio("fed", voice)
