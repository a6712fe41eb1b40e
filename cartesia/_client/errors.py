"""The one mapping from transport exceptions, error statuses and error frames to typed errors.

Every message built here goes through :func:`~cartesia._client.redact.redact`, and the library
exception is never chained onto ours (its repr may carry the request URL, hence the key).
"""

from __future__ import annotations

import asyncio
import email.utils
import http.client
import json
import socket
import time
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Protocol, Type

import aiohttp
import httpx
import websockets.exceptions as wsx

from ..errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    CartesiaConnectionError,
    CartesiaError,
    CartesiaTimeoutError,
    ConflictError,
    ConnectTimeoutError,
    GenerationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnprocessableEntityError,
    WebSocketClosedError,
)
from ..protocol.events import ErrorFrame
from .redact import redact

__all__ = [
    "Where",
    "map_exception",
    "status_error",
    "frame_error",
    "closed_error",
    "parse_retry_after",
    "server_message",
    "should_retry_header",
]

# aiohttp >= 3.10 tells a connect timeout from a read timeout by type.
_AIOHTTP_CONNECT_TIMEOUT: Any = getattr(aiohttp, "ConnectionTimeoutError", None)
_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "cartesia-request-id", "x-cartesia-request-id")


class _Clock(Protocol):
    def total_left(self) -> Optional[float]: ...

    def expired(self) -> CartesiaTimeoutError: ...


@dataclass
class Where:
    """What a call was doing, for the messages of the errors it raises.

    Attributes:
        what: The 0.0.5 prefix of the operation (``"Failed to generate audio. "``).
        url: The URL (redacted before use).
        secret: The API key.
        connect_timeout: The connect limit, named in a connect timeout's message.
        deadline: The call's deadline: a read that timed out raises the typed timeout of the
            phase that ran out, and a connect cut short by the total limit a total timeout.
        connecting: The exception happened while connecting (a timeout then is a connect one).
    """

    what: str
    url: str
    secret: Optional[str]
    connect_timeout: Optional[float] = None
    deadline: Optional[_Clock] = None
    connecting: bool = False

    def connect_timeout_error(self) -> CartesiaTimeoutError:
        left = self.deadline.total_left() if self.deadline is not None else None
        if self.deadline is not None and left is not None and left <= 1e-3:
            return self.deadline.expired()
        return ConnectTimeoutError(
            f"Connecting to {redact(self.url, self.secret)} took longer than "
            f"{self.connect_timeout} s."
        )

    def read_timeout_error(self, exc: BaseException) -> CartesiaTimeoutError:
        if self.deadline is not None:
            return self.deadline.expired()
        return CartesiaTimeoutError(
            f"The server did not answer in time: {redact(str(exc), self.secret)}"
        )

    def connection_error(self, exc: BaseException) -> CartesiaConnectionError:
        detail = redact(str(exc) or type(exc).__name__, self.secret)
        return CartesiaConnectionError(f"{self.what}The connection failed: {detail}")


def map_exception(exc: BaseException, where: Where) -> BaseException:
    """Our typed error for anything a transport raised (our own errors pass through)."""
    if isinstance(exc, CartesiaError):
        return exc
    # httpx
    if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return where.connect_timeout_error()
    if isinstance(exc, httpx.TimeoutException):
        return where.read_timeout_error(exc)
    if isinstance(exc, httpx.TransportError):
        return where.connection_error(exc)
    # aiohttp
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        return status_error(
            exc.status,
            exc.message,
            prefix=where.what,
            headers=_dict(exc.headers),
            secret=where.secret,
        )
    if _AIOHTTP_CONNECT_TIMEOUT is not None and isinstance(exc, _AIOHTTP_CONNECT_TIMEOUT):
        return where.connect_timeout_error()
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return where.connect_timeout_error() if where.connecting else where.read_timeout_error(exc)
    # websockets
    if isinstance(exc, wsx.InvalidStatus):
        response = exc.response
        body = response.body.decode("utf-8", "replace") if response.body else ""
        return status_error(
            response.status_code,
            body or (response.reason_phrase or ""),
            prefix=where.what,
            headers=dict(response.headers.raw_items()),
            secret=where.secret,
        )
    if isinstance(exc, wsx.ConnectionClosed):
        rcvd = exc.rcvd
        if rcvd is None:
            return closed_error(1006, "", where.secret)
        return closed_error(rcvd.code, rcvd.reason, where.secret)
    # the standard library (asyncio.TimeoutError is TimeoutError from 3.11 on, socket.timeout
    # from 3.10 on: before, a socket's connect or TLS handshake timeout is only an OSError)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, socket.timeout)):
        return where.connect_timeout_error() if where.connecting else where.read_timeout_error(exc)
    if isinstance(exc, (wsx.InvalidHandshake, wsx.InvalidURI)):
        return where.connection_error(exc)
    if isinstance(exc, (aiohttp.ClientError, OSError, http.client.HTTPException)):
        return where.connection_error(exc)
    return exc


