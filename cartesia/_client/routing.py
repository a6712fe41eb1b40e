"""One context router for both websocket transports, and the choice of socket in a small pool.

Frames are routed by ``context_id`` (read without decoding the audio) to a bounded queue per
context; frames of contexts that were cancelled or finished are dropped; when the socket dies
every pending context fails with the same typed error. The queues are the only difference
between the sync and the async transport, so they are handed in (``make_slot``).
"""

from __future__ import annotations

import asyncio
import collections
import queue
import threading
import time
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    Generic,
    Iterator,
    List,
    Optional,
    Protocol,
    TypeVar,
    Union,
)

__all__ = [
    "Slot",
    "FrameQueue",
    "SlotReader",
    "SyncSlot",
    "AsyncSlot",
    "Router",
    "RoutedSocket",
    "PoolState",
    "Pick",
    "Payload",
    "CLOSED",
]

Payload = Union[str, bytes]
CLOSED = object()  # queue sentinel: the socket under this context is gone


class Slot:
    """One generation's place on a shared socket: its id, its failure and whether it is released."""

    def __init__(self, context_id: str) -> None:
        self.id = context_id
        self.failure: Optional[BaseException] = None
        self.released = False

    def put_nowait(self, item: object) -> bool:
        """Queue ``item`` without waiting; False when the queue is full."""
        raise NotImplementedError

    def drain(self) -> None:
        raise NotImplementedError

    def fail(self, error: BaseException) -> None:
        if self.failure is None:
            self.failure = error
        # When the queue is full the consumer finds `failure` once it has drained it.
        self.put_nowait(CLOSED)

    def _take(self, item: object) -> Optional[Payload]:
        if item is CLOSED:
            assert self.failure is not None
            raise self.failure
        return item  # type: ignore[return-value]


