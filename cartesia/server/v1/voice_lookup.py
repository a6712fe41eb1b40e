"""The one place TTS routes get their voice resolver from: the server's voice store."""

from __future__ import annotations

from aiohttp import web

from .request import VoiceLookup
from .voice_store import VOICE_STORE_KEY

__all__ = ["voice_lookup"]


def voice_lookup(request: web.Request) -> VoiceLookup:
    """The voice resolver for ``request``: any voice of the store, else ``ApiError(404)``
    (``--any-voice``: a voice derived from the id)."""
    return request.app[VOICE_STORE_KEY].resolve
