"""Generation requests of the current API: every field validated into a :class:`TTSRequest`.

One parser serves ``/tts/bytes``, ``/tts/sse`` and the first input of a websocket context; a
wrong field is an :class:`~.errors.ApiError` (400, or 404 for an unknown voice) that names it.
Unknown fields are ignored: the real API promises additive changes within a version.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Mapping, Optional, Protocol, Sequence, Tuple

from ..audio import FormatError, OutputFormat, parse_output_format, supported_languages
from ..generation import MAX_DURATION, MAX_TRANSCRIPT_CHARS
from ..voices import Voice, check_embedding
from . import versions
from .errors import ApiError
from .models import check_model, model_languages

__all__ = [
    "TTSRequest",
    "VoiceLookup",
    "parse_tts",
    "speakable",
    "check_transcript_type",
    "optional_bool",
    "optional_str",
    "SPEEDS",
]

class VoiceLookup(Protocol):
    """Where TTS requests find their voices (the server's voice store satisfies it)."""

    def resolve(self, voice_id: str) -> Voice:
        """The voice with ``voice_id``; raises ``ApiError(404)`` for an unknown one."""

    def resolve_embedding(self, embedding: Sequence[float]) -> Voice:
        """The voice that speaks ``embedding`` (a known voice's own embedding speaks as it)."""


#: ``speed`` words and the rate factor each one means.
SPEEDS: Dict[str, float] = {"slow": 0.8, "normal": 1.0, "fast": 1.25}
# ``__experimental_controls.speed`` (2024-era): words, or a number in -1..1.
_EXPERIMENTAL_SPEEDS = {"slowest": -1.0, "slow": -0.5, "normal": 0.0, "fast": 0.5, "fastest": 1.0}
_MAX_EMOTION_CHARS = 64
_MAX_ID_CHARS = 256


@dataclasses.dataclass(frozen=True)
class TTSRequest:
    """A validated generation request.

    Attributes:
        model_id: As sent.
        transcript: The text (websockets: the first input's text).
        voice: The engine voice that speaks it.
        output_format: Container, encoding, rate.
        language: ISO code, or ``None`` for the voice's own language.
        speed: Rate factor (``speed`` word x ``generation_config.speed`` x experimental control).
        volume: Gain factor (``generation_config.volume``).
        emotion: Emotion names (``generation_config.emotion`` or experimental controls).
        duration: Longest audio in seconds (``None``: the server cap).
        add_timestamps: Word timestamps (SSE, websocket).
        add_phoneme_timestamps: Phoneme timestamps (SSE, websocket).
        use_normalized_timestamps: Words as spoken instead of as written.
        context_id: As sent (``None`` when absent).
        save: ``/tts/bytes``: answer with a ``Cartesia-File-ID`` header.
        pronunciation_dict_id: Accepted and not applied (the local server has no dictionaries).
    """

    model_id: str
    transcript: str
    voice: Voice
    output_format: OutputFormat
    language: Optional[str] = None
    speed: float = 1.0
    volume: float = 1.0
    emotion: Tuple[str, ...] = ()
    duration: Optional[float] = None
    add_timestamps: bool = False
    add_phoneme_timestamps: bool = False
    use_normalized_timestamps: bool = False
    context_id: Optional[str] = None
    save: bool = False
    pronunciation_dict_id: Optional[str] = None

    @property
    def max_seconds(self) -> float:
        """Audio cap of the whole generation."""
        return self.duration if self.duration is not None else MAX_DURATION


def _bad(field: str, message: str) -> ApiError:
    return ApiError(400, f"`{field}` {message}")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__.replace("str", "string")


def optional_bool(body: Mapping[str, Any], key: str, default: bool = False) -> bool:
    """``body[key]`` as a bool (absent or null: ``default``); 400 for another type."""
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _bad(key, f"must be true or false, got {_kind(value)}")
    return value


def optional_str(body: Mapping[str, Any], key: str, limit: int = _MAX_ID_CHARS) -> Optional[str]:
    """``body[key]`` as a non-empty string of at most ``limit`` characters, or ``None``."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(key, f"must be a string, got {_kind(value)}")
    if not value or len(value) > limit:
        raise _bad(key, f"must be 1 to {limit} characters long")
    return value


def _number(obj: Mapping[str, Any], key: str, field: str, lo: float, hi: float) -> Optional[float]:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(field, f"must be a number, got {_kind(value)}")
    if not lo <= value <= hi:
        raise _bad(field, f"must be between {lo:g} and {hi:g}, got {value:g}")
    return float(value)


def speakable(text: str) -> bool:
    """Whether ``text`` has something to say (not empty, blank or punctuation only)."""
    return any(ch.isalnum() for ch in text)


def check_transcript_type(body: Mapping[str, Any]) -> str:
    """``body["transcript"]`` as a string of bounded length (its content is not judged)."""
    if "transcript" not in body or body["transcript"] is None:
        raise _bad("transcript", "is required")
    text = body["transcript"]
    if not isinstance(text, str):
        raise _bad("transcript", f"must be a string, got {_kind(text)}")
    if len(text) > MAX_TRANSCRIPT_CHARS:
        raise ApiError(
            413, f"`transcript` is longer than {MAX_TRANSCRIPT_CHARS} characters ({len(text)})"
        )
    return text


def _embedding_voice(value: Any, lookup: VoiceLookup) -> Voice:
    try:
        embedding = check_embedding(value, "voice.embedding")
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return lookup.resolve_embedding(embedding)


def _voice(value: Any, version: str, lookup: VoiceLookup) -> Tuple[Voice, Dict[str, Any]]:
    """The voice and its ``__experimental_controls`` (empty when absent or not applicable)."""
    if value is None:
        raise _bad("voice", "is required")
    if isinstance(value, str):
        if not versions.bare_string_voice(version):
            raise _bad(
                "voice",
                f'must be an object such as {{"mode": "id", "id": "..."}} in API version '
                f"{version} (a bare id string needs 2026-08-14)",
            )
        if not value or len(value) > _MAX_ID_CHARS:
            raise _bad("voice", "must be a voice id")
        return lookup.resolve(value), {}
    if not isinstance(value, dict):
        raise _bad("voice", f"must be a voice id string or an object, got {_kind(value)}")
    mode = value.get("mode")
    if mode not in (None, "id", "embedding"):
        raise _bad("voice.mode", f"must be 'id' or 'embedding', got {str(mode)[:20]!r}")
    controls: Dict[str, Any] = {}
    raw_controls = value.get("__experimental_controls")
    # The experimental controls belong to the embedding era; later versions allow (and here
    # ignore) extra voice keys.
    if raw_controls is not None and versions.embeddings_allowed(version):
        if not isinstance(raw_controls, dict):
            raise _bad("voice.__experimental_controls", "must be an object")
        controls = raw_controls
    if mode == "embedding" or (mode is None and "id" not in value and "embedding" in value):
        if not versions.embeddings_allowed(version):
            raise _bad(
                "voice",
                f"embeddings are not accepted in API version {version}; pass a voice id",
            )
        return _embedding_voice(value.get("embedding"), lookup), controls
    voice_id = value.get("id")
    if not isinstance(voice_id, str) or not voice_id or len(voice_id) > _MAX_ID_CHARS:
        raise _bad("voice.id", "must be a voice id string")
    return lookup.resolve(voice_id), controls


def _experimental(controls: Mapping[str, Any]) -> Tuple[float, Tuple[str, ...]]:
    speed = 1.0
    raw = controls.get("speed")
    if raw is not None:
        if isinstance(raw, str):
            if raw not in _EXPERIMENTAL_SPEEDS:
                raise _bad(
                    "voice.__experimental_controls.speed",
                    f"must be one of {', '.join(_EXPERIMENTAL_SPEEDS)} or a number in -1..1",
                )
            level = _EXPERIMENTAL_SPEEDS[raw]
        else:
            number = _number(controls, "speed", "voice.__experimental_controls.speed", -1.0, 1.0)
            level = 0.0 if number is None else number
        speed = 1.0 + 0.4 * level
    emotion: Tuple[str, ...] = ()
    raw = controls.get("emotion")
    if raw is not None:
        if not isinstance(raw, list) or not all(
            isinstance(e, str) and 0 < len(e) <= _MAX_EMOTION_CHARS for e in raw
        ):
            raise _bad("voice.__experimental_controls.emotion", 'must be a list such as ["positivity:high"]')
        emotion = tuple(e.split(":", 1)[0] for e in raw)
    return speed, emotion


def _speed_word(body: Mapping[str, Any]) -> float:
    speed_word = body.get("speed")
    if speed_word is None:
        return 1.0
    if not isinstance(speed_word, str) or speed_word not in SPEEDS:
        raise _bad("speed", f"must be one of {', '.join(SPEEDS)}")
    return SPEEDS[speed_word]


def continuation_controls(body: Mapping[str, Any], req: TTSRequest) -> TTSRequest:
    """``req`` with the speed, volume and emotion a continuing websocket input sets.

    An input that carries ``generation_config`` or ``speed`` speaks its text (and the inputs after
    it) with those; one that carries neither, or the same ones (4.2.0 sends a context's defaults
    with every push), keeps the context's current settings: ``req`` itself."""
    if body.get("generation_config") is None and body.get("speed") is None:
        return req
    cfg_speed, volume, emotions = _generation_config(body)
    speed = _speed_word(body) * cfg_speed
    if (speed, volume, emotions) == (req.speed, req.volume, req.emotion):
        return req
    return dataclasses.replace(req, speed=speed, volume=volume, emotion=emotions)


def _generation_config(body: Mapping[str, Any]) -> Tuple[float, float, Tuple[str, ...]]:
    cfg = body.get("generation_config")
    if cfg is None:
        return 1.0, 1.0, ()
    if not isinstance(cfg, dict):
        raise _bad("generation_config", f"must be an object, got {_kind(cfg)}")
    speed = _number(cfg, "speed", "generation_config.speed", 0.6, 1.5)
    volume = _number(cfg, "volume", "generation_config.volume", 0.5, 2.0)
    emotion = cfg.get("emotion")
    emotions: Tuple[str, ...] = ()
    if emotion is not None:
        if isinstance(emotion, str):
            emotion = [emotion]
        if not isinstance(emotion, list) or not all(
            isinstance(e, str) and 0 < len(e) <= _MAX_EMOTION_CHARS for e in emotion
        ):
            raise _bad("generation_config.emotion", "must be an emotion name such as 'happy'")
        emotions = tuple(emotion)
    return (1.0 if speed is None else speed), (1.0 if volume is None else volume), emotions


def _language(body: Mapping[str, Any], family: str) -> Optional[str]:
    language = body.get("language")
    locale = body.get("locale")
    if language is not None and locale is not None:
        raise _bad("language", "and `locale` are mutually exclusive: send one of them")
    field = "language" if language is not None else "locale"
    value = language if language is not None else locale
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(field, f"must be a language code such as 'en', got {_kind(value)}")
    code = value.split("-", 1)[0].split("_", 1)[0].lower()
    known = supported_languages()
    if code not in known:
        raise _bad(field, f"{value[:20]!r} is not supported; choose one of {', '.join(known)}")
    allowed = model_languages(family)
    if allowed is not None and code not in allowed:
        raise _bad(field, f"{value[:20]!r} is not spoken by this model; it speaks {', '.join(sorted(allowed))}")
    return code


def parse_tts(
    body: Any,
    *,
    version: str,
    route: str,
    lookup: VoiceLookup,
    allow_silent: bool = False,
) -> TTSRequest:
    """Validate a generation request.

    Args:
        body: The decoded JSON.
        version: The request's ``Cartesia-Version``.
        route: ``bytes``, ``sse`` or ``websocket`` (what ``output_format`` may be).
        lookup: Resolves voice ids (404 for unknown ones).
        allow_silent: Accept a transcript with nothing to say (websocket inputs after the first).

    Raises:
        ApiError: 400 naming the field (404 for an unknown voice, 413 for a huge transcript).
    """
    if not isinstance(body, dict):
        raise ApiError(400, f"the request must be a JSON object, got {_kind(body)}")
    family = check_model(body.get("model_id"))
    transcript = check_transcript_type(body)
    if not allow_silent and not speakable(transcript):
        raise _bad("transcript", "is empty or contains only punctuation")
    voice, controls = _voice(body.get("voice"), version, lookup)
    if body.get("output_format") is None:
        raise _bad("output_format", "is required")
    try:
        fmt = parse_output_format(body["output_format"], route=route)
    except FormatError as exc:
        raise ApiError(400, str(exc), title="Invalid output format") from None
    word_factor = _speed_word(body)
    cfg_speed, volume, emotions = _generation_config(body)
    exp_speed, exp_emotions = _experimental(controls)
    duration = _number(body, "duration", "duration", 0.0, MAX_DURATION)
    if duration is not None and duration <= 0:
        raise _bad("duration", "must be greater than 0")
    optional_str(body, "pronunciation_dict_id")
    return TTSRequest(
        model_id=body["model_id"],
        transcript=transcript,
        voice=voice,
        output_format=fmt,
        language=_language(body, family),
        speed=word_factor * cfg_speed * exp_speed,
        volume=volume,
        emotion=emotions or exp_emotions,
        duration=duration,
        add_timestamps=optional_bool(body, "add_timestamps"),
        add_phoneme_timestamps=optional_bool(body, "add_phoneme_timestamps"),
        use_normalized_timestamps=optional_bool(body, "use_normalized_timestamps"),
        context_id=optional_str(body, "context_id"),
        save=optional_bool(body, "save"),
        pronunciation_dict_id=optional_str(body, "pronunciation_dict_id"),
    )
