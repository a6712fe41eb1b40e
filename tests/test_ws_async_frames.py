"""The async websocket's frame prefilter against aiohttp's own parser: same messages, same order,
same errors, whatever the read sizes (sans-I/O, real aiohttp parser and queue)."""

from __future__ import annotations

import asyncio
import os
import struct
from typing import Any, List, Optional, Tuple

import aiohttp
import pytest
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http import WebSocketReader
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cartesia._client.transport.ws_async import FAST_FRAMES
from cartesia._client.transport.ws_async_frames import AiohttpFramePrefilter

if not FAST_FRAMES:  # pragma: no cover - aiohttp < 3.12 decodes text frames: no prefilter there
    pytest.skip("the prefilter is only used with aiohttp >= 3.12", allow_module_level=True)
DATA = (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)


def frame(op: int, payload: bytes, fin: bool = True, rsv: int = 0, mask: bool = False) -> bytes:
    """One server frame (unmasked unless ``mask``)."""
    b0 = (0x80 if fin else 0) | rsv | op
    n = len(payload)
    if n < 126:
        head = bytes([b0, n | (0x80 if mask else 0)])
    elif n < 1 << 16:
        head = bytes([b0, 126 | (0x80 if mask else 0)]) + struct.pack("!H", n)
    else:
        head = bytes([b0, 127 | (0x80 if mask else 0)]) + struct.pack("!Q", n)
    return head + (b"\0\0\0\0" if mask else b"") + payload


def _queue(loop: asyncio.AbstractEventLoop) -> Any:
    from aiohttp._websocket.reader import WebSocketDataQueue  # aiohttp >= 3.11

    # A limit no test reaches: flow control would pause a transport these queues do not have.
    return WebSocketDataQueue(BaseProtocol(loop), 1 << 24, loop=loop)


def _reader(queue: Any, max_size: int) -> Any:
    return WebSocketReader(queue, max_size, compress=False, decode_text=False)


async def _drain(queue: Any, log: List[Tuple[str, Any]], prefilter: Any = None) -> None:
    """Take what aiohttp queued, as the socket's reader task does (and lower ``pending`` the same)."""
    while queue._buffer:
        msg = await queue.read()
        if msg.type in DATA:
            log.append(("data", bytes(msg.data)))
            if prefilter is not None and prefilter.pending:
                prefilter.pending -= 1
        else:
            log.append((msg.type.name, msg.data))


async def _outcome(queue: Any) -> Optional[str]:
    """How aiohttp's queue ends: its error (type, close code), EOF, or None (still open)."""
    exc = queue.exception()
    if exc is not None:
        return f"{type(exc).__name__}:{getattr(exc, 'code', None)}"
    return "eof" if queue.is_eof() else None


async def alone(stream: bytes, max_size: int) -> Tuple[List[Tuple[str, Any]], Optional[str]]:
    """What aiohttp's parser makes of ``stream`` by itself."""
    queue = _queue(asyncio.get_running_loop())
    reader = _reader(queue, max_size)
    log: List[Tuple[str, Any]] = []
    reader.feed_data(stream)
    await _drain(queue, log)
    return log, await _outcome(queue)


async def prefiltered(
    stream: bytes, cuts: List[int], max_size: int, full: List[bool], eof: bool = False
) -> Tuple[List[Tuple[str, Any]], Optional[str], AiohttpFramePrefilter]:
    """The same stream in reads cut at ``cuts``, through the prefilter; ``full`` says when the
    context's queue is full (the frame must then go through aiohttp, in order)."""
    queue = _queue(asyncio.get_running_loop())
    log: List[Tuple[str, Any]] = []
    schedule = list(full)

    def take(payload: bytes) -> bool:
        if schedule and schedule.pop(0):
            return False
        log.append(("data", payload))
        return True

    prefilter = AiohttpFramePrefilter(_reader(queue, max_size), take, max_size)
    bounds = [0] + sorted({c for c in cuts if 0 < c < len(stream)}) + [len(stream)]
    for a, b in zip(bounds, bounds[1:]):
        prefilter.feed_data(stream[a:b])
        await _drain(queue, log, prefilter)  # the reader task runs between reads
    if eof:
        prefilter.feed_eof()
        await _drain(queue, log, prefilter)
    return log, await _outcome(queue), prefilter


def _without_control(log: List[Tuple[str, Any]]) -> List[Tuple[str, Any]]:
    return [item for item in log if item[0] == "data"]


def _control(log: List[Tuple[str, Any]]) -> List[Tuple[str, Any]]:
    return [item for item in log if item[0] != "data"]


