"""An httpx transport that sends through one aiohttp session: aiohttp's compiled parser and pool.

httpx keeps its client and ``Response`` surface (what the official 4.2.0 client exposes); only
the wire goes through aiohttp, whose llhttp parser and connection pool cost a fraction of
httpcore/h11/anyio per request and per chunk, and whose pool takes a connection in O(1) however
many streams are open. aiohttp's exceptions become httpx's (``ConnectError``, ``ReadTimeout``,
``RemoteProtocolError``, ...), so the error mapping and retry rules see what httpx would raise.
"""

from __future__ import annotations

import asyncio
import functools
import io
import ssl
import weakref
from typing import Any, AsyncIterator, Dict, List, Optional, Tuple, Type

import aiohttp
import httpx
from yarl import URL

from .._client.runtime import ClosedWhenDropped, LoopRuntimes
from .._client.transport.aiohttp_body import BodyReader, own_read_timer
from .._client.transport.http_async import bounded

__all__ = ["AiohttpTransport", "AiohttpBody", "aiohttp_body", "KEEPALIVE_EXPIRY"]

#: Seconds an idle connection is kept for the next request (httpx's default expiry).
KEEPALIVE_EXPIRY = 5.0
# Request bodies above this go to aiohttp as a file (its limit for a bytes body: 1 MiB).
_LARGE_BODY = 1 << 20
#: ``Response.extensions`` key of the :class:`AiohttpBody` (read past httpx's iterators).
_BODY_KEY = "cartesia.aiohttp_body"
# aiohttp >= 3.10 tells a connect timeout from a read timeout by type; 3.9 only by message.
_CONNECT_TIMEOUT: Optional[Type[BaseException]] = getattr(aiohttp, "ConnectionTimeoutError", None)


def _timeout_error(exc: BaseException) -> Type[httpx.TimeoutException]:
    if _CONNECT_TIMEOUT is not None:
        return httpx.ConnectTimeout if isinstance(exc, _CONNECT_TIMEOUT) else httpx.ReadTimeout
    return httpx.ConnectTimeout if str(exc).startswith("Connection timeout") else httpx.ReadTimeout


def to_httpx_error(exc: BaseException, request: httpx.Request) -> BaseException:
    """httpx's exception for what aiohttp raised while sending ``request`` or reading its body
    (the message kept); anything else comes back unchanged."""
    if isinstance(exc, aiohttp.ServerTimeoutError):  # also an asyncio.TimeoutError
        kind: Type[httpx.TransportError] = _timeout_error(exc)
    elif isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS, TLS handshake or certificate
        kind = httpx.ConnectError
    elif isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientResponseError)):
        # The answer ended early or broke HTTP/1.1 (what h11 reports as a protocol error).
        kind = httpx.RemoteProtocolError
    elif isinstance(exc, (aiohttp.ClientConnectionError, OSError)):
        kind = httpx.ReadError
    elif isinstance(exc, aiohttp.ClientError):
        kind = httpx.TransportError
    else:
        return exc
    return kind(_message(exc), request=request)


def _message(exc: BaseException) -> str:
    # A body cut short reads "Response payload is not completed: <TransferEncodingError: 400,
    # message=...>" in aiohttp >= 3.9.4: llhttp's internal code looks like an HTTP status. Its
    # cause's message says what broke (older versions give no cause, only the first words).
    if isinstance(exc, aiohttp.ClientPayloadError):
        detail = getattr(exc.__cause__, "message", None)
        if not (isinstance(detail, str) and detail):
            detail = str(exc).split(": <", 1)[0] or "the server closed the connection early"
        return f"incomplete response body: {detail}"
    return str(exc) or type(exc).__name__


class AiohttpBody(httpx.AsyncByteStream):
    """A response body as aiohttp receives it: each read takes everything buffered at once.

    ``read`` returns what arrived without a wait when there is some (no timer, no task switch).
    Only a wait on an empty buffer counts towards the request's ``read`` limit, as in httpx,
    checked by one lazy timer (:class:`~cartesia._client.transport.aiohttp_body.BodyReader`).
    """

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request, limit: Optional[float]) -> None:
        self.request = request
        self._reader = BodyReader(response, functools.partial(_fixed, limit))

    async def read(self) -> bytes:
        """The next bytes of the body, ``b""`` at its end.

        Raises:
            httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError: as httpx would.
        """
        try:
            return await self._reader.read()
        except RuntimeError as exc:  # aiohttp's "Connection closed." (the client was closed)
            raise httpx.ReadError(str(exc), request=self.request) from None
        except Exception as exc:  # noqa: BLE001 - raised as httpx's
            raise to_httpx_error(exc, self.request) from None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            data = await self.read()
            if not data:
                return
            yield data

    def fail(self, error: BaseException) -> None:
        """End a wait on this body (now or later) with ``error``."""
        self._reader.fail(error)

    async def aclose(self) -> None:
        # A body read to its end already gave its connection back; any other is closed, as
        # what is left of it would be read by the next request on that connection.
        self._reader.close()


def _fixed(limit: Optional[float]) -> Optional[float]:
    return limit


