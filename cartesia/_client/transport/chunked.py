"""The body of a chunked HTTP/1.1 response, read straight off its open socket in large reads.

httpx opens the connection, sends the request and parses the headers; for a streamed generation
the body is then read here: one ``recv_into`` of up to 128 KiB hands its data pieces, as views on
one reused buffer, to the caller, instead of one h11 event, one ``bytes`` and a dozen Python
calls per HTTP chunk. The framing is checked as strictly as h11 does (sizes in hex, the CRLF
after each chunk's data, trailers up to the empty line); a violation or a body cut short raises
the httpx exception h11 would have led to, so the client's error mapping is unchanged.
"""

from __future__ import annotations

import re
import select
import socket
import ssl
import time
from typing import Any, List, Optional

import httpx

__all__ = ["ChunkedBody", "READ_SIZE"]

#: Bytes asked of the socket per read (the kernel hands over what it has, up to this). A
#: loopback read of a fast stream returns 55-90 kB, so more buys little; the buffer lives as
#: long as the generation, and 100 sync streams hold 100 of them.
READ_SIZE = 128 * 1024
_MAX_LINE = 4096  # a size or trailer line longer than this is not HTTP we can trust
_CRLF = b"\r\n"
# A chunk size in hex, then optional extensions (ignored), as h11 accepts them.
_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?")
# Parser states.
_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)
# A non-blocking read found nothing to take (a TLS socket may also lack a whole record).
_EMPTY = (BlockingIOError, ssl.SSLWantReadError)
#: Without ``select.poll`` (Windows) every read waits through the socket's own timeout.
_POLL = hasattr(select, "poll")


