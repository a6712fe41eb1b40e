"""The v0 websocket routes: multiplexed contexts, acks and cancel (experimental route), faults."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any, Dict, List, Optional, Union

from aiohttp import WSMsgType, web

from . import json_body
from .faults import WS_KINDS, Fault, FaultController, FaultSpecError, json_type, parse_fault_spec
from .generation import (
    Generation,
    GenerationRequest,
    RenderError,
    RequestError,
    parse_generation,
    ws_frame,
)
from .pacing import Pacer
from .state import REQUEST_FAULTS_KEY, STATE_KEY, ServerState
from .streaming import due

__all__ = ["routes", "close_all", "MALFORMED_WS_FRAME", "MAX_CONTEXTS_PER_SOCKET"]

log = logging.getLogger("cartesia.server")
# aiohttp >= 3.11 can send pre-encoded text frames; older versions need a str.
_HAS_SEND_FRAME = hasattr(web.WebSocketResponse, "send_frame")
#: Concurrent contexts one socket may run (keeps a single client from exhausting memory).
MAX_CONTEXTS_PER_SOCKET = 1024
#: What the ``malformed`` fault sends on a websocket: a text frame that is not JSON.
MALFORMED_WS_FRAME = '{"data":"AAAA","sampling_rate":44100,"done":nope'


class _Context:
    """One running generation on a socket."""

    def __init__(self, context_id: str) -> None:
        self.context_id = context_id
        self.cid_json = json.dumps(context_id).encode()
        self.acks = 0
        self.ack_event = asyncio.Event()
        self.cancelled = False
        self.task: Optional[asyncio.Task[None]] = None


class _Connection:
    """State of one websocket connection."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, experimental: bool) -> None:
        self.request = request
        self.ws = ws
        self.state: ServerState = request.app[STATE_KEY]
        self.experimental = experimental
        self.local_faults: Optional[FaultController] = request.get(REQUEST_FAULTS_KEY)
        self.contexts: Dict[str, _Context] = {}
        self.send_lock = asyncio.Lock()
        self.dead = False
        self.idle_closer: Optional[asyncio.Task[None]] = None
        self.last_activity = asyncio.get_running_loop().time()
        self.watchdog: Optional[asyncio.Task[None]] = None
        self.closer: Optional[asyncio.Task[Any]] = None

    async def send(self, text: Union[str, bytes]) -> None:
        """Send one text frame (``bytes`` must be UTF-8 JSON; sent without re-encoding)."""
        if self.dead or self.ws.closed:
            raise ConnectionResetError("websocket closed")
        async with self.send_lock:
            if isinstance(text, str):
                await self.ws.send_str(text)
            elif _HAS_SEND_FRAME:
                await self.ws.send_frame(text, WSMsgType.TEXT)
            else:  # pragma: no cover - aiohttp < 3.11
                await self.ws.send_str(text.decode("utf-8"))

    async def send_error(self, context_id: Optional[str], status: int, message: str) -> None:
        frame = {"context_id": context_id, "done": True, "error": message, "status_code": status}
        try:
            await self.send(json.dumps(frame))
        except (ConnectionError, RuntimeError):
            pass

    def take_faults(self, extra: List[Fault]) -> List[Fault]:
        taken = list(extra)
        if self.local_faults is not None:
            taken += self.local_faults.take(WS_KINDS, "ws")
        return taken + self.state.faults.take(WS_KINDS, "ws")

    async def handle_text(self, text: str) -> None:
        try:
            msg = json_body.loads(text)
        except json_body.JSONInputError as exc:
            await self.send_error(None, 400, f"message: {exc}")
            return
        if not isinstance(msg, dict):
            await self.send_error(None, 400, "message must be a JSON object")
            return
        context_id = msg.get("context_id")
        if context_id is not None and not isinstance(context_id, str):
            await self.send_error(None, 400, "`context_id` must be a string")
            return
        if msg.get("action") == "cancel" or msg.get("cancel") is True:
            self.cancel(context_id)
            return
        if "data" in msg:
            await self.start(context_id, msg)
            return
        if context_id is not None and set(msg) <= {"context_id"}:
            # An acknowledgement: the client consumed one chunk of this context.
            self.state.stats["acks"] += 1
            ctx = self.contexts.get(context_id)
            if ctx is not None:
                ctx.acks += 1
                ctx.ack_event.set()
            return
        await self.send_error(
            context_id, 400, "unrecognised message: expected `data`, an ack or a cancel"
        )

    def cancel(self, context_id: Optional[str]) -> None:
        ctx = self.contexts.get(context_id or "")
        if ctx is None or ctx.task is None or ctx.cancelled:
            return
        ctx.cancelled = True
        ctx.task.cancel()

    async def start(self, context_id: Optional[str], msg: Dict[str, Any]) -> None:
        if context_id is None:
            context_id = uuid.uuid4().hex
        if context_id in self.contexts:
            message = f"context_id {context_id!r} is already generating"
            await self.send_error(context_id, 400, message)
            return
        if len(self.contexts) >= MAX_CONTEXTS_PER_SOCKET:
            message = f"too many concurrent contexts on this socket (max {MAX_CONTEXTS_PER_SOCKET})"
            await self.send_error(context_id, 429, message)
            return
        extra: List[Fault] = []
        if msg.get("fault"):
            try:
                if not isinstance(msg["fault"], str):
                    raise FaultSpecError(f"`fault` must be a string, got {json_type(msg['fault'])}")
                extra = parse_fault_spec(msg["fault"])
            except FaultSpecError as exc:
                await self.send_error(context_id, 400, f"bad fault spec: {exc}")
                return
        try:
            req = parse_generation(msg["data"])
        except RequestError as exc:
            await self.send_error(context_id, exc.status, exc.message)
            return
        if self.idle_closer is not None:
            self.idle_closer.cancel()
            self.idle_closer = None
        ctx = _Context(context_id)
        self.contexts[context_id] = ctx
        self.state.stats["generations_started"] += 1
        ctx.task = asyncio.ensure_future(self.generate(ctx, req, self.take_faults(extra)))

    async def generate(self, ctx: _Context, req: GenerationRequest, faults: List[Fault]) -> None:
        stats = self.state.stats
        generation: Optional[Generation] = None
        try:
            pacer = Pacer(self.state.config.pace, self.state.config.first_chunk_latency)
            try:
                generation = await self.state.renderer.open(req)
            except Exception as exc:  # an engine failure must not kill the socket silently
                log.exception("generation failed for context %s", ctx.context_id)
                message = f"generation failed: {type(exc).__name__}: {exc}"
                await self.send_error(ctx.context_id, 500, message)
                return
            index = 0
            chunk = await generation.next()
            while True:
                at_end = chunk is None
                for fault in due(faults, "stall", index, at_end):
                    stats["faults_fired"] += 1
                    await asyncio.sleep(fault.seconds)
                if due(faults, "malformed", index, at_end):
                    stats["faults_fired"] += 1
                    await self.send(MALFORMED_WS_FRAME)
                    return
                if due(faults, "drop", index, at_end):
                    stats["faults_fired"] += 1
                    self.drop()
                    return
                for fault in due(faults, "ws_close", index, at_end):
                    stats["faults_fired"] += 1
                    await self.close(fault.code or 1011, "injected fault")
                    return
                if chunk is None:
                    break
                if self.experimental and index > 0:
                    # One chunk per acknowledgement: chunk i needs i acks.
                    while ctx.acks < index:
                        ctx.ack_event.clear()
                        await ctx.ack_event.wait()
                frame, samples = chunk
                await pacer.before_chunk(index)
                # send() waits while the socket's buffer is full: a client that does not read
                # stalls its contexts here, each holding only its bounded look-ahead.
                await self.send(ws_frame(frame, ctx.cid_json))
                stats["audio_frames_sent"] += 1
                pacer.sent(samples / generation.sampling_rate)
                if len(self.contexts) > 1:
                    await asyncio.sleep(0)  # let other contexts of this socket interleave
                index += 1
                chunk = await generation.next()
            await self.send(b'{"done":true,"context_id":' + ctx.cid_json + b"}")
            self.last_activity = asyncio.get_running_loop().time()
            stats["generations_completed"] += 1
            idle = [f for f in faults if f.kind == "ws_idle_close"]
            if idle:
                stats["faults_fired"] += 1
                self.idle_closer = asyncio.ensure_future(self.idle_close(idle[0]))
        except asyncio.CancelledError:
            if not ctx.cancelled:
                raise
            stats["generations_cancelled"] += 1
            try:
                await self.send(b'{"done":true,"context_id":' + ctx.cid_json + b"}")
            except (ConnectionError, RuntimeError):
                pass
        except RenderError as exc:
            log.exception("generation failed mid-stream for context %s", ctx.context_id)
            stats["generations_aborted"] += 1
            await self.send_error(ctx.context_id, 500, f"generation failed: {exc}")
        except (ConnectionError, RuntimeError):
            # The socket went away under us (aiohttp raises either when sending on a closed one).
            stats["generations_aborted"] += 1
        finally:
            if generation is not None:
                generation.close()
            if self.contexts.get(ctx.context_id) is ctx:
                del self.contexts[ctx.context_id]

    async def idle_watchdog(self, timeout: float) -> None:
        """Close the socket once it has been idle (no message, no generation) for ``timeout``."""
        loop = asyncio.get_running_loop()
        while not self.ws.closed and not self.dead:
            wait = self.last_activity + timeout - loop.time()
            if wait > 0 or self.contexts:
                await asyncio.sleep(max(wait, 0.05))
                continue
            await self.close(1000, "connection idle timeout")
            return

    async def idle_close(self, fault: Fault) -> None:
        await asyncio.sleep(fault.seconds)
        if not self.contexts:
            await self.close(fault.code or 1000, "connection idle timeout")

    def drop(self) -> None:
        """Abort the TCP connection without a close frame (the client sees 1006)."""
        self.dead = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def close(self, code: int, reason: str) -> None:
        self.dead = True
        # Remember who is closing: shutdown() must let this task finish the closing handshake
        # (cancelling it mid-close would abort the socket and the client would see 1006).
        self.closer = asyncio.current_task()
        try:
            await self.ws.close(code=code, message=reason.encode())
        except (ConnectionError, RuntimeError):
            pass

    async def shutdown(self) -> None:
        tasks = [c.task for c in self.contexts.values() if c.task is not None]
        for extra in (self.idle_closer, self.watchdog):
            if extra is not None:
                tasks.append(extra)
        for task in tasks:
            if task is not self.closer:
                task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


