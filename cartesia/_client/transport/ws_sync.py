"""Sync websocket over the websockets library: a small pool of multiplexed sockets.

A caller waiting for its context's frame reads the socket in its own thread while no other
thread does (``ws_turns``), routing what it reads to the contexts open on it (see ``routing``):
a lone context's frames never cross threads, and any number of threads can run generations on
one client at the same time. The library's own reader thread reads while no caller waits.
"""

from __future__ import annotations

import inspect
import logging
import socket
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple, cast

from websockets.exceptions import ConnectionClosed, ConnectionClosedError
from websockets.frames import Opcode
from websockets.protocol import State
from websockets.sync.client import ClientConnection, connect
from websockets.sync.utils import Deadline

from ...protocol import Dialect
from ...protocol.events import Event
from ..errors import Where, closed_error, map_exception
from ..generation import Generation
from ..redact import RedactingFilter
from ..routing import FrameQueue, Payload, PoolState, RoutedSocket, SyncSlot
from .locked_tls import LockedTLSContext, LockedTLSSocket
from .ws_frames import FramePrefilter
from .ws_turns import GatedSocket, ReadTurns, Socket

__all__ = ["SyncSocket", "SyncWsPool", "SyncWsAttempt", "ws_logger"]

WHAT = "Failed to generate audio. "
# websockets >= 17.1 wants `legacy=True` to return a connection outside a `with` block; older
# versions do not know the argument.
_CONNECT_EXTRA = {"legacy": True} if "legacy" in inspect.signature(connect).parameters else {}
_connect: Any = connect  # its overloads depend on `legacy`, which depends on the version


_TEXT, _BINARY, _CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT


class RoutedConnection(ClientConnection):
    """The library's connection, whose reading thread hands each message to ``on_message``.

    The reading thread is a waiting caller's whenever one waits (``read_once``, see
    ``ws_turns``), else the library's reader thread (always on Windows, and with a socket
    timeout or a proxy's TLS-in-TLS).

    Handshake, TLS, proxies, pings and pongs, keepalive and the close handshake all stay with the
    library; only the delivery of data messages changes: instead of its message assembler (one
    more queue, lock and thread hop per frame, then our own reader thread calling ``recv()``),
    ``process_event`` passes the payload (bytes, never decoded) to the router right away. Simple
    data frames skip the library's frame parser too (``FramePrefilter``: they arrive here as
    ``bytes`` events, in order with the library's own). The override points (``process_event``,
    ``recv_events``, the protocol's ``receive_data``/``receive_eof``) are the same from
    websockets 13 on.
    """

    # Fewer, larger reads: a 0.1 s frame of 44.1 kHz float32 audio is ~23.6 kB of base64 JSON.
    recv_bufsize = 256 * 1024

    on_message: Callable[[bytes], None]
    on_end: Callable[[], None]
    prefilter: FramePrefilter  # set by the reader thread before its first read

    def __init__(
        self,
        on_message: Callable[[bytes], None],
        on_end: Callable[[], None],
        *args: Any,
        contexts: Optional[Callable[[], int]] = None,
        **kwargs: Any,
    ) -> None:
        self.on_message = on_message
        self.on_end = on_end
        self._fragments: List[bytes] = []
        self.turns: Optional[ReadTurns] = None
        readable = cast(Socket, args[0] if args else None)
        if (
            contexts is not None
            and type(readable) in (socket.socket, LockedTLSSocket)
            and readable.gettimeout() is None
            and ReadTurns.supported()
        ):
            # Callers may read it in their own threads; over TLS each read is one socket read
            # (a record cut across reads then waits for the next, not past a caller's deadline).
            if isinstance(readable, LockedTLSSocket):
                readable.single_read = True
            self.turns = ReadTurns(readable, contexts, self.process_event)
            args = (GatedSocket(readable, self.turns), *args[1:])
        super().__init__(*args, **kwargs)

    def process_event(self, event: Any) -> None:
        if type(event) is bytes:  # a simple data frame's payload, taken out by the prefilter
            self.on_message(event)
            return
        if self.response is None:  # the handshake's answer
            super().process_event(event)
            return
        opcode = event.opcode
        if opcode is _TEXT or opcode is _BINARY:
            if event.fin:
                data = event.data
                self.on_message(data if type(data) is bytes else bytes(data))
            else:
                self._fragments = [bytes(event.data)]
        elif opcode is _CONT:
            self._fragments.append(bytes(event.data))
            if event.fin:
                data, self._fragments = b"".join(self._fragments), []
                self.on_message(data)
        else:  # control frames: the library's (pong bookkeeping)
            super().process_event(event)

    def recv_events(self) -> None:
        # Installed here, in the reader thread, before its first read: only this thread (and
        # close_socket(), under the same protocol lock) feeds the protocol.
        self.prefilter = FramePrefilter(self.protocol)
        try:
            super().recv_events()
        finally:
            if self.turns is not None:  # it holds the turn for good: callers only wait now
                self.turns.library_only = True
            self.on_end()

    def read_once(self, deadline: Optional[float]) -> bool:
        """One read in a caller's thread, fed to the protocol as the library's thread would
        (its events go to the turns' backlog); False when nothing came before ``deadline`` or
        the reading ended (the library's thread then takes the end, see ``ReadTurns``)."""
        turns = self.turns
        assert turns is not None
        if self.protocol.state is not State.OPEN:
            turns.library_only = True
            turns.poke()
            return False
        data = turns.read(deadline, self.recv_bufsize)
        if data is None:
            return False
        error: Optional[BaseException] = None
        with self.protocol_mutex:
            self.protocol.receive_data(data)
            events = self.protocol.events_received()
            try:
                self.send_data()  # pongs, the close handshake's answer
            except Exception as exc:  # noqa: BLE001 - the library's thread reports it
                error = exc
            if self.protocol.close_expected() and self.close_deadline is None:
                self.close_deadline = Deadline(self.close_timeout)
        turns.backlog.extend(events)
        if error is not None:
            turns.end_with(error)
        elif self.protocol.state is not State.OPEN:
            turns.library_only = True
            turns.poke()
        return True

    def close_socket(self) -> None:
        turns = self.turns
        if turns is not None:
            turns.close()
            try:  # wakes a caller waiting in recv()/poll() (closing the descriptor would not)
                turns.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        super().close_socket()

    def close(self, *args: Any, **kwargs: Any) -> None:
        if self.turns is not None:  # the close handshake's answer is the library thread's
            self.turns.library_only = True
            self.turns.poke()
        super().close(*args, **kwargs)

    def recv(self, *args: Any, **kwargs: Any) -> Any:
        """Not available: messages go to the contexts (a ``recv()`` here would wait forever)."""
        raise RuntimeError(
            "this websocket's messages are routed to its generations' contexts; "
            "read them through generate() (or a context's receive()), not recv()"
        )

    def closed_exception(self) -> ConnectionClosed:
        """What ended the connection, as ``recv()`` would have raised it."""
        try:
            return self.protocol.close_exc
        except AssertionError:  # not closed yet (ended by an error on our side)
            return ConnectionClosedError(None, None)


