"""The current Cartesia API (``Cartesia-Version`` 2026-08-14), sans I/O: requests, websocket messages, events.

Nothing here opens a socket or awaits. Request bodies use the argument names of the official
4.2.0 client; SSE bodies and websocket frames are decoded by the compiled streaming core.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..errors import InvalidInputError
from ..streaming import Message, StreamParser, parse_message
from .body import BodyDecoder
from .events import (
    Audio,
    Done,
    ErrorFrame,
    Event,
    FlushDone,
    PhonemeTimestamps,
    WordTimestamps,
)
from .v0 import context_id_of

__all__ = [
    "NAME",
    "API_VERSION",
    "DEFAULT_MODEL_ID",
    "MAX_MESSAGE_BYTES",
    "HttpRequest",
    "Payload",
    "generation_body",
    "headers",
    "bytes_request",
    "sse_request",
    "voices_list_request",
    "voice_get_request",
    "voice_clone_request",
    "voice_update_request",
    "voice_delete_request",
    "voice_localize_request",
    "WS_PATH",
    "ws_generate",
    "ws_cancel",
    "ws_ack",
    "context_id_of",
    "decode_ws",
    "events_of",
    "SseDecoder",
    "HttpStreamDecoder",
]

NAME = "v1"
#: The ``Cartesia-Version`` sent unless the caller overrides it (the one 4.2.0 pins).
API_VERSION = "2026-08-14"
DEFAULT_MODEL_ID = "sonic-latest"
#: Largest message accepted from the server.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
WS_PATH = "/tts/websocket"

Payload = Union[str, bytes]
Body = Dict[str, Any]
#: ``name -> (filename or None for a plain form field, bytes, content type or None)``.
Files = Dict[str, Tuple[Optional[str], bytes, Optional[str]]]


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP call, relative to the API root (the current API has no path version).

    Attributes:
        method: ``GET``, ``POST``, ``PATCH`` or ``DELETE``.
        path: E.g. ``/tts/bytes``.
        what: The operation, for error messages (e.g. ``"Failed to generate audio. "``).
        params: Query parameters (a list value repeats the key).
        content: A JSON body, already encoded.
        files: Multipart parts (see :data:`Files`).
        accept: The ``Accept`` header (``audio/wav`` for bytes and ``text/event-stream`` for SSE,
            as 4.2.0 sends), or None for JSON.
        json_content: Whether ``Content-Type: application/json`` belongs on it.
    """

    method: str
    path: str
    what: str
    params: Optional[Dict[str, Any]] = None
    content: Optional[bytes] = None
    files: Optional[Files] = None
    accept: Optional[str] = None
    json_content: bool = True

    def error_prefix(self, status: int) -> str:
        return self.what.replace("{status}", str(status))


# --- requests ------------------------------------------------------------------------------


def headers(
    api_key: Optional[str],
    *,
    json_content: bool = True,
    version: str = API_VERSION,
    accept: Optional[str] = None,
) -> Dict[str, str]:
    """Request headers; without a key the header is left out (the server says it is missing)."""
    out: Dict[str, str] = {"Cartesia-Version": version}
    if api_key is not None:
        out["Authorization"] = f"Bearer {api_key}"
    if json_content:
        out["Content-Type"] = "application/json"
    if accept is not None:
        out["Accept"] = accept
    return out