class FrameQueue:
    """A bounded FIFO for one reader and one consumer thread, cheaper per frame than ``queue.Queue``.

    Taking a frame that is already there and putting one nobody waits for touch no lock (a
    ``deque``'s ``append``/``popleft`` are atomic); the condition is only used to wait and to wake
    a waiting consumer (or a reader waiting for room). It has ``queue.Queue``'s methods and
    exceptions, so an inbox ``queue.Queue`` can stand in for it.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: Deque[object] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._getting = False  # a consumer waits for an item
        self._putting = False  # a reader waits for room
        self._woken = False  # wake() was called: the next wait() returns at once

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: object) -> None:
        if len(self._items) >= self.maxsize:
            raise queue.Full
        self._items.append(item)
        if self._getting:
            with self._cond:
                self._cond.notify()

    def put(self, item: object, timeout: Optional[float] = None) -> None:
        items = self._items
        if len(items) >= self.maxsize:
            with self._cond:
                self._putting = True
                try:
                    if len(items) >= self.maxsize:
                        self._cond.wait(timeout)
                finally:
                    self._putting = False
                if len(items) >= self.maxsize:
                    raise queue.Full
        self.put_nowait(item)

    def get_nowait(self) -> object:
        try:
            item = self._items.popleft()
        except IndexError:
            raise queue.Empty from None
        if self._putting:
            with self._cond:
                self._cond.notify()
        return item

    def get(self, timeout: Optional[float] = None) -> object:
        items = self._items
        if not items:
            deadline = None if timeout is None else time.monotonic() + timeout
            with self._cond:
                self._getting = True
                try:
                    # Set before this check: a put after it sees `_getting` and notifies.
                    while not items:
                        left = None if deadline is None else deadline - time.monotonic()
                        if left is not None and left <= 0:
                            raise queue.Empty
                        self._cond.wait(left)
                finally:
                    self._getting = False
        return self.get_nowait()

    def take_nowait(self) -> object:
        """The next item, or None when there is none (items are never None)."""
        try:
            item = self._items.popleft()
        except IndexError:
            return None
        if self._putting:
            with self._cond:
                self._cond.notify()
        return item

    def wait(self, timeout: Optional[float]) -> None:
        """Wait until an item is queued, :meth:`wake` is called or ``timeout`` passes."""
        if self._items:
            return
        with self._cond:
            self._getting = True
            try:
                if not self._items and not self._woken:
                    self._cond.wait(timeout)
                self._woken = False
            finally:
                self._getting = False

    def wake(self) -> None:
        """End a :meth:`wait` (now, or the next one): the consumer has something else to do."""
        with self._cond:
            self._woken = True
            self._cond.notify()

    def clear(self) -> None:
        self._items.clear()
        if self._putting:
            with self._cond:
                self._cond.notify()


class SlotReader(Protocol):
    """What reads a sync slot's socket in the consumer's own thread (see ``ws_sync``)."""

    def take(self, slot: SyncSlot, timeout: Optional[float]) -> Optional[Payload]: ...


class SyncSlot(Slot):
    """A slot of the sync client: a bounded queue between the socket's reader and one consumer.

    With a ``reader`` (set by the socket the slot opens on), :meth:`get` lets the consumer's
    thread read the socket itself while no other thread does, so frames need not cross threads.
    """

    reader: Optional[SlotReader] = None

    def __init__(self, context_id: str, maxsize: int) -> None:
        super().__init__(context_id)
        self.queue: Any = FrameQueue(maxsize)

    def put_nowait(self, item: object) -> bool:
        try:
            self.queue.put_nowait(item)
            return True
        except queue.Full:
            return False

    def put(
        self, item: object, alive: Callable[[], bool], deadline: Optional[float] = None
    ) -> bool:
        """Wait for room (backpressure on the socket) while the slot and the socket live, and
        until ``deadline`` (``time.monotonic()``); False when it passed with the queue full."""
        while not self.released and alive():
            wait = 0.05
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return False
            try:
                self.queue.put(item, timeout=wait)
                return True
            except queue.Full:
                continue
        return True  # released or the socket is gone: the frame has no reader any more

    def get(self, timeout: Optional[float]) -> Optional[Payload]:
        """The next frame; ``None`` when ``timeout`` passed without one."""
        reader = self.reader
        if reader is not None:
            item = self.queue.take_nowait()  # the common case: a frame is queued already
            if item is not None:
                return self._take(item)
            return reader.take(self, timeout)
        return self.wait_get(timeout)

    def wait_get(self, timeout: Optional[float]) -> Optional[Payload]:
        """The next frame as another thread queues it; ``None`` when ``timeout`` passed."""
        if self.failure is not None and self.queue.empty():
            raise self.failure
        try:
            item = self.queue.get(timeout=timeout)
        except queue.Empty:
            return None
        return self._take(item)

    def drain(self) -> None:
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                return


class AsyncSlot(Slot):
    """A slot of the async client: an asyncio bounded queue (frames stay undecoded).

    A consumer that finds the queue empty waits on one future of its own, with a timer for its
    timeout, which the reader resolves when it queues a frame: no task and no ``wait_for`` per
    wait (``wait_for`` makes a task per call before Python 3.12).
    """

    _waiter: Optional[asyncio.Future[None]] = None  # also for subclasses that share a queue

    def __init__(self, context_id: str, maxsize: int) -> None:
        super().__init__(context_id)
        self.queue: asyncio.Queue[object] = asyncio.Queue(maxsize)

    def _wake(self) -> None:
        if self._waiter is not None:
            _resolve(self._waiter)

    def put_nowait(self, item: object) -> bool:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        self._wake()
        return True

    async def put(self, item: object) -> None:
        """Wait for room (backpressure on the socket), then queue ``item``."""
        await self.queue.put(item)
        self._wake()

    async def get(self, timeout: Optional[float]) -> Optional[Payload]:
        if self.failure is not None and self.queue.empty():
            raise self.failure
        try:
            item = self.queue.get_nowait()  # the common case under load: no waiting at all
        except asyncio.QueueEmpty:
            if not await self._wait(timeout):
                return None
            item = self.queue.get_nowait()
        return self._take(item)

    async def _wait(self, timeout: Optional[float]) -> bool:
        """Wait until something is queued; False when ``timeout`` passed first."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        timer = None if timeout is None else loop.call_later(timeout, _resolve, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
        return not self.queue.empty()

    def drain(self) -> None:
        while True:
            try:
                self.queue.get_nowait()
            except asyncio.QueueEmpty:
                return


def _resolve(waiter: asyncio.Future[None]) -> None:
    """End a consumer's wait: a frame was queued, or its timer ran out (whichever comes first)."""
    if not waiter.done():
        waiter.set_result(None)


S = TypeVar("S", bound=Slot)


class Router(Generic[S]):
    """Which context a frame belongs to, for the contexts open on one socket (no I/O).

    Args:
        context_id_of: The dialect's way to read a frame's context id without decoding it.
        make_slot: Builds the slot (and its queue) of a new context.
    """

    def __init__(
        self,
        context_id_of: Callable[[Payload], Optional[str]],
        make_slot: Callable[[str], S],
    ) -> None:
        self._context_id_of = context_id_of
        self._make_slot = make_slot
        self.contexts: Dict[str, S] = {}
        self.dropped_frames = 0
        self.last_frame = 0.0
        self.waiting_on_consumer = False

    def __len__(self) -> int:
        return len(self.contexts)

    def __iter__(self) -> Iterator[S]:
        return iter(list(self.contexts.values()))

    def open(self, context_id: str) -> S:
        if context_id in self.contexts:
            raise ValueError(f"context_id {context_id!r} is already in use by a running generation")
        slot = self._make_slot(context_id)
        self.contexts[context_id] = slot
        return slot

    def target(self, payload: Payload) -> Optional[S]:
        """The context ``payload`` is for, or None: it is dropped (late frame of a dead context)."""
        self.last_frame = time.monotonic()
        context_id = self._context_id_of(payload)
        if context_id is None:
            # v0 frames always carry context_id; one without can only be meant for a lone context.
            if len(self.contexts) == 1:
                return next(iter(self.contexts.values()))
            self.dropped_frames += 1
            return None
        slot = self.contexts.get(context_id)
        if slot is None:
            self.dropped_frames += 1
        return slot

    def release(self, slot: S) -> bool:
        """Stop routing to ``slot``; True the first time (then the caller may send a cancel)."""
        if slot.released:
            return False
        slot.released = True
        if self.contexts.get(slot.id) is slot:
            del self.contexts[slot.id]
        slot.drain()  # also unblocks a reader waiting on this full queue
        return True

    def fail_all(self, error: BaseException) -> None:
        contexts, self.contexts = self.contexts, {}
        for slot in contexts.values():
            slot.fail(error)

    def stalled_since(self, since: float) -> bool:
        """True when no frame at all arrived since ``since`` (a dead socket), unless the reader
        is the one waiting (on a slow consumer's full queue: then only this context starved)."""
        return self.last_frame < since and not self.waiting_on_consumer


