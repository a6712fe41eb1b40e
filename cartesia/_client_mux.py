"""The async client's per-event-loop resources: pooled HTTP session and a multiplexed websocket."""

import asyncio
import json
import logging
import sys
import time
from typing import Any, Awaitable, Callable, Dict, Optional, Set, Union

import aiohttp

from ._client_http import status_error
from ._client_urls import redact
from ._client_ws import MAX_MESSAGE_BYTES, closed_error, extract_context_id
from .errors import CartesiaConnectionError, ConnectTimeoutError, WebSocketClosedError

__all__ = ["AsyncContext", "AsyncMux", "LoopRuntime", "bounded"]

if sys.version_info >= (3, 11):

    async def bounded(awaitable: Awaitable[Any], timeout: Optional[float]) -> Any:
        """Await with a time limit (raises ``asyncio.TimeoutError``); no task per call."""
        if timeout is None:
            return await awaitable
        async with asyncio.timeout(timeout):
            return await awaitable

else:

    async def bounded(awaitable: Awaitable[Any], timeout: Optional[float]) -> Any:
        """Await with a time limit (raises ``asyncio.TimeoutError``)."""
        return await asyncio.wait_for(awaitable, timeout)

_CLOSED = object()  # queue sentinel: the socket under this context is gone
Payload = Union[str, bytes]


class AsyncContext:
    """One generation's slot on the shared websocket: a bounded queue of raw frames.

    Frames stay undecoded until the consumer takes them, so the consumer decodes straight into
    its own sink and frames of a cancelled context are never decoded at all.
    """

    def __init__(self, mux: "AsyncMux", context_id: str, maxsize: int) -> None:
        self.mux = mux
        self.id = context_id
        self.queue: "asyncio.Queue[Any]" = asyncio.Queue(maxsize)
        self.failure: Optional[BaseException] = None
        self.released = False

    def fail(self, error: BaseException) -> None:
        if self.failure is None:
            self.failure = error
        try:
            self.queue.put_nowait(_CLOSED)
        except asyncio.QueueFull:
            pass  # the consumer checks `failure` once it has drained the queue

    async def get(self, timeout: Optional[float]) -> Optional[Payload]:
        """Next frame of this context; ``None`` when ``timeout`` passed without one."""
        if self.failure is not None and self.queue.empty():
            raise self.failure
        try:
            item = self.queue.get_nowait()  # the common case under load: no waiting at all
        except asyncio.QueueEmpty:
            try:
                item = await bounded(self.queue.get(), timeout)
            except asyncio.TimeoutError:
                return None
        if item is _CLOSED:
            assert self.failure is not None
            raise self.failure
        return item

    def drain(self) -> None:
        while True:
            try:
                self.queue.get_nowait()
            except asyncio.QueueEmpty:
                return


