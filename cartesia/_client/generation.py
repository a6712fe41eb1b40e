"""The one generation state machine: attempts, retries, per-phase deadlines, metrics, cancel.

A transport opens an *attempt* (one request on one connection) and hands back the events it
receives; everything else is decided here, once, for every transport and both drivers:

- each limit holds for its own phase: ``connect`` while connecting, ``first_audio`` from the
  start of an attempt to its first chunk, ``chunk_gap`` between chunks, and ``total`` over the
  whole call, retries and backoff included;
- an attempt that fails is retried (per :class:`~cartesia._client.retry.Attempts`) only while no
  audio reached the caller: a generation that delivered audio is never replayed;
- metrics are restarted per attempt and finished exactly once (done, error, timeout, cancelled).

``run_sync`` and ``run_async`` are the two thin drivers: the same loop, blocking or awaiting.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    Iterator,
    List,
    Optional,
    Protocol,
)

from ..errors import (
    CartesiaTimeoutError,
    ChunkGapTimeoutError,
    ConnectTimeoutError,
    FirstAudioTimeoutError,
    TotalTimeoutError,
    WebSocketClosedError,
)
from ..protocol.events import Audio, Done, ErrorFrame, Event
from .errors import Where, frame_error
from .metrics import GenerationMetrics
from .output import ChunkShaper
from .retry import Attempts, RetryPolicy

__all__ = [
    "Timeouts",
    "Deadline",
    "Generation",
    "SyncAttempt",
    "AsyncAttempt",
    "run_sync",
    "run_async",
    "out_of_connect_time",
    "Chunk",
    "MetricsCallback",
]

Chunk = Dict[str, Any]
MetricsCallback = Callable[[GenerationMetrics], None]


@dataclass
class Timeouts:
    """Time limits in seconds; ``None`` switches a limit off.

    Attributes:
        connect: Opening connections (TCP, TLS, the websocket handshake): one budget per call,
            shared by its attempts.
        first_audio: From the start of an attempt to its first audio chunk (for the other
            calls: to their answer).
        chunk_gap: Longest allowed silence between two chunks of one generation.
        total: A whole call, from the first attempt to the last chunk, backoff included.
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


class Deadline:
    """Tracks which time limit applies next and raises the matching typed timeout.

    ``remaining()`` gives the seconds left before the nearest limit (first audio or chunk gap,
    and the total), suitable for a ``recv(timeout=...)``; ``expired()`` builds the error.
    """

    def __init__(self, timeouts: Timeouts) -> None:
        self.timeouts = timeouts
        now = time.monotonic()
        self._connect_spent = 0.0
        self._connect_started: Optional[float] = None
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

    def remaining(self) -> Optional[float]:
        """Seconds left before the nearest limit, or ``None`` when no limit applies."""
        # Asked before every read of a stream: no list, no helper calls.
        timeouts, total_end = self.timeouts, self._total_end
        limit = timeouts.chunk_gap if self.got_audio else timeouts.first_audio
        if limit is None:
            if total_end is None:
                return None
            left = total_end - time.monotonic()
        else:
            now = time.monotonic()
            left = self._phase_start + limit - now
            if total_end is not None and total_end - now < left:
                left = total_end - now
        return left if left > 0.0 else 0.0

    def total_left(self) -> Optional[float]:
        """Seconds left of the total limit (None without one)."""
        if self._total_end is None:
            return None
        return max(0.0, self._total_end - time.monotonic())

    def connect_limit(self) -> Optional[float]:
        """The time the connect starting now may take (and the clock of its budget starts).

        ``connect`` is one budget for the whole call: a retry after a refused connection only
        gets what the earlier connects left (so a call never waits ``connect`` once per retry),
        and all of it stays within the total limit.
        """
        self._connect_started = time.monotonic()
        limit = self.timeouts.connect
        if limit is not None:
            limit = max(1e-3, limit - self._connect_spent)
        left = self.total_left()
        if left is None:
            return limit
        return left if limit is None else min(limit, left)

    def connect_done(self) -> None:
        """The connect that started last ended (in success or failure): book its time."""
        if self._connect_started is not None:
            self._connect_spent += time.monotonic() - self._connect_started
            self._connect_started = None

    def connect_budget_spent(self) -> bool:
        """Whether the connects of this call used up ``connect`` (no retry can connect)."""
        self.connect_done()
        limit = self.timeouts.connect
        return limit is not None and self._connect_spent >= limit - 1e-3

    def _total_error(self) -> TotalTimeoutError:
        return TotalTimeoutError(
            f"The call took longer than the total timeout of {self.timeouts.total} s."
        )

    def check(self) -> None:
        """Raise the typed timeout if a limit has already passed (for trickling streams)."""
        if self.remaining() == 0.0:
            raise self.expired()

    def expired(self) -> CartesiaTimeoutError:
        """The error for the limit that ran out (the total wins when both did)."""
        now = time.monotonic()
        if self._total_end is not None and now >= self._total_end - 1e-3:
            return self._total_error()
        if self.got_audio:
            return ChunkGapTimeoutError(
                f"No audio chunk for {self.timeouts.chunk_gap} s in the middle of a generation."
            )
        return FirstAudioTimeoutError(
            f"No audio within {self.timeouts.first_audio} s of sending the request."
        )


