"""Read timeouts per connection: a request's headers and body must arrive in bounded time."""

from __future__ import annotations

import asyncio
import json
from typing import Awaitable, Callable, Optional, cast

from aiohttp import StreamReader, web

__all__ = ["BodyTimeout", "GuardedConnection", "closing", "track_requests"]

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BodyTimeout(asyncio.TimeoutError):
    """The request body did not arrive within the body timeout (answered 408).

    A ``TimeoutError``: aiohttp then stops waiting for the rest of the body after the answer and
    closes the connection instead of logging an error.
    """


def closing(response: web.Response) -> web.Response:
    """``response`` (the 408 answer to a :class:`BodyTimeout`) with the connection closed after it:
    the rest of the body may still come and must never be read as the next request."""
    response.force_close()
    return response


def _raw_408(message: str) -> bytes:
    body = json.dumps({"error": message, "status_code": 408}).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class GuardedConnection(asyncio.Protocol):
    """Wraps aiohttp's protocol for one connection and enforces the header and body timeouts.

    * Headers: from the start of the connection, or from the first byte after a finished
      request, the headers must be complete within ``header_timeout``; otherwise a connection
      that sent something is answered 408, a silent one just closed.
    * Body: once the headers are in, the body must be complete within ``body_timeout``; a
      handler still reading it then gets :class:`BodyTimeout` (a 408 answer, then close).
    * Idle keep-alive connections are closed by aiohttp itself (``keepalive_timeout``).

    Requests are seen through :func:`track_requests`, the application's outermost middleware.

    Args:
        inner: aiohttp's protocol for this connection (``runner.server()``).
        header_timeout: Seconds.
        body_timeout: Seconds.
    """

    def __init__(self, inner: asyncio.Protocol, header_timeout: float, body_timeout: float) -> None:
        self.inner = inner
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.transport: Optional[asyncio.Transport] = None
        self._loop = asyncio.get_running_loop()
        self._awaiting_headers = True
        self._received = 0  # bytes since the connection became idle
        self._active: Optional[web.BaseRequest] = None
        self._body_pending = False
        self._header_timer: Optional[asyncio.TimerHandle] = None
        self._body_timer: Optional[asyncio.TimerHandle] = None

    # --- asyncio.Protocol, forwarded to aiohttp ----------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream server (loop.create_server) always hands its protocols a full Transport.
        self.transport = cast(asyncio.Transport, transport)
        self._arm_headers()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self._awaiting_headers and self._active is None and not self._body_pending:
            # The first byte of the next request on a kept-alive connection.
            self._awaiting_headers = True
            self._arm_headers()
        if self._awaiting_headers:
            self._received += len(data)
        self.inner.data_received(data)

    def eof_received(self) -> Optional[bool]:
        return self.inner.eof_received()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._cancel_timers()
        self._active = None
        self.inner.connection_lost(exc)
        # Before Python 3.11 a TLS transport whose peer went away is never marked closed (the old
        # asyncio sslproto), and warns "unclosed transport" when collected. Closing it now is a
        # no-op for the socket, which is gone, and ends that.
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    # --- request lifecycle (from the middleware) ---------------------------------------------

    def request_started(self, request: web.BaseRequest) -> None:
        """The headers of ``request`` are in: stop the header clock, start the body clock."""
        self._awaiting_headers = False
        self._received = 0
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        self._active = request
        content = request.content
        if not content.is_eof():
            self._body_pending = True
            self._body_timer = self._loop.call_later(
                self.body_timeout, self._body_expired, content
            )
            content.on_eof(self._body_done)

    def request_finished(self, request: web.BaseRequest) -> None:
        """The handler of ``request`` returned (its body may still be arriving)."""
        if self._active is request:
            self._active = None

    # --- timers ------------------------------------------------------------------------------

    def _arm_headers(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._received = 0
        self._header_timer = self._loop.call_later(self.header_timeout, self._headers_expired)

    def _headers_expired(self) -> None:
        self._header_timer = None
        transport = self.transport
        if not self._awaiting_headers or transport is None or transport.is_closing():
            return
        if self._received:
            message = f"request headers not received within {self.header_timeout:g} s"
            transport.write(_raw_408(message))
        transport.close()

    def _body_done(self) -> None:
        self._body_pending = False
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_expired(self, content: StreamReader) -> None:
        self._body_timer = None
        if not self._body_pending:
            return
        self._body_pending = False
        message = f"request body not received within {self.body_timeout:g} s"
        content.set_exception(BodyTimeout(message))

    def _cancel_timers(self) -> None:
        for timer in (self._header_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = None


def guard_of(request: web.BaseRequest) -> Optional[GuardedConnection]:
    """The guard of the connection ``request`` came on (``None`` if it is not guarded)."""
    transport = request.transport
    if transport is None:
        return None
    protocol = transport.get_protocol()
    return protocol if isinstance(protocol, GuardedConnection) else None


@web.middleware
async def track_requests(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Outermost middleware: tells the connection's guard when a request starts and ends."""
    guard = guard_of(request)
    if guard is None:
        return await handler(request)
    guard.request_started(request)
    try:
        return await handler(request)
    finally:
        guard.request_finished(request)
