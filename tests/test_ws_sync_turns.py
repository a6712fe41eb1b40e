"""The sync websocket's read turns: a caller waiting for its frame reads the socket in its own
thread, other contexts' frames wait in their queues, and the library's thread keeps the socket
(pings, the end of the connection) while no caller reads."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
from test_ws_transport_perf import serving  # a websockets server in a thread

from cartesia._client.routing import FrameQueue, SyncSlot
from cartesia._client.transport.ws_sync import SyncSocket
from cartesia._client.transport.ws_turns import ReadTurns
from cartesia.errors import WebSocketClosedError
from cartesia.protocol import v0

LIMIT = 5.0  # every wait below is bounded by this


def frame(cid: str, n: int, pad: int = 50, **extra: Any) -> str:
    return json.dumps({"context_id": cid, "n": n, "data": "QUJD" * pad, **extra})


@pytest.fixture
def script_server() -> Iterator[str]:
    """A server that plays the script a request names, frame by frame (see ``SCRIPTS``)."""

    def handler(ws: Any) -> None:
        for raw in ws:
            request = json.loads(raw)
            SCRIPTS[request["script"]](ws, request)

    yield from serving(handler)


def _burst(ws: Any, request: Dict[str, Any]) -> None:
    # `counts`: frames per context, sent context after context, each ended by a done frame.
    pad = request.get("pad", 50)
    for cid, count in request["counts"]:
        for n in range(count):
            ws.send(frame(cid, n, pad))
        ws.send(frame(cid, count, pad, done=True))


def _ping_then_report(ws: Any, request: Dict[str, Any]) -> None:
    answered = ws.ping(b"idle?").wait(LIMIT)  # nobody reads on the client: the library answers
    ws.send(frame(request["cid"], 0, pong=answered, done=True))


def _one_then_vanish(ws: Any, request: Dict[str, Any]) -> None:
    for cid in request["cids"]:
        ws.send(frame(cid, 0))
    time.sleep(0.05)  # let them be read, then the peer is gone (no close frame)
    ws.socket.shutdown(socket.SHUT_RDWR)


def _silence(ws: Any, request: Dict[str, Any]) -> None:
    pass


SCRIPTS: Dict[str, Callable[[Any, Dict[str, Any]], None]] = {
    "burst": _burst,
    "ping": _ping_then_report,
    "vanish": _one_then_vanish,
    "silence": _silence,
}


def connected(url: str, queue_size: int = 8) -> SyncSocket:
    sock = SyncSocket(url, None, queue_size, v0)
    sock.connect(None, LIMIT)
    return sock


def turns_of(sock: SyncSocket) -> ReadTurns:
    assert sock.conn is not None and sock.conn.turns is not None  # plain TCP: callers may read
    return sock.conn.turns


def read_all(slot: SyncSlot, timeout: float = LIMIT) -> List[Dict[str, Any]]:
    got: List[Dict[str, Any]] = []
    while not got or not got[-1].get("done"):
        payload = slot.get(timeout)
        assert payload is not None, f"no frame for {slot.id} within {timeout} s after {len(got)}"
        got.append(json.loads(payload))
    return got


def test_a_lone_context_reads_its_frames_in_its_own_thread(script_server: str) -> None:
    sock = connected(script_server, queue_size=64)
    try:
        routed_in: List[int] = []
        route = sock.route
        sock.route = lambda payload: (routed_in.append(threading.get_ident()), route(payload))[1]  # type: ignore[method-assign]
        slot = sock.open_context("a")
        # 64 KiB frames: one read (256 KiB) holds a few of them at most.
        sock.send(json.dumps({"script": "burst", "counts": [["a", 40]], "pad": 1 << 14}))
        got = read_all(slot)
        assert [m["n"] for m in got] == list(range(41))
        # The library's thread may hold the socket when the first frames come (what its read
        # holds); after that the caller reads: its frames never cross threads again.
        me = threading.get_ident()
        first_mine = routed_in.index(me)
        assert len(routed_in) == 41 and first_mine <= 5, routed_in.count(me)
        assert routed_in[first_mine:] == [me] * (41 - first_mine)
    finally:
        sock.close()


def test_another_contexts_frames_wait_in_its_queue_while_one_caller_reads(
    script_server: str,
) -> None:
    sock = connected(script_server, queue_size=8)
    try:
        a, b = sock.open_context("a"), sock.open_context("b")
        sock.send(json.dumps({"script": "burst", "counts": [["b", 3], ["a", 30]]}))
        assert [m["n"] for m in read_all(a)] == list(range(31))  # b's four were read past
        assert b.queue.qsize() == 4
        assert [m["n"] for m in read_all(b, 0.01)] == list(range(4))  # queued already
        assert sock.router.dropped_frames == 0 and sock.is_open()
    finally:
        sock.close()


def test_a_full_queue_nobody_reads_times_the_reader_out_and_loses_nothing(
    script_server: str,
) -> None:
    sock = connected(script_server, queue_size=2)
    try:
        a, b = sock.open_context("a"), sock.open_context("b")
        sock.send(json.dumps({"script": "burst", "counts": [["b", 6], ["a", 3]]}))
        waited_from = time.monotonic()
        assert a.get(0.3) is None  # its frames are behind b's, and b's queue is full
        assert b.queue.qsize() == 2
        # Not a dead socket: the reader waits on a consumer (the caller must not close it).
        assert not sock.router.stalled_since(waited_from) and sock.is_open()
        started = time.monotonic()
        assert [m["n"] for m in read_all(b)] == list(range(7))  # in order, none lost
        # b has its frames: it does not wait for room in a's full queue (a's frames stay queued)
        assert time.monotonic() - started < LIMIT / 2
        assert [m["n"] for m in read_all(a)] == list(range(4))
        assert sock.router.dropped_frames == 0
    finally:
        sock.close()


def test_two_callers_in_two_threads_each_get_all_their_frames(script_server: str) -> None:
    sock = connected(script_server, queue_size=4)
    try:
        slots = {cid: sock.open_context(cid) for cid in ("a", "b")}
        got: Dict[str, List[int]] = {}

        def reader(cid: str) -> None:
            got[cid] = [m["n"] for m in read_all(slots[cid])]

        threads = [threading.Thread(target=reader, args=(cid,)) for cid in slots]
        for t in threads:
            t.start()
        sock.send(json.dumps({"script": "burst", "counts": [["a", 25], ["b", 25], ["a", 0]]}))
        for t in threads:
            t.join(LIMIT)
        # a's stream has a second done (count 0) that arrives after it finished: dropped or
        # queued, never delivered to b.
        assert got["a"][:26] == list(range(26)) and got["b"] == list(range(26))
    finally:
        sock.close()


def test_a_ping_while_no_caller_reads_is_answered_by_the_library_thread(
    script_server: str,
) -> None:
    sock = connected(script_server)
    try:
        turns_of(sock).idle = 0.02
        slot = sock.open_context("p")
        assert slot.get(0.01) is None  # a caller was here, then stopped reading
        sock.send(json.dumps({"script": "ping", "cid": "p"}))
        deadline = time.monotonic() + LIMIT
        while slot.queue.empty() and time.monotonic() < deadline:
            time.sleep(0.01)  # the caller does not read: only the library's thread can
        assert json.loads(slot.get(0.01) or b"{}").get("pong") is True
    finally:
        sock.close()


def test_the_peer_vanishing_fails_the_reading_and_the_waiting_callers(
    script_server: str,
) -> None:
    sock = connected(script_server)
    try:
        slots = [sock.open_context(cid) for cid in ("a", "b", "c")]
        errors: Dict[str, BaseException] = {}

        def reader(slot: SyncSlot) -> None:
            try:
                while True:
                    slot.get(LIMIT)
            except BaseException as exc:  # noqa: BLE001 - recorded for the assertions
                errors[slot.id] = exc

        threads = [threading.Thread(target=reader, args=(s,)) for s in slots]
        for t in threads:
            t.start()
        sock.send(json.dumps({"script": "vanish", "cids": ["a", "b", "c"]}))
        for t in threads:
            t.join(LIMIT)
        assert not any(t.is_alive() for t in threads)
        assert sorted(errors) == ["a", "b", "c"]
        for exc in errors.values():
            assert isinstance(exc, WebSocketClosedError) and exc.code == 1006
        assert not sock.is_open()
    finally:
        sock.close()


def test_closing_the_socket_ends_a_callers_read_at_once(script_server: str) -> None:
    sock = connected(script_server)
    slot = sock.open_context("s")
    sock.send(json.dumps({"script": "silence"}))
    outcome: List[Optional[BaseException]] = []

    def reader() -> None:
        try:
            slot.get(LIMIT)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001
            outcome.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    deadline = time.monotonic() + LIMIT
    while not turns_of(sock).role.locked() and time.monotonic() < deadline:
        time.sleep(0.005)  # the caller reads (polls the socket) now
    started = time.monotonic()
    sock.close()
    thread.join(LIMIT)
    assert len(outcome) == 1 and isinstance(outcome[0], WebSocketClosedError)
    assert time.monotonic() - started < LIMIT / 2  # not its own timeout


def test_frame_queue_wait_returns_on_wake_and_on_an_item() -> None:
    q = FrameQueue(2)
    q.wake()
    q.wait(LIMIT)  # woken before it waited: returns at once
    assert q.take_nowait() is None
    waiter = threading.Thread(target=q.wait, args=(LIMIT,))
    waiter.start()
    deadline = time.monotonic() + LIMIT
    while not q._getting and time.monotonic() < deadline:
        time.sleep(0.001)
    q.put_nowait(b"x")
    waiter.join(LIMIT)
    assert not waiter.is_alive() and q.take_nowait() == b"x"
