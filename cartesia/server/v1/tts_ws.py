"""``WS /tts/websocket``: multiplexed contexts with continuations, flushes, cancel and limits.

Per context (the client's ``context_id``): the first input is validated in full and fixes the
voice, model, format and switches; later inputs add ``transcript`` text (concatenated verbatim),
may ``flush`` (closing a segment: its chunks carry ``flush_id`` n, then a ``flush_done`` n
follows) and end it with ``continue: false`` (then ``done``). Their other fields are not
compared with the first input's (4.2.0's ``no_more_inputs()`` sends its own defaults).
Text is buffered until a sentence ends or ``max_buffer_delay_ms`` passes. A context waiting
for input ``context_expiry`` seconds after its last output ends with ``done``. A finished id
stays finished on its socket: more text for it is a 400 error frame, a bare ``""`` end marker
is ignored, and nothing at all is sent for a cancelled id.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import time
import uuid
from typing import Any, Coroutine, Deque, Dict, List, Optional, Set, Tuple

from aiohttp import WSMessage, WSMsgType, web

from .. import json_body
from ..faults import WS_KINDS, Fault, FaultSpecError, parse_fault_spec
from ..pacing import Pacer
from ..state import REQUEST_FAULTS_KEY, STATE_KEY, ServerState
from ..ws_api import MAX_CONTEXTS_PER_SOCKET
from . import frames, versions
from .errors import ApiError, error_frame
from .fault_plan import FaultPlan
from .middleware import principal
from .pipeline import Chunk, Generation, SynthesisError, complete_sentences
from .request import (
    TTSRequest,
    check_transcript_type,
    continuation_controls,
    optional_bool,
    optional_str,
    parse_tts,
)
from .voice_lookup import voice_lookup

__all__ = ["websocket", "close_all", "MAX_PENDING_INPUTS", "MAX_PENDING_CHARS"]

log = logging.getLogger("cartesia.server")
_HAS_SEND_FRAME = hasattr(web.WebSocketResponse, "send_frame")
#: Inputs one context may have queued while it is still speaking earlier ones.
MAX_PENDING_INPUTS = 4096
#: Text one context may have waiting (queued inputs plus its buffer), in characters.
MAX_PENDING_CHARS = 200_000
# Finished context ids remembered per socket (so late inputs for them are recognised).
_FINISHED_MEMORY = 4096
# Finds the context of a message that is not valid JSON, so its error reaches that context.
_CONTEXT_ID = re.compile(r'"context_id"\s*:\s*"([^"\\]{1,256})"')


_Input = Tuple[str, bool, bool, TTSRequest]


class _Context:
    """One context: its settings (the newest input's), its queued inputs and its worker task."""

    def __init__(self, conn: _Connection, context_id: str, req: TTSRequest, delay_ms: int,
                 plan: FaultPlan) -> None:
        self.conn = conn
        self.id = context_id
        self.latest = req  # the settings of the newest input (a continuation may change them)
        self.delay = delay_ms / 1000.0
        self.plan = plan
        self.gen = Generation(conn.state.engine, req)
        self.pacer = Pacer(conn.state.config.pace, conn.state.config.first_chunk_latency)
        self.flush_id = 1
        # Each input: its text, continue, flush, and the settings it is spoken with.
        self.inbox: Deque[_Input] = collections.deque()
        self.wakeup = asyncio.Event()
        self.task: Optional[asyncio.Task[None]] = None
        self.chunks_sent = 0
        self.pending_chars = 0  # text received and not yet handed to the generation
        self.ending = False  # its done frame is on the way: no input is taken any more

    def push(self, text: str, cont: bool, flush: bool, req: Optional[TTSRequest] = None) -> None:
        if self.ending:
            raise ApiError(400, f"context {self.id[:64]!r} has finished; use a new context_id")
        if len(self.inbox) >= MAX_PENDING_INPUTS:
            raise ApiError(429, f"more than {MAX_PENDING_INPUTS} inputs queued on this context")
        if self.pending_chars + len(text) > MAX_PENDING_CHARS:
            raise ApiError(
                413, f"more than {MAX_PENDING_CHARS} characters waiting on this context"
            )
        self.pending_chars += len(text)
        self.inbox.append((text, cont, flush, req or self.latest))
        self.latest = req or self.latest
        self.wakeup.set()

    async def _next(self, timeout: Optional[float]) -> Optional[_Input]:
        """The next input, or ``None`` after ``timeout`` seconds without one."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.inbox:
            self.wakeup.clear()
            if deadline is None:
                await self.wakeup.wait()
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                await asyncio.wait_for(self.wakeup.wait(), left)
            except asyncio.TimeoutError:
                return None
        return self.inbox.popleft()

    async def run(self) -> None:
        conn = self.conn
        stats = conn.state.stats
        buffer = ""
        buffered_at = 0.0
        expiry = conn.state.config.context_expiry
        try:
            while True:
                if buffer:
                    item = await self._next(max(buffered_at + self.delay - time.monotonic(), 0))
                    if item is None:  # the buffer delay is over: speak what is there
                        text, buffer = buffer, ""
                        self.pending_chars -= len(text)
                        if not await self.speak(text):
                            return
                        continue
                else:
                    item = await self._next(expiry)
                    if item is None:  # expired while waiting for more input
                        await self.end()
                        return
                text, cont, flush, req = item
                if req is not self.gen.req:
                    # New speed/volume/emotion from this input on: what is buffered is spoken
                    # with the settings it came with first.
                    if buffer:
                        spoken, buffer = buffer, ""
                        self.pending_chars -= len(spoken)
                        if not await self.speak(spoken):
                            return
                    self.gen.req = req
                if not buffer and text:
                    buffered_at = time.monotonic()
                buffer += text
                if flush or not cont or self.delay == 0:
                    ready, buffer = buffer, ""
                else:
                    ready, buffer = complete_sentences(buffer)
                self.pending_chars -= len(ready)
                if ready and not await self.speak(ready):
                    return
                if flush:
                    await conn.send(frames.flush_done(self.id, self.flush_id))
                    self.flush_id += 1
                if not cont:
                    await self.end()
                    return
        except asyncio.CancelledError:
            raise
        except SynthesisError as exc:  # an engine failure: an error frame for this context only
            log.exception("generation failed for context %s", self.id)
            err = ApiError(500, f"generation failed: {exc.__cause__.__class__.__name__}")
            await conn.send_error(self.id, err)
        except (ConnectionError, RuntimeError):
            stats["generations_aborted"] += 1
        finally:
            conn.forget(self, "finished")

    async def speak(self, text: str) -> bool:
        """Generate and send ``text``; ``False`` when a fault ended the context."""
        conn = self.conn
        async for event in self.gen.render(text):
            if isinstance(event, Chunk):
                if not event.audio:
                    continue
                if not await self.fault(final=False):
                    return False
                await self.pacer.before_chunk(self.chunks_sent)
                await conn.send(frames.chunk(event.audio, event.step_ms, self.id, self.flush_id))
                self.pacer.sent(event.seconds)
                self.plan.sent_frame()
                self.chunks_sent += 1
            else:
                await conn.send(frames.timestamps(event, self.id, self.flush_id))
            conn.touch()
            if len(conn.contexts) > 1:
                await asyncio.sleep(0)  # let the socket's other contexts interleave
        return True

    async def fault(self, final: bool) -> bool:
        """Apply faults due before the next frame; ``False`` when one ended the context."""
        fault = await self.plan.before_frame(final=final)
        if fault is None:
            return True
        if fault.kind == "malformed":
            await self.conn.send_raw(frames.MALFORMED)
        elif fault.kind == "drop":
            self.conn.drop()
        else:  # ws_close
            await self.conn.close(fault.code or 1011, "injected fault")
        return False

    async def end(self) -> None:
        self.ending = True
        tail = self.gen.finish()
        if not await self.fault(final=True):
            return
        if tail:
            await self.conn.send(frames.chunk(tail, 0.0, self.id, self.flush_id))
        await self.conn.send(frames.done(self.id))
        self.conn.state.stats["generations_completed"] += 1
        idle = self.plan.idle_close
        if idle is not None:
            self.conn.state.stats["faults_fired"] += 1
            self.conn.schedule_idle_close(idle)


class _Connection:
    """One ``/tts/websocket`` socket."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.request = request
        self.ws = ws
        self.state: ServerState = request.app[STATE_KEY]
        self.version = versions.request_version(request, websocket=True)
        self.account = principal(request).account
        self.lookup = voice_lookup(request)
        self.contexts: Dict[str, _Context] = {}
        self.finished: collections.OrderedDict[str, str] = collections.OrderedDict()
        self.send_lock = asyncio.Lock()
        self.dead = False
        self.last_activity = time.monotonic()
        self.background: Set[asyncio.Task[None]] = set()
        self.close_request: Optional[Tuple[int, str]] = None
        self.closing = asyncio.Event()

    # --- output ----------------------------------------------------------------------------

    async def send(self, event: Dict[str, Any]) -> None:
        await self.send_raw(frames.encode(event))

    async def send_raw(self, data: bytes) -> None:
        if self.dead or self.ws.closed:
            raise ConnectionResetError("websocket closed")
        async with self.send_lock:
            if _HAS_SEND_FRAME:
                await self.ws.send_frame(data, WSMsgType.TEXT)
            else:  # pragma: no cover - aiohttp < 3.11
                await self.ws.send_str(data.decode("utf-8"))

    async def send_error(self, context_id: Optional[str], err: ApiError) -> None:
        frame = error_frame(err, self.version, context_id)
        frame.setdefault("context_id", None)  # every frame names its context, even unknown
        try:
            await self.send(frame)
        except (ConnectionError, RuntimeError):
            pass

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    # --- contexts --------------------------------------------------------------------------

    def forget(self, ctx: _Context, how: str) -> None:
        """Drop a context that ended (``finished``, ``cancelled``, ``failed``)."""
        if self.contexts.get(ctx.id) is ctx:
            del self.contexts[ctx.id]
            current = self.state.current
            assert current is not None
            current.generations.release(self.account)
            self.finished[ctx.id] = how
            while len(self.finished) > _FINISHED_MEMORY:
                self.finished.popitem(last=False)
        self.touch()

    def stop(self, ctx: _Context, how: str) -> None:
        if ctx.task is not None:
            ctx.task.cancel()
        self.forget(ctx, how)
        if how == "cancelled":
            self.state.stats["generations_cancelled"] += 1

    async def handle_text(self, text: str) -> None:
        try:
            msg = json_body.loads(text)
        except json_body.JSONInputError as exc:
            guess = _CONTEXT_ID.search(text[:4096])
            await self.refuse(guess.group(1) if guess else None, ApiError(400, f"message: {exc}"))
            return
        if not isinstance(msg, dict):
            await self.refuse(None, ApiError(400, "a message must be a JSON object"))
            return
        try:
            context_id = optional_str(msg, "context_id")
        except ApiError as exc:
            await self.refuse(None, exc)
            return
        try:
            await self.dispatch(context_id, msg)
        except ApiError as exc:
            await self.refuse(context_id, exc)

    async def refuse(self, context_id: Optional[str], err: ApiError) -> None:
        """An error frame for ``context_id`` (which ends that context, and only that one)."""
        ctx = self.contexts.get(context_id or "")
        if ctx is not None:
            self.stop(ctx, "failed")
        await self.send_error(context_id, err)

    async def dispatch(self, context_id: Optional[str], msg: Dict[str, Any]) -> None:
        if "cancel" in msg:
            if not optional_bool(msg, "cancel"):
                return
            if context_id is None:
                raise ApiError(400, "`context_id` is required to cancel a context")
            ctx = self.contexts.get(context_id)
            if ctx is not None:
                self.stop(ctx, "cancelled")
            return
        if context_id is None:
            if versions.at_least(self.version, "2026-03-01"):
                raise ApiError(400, "`context_id` is required")
            context_id = str(uuid.uuid4())
        ctx = self.contexts.get(context_id)
        if ctx is not None:
            text = check_transcript_type(msg)
            cont = optional_bool(msg, "continue")
            ctx.push(text, cont, optional_bool(msg, "flush"), continuation_controls(msg, ctx.latest))
            return
        how = self.finished.get(context_id)
        if how is not None:
            end_marker = msg.get("transcript") == "" and msg.get("continue") is not True
            if how == "cancelled" or end_marker:
                return  # nothing more is sent for a cancelled context; a repeated end is moot
            raise ApiError(400, f"context {context_id[:64]!r} has finished; use a new context_id")
        await self.start(context_id, msg)

    async def start(self, context_id: str, msg: Dict[str, Any]) -> None:
        if len(self.contexts) >= MAX_CONTEXTS_PER_SOCKET:
            raise ApiError(429, f"too many open contexts on this socket (max {MAX_CONTEXTS_PER_SOCKET})")
        req = parse_tts(msg, version=self.version, route="websocket", lookup=self.lookup)
        req_cont = optional_bool(msg, "continue")
        flush = optional_bool(msg, "flush")
        delay = msg.get("max_buffer_delay_ms")
        if delay is None:
            delay = self.state.config.max_buffer_delay_ms
        elif isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= 5000:
            raise ApiError(400, "`max_buffer_delay_ms` must be an integer in 0..5000")
        extra = []
        if msg.get("fault"):
            try:
                extra = parse_fault_spec(str(msg["fault"]))
            except FaultSpecError as exc:
                raise ApiError(400, f"bad fault spec: {exc}") from None
        current = self.state.current
        assert current is not None
        current.generations.acquire(self.account)
        ctx = _Context(self, context_id, req, delay, FaultPlan(self.take_faults(extra), self.state.stats))
        self.contexts[context_id] = ctx
        self.state.stats["generations_started"] += 1
        ctx.push(req.transcript, req_cont, flush)
        ctx.task = asyncio.ensure_future(ctx.run())

    def take_faults(self, extra: List[Fault]) -> List[Fault]:
        local = self.request.get(REQUEST_FAULTS_KEY)
        taken = list(extra)
        if local is not None:
            taken += local.take(WS_KINDS, "ws")
        return taken + self.state.faults.take(WS_KINDS, "ws")

    # --- the socket ------------------------------------------------------------------------

    def schedule_idle_close(self, fault: Fault) -> None:
        async def later() -> None:
            await asyncio.sleep(fault.seconds)
            if not self.contexts:
                await self.close(fault.code or 1000, "connection idle timeout")

        self._spawn(later())

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.ensure_future(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def idle_watchdog(self, timeout: float) -> None:
        """Close the socket (1000) after ``timeout`` s without a message or a running context."""
        while not self.ws.closed and not self.dead:
            wait = self.last_activity + timeout - time.monotonic()
            if wait > 0 or self.contexts:
                await asyncio.sleep(max(min(wait, timeout), 0.05))
                continue
            await self.close(1000, "connection idle timeout")
            return

    def drop(self) -> None:
        """Abort the TCP connection without a close frame (the client sees 1006)."""
        self.dead = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def close(self, code: int, reason: str) -> None:
        """Ask the socket's own task to close it with ``code``.

        aiohttp closes the transport at once when another task closes a socket that is being
        received on, so the peer never gets to answer the close frame (an aiohttp client then
        reports 1006); the receiving task closes it instead, with a full closing handshake.
        """
        self.dead = True
        if self.close_request is None:
            self.close_request = (code, reason)
        self.closing.set()

    async def shutdown(self) -> None:
        tasks = [c.task for c in self.contexts.values() if c.task is not None]
        tasks += list(self.background)
        for ctx in list(self.contexts.values()):
            self.forget(ctx, "failed")
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


async def _receive_loop(conn: _Connection, ws: web.WebSocketResponse) -> None:
    """Read and handle messages until the peer closes or a close is requested (see
    :meth:`_Connection.close`)."""
    closing = asyncio.ensure_future(conn.closing.wait())
    recv: Optional[asyncio.Future[WSMessage]] = None
    try:
        while not ws.closed:
            if recv is None:
                recv = asyncio.ensure_future(ws.receive())
            # Futures of different results: asyncio.wait needs them only as futures.
            either: Set[asyncio.Future[Any]] = {recv, closing}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if conn.close_request is not None:
                recv.cancel()
                await asyncio.gather(recv, return_exceptions=True)
                recv = None
                if not ws.closed and conn.request.transport is not None:
                    code, reason = conn.close_request
                    await ws.close(code=code, message=reason.encode())
                return
            msg, recv = recv.result(), None
            conn.touch()
            if msg.type == WSMsgType.TEXT:
                await conn.handle_text(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await conn.send_error(None, ApiError(400, "binary messages are not supported; send JSON text"))
            else:  # CLOSE, CLOSING, CLOSED, ERROR (oversized message: aiohttp closes 1009)
                return
    finally:
        for task in (recv, closing):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (recv, closing) if t is not None), return_exceptions=True)


async def websocket(request: web.Request) -> web.StreamResponse:
    """``WS /tts/websocket`` (auth and version were checked before the upgrade)."""
    state: ServerState = request.app[STATE_KEY]
    current = state.current
    assert current is not None
    account = principal(request).account
    current.sockets.acquire(account)  # 429 before the upgrade when the cap is reached
    try:
        ws = web.WebSocketResponse(
            max_msg_size=state.config.ws_max_message_bytes, autoping=True, timeout=2.0
        )
        ready = ws.can_prepare(request)
        if not ready.ok:
            raise ApiError(400, "expected a websocket upgrade on /tts/websocket")
        await ws.prepare(request)
        state.stats["ws_connections"] += 1
        conn = _Connection(request, ws)
        current.connections.add(conn)
        idle = state.config.tts_ws_idle_timeout
        if idle:
            conn._spawn(conn.idle_watchdog(idle))
        try:
            await _receive_loop(conn, ws)
        finally:
            current.connections.discard(conn)
            await conn.shutdown()
            if not ws.closed and not conn.dead:
                await ws.close()
        return ws
    finally:
        current.sockets.release(account)


async def close_all(app: web.Application) -> None:
    """``on_shutdown``: close every ``/tts/websocket`` with 1001."""
    current = app[STATE_KEY].current
    if current is None:
        return
    closes = [conn.close(1001, "server shutting down") for conn in list(current.connections)]
    if closes:
        await asyncio.gather(*closes, return_exceptions=True)
