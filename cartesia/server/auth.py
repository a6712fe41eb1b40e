"""API-key checks: X-API-Key or Authorization: Bearer headers, ?api_key= on websockets."""

from __future__ import annotations

import hmac
from typing import Optional, Sequence

from aiohttp import web

__all__ = ["check_key", "request_key"]


def request_key(request: web.Request) -> Optional[str]:
    """The API key a request carries, wherever the v0 (or later) clients put it."""
    key = request.headers.get("X-API-Key")
    if key:
        return key
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return request.query.get("api_key") or request.query.get("access_token") or None


def check_key(key: Optional[str], accepted: Sequence[str]) -> Optional[str]:
    """Return why ``key`` is refused, or ``None`` when it is accepted.

    The message never contains the key itself.
    """
    if not key:
        return (
            "missing API key: send it in the X-API-Key header "
            "(websockets: the api_key query parameter)"
        )
    if not accepted:
        return None
    encoded = key.encode("utf-8", "surrogatepass")
    # Constant-time comparison: no timing hints about valid keys.
    if any(hmac.compare_digest(encoded, k.encode("utf-8", "surrogatepass")) for k in accepted):
        return None
    return "invalid API key"
