"""The one place TTS routes get their voice resolver from (rewired to the voice store at merge)."""

from __future__ import annotations

from aiohttp import web

from .. import voices
from ..voices import Voice
from .errors import ApiError
from .request import VoiceLookup

__all__ = ["voice_lookup"]


def voice_lookup(request: web.Request) -> VoiceLookup:
    """The voice resolver for ``request``: a catalogue voice, or ``ApiError(404)``."""

    def lookup(voice_id: str) -> Voice:
        voice = voices.lookup(voice_id)
        if voice is None:
            raise ApiError(404, f"voice {voice_id[:64]!r} not found", title="Voice not found",
                           error_code="voice_not_found")
        return voice

    return lookup