class _NetworkStream:
    """The connection as httpcore's ``network_stream`` extension describes it (``get_extra_info``)."""

    _NAMES = {"client_addr": "sockname", "server_addr": "peername", "ssl_object": "ssl_object", "socket": "socket"}

    def __init__(self, transport: Optional[asyncio.BaseTransport]) -> None:
        self._transport = transport

    def get_extra_info(self, info: str) -> Any:
        name = self._NAMES.get(info)
        return self._transport.get_extra_info(name) if name is not None and self._transport is not None else None


def aiohttp_body(response: httpx.Response) -> Optional[AiohttpBody]:
    """The body of a response from :class:`AiohttpTransport` to read directly, or None (another
    transport, a content-encoded body that httpx must decode, or one httpx began to read)."""
    body = response.extensions.get(_BODY_KEY)
    if body is None or response.is_stream_consumed:
        return None
    if response.headers.get("content-encoding", "identity").lower() != "identity":
        return None
    return body if isinstance(body, AiohttpBody) else None


def _headers(request: httpx.Request) -> List[Tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw]


def _send_bound(limits: Dict[str, Optional[float]]) -> Optional[float]:
    """The longest a request may take to be answered: its connect, write and read limits.

    aiohttp bounds the connect and the wait for the headers itself, but has no write limit: a
    peer that stops reading the request body would hold the call for ever. The sum only cuts
    such a write short (the other two phases have their own, tighter timers); None when any of
    the three has no limit (httpx then puts none on that phase either).
    """
    connect, write, read = limits.get("connect"), limits.get("write"), limits.get("read")
    return None if connect is None or write is None or read is None else connect + write + read


def _timeout(limits: Dict[str, Optional[float]]) -> aiohttp.ClientTimeout:
    connect = limits.get("connect")
    # No pool wait to bound (the pool has no cap). aiohttp's read timer bounds the wait for the
    # answer's headers; the body then keeps its own (see AiohttpBody).
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=limits.get("read"))


def _new_session(ssl_context: ssl.SSLContext) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=0, ssl=ssl_context, keepalive_timeout=KEEPALIVE_EXPIRY)
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),  # httpx keeps the cookies
        auto_decompress=False,  # httpx decodes the body (it read Content-Encoding)
        skip_auto_headers=("Content-Type",),  # httpx's headers are sent as they are
        timeout=aiohttp.ClientTimeout(total=None),
    )


class AiohttpTransport(ClosedWhenDropped, httpx.AsyncBaseTransport):
    """Sends httpx requests through an ``aiohttp.ClientSession`` (one per event loop, opened on first use).

    Args:
        ssl_context: The TLS context of https requests (httpx's own, so certificates are
            checked as httpx would check them).

    The pool has no cap on connections (a streamed call holds one for its whole length);
    idle ones close after :data:`KEEPALIVE_EXPIRY`. Redirects, cookies and content decoding
    are left to httpx; proxies too (the client mounts httpx's transport for proxied URLs).
    """

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        # One session per event loop, closed inside its loop when that loop ends (as the v0
        # client's): a client kept across ``asyncio.run`` calls works in each of them.
        # The factory holds the TLS context, not the transport: a dropped client's transport
        # is collected while its loop runs, and its __del__ closes the sessions.
        self._loops = LoopRuntimes(functools.partial(_new_session, ssl_context))
        # Bodies still being read, failed when the session closes: aiohttp 3.9 drops a closed
        # connection's body without waking its reader, which then waits for its read limit.
        self._bodies: weakref.WeakSet[AiohttpBody] = weakref.WeakSet()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = await self._loops.get().session()
        content = await request.aread()  # in memory already (JSON, or a form of bytes)
        limits: Dict[str, Optional[float]] = request.extensions.get("timeout") or {}
        sent = session.request(
            request.method,
            URL(str(request.url), encoded=True),
            headers=_headers(request),
            # aiohttp warns that a large bytes body blocks the loop; as a file it is sent in
            # pieces (a voice clip to clone can be megabytes).
            data=(io.BytesIO(content) if len(content) > _LARGE_BODY else content) or None,
            allow_redirects=False,
            timeout=_timeout(limits),
        )
        try:
            response = await bounded(sent, _send_bound(limits))
        except Exception as exc:  # noqa: BLE001 - raised as httpx's
            if type(exc) in (TimeoutError, asyncio.TimeoutError):  # ours: the write phase stalled
                raise httpx.WriteTimeout("Timed out sending the request", request=request) from None
            raise to_httpx_error(exc, request) from None
        limit = limits.get("read")
        if limit is not None:
            own_read_timer(response)
        body = AiohttpBody(response, request, limit)
        if not response.content.at_eof():
            self._bodies.add(body)
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=body,
            extensions={
                "http_version": b"HTTP/%d.%d" % (response.version.major, response.version.minor)
                if response.version is not None
                else b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode("latin-1", "replace"),
                # The protocol outlives the connection's release (a body that came with the
                # headers is read to its end, and its connection is back in the pool already).
                "network_stream": _NetworkStream(getattr(getattr(response, "_protocol", None), "transport", None)),
                _BODY_KEY: body,
            },
        )

    async def aclose(self) -> None:
        bodies, self._bodies = list(self._bodies), weakref.WeakSet()
        for body in bodies:
            body.fail(httpx.ReadError("the client was closed before the end of this body", request=body.request))
        await self._loops.close()
