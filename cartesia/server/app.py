"""Builds the aiohttp application: routes plus the auth, fault and error-shaping middleware."""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Optional

from aiohttp import web

from . import http_api, ws_api
from .auth import check_key, request_key
from .config import ServerConfig
from .connection import BodyTimeout, closing, track_requests
from .faults import Fault, FaultController, FaultSpecError, parse_fault_spec
from .generation import RequestError
from .http_api import json_error
from .state import REQUEST_FAULTS_KEY, STATE_KEY, ServerState
from .v1 import middleware as current_api
from .v1 import routes as current_routes
from .v1 import voices_api
from .v1.voice_store import VOICE_STORE_KEY, VoiceStore

__all__ = ["create_app", "FAULT_HEADER"]

#: Request header selecting faults for one request (websockets: the ``fault`` query parameter).
FAULT_HEADER = "X-Cartesia-Fault"

log = logging.getLogger("cartesia.server")
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_PUBLIC = frozenset({"/", "/status"})


def _target(path: str) -> str:
    """Which fault target a path belongs to."""
    if path.endswith("/audio/websocket") or path == "/tts/websocket":
        return "ws"
    if path in ("/tts/bytes", "/tts/sse"):
        return "stream"
    if path.endswith("/audio/stream"):
        return "stream"
    if path.endswith("/audio/transcriptions"):
        return "transcriptions"
    if "/voices" in path:
        return "voices"
    return "other"


@web.middleware
async def _errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Turn every refusal into a JSON body that names the problem."""
    if current_api.applies(request.path):  # shaped per version by its own middleware
        return await handler(request)
    try:
        return await handler(request)
    except RequestError as exc:
        return json_error(exc.status, exc.message)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[STATE_KEY].config.max_body_bytes
        return json_error(413, f"request body too large (limit {limit} bytes)")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return json_error(exc.status, f"{exc.reason}: {request.method} {request.path}")
    except BodyTimeout as exc:
        return closing(json_error(408, str(exc)))
    except (ConnectionError, asyncio.CancelledError):
        raise
    except Exception as exc:  # a bug or an engine failure: still a JSON answer, and logged
        log.exception("internal error on %s %s", request.method, request.path)
        return json_error(500, f"internal server error: {type(exc).__name__}: {exc}")


def _status_fault(request: web.Request) -> Optional[Fault]:
    """Read the request's own fault spec (kept on the request for its generation) and take the
    ``status`` fault due for it, per-request faults first.

    Raises:
        FaultSpecError: The ``X-Cartesia-Fault`` header (or ``fault`` query) is malformed.
    """
    spec = request.headers.get(FAULT_HEADER) or request.query.get("fault")
    if spec:
        local = FaultController()
        local.extend(parse_fault_spec(spec))
        request[REQUEST_FAULTS_KEY] = local
    target = _target(request.path)
    fault = None
    if REQUEST_FAULTS_KEY in request:
        fault = request[REQUEST_FAULTS_KEY].take_status(target)
    if fault is None:
        fault = request.app[STATE_KEY].faults.take_status(target)
    return fault


@web.middleware
async def _guard(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Auth, per-request fault selection and injected status answers."""
    state: ServerState = request.app[STATE_KEY]
    path = request.path
    if path in _PUBLIC and request.method == "GET":
        return await handler(request)
    if current_api.applies(path):  # its own version-aware auth and faults
        return await handler(request)
    state.stats["http_requests"] += 1
    problem = check_key(request_key(request), state.config.api_keys)
    if problem is not None:
        state.stats["auth_failures"] += 1
        # Log the path only: the key (valid or not) must never reach a log.
        log.info("401 for %s %s: %s", request.method, path, problem)
        return json_error(401, problem)
    if path.startswith("/_emulator/"):
        return await handler(request)
    try:
        fault = _status_fault(request)
    except FaultSpecError as exc:
        return json_error(400, f"bad {FAULT_HEADER} spec: {exc}")
    if fault is not None:
        state.stats["faults_fired"] += 1
        return json_error(fault.status, f"injected fault: HTTP {fault.status}", fault.status_headers())
    return await handler(request)


def create_app(
    config: Optional[ServerConfig] = None, faults: Optional[FaultController] = None
) -> web.Application:
    """Build the application for ``config`` (defaults: tone/speech engine, pace none).

    Args:
        config: Server settings.
        faults: A fault controller to share (the embeddable server passes its own).
    """
    config = config or ServerConfig()
    middlewares = [track_requests, _errors, _guard, current_api.create_middleware(_status_fault)]
    app = web.Application(middlewares=middlewares, client_max_size=config.max_body_bytes)
    app[STATE_KEY] = ServerState.create(config, faults)
    # The current API serves the health routes (a superset of the v0 answer).
    app.add_routes([r for r in http_api.routes() if r.path not in current_routes.REPLACED])
    app.add_routes(ws_api.routes())
    app.add_routes(current_routes.routes())
    app[VOICE_STORE_KEY] = VoiceStore.from_config(config)
    app.add_routes(voices_api.routes())
    app.on_shutdown.append(ws_api.close_all)
    app.on_shutdown.append(current_routes.close_all)
    return app