class AsyncMux:
    """Many generations over one websocket, routed by ``context_id``.

    A reader task takes every frame off the socket and puts it on the queue of its context.
    Queues are bounded: when a consumer falls behind, the reader waits, TCP flow control pushes
    back on the server and memory stays bounded (at the price of delaying other contexts on the
    same socket until the slow one catches up). A socket the server closed is replaced by the
    next ``ensure_open()``; contexts running on it fail with ``WebSocketClosedError``.
    """

    def __init__(
        self,
        session: Callable[[], Awaitable[aiohttp.ClientSession]],
        url: str,
        *,
        secret: Optional[str],
        experimental: bool,
        queue_size: int,
        logger: logging.Logger,
    ) -> None:
        self._session = session
        self._url = url
        self._secret = secret
        self.experimental = experimental
        self.queue_size = queue_size
        self._logger = logger
        self.ws: Optional[aiohttp.ClientWebSocketResponse] = None
        self._reader: Optional["asyncio.Task[None]"] = None
        self.contexts: Dict[str, AsyncContext] = {}
        self._open_lock = asyncio.Lock()
        self._send_lock = asyncio.Lock()
        self._tasks: Set["asyncio.Task[Any]"] = set()
        self.last_frame = 0.0
        self._waiting_on_consumer = False
        self.dropped_frames = 0
        self.connections_opened = 0

    def is_open(self) -> bool:
        ws, reader = self.ws, self._reader
        return ws is not None and not ws.closed and reader is not None and not reader.done()

    async def ensure_open(self, connect_timeout: Optional[float]) -> bool:
        """Open the websocket unless it is open already; return True when it was reused."""
        if self.is_open():
            return True
        async with self._open_lock:
            if self.is_open():
                return True
            await self._drop_socket()
            ws = await self._connect(connect_timeout)
            self.ws = ws
            self.connections_opened += 1
            self._reader = asyncio.get_running_loop().create_task(self._read(ws))
            return False

    async def _connect(self, connect_timeout: Optional[float]) -> aiohttp.ClientWebSocketResponse:
        session = await self._session()
        kwargs: Dict[str, Any] = {"autoping": True, "max_msg_size": MAX_MESSAGE_BYTES}
        # Closing must stay quick even when the peer is gone (aiohttp < 3.10 takes a float).
        if hasattr(aiohttp, "ClientWSTimeout"):
            kwargs["timeout"] = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0)
        else:  # pragma: no cover - old aiohttp
            kwargs["timeout"] = 2.0
        error: Optional[BaseException] = None
        try:
            return await asyncio.wait_for(session.ws_connect(self._url, **kwargs), connect_timeout)
        except aiohttp.WSServerHandshakeError as exc:
            headers = dict(exc.headers) if exc.headers else None
            error = status_error(
                exc.status,
                f"{exc.status} {exc.message}",
                prefix="Failed to connect to the websocket. Error: ",
                headers=headers,
                secret=self._secret,
            )
        except asyncio.TimeoutError:
            error = ConnectTimeoutError(
                f"Opening the websocket to {redact(self._url, self._secret)} took longer than "
                f"{connect_timeout} s."
            )
        except (aiohttp.ClientError, OSError) as exc:
            error = CartesiaConnectionError(
                f"Failed to connect to the websocket {redact(self._url, self._secret)}: "
                f"{redact(str(exc), self._secret)}"
            )
        # Raised outside the except blocks: aiohttp's exceptions carry the request URL (and so
        # the key) in their repr, and must not be chained onto ours.
        raise error

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        reason = ""
        try:
            while True:
                msg = await ws.receive()
                if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    self.last_frame = time.monotonic()
                    await self._route(msg.data)
                elif msg.type is aiohttp.WSMsgType.CLOSE:
                    reason = msg.extra or ""
                    break
                elif msg.type in (
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    if msg.type is aiohttp.WSMsgType.ERROR:
                        reason = str(msg.data)
                    break
        except asyncio.CancelledError:
            reason = "closed by the client"
            raise
        except Exception as exc:  # any reader failure must fail the contexts, not vanish
            reason = f"{type(exc).__name__}: {exc}"
        finally:
            code = ws.close_code if ws.close_code is not None else 1006
            error = closed_error(code, reason, self._secret)
            contexts, self.contexts = self.contexts, {}
            for ctx in contexts.values():
                ctx.fail(error)
            if not ws.closed:
                try:
                    await ws.close()
                except Exception:  # the peer is gone; nothing left to tell it
                    pass

    async def _route(self, payload: Payload) -> None:
        context_id = extract_context_id(payload)
        if context_id is None:
            # v0 frames always carry context_id; one without can only be meant for a lone context.
            if len(self.contexts) != 1:
                self.dropped_frames += 1
                self._logger.debug("dropped a websocket frame without context_id")
                return
            ctx = next(iter(self.contexts.values()))
        else:
            ctx = self.contexts.get(context_id)
            if ctx is None:  # late frame of a cancelled or finished context
                self.dropped_frames += 1
                return
        if ctx.queue.full():
            # Backpressure: stop reading until the consumer catches up.
            self._waiting_on_consumer = True
            try:
                await ctx.queue.put(payload)
            finally:
                self._waiting_on_consumer = False
        else:
            ctx.queue.put_nowait(payload)

    def open_context(self, context_id: str) -> AsyncContext:
        if context_id in self.contexts:
            raise ValueError(f"context_id {context_id!r} is already in use by a running generation")
        ctx = AsyncContext(self, context_id, self.queue_size)
        self.contexts[context_id] = ctx
        return ctx

    def release(self, ctx: AsyncContext, *, cancel: bool) -> None:
        """Stop routing to ``ctx``; in interrupt mode also tell the server to stop generating."""
        if ctx.released:
            return
        ctx.released = True
        if self.contexts.get(ctx.id) is ctx:
            del self.contexts[ctx.id]
        ctx.drain()  # also unblocks the reader if it waits on this full queue
        if cancel and self.experimental and self.is_open():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            task = loop.create_task(self._send_quietly({"context_id": ctx.id, "action": "cancel"}))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send_quietly(self, obj: Any) -> None:
        try:
            await self.send(obj)
        except Exception:  # a dead socket is replaced by the next generation
            self._logger.debug("could not send %s", obj.get("action", "message"))

    async def send(self, obj: Any) -> None:
        ws = self.ws
        if ws is None or ws.closed:
            code = ws.close_code if ws is not None else None
            raise closed_error(code, "the websocket is closed", self._secret)
        error: Optional[BaseException] = None
        try:
            async with self._send_lock:
                await ws.send_str(json.dumps(obj))
        except (ConnectionError, aiohttp.ClientError, RuntimeError) as exc:
            error = closed_error(ws.close_code or 1006, str(exc), self._secret)
        if error is not None:
            raise error

    def stalled_since(self, since: float) -> bool:
        """True when no frame at all arrived on the socket since ``since`` (a dead socket).

        Not when the reader is the one waiting (on a slow consumer's full queue): then the
        socket is fine and only this context starved.
        """
        return self.last_frame < since and not self._waiting_on_consumer

    async def _drop_socket(self) -> None:
        reader, self._reader = self._reader, None
        ws, self.ws = self.ws, None
        if reader is not None and not reader.done():
            reader.cancel()
            try:
                await reader
            except BaseException:
                pass
        if ws is not None and not ws.closed:
            try:
                await ws.close()
            except Exception:
                pass

    async def abort(self) -> None:
        """Close the socket now (a stalled socket); its contexts fail with WebSocketClosedError."""
        await self._drop_socket()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self._drop_socket()
        leftover, self.contexts = self.contexts, {}
        for ctx in leftover.values():
            ctx.fail(WebSocketClosedError("The client was closed.", code=1000))


class LoopRuntime:
    """Everything of the async client that belongs to one event loop.

    A keeper task owns the resources: ``close()`` stops it, and when the loop shuts down
    (``asyncio.run`` returning cancels every task) the keeper's ``finally`` still closes the
    websocket and the HTTP session inside that loop. So a client can be used from several
    ``asyncio.run`` calls without "Unclosed client session" warnings, even if nobody closes it.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        make_session: Callable[[], aiohttp.ClientSession],
        make_mux: Callable[["LoopRuntime"], AsyncMux],
    ) -> None:
        self.loop = loop
        self._make_session = make_session
        self._make_mux = make_mux
        self._session: Optional[aiohttp.ClientSession] = None
        self._mux: Optional[AsyncMux] = None
        self._stop = asyncio.Event()
        self._keeper = loop.create_task(self._keep())

    @property
    def closed(self) -> bool:
        return self._keeper.done() or self.loop.is_closed()

    async def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = self._make_session()
        return self._session

    def mux(self) -> AsyncMux:
        if self._mux is None:
            self._mux = self._make_mux(self)
        return self._mux

    @property
    def current_mux(self) -> Optional[AsyncMux]:
        return self._mux

    async def _keep(self) -> None:
        try:
            await self._stop.wait()
        finally:
            await self._release()

    async def _release(self) -> None:
        mux, self._mux = self._mux, None
        if mux is not None:
            await mux.close()
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def close(self) -> None:
        """Close the websocket and the session; safe to call more than once."""
        self._stop.set()
        if not self._keeper.done():
            await asyncio.shield(self._keeper)

    def close_soon(self) -> None:
        """Ask the owning loop to release everything (from any thread, e.g. ``__del__``)."""
        if not self.loop.is_closed() and not self._keeper.done():
            try:
                self.loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # the loop closed in between
                pass
