"""The typed events every dialect turns received bytes and messages into."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Union

from ..streaming import Message

__all__ = [
    "Audio",
    "Done",
    "ErrorFrame",
    "Event",
    "WordTimestamps",
    "PhonemeTimestamps",
    "FlushDone",
]


@dataclass
class Audio:
    """A chunk of audio (decoded into the sink when there is one)."""

    message: Message


@dataclass
class Done:
    """The generation finished."""

    context_id: Optional[str] = None


@dataclass
class ErrorFrame:
    """The server reported an error inside a generation."""

    message: str
    status_code: Optional[int]
    request_id: Optional[str]
    context_id: Optional[str]
    # The current API's error fields (None in v0).
    title: Optional[str] = None
    error_code: Optional[str] = None
    doc_url: Optional[str] = None


@dataclass
class WordTimestamps:
    """Word timestamps (current API): ``{"words": [...], "start": [...], "end": [...]}``."""

    word_timestamps: Dict[str, Any]
    context_id: Optional[str] = None
    flush_id: Optional[int] = None


@dataclass
class PhonemeTimestamps:
    """Phoneme timestamps (current API): ``{"phonemes": [...], "start": [...], "end": [...]}``."""

    phoneme_timestamps: Dict[str, Any]
    context_id: Optional[str] = None
    flush_id: Optional[int] = None


@dataclass
class FlushDone:
    """A flush segment of a websocket context ended (current API)."""

    context_id: Optional[str] = None
    flush_id: Optional[int] = None


Event = Union[Audio, Done, ErrorFrame, WordTimestamps, PhonemeTimestamps, FlushDone]
