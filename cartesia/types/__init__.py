"""Objects the current-API clients return, attribute-compatible with the official 4.2.0 models."""

from .params import RawEncoding, RawOutputFormatParam, SampleRate
from .tts import (
    PhonemeTimestamps,
    TTSSSEChunkEvent,
    TTSSSEDoneEvent,
    TTSSSEErrorEvent,
    TTSSSEEvent,
    TTSSSEPhonemeTimestampsEvent,
    TTSSSETimestampsEvent,
    WordTimestamps,
)
from .voices import Voice, VoiceLocale, VoiceMetadata

__all__ = [
    "RawEncoding",
    "RawOutputFormatParam",
    "SampleRate",
    "PhonemeTimestamps",
    "TTSSSEChunkEvent",
    "TTSSSEDoneEvent",
    "TTSSSEErrorEvent",
    "TTSSSEEvent",
    "TTSSSEPhonemeTimestampsEvent",
    "TTSSSETimestampsEvent",
    "WordTimestamps",
    "Voice",
    "VoiceLocale",
    "VoiceMetadata",
]
