"""Current-API websocket reliability against the local server's faults (sync and async):
transparent reconnect after 1000/1001/1006/1011, typed errors for every pending receive when
the socket dies, no replay of delivered audio."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from current_ws_support import async_conn, audio_of, defaults, expected, sync_conn

from cartesia.errors import WebSocketClosedError

LONG = "A sentence long enough for several chunks of audio to stream out."


def _wait_closed(ws, limit: float = 10.0) -> None:
    """Until the connection's socket has seen the server's close and its reader recorded why
    (bounded). The link reports closed a moment before the reader thread sets ``failure``."""
    deadline = time.monotonic() + limit

    def settled() -> bool:
        sock = ws.socket
        return sock is None or (not sock.is_open() and sock.failure is not None)

    while not settled() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert settled()


@pytest.mark.parametrize("code", [1000, 1001])
def test_idle_close_reconnects_for_the_next_context(local_server, server_faults, code):
    server_faults.add("ws_idle_close", seconds=0.1, code=code)
    with sync_conn(local_server) as ws:
        first = ws.context(**defaults())
        first.push("Before the idle close.", continue_=False)
        assert audio_of(first.receive()) == expected(["Before the idle close."])
        _wait_closed(ws)
        assert ws.socket.failure.code == code
        again = ws.context(**defaults())
        again.push("After it.", continue_=False)
        events = list(again.receive())
        assert ws.connections_opened == 2
    assert audio_of(events) == expected(["After it."])


@pytest.mark.parametrize(
    "spec", ["close1011;after_frames=2", "drop;after_frames=2", "close1001;after_frames=2"]
)
def test_death_mid_context_raises_then_next_context_reconnects(local_server, server_faults, spec):
    server_faults.add_spec(spec)
    with sync_conn(local_server) as ws:
        ctx = ws.context(**defaults())
        ctx.push(LONG)  # more input may follow (the sentence end releases this one)
        got = []
        t0 = time.monotonic()
        with pytest.raises(WebSocketClosedError) as info:
            for event in ctx.receive():
                got.append(event)
        assert time.monotonic() - t0 < 5
        assert info.value.code == (1006 if spec.startswith("drop") else int(spec[5:9]))
        # What was delivered is a prefix of the utterance; nothing more comes for it.
        delivered = audio_of(got)
        assert len([e for e in got if e.type == "chunk"]) == 2
        assert expected([LONG]).startswith(delivered)
        with pytest.raises(WebSocketClosedError):
            ctx.push("more")  # the context is gone with its socket: no silent replay
        nxt = ws.context(**defaults())
        nxt.push("Fresh socket.", continue_=False)
        events = list(nxt.receive())
        assert ws.connections_opened == 2
    assert {e.context_id for e in events} == {nxt.context_id}
    assert audio_of(events) == expected(["Fresh socket."])


@pytest.mark.parametrize(
    "spec", ["close1000;after_frames=0", "close1011;after_frames=0", "drop;after_frames=0"]
)
def test_close_before_the_first_frame_is_invisible(local_server, server_faults, spec):
    """Nothing of the context was delivered: its inputs go again on a new socket, once."""
    server_faults.add_spec(spec)
    with sync_conn(local_server) as ws:
        ctx = ws.context(**defaults(max_buffer_delay_ms=5000))
        ctx.push("Said once, ")
        ctx.push("heard once.")
        ctx.no_more_inputs()
        events = list(ctx.receive())
        assert ws.connections_opened == 2
    assert audio_of(events) == expected(["Said once, heard once."])


def test_every_pending_receive_raises_when_the_socket_dies(local_server, server_faults):
    server_faults.add("close1011", after_frames=3)
    with sync_conn(local_server) as ws:
        contexts = [ws.context(**defaults()) for _ in range(6)]
        for ctx in contexts:
            ctx.push(LONG + " " + LONG, continue_=False)
        start = threading.Barrier(6, timeout=10)

        def drain(ctx):
            start.wait()
            got = []
            try:
                for event in ctx.receive():
                    got.append(event)
            except WebSocketClosedError as exc:
                return got, exc
            return got, None

        t0 = time.monotonic()
        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(drain, contexts, timeout=20))
        assert time.monotonic() - t0 < 10
    _check_outcomes(results, [LONG + " ", LONG])


def _check_outcomes(results, pieces) -> None:
    """Each context either raised the typed error after hearing part of its audio, or (when
    the socket died before its first frame) was sent again and completed bit-exact."""
    full = expected(pieces)  # the server speaks sentence by sentence
    failed = [(got, exc) for got, exc in results if exc is not None]
    assert failed, "the fault killed no context"
    for got, exc in results:
        if exc is None:
            assert got[-1].type == "done" and audio_of(got) == full
        else:
            assert exc.code in (1006, 1011) and got and full.startswith(audio_of(got))


def test_closing_the_connection_fails_pending_receives(local_server):
    ws = sync_conn(local_server).enter()
    quiet = ws.context(**defaults(max_buffer_delay_ms=5000))
    quiet.push("Buffered, no sentence end")  # no frame will come for it
    outcome = {}

    def wait() -> None:
        try:
            list(quiet.receive())
        except WebSocketClosedError as exc:
            outcome["error"] = exc

    reader = threading.Thread(target=wait)
    reader.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    ws.close()
    reader.join(5)
    assert not reader.is_alive() and time.monotonic() - t0 < 5
    assert isinstance(outcome.get("error"), WebSocketClosedError)


# --- async ---------------------------------------------------------------------------------------


async def _async_wait_closed(ws, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while ws.socket is not None and ws.socket.is_open() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert ws.socket is None or not ws.socket.is_open()


async def _collect(ctx) -> list:
    return [e async for e in ctx.receive()]


@pytest.mark.parametrize("code", [1000, 1001])
async def test_async_idle_close_reconnects(local_server, server_faults, code):
    server_faults.add("ws_idle_close", seconds=0.1, code=code)
    async with async_conn(local_server) as ws:
        first = ws.context(**defaults())
        await first.push("Before the idle close.", continue_=False)
        assert audio_of(await _collect(first)) == expected(["Before the idle close."])
        await _async_wait_closed(ws)
        again = ws.context(**defaults())
        await again.push("After it.", continue_=False)
        events = await asyncio.wait_for(_collect(again), 15)
        assert ws.connections_opened == 2
    assert audio_of(events) == expected(["After it."])


@pytest.mark.parametrize("spec", ["close1011;after_frames=0", "drop;after_frames=0"])
async def test_async_close_before_the_first_frame_is_invisible(local_server, server_faults, spec):
    server_faults.add_spec(spec)
    async with async_conn(local_server) as ws:
        ctx = ws.context(**defaults(max_buffer_delay_ms=5000))
        await ctx.push("Said once, ")
        await ctx.push("heard once.")
        await ctx.no_more_inputs()
        events = await asyncio.wait_for(_collect(ctx), 15)
        assert ws.connections_opened == 2
    assert audio_of(events) == expected(["Said once, heard once."])


@pytest.mark.parametrize("spec", ["close1011;after_frames=3", "drop;after_frames=3"])
async def test_async_pending_receives_raise_after_death(local_server, server_faults, spec):
    """4.2.0's async receive() waits forever after a 1011; ours raise, every one of them."""
    server_faults.add_spec(spec)
    async with async_conn(local_server) as ws:
        contexts = [ws.context(**defaults(timeout=None)) for _ in range(5)]
        for ctx in contexts:
            await ctx.push(LONG + " " + LONG, continue_=False)
        async def drain(ctx):
            got = []
            try:
                async for event in ctx.receive():
                    got.append(event)
            except WebSocketClosedError as exc:
                return got, exc
            return got, None

        results = await asyncio.wait_for(asyncio.gather(*(drain(c) for c in contexts)), 10)
        _check_outcomes(results, [LONG + " ", LONG])
        nxt = ws.context(**defaults())
        await nxt.push("Fresh socket.", continue_=False)
        events = await asyncio.wait_for(_collect(nxt), 15)
        assert ws.connections_opened == 2
    assert audio_of(events) == expected(["Fresh socket."])


async def test_async_closing_the_connection_fails_pending_receives(local_server):
    ws = await async_conn(local_server).enter()
    quiet = ws.context(**defaults(max_buffer_delay_ms=5000, timeout=None))
    await quiet.push("Buffered, no sentence end")
    pending = asyncio.ensure_future(_collect(quiet))
    await asyncio.sleep(0.2)
    await ws.close()
    with pytest.raises(WebSocketClosedError):
        await asyncio.wait_for(pending, 5)
