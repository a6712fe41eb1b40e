"""The whole Cartesia v0 wire format, sans I/O: requests, websocket messages and typed events.

Nothing here opens a socket or awaits: the transports send what this module builds and feed
what they receive back into it. Parsing goes through the compiled streaming core.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union
from urllib.parse import urlencode

from ..errors import InvalidInputError, TranscriptTypeError
from ..streaming import Message, StreamParser, parse_message
from .body import BodyDecoder
from .events import Audio, Done, ErrorFrame, Event

__all__ = [
    "NAME",
    "DEFAULT_MODEL_ID",
    "EMBEDDING_SIZE",
    "MAX_TRANSCRIPT_CHARS",
    "MAX_MESSAGE_BYTES",
    "HttpRequest",
    "Audio",
    "Done",
    "ErrorFrame",
    "Event",
    "Payload",
    "check_inputs",
    "validate_generation",
    "generation_body",
    "stream_request",
    "voices_request",
    "embedding_request",
    "clone_clip_request",
    "clone_url_request",
    "transcription_request",
    "headers",
    "voices_result",
    "embedding_result",
    "transcript_result",
    "ws_path",
    "ws_query",
    "ws_generate",
    "ws_ack",
    "ws_cancel",
    "context_id_of",
    "decode_ws",
    "HttpStreamDecoder",
]

NAME = "v0"
DEFAULT_MODEL_ID = "genial-planet-1346"
#: Length of a v0 voice embedding.
EMBEDDING_SIZE = 192
MIN_CHUNK_TIME = 0.1
MAX_CHUNK_TIME = 0.5
#: Longest transcript the API takes (the local server's limit; longer ones are a 413).
MAX_TRANSCRIPT_CHARS = 20_000
#: Largest message accepted from the server (a 0.5 s chunk of float32 is ~130 kB of base64).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

Payload = Union[str, bytes]
Body = Dict[str, Any]


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP call, relative to the versioned API root.

    Attributes:
        method: ``GET`` or ``POST``.
        path: E.g. ``/audio/stream``.
        what: The operation, for error messages (``"Failed to get voices. Error: "``, in the
            0.0.5 wording); ``{status}`` is replaced by the HTTP status.
        params: Query parameters.
        content: A JSON body, already encoded.
        files: Multipart fields: ``name -> (filename, bytes, content type or None)``.
        json_content: Whether the ``Content-Type: application/json`` header belongs on it.
    """

    method: str
    path: str
    what: str
    params: Optional[Dict[str, str]] = None
    content: Optional[bytes] = None
    files: Optional[Dict[str, Tuple[str, bytes, Optional[str]]]] = None
    json_content: bool = True

    def error_prefix(self, status: int) -> str:
        return self.what.replace("{status}", str(status))


# --- events --------------------------------------------------------------------------------


def _events(msg: Message) -> List[Event]:
    if "error" in msg.fields:
        fields = msg.fields
        error = fields.get("error")
        if not isinstance(error, str):
            error = fields.get("message") or json.dumps(error)
        status = fields.get("status_code")
        request_id = fields.get("request_id")
        return [
            ErrorFrame(
                str(error),
                status if isinstance(status, int) and not isinstance(status, bool) else None,
                request_id if isinstance(request_id, str) else None,
                msg.context_id,
            )
        ]
    out: List[Event] = []
    if msg.audio or msg.samples:
        out.append(Audio(msg))
    if msg.done:
        out.append(Done(msg.context_id))
    return out


def decode_ws(payload: Payload, sink: Any = None) -> List[Event]:
    """The events of one websocket message (audio decoded into ``sink`` when given)."""
    return _events(parse_message(payload, sink=sink))


class HttpStreamDecoder(BodyDecoder):
    """Turns the bytes of a ``POST /audio/stream`` body into events, whatever the read sizes.

    A body that ends without its ``done`` frame was cut short: :meth:`close` raises
    :class:`~cartesia.errors.TruncatedStreamError` instead of passing it off as complete.
    """

    def __init__(self, sink: Any = None) -> None:
        super().__init__(
            StreamParser("auto", sink=sink),
            _events,
            "The audio stream ended without its final `done` frame (the response was cut short).",
        )


