"""``Cartesia-Version`` resolution and the per-version rules of the current API."""

from __future__ import annotations

from typing import Optional, Tuple

from aiohttp import web

from .errors import ApiError
from .keys import request_key

__all__ = [
    "KNOWN_VERSIONS",
    "LATEST",
    "VERSION_HEADER",
    "VERSION_QUERY",
    "VERSION_KEY",
    "resolve",
    "request_version",
    "at_least",
    "json_errors",
    "embeddings_allowed",
    "bare_string_voice",
    "paged_voices",
]

#: Every dated version the real service documents, oldest first.
KNOWN_VERSIONS: Tuple[str, ...] = (
    "2024-06-10",
    "2024-11-13",
    "2025-04-16",
    "2025-11-04",
    "2026-03-01",
    "2026-08-14",
)
#: What a request that names no version gets.
LATEST = KNOWN_VERSIONS[-1]
VERSION_HEADER = "Cartesia-Version"
VERSION_QUERY = "cartesia_version"
#: Where a handler finds the resolved version of its request.
VERSION_KEY = request_key("cartesia_version", str)


def resolve(header: Optional[str], query: Optional[str], *, websocket: bool = False) -> str:
    """Pick the version a request asks for.

    On websockets the query parameter wins over the header (browsers cannot set headers); on
    plain HTTP the header wins. No version at all means :data:`LATEST`.

    Raises:
        ApiError: 400 naming the accepted versions when the one asked for is unknown.
    """
    first, second = (query, header) if websocket else (header, query)
    asked = (first or second or "").strip()
    if not asked:
        return LATEST
    if asked not in KNOWN_VERSIONS:
        raise ApiError(
            400,
            f"unknown {VERSION_HEADER} {asked[:40]!r}; accepted: {', '.join(KNOWN_VERSIONS)}",
            title="Invalid API version",
            error_code="invalid_version",
        )
    return asked


def request_version(request: web.Request, *, websocket: bool = False) -> str:
    """The version of ``request``, resolved once and remembered on it (see :func:`resolve`)."""
    cached = request.get(VERSION_KEY)
    if cached is None:
        cached = resolve(
            request.headers.get(VERSION_HEADER), request.query.get(VERSION_QUERY), websocket=websocket
        )
        request[VERSION_KEY] = cached
    return cached


def at_least(version: str, date: str) -> bool:
    """Whether ``version`` is ``date`` or later (ISO dates compare as strings)."""
    return version >= date


def json_errors(version: str) -> bool:
    """From 2026-03-01 errors are ``{error_code, title, message, request_id, doc_url}``."""
    return at_least(version, "2026-03-01")


def embeddings_allowed(version: str) -> bool:
    """Voice embeddings as voice specifiers are refused from 2026-03-01."""
    return not at_least(version, "2026-03-01")


def bare_string_voice(version: str) -> bool:
    """From 2026-08-14 a voice may be given as a bare id string."""
    return at_least(version, "2026-08-14")


def paged_voices(version: str) -> bool:
    """``GET /voices`` is a bare array for 2024-06-10 and a page object later."""
    return at_least(version, "2024-11-13")
