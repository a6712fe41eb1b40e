"""The websocket transports' per-frame machinery: the sync client routes messages in the library's
own reader thread (fragments assembled, control frames left to the library) and hands them over
through ``FrameQueue``; the async slot waits on one future with a timer instead of ``wait_for``."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from typing import Any, Callable, Iterator, List

import pytest
from websockets.sync.server import serve

from cartesia._client.routing import CLOSED, AsyncSlot, FrameQueue, SyncSlot
from cartesia._client.transport.ws_sync import SyncSocket
from cartesia.errors import WebSocketClosedError
from cartesia.protocol import v0

LIMIT = 5.0  # every wait below is bounded by this


def serving(handler: Callable[[Any], None]) -> Iterator[str]:
    """A websockets server running ``handler`` in a thread of its own, as its URL (a fixture's body)."""
    with serve(handler, "127.0.0.1", 0) as server:
        port = server.socket.getsockname()[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"ws://127.0.0.1:{port}/"
        server.shutdown()
        thread.join(LIMIT)


@pytest.fixture
def fragmenting_server() -> Iterator[str]:
    """A websockets server that answers each request with its context's message in three
    fragments after a ping, then closes when asked with ``{"close": true}``."""

    def handler(ws: Any) -> None:
        for raw in ws:
            request = json.loads(raw)
            if request.get("close"):
                ws.close(1011, "closing on request")
                return
            text = json.dumps({"context_id": request["context_id"], "done": True, "data": ""})
            ws.ping(request["context_id"].encode())  # the client answers (the library does)
            ws.send([text[:5], text[5:11], text[11:]])  # an iterable: one fragmented message

    yield from serving(handler)


def test_fragmented_messages_are_assembled_and_routed(fragmenting_server: str) -> None:
    sock = SyncSocket(fragmenting_server, None, 8, v0)
    sock.connect(None, LIMIT)
    try:
        threads = {t.name for t in threading.enumerate()}
        assert "cartesia-ws-reader" not in threads  # no reader thread of our own any more
        slots = [sock.open_context(cid) for cid in ("a", "b")]
        for cid in ("b", "a"):
            sock.send(json.dumps({"context_id": cid}))
        for slot in slots:
            payload = slot.get(LIMIT)
            assert isinstance(payload, bytes)  # undecoded, whatever the websockets version
            assert json.loads(payload) == {"context_id": slot.id, "done": True, "data": ""}
        assert sock.router.dropped_frames == 0 and sock.is_open()
        with pytest.raises(RuntimeError, match="routed"):  # a clear error, never a wait forever
            assert sock.conn is not None
            sock.conn.recv()
    finally:
        sock.close()
    assert not sock.is_open()
    with pytest.raises(WebSocketClosedError):
        sock.open_context("late")


@pytest.fixture
def pinging_server() -> Iterator[str]:
    """A websockets server that pings between two messages of a context and reports the pong,
    then sends a 70,000-byte message (64-bit length, several reads) and a last one."""

    def handler(ws: Any) -> None:
        for raw in ws:
            cid = json.loads(raw)["context_id"]
            ws.send(json.dumps({"context_id": cid, "n": 1}))
            answered = ws.ping(b"mid-stream").wait(LIMIT)
            ws.send(json.dumps({"context_id": cid, "pong": answered}).encode())  # binary
            ws.send(json.dumps({"context_id": cid, "data": "x" * 70_000}))
            ws.send(json.dumps({"context_id": cid, "done": True}))

    yield from serving(handler)


def test_a_ping_mid_stream_is_answered_while_data_frames_skip_the_library_parser(
    pinging_server: str,
) -> None:
    sock = SyncSocket(pinging_server, None, 8, v0)
    sock.connect(None, LIMIT)
    try:
        assert sock.conn is not None
        prefilter = sock.conn.prefilter
        to_library: List[bytes] = []
        library = prefilter._receive_data
        prefilter._receive_data = lambda data: (to_library.append(bytes(data)), library(data))[1]
        slot = sock.open_context("p")
        sock.send(json.dumps({"context_id": "p"}))
        got = []
        for _ in range(4):
            payload = slot.get(LIMIT)
            assert isinstance(payload, bytes)
            got.append(json.loads(payload))
        assert [sorted(m) for m in got] == [["context_id", "n"], ["context_id", "pong"],
                                            ["context_id", "data"], ["context_id", "done"]]
        assert got[1]["pong"] is True and len(got[2]["data"]) == 70_000
        # Only the ping went through the library's parser (whole: 2 header bytes + its payload).
        assert to_library == [b"\x89\x0amid-stream"]
    finally:
        sock.close()


def test_a_server_close_fails_every_pending_context_with_its_code(fragmenting_server: str) -> None:
    sock = SyncSocket(fragmenting_server, None, 8, v0)
    sock.connect(None, LIMIT)
    try:
        pending = [sock.open_context(cid) for cid in ("x", "y")]
        sock.send(json.dumps({"close": True}))
        for slot in pending:
            with pytest.raises(WebSocketClosedError) as info:
                slot.get(LIMIT)
            assert info.value.code == 1011
    finally:
        sock.close()


def test_frame_queue_is_bounded_and_wakes_a_waiting_consumer() -> None:
    q = FrameQueue(2)
    q.put_nowait(b"1")
    q.put_nowait(b"2")
    with pytest.raises(queue.Full):
        q.put_nowait(b"3")
    with pytest.raises(queue.Full):
        q.put(b"3", timeout=0.01)  # no room within the timeout
    assert q.qsize() == 2 and q.get() == b"1" and q.get_nowait() == b"2" and q.empty()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.01)
    with pytest.raises(queue.Empty):
        q.get_nowait()

    got: List[object] = []
    consumer = threading.Thread(target=lambda: got.append(q.get(timeout=LIMIT)))
    consumer.start()
    deadline = time.monotonic() + LIMIT
    while not q._getting and time.monotonic() < deadline:  # the consumer is waiting
        time.sleep(0.001)
    q.put_nowait(b"late")
    consumer.join(LIMIT)
    assert got == [b"late"]


def test_frame_queue_put_waits_for_room_until_the_consumer_takes_one() -> None:
    q = FrameQueue(1)
    q.put_nowait(b"first")
    done = threading.Event()

    def reader() -> None:
        q.put(b"second", timeout=LIMIT)
        done.set()

    thread = threading.Thread(target=reader)
    thread.start()
    deadline = time.monotonic() + LIMIT
    while not q._putting and time.monotonic() < deadline:
        time.sleep(0.001)
    assert not done.is_set()
    assert q.get(timeout=LIMIT) == b"first"
    assert done.wait(LIMIT) and q.get(timeout=LIMIT) == b"second"
    thread.join(LIMIT)


def test_sync_slot_raises_its_failure_after_the_queued_frames() -> None:
    slot = SyncSlot("c", 4)
    assert slot.put_nowait(b"frame")
    slot.fail(WebSocketClosedError("gone", code=1006))
    assert slot.get(LIMIT) == b"frame"  # what arrived first is still delivered
    with pytest.raises(WebSocketClosedError):
        slot.get(LIMIT)
    assert slot.queue.empty()


async def test_async_slot_times_out_wakes_and_fails_without_a_task_per_wait() -> None:
    slot = AsyncSlot("c", 2)
    tasks = len(asyncio.all_tasks())
    waiting = asyncio.ensure_future(slot.get(LIMIT))
    await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) == tasks + 1  # only the one above: no wait_for task
    assert slot._waiter is not None
    assert slot.put_nowait(b"frame")
    assert await asyncio.wait_for(waiting, LIMIT) == b"frame"
    assert slot._waiter is None

    assert await slot.get(0.01) is None  # the timer fired; nothing was queued
    assert slot._waiter is None

    waiting = asyncio.ensure_future(slot.get(LIMIT))
    await asyncio.sleep(0)
    slot.fail(WebSocketClosedError("gone", code=1011))
    with pytest.raises(WebSocketClosedError):
        await asyncio.wait_for(waiting, LIMIT)

    cancelled = AsyncSlot("d", 1)
    waiting = asyncio.ensure_future(cancelled.get(None))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert cancelled._waiter is None


async def test_async_slot_backpressure_put_wakes_the_consumer() -> None:
    slot = AsyncSlot("c", 1)
    assert slot.put_nowait(b"1")
    assert not slot.put_nowait(b"2")  # full: the reader would wait
    putting = asyncio.ensure_future(slot.put(b"2"))
    await asyncio.sleep(0)
    assert not putting.done()
    assert await slot.get(LIMIT) == b"1"
    await asyncio.wait_for(putting, LIMIT)
    assert await slot.get(LIMIT) == b"2"
    slot.put_nowait(CLOSED)  # the router's sentinel needs a failure to raise
    slot.failure = WebSocketClosedError("gone", code=1006)
    with pytest.raises(WebSocketClosedError):
        await slot.get(LIMIT)