# --- requests ------------------------------------------------------------------------------


def check_inputs(transcript: Any, duration: Optional[float], chunk_time: Optional[float]) -> None:
    """The 0.0.5 checks (same messages), on a transcript and the chunking options."""
    if chunk_time is not None and not MIN_CHUNK_TIME <= chunk_time <= MAX_CHUNK_TIME:
        raise InvalidInputError(
            f"`chunk_time` must be between {MIN_CHUNK_TIME} and {MAX_CHUNK_TIME}",
            field="chunk_time",
        )
    if chunk_time is not None and duration is not None and duration < chunk_time:
        raise InvalidInputError("`duration` must be greater than chunk_time", field="duration")
    if not isinstance(transcript, str):
        # An AttributeError too: 0.0.5 failed on `transcript.strip()` for a transcript of None.
        raise TranscriptTypeError(
            f"`transcript` must be a string, not {type(transcript).__name__}", field="transcript"
        )
    if transcript.strip() == "":
        raise InvalidInputError("`transcript` must be non empty", field="transcript")


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_generation(
    transcript: Any,
    voice: Any,
    model_id: Any,
    duration: Any,
    chunk_time: Any,
) -> None:
    """Every mistake in a generation request, found before any I/O.

    Raises:
        InvalidInputError: naming the field (``TranscriptTypeError`` for a non-string transcript).
    """
    for name, value in (("duration", duration), ("chunk_time", chunk_time)):
        if value is not None and (not _finite_number(value) or value <= 0):
            raise InvalidInputError(f"`{name}` must be a positive number of seconds", field=name)
    check_inputs(transcript, duration, chunk_time)
    if len(transcript) > MAX_TRANSCRIPT_CHARS:
        raise InvalidInputError(
            f"`transcript` is longer than {MAX_TRANSCRIPT_CHARS} characters ({len(transcript)})",
            field="transcript",
        )
    if not isinstance(model_id, str) or not model_id:
        raise InvalidInputError("`model_id` must be a non-empty string", field="model_id")
    if voice is None:
        raise InvalidInputError(
            "`voice` is required (an embedding from get_voice_embedding)", field="voice"
        )
    if isinstance(voice, str):
        if not voice:
            raise InvalidInputError("`voice` must not be empty", field="voice")
        return
    if not isinstance(voice, (list, tuple)):
        raise InvalidInputError(
            f"`voice` must be a list of {EMBEDDING_SIZE} numbers, not {type(voice).__name__}",
            field="voice",
        )
    if len(voice) != EMBEDDING_SIZE:
        raise InvalidInputError(
            f"`voice` embedding must have {EMBEDDING_SIZE} numbers, got {len(voice)}", field="voice"
        )
    if not all(_finite_number(x) for x in voice):
        raise InvalidInputError("`voice` embedding must contain only finite numbers", field="voice")


def generation_body(
    *,
    transcript: str,
    voice: Any,
    model_id: str,
    duration: Optional[float] = None,
    chunk_time: Optional[float] = None,
) -> Body:
    """The JSON body of a generation; optional fields left as None are not sent."""
    body: Body = {"transcript": transcript, "model_id": model_id, "voice": voice}
    if duration is not None:
        body["duration"] = duration
    if chunk_time is not None:
        body["chunk_time"] = chunk_time
    return body


def headers(api_key: Optional[str], *, json_content: bool = True) -> Dict[str, str]:
    """Request headers; without a key the header is left out (the server says it is missing)."""
    out: Dict[str, str] = {}
    if api_key is not None:
        out["X-API-Key"] = api_key
    if json_content:
        out["Content-Type"] = "application/json"
    return out


def stream_request(body: Body) -> HttpRequest:
    return HttpRequest(
        "POST", "/audio/stream", "Failed to generate audio. ", content=json.dumps(body).encode()
    )


def voices_request(skip_embeddings: bool) -> HttpRequest:
    params = {"select": "id, name, description"} if skip_embeddings else None
    return HttpRequest("GET", "/voices", "Failed to get voices. Error: ", params=params)


_CLONE = "Failed to clone voice. Status Code: {status}\nError: "


