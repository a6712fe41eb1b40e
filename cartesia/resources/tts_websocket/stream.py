"""The connection-level event stream (4.2.0's ``send()`` / ``recv()`` / iteration), shared by both connections (no I/O).

Inputs sent with the connection's own ``send()`` open contexts whose frames all go to one
bounded queue, the connection's inbox, in the order they arrived; ``recv()`` reads it. Frames
of contexts opened with ``context()`` go to those contexts only, never to the inbox, so no
frame ever has two readers (4.2.0's ``recv()`` takes whatever the socket holds next).
"""

from __future__ import annotations

import asyncio
import queue
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from ..._client.routing import AsyncSlot, RoutedSocket, Slot, SyncSlot
from ...errors import CartesiaTimeoutError, InvalidInputError, WebSocketClosedError
from ...protocol import v1 as WIRE
from .events import WebSocketResponse, decode

__all__ = ["StreamState", "SyncInboxSlot", "AsyncInboxSlot", "CLOSED_BY_CLIENT", "RAW"]

#: The registry's owner of a context opened by the connection's ``send()``.
RAW = object()
#: Put in the inbox by ``close()``: a waiting ``recv()`` wakes and raises, iteration ends.
CLOSED_BY_CLIENT = object()

#: What :meth:`StreamState.plan` tells the connection to do with an event.
CANCEL_CONTEXT, CANCEL, BIND, SEND = "cancel_context", "cancel", "bind", "send"


class _InboxMixin:
    """A slot whose queue is the connection's inbox (shared with the other such slots)."""

    failure: Optional[BaseException]
    put_nowait: Callable[[object], bool]  # the queue's own (from the slot class after this one)

    def drain(self) -> None:
        """Nothing: the inbox holds the other contexts' frames too."""

    def fail(self, error: BaseException) -> None:
        # The error itself goes in (not the router's sentinel): the inbox's reader has no
        # slot to find it on.
        if self.failure is None:
            self.failure = error
        self.put_nowait(error)


class SyncInboxSlot(_InboxMixin, SyncSlot):
    """A sync slot that queues into the connection's inbox."""

    def __init__(self, context_id: str, inbox: queue.Queue[object]) -> None:
        Slot.__init__(self, context_id)
        self.queue = inbox


class AsyncInboxSlot(_InboxMixin, AsyncSlot):
    """An async slot that queues into the connection's inbox."""

    def __init__(self, context_id: str, inbox: asyncio.Queue[object]) -> None:
        Slot.__init__(self, context_id)
        self.queue = inbox


def client_event(event: Any) -> Tuple[str, str, bool]:
    """``(context_id, JSON, is_cancel)`` of a 4.2.0 client event: a generation request or a
    ``{"context_id": ..., "cancel": True}`` (a mapping, or a model with ``to_dict()``).

    Raises:
        InvalidInputError: Not a mapping, or no ``context_id`` string.
    """
    if not isinstance(event, Mapping):
        to_dict = getattr(event, "to_dict", None) or getattr(event, "model_dump", None)
        if to_dict is None:
            raise InvalidInputError(
                f"event must be a mapping (a generation request or a cancel), not "
                f"{type(event).__name__}",
                field="event",
            )
        event = to_dict()
    body: Dict[str, Any] = dict(event)
    context_id = body.get("context_id")
    if not isinstance(context_id, str) or not context_id:
        raise InvalidInputError(
            "event needs a `context_id` string (it routes the answers)", field="context_id"
        )
    if "continue_" in body:  # the attribute name of 4.2.0's model
        body["continue"] = body.pop("continue_")
    if body.get("cancel") is True:
        return context_id, WIRE.ws_cancel(context_id), True
    try:
        text = WIRE.ws_generate(body, context_id, continue_=bool(body.get("continue", False)))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"event is not JSON: {exc}", field="event") from None
    return context_id, text, False


Bound = Tuple[RoutedSocket[Any], Slot]


class StreamState:
    """Which contexts the connection's ``send()`` opened, and the rules of their events."""

    def __init__(self, connection: Any) -> None:
        self._conn = connection
        self.bound: Dict[str, Bound] = {}
        self._raised: Optional[BaseException] = None
        #: The bounded queue of every frame of these contexts (made on the connection's loop).
        self.inbox: Any = None

    def plan(self, event: Any) -> Tuple[str, str, str, Any]:
        """``(step, context_id, JSON, target)`` for one event: ``CANCEL_CONTEXT`` (target: the
        context object that owns the id), ``CANCEL`` (target: the cancel's socket or None),
        ``BIND`` (open it on a socket) or ``SEND`` (target: its socket)."""
        context_id, text, cancel = client_event(event)
        conn = self._conn
        with conn._registry_lock:
            owner = conn._contexts.get(context_id)
            if owner is not None and owner is not RAW:
                if cancel:
                    return CANCEL_CONTEXT, context_id, text, owner
                raise InvalidInputError(
                    f"context_id {context_id!r} belongs to a context of this connection: "
                    "send its inputs with its push()",
                    field="context_id",
                )
            if cancel:
                return CANCEL, context_id, text, self.end(context_id, locked=True)
            if owner is None:
                conn._check_open()
                conn._contexts[context_id] = RAW
        bound = self.bound.get(context_id)
        if bound is not None and bound[1].failure is not None:
            failure = bound[1].failure
            self.end(context_id)
            raise failure
        if bound is None:
            return BIND, context_id, text, None
        return SEND, context_id, text, bound[0]

    def end(self, context_id: str, *, locked: bool = False) -> Optional[RoutedSocket[Any]]:
        """Stop routing ``context_id``; its socket when a cancel should still go there."""
        bound = self.bound.pop(context_id, None)
        if locked:
            self._unregister(context_id)
        else:
            with self._conn._registry_lock:
                self._unregister(context_id)
        if bound is None:
            return None
        sock, slot = bound
        return sock if sock.release_slot(slot) and sock.is_open() else None

    def _unregister(self, context_id: str) -> None:
        if self._conn._contexts.get(context_id) is RAW:
            del self._conn._contexts[context_id]

    @staticmethod
    def timeout_error(timeout: Optional[float]) -> CartesiaTimeoutError:
        return CartesiaTimeoutError(f"No event within {timeout} s.")

    def close(self) -> None:
        """Drop what nobody will read and wake every waiting ``recv()`` (it raises)."""
        inbox = self.inbox
        if inbox is None:
            return
        while True:
            try:
                inbox.get_nowait()
            except (queue.Empty, asyncio.QueueEmpty):
                break
        inbox.put_nowait(CLOSED_BY_CLIENT)

    def take(self, item: object) -> Optional[Tuple[bytes, WebSocketResponse]]:
        """The frame and event of one inbox item (its context ends on ``done``/``error``);
        None to skip it; raises the failure of a socket once, and after ``close()``."""
        if item is CLOSED_BY_CLIENT:
            self.inbox.put_nowait(item)  # for the next reader too
            raise WebSocketClosedError("This websocket connection was closed.", code=1000)
        if isinstance(item, BaseException):
            if item is self._raised:
                return None  # the same socket's failure, once per context: raised already
            self._raised = item
            for failed, (_, slot) in list(self.bound.items()):
                if slot.failure is not None:
                    self.end(failed)
            raise item
        payload = item if isinstance(item, bytes) else str(item).encode("utf-8")
        event = decode(payload)
        context_id = event.context_id
        if context_id is not None:
            if self._conn._contexts.get(context_id) is not RAW:
                return None  # queued before its cancel: it never reaches the reader
            if event.type in ("done", "error"):
                self.end(context_id)
        return payload, event
