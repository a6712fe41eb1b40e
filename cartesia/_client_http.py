"""Turns an HTTP error status (or a websocket error frame) into the package's typed exceptions."""

import email.utils
import json
import time
from typing import Any, Mapping, Optional

from .errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    GenerationError,
    NotFoundError,
    RateLimitError,
    ServerError,
)
from ._client_urls import redact

__all__ = ["status_error", "parse_retry_after", "server_message", "frame_error"]

_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "cartesia-request-id", "x-cartesia-request-id")


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
    """The human part of an error body: ``detail``/``message``/``error`` of a JSON body, or the text."""
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
        return body["request_id"]
    return None


def status_error(
    status: int,
    text: str,
    *,
    prefix: str,
    headers: Optional[Mapping[str, str]] = None,
    secret: Optional[str] = None,
) -> APIStatusError:
    """Build the typed error for a failed HTTP response.

    Args:
        status: HTTP status code.
        text: Response body as text (the server's message; kept whole, as 0.0.5 did).
        prefix: The 0.0.5 message prefix, e.g. ``"Failed to get voices. Error: "``.
        headers: Response headers (for ``Retry-After`` and the request id).
        secret: The API key, scrubbed from the message in case the server echoed it.
    """
    text = redact(text or "", secret)
    message = f"{prefix}{text}"
    kwargs: dict = {"status_code": status, "request_id": _request_id(headers, text)}
    if status == 429:
        return RateLimitError(message, retry_after=parse_retry_after(headers), **kwargs)
    if status in (400, 413, 422):
        return BadRequestError(message, **kwargs)
    if status in (401, 403):
        return AuthenticationError(message, **kwargs)
    if status == 404:
        return NotFoundError(message, **kwargs)
    if status >= 500:
        return ServerError(message, **kwargs)
    return APIStatusError(message, **kwargs)


def frame_error(
    fields: Mapping[str, Any], context_id: Optional[str], secret: Optional[str]
) -> GenerationError:
    """Build the error for a websocket/stream frame that carries ``error``."""
    error = fields.get("error")
    if not isinstance(error, str):
        error = fields.get("message") or json.dumps(error)
    status = fields.get("status_code")
    request_id = fields.get("request_id")
    return GenerationError(
        f"Failed to generate audio. {redact(str(error), secret)}",
        status_code=status if isinstance(status, int) else None,
        context_id=context_id,
        request_id=request_id if isinstance(request_id, str) else None,
    )
