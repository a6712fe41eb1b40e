"""The current API's ``/tts/websocket``: connections, contexts and their events (sync and async).

A connection is one websocket at a time, opened again transparently for the next context when
the server closed the previous one (idle 1000, deploy 1001, 1006, 1011). Its contexts share
the one context router of :mod:`cartesia._client.routing`: frames go to a bounded queue per
context, frames of cancelled or finished contexts are dropped, and when the socket dies every
pending ``receive()`` raises :class:`~cartesia.errors.WebSocketClosedError` at once.

What a stuck consumer costs the others: a context whose frames are not read holds at most
``queue_size`` frames; once its queue is full the socket's reader waits for it (backpressure
reaches the server over TCP), so the other contexts *on that socket* stall with it until it
reads, is cancelled, or its connection is closed. Memory stays bounded in every case. The
connection-level stream (``send()`` / ``recv()``, see :mod:`.stream`) is one such queue for all
the contexts it opened.

Modules: :mod:`.events` (the events), :mod:`.base` (every rule of contexts and connections,
no I/O), :mod:`.stream` (the connection-level stream's rules), :mod:`.sync` and :mod:`.aio`
(the I/O), :mod:`.connect` (the factories).
"""

from __future__ import annotations

from .aio import AsyncWebSocketConnection, AsyncWebSocketContext
from .base import DEFAULT_QUEUE_FRAMES, KEEPALIVE_S
from .connect import connect, connect_async
from .events import Stamps, WebSocketResponse, decode, omit
from .sync import WebSocketConnection, WebSocketContext

__all__ = [
    "WebSocketConnection",
    "AsyncWebSocketConnection",
    "WebSocketContext",
    "AsyncWebSocketContext",
    "WebSocketResponse",
    "Stamps",
    "connect",
    "connect_async",
    "DEFAULT_QUEUE_FRAMES",
    "KEEPALIVE_S",
    "decode",
    "omit",
]
