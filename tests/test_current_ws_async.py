"""Current-API websocket, async: contexts bit-exact, flushes, cancel isolation, duplicate ids,
error frames, backpressure, and 100 concurrent contexts on one socket."""

from __future__ import annotations

import asyncio
import time

import pytest
from current_ws_support import async_conn, audio_of, defaults, expected, fmt

from cartesia.errors import InvalidInputError, NotFoundError
from cartesia.resources.tts_websocket import AsyncWebSocketContext


async def _collect(ctx, limit: float = 15) -> list:
    async def run() -> list:
        return [e async for e in ctx.receive()]

    return await asyncio.wait_for(run(), limit)


@pytest.mark.parametrize("encoding", ["pcm_f32le", "pcm_s16le", "pcm_mulaw", "pcm_alaw"])
async def test_one_context_is_bit_exact(local_server, encoding):
    async with async_conn(local_server) as ws:
        ctx = ws.context(**defaults(output_format=fmt(encoding)))
        assert isinstance(ctx, AsyncWebSocketContext)
        await ctx.push("Hello, async world!")
        await ctx.no_more_inputs()
        events = await _collect(ctx)
    assert events[-1].type == "done"
    assert audio_of(events) == expected(["Hello, async world!"], fmt(encoding))


async def test_enter_and_close_without_context_manager(local_server):
    ws = await async_conn(local_server).enter()
    try:
        ctx = ws.context(**defaults())
        await ctx.push("Entered.", continue_=False)
        assert audio_of(await _collect(ctx)) == expected(["Entered."])
    finally:
        await ws.close()
    assert ws.socket is None


async def test_flush_and_continuations(local_server):
    async with async_conn(local_server) as ws:
        ctx = ws.context(**defaults(max_buffer_delay_ms=5000))
        await ctx.push("The road ")
        await ctx.push("goes ever on.")
        assert await ctx.flush() == 1
        await ctx.push("And on.")
        await ctx.no_more_inputs()
        events = await _collect(ctx)
    assert [e.flush_id for e in events if e.type == "flush_done"] == [1]
    assert audio_of(events) == expected(["The road goes ever on.", "And on."])


async def test_cancel_drops_late_frames(local_server):
    long_text = " ".join(["This long sentence keeps the first context busy."] * 20)
    async with async_conn(local_server, queue_size=8) as ws:
        a = ws.context(**defaults())
        await a.push(long_text, continue_=False)
        gen = a.receive()
        first = await asyncio.wait_for(gen.__anext__(), 10)
        await gen.aclose()
        assert first.type == "chunk"
        await a.cancel()
        assert await _collect(a) == []
        b = ws.context(**defaults())
        await b.push("Only mine.", continue_=False)
        events = await _collect(b)
    assert {e.context_id for e in events} == {b.context_id}
    assert audio_of(events) == expected(["Only mine."])


async def test_duplicate_id_and_error_frames(local_server):
    async with async_conn(local_server) as ws:
        ws.context("dup", **defaults())
        with pytest.raises(InvalidInputError):
            ws.context("dup", **defaults())
        bad = ws.context(**defaults(voice={"mode": "id", "id": "missing"}))
        await bad.push("x", continue_=False)
        events = await _collect(bad)
        assert [e.type for e in events] == ["error"] and events[0].status_code == 404
        strict = ws.context(**defaults(voice={"mode": "id", "id": "missing"}, raise_errors=True))
        await strict.push("x", continue_=False)
        with pytest.raises(NotFoundError):
            await _collect(strict)


async def test_slow_consumer_backpressure(local_server):
    text = " ".join(["This sentence is spoken again and again."] * 30)
    async with async_conn(local_server, queue_size=4) as ws:
        ctx = ws.context(**defaults())
        await ctx.push(text, continue_=False)
        gen = ctx.receive()
        await asyncio.wait_for(gen.__anext__(), 10)
        deadline = time.monotonic() + 10
        while not ws.socket.router.waiting_on_consumer and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert ws.socket.router.waiting_on_consumer and ctx._slot.queue.qsize() <= 4
        rest = await asyncio.wait_for(_drain(gen), 30)
    assert rest[-1].type == "done"


async def _drain(gen) -> list:
    return [e async for e in gen]


async def test_hundred_concurrent_contexts_on_one_socket(local_server):
    texts = {f"c{i}": f"Context {i} of a hundred." for i in range(100)}
    async with async_conn(local_server) as ws:

        async def one(cid: str) -> list:
            ctx = ws.context(cid, **defaults(max_buffer_delay_ms=5000))
            await ctx.push(texts[cid][:10])
            await asyncio.sleep(0)
            await ctx.push(texts[cid][10:])
            await ctx.no_more_inputs()
            return await _collect(ctx, 60)

        t0 = time.monotonic()
        results = await asyncio.wait_for(asyncio.gather(*(one(c) for c in texts)), 90)
        elapsed = time.monotonic() - t0
        assert ws.connections_opened == 1
    for cid, events in zip(texts, results):
        assert {e.context_id for e in events} == {cid}
        assert audio_of(events) == expected([texts[cid]])
    assert elapsed < 60
