"""Settings of one local server instance (shared by the CLI and the embeddable ``LocalServer``)."""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

__all__ = ["ServerConfig", "DEFAULT_API_KEY", "PACES", "EMBEDDING_STYLES"]

#: The key ``LocalServer.api_key`` hands out when no keys are configured.
DEFAULT_API_KEY = "local-test-key"
PACES = ("none", "realtime")
EMBEDDING_STYLES = ("string", "list")


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """Everything that shapes a server's behaviour.

    Attributes:
        engine: ``speech``, ``tone`` or ``None`` (speech when espeak-ng is installed, else tone).
        pace: ``none`` (as fast as possible) or ``realtime`` (chunks at the speed of audio).
        first_chunk_latency: Seconds to wait before the first chunk of every generation.
        api_keys: Accepted keys; empty = any non-empty key is accepted.
        voices_embedding_style: How ``GET /voices`` serves embeddings: ``string`` (a JSON-encoded
            string, as the v0 API did and cartesia 0.0.5 requires) or ``list``. A request can
            override it with ``?embedding_style=``.
        max_body_bytes: Largest accepted request body (413 above it).
        ws_max_message_bytes: Largest accepted websocket message.
        ws_idle_timeout: Close websockets idle this long (code 1000), ``None`` = never.
        cache_bytes: Memory budget of the rendered-frames cache.
        transcription_memory: Generations remembered for ``/audio/transcriptions``.
        voices_file: A JSON file of voice objects added to the current API's catalogue
            (``--voices``); read when the app is created.
        any_voice: An unknown voice id speaks with a voice derived from the id instead of
            answering 404 (``--any-voice``).
    """

    engine: Optional[str] = None
    pace: str = "none"
    first_chunk_latency: float = 0.0
    api_keys: Tuple[str, ...] = ()
    voices_embedding_style: str = "string"
    max_body_bytes: int = 16 * 1024 * 1024
    ws_max_message_bytes: int = 1024 * 1024
    ws_idle_timeout: Optional[float] = None
    cache_bytes: int = 64 * 1024 * 1024
    transcription_memory: int = 512
    voices_file: Optional[str] = None
    any_voice: bool = False

    def __post_init__(self) -> None:
        if self.pace not in PACES:
            raise ValueError(f"pace must be one of {PACES}, got {self.pace!r}")
        if self.voices_embedding_style not in EMBEDDING_STYLES:
            raise ValueError(f"voices_embedding_style must be one of {EMBEDDING_STYLES}")
        if self.first_chunk_latency < 0:
            raise ValueError("first_chunk_latency must be >= 0")
        if any(not k for k in self.api_keys):
            raise ValueError("api keys must be non-empty strings")
