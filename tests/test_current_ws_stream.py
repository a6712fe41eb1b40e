"""The websocket connection's own send()/recv()/recv_bytes()/parse_event()/iteration (4.2.0's
connection-level API), sync and async, against the local server: bit-exact audio, routing
apart from context objects, cancel, timeouts, a dying socket and close()."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from current_ws_support import S16, VOICE, async_conn, audio_of, defaults, expected, sync_conn

from cartesia.errors import CartesiaTimeoutError, InvalidInputError, WebSocketClosedError

LONG = " ".join(["This long sentence keeps a context busy for a while."] * 12)


def request(context_id: str, transcript: str, **extra) -> dict:
    """A 4.2.0 ``GenerationRequestParam``."""
    out = {
        "context_id": context_id,
        "model_id": "sonic-3",
        "transcript": transcript,
        "voice": {"mode": "id", "id": VOICE.id},
        "output_format": S16,
    }
    out.update(extra)
    return out


def until_done(ws, ids, timeout: float = 15.0):
    """Every event of ``recv()`` until each id in ``ids`` ended (done or error)."""
    events, open_ids = [], set(ids)
    while open_ids:
        event = ws.recv(timeout=timeout)
        events.append(event)
        if event.type in ("done", "error"):
            open_ids.discard(event.context_id)
    return events


async def until_done_async(ws, ids, timeout: float = 15.0):
    events, open_ids = [], set(ids)
    while open_ids:
        event = await ws.recv(timeout=timeout)
        events.append(event)
        if event.type in ("done", "error"):
            open_ids.discard(event.context_id)
    return events


def of(events, context_id):
    return [e for e in events if e.context_id == context_id]


# --- sync ---------------------------------------------------------------------------------------


def test_send_then_recv_is_bit_exact(local_server):
    with sync_conn(local_server) as ws:
        ws.send(request("raw-1", "Sent on the connection."))
        events = until_done(ws, ["raw-1"])
    assert events[-1].type == "done" and {e.context_id for e in events} == {"raw-1"}
    assert audio_of(events) == expected(["Sent on the connection."])


def test_continuations_and_two_contexts_interleave_in_one_inbox(local_server):
    with sync_conn(local_server) as ws:
        # A long buffer delay: only the end of input releases the text (one utterance).
        ws.send(request("a", "First half, ", max_buffer_delay_ms=5000, **{"continue": True}))
        ws.send(request("b", "Another context entirely."))
        # 4.2.0's model attribute name for `continue`:
        ws.send(request("a", "second half.", max_buffer_delay_ms=5000, continue_=False))
        events = until_done(ws, ["a", "b"])
    assert audio_of(of(events, "a")) == expected(["First half, second half."])
    assert audio_of(of(events, "b")) == expected(["Another context entirely."])


def test_context_objects_never_feed_recv(local_server):
    with sync_conn(local_server) as ws:
        ctx = ws.context("object", **defaults())
        ctx.push("Mine alone.", continue_=False)
        ws.send(request("raw", "The connection's."))
        raw = until_done(ws, ["raw"])
        mine = list(ctx.receive())
        with pytest.raises(CartesiaTimeoutError):
            ws.recv(timeout=0.5)  # nothing of the context object reached the inbox
    assert {e.context_id for e in raw} == {"raw"}
    assert {e.context_id for e in mine} == {"object"}
    assert audio_of(mine) == expected(["Mine alone."])
    assert audio_of(raw) == expected(["The connection's."])


def test_ids_of_context_objects_are_refused_and_cancel_reaches_them(local_server):
    with sync_conn(local_server) as ws:
        ctx = ws.context("taken", **defaults())
        with pytest.raises(InvalidInputError) as info:
            ws.send(request("taken", "Not through the connection."))
        assert info.value.field == "context_id"
        ctx.push(LONG, continue_=False)
        assert next(iter(ctx.receive())).type == "chunk"
        ws.send({"context_id": "taken", "cancel": True})
        assert list(ctx.receive()) == []  # the cancel ended the context object
        ws.send(request("free", "Still serving."))
        assert audio_of(until_done(ws, ["free"])) == expected(["Still serving."])
        # A running raw context's id is taken for context objects too.
        ws.send(request("busy", LONG))
        with pytest.raises(InvalidInputError):
            ws.context("busy", **defaults())


def test_cancel_drops_late_frames(local_server):
    with sync_conn(local_server, queue_size=4) as ws:
        ws.send(request("doomed", LONG))
        assert ws.recv(timeout=15).type == "chunk"
        ws.send({"context_id": "doomed", "cancel": True})
        ws.send(request("next", "After the cancel."))
        events = until_done(ws, ["next"])
        assert ws.socket.router.dropped_frames > 0  # doomed's frames in flight were dropped
    # Not even the frames already queued in the inbox before the cancel are handed out.
    assert [e for e in events if e.context_id == "doomed"] == []
    assert audio_of(of(events, "next")) == expected(["After the cancel."])


def test_recv_bytes_and_parse_event(local_server):
    with sync_conn(local_server) as ws:
        ws.send(request("bytes", "Raw frames."))
        frames = []
        while True:
            frame = ws.recv_bytes(timeout=15)
            assert isinstance(frame, bytes)
            frames.append(frame)
            if json.loads(frame).get("done"):
                break
    events = [ws.parse_event(f) for f in frames]
    assert events[-1].type == "done" and audio_of(events) == expected(["Raw frames."])


def test_iteration_ends_when_the_connection_is_closed(local_server):
    ws = sync_conn(local_server).enter()
    ws.send(request("iter", "Iterated."))
    seen = []

    def consume():
        for event in ws:  # blocks for more after done, until close()
            seen.append(event)

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    deadline = time.monotonic() + 15
    while not (seen and seen[-1].type == "done") and time.monotonic() < deadline:
        time.sleep(0.02)
    ws.close()
    reader.join(5)
    assert not reader.is_alive()
    assert audio_of(seen) == expected(["Iterated."])
    with pytest.raises(WebSocketClosedError):
        ws.recv(timeout=1)


def test_recv_raises_when_the_socket_dies(local_server, server_faults):
    server_faults.add("close1011", after_frames=3)
    with sync_conn(local_server) as ws:
        ws.send(request("dies", LONG))
        t0 = time.monotonic()
        with pytest.raises(WebSocketClosedError) as info:
            until_done(ws, ["dies"])
        assert info.value.code in (1006, 1011) and time.monotonic() - t0 < 10
        # The next input opens a new socket transparently.
        ws.send(request("after", "On a new socket."))
        assert audio_of(until_done(ws, ["after"])) == expected(["On a new socket."])
        assert ws.connections_opened == 2


def test_recv_timeout_is_bounded_and_bad_events_are_refused(local_server):
    with sync_conn(local_server) as ws:
        t0 = time.monotonic()
        with pytest.raises(CartesiaTimeoutError):
            ws.recv(timeout=0.3)
        assert time.monotonic() - t0 < 3
        with pytest.raises(InvalidInputError) as info:
            ws.send(request("", "no id"))
        assert info.value.field == "context_id"
        with pytest.raises(InvalidInputError) as info:
            ws.send("not an event")
        assert info.value.field == "event"
        assert ws.socket is None or ws.socket.router.contexts == {}


# --- async --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_async_send_recv_and_iteration(local_server):
    async with async_conn(local_server) as ws:
        await ws.send(request("a", "First half, ", max_buffer_delay_ms=5000, **{"continue": True}))
        await ws.send(request("b", "Async, side by side."))
        await ws.send(request("a", "second half.", max_buffer_delay_ms=5000))
        events = []
        async for event in ws:
            events.append(event)
            if {e.context_id for e in events if e.type == "done"} == {"a", "b"}:
                break
    assert audio_of(of(events, "a")) == expected(["First half, second half."])
    assert audio_of(of(events, "b")) == expected(["Async, side by side."])


@pytest.mark.asyncio
async def test_async_context_objects_stay_apart_and_cancel(local_server):
    async with async_conn(local_server) as ws:  # room for all of the unread context's frames
        ctx = ws.context("object", **defaults())
        await ctx.push("Mine alone.", continue_=False)
        with pytest.raises(InvalidInputError):
            await ws.send(request(ctx.context_id, "Not through the connection."))
        await ws.send(request("doomed", LONG))
        assert (await ws.recv(timeout=15)).context_id == "doomed"
        await ws.send({"context_id": "doomed", "cancel": True})
        mine = [e async for e in ctx.receive()]
        await ws.send(request("next", "After the cancel."))
        events = await until_done_async(ws, ["next"])
    assert {e.context_id for e in mine} == {"object"}
    assert audio_of(mine) == expected(["Mine alone."])
    assert [e for e in events if e.context_id == "doomed"] == []
    assert audio_of(of(events, "next")) == expected(["After the cancel."])


@pytest.mark.asyncio
async def test_async_recv_bytes_timeout_death_and_close(local_server, server_faults):
    ws = async_conn(local_server)
    with pytest.raises(CartesiaTimeoutError):
        await ws.recv(timeout=0.3)
    await ws.send(request("bytes", "Raw frames."))
    frames = [await ws.recv_bytes(timeout=15)]
    while not json.loads(frames[-1]).get("done"):
        frames.append(await ws.recv_bytes(timeout=15))
    assert audio_of(ws.parse_event(f) for f in frames) == expected(["Raw frames."])
    server_faults.add("close1011", after_frames=3)
    await ws.send(request("dies", LONG))
    with pytest.raises(WebSocketClosedError) as info:
        await until_done_async(ws, ["dies"])
    assert info.value.code in (1006, 1011)
    waiting = asyncio.ensure_future(ws.recv())
    await asyncio.sleep(0.05)
    await ws.close()
    with pytest.raises(WebSocketClosedError):
        await asyncio.wait_for(waiting, 5)
    assert [e async for e in ws] == []  # iteration after close() ends at once