class RoutedSocket(Generic[S]):
    """The routing half of one websocket, the same for both transports.

    Its contexts, its failure (once set, every pending and every new context fails with it) and
    whether it is still opening. The transport adds the connection and implements
    ``link_open``. A lock guards the router: the sync reader thread routes while callers open and
    release contexts (uncontended, hence nearly free, on an event loop).
    """

    def __init__(
        self, context_id_of: Callable[[Payload], Optional[str]], make_slot: Callable[[str], S]
    ) -> None:
        self.router: Router[S] = Router(context_id_of, make_slot)
        self.failure: Optional[BaseException] = None
        self.connected = False  # the handshake finished
        self.closing = False
        self._lock = threading.Lock()

    @property
    def load(self) -> int:
        return len(self.router)

    @property
    def contexts(self) -> Dict[str, S]:
        return self.router.contexts

    def link_open(self) -> bool:
        raise NotImplementedError

    def is_open(self) -> bool:
        """Usable for a new context: opening, or open and not failed."""
        if self.failure is not None or self.closing:
            return False
        return self.link_open() if self.connected else True

    def fail(self, error: BaseException) -> None:
        with self._lock:
            if self.failure is None:
                self.failure = error
            self.router.fail_all(self.failure)

    def open_context(self, context_id: str) -> S:
        with self._lock:
            if self.failure is not None:
                raise self.failure
            return self.router.open(context_id)

    def route(self, payload: Payload) -> Optional[S]:
        with self._lock:
            return self.router.target(payload)

    def release_slot(self, slot: S) -> bool:
        """Stop routing to ``slot``; True the first time (then a cancel may be sent)."""
        with self._lock:
            return self.router.release(slot)


R = TypeVar("R", bound="RoutedSocket[Any]")


@dataclass
class Pick(Generic[R]):
    """The outcome of :meth:`PoolState.pick`."""

    socket: R
    slot: Optional[Slot]
    opener: bool  # the caller must connect the socket (else: wait until it is connected)
    reused: bool  # it was connected already


class PoolState(Generic[R]):
    """Which socket a new context goes on: as few sockets as the load needs (no I/O).

    Args:
        new_socket: Builds an unconnected socket.
        per_socket: Contexts one socket carries at the most (below the server's own limit).
        max_sockets: Sockets at the most; beyond that a new context waits.
    """

    def __init__(self, new_socket: Callable[[], R], per_socket: int, max_sockets: int) -> None:
        self._new_socket = new_socket
        self.per_socket = per_socket
        self.max_sockets = max_sockets
        self.sockets: List[R] = []
        self.connections_opened = 0

    def prune(self) -> List[R]:
        """Forget the sockets that died; returns them (for the transport to tear down)."""
        dead = [s for s in self.sockets if not s.is_open()]
        if dead:
            self.sockets = [s for s in self.sockets if s.is_open()]
        return dead

    def current(self) -> Optional[R]:
        self.prune()
        return self.sockets[0] if self.sockets else None

    def pick(self, context_id: Optional[str]) -> Optional[Pick[R]]:
        """The socket (and, with ``context_id``, the slot) for a new context; None: wait."""
        self.prune()
        roomy = [s for s in self.sockets if s.load < self.per_socket]
        if roomy:
            sock, opener = roomy[0], False  # fill in order
        elif len(self.sockets) < self.max_sockets:
            sock, opener = self._new_socket(), True
            self.sockets.append(sock)
            self.connections_opened += 1
        else:
            return None
        reused = sock.connected and not opener
        slot = sock.open_context(context_id) if context_id is not None else None
        return Pick(sock, slot, opener, reused)

    def take_all(self) -> List[R]:
        sockets, self.sockets = self.sockets, []
        return sockets