def _dict(headers: Any) -> Optional[Dict[str, str]]:
    return dict(headers) if headers else None


def parse_retry_after(headers: Optional[Mapping[str, str]]) -> Optional[float]:
    """Seconds to wait according to ``retry-after-ms`` / ``retry-after``, or ``None``.

    Accepts both forms of ``Retry-After``: delta seconds and an HTTP date.
    """
    if not headers:
        return None
    value = _header(headers, "retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = _header(headers, "retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _header(headers: Mapping[str, str], name: str) -> Optional[str]:
    value = headers.get(name)
    if value is None:
        # Plain dicts are case-sensitive; HTTP header names are not.
        for key, candidate in headers.items():
            if key.lower() == name:
                return candidate
    return value


def server_message(text: str) -> str:
    """The human part of an error body (``message``/``error``/``detail`` of JSON), or the text."""
    try:
        body = json.loads(text)
    except (TypeError, ValueError):
        return text
    if isinstance(body, dict):
        for key in ("message", "error", "detail", "title"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if value:
                return json.dumps(value)
    return text


def _request_id(headers: Optional[Mapping[str, str]], text: str) -> Optional[str]:
    if headers:
        for name in _REQUEST_ID_HEADERS:
            value = _header(headers, name)
            if value:
                return value
    try:
        body = json.loads(text)
    except (TypeError, ValueError):
        return None
    if isinstance(body, dict) and isinstance(body.get("request_id"), str):
        return str(body["request_id"])
    return None


def status_error(
    status: int,
    text: str,
    *,
    prefix: str,
    headers: Optional[Mapping[str, str]] = None,
    secret: Optional[str] = None,
) -> APIStatusError:
    """The typed error of a failed HTTP response or websocket handshake.

    Every error carries the answer's retry hints for :class:`~cartesia._client.retry.RetryPolicy`:
    ``retry_after`` (seconds, from ``retry-after-ms``/``Retry-After``) and ``should_retry``
    (``x-should-retry``), each None when the server sent none.

    Args:
        status: HTTP status code.
        text: Response body as text (the server's message; kept whole, as 0.0.5 did).
        prefix: The 0.0.5 message prefix, e.g. ``"Failed to get voices. Error: "``.
        headers: Response headers (for ``Retry-After`` and the request id).
        secret: The API key, scrubbed from the message in case the server echoed it.
    """
    text = redact(text or "", secret)
    message = f"{prefix}{text}"
    request_id = _request_id(headers, text)
    cls: Type[APIStatusError] = APIStatusError
    if status == 429:
        cls = RateLimitError
    elif status == 422:
        cls = UnprocessableEntityError
    elif status in (400, 413):
        cls = BadRequestError
    elif status == 403:
        cls = PermissionDeniedError
    elif status == 401:
        cls = AuthenticationError
    elif status == 409:
        cls = ConflictError
    elif status == 404:
        cls = NotFoundError
    elif status >= 500:
        cls = ServerError
    error = cls(message, status_code=status, request_id=request_id, body=_body(text))
    error.retry_after = parse_retry_after(headers)  # type: ignore[attr-defined]
    error.should_retry = should_retry_header(headers)  # type: ignore[attr-defined]
    return error


def should_retry_header(headers: Optional[Mapping[str, str]]) -> Optional[bool]:
    """The server's ``x-should-retry: true|false`` (it overrides the status rule), else None."""
    value = _header(headers, "x-should-retry") if headers else None
    if value is None:
        return None
    value = value.strip().lower()
    return True if value == "true" else False if value == "false" else None


def _body(text: str) -> Any:
    """The decoded JSON error body, else its text (None when empty): the ``.body`` of 4.2.0."""
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def frame_error(
    frame: ErrorFrame, context_id: Optional[str], secret: Optional[str]
) -> GenerationError:
    """The error of a websocket/stream frame that carries ``error``."""
    return GenerationError(
        f"Failed to generate audio. {redact(frame.message, secret)}",
        status_code=frame.status_code,
        context_id=context_id,
        request_id=frame.request_id,
    )


def closed_error(code: Optional[int], reason: str, secret: Optional[str]) -> WebSocketClosedError:
    """The error of a websocket that closed under a running generation."""
    reason = redact(reason or "", secret)
    detail = f" ({reason})" if reason else ""
    return WebSocketClosedError(
        f"Failed to generate audio. The websocket closed with code {code}{detail}.",
        code=code,
        reason=reason,
    )
