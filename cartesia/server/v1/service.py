"""What the current-API routes of one server share: tokens, limits, open sockets."""

from __future__ import annotations

import dataclasses
from typing import Awaitable, Optional, Protocol, Set

from ..config import ServerConfig
from .limits import Slots
from .tokens import TokenStore

__all__ = ["CurrentApi", "Closable"]


class Closable(Protocol):
    """A live websocket connection, closed with a code and a reason at shutdown."""

    def close(self, code: int, reason: str) -> Awaitable[None]: ...


@dataclasses.dataclass
class CurrentApi:
    """Per-server state of the current API.

    Attributes:
        tokens: Issued access tokens.
        generations: Concurrent generations per account (contexts + HTTP generations).
        sockets: Open ``/tts/websocket`` sockets per account.
        connections: Live websocket connections (closed with 1001 at shutdown).
    """

    tokens: TokenStore
    generations: Slots
    sockets: Slots
    connections: Set[Closable] = dataclasses.field(default_factory=set)

    @classmethod
    def create(cls, config: ServerConfig) -> CurrentApi:
        max_sockets: Optional[int] = config.max_sockets
        if max_sockets is None and config.concurrency_limit is not None:
            # The real service allows ten times the concurrency limit in open sockets.
            max_sockets = 10 * config.concurrency_limit
        return cls(
            tokens=TokenStore(),
            generations=Slots(config.concurrency_limit, "concurrent generations", "concurrency_limited"),
            sockets=Slots(max_sockets, "open websockets", "too_many_connections"),
        )
