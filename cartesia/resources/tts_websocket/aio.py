"""The async ``/tts/websocket`` connection and its contexts: the I/O around the shared rules of :mod:`.base`."""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Optional, Tuple

from ..._client.errors import Where
from ..._client.routing import AsyncSlot, Router
from ..._client.transport.ws_async import AsyncSocket, handshake_trace
from ...errors import CartesiaError, WebSocketClosedError
from ...protocol import v1 as WIRE
from .base import BIND, KEEPALIVE_S, RESEND, ConnectionBase, ContextBase
from .events import ERROR_PREFIX, WebSocketResponse, decode
from .stream import BIND as STREAM_BIND
from .stream import CANCEL, CANCEL_CONTEXT, AsyncInboxSlot

__all__ = ["AsyncWebSocketConnection", "AsyncWebSocketContext"]


class AsyncWebSocketContext(ContextBase[Awaitable[None], Awaitable[int]]):
    """One context on an :class:`AsyncWebSocketConnection` (4.2.0's ``AsyncWebSocketContext``).

    Any number of tasks may drive contexts of one connection at the same time. Its input
    methods are awaited (nothing is checked or sent before).
    """

    _sock: Optional[AsyncSocket]
    _slot: Optional[AsyncSlot]
    _connection: AsyncWebSocketConnection

    def _submit(
        self, build: Callable[[], Optional[str]], result: Optional[Callable[[], Any]] = None
    ) -> Any:
        async def run() -> Any:
            text = build()
            if text is not None:
                await self._deliver(text)
            return result() if result is not None else None

        return run()

    async def cancel(self) -> None:
        """Stop this context: the server stops generating, its late frames are dropped."""
        text = self._cancel_message()
        if text is not None and self._sock is not None:
            try:
                await self._sock.send(text)
            except CartesiaError:
                pass  # the socket died: the server stopped the context with it

    async def receive(self) -> AsyncIterator[WebSocketResponse]:
        """This context's events until ``done`` or ``error`` (see
        :meth:`WebSocketContext.receive`)."""
        if not self._receiving():
            return
        while not self._finished:
            slot, wait, waited_from = self._slot, self._wait(), time.monotonic()
            assert slot is not None and self._sock is not None
            try:
                payload = await slot.get(wait)
            except BaseException as exc:
                inputs = self._on_failure(exc)
                if inputs is None:
                    raise
                for text in inputs:
                    await self._deliver(text, record=False)
                continue
            if payload is None:
                if self._socket_stalled(waited_from):
                    await self._sock.close()  # nothing at all arrived: the socket is dead
                raise self._timeout_error(wait)
            yield self._event(payload)

    async def _deliver(self, text: str, record: bool = True) -> None:
        step = self._next_step(text, record)
        if step is BIND:
            self._sock, self._slot = await self._connection._bind(self._context_id, text)
        elif step is RESEND:
            for sent in self._resend_list():  # as in the sync context
                await self._deliver(sent, record=False)
        else:
            assert self._sock is not None
            await self._sock.send(text)


