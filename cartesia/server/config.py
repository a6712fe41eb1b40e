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
        cache_bytes: Memory budget of the rendered-frames cache (one entry: at most 1/64 of it).
        transcription_memory: Generations remembered for ``/audio/transcriptions``.
        lookahead_bytes: Rendered-but-unsent frame bytes one generation may hold (about): a
            generation is rendered as it is sent, so a client that does not read costs at most
            this much server memory per generation.
        header_timeout: Seconds a connection may take to send a request's headers (counted from
            the connection's start, or from the first byte after a previous request); then it
            is answered 408 (or closed if it sent nothing) and closed.
        body_timeout: Seconds a request may take to send its body once its headers are in;
            then it is answered 408 and the connection closed.
        idle_timeout: Seconds an HTTP keep-alive connection may stay idle between requests.
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
    lookahead_bytes: int = 256 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 60.0

    def __post_init__(self) -> None:
        if self.pace not in PACES:
            raise ValueError(f"pace must be one of {PACES}, got {self.pace!r}")
        if self.voices_embedding_style not in EMBEDDING_STYLES:
            raise ValueError(f"voices_embedding_style must be one of {EMBEDDING_STYLES}")
        if self.first_chunk_latency < 0:
            raise ValueError("first_chunk_latency must be >= 0")
        if any(not k for k in self.api_keys):
            raise ValueError("api keys must be non-empty strings")
        for name in ("header_timeout", "body_timeout", "idle_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 seconds")
        if self.lookahead_bytes < 1:
            raise ValueError("lookahead_bytes must be >= 1")
