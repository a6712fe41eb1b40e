"""A fast path for simple websocket data frames in front of the websockets library's frame parser."""

from __future__ import annotations

from typing import Any

from websockets.protocol import State

from .ws_frame_head import FIN_BINARY, FIN_TEXT, FrameCut, frame_head

__all__ = ["FramePrefilter"]

_OPEN, _CONNECTING = State.OPEN, State.CONNECTING
# What the prefilter does with the bytes it receives.
_HANDSHAKE = 0  # the library parses the HTTP answer; frames start right after its blank line
_FRAMES = 1  # simple data frames are taken out here, every other frame goes to the library whole
_PASS = 2  # everything goes to the library (closing, closed, extensions, debug logging)


class FramePrefilter(FrameCut):
    """Takes the simple data frames out of what a websockets sans-I/O protocol receives.

    Installed on one protocol object (its ``receive_data`` and ``receive_eof``, per instance), it
    cuts the incoming bytes into frames. A *simple* frame (text or binary, FIN set, RSV bits 0,
    unmasked, payload within the protocol's size limit, while the protocol is OPEN and not in the
    middle of a fragmented message) becomes its payload (``bytes``), appended to the protocol's
    event list in its place, so the connection processes it in order with the library's events.
    Every other frame goes whole and in order to the library's own ``receive_data``, which
    therefore always sees frame boundaries and keeps all its rules: pongs, close codes, protocol
    errors, the size limit (1009 as soon as an oversized header is in). Once the protocol leaves
    OPEN (a close frame, a failure, our close), everything goes to the library.

    Why: the library's generator-based parser and its buffer copies cost ~20 µs of CPU per
    23.6 kB frame, four times what cutting the frame out here costs (mostly the payload copy).
    """

    def __init__(self, protocol: Any) -> None:
        super().__init__()
        self.protocol = protocol
        self._receive_data = protocol.receive_data
        self._receive_eof = protocol.receive_eof
        # websockets 13 names the limit and the fragment size differently from 14+.
        self._v13 = not hasattr(protocol, "max_message_size")
        self._limit = 0
        self._fast = False  # simple frames may be taken out right now (not inside a fragmented message)
        self._tail = b""  # the handshake answer's last 3 bytes so far (its blank line may be split)
        self._mode = _HANDSHAKE
        if protocol.state is not _CONNECTING:
            self._start()
        protocol.receive_data = self.receive_data
        protocol.receive_eof = self.receive_eof

    # The protocol's two entry points.

    def receive_data(self, data: bytes) -> None:
        """The protocol's ``receive_data``: one read from the network."""
        mode = self._mode
        if mode == _FRAMES:
            self._frames(data)
        elif mode == _PASS:
            self._receive_data(data)
        else:
            self._handshake(data)

    def receive_eof(self) -> None:
        """The protocol's ``receive_eof``: a partial frame left over goes to the library first, so
        it reports the truncation exactly as without the prefilter."""
        if self._mode == _FRAMES:
            pending = self._pending()
            self._mode = _PASS
            if pending:
                self._receive_data(pending)
        self._receive_eof()

    # Modes.

    def _handshake(self, data: bytes) -> None:
        joined = self._tail + data
        at = joined.find(b"\r\n\r\n")
        if at < 0:
            self._tail = joined[-3:]
            self._receive_data(data)
            return
        cut = at + 4 - len(self._tail)  # a 101 answer has no body: frames start here
        self._receive_data(data[:cut])
        rest = data[cut:]
        if self._start():
            if rest:
                self._frames(rest)
        elif rest:
            self._receive_data(rest)

    def _start(self) -> bool:
        """At a frame boundary after the handshake: take frames out, or leave all to the library."""
        p = self.protocol
        if p.state is not _OPEN or p.extensions or p.debug:  # debug: keep the library's frame logs
            self._mode = _PASS
            return False
        if self._v13:
            limits = [p.max_size]
        else:
            limits = [p.max_message_size, p.max_fragment_size]
        known = [n for n in limits if n is not None]
        self._limit = min(known) if known else 1 << 63
        self._mode = _FRAMES
        return self._after_slow()

    def _after_slow(self) -> bool:
        """After the library parsed a whole frame: go on, or (it left OPEN) leave all to it."""
        p = self.protocol
        if p.state is not _OPEN:
            self._mode = _PASS
            return False
        self._fast = (p.cur_size if self._v13 else p.current_size) is None
        return True

    def _give_up(self, data: bytes) -> None:
        """Hand the library everything from the last frame boundary on, and all that follows."""
        self._mode = _PASS
        self._receive_data(self._pending() + data)

    # The frame cutter (the hot path: one call per network read).

    def _frames(self, data: bytes) -> None:
        pos = 0
        if self._slow_left:  # the rest of a frame the library is parsing
            left = self._slow_left
            if len(data) < left:
                self._slow_left = left - len(data)
                self._receive_data(data)
                return
            self._slow_left = 0
            self._receive_data(data[:left])
            if not self._after_slow():
                if len(data) > left:
                    self._receive_data(data[left:])
                return
            pos = left
        elif self.protocol.state is not _OPEN:  # we started the closing handshake meanwhile
            self._give_up(data)
            return
        elif self._need:  # the rest of a simple frame
            need = self._need
            if len(data) < need:
                self._pieces.append(data)
                self._need = need - len(data)
                return
            self._pieces.append(memoryview(data)[:need])
            self.protocol.events.append(b"".join(self._pieces))
            self._part_head, self._pieces, self._need = b"", [], 0
            pos = need
        elif self._head:
            data, self._head = self._head + data, b""
        events = self.protocol.events
        fast, limit, n = self._fast, self._limit, len(data)
        while pos < n:
            header = frame_head(data, pos)
            if header is None:  # the read ends inside this frame's header
                self._head = data[pos:]
                return
            b0, b1, size, hdr = header
            if fast and (b0 == FIN_TEXT or b0 == FIN_BINARY) and b1 < 0x80 and size <= limit:
                end = pos + hdr + size
                if end <= n:
                    events.append(data[pos + hdr : end])
                    pos = end
                    continue
                self._part_head = data[pos : pos + hdr]
                self._pieces = [memoryview(data)[pos + hdr :]]
                self._need = end - n
                return
            # Any other frame: the library's, as soon as its length is known (so an oversized
            # one fails at once, as it would without us); the rest of it follows in order.
            end = pos + hdr + size + (4 if b1 & 0x80 else 0)
            if end > n:
                self._slow_left = end - n
                self._receive_data(data[pos:])
                return
            self._receive_data(data[pos:end])
            pos = end
            if not self._after_slow():
                if pos < n:
                    self._receive_data(data[pos:])
                return
            fast = self._fast

