"""Sans-I/O protocol layers, one module per API dialect (``v0`` now), and what they share.

A dialect module builds what is sent (HTTP requests, websocket messages) and turns what is
received into the events of :mod:`.events`. The transports and the generation state machine
only see a :class:`Dialect`, so another dialect plugs in without copying them.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Protocol, Sequence, Union

from .events import Audio, Done, ErrorFrame, Event

__all__ = ["Dialect", "StreamDecoder", "Audio", "Done", "ErrorFrame", "Event"]


class StreamDecoder(Protocol):
    """Turns the bytes of one streamed HTTP body into events, whatever the read sizes."""

    def feed(self, data: bytes) -> List[Event]: ...

    def feed_pieces(self, pieces: Sequence[Any]) -> List[Event]:
        """As ``feed``, for consecutive pieces of the body (views on one read)."""

    @property
    def pending(self) -> bool:
        """Part of the last read is not decoded yet: ``feed_pending`` before reading more."""

    def feed_pending(self) -> List[Event]:
        """The events of what is left of the last read."""

    def close(self) -> List[Event]:
        """The last events; raises ``TruncatedStreamError`` for a body cut short."""


class Dialect(Protocol):
    """What the transports need of a dialect (a module such as :mod:`.v0` satisfies it)."""

    NAME: str
    MAX_MESSAGE_BYTES: int

    def headers(self, api_key: Optional[str], *, json_content: bool = True) -> Dict[str, str]: ...

    def context_id_of(self, payload: Union[str, bytes]) -> Optional[str]: ...

    def decode_ws(self, payload: Union[str, bytes], sink: Any = None) -> List[Event]: ...

    def ws_ack(self, context_id: str) -> str: ...

    def ws_cancel(self, context_id: str) -> str: ...

    def HttpStreamDecoder(self, sink: Any = None) -> StreamDecoder: ...  # noqa: N802 - a class