class ChunkedBody:
    """Decodes one chunked body from ``sock``, starting with the bytes already read past the
    headers.

    Args:
        sock: The connection's socket (plain or ``ssl.SSLSocket``).
        first: Body bytes that arrived with the headers.
        buffer: The read buffer to use (at least :data:`READ_SIZE` bytes; the bodies of one
            connection, read one after the other, can share one), else a new one.
    """

    def __init__(self, sock: Any, first: bytes, buffer: Optional[bytearray] = None) -> None:
        self._sock = sock
        if buffer is None or len(buffer) < max(READ_SIZE, len(first)):
            buffer = bytearray(max(READ_SIZE, len(first)))
        self._buf = buffer
        self._view = memoryview(self._buf)
        self._first: Optional[bytes] = first
        self._state = _SIZE
        self._left = 0  # data bytes left in the current chunk (or CRLF bytes after it)
        self._line = b""  # the start of a line split across reads
        self._poll: Any = None  # the socket's poll object, made on the first wait
        #: Bytes received after the end of the body (none from a well-behaved server).
        self.extra = b""

    @property
    def done(self) -> bool:
        """The whole body, its last chunk and trailers included, was read."""
        return self._state == _DONE

    def read(self, timeout: Optional[float]) -> List[memoryview]:
        """The data pieces of the next socket read; an empty list once the body is complete.

        The views are valid until the next call (the buffer is reused).

        Raises:
            httpx.ReadTimeout: Nothing arrived within ``timeout`` seconds.
            httpx.ReadError: The socket failed.
            httpx.RemoteProtocolError: The framing is broken or the body was cut short.
        """
        out: List[memoryview] = []
        while not out and self._state != _DONE:
            first = self._first
            if first is not None:
                self._first = None
                n = len(first)
                self._buf[:n] = first
            else:
                n = self._recv(timeout)
            self._parse(n, out)
        return out

    def _recv(self, timeout: Optional[float]) -> int:
        sock = self._sock
        try:
            if self._poll is None or not _POLL:
                n = self._first_recv(timeout)
            else:
                try:
                    # What the socket already holds is taken in one system call; a socket
                    # with a timeout would poll and recv (two), after a mode switch (three).
                    n = sock.recv_into(self._view)
                except ssl.SSLWantWriteError:  # TLS must write first (a key update)
                    n = self._wait_recv(timeout, select.POLLOUT)
                except _EMPTY:
                    n = self._wait_recv(timeout, select.POLLIN)
        except socket.timeout as exc:  # TimeoutError from 3.10 on; an OSError before
            raise httpx.ReadTimeout(str(exc) or "timed out") from None
        except OSError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__) from None
        if not n:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body: "
                "incomplete chunked read"
            )
        return n

    def _first_recv(self, timeout: Optional[float]) -> int:
        # The body's first read off the socket (every read without poll): through the socket's
        # own timeout. With poll, the socket then stays non-blocking for the rest of the body:
        # httpcore sets its own timeout again before it uses the connection next.
        sock = self._sock
        sock.settimeout(timeout)
        n: int = sock.recv_into(self._view)
        if _POLL:
            sock.settimeout(0.0)
            self._poll = select.poll()
            self._poll.register(sock.fileno(), select.POLLIN)
            self._want = select.POLLIN
        return n

    def _wait_recv(self, timeout: Optional[float], want: int) -> int:
        # Nothing to read yet: wait until the socket is ready (`want`), within `timeout` overall.
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                raise socket.timeout("timed out")
            if want != self._want:
                self._poll.modify(self._sock.fileno(), want)
                self._want = want
            # poll takes milliseconds; rounding up never wakes before the limit.
            if not self._poll.poll(None if left is None else int(left * 1000) + 1):
                continue  # the loop raises the timeout once `end` has passed
            try:
                n: int = self._sock.recv_into(self._view)
                return n
            except ssl.SSLWantWriteError:
                want = select.POLLOUT
            except _EMPTY:  # readable, yet not a whole TLS record: wait for the rest
                want = select.POLLIN

    def _parse(self, n: int, out: List[memoryview]) -> None:
        # The common case (whole size lines, data, CRLFs in this read) runs on locals; a line or
        # CRLF split across reads carries over in `_line` / `_left`.
        buf, view = self._buf, self._view
        state, left = self._state, self._left
        i = 0
        try:
            while i < n:
                if state == _DATA:
                    end = i + left
                    if end > n:
                        out.append(view[i:n])
                        left -= n - i
                        return
                    out.append(view[i:end])
                    i, state, left = end, _DATA_END, 2
                elif state == _DATA_END:
                    # The CRLF after a chunk's data.
                    while left and i < n:
                        if buf[i] != _CRLF[2 - left]:
                            raise httpx.RemoteProtocolError(
                                "malformed chunked body: no CRLF after a chunk's data"
                            )
                        i += 1
                        left -= 1
                    if not left:
                        state = _SIZE
                elif state == _DONE:
                    self.extra += bytes(view[i:n])
                    return
                else:  # a size line or a trailer line
                    carried = self._line
                    if carried.endswith(b"\r") and buf[i] == 10:
                        # The line's CRLF was split between two reads.
                        line: Any = carried[:-1]
                        start, stop = 0, len(line)
                        self._line = b""
                        i += 1
                    else:
                        j = buf.find(_CRLF, i, n)
                        if j < 0:
                            self._line += bytes(view[i:n])
                            if len(self._line) > _MAX_LINE:
                                raise httpx.RemoteProtocolError(
                                    "malformed chunked body: line too long"
                                )
                            return
                        if carried:
                            line = carried + bytes(view[i:j])
                            start, stop = 0, len(line)
                            self._line = b""
                        else:
                            line, start, stop = buf, i, j
                        i = j + 2
                    if state == _TRAILER:
                        if stop == start:
                            state = _DONE  # the empty line after the trailers
                        elif stop - start > _MAX_LINE:
                            raise httpx.RemoteProtocolError("malformed chunked body: trailer too long")
                        continue
                    match = _SIZE_LINE.fullmatch(line, start, stop)
                    if match is None:
                        raise httpx.RemoteProtocolError(
                            f"malformed chunked body: bad chunk size line {bytes(line[start:stop])[:40]!r}"
                        )
                    left = int(match.group(1), 16)
                    state = _DATA if left else _TRAILER
        finally:
            self._state, self._left = state, left
