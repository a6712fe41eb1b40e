"""Per-server shared state: config, engine, renderer, transcription memory, faults and counters."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from typing import Optional, Set

from aiohttp import web

from .config import ServerConfig
from .engines import Engine, create_engine
from .faults import FaultController
from .generation import Renderer
from .transcribe import TranscriptionRegistry
from .v1.service import Closable, CurrentApi

__all__ = ["ServerState", "STATE_KEY", "REQUEST_FAULTS_KEY"]


@dataclasses.dataclass
class ServerState:
    """What every handler of one server shares.

    Attributes:
        config: The settings.
        engine: The synthesis engine.
        renderer: Renders and caches generations.
        transcripts: Remembers generated audio for ``/audio/transcriptions``.
        faults: Server-wide injected faults.
        stats: Counters (``http_requests``, ``ws_connections``, ``generations_started``,
            ``generations_completed``, ``generations_cancelled``, ``acks``, ``faults_fired``,
            ``auth_failures``, ``audio_frames_sent``), for tests that check what the server saw.
    """

    config: ServerConfig
    engine: Engine
    renderer: Renderer
    transcripts: TranscriptionRegistry
    faults: FaultController
    stats: collections.Counter[str]
    #: Live websocket connections and HTTP stream handler tasks, ended at shutdown.
    connections: Set[Closable] = dataclasses.field(default_factory=set)
    streams: Set[asyncio.Task[object]] = dataclasses.field(default_factory=set)
    #: Tokens, limits and sockets of the current (versioned) API.
    current: Optional[CurrentApi] = None

    @classmethod
    def create(
        cls, config: ServerConfig, faults: Optional[FaultController] = None
    ) -> ServerState:
        engine = create_engine(config.engine)
        transcripts = TranscriptionRegistry(config.transcription_memory)
        renderer = Renderer(
            engine,
            cache_bytes=config.cache_bytes,
            lookahead_bytes=config.lookahead_bytes,
            on_render=transcripts.add,
        )
        return cls(
            config=config,
            engine=engine,
            renderer=renderer,
            transcripts=transcripts,
            faults=faults if faults is not None else FaultController(),
            stats=collections.Counter(),
            current=CurrentApi.create(config),
        )


#: Application key under which the state is stored.
STATE_KEY: web.AppKey[ServerState] = web.AppKey("cartesia_server_state", ServerState)

# aiohttp >= 3.13 wants typed keys for request storage (a plain string key warns); older
# versions only know plain strings.
_RequestKey = getattr(web, "RequestKey", None)
#: Request storage key of the per-request :class:`FaultController` (from X-Cartesia-Fault).
REQUEST_FAULTS_KEY = (
    _RequestKey("cartesia_request_faults", FaultController) if _RequestKey else "cartesia_faults"
)