def _require_str(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise InvalidInputError(
            f"`{name}` must be a string, not {type(value).__name__}", field=name
        )


def generation_body(
    *,
    model_id: Any,
    transcript: Any,
    voice: Any,
    output_format: Any,
    extra_body: Optional[Mapping[str, Any]] = None,
    allow_empty_transcript: bool = False,
    **optional: Any,
) -> Body:
    """The JSON body of a generation, with 4.2.0's field names; optional fields left as None are not sent.

    ``voice`` may be a voice id string (sent as ``{"mode": "id", "id": ...}``) or a mapping sent
    as given. ``extra_body`` keys win over the named ones, as in 4.2.0.

    Raises:
        InvalidInputError: naming the field, before any I/O.
    """
    _require_str("model_id", model_id)
    if not model_id:
        raise InvalidInputError("`model_id` must be a non-empty string", field="model_id")
    _require_str("transcript", transcript)
    if not allow_empty_transcript and not transcript.strip():
        raise InvalidInputError("`transcript` must be non empty", field="transcript")
    if isinstance(voice, str):
        if not voice:
            raise InvalidInputError("`voice` must not be empty", field="voice")
        voice = {"mode": "id", "id": voice}
    elif not isinstance(voice, Mapping):
        raise InvalidInputError(
            f"`voice` must be a voice id or a mapping such as {{'mode': 'id', 'id': ...}}, "
            f"not {type(voice).__name__}",
            field="voice",
        )
    if not isinstance(output_format, Mapping) or "container" not in output_format:
        raise InvalidInputError(
            "`output_format` must be a mapping with a `container` "
            "(e.g. {'container': 'raw', 'encoding': 'pcm_f32le', 'sample_rate': 44100})",
            field="output_format",
        )
    body: Body = {
        "model_id": model_id,
        "transcript": transcript,
        "voice": dict(voice),
        "output_format": dict(output_format),
    }
    for key, value in optional.items():
        if value is not None:
            body[key] = value
    if extra_body:
        body.update(extra_body)
    return body


def _json(body: Body) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


_TTS = "Failed to generate audio. "


def bytes_request(body: Body) -> HttpRequest:
    """``POST /tts/bytes``: the audio in the requested container, streamed."""
    return HttpRequest("POST", "/tts/bytes", _TTS, content=_json(body), accept="audio/wav")


def sse_request(body: Body) -> HttpRequest:
    """``POST /tts/sse``: JSON events (raw audio only)."""
    return HttpRequest(
        "POST", "/tts/sse", _TTS, content=_json(body), accept="text/event-stream"
    )


def _drop_none(params: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def voices_list_request(**params: Any) -> HttpRequest:
    """``GET /voices`` with 4.2.0's filters (``limit``, ``starting_after``, ``expand``…)."""
    query = _drop_none(params)
    if "expand" in query:
        query["expand[]"] = list(query.pop("expand"))
    return HttpRequest("GET", "/voices", "Failed to list voices. ", params=query or None)


def _voice_path(voice_id: Any) -> str:
    _require_str("id", voice_id)
    if not voice_id or "/" in voice_id:
        raise InvalidInputError("`id` must be a non-empty voice id without '/'", field="id")
    return f"/voices/{voice_id}"


def voice_get_request(voice_id: str, expand: Optional[Sequence[str]] = None) -> HttpRequest:
    params = {"expand[]": list(expand)} if expand else None
    return HttpRequest("GET", _voice_path(voice_id), "Failed to get voice. ", params=params)


def voice_clone_request(
    *, clip: Tuple[str, bytes, Optional[str]], name: str, language: str, **fields: Any
) -> HttpRequest:
    """Multipart ``POST /voices/clone``: the clip plus form fields (None ones are left out)."""
    _require_str("name", name)
    _require_str("language", language)
    files: Files = {"clip": clip, "name": (None, name.encode(), None)}
    files["language"] = (None, language.encode(), None)
    for key, value in fields.items():
        if value is not None:
            text = value if isinstance(value, str) else json.dumps(value)
            files[key] = (None, text.encode(), None)
    return HttpRequest(
        "POST", "/voices/clone", "Failed to clone voice. ", files=files, json_content=False
    )


def voice_update_request(voice_id: str, **fields: Any) -> HttpRequest:
    """``PATCH /voices/{id}``: every field given is sent, None as ``null`` (it clears one)."""
    return HttpRequest(
        "PATCH", _voice_path(voice_id), "Failed to update voice. ", content=_json(fields)
    )


def voice_delete_request(voice_id: str) -> HttpRequest:
    return HttpRequest(
        "DELETE", _voice_path(voice_id), "Failed to delete voice. ", json_content=False
    )


def voice_localize_request(**fields: Any) -> HttpRequest:
    return HttpRequest(
        "POST", "/voices/localize", "Failed to localize voice. ", content=_json(_drop_none(fields))
    )


# --- websocket messages --------------------------------------------------------------------


def ws_generate(body: Body, context_id: str, *, continue_: bool = False, flush: bool = False) -> str:
    """One generation input on ``context_id`` (``continue`` when more input follows)."""
    message = dict(body)
    message["context_id"] = context_id
    message["continue"] = bool(continue_)
    if flush:
        message["flush"] = True
    return json.dumps(message, separators=(",", ":"))


def ws_cancel(context_id: str) -> str:
    return json.dumps({"context_id": context_id, "cancel": True}, separators=(",", ":"))


def ws_ack(context_id: str) -> str:
    """The current API has no per-chunk acknowledgement; kept for the :class:`Dialect` shape."""
    raise NotImplementedError("the current API has no chunk acknowledgements")


# --- events --------------------------------------------------------------------------------


def _int_or_none(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: Any) -> Optional[str]:
    return value if isinstance(value, str) else None


def _error(msg: Message) -> ErrorFrame:
    fields = msg.fields
    title = _str_or_none(fields.get("title"))
    message = fields.get("message")
    if not isinstance(message, str):
        # Up to 2025-11-04 the text is in `error`.
        error = fields.get("error")
        message = error if isinstance(error, str) else json.dumps(error if error else fields)
    return ErrorFrame(
        message,
        _int_or_none(fields.get("status_code")),
        _str_or_none(fields.get("request_id")),
        msg.context_id,
        title=title,
        error_code=_str_or_none(fields.get("error_code")),
        doc_url=_str_or_none(fields.get("doc_url")),
    )


def events_of(msg: Message) -> List[Event]:
    """The typed events of one decoded SSE event or websocket frame."""
    kind = msg.type
    fields = msg.fields
    if kind == "error" or "error" in fields and kind not in ("chunk", "done"):
        return [_error(msg)]
    out: List[Event] = []
    if kind == "chunk" or msg.audio or msg.samples:
        out.append(Audio(msg))
    elif kind == "timestamps":
        out.append(
            WordTimestamps(
                fields.get("word_timestamps") or {},
                msg.context_id,
                _int_or_none(fields.get("flush_id")),
            )
        )
    elif kind == "phoneme_timestamps":
        out.append(
            PhonemeTimestamps(
                fields.get("phoneme_timestamps") or {},
                msg.context_id,
                _int_or_none(fields.get("flush_id")),
            )
        )
    elif kind == "flush_done":
        out.append(FlushDone(msg.context_id, _int_or_none(fields.get("flush_id"))))
    if msg.done:
        out.append(Done(msg.context_id))
    return out


def decode_ws(payload: Payload, sink: Any = None) -> List[Event]:
    """The events of one websocket frame (audio decoded into ``sink`` when given)."""
    return events_of(parse_message(payload, sink=sink))


class SseDecoder(BodyDecoder):
    """Turns the bytes of a ``POST /tts/sse`` body into events, whatever the read sizes.

    An error event ends the stream like ``done`` does. A body that ends before either was cut
    short: :meth:`close` raises :class:`~cartesia.errors.TruncatedStreamError`.
    """

    def __init__(self, sink: Any = None) -> None:
        super().__init__(
            StreamParser("sse", sink=sink, max_frame_bytes=MAX_MESSAGE_BYTES),
            events_of,
            "The SSE stream ended without its final `done` event (the response was cut short).",
        )


#: The :class:`Dialect` name for the streamed HTTP decoder (SSE in the current API).
HttpStreamDecoder = SseDecoder
