"""Audio layer of the current API: output formats, byte-exact encoders and timed synthesis."""

from __future__ import annotations

from .encode import StreamEncoder, encode_pcm
from .formats import FormatError, OutputFormat, parse_output_format
from .synth import Speech, supported_languages, synthesize

__all__ = [
    "FormatError",
    "OutputFormat",
    "parse_output_format",
    "encode_pcm",
    "StreamEncoder",
    "Speech",
    "synthesize",
    "supported_languages",
]