def out_of_connect_time(error: BaseException, deadline: Deadline) -> bool:
    """A connect timed out and the call's connect budget is gone: retrying cannot connect."""
    return isinstance(error, ConnectTimeoutError) and deadline.connect_budget_spent()


class SyncAttempt(Protocol):
    """One request of a generation on one connection (a transport's blocking half)."""

    @property
    def reused(self) -> Optional[bool]:
        """Whether it runs on a socket that was open already (None: the transport cannot say)."""

    def receive(self) -> List[Event]:
        """The next events; raises the typed timeout when the phase's limit runs out."""

    def delivered(self) -> None:
        """A chunk reached the caller (interrupt mode acknowledges it)."""

    def close(self, completed: bool) -> None:
        """Release the attempt; cancel it on the server unless ``completed`` (idempotent)."""


class AsyncAttempt(Protocol):
    """The async twin of :class:`SyncAttempt` (``close`` stays synchronous: it must work from
    ``__del__`` and only schedules I/O)."""

    @property
    def reused(self) -> Optional[bool]: ...

    async def receive(self) -> List[Event]: ...

    async def delivered(self) -> None: ...

    def close(self, completed: bool) -> None: ...


@dataclass
class Settings:
    """What a generation needs of the client's configuration."""

    timeouts: Timeouts
    retry: RetryPolicy
    secret: Optional[str]


