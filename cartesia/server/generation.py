"""Generation requests: validation, rendering through an engine, chunking and the frame cache."""

from __future__ import annotations

import asyncio
import base64
import collections
import dataclasses
import json
import math
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from . import voices as voices_mod
from .engines import Engine
from .voices import EMBEDDING_SIZE, Voice

__all__ = [
    "RequestError",
    "GenerationRequest",
    "Rendition",
    "Renderer",
    "parse_generation",
    "MODELS",
    "DEFAULT_MODEL_ID",
]

#: Models the server knows, with the speaking-speed factor each one applies.
MODELS: Dict[str, float] = {"genial-planet-1346": 1.0, "upbeat-moon": 1.12}
DEFAULT_MODEL_ID = "genial-planet-1346"
DEFAULT_CHUNK_TIME = 0.1
MIN_CHUNK_TIME = 0.01
MAX_CHUNK_TIME = 5.0
#: Longest audio one request may produce (the v0 spec's default ``duration``).
MAX_DURATION = 180.0
MAX_TRANSCRIPT_CHARS = 20_000


class RequestError(Exception):
    """A request the server refuses; becomes a JSON error body or a websocket error frame."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclasses.dataclass(frozen=True)
class GenerationRequest:
    """A validated generation body (HTTP stream body or the ``data`` of a websocket message)."""

    transcript: str
    voice: Voice
    model_id: str
    duration: Optional[float]
    chunk_time: float

    def cache_key(self) -> Tuple:
        return (self.transcript, self.voice.key, self.model_id, self.duration, self.chunk_time)


def _number(body: Dict[str, Any], key: str) -> Optional[float]:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RequestError(422, f"`{key}` must be a finite number, got {json.dumps(value)[:40]}")
    return float(value)


def _parse_voice(value: Any) -> Voice:
    if isinstance(value, dict):
        # Later API versions wrap the voice: {"mode": "id", "id": ...} / {"mode": "embedding", ...}.
        if "id" in value:
            value = value["id"]
        elif "embedding" in value:
            value = value["embedding"]
        else:
            raise RequestError(422, "`voice` object needs an `id` or an `embedding`")
    if isinstance(value, str):
        voice = voices_mod.lookup(value)
        if voice is None:
            raise RequestError(400, f"unknown voice id {value[:64]!r}")
        return voice
    if not isinstance(value, list):
        raise RequestError(
            422, f"`voice` must be a list of {EMBEDDING_SIZE} numbers (an embedding) or a voice id"
        )
    if len(value) != EMBEDDING_SIZE:
        raise RequestError(
            422, f"`voice` embedding must have {EMBEDDING_SIZE} numbers, got {len(value)}"
        )
    for x in value:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            raise RequestError(422, "`voice` embedding must contain only finite numbers")
    return voices_mod.voice_for_embedding(value)


def parse_generation(body: Any) -> GenerationRequest:
    """Validate a generation body.

    Raises:
        RequestError: 400 for a missing/empty transcript, unknown model or voice id, or
            inconsistent ``duration``/``chunk_time``; 422 for wrong types or shapes; 413 for a
            transcript that is too long.
    """
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object")
    transcript = body.get("transcript")
    if transcript is None:
        raise RequestError(400, "missing `transcript`")
    if not isinstance(transcript, str):
        raise RequestError(422, "`transcript` must be a string")
    if not transcript.strip():
        raise RequestError(400, "`transcript` must be non empty")
    if len(transcript) > MAX_TRANSCRIPT_CHARS:
        raise RequestError(
            413,
            f"`transcript` is longer than {MAX_TRANSCRIPT_CHARS} characters ({len(transcript)})",
        )
    if "voice" not in body:
        raise RequestError(400, "missing `voice`")
    voice = _parse_voice(body["voice"])
    model_id = body.get("model_id", DEFAULT_MODEL_ID)
    if not isinstance(model_id, str):
        raise RequestError(422, "`model_id` must be a string")
    if model_id not in MODELS:
        raise RequestError(
            400, f"unknown model_id {model_id[:64]!r}; known models: {', '.join(MODELS)}"
        )
    chunk_time = _number(body, "chunk_time")
    if chunk_time is None:
        chunk_time = DEFAULT_CHUNK_TIME
    elif not MIN_CHUNK_TIME <= chunk_time <= MAX_CHUNK_TIME:
        raise RequestError(
            400, f"`chunk_time` must be between {MIN_CHUNK_TIME} and {MAX_CHUNK_TIME} seconds"
        )
    duration = _number(body, "duration")
    if duration is not None:
        if duration <= 0 or duration > MAX_DURATION:
            raise RequestError(400, f"`duration` must be > 0 and <= {MAX_DURATION:g} seconds")
        if duration < chunk_time:
            raise RequestError(400, "`duration` must be greater than `chunk_time`")
    return GenerationRequest(transcript, voice, model_id, duration, chunk_time)


@dataclasses.dataclass
class Rendition:
    """Rendered audio of one request, already cut into chunks and encoded as frames.

    Each chunk is base64-encoded once; the websocket frame of a chunk is its HTTP frame with the
    ``context_id`` appended, so a cached rendition serves both transports without re-encoding.

    Attributes:
        samples: The whole audio (float32, 44.1 kHz).
        lengths: Samples per chunk.
        http_frames: The ``POST /audio/stream`` body objects, one per chunk, then the final one.
        sampling_rate: Hz.
    """

    samples: np.ndarray
    lengths: List[int]
    http_frames: List[bytes]
    sampling_rate: int

    @property
    def nbytes(self) -> int:
        return self.samples.nbytes + sum(len(f) for f in self.http_frames)

    def chunk_seconds(self, index: int) -> float:
        return self.lengths[index] / self.sampling_rate

    def ws_frame(self, index: int, context_id_json: bytes) -> bytes:
        """Websocket text frame ``index`` for a context (``context_id_json`` is JSON, UTF-8)."""
        return b"".join((self.http_frames[index][:-1], b',"context_id":', context_id_json, b"}"))


def _build(samples: np.ndarray, rate: int, chunk_time: float, synth_ms: float) -> Rendition:
    per_chunk = max(1, int(round(chunk_time * rate)))
    raw = samples.astype("<f4", copy=False).tobytes()
    lengths = []
    http_frames = []
    n = len(samples)
    for start in range(0, max(n, 1), per_chunk):
        length = min(per_chunk, n - start)
        data = base64.b64encode(raw[4 * start : 4 * (start + length)])
        step = round(synth_ms * length / max(n, 1), 3)
        lengths.append(length)
        tail = f'","sampling_rate":{rate},"done":false,"step_time":{step},"length":{length}}}'
        http_frames.append(b"".join((b'{"data":"', data, tail.encode())))
    # The end marker still carries `data` and `sampling_rate`: cartesia 0.0.5 reads both keys on
    # every object of the stream.
    http_frames.append(
        f'{{"data":"","sampling_rate":{rate},"done":true,"step_time":0.0,"length":0}}'.encode()
    )
    return Rendition(samples, lengths, http_frames, rate)


class Renderer:
    """Renders requests with one engine, caching finished renditions in a bounded LRU.

    Concurrent identical requests share one rendering. Every rendition is also handed to
    ``on_render`` (the transcription registry) so the server can later recognise its audio.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        cache_bytes: int = 64 * 1024 * 1024,
        on_render: Any = None,
    ) -> None:
        self.engine = engine
        self.cache_bytes = cache_bytes
        self._cache: "collections.OrderedDict[Tuple, Rendition]" = collections.OrderedDict()
        self._cache_used = 0
        self._inflight: Dict[Tuple, "asyncio.Task[Rendition]"] = {}
        self._lock = threading.Lock()
        self._on_render = on_render

    def render_sync(self, req: GenerationRequest) -> Rendition:
        """Render without the cache (runs the engine in the calling thread)."""
        t0 = time.perf_counter()
        # `duration` caps the audio; without it the v0 default cap (180 s) applies.
        limit = req.duration if req.duration is not None else MAX_DURATION
        samples = self.engine.synthesize(
            req.transcript, req.voice, MODELS[req.model_id], max_seconds=limit
        )
        samples = samples[: int(round(limit * self.engine.sample_rate))]
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        synth_ms = (time.perf_counter() - t0) * 1000.0
        rendition = _build(samples, self.engine.sample_rate, req.chunk_time, synth_ms)
        if self._on_render is not None:
            self._on_render(rendition.samples, rendition.sampling_rate, req.transcript)
        return rendition

    async def render(self, req: GenerationRequest) -> Rendition:
        """Render ``req`` (from the cache when possible) without blocking the event loop.

        The rendering runs as its own task, so a requester that goes away (and is cancelled)
        neither cancels it for other requesters of the same audio nor loses it for the cache.
        """
        key = (self.engine.name,) + req.cache_key()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._render_task(key, req))
            self._inflight[key] = task
        return await asyncio.shield(task)

    async def _render_task(self, key: Tuple, req: GenerationRequest) -> Rendition:
        try:
            loop = asyncio.get_running_loop()
            rendition = await loop.run_in_executor(None, self.render_sync, req)
            self._store(key, rendition)
            return rendition
        finally:
            self._inflight.pop(key, None)

    async def drain(self) -> None:
        """Wait for renderings still in flight (called at shutdown)."""
        tasks = list(self._inflight.values())
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _store(self, key: Tuple, rendition: Rendition) -> None:
        size = rendition.nbytes
        if size > self.cache_bytes // 4:
            return
        with self._lock:
            self._cache[key] = rendition
            self._cache_used += size
            while self._cache_used > self.cache_bytes and self._cache:
                _, old = self._cache.popitem(last=False)
                self._cache_used -= old.nbytes
