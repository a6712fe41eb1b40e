"""Errors of the current API: one exception, shaped per version as a JSON body or a websocket frame."""

from __future__ import annotations

import json
import uuid
from typing import Any, Dict, Mapping, Optional

from aiohttp import web

__all__ = ["ApiError", "error_body", "error_response", "error_frame", "new_request_id", "DOC_URL"]

DOC_URL = "https://docs.cartesia.ai/api-reference/errors"

#: Default title and error code per status (the 2026-03-01 body needs both).
_DEFAULTS: Dict[int, tuple[str, str]] = {
    400: ("Bad Request", "invalid_request"),
    401: ("Unauthorized", "unauthorized"),
    402: ("Payment Required", "payment_required"),
    403: ("Forbidden", "forbidden"),
    404: ("Not Found", "not_found"),
    405: ("Method Not Allowed", "method_not_allowed"),
    408: ("Request Timeout", "request_timeout"),
    409: ("Conflict", "conflict"),
    413: ("Payload Too Large", "payload_too_large"),
    422: ("Unprocessable Entity", "invalid_request"),
    429: ("Too Many Requests", "rate_limited"),
    500: ("Internal Server Error", "internal_error"),
    503: ("Service Unavailable", "service_unavailable"),
}
#: Statuses worth retrying; every other error answer says ``x-should-retry: false``.
_RETRYABLE = frozenset({408, 409, 429, 500, 502, 503, 504})


class ApiError(Exception):
    """A request the current API refuses.

    Attributes:
        status: HTTP status (also the ``status_code`` of SSE/websocket error events).
        message: What is wrong, naming the field; never contains a key.
        title: Short title (2026-03-01 bodies).
        error_code: Machine-readable code such as ``concurrency_limited`` (2026-03-01 bodies).
        headers: Extra response headers (``Retry-After``).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        title: Optional[str] = None,
        error_code: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        super().__init__(message)
        default_title, default_code = _DEFAULTS.get(status, ("Error", "error"))
        self.status = status
        self.message = message
        self.title = title or default_title
        self.error_code = error_code or default_code
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.message!r}, error_code={self.error_code!r})"


def new_request_id() -> str:
    """A fresh request id (a UUID4 string, as the real service sends)."""
    return str(uuid.uuid4())


def error_body(err: ApiError, version: str, request_id: Optional[str] = None) -> Dict[str, Any]:
    """The JSON error body for ``version``.

    Up to 2025-11-04: ``{"error": message, "status_code": N}``; from 2026-03-01:
    ``{"error_code", "title", "message", "request_id", "doc_url"}``.
    """
    from .versions import json_errors  # versions imports this module

    if not json_errors(version):
        return {"error": err.message, "status_code": err.status}
    return {
        "error_code": err.error_code,
        "title": err.title,
        "message": err.message,
        "request_id": request_id or new_request_id(),
        "doc_url": DOC_URL,
    }


def error_response(err: ApiError, version: str, request_id: Optional[str] = None) -> web.Response:
    """An HTTP error response for ``version`` with ``x-should-retry`` and ``X-Request-Id``."""
    request_id = request_id or new_request_id()
    headers = {
        "x-should-retry": "true" if err.status in _RETRYABLE else "false",
        "X-Request-Id": request_id,
        **err.headers,
    }
    return web.Response(
        status=err.status,
        text=json.dumps(error_body(err, version, request_id)),
        content_type="application/json",
        headers=headers,
    )


def error_frame(
    err: ApiError,
    version: str,
    context_id: Optional[str] = None,
    request_id: Optional[str] = None,
) -> Dict[str, Any]:
    """An SSE/websocket ``error`` event (``done: true``) for ``version``.

    ``context_id`` is included only when given (SSE echoes it only when the request sent one).
    """
    frame: Dict[str, Any] = {"type": "error", "done": True, "status_code": err.status}
    if context_id is not None:
        frame["context_id"] = context_id
    frame.update(error_body(err, version, request_id))
    frame["status_code"] = err.status
    return frame
