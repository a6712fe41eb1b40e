"""Per-generation timing and counters (what happened; the limits live in ``generation``)."""

import time
from dataclasses import dataclass, field
from typing import Optional

__all__ = ["GenerationMetrics"]


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
        """One chunk of ``nbytes`` arrived now."""
        self.arrived(1, nbytes, time.perf_counter())

    def arrived(self, count: int, nbytes: int, now: float) -> None:
        """``count`` chunks of ``nbytes`` in all arrived together at ``now`` (one read's)."""
        if self.ttfb is None:
            self.ttfb = now - self.started
        if self.ttfa is None:
            self.ttfa = now - self.started
        elif self._last_chunk is not None:
            self.max_gap = max(self.max_gap, now - self._last_chunk)
        self._last_chunk = now
        self.chunks += count
        self.bytes += nbytes

    def finish(self, status: str, error: Optional[BaseException] = None) -> None:
        if self.status != "running":
            return
        self.status = status
        self.duration = time.perf_counter() - self.started
        if error is not None:
            self.error = repr(error)
