"""The one place TTS routes get their voice resolver from: the server's voice store."""

from __future__ import annotations

from aiohttp import web

from .request import VoiceLookup
from .voice_store import VOICE_STORE_KEY

__all__ = ["voice_lookup"]


def voice_lookup(request: web.Request) -> VoiceLookup:
    """The voice resolver for ``request``: the server's voice store (unknown ids are
    ``ApiError(404)``, or with ``--any-voice`` a voice derived from the id; embeddings of known
    voices speak as those voices)."""
    return request.app[VOICE_STORE_KEY]