def ws_logger() -> logging.Logger:
    """The logger handed to the websockets library; its records never carry a credential."""
    logger = logging.getLogger("cartesia.websocket")
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    return logger


class SyncSocket(RoutedSocket[SyncSlot]):
    """One websocket, its reader thread and the contexts routed on it."""

    def __init__(
        self,
        url: str,
        secret: Optional[str],
        queue_size: int,
        dialect: Dialect,
        headers: Optional[Dict[str, str]] = None,
    ) -> None:
        super().__init__(dialect.context_id_of, lambda cid: SyncSlot(cid, queue_size))
        self.dialect = dialect
        self._url = url
        self._secret = secret
        # Sent with the upgrade (the current API authenticates and versions by header).
        self._extra: Dict[str, Any] = {"additional_headers": headers} if headers else {}
        self.conn: Optional[RoutedConnection] = None
        self.ready = threading.Event()
        self._send_lock = threading.Lock()
        self._turns: Optional[ReadTurns] = None

    def link_open(self) -> bool:
        conn = self.conn
        try:
            return (
                conn is not None
                and conn.protocol.state is State.OPEN
                and conn.socket.fileno() != -1
            )
        except (AttributeError, OSError):
            return False

    def connect(self, gen: Optional[Generation], timeout: Optional[float]) -> None:
        """Open the connection (the caller that created this socket does it, once)."""
        where = self._where(gen, timeout)
        error: Optional[BaseException] = None
        try:
            # wss: TLS that the library's reader thread and the callers' sends can share.
            tls = {"ssl": LockedTLSContext()} if self._url.lower().startswith("wss:") else {}
            self.conn = _connect(
                self._url,
                create_connection=self._new_connection,
                open_timeout=timeout,
                # Closing must stay quick even when the peer is gone (a stalled socket).
                close_timeout=1.0,
                max_size=self.dialect.MAX_MESSAGE_BYTES,
                compression=None,
                logger=ws_logger(),
                **_CONNECT_EXTRA,
                **self._extra,
                **tls,
            )
        except Exception as exc:  # noqa: BLE001 - mapped (outside the except: no chaining)
            error = map_exception(exc, where)
        if error is not None:
            self.fail(error)
            self.ready.set()
            raise error
        self.connected = True
        self.ready.set()

    def _new_connection(self, *args: Any, **kwargs: Any) -> RoutedConnection:
        conn = RoutedConnection(
            self._on_message, self._on_end, *args, contexts=self._reading_contexts, **kwargs
        )
        self._turns = conn.turns
        return conn

    def open_context(self, context_id: str) -> SyncSlot:
        slot = super().open_context(context_id)
        if type(slot.queue) is FrameQueue:  # its own queue (not the connection's inbox)
            slot.reader = self
        return slot

    def _reading_contexts(self) -> int:
        """Contexts whose callers may read the socket (not the connection's inbox)."""
        return sum(1 for slot in list(self.router.contexts.values()) if slot.reader is not None)

    def release_slot(self, slot: SyncSlot) -> bool:
        released = super().release_slot(slot)
        turns = self._turns
        if released and turns is not None and slot.reader is not None:
            turns.poke()  # perhaps the last caller that reads: the library's thread looks again
        return released

    def take(self, slot: SyncSlot, timeout: Optional[float]) -> Optional[Payload]:
        """The slot's next frame (``SyncSlot.get``): read in this thread when nobody else reads."""
        turns, conn = self._turns, self.conn
        if turns is None or conn is None:
            return slot.wait_get(timeout)
        return turns.take(slot, timeout, conn.read_once)

    def _where(self, gen: Optional[Generation], timeout: Optional[float]) -> Where:
        if gen is not None:
            return gen.where(WHAT, self._url, connecting=True)
        return Where(WHAT, self._url, self._secret, connect_timeout=timeout, connecting=True)

    def wait_ready(self, gen: Optional[Generation], timeout: Optional[float]) -> None:
        """Wait for another thread's connect of this socket (its failure is ours too)."""
        if not self.ready.wait(timeout):
            raise self._where(gen, timeout).connect_timeout_error()
        if self.failure is not None:
            raise self.failure

    def _on_message(self, payload: bytes) -> None:
        """One data message, in the reading thread: route it to its context."""
        slot = self.route(payload)
        if slot is None or slot.put_nowait(payload):
            if self.router.waiting_on_consumer:  # a frame left by a caller's read went out
                self.router.waiting_on_consumer = False
            return
        turns = self._turns
        if turns is not None and turns.leader_thread == threading.get_ident():
            self._leader_put(turns, slot, payload)
            return
        # Backpressure: stop reading until the consumer catches up (or lets go).
        self.router.waiting_on_consumer = True
        try:
            slot.put(payload, alive=lambda: not self.closing)
        finally:
            self.router.waiting_on_consumer = False

    def _leader_put(self, turns: ReadTurns, slot: SyncSlot, payload: bytes) -> None:
        """A caller read a frame for a full queue. Another's is waited for until the caller's
        own deadline, unless the caller has a frame of its own to go on with; its own (the
        read brought more frames than the queue holds) cannot be. Then the frame is left first
        in line for the next reader, who delivers it before it reads anything more (the rest
        of that one read waits behind it)."""
        self.router.waiting_on_consumer = True  # not a dead socket: a consumer is behind
        leader = turns.leader
        if (
            leader is not None
            and slot is not leader
            and leader.queue.empty()
            and slot.put(payload, alive=lambda: not self.closing, deadline=turns.deadline)
        ):
            self.router.waiting_on_consumer = False
        else:
            turns.stall(payload)

    def _on_end(self) -> None:
        """The reader thread ends (the connection closed or broke): fail every context."""
        conn = self.conn
        if self.closing:
            error: BaseException = closed_error(1000, "the client was closed", self._secret)
        elif conn is None:
            error = closed_error(1006, "", self._secret)
        else:
            error = map_exception(conn.closed_exception(), Where(WHAT, self._url, self._secret))
        self.fail(error)

    def release(self, slot: SyncSlot, *, cancel: bool) -> None:
        if self.release_slot(slot) and cancel and self.is_open():
            try:
                self.send(self.dialect.ws_cancel(slot.id))
            except Exception:  # noqa: BLE001 - the socket died; the next generation replaces it
                ws_logger().debug("could not send the cancel for context %s", slot.id)

    def send(self, text: str) -> None:
        conn = self.conn
        error: Optional[BaseException] = None
        if conn is None:
            raise self.failure or closed_error(None, "not connected", self._secret)
        try:
            with self._send_lock:
                conn.send(text)
        except Exception as exc:  # noqa: BLE001
            error = map_exception(exc, Where(WHAT, self._url, self._secret))
        if error is not None:
            raise error

    def close(self) -> None:
        """Close the connection (bounded by the 1 s close timeout); its reader thread ends."""
        self.closing = True
        conn = self.conn
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a broken socket can fail; it is gone
                pass

    def close_nowait(self) -> None:
        """Tear the connection down without waiting for anything (``__del__``, exit, a stall).

        The library's own ``close()`` joins its receive thread, which never returns during
        interpreter shutdown; shutting the socket down ends both threads on their own.
        """
        self.closing = True
        conn = self.conn
        if conn is None:
            return
        close_socket = getattr(conn, "close_socket", None)
        try:
            if close_socket is not None:
                close_socket()
            else:  # pragma: no cover - websockets without close_socket()
                conn.socket.shutdown(socket.SHUT_RDWR)
                conn.socket.close()
        except Exception:  # noqa: BLE001
            pass


