"""A fast path for simple websocket data frames in front of aiohttp's frame parser."""

from __future__ import annotations

from typing import Any, Callable, Tuple

from .ws_frame_head import FIN_BINARY, FIN_TEXT, FrameCut, frame_head

__all__ = ["AiohttpFramePrefilter", "install"]

_DATA_OPS = (1, 2)  # a text or binary frame starts a data message
_NOTHING: Tuple[bool, bytes] = (False, b"")


class AiohttpFramePrefilter(FrameCut):
    """Stands in for aiohttp's ``WebSocketReader`` on one connection's protocol.

    It cuts what the connection receives into frames. The payload of every *simple* frame (text
    or binary, FIN set, RSV bits 0, unmasked, below aiohttp's size limit) goes straight to
    ``take`` inside the protocol's ``data_received``; every other frame (pings, pongs, close,
    fragments, anything invalid or oversized) goes whole and in order to aiohttp's own parser,
    whose queue the socket's reader task reads with ``receive()``: autoping, the close handshake,
    heartbeats, close codes and protocol errors all stay aiohttp's.

    Order is kept: while a data message handed to aiohttp has not been taken off its queue by the
    reader task (``pending``, which the reader task lowers), data frames go to aiohttp too, behind
    it. ``take`` returns False when it cannot take a payload now (a full context queue): that
    frame then goes to aiohttp as well, and the reader task waits for room (backpressure: once
    aiohttp's queue is over its limit it stops reading the socket).

    Why: aiohttp's parser puts every frame on a queue that a reader task wakes up for, awaits
    ``receive()`` and routes from; taking the frame here saves that task's per-frame hand-over.
    """

    def __init__(self, inner: Any, take: Callable[[bytes], bool], max_size: int) -> None:
        super().__init__()
        self._inner = inner
        self._take = take
        self._limit = max_size if max_size > 0 else 1 << 63  # aiohttp refuses size >= its limit
        self.pending = 0  # data messages handed to aiohttp the reader task has not received yet
        self._passing = False  # aiohttp failed the stream: everything is its from here on
        self._result = _NOTHING

    # The two calls aiohttp's protocol makes on its payload parser.

    def feed_data(self, data: Any) -> Tuple[bool, bytes]:
        """One read from the network; returns what aiohttp's parser returned last (its error)."""
        if type(data) is not bytes:
            data = bytes(data)
        self._result = _NOTHING
        if self._passing:
            return self._slow(data)
        self._frames(data)
        return self._result

    def feed_eof(self) -> None:
        """The end of the stream: an incomplete frame goes to aiohttp first, so it reports the
        truncation exactly as without the prefilter."""
        pending = self._pending()
        self._passing = True
        if pending:
            self._slow(pending)
        self._inner.feed_eof()

    # Helpers.

    def _slow(self, data: bytes) -> Tuple[bool, bytes]:
        result: Tuple[bool, bytes] = self._inner.feed_data(data)
        if result[0]:
            self._passing = True  # aiohttp failed the stream (and the protocol drops us)
        self._result = result
        return result

    def _to_inner(self, frame: bytes, b0: int) -> None:
        """A whole frame (or its start) for aiohttp, counted when it starts a data message."""
        if b0 & 0x0F in _DATA_OPS:
            self.pending += 1
        self._slow(frame)

    def _simple(self, frame_head: bytes, payload: bytes) -> None:
        if self.pending or not self._take(payload):
            self._to_inner(frame_head + payload, frame_head[0])

    # The frame cutter (the hot path: one call per network read).

    def _frames(self, data: bytes) -> None:
        pos = 0
        if self._slow_left:  # the rest of a frame aiohttp is parsing
            left = self._slow_left
            if len(data) < left:
                self._slow_left = left - len(data)
                self._slow(data)
                return
            self._slow_left = 0
            self._slow(data[:left])
            if self._passing:
                if len(data) > left:
                    self._slow(data[left:])
                return
            pos = left
        elif self._need:  # the rest of a simple frame
            need = self._need
            if len(data) < need:
                self._pieces.append(data)
                self._need = need - len(data)
                return
            self._pieces.append(memoryview(data)[:need])
            head, payload = self._part_head, b"".join(self._pieces)
            self._part_head, self._pieces, self._need = b"", [], 0
            self._simple(head, payload)
            pos = need
        elif self._head:
            data, self._head = self._head + data, b""
        limit, n = self._limit, len(data)
        while pos < n:
            if self._passing:
                self._slow(data[pos:])
                return
            header = frame_head(data, pos)
            if header is None:  # the read ends inside this frame's header
                self._head = data[pos:]
                return
            b0, b1, size, hdr = header
            if (b0 == FIN_TEXT or b0 == FIN_BINARY) and b1 < 0x80 and size < limit:
                start = pos + hdr
                end = start + size
                if end <= n:
                    payload = data[start:end]
                    if self.pending or not self._take(payload):
                        self._to_inner(data[pos:end], b0)
                    pos = end
                    continue
                self._part_head = data[pos:start]
                self._pieces = [memoryview(data)[start:]]
                self._need = end - n
                return
            # Any other frame: aiohttp's, as soon as its length is known (so an oversized one
            # fails at once, as it would without us); the rest of it follows in order.
            end = pos + hdr + size + (4 if b1 & 0x80 else 0)
            if end > n:
                self._slow_left = end - n
                self._to_inner(data[pos:], b0)
                return
            self._to_inner(data[pos:end], b0)
            pos = end


def install(ws: Any, take: Callable[[bytes], bool], max_size: int) -> Any:
    """Put a prefilter in front of the parser of aiohttp websocket ``ws``; returns it, or None
    when this aiohttp's connection does not look as expected (then aiohttp parses everything)."""
    try:
        from aiohttp.http import WebSocketReader
    except ImportError:  # pragma: no cover - every supported aiohttp has it
        return None
    conn = getattr(ws, "_conn", None)
    proto: Any = getattr(conn, "protocol", None)
    inner = getattr(proto, "_payload_parser", None)
    if proto is None or not isinstance(inner, WebSocketReader) or getattr(ws, "compress", False):
        return None
    prefilter = AiohttpFramePrefilter(inner, take, max_size)
    proto._payload_parser = prefilter
    return prefilter
