"""Async websocket over aiohttp: a small pool of multiplexed sockets per event loop.

Each socket has one reader task that routes frames to the contexts open on it (see
``routing``). When every socket carries ``per_socket`` contexts another one opens, up to
``max_sockets``; beyond that a generation waits for a free context instead of failing.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import time
from types import SimpleNamespace
from typing import Any, Awaitable, Callable, Dict, List, Optional, Set, Tuple, cast

import aiohttp

from ...errors import WebSocketClosedError
from ...protocol import Dialect
from ...protocol.events import Event
from ..errors import Where, closed_error, map_exception, status_error
from ..generation import Generation
from ..routing import AsyncSlot, PoolState, RoutedSocket
from .env_proxy import env_proxy
from .http_async import bounded
from .ws_async_frames import AiohttpFramePrefilter, install

__all__ = ["AsyncSocket", "AsyncWsPool", "AsyncWsAttempt", "PoolSlot", "handshake_trace"]

WHAT = "Failed to generate audio. "
_log = logging.getLogger("cartesia.websocket")
# aiohttp >= 3.12 can hand text frames over undecoded: the core parses the UTF-8 bytes and the
# router reads the context id off them, so a frame's text is never decoded to str.
_UNDECODED: Dict[str, Any] = (
    {"decode_text": False}
    if "decode_text" in inspect.signature(aiohttp.ClientSession.ws_connect).parameters
    else {}
)

# Route simple data frames where aiohttp receives them (ws_async_frames). Only where aiohttp hands
# text over undecoded anyway: an older one decodes (and validates) every text frame, so the
# prefilter, which does not, would change what a bad frame does there. Tests turn it off to
# cover the other path.
FAST_FRAMES = bool(_UNDECODED)

# aiohttp drops the body of a refused websocket upgrade; the server's message is in it. The
# trace hook below reads it while the response is still open, for the connect waiting on it.
_HANDSHAKE_BODY: contextvars.ContextVar[Optional[List[str]]] = contextvars.ContextVar(
    "cartesia_handshake_body", default=None
)


async def _on_request_end(session: Any, ctx: SimpleNamespace, params: Any) -> None:
    holder = _HANDSHAKE_BODY.get()
    response = params.response
    if holder is not None and response.status >= 400:
        try:
            holder.append(await response.text())
        except Exception:  # noqa: BLE001 - without the body the status still tells what failed
            pass


def handshake_trace() -> aiohttp.TraceConfig:
    """The trace config the async client's sessions carry (keeps a refused upgrade's body)."""
    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(_on_request_end)
    return trace


class PoolSlot(AsyncSlot):
    """The slot of a pooled generation: one timer per slot for its waits, not one per wait.

    A consumer waits for nearly every frame when frames arrive one read at a time; arming and
    cancelling a timer per wait (``call_later``) is then per-frame work. Here a wait only moves
    the slot's due time, and the timer, when it fires, ends a wait that is overdue or re-arms for
    the current one. A wait ends at its timeout at the latest, as before.
    """

    _timer: Optional[asyncio.TimerHandle] = None
    _due = 0.0

    async def _wait(self, timeout: Optional[float]) -> bool:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        if timeout is not None:
            due = self._due = loop.time() + timeout
            timer = self._timer
            if timer is None or timer.when() > due:
                if timer is not None:
                    timer.cancel()
                self._timer = loop.call_at(due, self._expire, loop)
        try:
            await waiter
        finally:
            self._waiter = None
        return not self.queue.empty()

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # nobody waits: the next wait arms the timer again
        if loop.time() >= self._due - _EARLY:
            waiter.set_result(None)  # timed out (the queue is empty: the wait returns False)
        else:
            self._timer = loop.call_at(self._due, self._expire, loop)

    def drain(self) -> None:
        super().drain()
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()


# asyncio runs a timer up to its clock resolution early; within this, a wait has timed out.
_EARLY = 1e-3


class AsyncSocket(RoutedSocket[AsyncSlot]):
    """One websocket, its reader task and the contexts routed on it."""

    def __init__(
        self,
        url: str,
        secret: Optional[str],
        queue_size: int,
        dialect: Dialect,
        headers: Optional[Dict[str, str]] = None,
        heartbeat: Optional[float] = None,
    ) -> None:
        super().__init__(dialect.context_id_of, lambda cid: PoolSlot(cid, queue_size))
        self.dialect = dialect
        self._headers = headers  # sent with the upgrade (the current API's auth and version)
        # Pings every `heartbeat` s: a half-open socket then fails its contexts instead of
        # leaving a receive without a timeout waiting forever.
        self._heartbeat = heartbeat
        self._url = url
        self._secret = secret
        self.ws: Optional[aiohttp.ClientWebSocketResponse] = None
        self.ready = asyncio.Event()
        self._reader: Optional[asyncio.Task[None]] = None
        self._send_lock = asyncio.Lock()
        self._tasks: Set[asyncio.Task[Any]] = set()
        # Simple data frames are routed inside aiohttp's data_received (see ws_async_frames);
        # None: aiohttp parses every frame and the reader task routes them all.
        self.prefilter: Optional[AiohttpFramePrefilter] = None

    def link_open(self) -> bool:
        ws, reader = self.ws, self._reader
        return ws is not None and not ws.closed and reader is not None and not reader.done()

    async def connect(
        self, session: aiohttp.ClientSession, where: Where, timeout: Optional[float]
    ) -> None:
        kwargs: Dict[str, Any] = {"autoping": True, "max_msg_size": self.dialect.MAX_MESSAGE_BYTES}
        kwargs.update(_UNDECODED, proxy=await env_proxy(session, self._url))
        if self._headers:
            kwargs["headers"] = self._headers
        if self._heartbeat:
            kwargs["heartbeat"] = self._heartbeat
        # Closing must stay quick even when the peer is gone (aiohttp < 3.10 takes a float).
        if hasattr(aiohttp, "ClientWSTimeout"):
            kwargs["timeout"] = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0)
        else:  # pragma: no cover - old aiohttp
            kwargs["timeout"] = 2.0
        holder: List[str] = []
        token = _HANDSHAKE_BODY.set(holder)
        error: Optional[BaseException] = None
        try:
            # aiohttp >= 3.12 types the socket by its text decoding (ClientWebSocketResponse[bool]).
            self.ws = cast(
                aiohttp.ClientWebSocketResponse,
                await bounded(session.ws_connect(self._url, **kwargs), timeout),
            )
        except aiohttp.WSServerHandshakeError as exc:
            error = status_error(
                exc.status,
                holder[0] if holder and holder[0] else f"{exc.status} {exc.message}",
                prefix=where.what,
                headers=dict(exc.headers) if exc.headers else None,
                secret=self._secret,
            )
        except Exception as exc:  # noqa: BLE001 - mapped (outside the except: no chaining)
            error = map_exception(exc, where)
        finally:
            _HANDSHAKE_BODY.reset(token)
        if error is not None:
            self.fail(error)
            self.ready.set()
            raise error
        self.connected = True
        if FAST_FRAMES:
            self.prefilter = install(self.ws, self._take, self.dialect.MAX_MESSAGE_BYTES)
        self._reader = asyncio.get_running_loop().create_task(
            self._read(cast(aiohttp.ClientWebSocketResponse, self.ws))
        )
        self.ready.set()

    def _take(self, payload: bytes) -> bool:
        """Route one frame the prefilter cut out; False: its context's queue is full (the
        prefilter then hands it to aiohttp, and the reader task waits for room)."""
        slot = self.route(payload)
        return slot is None or slot.put_nowait(payload)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        reason = ""
        router = self.router
        try:
            while True:
                msg = await ws.receive()
                if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    slot = self.route(msg.data)
                    if slot is not None and not slot.put_nowait(msg.data):
                        # Backpressure: stop reading until the consumer catches up.
                        router.waiting_on_consumer = True
                        try:
                            await slot.put(msg.data)
                        finally:
                            router.waiting_on_consumer = False
                    prefilter = self.prefilter
                    if prefilter is not None and prefilter.pending:
                        # Queued now, in order: later data frames may bypass aiohttp again.
                        prefilter.pending -= 1
                elif msg.type is aiohttp.WSMsgType.CLOSE:
                    reason = msg.extra or ""
                    break
                else:  # CLOSING, CLOSED, ERROR
                    if msg.type is aiohttp.WSMsgType.ERROR:
                        reason = str(msg.data)
                    break
        except asyncio.CancelledError:
            reason = "closed by the client"
            raise
        except Exception as exc:  # noqa: BLE001 - any reader failure must fail the contexts
            reason = f"{type(exc).__name__}: {exc}"
        finally:
            code = ws.close_code if ws.close_code is not None else 1006
            self.fail(closed_error(code, reason, self._secret))
            if not ws.closed:
                try:
                    await ws.close()
                except Exception:  # noqa: BLE001 - the peer is gone; nothing left to tell it
                    pass

    def release(self, slot: AsyncSlot, *, cancel: bool) -> None:
        """Stop routing to ``slot``; with ``cancel`` also tell the server to stop generating."""
        if not self.release_slot(slot) or not cancel or not self.is_open():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._send_quietly(self.dialect.ws_cancel(slot.id)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_quietly(self, text: str) -> None:
        try:
            await self.send(text)
        except Exception:  # noqa: BLE001 - a dead socket is replaced by the next generation
            _log.debug("could not send a cancel")

    async def send(self, text: str) -> None:
        ws = self.ws
        if ws is None or ws.closed:
            code = ws.close_code if ws is not None else None
            raise self.failure or closed_error(code, "the websocket is closed", self._secret)
        error: Optional[BaseException] = None
        try:
            async with self._send_lock:
                await ws.send_str(text)
        except (ConnectionError, aiohttp.ClientError, RuntimeError) as exc:
            error = closed_error(ws.close_code or 1006, str(exc), self._secret)
        if error is not None:
            raise error

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        reader, self._reader = self._reader, None
        ws = self.ws
        if reader is not None and not reader.done():
            reader.cancel()
            try:
                await reader
            except BaseException:  # noqa: BLE001 - it was cancelled on purpose
                pass
        if ws is not None and not ws.closed:
            try:
                await ws.close()
            except Exception:  # noqa: BLE001
                pass
        self.fail(WebSocketClosedError("The client was closed.", code=1000))


class AsyncWsPool:
    """The async client's websockets on one event loop: as few as the load needs."""

    def __init__(
        self,
        url: str,
        secret: Optional[str],
        session: Callable[[], Awaitable[aiohttp.ClientSession]],
        *,
        queue_size: int,
        per_socket: int,
        max_sockets: int,
        dialect: Dialect,
    ) -> None:
        self.url = url
        self._secret = secret
        self._session = session
        self.state: PoolState[AsyncSocket] = PoolState(
            lambda: AsyncSocket(url, secret, queue_size, dialect), per_socket, max_sockets
        )
        self._freed = asyncio.Event()

    @property
    def sockets(self) -> List[AsyncSocket]:
        return self.state.sockets

    @property
    def connections_opened(self) -> int:
        return self.state.connections_opened

    def current(self) -> Optional[AsyncSocket]:
        return self.state.current()

    @property
    def contexts(self) -> Dict[str, AsyncSlot]:
        out: Dict[str, AsyncSlot] = {}
        for sock in self.state.sockets:
            out.update(sock.contexts)
        return out

    async def acquire(
        self, gen: Optional[Generation], context_id: Optional[str], connect_timeout: Optional[float]
    ) -> Tuple[AsyncSocket, Optional[AsyncSlot], bool]:
        """A socket with room and (with ``context_id``) the context's slot on it; and whether the
        socket was open already. Waits while the pool is full."""
        while True:
            pick = self.state.pick(context_id)
            if pick is not None:
                break
            left = gen.deadline.total_left() if gen is not None else None
            if gen is not None and left == 0:
                raise gen.deadline.expired()
            self._freed.clear()
            try:
                await bounded(self._freed.wait(), 0.5 if left is None else min(left, 0.5))
            except asyncio.TimeoutError:
                pass
        sock, slot = pick.socket, cast(Optional[AsyncSlot], pick.slot)
        where = (
            gen.where(WHAT, self.url, connecting=True)
            if gen is not None
            else Where(
                WHAT, self.url, self._secret, connect_timeout=connect_timeout, connecting=True
            )
        )
        try:
            if pick.opener:
                await sock.connect(await self._session(), where, connect_timeout)
            else:
                try:
                    await bounded(sock.ready.wait(), connect_timeout)
                except asyncio.TimeoutError:
                    raise where.connect_timeout_error() from None
                if sock.failure is not None:
                    raise sock.failure
        except BaseException:
            if slot is not None:
                self.release(sock, slot, cancel=False)
            raise
        return sock, slot, pick.reused

    def release(self, sock: AsyncSocket, slot: AsyncSlot, *, cancel: bool) -> None:
        sock.release(slot, cancel=cancel)
        self._freed.set()  # a context is free: a waiting generation may take it

    async def close(self) -> None:
        for sock in self.state.take_all():
            await sock.close()


