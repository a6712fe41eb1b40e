"""Per-generation timing and counters, and the per-phase time limits of a generation."""

import time
from dataclasses import dataclass, field
from typing import Optional

from .errors import (
    CartesiaTimeoutError,
    ChunkGapTimeoutError,
    FirstAudioTimeoutError,
    TotalTimeoutError,
)

__all__ = ["GenerationMetrics", "Timeouts", "Deadline"]


@dataclass
class Timeouts:
    """Time limits in seconds; ``None`` switches a limit off.

    Attributes:
        connect: Opening a connection (TCP + HTTP headers, or the websocket handshake).
        first_audio: From sending the request to the first audio chunk.
        chunk_gap: Longest allowed silence between two chunks of one generation.
        total: A whole generation, from the first attempt to the last chunk.
    """

    connect: Optional[float] = 30.0
    first_audio: Optional[float] = 30.0
    chunk_gap: Optional[float] = 30.0
    total: Optional[float] = None

    def __post_init__(self) -> None:
        for name in ("connect", "first_audio", "chunk_gap", "total"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"`{name}` timeout must be a positive number of seconds or None")


@dataclass
class GenerationMetrics:
    """What happened during one generation (times in seconds, from ``time.perf_counter``).

    Attributes:
        transport: ``"http"`` or ``"websocket"``.
        context_id: Websocket context id (``None`` over HTTP).
        connection_reused: True when the generation ran on an already open websocket, False
            when it had to open one; ``None`` over HTTP (the pool does not say).
        ttfb: Request sent -> first byte/message of the response.
        ttfa: Request sent -> first audio chunk.
        ttfa_audible: Request sent -> first chunk with a sample above -60 dBFS (a first chunk
            of leading silence is not what a listener hears); ``None`` when audio went to a PCMRing.
        chunks: Audio chunks received.
        bytes: Audio bytes received (decoded PCM, not base64).
        max_gap: Longest gap between two consecutive chunks.
        duration: Request sent -> end (done, error, timeout or cancel).
        attempts: Attempts made (1 + transparent retries/reconnects).
        status: ``"running"``, ``"done"``, ``"error"``, ``"timeout"`` or ``"cancelled"``.
        error: ``repr`` of the error that ended the generation, if any.
    """

    transport: str
    context_id: Optional[str] = None
    connection_reused: Optional[bool] = None
    ttfb: Optional[float] = None
    ttfa: Optional[float] = None
    ttfa_audible: Optional[float] = None
    chunks: int = 0
    bytes: int = 0
    max_gap: float = 0.0
    duration: Optional[float] = None
    attempts: int = 0
    status: str = "running"
    error: Optional[str] = None
    started: float = field(default_factory=time.perf_counter, repr=False)
    _last_chunk: Optional[float] = field(default=None, repr=False)

    def restart(self) -> None:
        """Start the clock again for a new attempt (a retry discards the failed one's timings)."""
        self.started = time.perf_counter()
        self.ttfb = self.ttfa = self.ttfa_audible = None
        self._last_chunk = None
        self.attempts += 1

    def first_byte(self) -> None:
        if self.ttfb is None:
            self.ttfb = time.perf_counter() - self.started

    def audible(self) -> None:
        """The current chunk holds audible samples (only the first call counts)."""
        if self.ttfa_audible is None:
            self.ttfa_audible = time.perf_counter() - self.started

    def chunk(self, nbytes: int) -> None:
        now = time.perf_counter()
        if self.ttfb is None:
            self.ttfb = now - self.started
        if self.ttfa is None:
            self.ttfa = now - self.started
        elif self._last_chunk is not None:
            self.max_gap = max(self.max_gap, now - self._last_chunk)
        self._last_chunk = now
        self.chunks += 1
        self.bytes += nbytes

    def finish(self, status: str, error: Optional[BaseException] = None) -> None:
        if self.status != "running":
            return
        self.status = status
        self.duration = time.perf_counter() - self.started
        if error is not None:
            self.error = repr(error)


class Deadline:
    """Tracks which time limit applies next and raises the matching typed timeout.

    ``remaining()`` gives the seconds left before the nearest limit (first audio or chunk gap,
    and the total), suitable for a ``recv(timeout=...)``; ``expired()`` builds the error.
    """

    def __init__(self, timeouts: Timeouts) -> None:
        self.timeouts = timeouts
        now = time.monotonic()
        self._total_end = now + timeouts.total if timeouts.total else None
        self._phase_start = now
        self.got_audio = False

    def restart_phase(self) -> None:
        """A new attempt: the first-audio clock starts again (the total clock does not)."""
        self._phase_start = time.monotonic()
        self.got_audio = False

    def audio(self) -> None:
        """An audio chunk arrived: the chunk-gap clock starts again."""
        self.got_audio = True
        self._phase_start = time.monotonic()

    def _phase_limit(self) -> Optional[float]:
        return self.timeouts.chunk_gap if self.got_audio else self.timeouts.first_audio

    def remaining(self) -> Optional[float]:
        """Seconds left before the nearest limit, or ``None`` when no limit applies."""
        now = time.monotonic()
        candidates = []
        limit = self._phase_limit()
        if limit is not None:
            candidates.append(self._phase_start + limit - now)
        if self._total_end is not None:
            candidates.append(self._total_end - now)
        if not candidates:
            return None
        return max(0.0, min(candidates))

    def check(self) -> None:
        """Raise the typed timeout if a limit has already passed (for trickling streams)."""
        if self.remaining() == 0.0:
            raise self.expired()

    def expired(self) -> CartesiaTimeoutError:
        """The error for the limit that ran out (the total wins when both did)."""
        now = time.monotonic()
        if self._total_end is not None and now >= self._total_end - 1e-3:
            return TotalTimeoutError(
                f"The generation took longer than the total timeout of {self.timeouts.total} s."
            )
        if self.got_audio:
            return ChunkGapTimeoutError(
                f"No audio chunk for {self.timeouts.chunk_gap} s in the middle of a generation."
            )
        return FirstAudioTimeoutError(
            f"No audio within {self.timeouts.first_audio} s of sending the request."
        )
