"""Whose thread reads a sync websocket next: a caller waiting for its frame, or the library's own.

A caller whose context has no frame queued takes the *read turn* and reads the socket in its
own thread (read, frame cutting, routing), so a frame of the context that reads never crosses
threads; frames of other contexts go into their queues and wake their callers, who wait
meanwhile (*followers*) and take the turn when the reader gives it up. The websockets library's
reader thread keeps the socket whenever no caller is waiting (it answers pings, sees the close
handshake and the end of the connection): its reads wait for its turn here (``GatedSocket``),
which it gets when no caller waited for ``IDLE`` seconds, when no context is open, and for good
once the connection leaves OPEN or a caller's read ended (EOF, an error: the library handles
those exactly as before, from what the caller's read returned).
"""

from __future__ import annotations

import collections
import select
import socket
import struct
import threading
import time
from typing import Any, Callable, Deque, List, Optional, Union

from ..routing import Payload, SyncSlot
from .locked_tls import LockedTLSSocket

__all__ = ["ReadTurns", "GatedSocket", "IDLE"]

#: Seconds without a waiting caller before the library's thread reads again (it then answers
#: pings and sees the peer close; a caller streaming frames comes back far sooner).
IDLE = 0.5
#: The longest one wait of a caller lasts before it looks again (a safety net: every hand-over
#: of the turn wakes a waiting caller).
SLICE = 1.0
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
#: What callers read: plain TCP, or TLS whose every read is one socket read (``single_read``).
Socket = Union[socket.socket, LockedTLSSocket]