async def _serve(request: web.Request, experimental: bool) -> web.WebSocketResponse:
    state: ServerState = request.app[STATE_KEY]
    ws = web.WebSocketResponse(
        max_msg_size=state.config.ws_max_message_bytes, autoping=True, timeout=2.0
    )
    await ws.prepare(request)
    state.stats["ws_connections"] += 1
    conn = _Connection(request, ws, experimental)
    state.connections.add(conn)
    if state.config.ws_idle_timeout:
        conn.watchdog = asyncio.ensure_future(conn.idle_watchdog(state.config.ws_idle_timeout))
    try:
        while not ws.closed:
            msg = await ws.receive()
            conn.last_activity = asyncio.get_running_loop().time()
            if msg.type == WSMsgType.TEXT:
                try:
                    await conn.handle_text(msg.data)
                except Exception as exc:
                    # A bug handling one message must cost that message, not the socket and
                    # every other context running on it.
                    log.exception("internal error handling a websocket message")
                    await conn.send_error(None, 500, f"internal server error: {type(exc).__name__}")
            elif msg.type == WSMsgType.BINARY:
                message = "binary messages are not supported; send JSON text"
                await conn.send_error(None, 400, message)
            elif msg.type == WSMsgType.ERROR:
                # Oversized message or protocol violation: aiohttp closes the socket (1009/1002).
                break
            else:  # CLOSE, CLOSING, CLOSED
                break
    finally:
        state.connections.discard(conn)
        await conn.shutdown()
        if not ws.closed and not conn.dead:
            await ws.close()
    return ws


async def close_all(app: web.Application) -> None:
    """``on_shutdown`` hook: close every websocket with 1001 and end running HTTP streams."""
    state: ServerState = app[STATE_KEY]
    for task in list(state.streams):
        task.cancel()
    closes = [conn.close(1001, "server shutting down") for conn in list(state.connections)]
    if closes:
        await asyncio.gather(*closes, return_exceptions=True)


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """``WS /v0/audio/websocket``."""
    return await _serve(request, experimental=False)


async def experimental_websocket(request: web.Request) -> web.WebSocketResponse:
    """``WS /v0/experimental/audio/websocket``: one chunk per acknowledgement."""
    return await _serve(request, experimental=True)


def routes(prefix: str = "/v0") -> List[web.RouteDef]:
    """The websocket route table."""
    return [
        web.get(f"{prefix}/audio/websocket", websocket),
        web.get(f"{prefix}/experimental/audio/websocket", experimental_websocket),
    ]
