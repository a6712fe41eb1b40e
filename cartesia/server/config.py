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
        concurrency_limit: Current API: generations one API key may run at once (active
            websocket contexts plus HTTP generations); more get 429 ``concurrency_limited``.
            ``None`` = unlimited.
        max_sockets: Current API: open ``/tts/websocket`` sockets per API key (429 at the
            upgrade above it); ``None`` = 10 x ``concurrency_limit`` (unlimited without one).
        tts_ws_idle_timeout: Current API: close a ``/tts/websocket`` socket after this many
            seconds without a message or a running context (code 1000); ``None`` = never.
        max_buffer_delay_ms: Current API: default ``max_buffer_delay_ms`` of websocket contexts
            (text waits for a sentence end or this long; 0 = generate at once).
        context_expiry: Current API: seconds a websocket context that is waiting for more input
            lives after its last output before it is ended with ``done``.
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
    lookahead_bytes: int = 256 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 60.0
    concurrency_limit: Optional[int] = None
    max_sockets: Optional[int] = None
    tts_ws_idle_timeout: Optional[float] = 300.0
    max_buffer_delay_ms: int = 3000
    context_expiry: float = 1.0
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
        for name in ("header_timeout", "body_timeout", "idle_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 seconds")
        if self.lookahead_bytes < 1:
            raise ValueError("lookahead_bytes must be >= 1")
        for name in ("concurrency_limit", "max_sockets"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 (or None for unlimited)")
        if self.tts_ws_idle_timeout is not None and self.tts_ws_idle_timeout <= 0:
            raise ValueError("tts_ws_idle_timeout must be > 0 (or None for never)")
        if not 0 <= self.max_buffer_delay_ms <= 5000:
            raise ValueError("max_buffer_delay_ms must be between 0 and 5000")
        if self.context_expiry <= 0:
            raise ValueError("context_expiry must be > 0")
