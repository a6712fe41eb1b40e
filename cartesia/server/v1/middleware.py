"""The current API's request pipeline: version, auth, grants, injected status faults, error shapes.

Every path outside ``/v0/``, ``/_emulator/`` and the health routes belongs to the current API;
the app's v0 middleware lets those through untouched and this one handles them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Awaitable, Callable, Optional

from aiohttp import web

from ..connection import BodyTimeout, closing
from ..faults import Fault, FaultSpecError
from ..json_body import JSONInputError
from ..state import STATE_KEY, ServerState
from . import versions
from .auth import Principal, authenticate, require_grant
from .errors import ApiError, error_response
from .keys import request_key

if TYPE_CHECKING:
    from aiohttp.typedefs import Middleware

__all__ = ["applies", "create_middleware", "PRINCIPAL_KEY", "principal"]

log = logging.getLogger("cartesia.server")
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Where handlers find the authenticated caller.
PRINCIPAL_KEY = request_key("cartesia_principal", Principal)
_PUBLIC = frozenset({"/", "/status"})
# Paths whose callers need the ``tts`` grant when they use an access token.
_TTS_PREFIXES = ("/tts/", "/voices")


def applies(path: str) -> bool:
    """Whether ``path`` is served by the current API."""
    return not (
        path in _PUBLIC or path == "/v0" or path.startswith("/v0/") or path.startswith("/_emulator/")
    )


def principal(request: web.Request) -> Principal:
    """The caller of a request that went through this middleware."""
    return request[PRINCIPAL_KEY]


def _injected(fault: Fault) -> ApiError:
    return ApiError(fault.status, f"injected fault: HTTP {fault.status}", headers=fault.status_headers())


def create_middleware(
    status_fault: Callable[[web.Request], Optional[Fault]],
) -> Middleware:
    """The middleware.

    Args:
        status_fault: Parses the request's own fault spec and takes a pending ``status`` fault
            for it (the app's shared rule; raises ``FaultSpecError`` for a bad spec).
    """

    @web.middleware
    async def current_api(request: web.Request, handler: _Handler) -> web.StreamResponse:
        if not applies(request.path):
            return await handler(request)
        state: ServerState = request.app[STATE_KEY]
        websocket = request.headers.get("Upgrade", "").lower() == "websocket"
        try:
            version = versions.request_version(request, websocket=websocket)
        except ApiError as exc:
            return error_response(exc, versions.LATEST)
        try:
            state.stats["http_requests"] += 1
            try:
                assert state.current is not None
                caller = authenticate(request, state.config.api_keys, state.current.tokens)
            except ApiError:
                state.stats["auth_failures"] += 1
                # The path only: a key (valid or not) never reaches a log.
                log.info("401 for %s %s", request.method, request.path)
                raise
            if caller.is_token and request.path.startswith(_TTS_PREFIXES):
                require_grant(caller, "tts")
            request[PRINCIPAL_KEY] = caller
            try:
                fault = status_fault(request)
            except FaultSpecError as exc:
                raise ApiError(400, f"bad X-Cartesia-Fault spec: {exc}") from None
            if fault is not None:
                state.stats["faults_fired"] += 1
                raise _injected(fault)
            return await handler(request)
        except ApiError as exc:
            return error_response(exc, version)
        except JSONInputError as exc:
            return error_response(ApiError(400, f"request body: {exc}"), version)
        except web.HTTPRequestEntityTooLarge:
            limit = state.config.max_body_bytes
            err = ApiError(413, f"request body too large (limit {limit} bytes)")
            return error_response(err, version)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            if exc.status == 404:
                message = f"no route {request.method} {request.path[:200]} on the local server"
            else:
                message = f"{exc.reason}: {request.method} {request.path[:200]}"
            return error_response(ApiError(exc.status, message), version)
        except BodyTimeout as exc:
            return closing(error_response(ApiError(408, str(exc)), version))
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as exc:  # a bug or an engine failure: still a JSON answer, and logged
            log.exception("internal error on %s %s", request.method, request.path)
            err = ApiError(500, f"internal server error: {type(exc).__name__}")
            return error_response(err, version)

    return current_api
