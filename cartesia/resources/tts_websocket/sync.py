"""The sync ``/tts/websocket`` connection and its contexts: the I/O around the shared rules of :mod:`.base`."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable, Iterator, Optional, Tuple

from ..._client.routing import Router, SyncSlot
from ..._client.transport.ws_sync import SyncSocket, ws_logger
from ...errors import WebSocketClosedError
from ...protocol import v1 as WIRE
from .base import BIND, RESEND, ConnectionBase, ContextBase
from .events import WebSocketResponse, decode
from .stream import BIND as STREAM_BIND
from .stream import CANCEL, CANCEL_CONTEXT, SyncInboxSlot

__all__ = ["WebSocketConnection", "WebSocketContext"]


class WebSocketContext(ContextBase[None, int]):
    """One context on a :class:`WebSocketConnection` (4.2.0's ``WebSocketContext``).

    Any thread may drive its own contexts; the connection's reader thread routes the frames.
    """

    _sock: Optional[SyncSocket]
    _slot: Optional[SyncSlot]
    _connection: WebSocketConnection

    def _submit(
        self, build: Callable[[], Optional[str]], result: Optional[Callable[[], Any]] = None
    ) -> Any:
        text = build()
        if text is not None:
            self._deliver(text)
        return result() if result is not None else None

    def cancel(self) -> None:
        """Stop this context: the server stops generating, its late frames are dropped."""
        text = self._cancel_message()
        if text is not None and self._sock is not None:
            try:
                self._sock.send(text)
            except Exception:  # noqa: BLE001 - the socket died; the server stopped it with it
                ws_logger().debug("could not send the cancel for context %s", self._context_id)

    def receive(self) -> Iterator[WebSocketResponse]:
        """This context's events until ``done`` or ``error`` (both are yielded).

        Raises:
            WebSocketClosedError: The socket died before this context's ``done``.
            FirstAudioTimeoutError, ChunkGapTimeoutError: No frame within the context's timeout.
        """
        if not self._receiving():
            return
        while not self._finished:
            slot, wait, waited_from = self._slot, self._wait(), time.monotonic()
            assert slot is not None and self._sock is not None
            try:
                payload = slot.get(wait)
            except BaseException as exc:
                inputs = self._on_failure(exc)
                if inputs is None:
                    raise
                for text in inputs:
                    self._deliver(text, record=False)
                continue
            if payload is None:
                if self._socket_stalled(waited_from):
                    self._sock.close_nowait()  # nothing at all arrived: the socket is dead
                raise self._timeout_error(wait)
            yield self._event(payload)

    def _deliver(self, text: str, record: bool = True) -> None:
        step = self._next_step(text, record)
        if step is BIND:
            self._sock, self._slot = self._connection._bind(self._context_id, text)
        elif step is RESEND:
            for sent in self._resend_list():  # this input is the last of them
                self._deliver(sent, record=False)
        else:
            assert self._sock is not None
            self._sock.send(text)


class WebSocketConnection(ConnectionBase[WebSocketContext]):
    """A websocket to ``/tts/websocket`` and its contexts (4.2.0's ``TTSResourceConnection``).

    A context manager (``with``), or call :meth:`enter` and :meth:`close`. Safe to use from
    several threads. Besides its contexts it has 4.2.0's connection-level calls: :meth:`send`
    a client event, then :meth:`recv` (or iterate the connection) for the events of the
    contexts opened that way (see :mod:`.stream`).

    Args:
        url: The ``wss://.../tts/websocket`` URL (with any query parameters).
        headers: Headers of the upgrade (authentication, ``Cartesia-Version``).
        secret: The credential, scrubbed from every message.
        connect_timeout: Seconds a connect may take.
        queue_size: Frames one context (and the connection's inbox) may have waiting (see the
            package docstring).
    """

    _context_class = WebSocketContext
    _slot_class = SyncSlot
    _inbox_slot_class = SyncInboxSlot

    def _setup(self) -> None:
        self._sock: Optional[SyncSocket] = None
        self._lock = threading.Lock()
        self._stream.inbox = queue.Queue(self._queue_size)

    def __enter__(self) -> WebSocketConnection:
        return self.enter()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def enter(self) -> WebSocketConnection:
        """Open the websocket now (else the first context opens it)."""
        self._live()
        return self

    def close(self) -> None:
        """Close the websocket; pending ``receive()`` and ``recv()`` calls raise
        ``WebSocketClosedError``."""
        self._mark_closed()
        self._stream.close()
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    @property
    def socket(self) -> Optional[SyncSocket]:
        """The current websocket (``None`` before the first connect)."""
        return self._sock

    # --- 4.2.0's connection-level calls ---------------------------------------------------------

    def send(self, event: Any) -> None:
        """Send a 4.2.0 client event: a generation request (a mapping with ``context_id``,
        ``model_id``, ``transcript``, ``voice``, ``output_format``...) or a cancel
        (``{"context_id": ..., "cancel": True}``). Its events come from :meth:`recv`.

        Raises:
            InvalidInputError: No ``context_id``, or the id belongs to a context object.
        """
        step, context_id, text, target = self._stream.plan(event)
        if step is CANCEL_CONTEXT:
            target.cancel()
        elif step is CANCEL:
            if target is not None:
                target.send(text)
        elif step is STREAM_BIND:
            self._stream.bound[context_id] = self._bind(context_id, text)
        else:
            target.send(text)

    def recv(self, timeout: Optional[float] = None) -> WebSocketResponse:
        """The next event of the contexts opened by :meth:`send`, in arrival order.

        Raises:
            WebSocketClosedError: The socket died while they ran, or the connection was closed.
            CartesiaTimeoutError: Nothing within ``timeout`` seconds.
        """
        return self._next(timeout)[1]

    def recv_bytes(self, timeout: Optional[float] = None) -> bytes:
        """As :meth:`recv`, the frame as received (:meth:`parse_event` decodes it)."""
        return self._next(timeout)[0]

    parse_event = staticmethod(decode)  # 4.2.0: one frame of recv_bytes() as an event

    def __iter__(self) -> Iterator[WebSocketResponse]:
        """Every event of :meth:`recv` until the connection is closed."""
        while True:
            try:
                yield self.recv()
            except WebSocketClosedError:
                if self._closed:
                    return
                raise

    def _next(self, timeout: Optional[float]) -> Tuple[bytes, WebSocketResponse]:
        while True:
            try:
                item = self._stream.inbox.get(timeout=timeout)
            except queue.Empty:
                raise self._stream.timeout_error(timeout) from None
            taken = self._stream.take(item)
            if taken is not None:
                return taken

    # --- sockets ------------------------------------------------------------------------------

    def _inbox(self) -> Any:
        return self._stream.inbox

    def _live(self) -> SyncSocket:
        """The open websocket; a new one when the last one closed (transparent reconnect)."""
        with self._lock:
            self._check_open()
            sock = self._sock
            if sock is not None and sock.is_open():
                return sock
            if sock is not None:
                sock.close_nowait()
            sock = SyncSocket(self.url, self._secret, self._queue_size, WIRE, self._headers)
            # This router also makes the inbox's slots (see .stream); set before it reads.
            sock.router = Router(WIRE.context_id_of, self._make_slot)
            sock.connect(None, self._connect_timeout)
            self._sock = sock
            self.connections_opened += 1
            return sock

    def _bind(self, context_id: str, first: str) -> Tuple[SyncSocket, SyncSlot]:
        """Route ``context_id`` on the open socket and send its first input there.

        A socket that closed before that input reached it is replaced once: nothing of the
        context was sent or delivered, so nothing is replayed.
        """
        for attempt in (0, 1):
            sock = self._live()
            slot = self._open_slot(sock, context_id, attempt)
            if slot is None:
                continue
            try:
                sock.send(first)
            except Exception as exc:  # noqa: BLE001 - retried or re-raised
                self._first_send_failed(sock, slot, exc, attempt)
                sock.close_nowait()
                continue
            return sock, slot  # type: ignore[return-value]
        raise WebSocketClosedError("unreachable")  # pragma: no cover
