"""``output_format`` of the current API: validation into an :class:`OutputFormat`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple, TypeVar

__all__ = [
    "FormatError",
    "OutputFormat",
    "parse_output_format",
    "mp3_available",
    "CONTAINERS",
    "ENCODINGS",
    "SAMPLE_RATES",
    "MP3_BIT_RATES",
    "ROUTES",
    "MP3_HINT",
]

#: Containers by route: ``wav`` and ``mp3`` only exist on ``/tts/bytes``.
CONTAINERS = ("raw", "wav", "mp3")
ROUTES: Dict[str, Tuple[str, ...]] = {
    "bytes": ("raw", "wav", "mp3"),
    "sse": ("raw",),
    "websocket": ("raw",),
}
#: Raw sample encodings and their size in bytes.
ENCODINGS: Dict[str, int] = {"pcm_f32le": 4, "pcm_s16le": 2, "pcm_mulaw": 1, "pcm_alaw": 1}
SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
MP3_BIT_RATES = (32000, 64000, 96000, 128000, 192000)
_MP3_DEFAULT_BIT_RATE = 128000
# MPEG-2 layer III (16-24 kHz) tops out at 160 kbit/s and LAME's MPEG-2.5 (8 kHz) at 64 kbit/s:
# above that the encoder would silently write another rate, so such requests are refused.
_MP3_MAX_BIT_RATE = {8000: 64000, 16000: 160000, 22050: 160000, 24000: 160000}
_CONTENT_TYPES = {"raw": "application/octet-stream", "wav": "audio/wav", "mp3": "audio/mpeg"}
#: How to get the optional MP3 encoder.
MP3_HINT = "pip install 'cartesia[mp3]'"


class FormatError(ValueError):
    """An ``output_format`` the server cannot produce; the message names the field."""


@dataclass(frozen=True)
class OutputFormat:
    """A validated output format.

    Attributes:
        container: ``raw``, ``wav`` or ``mp3``.
        encoding: Sample encoding for ``raw``/``wav`` (``None`` for ``mp3``).
        sample_rate: Output rate in Hz.
        bit_rate: MP3 bit rate in bit/s (``None`` for the other containers).
    """

    container: str
    encoding: Optional[str]
    sample_rate: int
    bit_rate: Optional[int] = None

    @property
    def bytes_per_sample(self) -> int:
        """4, 2 or 1 for the PCM encodings; 0 for ``mp3`` (no fixed sample size)."""
        return ENCODINGS[self.encoding] if self.encoding is not None else 0

    def content_type(self) -> str:
        """The HTTP ``Content-Type`` of this container."""
        return _CONTENT_TYPES[self.container]


def mp3_available() -> bool:
    """Whether the optional MP3 encoder (``lameenc``, extra ``mp3``) can be imported."""
    try:
        import lameenc  # noqa: F401
    except ImportError:
        return False
    return True


_Choice = TypeVar("_Choice", str, int)


def _choice(obj: Mapping[str, object], key: str, allowed: Tuple[_Choice, ...]) -> _Choice:
    value = obj.get(key)
    for choice in allowed:
        # Exact types: True (an int) or 44100.0 must not pass as a sample rate.
        if type(value) is type(choice) and value == choice:
            return choice
    shown = ", ".join(str(a) for a in allowed)
    got = "missing" if value is None else f"got {_short(value)}"
    raise FormatError(f"output_format.{key} must be one of {shown} ({got})")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_output_format(obj: Any, *, route: str) -> OutputFormat:
    """Validate a request's ``output_format`` object for ``route``.

    Unknown extra keys are ignored (clients send e.g. ``bit_rate`` with ``wav``).

    Args:
        obj: The decoded JSON value.
        route: ``bytes``, ``sse`` or ``websocket``.

    Raises:
        FormatError: A missing or unsupported field (the message names it), a container the
            route cannot stream, an MP3 bit rate the sample rate cannot carry, or ``mp3``
            without the optional encoder installed.
    """
    if route not in ROUTES:
        raise ValueError(f"unknown route {route!r}")
    if not isinstance(obj, dict):
        raise FormatError("output_format must be an object with container, encoding and sample_rate")
    container = _choice(obj, "container", CONTAINERS)
    if container not in ROUTES[route]:
        raise FormatError(
            f"output_format.container {container!r} is only available on /tts/bytes; "
            f"use 'raw' on /tts/{route}"
        )
    sample_rate = _choice(obj, "sample_rate", SAMPLE_RATES)
    if container != "mp3":
        encoding = _choice(obj, "encoding", tuple(ENCODINGS))
        return OutputFormat(container, encoding, sample_rate)
    max_rate = _MP3_MAX_BIT_RATE.get(sample_rate, max(MP3_BIT_RATES))
    if obj.get("bit_rate") is None:
        bit_rate = min(_MP3_DEFAULT_BIT_RATE, max_rate)
    else:
        bit_rate = _choice(obj, "bit_rate", MP3_BIT_RATES)
        if bit_rate > max_rate:
            raise FormatError(
                f"output_format.bit_rate {bit_rate} is not possible in MP3 at sample_rate "
                f"{sample_rate} (at most {max_rate})"
            )
    if not mp3_available():
        raise FormatError(f"output_format.container 'mp3' needs the MP3 encoder: {MP3_HINT}")
    return OutputFormat("mp3", None, sample_rate, bit_rate)