class Generation:
    """The state of one generation across its attempts (no I/O).

    Args:
        settings: Time limits, retry rules and the key (for redaction).
        transport: ``"websocket"`` or ``"http"`` (metrics and log lines).
        context_id: The websocket context id, echoed in the errors.
        shaper: Builds the chunks the caller gets.
        on_finish: Called once with the finished metrics (the client's ``last_metrics`` and the
            caller's ``on_metrics``).
    """

    def __init__(
        self,
        settings: Settings,
        transport: str,
        context_id: Optional[str],
        shaper: ChunkShaper,
        on_finish: Callable[[GenerationMetrics], None],
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.context_id = context_id
        self.shaper = shaper
        self.metrics = GenerationMetrics(transport=transport, context_id=context_id)
        self.deadline = Deadline(settings.timeouts)
        self.attempts = Attempts(
            settings.retry, f"{transport} generation", total_left=self.deadline.total_left
        )
        self._on_finish = on_finish
        self.delivered = False
        self.done = False
        self.attempt: Any = None  # the attempt running now, for a synchronous cancel

    @property
    def sink(self) -> Any:
        return self.shaper.sink

    def begin(self) -> None:
        """A new attempt: its clocks and counters start again (the total clock does not)."""
        self.attempts.begin()
        self.metrics.restart()
        self.deadline.restart_phase()
        self.done = False

    def where(self, what: str, url: str, *, connecting: bool = False) -> Where:
        return Where(
            what,
            url,
            self.settings.secret,
            connect_timeout=self.settings.timeouts.connect,
            deadline=self.deadline,
            connecting=connecting,
        )

    def connect_limit(self) -> Optional[float]:
        return self.deadline.connect_limit()

    def wait_limit(self) -> Optional[float]:
        """Seconds the next receive may wait (the phase's limit, within the total one)."""
        return self.deadline.remaining()

    def expired(self) -> CartesiaTimeoutError:
        return self.deadline.expired()

    def connected(self, attempt: Any) -> None:
        self.deadline.connect_done()
        self.attempt = attempt
        self.metrics.connection_reused = attempt.reused

    def handle(self, events: List[Event]) -> List[Chunk]:
        """The chunks for the caller out of ``events``; an error frame raises its typed error."""
        chunks: List[Chunk] = []
        if not events:
            return chunks
        # Runs once per read of every stream: locals, and the per-batch work (clocks, counters)
        # done once for all the chunks of the read, which arrived together.
        metrics, shaper = self.metrics, self.shaper
        now = time.perf_counter()
        if metrics.ttfb is None:
            metrics.ttfb = now - metrics.started
        plain = shaper.plain
        nbytes = 0
        try:
            for event in events:
                if isinstance(event, Audio):
                    msg = event.message
                    if plain:
                        audio = msg.audio
                        nbytes += len(audio)
                        chunks.append({"audio": audio, "sampling_rate": msg.sampling_rate})
                    else:
                        nbytes += shaper.nbytes(msg)
                        chunks.append(shaper.chunk(msg, msg.context_id))
                    if metrics.ttfa_audible is None and shaper.is_audible(msg):
                        metrics.audible()
                elif isinstance(event, ErrorFrame):
                    raise frame_error(event, self.context_id, self.settings.secret)
                elif isinstance(event, Done):
                    self.done = True
        finally:
            # Counted also when an error frame follows them in the batch (they arrived).
            if chunks:
                metrics.arrived(len(chunks), nbytes, now)
        if chunks:
            # The chunk-gap clock restarts when the batch's audio arrived (µs ago, all of it).
            self.deadline.audio()
            self.delivered = True
        return chunks

    def failed(self, error: BaseException) -> Optional[float]:
        """Seconds to wait before retrying after ``error``, or None: it is final (and recorded)."""
        # A websocket the server closed before any audio: replace it at once the first time
        # (the idle-close race); back off on anything else.
        immediate = (
            self.transport == "websocket"
            and isinstance(error, WebSocketClosedError)
            and self.attempts.count == 1
        )
        delay = (
            None
            if out_of_connect_time(error, self.deadline)
            else self.attempts.after(error, delivered=self.delivered, immediate=immediate)
        )
        if delay is None:
            status = "timeout" if isinstance(error, CartesiaTimeoutError) else "error"
            self.finish(status, error)
        return delay

    def succeeded(self) -> None:
        self.shaper.finish()
        self.finish("done")

    def finish(self, status: str, error: Optional[BaseException] = None) -> None:
        if self.metrics.status != "running":
            return
        self.metrics.finish(status, error)
        self._on_finish(self.metrics)

    def drop(self) -> None:
        """Cancel now, synchronously (a stream garbage-collected while still running)."""
        attempt, self.attempt = self.attempt, None
        if attempt is not None:
            attempt.close(completed=False)
        self.finish("cancelled")


def run_sync(
    gen: Generation,
    open_attempt: Callable[[Generation], SyncAttempt],
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Chunk]:
    """Drive ``gen`` with blocking I/O: the chunks, as they arrive."""
    try:
        while True:
            gen.begin()
            attempt: Optional[SyncAttempt] = None
            try:
                attempt = open_attempt(gen)
                gen.connected(attempt)
                while not gen.done:
                    for chunk in gen.handle(attempt.receive()):
                        yield chunk
                        attempt.delivered()
                attempt.close(completed=True)
                gen.succeeded()
                return
            except Exception as error:
                if attempt is not None:
                    attempt.close(completed=False)
                delay = gen.failed(error)
                if delay is None:
                    raise
                sleep(delay)
            finally:
                if attempt is not None:
                    attempt.close(completed=gen.done)
    finally:
        gen.finish("cancelled")


async def run_async(
    gen: Generation,
    open_attempt: Callable[[Generation], Awaitable[AsyncAttempt]],
) -> AsyncIterator[Chunk]:
    """Drive ``gen`` with asyncio: the async twin of :func:`run_sync`."""
    try:
        while True:
            gen.begin()
            attempt: Optional[AsyncAttempt] = None
            try:
                attempt = await open_attempt(gen)
                gen.connected(attempt)
                while not gen.done:
                    for chunk in gen.handle(await attempt.receive()):
                        yield chunk
                        await attempt.delivered()
                attempt.close(completed=True)
                gen.succeeded()
                return
            except Exception as error:
                if attempt is not None:
                    attempt.close(completed=False)
                delay = gen.failed(error)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
            finally:
                if attempt is not None:
                    attempt.close(completed=gen.done)
    finally:
        gen.finish("cancelled")
