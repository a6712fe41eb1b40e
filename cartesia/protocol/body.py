"""The decoder of a streamed HTTP body that both dialects share: frames to events, end checks."""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence

from ..errors import TruncatedStreamError
from ..streaming import Message, StreamParser
from .events import Done, ErrorFrame, Event

__all__ = ["BodyDecoder"]


class BodyDecoder:
    """Turns the bytes of one streamed body into events, whatever the read sizes.

    A ``done`` or an error frame ends the body: nothing after it is decoded. A body that ends
    before either was cut short: :meth:`close` raises
    :class:`~cartesia.errors.TruncatedStreamError` with ``truncated`` as its message.

    Args:
        parser: The core's parser for the body's framing (its sink gets the audio).
        events_of: The dialect's events of one decoded frame.
        truncated: The message of a body cut short.
    """

    def __init__(
        self,
        parser: StreamParser,
        events_of: Callable[[Message], List[Event]],
        truncated: str,
    ) -> None:
        self._parser = parser
        self._events_of = events_of
        self._truncated = truncated
        self.done = False
        self._ended = False
        self._deferred: Optional[BaseException] = None

    def _collect(self, messages: Sequence[Message]) -> List[Event]:
        out: List[Event] = []
        for msg in messages:
            if self._ended:
                break  # nothing after `done` belongs to this generation
            for event in self._events_of(msg):
                out.append(event)
                if isinstance(event, (Done, ErrorFrame)):
                    self.done = isinstance(event, Done)
                    self._ended = True
        return out

    def _raise_deferred(self) -> None:
        error, self._deferred = self._deferred, None
        if error is not None:
            raise error

    def feed(self, data: Any) -> List[Event]:
        """The events completed by ``data`` (bytes, bytearray or memoryview)."""
        self._raise_deferred()
        return self._collect(self._parser.feed(data))

    def feed_pieces(self, pieces: Sequence[Any]) -> List[Event]:
        """As :meth:`feed`, for consecutive pieces of the body (views on one read).

        As the parser does within one piece, an error after good frames is raised by the next
        call, so the audio before it is delivered first.
        """
        self._raise_deferred()
        feed = self._parser.feed
        if len(pieces) == 1:
            return self._collect(feed(pieces[0]))
        messages: List[Message] = []
        for piece in pieces:
            try:
                messages += feed(piece)
            except Exception as exc:
                if not messages:
                    raise
                self._deferred = exc
                break
        return self._collect(messages)

    def close(self) -> List[Event]:
        """The last events; raises ``TruncatedStreamError`` for a body cut short."""
        self._raise_deferred()
        events = self._collect(self._parser.close())
        if not self._ended:
            raise TruncatedStreamError(self._truncated)
        return events
