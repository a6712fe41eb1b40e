"""Public import point for the streaming core: parsers, ring buffer and audio accumulator."""

from ._stream import (
    IMPLEMENTATION,
    AudioBuffer,
    Message,
    PCMRing,
    StreamParser,
    b64_backend,
    parse_message,
)
from .errors import (
    Base64DecodeError,
    FrameTooLargeError,
    RingOverflowError,
    StreamFormatError,
    TruncatedStreamError,
)

__all__ = [
    "IMPLEMENTATION",
    "AudioBuffer",
    "Message",
    "PCMRing",
    "StreamParser",
    "b64_backend",
    "parse_message",
    "Base64DecodeError",
    "FrameTooLargeError",
    "RingOverflowError",
    "StreamFormatError",
    "TruncatedStreamError",
]
