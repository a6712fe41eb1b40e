"""Route table of the current API: health, access tokens, TTS, and 404s for what is not served."""

from __future__ import annotations

import math
from typing import List

from aiohttp import web

from .. import json_body
from ..state import STATE_KEY
from . import tts_http, tts_ws
from .errors import ApiError
from .middleware import principal
from .tokens import DEFAULT_EXPIRES_IN, GRANTS, MAX_EXPIRES_IN
from .versions import KNOWN_VERSIONS, LATEST

__all__ = ["routes", "close_all", "REPLACED", "NOT_IMPLEMENTED"]

#: v0 routes this module serves instead (the health answer, extended).
REPLACED = frozenset({"/", "/status"})
#: Route families of the real API the local server does not implement (404 that says so).
NOT_IMPLEMENTED = (
    "/stt",
    "/infill",
    "/voice-changer",
    "/datasets",
    "/pronunciation-dicts",
    "/fine-tunes",
    "/agents",
    "/api-keys",
    "/files",
    "/usage",
)


async def health(request: web.Request) -> web.Response:
    """``GET /`` (and ``/status``): liveness without auth, the latest API version, engine, pace."""
    state = request.app[STATE_KEY]
    return web.json_response(
        {
            "ok": True,
            "version": LATEST,
            "versions": list(KNOWN_VERSIONS),
            "legacy_api": "v0",
            "engine": state.engine.name,
            "pace": state.config.pace,
        }
    )


async def access_token(request: web.Request) -> web.Response:
    """``POST /access-token``: a short-lived token with ``grants`` for ``expires_in`` seconds."""
    caller = principal(request)
    if caller.is_token:
        raise ApiError(403, "access tokens are issued to API keys, not to other tokens")
    raw = await request.read()
    body = json_body.loads(raw) if raw.strip() else {}
    if not isinstance(body, dict):
        raise ApiError(400, "the request must be a JSON object")
    grants_obj = body.get("grants")
    if grants_obj is None:
        grants = frozenset({"tts"})
    else:
        if not isinstance(grants_obj, dict):
            raise ApiError(400, '`grants` must be an object such as {"tts": true}')
        unknown = sorted(set(grants_obj) - set(GRANTS))
        if unknown:
            raise ApiError(400, f"unknown grant(s) {', '.join(unknown)[:80]}; known: {', '.join(GRANTS)}")
        for name, value in grants_obj.items():
            if value is not None and not isinstance(value, bool):
                raise ApiError(400, f"`grants.{name}` must be true or false")
        grants = frozenset(name for name, value in grants_obj.items() if value)
    expires_in = body.get("expires_in")
    if expires_in is None:
        expires_in = DEFAULT_EXPIRES_IN
    elif (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, (int, float))
        or not math.isfinite(expires_in)
        or not 0 < expires_in <= MAX_EXPIRES_IN
    ):
        raise ApiError(400, f"`expires_in` must be a number of seconds in 1..{MAX_EXPIRES_IN}")
    current = request.app[STATE_KEY].current
    assert current is not None
    token = current.tokens.issue(grants, float(expires_in), caller.account)
    return web.json_response({"token": token, "expires_in": expires_in, "grants": sorted(grants)})


async def not_implemented(request: web.Request) -> web.Response:
    """A real-API route the local server does not serve."""
    family = "/" + request.path.lstrip("/").split("/", 1)[0]
    raise ApiError(
        404,
        f"{request.method} {request.path[:200]}: the local Cartesia server does not implement "
        f"{family} (it serves /tts/bytes, /tts/sse, /tts/websocket, /voices and /access-token)",
        title="Not implemented by the local server",
        error_code="not_implemented",
    )


def routes() -> List[web.RouteDef]:
    """Every current-API route except the voices ones."""
    table = [
        web.get("/", health),
        web.get("/status", health),
        web.post("/access-token", access_token),
        web.post("/tts/bytes", tts_http.tts_bytes),
        web.post("/tts/sse", tts_http.tts_sse),
        web.get("/tts/websocket", tts_ws.websocket),
    ]
    for prefix in NOT_IMPLEMENTED:
        table.append(web.route("*", prefix, not_implemented))
        table.append(web.route("*", prefix + "/{tail:.*}", not_implemented))
    return table


async def close_all(app: web.Application) -> None:
    """``on_shutdown``: close every current-API websocket with 1001."""
    await tts_ws.close_all(app)