def embedding_request(voice_id: str) -> HttpRequest:
    return HttpRequest("GET", f"/voices/embedding/{voice_id}", _CLONE)


def clone_clip_request(filename: str, content: bytes) -> HttpRequest:
    return HttpRequest(
        "POST",
        "/voices/clone/clip",
        _CLONE,
        files={"clip": (filename, content, None)},
        json_content=False,
    )


def clone_url_request(link: str) -> HttpRequest:
    return HttpRequest("POST", "/voices/clone/url", _CLONE, params={"link": link})


def transcription_request(audio: bytes) -> HttpRequest:
    return HttpRequest(
        "POST",
        "/audio/transcriptions",
        "Failed to transcribe audio. Error: ",
        files={"clip": ("input.wav", audio, "audio/wav")},
        json_content=False,
    )


def _load_embedding(value: Any) -> Any:
    # The v0 API has served embeddings both as a list and as a JSON-encoded string of the list.
    return json.loads(value) if isinstance(value, str) else value


def voices_result(data: Any, skip_embeddings: bool) -> Dict[str, Any]:
    """``{name: voice}`` from the ``/voices`` answer (when two voices share a name, one wins)."""
    if not skip_embeddings:
        for voice in data:
            if "embedding" in voice:
                voice["embedding"] = _load_embedding(voice["embedding"])
    return {voice["name"]: voice for voice in data}


def embedding_result(data: Mapping[str, Any]) -> List[float]:
    return _load_embedding(data["embedding"])  # type: ignore[no-any-return]


def transcript_result(data: Mapping[str, Any]) -> str:
    return str(data["text"])


# --- websocket -----------------------------------------------------------------------------


def ws_path(experimental: bool) -> str:
    """Path of the generation websocket (the interrupt-aware one when ``experimental``)."""
    return "/experimental/audio/websocket" if experimental else "/audio/websocket"


def ws_query(api_key: Optional[str]) -> str:
    """The v0 websocket authenticates with a query parameter (redacted wherever it is shown)."""
    return f"?{urlencode({'api_key': api_key})}" if api_key else ""


def ws_generate(body: Body, context_id: str) -> str:
    return json.dumps({"data": body, "context_id": context_id})


def ws_ack(context_id: str) -> str:
    """Interrupt mode: the client consumed one chunk of ``context_id``."""
    return json.dumps({"context_id": context_id})


def ws_cancel(context_id: str) -> str:
    return json.dumps({"context_id": context_id, "action": "cancel"})


_KEY = '"context_id"'
_BKEY = b'"context_id"'
_WS = " \t\r\n"
_BWS = b" \t\r\n"


def context_id_of(payload: Payload) -> Optional[str]:
    """Read the ``context_id`` of a frame without decoding its audio (for routing).

    From the end: frames carry the id after the audio, and the key cannot occur inside base64 or
    inside a JSON string (its quotes would be escaped), so this skips the payload scan. Returns
    ``None`` when the frame has no string ``context_id``; ids with escapes take a full parse.
    Bytes (an undecoded text frame) are searched as they are: only the id is decoded.
    """
    if isinstance(payload, str):
        key, ws, colon, quote, escape = _KEY, _WS, ":", '"', "\\"
    else:
        if not isinstance(payload, bytes):
            payload = bytes(payload)
        key, ws, colon, quote, escape = _BKEY, _BWS, b":", b'"', b"\\"  # type: ignore[assignment]
    at = payload.rfind(key)  # type: ignore[arg-type]
    if at < 0:
        return None
    i = at + len(key)
    n = len(payload)
    while i < n and payload[i : i + 1] in ws:  # type: ignore[operator]
        i += 1
    if payload[i : i + 1] != colon:
        return None
    i += 1
    while i < n and payload[i : i + 1] in ws:  # type: ignore[operator]
        i += 1
    if payload[i : i + 1] != quote:
        return None
    end = payload.find(quote, i + 1)  # type: ignore[arg-type]
    if end < 0:
        return None
    value = payload[i + 1 : end]
    if escape in value:
        try:
            obj = json.loads(payload)
        except ValueError:
            return None
        found = obj.get("context_id") if isinstance(obj, dict) else None
        return found if isinstance(found, str) else None
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return value
