"""The typed events every dialect turns received bytes and messages into."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from ..streaming import Message

__all__ = ["Audio", "Done", "ErrorFrame", "Event"]


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


Event = Union[Audio, Done, ErrorFrame]
