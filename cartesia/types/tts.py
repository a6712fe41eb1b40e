"""The SSE events of ``client.tts.generate_sse`` and the timestamp objects, under 4.2.0's names."""

from __future__ import annotations

import base64
from typing import Any, Optional, Union

from ..protocol import events as ev
from ._model import Model

__all__ = [
    "WordTimestamps",
    "PhonemeTimestamps",
    "TTSSSEChunkEvent",
    "TTSSSETimestampsEvent",
    "TTSSSEPhonemeTimestampsEvent",
    "TTSSSEDoneEvent",
    "TTSSSEErrorEvent",
    "TTSSSEEvent",
    "sse_event",
]


class WordTimestamps(Model):
    """``words``, ``start`` and ``end`` (seconds), index-aligned."""

    __slots__ = ("words", "start", "end")
    FIELDS = ("words", "start", "end")


class PhonemeTimestamps(Model):
    """``phonemes``, ``start`` and ``end`` (seconds), index-aligned."""

    __slots__ = ("phonemes", "start", "end")
    FIELDS = ("phonemes", "start", "end")


class TTSSSEChunkEvent(Model):
    """A chunk of audio. ``audio`` is the decoded bytes (None when a ``sink`` took them)."""

    __slots__ = ("type", "done", "status_code", "step_time", "context_id", "audio")
    FIELDS = ("type", "done", "status_code", "step_time", "context_id", "audio")

    @property
    def data(self) -> Optional[str]:
        """The base64 text of the audio, as 4.2.0 exposes it (computed on demand)."""
        return base64.b64encode(self.audio).decode("ascii") if self.audio else None

    def to_dict(self) -> Any:
        out = super().to_dict()
        out.pop("audio", None)
        out["data"] = self.data
        return out


class TTSSSETimestampsEvent(Model):
    """Word timestamps (``word_timestamps``; ``timestamps`` is an alias)."""

    __slots__ = ("type", "done", "status_code", "context_id", "word_timestamps")
    FIELDS = ("type", "done", "status_code", "context_id", "word_timestamps")
    NESTED = {"word_timestamps": WordTimestamps}

    @property
    def timestamps(self) -> Optional[WordTimestamps]:
        return self.word_timestamps  # type: ignore[no-any-return]


class TTSSSEPhonemeTimestampsEvent(Model):
    """Phoneme timestamps (``phoneme_timestamps``; ``timestamps`` is an alias)."""

    __slots__ = ("type", "done", "status_code", "context_id", "phoneme_timestamps")
    FIELDS = ("type", "done", "status_code", "context_id", "phoneme_timestamps")
    NESTED = {"phoneme_timestamps": PhonemeTimestamps}

    @property
    def timestamps(self) -> Optional[PhonemeTimestamps]:
        return self.phoneme_timestamps  # type: ignore[no-any-return]


class TTSSSEDoneEvent(Model):
    """The last event of a successful stream."""

    __slots__ = ("type", "done", "status_code", "context_id")
    FIELDS = ("type", "done", "status_code", "context_id")


class TTSSSEErrorEvent(Model):
    """An error inside the stream (yielded, not raised, as 4.2.0 does)."""

    __slots__ = (
        "type", "done", "status_code", "title", "message", "error_code", "request_id", "doc_url",
        "context_id",
    )
    FIELDS = (
        "type", "done", "status_code", "title", "message", "error_code", "request_id", "doc_url",
        "context_id",
    )

    @property
    def error(self) -> str:
        """``"title: message"`` (4.2.0's websocket ``Error.error``), or the message alone."""
        return f"{self.title}: {self.message}" if self.title else str(self.message)


TTSSSEEvent = Union[
    TTSSSEChunkEvent,
    TTSSSETimestampsEvent,
    TTSSSEPhonemeTimestampsEvent,
    TTSSSEDoneEvent,
    TTSSSEErrorEvent,
]


def sse_event(event: ev.Event) -> TTSSSEEvent:
    """The 4.2.0-shaped object of one decoded protocol event."""
    if isinstance(event, ev.Audio):
        msg = event.message
        f = msg.fields
        return TTSSSEChunkEvent(
            type="chunk",
            done=False,
            status_code=f.get("status_code", 206),
            step_time=f.get("step_time"),
            context_id=msg.context_id,
            audio=msg.audio or None,
            **{k: v for k, v in f.items() if k not in ("status_code", "step_time")},
        )
    if isinstance(event, ev.WordTimestamps):
        return TTSSSETimestampsEvent(
            type="timestamps",
            done=False,
            status_code=206,
            context_id=event.context_id,
            word_timestamps=WordTimestamps.from_dict(event.word_timestamps),
        )
    if isinstance(event, ev.PhonemeTimestamps):
        return TTSSSEPhonemeTimestampsEvent(
            type="phoneme_timestamps",
            done=False,
            status_code=206,
            context_id=event.context_id,
            phoneme_timestamps=PhonemeTimestamps.from_dict(event.phoneme_timestamps),
        )
    if isinstance(event, ev.Done):
        return TTSSSEDoneEvent(type="done", done=True, status_code=200, context_id=event.context_id)
    if isinstance(event, ev.ErrorFrame):
        return TTSSSEErrorEvent(
            type="error",
            done=True,
            status_code=event.status_code,
            title=event.title,
            message=event.message,
            error_code=event.error_code,
            request_id=event.request_id,
            doc_url=event.doc_url,
            context_id=event.context_id,
        )
    raise TypeError(f"no SSE event for {event!r}")  # FlushDone is websocket-only