class AsyncWsAttempt:
    """One generation on a pooled socket: send the request, take this context's frames."""

    def __init__(
        self, pool: AsyncWsPool, gen: Generation, context_id: str, experimental: bool
    ) -> None:
        self._pool = pool
        self._gen = gen
        self._experimental = experimental
        self.context_id = context_id
        self._closed = False
        self.reused: Optional[bool] = None
        self.sock: Optional[AsyncSocket] = None
        self.slot: Optional[AsyncSlot] = None

    async def open(self, message: str) -> AsyncWsAttempt:
        self.sock, self.slot, self.reused = await self._pool.acquire(
            self._gen, self.context_id, self._gen.connect_limit()
        )
        try:
            await self.sock.send(message)
        except BaseException:
            self.close(False)
            raise
        return self

    async def receive(self) -> List[Event]:
        assert self.slot is not None and self.sock is not None
        waited_from = time.monotonic()
        payload = await self.slot.get(self._gen.wait_limit())
        if payload is None:
            if self.sock.router.stalled_since(waited_from):
                await self.sock.close()  # nothing at all arrived: the socket is dead
            raise self._gen.expired()
        return self.sock.dialect.decode_ws(payload, sink=self._gen.sink)

    async def delivered(self) -> None:
        if self._experimental and self.sock is not None:
            await self.sock.send(self.sock.dialect.ws_ack(self.context_id))

    def close(self, completed: bool) -> None:
        if self._closed or self.sock is None or self.slot is None:
            return
        self._closed = True
        self._pool.release(self.sock, self.slot, cancel=self._experimental and not completed)