_payloads = st.one_of(
    st.binary(max_size=140),
    st.integers(min_value=126, max_value=400).map(lambda n: b"L" * n),  # a 16-bit length field
)
_frames = st.lists(
    st.one_of(
        st.tuples(st.sampled_from([1, 2]), _payloads).map(lambda t: [frame(*t)]),
        st.binary(max_size=125).map(lambda p: [frame(9, p)]),  # ping
        st.binary(max_size=125).map(lambda p: [frame(10, p)]),  # pong
        st.tuples(_payloads, st.binary(max_size=30), st.binary(max_size=20)).map(
            # a fragmented text message with a ping between its fragments
            lambda t: [frame(1, t[0], fin=False), frame(9, b"p"), frame(0, t[1], fin=False),
                       frame(0, t[2])]
        ),
    ),
    max_size=12,
).map(lambda groups: b"".join(f for g in groups for f in g))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stream=_frames,
    cuts=st.lists(st.integers(min_value=0, max_value=5_000), max_size=20),
    full=st.lists(st.booleans(), max_size=20),
)
def test_same_messages_in_the_same_order_as_aiohttp_alone(
    stream: bytes, cuts: List[int], full: List[bool]
) -> None:
    async def check() -> None:
        want, want_end = await alone(stream, 1 << 20)
        got, got_end, prefilter = await prefiltered(stream, cuts, 1 << 20, full)
        assert _without_control(got) == _without_control(want)  # data: same bytes, same order
        assert _control(got) == _control(want)  # pings, pongs: all aiohttp's, in order
        assert got_end == want_end is None and prefilter.pending == 0

    asyncio.run(check())


async def test_a_64_bit_length_frame_split_anywhere() -> None:
    stream = frame(2, os.urandom(70_000)) + frame(1, b"next") + frame(9, b"ping")
    want, _ = await alone(stream, 0)
    for cuts in ([5], [1, 9, 10, 11], [20_000, 40_000, 70_009, 70_011]):
        got, end, _ = await prefiltered(stream, cuts, 0, [])
        assert got == want and end is None


@pytest.mark.parametrize(
    "bad,code",
    [
        (frame(1, b"x" * 200, mask=True), None),  # a masked server frame: aiohttp takes it
        (frame(1, b"x", rsv=0x40), 1002),  # RSV1 without a negotiated extension
        (frame(2, b"x" * 3000), 1009),  # over the size limit (aiohttp refuses size >= limit)
        (frame(1, b"x" * 2048), 1009),
        (frame(0, b"stray continuation"), 1002),
        (frame(9, b"p" * 126), 1002),  # a control frame over 125 bytes
    ],
)
async def test_unusual_and_oversized_frames_go_to_aiohttp(bad: bytes, code: Optional[int]) -> None:
    stream = frame(1, b"before") + bad + frame(1, b"after")
    want, want_end = await alone(stream, 2048)
    if code is not None:  # aiohttp fails the stream: nothing after the bad frame is routed
        assert want == [("data", b"before")] and want_end is not None
        assert want_end.endswith(f":{code}")
    else:
        assert len(want) == 3 and want_end is None
    for cuts in ([], [1], [len(stream) - 5], list(range(0, len(stream), 7))):
        got, got_end, _ = await prefiltered(stream, cuts, 2048, [])
        assert got == want and got_end == want_end


async def test_a_frame_cut_short_by_eof_reads_as_aiohttp_reads_it() -> None:
    whole = frame(1, b"a" * 500) + frame(2, b"b" * 300)
    for cut in (1, 3, 400, len(whole) - 1):
        queue = _queue(asyncio.get_running_loop())
        reader = _reader(queue, 0)
        reader.feed_data(whole[:cut])
        reader.feed_eof()
        want: List[Tuple[str, Any]] = []
        await _drain(queue, want)
        got, got_end, _ = await prefiltered(whole[:cut], [], 0, [], eof=True)
        assert got == want and got_end == await _outcome(queue) == "eof"


async def test_a_full_queue_sends_later_frames_through_aiohttp_until_the_reader_caught_up() -> None:
    stream = b"".join(frame(1, b"%d" % i) for i in range(6))
    queue = _queue(asyncio.get_running_loop())
    taken: List[bytes] = []
    room = [True, False]  # the second frame finds the context's queue full

    def take(payload: bytes) -> bool:
        ok = room.pop(0) if room else True
        if ok:
            taken.append(payload)
        return ok

    prefilter = AiohttpFramePrefilter(_reader(queue, 0), take, 0)
    prefilter.feed_data(stream[: len(stream) // 2])
    assert taken == [b"0"] and prefilter.pending >= 1  # "1" and what followed wait in aiohttp
    log: List[Tuple[str, Any]] = []
    await _drain(queue, log, prefilter)
    assert prefilter.pending == 0
    prefilter.feed_data(stream[len(stream) // 2 :])
    assert taken[0] == b"0" and [p for _, p in log] + taken[1:] == [b"%d" % i for i in range(1, 6)]
