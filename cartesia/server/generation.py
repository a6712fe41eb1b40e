"""Generation requests: validation, rendering through an engine, chunking and the frame cache."""

from __future__ import annotations

import asyncio
import base64
import collections
import dataclasses
import math
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from . import voices as voices_mod
from .engines import Engine
from .faults import json_type
from .memory import release_freed_memory
from .transcribe import Fingerprint
from .voices import EMBEDDING_SIZE, Voice

__all__ = [
    "RequestError",
    "RenderError",
    "GenerationRequest",
    "Generation",
    "Rendition",
    "Renderer",
    "ws_frame",
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
#: Seconds without any generation before freed memory is handed back to the system.
_TRIM_DELAY = 0.5


class RenderError(Exception):
    """The engine failed in the middle of a generation (the message names the engine's error)."""


class RequestError(Exception):
    """A request the server refuses; becomes a JSON error body or a websocket error frame."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


#: What makes two generation requests render the same audio: transcript, voice key, model id,
#: duration and chunk time (:meth:`GenerationRequest.cache_key`).
RequestKey = Tuple[str, str, str, Optional[float], float]
#: A :class:`Renderer` cache key: the engine's name, then the request's key.
_CacheKey = Tuple[str, str, str, str, Optional[float], float]


@dataclasses.dataclass(frozen=True)
class GenerationRequest:
    """A validated generation body (HTTP stream body or the ``data`` of a websocket message)."""

    transcript: str
    voice: Voice
    model_id: str
    duration: Optional[float]
    chunk_time: float

    def cache_key(self) -> RequestKey:
        return (self.transcript, self.voice.key, self.model_id, self.duration, self.chunk_time)


def _number(body: Dict[str, Any], key: str) -> Optional[float]:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RequestError(422, f"`{key}` must be a finite number, got {json_type(value)}")
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


def ws_frame(http_frame: bytes, context_id_json: bytes) -> bytes:
    """The websocket text frame of a chunk: its HTTP frame with the ``context_id`` appended.

    Args:
        http_frame: The ``POST /audio/stream`` object of the chunk (UTF-8 JSON).
        context_id_json: The context id, JSON-encoded (UTF-8).
    """
    return b"".join((http_frame[:-1], b',"context_id":', context_id_json, b"}"))


def end_frame(rate: int) -> bytes:
    """The final object of an HTTP stream.

    It still carries ``data`` and ``sampling_rate``: cartesia 0.0.5 reads both keys on every
    object of the stream.
    """
    return f'{{"data":"","sampling_rate":{rate},"done":true,"step_time":0.0,"length":0}}'.encode()


@dataclasses.dataclass
class Rendition:
    """The whole rendered audio of one request, cut into chunks and encoded as frames.

    Only :meth:`Renderer.render_sync` builds one (for tests and tools); the server streams
    through :class:`Generation` and never holds a long generation whole.

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

    def chunk_seconds(self, index: int) -> float:
        return self.lengths[index] / self.sampling_rate

    def ws_frame(self, index: int, context_id_json: bytes) -> bytes:
        """Websocket text frame ``index`` for a context (``context_id_json`` is JSON, UTF-8)."""
        return ws_frame(self.http_frames[index], context_id_json)


#: One encoded chunk: its HTTP frame and its number of samples.
Chunk = Tuple[bytes, int]


class _Producer:
    """Pulls an engine's pieces, cuts them into ``chunk_time`` chunks and encodes each one.

    Runs in executor threads, one :meth:`produce` call at a time; nothing here touches the
    event loop.
    """

    def __init__(self, engine: Engine, req: GenerationRequest, keep_samples: bool = False) -> None:
        self.rate = engine.sample_rate
        self.per_chunk = max(1, int(round(req.chunk_time * self.rate)))
        # `duration` caps the audio; without it the v0 default cap (180 s) applies.
        limit = req.duration if req.duration is not None else MAX_DURATION
        self._remaining = int(round(limit * self.rate))
        self.transcript = req.transcript
        self._pieces = engine.stream(
            req.transcript, req.voice, MODELS[req.model_id], max_seconds=limit
        )
        self._pending: List[np.ndarray] = []
        self._pending_n = 0
        self._exhausted = False
        self._chunks = 0
        self.finished = False
        self.fingerprint = Fingerprint(self.rate)
        self.samples: Optional[List[np.ndarray]] = [] if keep_samples else None

    def _pull(self) -> None:
        """Pull pieces until a whole chunk is pending or the audio (or its cap) ends."""
        while self._pending_n < self.per_chunk and not self._exhausted:
            piece = next(self._pieces, None)
            if piece is None or self._remaining <= 0:
                self._exhausted = True
                break
            piece = np.asarray(piece, dtype=np.float32)[: self._remaining]
            self._remaining -= len(piece)
            if len(piece):
                self._pending.append(piece)
                self._pending_n += len(piece)
            if self._remaining <= 0:
                self._exhausted = True
        if self._exhausted:
            self.close()  # the engine may stop early: the rest would be cut anyway

    def _take(self, n: int) -> np.ndarray:
        whole = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        chunk, rest = whole[:n], whole[n:]
        self._pending = [rest] if len(rest) else []
        self._pending_n = len(rest)
        return chunk

    def produce(self, budget: int) -> List[Chunk]:
        """Encode chunks until they add up to ``budget`` bytes or the audio ends.

        Returns at least one chunk, except when the audio turns out to have ended exactly at
        the previous chunk (then :attr:`finished` is set and the list is empty).
        """
        out: List[Chunk] = []
        size = 0
        while not self.finished and size < max(1, budget):
            t0 = time.perf_counter()
            self._pull()
            if self._pending_n >= self.per_chunk:
                samples = self._take(self.per_chunk)
            elif self._pending_n or not self._chunks:
                # The last, shorter chunk (an empty audio still gets one, empty, chunk).
                samples = self._take(self._pending_n)
                self.finished = True
            else:
                self.finished = True
                break
            if self._pending_n == 0 and self._exhausted:
                self.finished = True
            frame = self._encode(samples, (time.perf_counter() - t0) * 1000.0)
            out.append((frame, len(samples)))
            size += len(frame)
        return out

    def _encode(self, samples: np.ndarray, synth_ms: float) -> bytes:
        self._chunks += 1
        self.fingerprint.update(samples)
        if self.samples is not None:
            self.samples.append(samples.copy())
        data = base64.b64encode(samples.astype("<f4", copy=False).tobytes())
        length = len(samples)
        tail = (
            f'","sampling_rate":{self.rate},"done":false,'
            f'"step_time":{round(synth_ms, 3)},"length":{length}}}'
        )
        return b"".join((b'{"data":"', data, tail.encode()))

    def close(self) -> None:
        """Release the engine's generator (idempotent)."""
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()


@dataclasses.dataclass(frozen=True)
class _Cached:
    """A short generation kept whole in the cache."""

    frames: Tuple[bytes, ...]
    lengths: Tuple[int, ...]
    rate: int

    @property
    def nbytes(self) -> int:
        return sum(len(f) for f in self.frames)


class Generation:
    """The frames of one request, rendered at most a bounded look-ahead ahead of the sender.

    The sender pulls chunks with :meth:`next`; chunks are rendered in executor threads, a batch
    of about ``lookahead_bytes`` at a time, the next batch starting once half of the previous
    one has been taken. A sender blocked on a socket that does not read therefore holds at most
    about ``lookahead_bytes`` of rendered audio (plus the engine's pending piece).

    Attributes:
        sampling_rate: Hz.
        end_frame: The final object of the HTTP stream.
        buffered_bytes: Frames rendered and not taken yet.
        peak_buffered_bytes: The most :attr:`buffered_bytes` ever was.
    """

    def __init__(
        self,
        renderer: Renderer,
        key: _CacheKey,
        producer: Optional[_Producer] = None,
        cached: Optional[_Cached] = None,
    ) -> None:
        self._renderer = renderer
        self._key = key
        self._producer = producer
        self._ready: collections.deque[Chunk] = collections.deque()
        self._refill: Optional[asyncio.Future[None]] = None
        self._error: Optional[BaseException] = None
        self._closed = False
        # Cached frames belong to the cache, not to this generation: they are not counted.
        self._counted = producer is not None
        self.buffered_bytes = 0
        self.peak_buffered_bytes = 0
        self._batches = 0
        if cached is not None:
            self.sampling_rate = cached.rate
            self._ready.extend(zip(cached.frames, cached.lengths))
            self._done = True
        else:
            assert producer is not None
            self.sampling_rate = producer.rate
            self._done = False
        self.end_frame = end_frame(self.sampling_rate)
        renderer.open_generations += 1

    async def _fill(self) -> None:
        """Render the next batch (in an executor thread) and queue it."""
        try:
            await self._render_batch()
        finally:
            # Cleared here, not in a done-callback: a sender woken earlier in the loop turn that
            # finished this task would otherwise find it still set, re-await it (a finished task
            # does not yield) and spin forever instead of starting the next batch.
            if self._refill is asyncio.current_task():
                self._refill = None

    async def _render_batch(self) -> None:
        producer = self._producer
        assert producer is not None
        budget = self._renderer.lookahead_bytes - self.buffered_bytes
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, producer.produce, budget)
        self._renderer.track(future)
        try:
            chunks = await future
        except Exception as exc:  # an engine failure: the sender raises it when it gets there
            self._error = exc
            self._done = True
            producer.close()
            return
        if self._closed:
            producer.close()
            return
        self._batches += 1
        for chunk in chunks:
            self._ready.append(chunk)
            self._account(len(chunk[0]))
        if producer.finished:
            self._done = True
            # Only a generation rendered whole in its first batch goes to the cache: keeping
            # the sent frames of a longer one until its end would cost memory per generation.
            self._renderer.finished(self._key, producer, chunks if self._batches == 1 else None)

    def _account(self, delta: int) -> None:
        if not self._counted:
            return
        self.buffered_bytes += delta
        self._renderer.buffered_bytes += delta
        if self.buffered_bytes > self.peak_buffered_bytes:
            self.peak_buffered_bytes = self.buffered_bytes
            if self.buffered_bytes > self._renderer.peak_buffered_bytes:
                self._renderer.peak_buffered_bytes = self.buffered_bytes

    def _start_refill(self) -> None:
        if self._refill is None and not self._done and not self._closed:
            self._refill = asyncio.ensure_future(self._fill())

    async def first(self) -> None:
        """Render the first batch now (so an engine failure surfaces before anything is sent)."""
        if not self._ready and not self._done:
            await self._wait_refill()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    async def _wait_refill(self) -> None:
        self._start_refill()
        task = self._refill
        if task is not None:
            # Shielded: a cancelled sender must not cancel a render running in a thread.
            await asyncio.shield(task)

    async def next(self) -> Optional[Chunk]:
        """The next chunk ``(http_frame, samples)``, or ``None`` after the last one.

        Raises:
            RenderError: The engine failed rendering this part of the audio.
        """
        while not self._ready:
            if self._error is not None:
                error, self._error = self._error, None
                raise RenderError(f"{type(error).__name__}: {error}") from error
            if self._done or self._closed:
                return None
            await self._wait_refill()
        chunk = self._ready.popleft()
        self._account(-len(chunk[0]))
        if self.buffered_bytes * 2 < self._renderer.lookahead_bytes:
            self._start_refill()
        return chunk

    def close(self) -> None:
        """Stop rendering and drop what was not sent (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._renderer.closed_generation()
        self._account(-self.buffered_bytes)
        self._ready.clear()
        if self._producer is not None and (self._refill is None or self._refill.done()):
            self._producer.close()
        # With a batch still rendering, _fill() closes the producer when the thread is done.


class Renderer:
    """Opens generations of one engine; caches short ones in a byte-bounded LRU.

    A generation is cached when it was rendered whole in its first batch (at most
    ``lookahead_bytes`` of frames, and at most 1/64 of ``cache_bytes``).

    Gauges: ``buffered_bytes`` (frames rendered and not sent, all live generations),
    ``peak_buffered_bytes`` (the most one generation ever held), ``open_generations``.

    Args:
        engine: The synthesis engine.
        cache_bytes: Memory budget of the cache.
        lookahead_bytes: Rendered-but-unsent frame bytes one generation may hold (about).
        on_render: Called with the :class:`~cartesia.server.transcribe.Fingerprint` and the
            transcript of every generation rendered to its end (the transcription registry).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        cache_bytes: int = 64 * 1024 * 1024,
        lookahead_bytes: int = 256 * 1024,
        on_render: Optional[Callable[[Fingerprint, str], None]] = None,
    ) -> None:
        self.engine = engine
        self.cache_bytes = cache_bytes
        self.cache_entry_bytes = cache_bytes // 64
        self.lookahead_bytes = max(1, lookahead_bytes)
        self.buffered_bytes = 0
        self.peak_buffered_bytes = 0
        self.open_generations = 0
        self._trim_pending = False
        self._cache: collections.OrderedDict[_CacheKey, _Cached] = collections.OrderedDict()
        self._cache_used = 0
        self._inflight: set[asyncio.Future[Any]] = set()
        self._lock = threading.Lock()
        self._on_render = on_render

    def _key(self, req: GenerationRequest) -> _CacheKey:
        return (self.engine.name,) + req.cache_key()

    def render_sync(self, req: GenerationRequest) -> Rendition:
        """Render the whole request in the calling thread (no cache): for tests and tools."""
        producer = _Producer(self.engine, req, keep_samples=True)
        chunks: List[Chunk] = []
        while not producer.finished:
            chunks.extend(producer.produce(1 << 30))
        assert producer.samples is not None
        if self._on_render is not None:
            self._on_render(producer.fingerprint, producer.transcript)
        samples = (
            np.concatenate(producer.samples) if producer.samples else np.zeros(0, np.float32)
        )
        frames = [frame for frame, _ in chunks] + [end_frame(producer.rate)]
        return Rendition(samples, [n for _, n in chunks], frames, producer.rate)

    async def open(self, req: GenerationRequest) -> Generation:
        """Start a generation of ``req`` with its first batch rendered.

        Raises:
            Exception: Whatever the engine raised rendering the first batch.
        """
        key = self._key(req)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
        if hit is not None:
            return Generation(self, key, cached=hit)
        generation = Generation(self, key, producer=_Producer(self.engine, req))
        try:
            await generation.first()
        except BaseException:
            generation.close()
            raise
        return generation

    def closed_generation(self) -> None:
        """A generation ended; once none is left for a moment, give freed memory back."""
        self.open_generations -= 1
        if self.open_generations or self._trim_pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._trim_pending = True
        loop.call_later(_TRIM_DELAY, self._trim_if_idle, loop)

    def _trim_if_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        self._trim_pending = False
        if not self.open_generations and not loop.is_closed():
            self.track(loop.run_in_executor(None, release_freed_memory))

    def track(self, future: asyncio.Future[Any]) -> None:
        """Remember a render running in a thread until it ends (for :meth:`drain`)."""
        self._inflight.add(future)
        future.add_done_callback(self._inflight.discard)

    async def drain(self) -> None:
        """Wait for renders still running in threads (called at shutdown)."""
        if self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    def finished(self, key: _CacheKey, producer: _Producer, kept: Optional[List[Chunk]]) -> None:
        """A generation was rendered to its end: fingerprint it, cache it if it is short."""
        if self._on_render is not None:
            self._on_render(producer.fingerprint, producer.transcript)
        if kept is None:
            return
        entry = _Cached(tuple(f for f, _ in kept), tuple(n for _, n in kept), producer.rate)
        size = entry.nbytes
        if size > self.cache_entry_bytes:
            return
        with self._lock:
            old = self._cache.pop(key, None)
            if old is not None:
                self._cache_used -= old.nbytes
            self._cache[key] = entry
            self._cache_used += size
            while self._cache_used > self.cache_bytes and self._cache:
                _, evicted = self._cache.popitem(last=False)
                self._cache_used -= evicted.nbytes
