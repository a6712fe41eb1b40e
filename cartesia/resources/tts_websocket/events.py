"""The events of a ``/tts/websocket`` context, with 4.2.0's attribute names (no I/O)."""

from __future__ import annotations

import base64
from typing import Any, Dict, Optional, Union

from ..._client.errors import status_error
from ...errors import APIStatusError
from ...protocol import v1 as WIRE
from ...protocol.events import ErrorFrame
from ...streaming import Message, parse_message

__all__ = ["Stamps", "WebSocketResponse", "decode", "omit", "ERROR_PREFIX"]

#: What every websocket error message starts with (the prefix of the HTTP generation errors).
ERROR_PREFIX = "Failed to generate audio. "


class Stamps:
    """Word or phoneme timestamps (4.2.0's ``WordTimestamps`` / ``PhonemeTimestamps``):
    ``words`` (or ``phonemes``), ``start`` and ``end``, as the server sent them."""

    __slots__ = ("_data",)

    def __init__(self, data: Dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(name) from None

    def to_dict(self) -> Dict[str, Any]:
        return dict(self._data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Stamps) and other._data == self._data

    def __repr__(self) -> str:
        return f"Stamps({self._data!r})"


_FIELDS = (
    "done", "status_code", "step_time", "flush_id", "flush_done",
    "title", "message", "error_code", "request_id", "doc_url",
)


class WebSocketResponse:
    """One frame of a context, with the attribute names of 4.2.0's ``WebsocketResponse`` union.

    ``type`` is ``chunk``, ``timestamps``, ``phoneme_timestamps``, ``flush_done``, ``done`` or
    ``error``. The core decoded the audio once (``audio``, or into the context's sink: then
    ``samples`` counts what it wrote); nothing is validated per chunk.
    """

    __slots__ = ("_msg",)

    def __init__(self, message: Message) -> None:
        self._msg = message

    @property
    def type(self) -> str:
        return self._msg.type

    @property
    def context_id(self) -> Optional[str]:
        return self._msg.context_id

    @property
    def audio(self) -> Optional[bytes]:
        """The decoded audio of a chunk (``None`` when empty or when a sink took it)."""
        return self._msg.audio or None

    @property
    def data(self) -> Optional[str]:
        """The base64 audio, as sent (re-encoded on demand: the core decoded it already)."""
        if self._msg.type != "chunk":
            return None
        return base64.b64encode(self._msg.audio).decode("ascii")

    @property
    def samples(self) -> int:
        """Samples the core wrote into the context's sink for this chunk."""
        return self._msg.samples

    @property
    def word_timestamps(self) -> Optional[Stamps]:
        value = self._msg.fields.get("word_timestamps")
        return Stamps(value) if isinstance(value, dict) else None

    @property
    def phoneme_timestamps(self) -> Optional[Stamps]:
        value = self._msg.fields.get("phoneme_timestamps")
        return Stamps(value) if isinstance(value, dict) else None

    @property
    def error(self) -> Optional[str]:
        """4.2.0's ``title: message`` of an error event."""
        if self._msg.type != "error":
            return None
        return f"{self.title}: {self.message}"

    def __getattr__(self, name: str) -> Any:
        if name in _FIELDS:
            if name == "done":
                return self._msg.done
            return self._msg.fields.get(name)
        raise AttributeError(name)

    def to_dict(self) -> Dict[str, Any]:
        """The frame as a dict (``data`` as base64, as sent)."""
        out: Dict[str, Any] = {"type": self.type, "done": self._msg.done}
        if self._msg.type == "chunk":
            out["data"] = self.data
        out.update(self._msg.fields)
        if self.context_id is not None:
            out["context_id"] = self.context_id
        return out

    def to_exception(self, secret: Optional[str] = None) -> APIStatusError:
        """The typed status error of an error frame (the classes HTTP errors raise)."""
        frame = next(e for e in WIRE.events_of(self._msg) if isinstance(e, ErrorFrame))
        err = status_error(frame.status_code or 500, frame.message, prefix=ERROR_PREFIX, secret=secret)
        err.request_id = frame.request_id
        return err

    def __repr__(self) -> str:
        fields = {k: v for k, v in self.to_dict().items() if k != "data"}
        if self._msg.type == "chunk":
            fields["audio"] = f"<{len(self._msg.audio)} bytes>"
        return f"WebSocketResponse({fields!r})"


def decode(payload: Union[str, bytes], sink: Any = None) -> WebSocketResponse:
    """The response of one frame, decoded by the core (audio into ``sink`` when given)."""
    return WebSocketResponse(parse_message(payload, sink=sink))


class _Omit:
    """Marks an argument that was not given (``None`` means: send nothing, as in 4.2.0)."""

    def __repr__(self) -> str:
        return "omit"


omit: Any = _Omit()