class ReadTurns:
    """The read turn of one websocket (see the module docstring).

    Args:
        sock: The connected socket (blocking, no timeout: the library's after its handshake),
            plain or TLS.
        contexts: How many contexts are open on the socket now.
        process: The connection's handler of one event (the library's, or a payload to route).
    """

    def __init__(
        self, sock: Socket, contexts: Callable[[], int], process: Callable[[Any], None]
    ) -> None:
        self.sock = sock
        self._contexts = contexts
        self._process = process
        self.role = threading.Lock()  # held by the thread reading and processing the next bytes
        self._lock = threading.Lock()  # guards `waiting`
        self.waiting: List[SyncSlot] = []  # callers waiting while another thread reads
        self._idle = threading.Condition(threading.Lock())  # the library's thread waits here
        self.last_caller = 0.0  # when a caller last came to wait for a frame
        self.idle = IDLE
        self.library_only = False  # from now on only the library's thread reads
        self.ended: Any = None  # b"" (EOF) or the exception a caller's read ended with
        self.closing = False
        self._library_holds = False
        self.backlog: Deque[Any] = collections.deque()  # events read, not yet processed (in order)
        self.stalled = False  # the event at the backlog's front waits for room in a full queue
        self.leader: Optional[SyncSlot] = None  # the caller reading now ...
        self.leader_thread = 0  # ... its thread ...
        self.deadline: Optional[float] = None  # ... and until when it may wait (monotonic)
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN)
        # A blocking read returns within SLICE with EAGAIN (the socket stays blocking for
        # Python and the library, and its writes are not affected): one system call per read,
        # as with a plain blocking socket, where a non-blocking try and a poll() would be three
        # whenever the socket is empty (most reads with many streams).
        sec = int(SLICE)
        sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", sec, int((SLICE - sec) * 1e6))
        )

    @staticmethod
    def supported() -> bool:
        """Callers can read here: ``poll()`` and non-blocking ``recv`` flags (not on Windows)."""
        return _DONTWAIT != 0 and hasattr(select, "poll")

    # --- the library's thread --------------------------------------------------------------------

    def library_recv(self, size: int) -> bytes:
        """The library thread's ``socket.recv``: waits for its turn, then reads (blocking)."""
        while True:
            if self._library_holds:  # it processed its last read (or gives way): the turn is free
                self._library_holds = False
                self.role.release()
                self.pass_baton()
            while True:
                if self.closing:
                    return b""
                if self.ended is not None:
                    return self._take_end()
                if self._library_may_read() and self.role.acquire(False):
                    break
                with self._idle:
                    self._idle.wait(self.idle)
            self._library_holds = True
            if not self.drain():  # pragma: no cover - the library thread never stalls (it waits)
                raise AssertionError("library thread stalled")
            while True:
                if self.ended is not None:
                    return self._take_end()
                if self.closing:
                    return b""
                try:
                    return self.sock.recv(size)
                except BlockingIOError:  # SLICE of silence: a caller may wait for the turn
                    if self.waiting and not self.library_only:
                        break  # give the turn up, wait for it again

    def _library_may_read(self) -> bool:
        if self.library_only:
            return True
        if self.waiting:
            return False
        return not self._contexts() or time.monotonic() - self.last_caller >= self.idle

    def _take_end(self) -> bytes:
        ended, self.ended = self.ended, b""
        if isinstance(ended, BaseException):
            raise ended
        return b""

    def poke(self) -> None:
        """Let the library's thread look again now (a context ended, the reading ended)."""
        with self._idle:
            self._idle.notify()

    def end_with(self, what: Any) -> None:
        """A caller's read ended (``b""`` or the exception): the library's thread takes it."""
        self.ended = what
        self.library_only = True
        self.poke()

    def close(self) -> None:
        """The socket closes: nobody waits for a turn any more."""
        self.closing = True
        self.library_only = True
        self.poke()

    # --- callers ---------------------------------------------------------------------------------

    def take(
        self, slot: SyncSlot, timeout: Optional[float], read: Callable[[Optional[float]], bool]
    ) -> Optional[Payload]:
        """The slot's next frame, read in this thread while no other thread reads; ``None``
        when ``timeout`` passed first. ``read(deadline)`` reads and feeds the socket once."""
        q = slot.queue
        item = q.take_nowait()
        if item is not None:
            return slot._take(item)
        if slot.failure is not None:
            raise slot.failure
        if self.library_only:
            return slot.wait_get(timeout)
        now = time.monotonic()
        self.last_caller = now
        deadline = None if timeout is None else now + timeout
        while True:
            led = self.role.acquire(False)
            if not led:
                with self._lock:
                    self.waiting.append(slot)
                led = self.role.acquire(False)  # the turn may have been given up meanwhile
                if not led:
                    q.wait(SLICE if deadline is None else min(SLICE, deadline - time.monotonic()))
                with self._lock:
                    self.waiting.remove(slot)
            if led:
                try:
                    self._lead(slot, deadline, read)
                finally:
                    self.leader, self.leader_thread = None, 0
                    self.role.release()
                    self.pass_baton()
                    if self.library_only:  # the library's thread waits for this turn
                        self.poke()
            elif self.waiting and not self.role.locked():
                self.pass_baton()  # woken with a frame of its own: the next caller reads
            item = q.take_nowait()
            if item is not None:
                return slot._take(item)
            if slot.failure is not None:
                raise slot.failure
            left = None if deadline is None else deadline - time.monotonic()
            if self.library_only:
                return slot.wait_get(None if left is None else max(left, 0.0))
            if left is not None and left <= 0:
                return None

    def _lead(
        self, slot: SyncSlot, deadline: Optional[float], read: Callable[[Optional[float]], bool]
    ) -> None:
        """Read until the slot has a frame, the deadline passes or the reading ends."""
        self.leader, self.leader_thread, self.deadline = slot, threading.get_ident(), deadline
        q = slot.queue
        if not self.drain():
            return
        while q.empty() and not self.library_only:
            if not read(deadline) or not self.drain():
                return

    def drain(self) -> bool:
        """Process the events read so far, in order; False when one waits for room in a full
        queue past the reader's deadline (it stays first in the backlog)."""
        backlog = self.backlog
        while backlog:
            self._process(backlog.popleft())
            if self.stalled:
                self.stalled = False
                return False
        return True

    def stall(self, payload: bytes) -> None:
        """A caller could not deliver ``payload`` in time: the next reader delivers it first."""
        self.backlog.appendleft(payload)
        self.stalled = True

    def read(self, deadline: Optional[float], size: int) -> Optional[bytes]:
        """One read for a caller: what the socket holds (one system call when it holds
        something); ``None`` when the deadline passed or the reading ended (see ``end_with``)."""
        sock = self.sock
        while True:
            if self.closing or self.library_only:
                return None
            left = None if deadline is None else deadline - time.monotonic()
            try:
                if left is None or left >= SLICE:
                    data = sock.recv(size)  # waits SLICE at the most (SO_RCVTIMEO)
                else:  # the deadline is near: wait exactly until it
                    try:
                        data = sock.recv(size, _DONTWAIT)
                    except BlockingIOError:
                        if left <= 0:
                            return None
                        self._poll.poll(left * 1000.0)
                        data = sock.recv(size, _DONTWAIT)
            except BlockingIOError:
                continue
            except OSError as exc:
                self.end_with(exc)
                return None
            if not data:
                self.end_with(b"")
                return None
            return data

    def pass_baton(self) -> None:
        """Wake a waiting caller whose queue is empty: it reads next."""
        if not self.waiting:
            return
        with self._lock:
            for slot in self.waiting:
                if slot.queue.empty():
                    slot.queue.wake()
                    return


class GatedSocket:
    """The socket as the websockets library sees it: its reads wait for the library's turn."""

    def __init__(self, sock: Socket, turns: ReadTurns) -> None:
        self._sock = sock
        self._turns = turns
        self.sendall = sock.sendall  # the library's write path, unchanged and direct

    def recv(self, size: int, flags: int = 0) -> bytes:
        return self._turns.library_recv(size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)
