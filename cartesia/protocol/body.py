"""The decoder of a streamed HTTP body that both dialects share: frames to events, end checks."""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence

from ..errors import TruncatedStreamError
from ..streaming import Message, StreamParser
from .events import Done, ErrorFrame, Event

__all__ = ["BodyDecoder", "FIRST_SLICE"]

#: Until a body's first event, a read is decoded this many bytes at a time: a server sends the
#: start of a generation faster than real time, so one read often holds several frames, and the
#: first audio should reach the caller before the frames that came with it are decoded. (32 KiB
#: hold one 0.1 s frame of 44.1 kHz float32 audio, 23.6 kB in base64.)
FIRST_SLICE = 32 * 1024
_ENDS = (Done, ErrorFrame)  # the events after which nothing of the body is decoded


class BodyDecoder:
    """Turns the bytes of one streamed body into events, whatever the read sizes.

    A ``done`` or an error frame ends the body: nothing after it is decoded. A body that ends
    before either was cut short: :meth:`close` raises
    :class:`~cartesia.errors.TruncatedStreamError` with ``truncated`` as its message.

    Until the first event, a read is decoded slice by slice (:data:`FIRST_SLICE`) and the
    feed returns as soon as a slice completed an event; the rest of that read is then
    :attr:`pending`, to be fed with :meth:`feed_pending` before the next read (views on a
    reused read buffer stay valid until then).

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
        self._started = False  # an event came out: reads are decoded whole from now on
        self._rest: List[Any] = []  # the pieces of the last read not decoded yet

    def _collect(self, messages: Sequence[Message]) -> List[Event]:
        out: List[Event] = []
        if self._ended:
            return out  # nothing after `done` belongs to this generation
        events_of = self._events_of
        for msg in messages:
            events = events_of(msg)
            out += events
            for event in events:
                if isinstance(event, _ENDS):
                    self.done = isinstance(event, Done)
                    self._ended = True
            if self._ended:
                break
        return out

    def _raise_deferred(self) -> None:
        error, self._deferred = self._deferred, None
        if error is not None:
            raise error

    @property
    def pending(self) -> bool:
        """Part of the last read is not decoded yet (see :meth:`feed_pending`)."""
        return bool(self._rest)

    def _first(self, pieces: List[Any]) -> List[Event]:
        # Slice by slice until one completes an event; what is left waits in `_rest`.
        out: List[Event] = []
        while pieces and not out:
            piece = pieces[0]
            if len(piece) > FIRST_SLICE:
                view = memoryview(piece)
                head, pieces[0] = view[:FIRST_SLICE], view[FIRST_SLICE:]
            else:
                head = pieces.pop(0)
            out = self._collect(self._parser.feed(head))
        self._rest = pieces
        self._started = bool(out)
        return out

    def feed(self, data: Any) -> List[Event]:
        """The events completed by ``data`` (bytes, bytearray or memoryview)."""
        if not self._started:
            return self.feed_pieces((data,))
        self._raise_deferred()
        return self._collect(self._parser.feed(data))

    def feed_pending(self) -> List[Event]:
        """The events of what is left of the last read (see :attr:`pending`)."""
        rest, self._rest = self._rest, []
        return self.feed_pieces(rest) if rest else []

    def feed_pieces(self, pieces: Sequence[Any]) -> List[Event]:
        """As :meth:`feed`, for consecutive pieces of the body (views on one read).

        As the parser does within one piece, an error after good frames is raised by the next
        call, so the audio before it is delivered first.
        """
        if self._deferred is not None:
            self._raise_deferred()
        if not self._started:
            return self._first(list(pieces))
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
        events = self.feed_pending()
        self._raise_deferred()
        events += self._collect(self._parser.close())
        if not self._ended:
            raise TruncatedStreamError(self._truncated)
        return events