class AsyncWebSocketConnection(ConnectionBase[AsyncWebSocketContext]):
    """The async :class:`~.sync.WebSocketConnection` (``async with``, or ``await enter()`` and
    ``await close()``); its reader task runs on the loop that opened it. ``send()``,
    ``recv()``, ``recv_bytes()`` and ``async for`` are awaited."""

    _context_class = AsyncWebSocketContext
    _slot_class = AsyncSlot
    _inbox_slot_class = AsyncInboxSlot

    def __init__(
        self, url: str, *, session_factory: Optional[Callable[[], Any]] = None, **options: Any
    ) -> None:
        """``session_factory``: makes the aiohttp session to use (else one of its own)."""
        self._session_factory = session_factory
        super().__init__(url, **options)

    def _setup(self) -> None:
        self._sock: Optional[AsyncSocket] = None
        self._lock: Optional[asyncio.Lock] = None
        self._session: Any = None
        # The inbox is made on the loop (Python 3.9 binds a queue to a loop when made).

    async def __aenter__(self) -> AsyncWebSocketConnection:
        return await self.enter()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def enter(self) -> AsyncWebSocketConnection:
        """Open the websocket now (else the first context opens it)."""
        await self._live()
        return self

    async def close(self) -> None:
        """Close the websocket (and the session it opened); pending receives raise."""
        self._mark_closed()
        self._stream.close()
        sock, self._sock = self._sock, None
        if sock is not None:
            await sock.close()
        session, self._session = self._session, None
        if session is not None and self._session_factory is None:
            await session.close()

    @property
    def socket(self) -> Optional[AsyncSocket]:
        """The current websocket (``None`` before the first connect)."""
        return self._sock

    # --- 4.2.0's connection-level calls ---------------------------------------------------------

    async def send(self, event: Any) -> None:
        """Send a 4.2.0 client event (see :meth:`WebSocketConnection.send`)."""
        self._inbox()
        step, context_id, text, target = self._stream.plan(event)
        if step is CANCEL_CONTEXT:
            await target.cancel()
        elif step is CANCEL:
            if target is not None:
                await target.send(text)
        elif step is STREAM_BIND:
            self._stream.bound[context_id] = await self._bind(context_id, text)
        else:
            await target.send(text)

    async def recv(self, timeout: Optional[float] = None) -> WebSocketResponse:
        """The next event of the contexts opened by :meth:`send` (see
        :meth:`WebSocketConnection.recv`)."""
        return (await self._next(timeout))[1]

    async def recv_bytes(self, timeout: Optional[float] = None) -> bytes:
        """As :meth:`recv`, the frame as received (:meth:`parse_event` decodes it)."""
        return (await self._next(timeout))[0]

    parse_event = staticmethod(decode)  # 4.2.0: one frame of recv_bytes() as an event

    async def __aiter__(self) -> AsyncIterator[WebSocketResponse]:
        """Every event of :meth:`recv` until the connection is closed."""
        while True:
            try:
                yield await self.recv()
            except WebSocketClosedError:
                if self._closed:
                    return
                raise

    def _inbox(self) -> Any:
        if self._stream.inbox is None:
            self._stream.inbox = asyncio.Queue(self._queue_size)
            if self._closed:
                self._stream.close()
        inbox: asyncio.Queue[object] = self._stream.inbox
        return inbox

    async def _next(self, timeout: Optional[float]) -> Tuple[bytes, WebSocketResponse]:
        inbox = self._inbox()
        while True:
            try:
                item = await asyncio.wait_for(inbox.get(), timeout)
            except asyncio.TimeoutError:
                raise self._stream.timeout_error(timeout) from None
            taken = self._stream.take(item)
            if taken is not None:
                return taken

    # --- sockets ------------------------------------------------------------------------------

    async def _get_session(self) -> Any:
        if self._session is None:
            if self._session_factory is not None:
                self._session = await self._session_factory()
            else:
                import aiohttp

                self._session = aiohttp.ClientSession(trace_configs=[handshake_trace()])
        return self._session

    async def _live(self) -> AsyncSocket:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            self._check_open()
            sock = self._sock
            if sock is not None and sock.is_open():
                return sock
            if sock is not None:
                await sock.close()
            sock = AsyncSocket(
                self.url, self._secret, self._queue_size, WIRE, self._headers, KEEPALIVE_S
            )
            # This router also makes the inbox's slots (see .stream); set before it reads.
            sock.router = Router(WIRE.context_id_of, self._make_slot)
            where = Where(
                ERROR_PREFIX, self.url, self._secret, connect_timeout=self._connect_timeout,
                connecting=True,
            )
            await sock.connect(await self._get_session(), where, self._connect_timeout)
            self._sock = sock
            self.connections_opened += 1
            return sock

    async def _bind(self, context_id: str, first: str) -> Tuple[AsyncSocket, AsyncSlot]:
        """Route ``context_id`` on the open socket and send its first input (see
        :meth:`WebSocketConnection._bind`)."""
        for attempt in (0, 1):
            sock = await self._live()
            slot = self._open_slot(sock, context_id, attempt)
            if slot is None:
                continue
            try:
                await sock.send(first)
            except Exception as exc:  # noqa: BLE001 - retried or re-raised
                self._first_send_failed(sock, slot, exc, attempt)
                await sock.close()
                continue
            return sock, slot  # type: ignore[return-value]
        raise WebSocketClosedError("unreachable")  # pragma: no cover