class SyncWsPool:
    """The sync client's websockets: as few as the load needs, at most ``max_sockets``."""

    def __init__(
        self,
        url: str,
        secret: Optional[str],
        *,
        queue_size: int,
        per_socket: int,
        max_sockets: int,
        dialect: Dialect,
    ) -> None:
        self.url = url
        self.state: PoolState[SyncSocket] = PoolState(
            lambda: SyncSocket(url, secret, queue_size, dialect), per_socket, max_sockets
        )
        self._cond = threading.Condition()

    @property
    def sockets(self) -> List[SyncSocket]:
        return self.state.sockets

    @property
    def connections_opened(self) -> int:
        return self.state.connections_opened

    def current(self) -> Optional[SyncSocket]:
        with self._cond:
            self._prune()
            return self.state.current()

    def _prune(self) -> None:
        for sock in self.state.prune():
            sock.close_nowait()

    def acquire(
        self, gen: Optional[Generation], context_id: Optional[str], connect_timeout: Optional[float]
    ) -> Tuple[SyncSocket, Optional[SyncSlot], bool]:
        """A socket with room and (with ``context_id``) the context's slot on it; and whether the
        socket was open already. Waits while the pool is full."""
        with self._cond:
            while True:
                self._prune()
                pick = self.state.pick(context_id)
                if pick is not None:
                    break
                left = gen.deadline.total_left() if gen is not None else None
                if gen is not None and left == 0:
                    raise gen.deadline.expired()
                self._cond.wait(0.5 if left is None else min(left, 0.5))
        sock, slot = pick.socket, cast(Optional[SyncSlot], pick.slot)
        try:
            if pick.opener:
                sock.connect(gen, connect_timeout)
            else:
                sock.wait_ready(gen, connect_timeout)
        except BaseException:
            if slot is not None:
                self.release(sock, slot, cancel=False)
            raise
        return sock, slot, pick.reused

    def release(self, sock: SyncSocket, slot: SyncSlot, *, cancel: bool) -> None:
        sock.release(slot, cancel=cancel)
        with self._cond:
            self._cond.notify()

    def close(self, *, wait: bool = True) -> None:
        with self._cond:
            sockets = self.state.take_all()
            self._cond.notify_all()
        for sock in sockets:
            sock.close() if wait else sock.close_nowait()


class SyncWsAttempt:
    """One generation on a pooled socket: send the request, take this context's frames."""

    def __init__(
        self, pool: SyncWsPool, gen: Generation, context_id: str, message: str, experimental: bool
    ) -> None:
        self._pool = pool
        self._gen = gen
        self._experimental = experimental
        self._closed = False
        self.sock, slot, self.reused = pool.acquire(gen, context_id, gen.connect_limit())
        assert slot is not None
        self.slot = slot
        self.context_id = context_id
        try:
            self.sock.send(message)
        except BaseException:
            self.close(False)
            raise

    def receive(self) -> List[Event]:
        waited_from = time.monotonic()
        payload = self.slot.get(self._gen.wait_limit())
        if payload is None:
            if self.sock.router.stalled_since(waited_from):
                self.sock.close_nowait()  # nothing at all arrived: the socket is dead
            raise self._gen.expired()
        return self.sock.dialect.decode_ws(payload, sink=self._gen.sink)

    def delivered(self) -> None:
        if self._experimental:
            self.sock.send(self.sock.dialect.ws_ack(self.context_id))

    def close(self, completed: bool) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.release(self.sock, self.slot, cancel=self._experimental and not completed)
