"""When to retry a failed call and how long to wait (jittered backoff, Retry-After), once."""

from __future__ import annotations

import http.client
import logging
import random
from dataclasses import dataclass
from typing import Any, Callable, FrozenSet, List, Optional, Tuple, Type

from ..errors import (
    APIStatusError,
    CartesiaConnectionError,
    CartesiaTimeoutError,
    ChunkGapTimeoutError,
    ConnectTimeoutError,
    GenerationError,
    RateLimitError,
    ServerError,
    TotalTimeoutError,
)

__all__ = ["RetryPolicy", "Attempts", "transient_error_types", "RETRY_LOGGER"]

#: Every retry of the package is logged here, once, at INFO, with the same fields.
RETRY_LOGGER = logging.getLogger("cartesia.retry")


def transient_error_types() -> Tuple[Type[BaseException], ...]:
    """Exception types of the transports that mean "the connection failed", not "bad input"."""
    types: List[Any] = [ConnectionError, http.client.RemoteDisconnected, CartesiaConnectionError]
    try:
        import httpx

        types += [httpx.TransportError]
    except ImportError:  # pragma: no cover - httpx is a dependency
        pass
    try:
        import aiohttp

        types += [aiohttp.ClientConnectionError, aiohttp.ServerDisconnectedError]
    except ImportError:  # pragma: no cover - aiohttp is a dependency
        pass
    try:  # requests is not a dependency, but code written for 0.0.5 may raise its errors
        import requests  # type: ignore[import-untyped]

        types += [requests.exceptions.ConnectionError, requests.exceptions.Timeout]
    except ImportError:
        pass
    return tuple(types)


@dataclass
class RetryPolicy:
    """Retry rules shared by the clients and the ``cartesia.utils`` decorators.

    The server's own hints win over the status rule: ``x-should-retry: true|false`` says whether
    (both ways), and ``retry-after-ms`` / ``Retry-After`` how long to wait (a wait longer than
    ``max_retry_after`` is not waited for: the error is raised at once).

    Attributes:
        max_retries: Total number of attempts (0.0.5 semantics: 3 means one try and two retries).
        backoff_factor: Base delay in seconds; attempt ``n`` waits about ``factor * 2**(n-1)``.
        max_backoff: Upper bound of one computed backoff delay.
        max_retry_after: A ``Retry-After`` longer than this is not waited for; the error is raised.
        jitter: Fraction of the delay that is randomised (0 = none, 0.5 = uniform in [50%, 100%]).
        extra_statuses: Statuses retried besides 429 and 5xx (the current API, as 4.2.0: 408
            and 409).
        retry_timeouts: Also retry a call that timed out waiting for its answer (4.2.0 does),
            not only a timed-out connect; a total or chunk-gap timeout is always final.
    """

    max_retries: int = 3
    backoff_factor: float = 1.0
    max_backoff: float = 30.0
    max_retry_after: float = 60.0
    jitter: float = 0.5
    extra_statuses: FrozenSet[int] = frozenset()
    retry_timeouts: bool = False

    def retryable(self, error: BaseException) -> bool:
        """Whether ``error`` may be retried at all (before any audio reached the caller)."""
        retry_after: Optional[float] = getattr(error, "retry_after", None)
        if retry_after is not None and retry_after > self.max_retry_after:
            return False
        if isinstance(error, (APIStatusError, GenerationError)):
            hint: Optional[bool] = getattr(error, "should_retry", None)
            if hint is not None:
                return hint
            if isinstance(error, (RateLimitError, ServerError)):
                return True
            status = error.status_code
            return status is not None and (status == 429 or status >= 500 or status in self.extra_statuses)
        if isinstance(error, ConnectTimeoutError):
            return True
        if isinstance(error, CartesiaTimeoutError):
            return self.retry_timeouts and not isinstance(error, (TotalTimeoutError, ChunkGapTimeoutError))
        return isinstance(error, transient_error_types())

    def delay(self, attempt: int, error: Optional[BaseException] = None) -> float:
        """Seconds to sleep before attempt ``attempt + 1`` (``attempt`` counts from 1).

        The server's ``retry-after-ms``/``Retry-After`` when it gave a positive one (exactly, as
        4.2.0), else the jittered exponential backoff.
        """
        retry_after: Optional[float] = getattr(error, "retry_after", None)
        if retry_after is not None and 0 < retry_after <= self.max_retry_after:
            return float(retry_after)
        base = min(self.max_backoff, self.backoff_factor * (2.0 ** (attempt - 1)))
        if self.jitter:
            base *= 1.0 - self.jitter * random.random()
        return max(0.0, base)


class Attempts:
    """The attempts of one call: counts them and decides, after a failure, whether to retry.

    The one place that says when a call is tried again: never after output reached the caller,
    never past ``max_retries`` attempts, never for an error the policy calls final, and never when
    the backoff would outlast the call's total time limit.

    Args:
        policy: The retry rules.
        what: What is retried, for the log line (``"websocket generation"``, ``"GET /voices"``).
        total_left: Seconds left of the call's total time limit (``None``: no limit).
        logger: Where the retry is logged (default ``cartesia.retry``).
    """

    def __init__(
        self,
        policy: RetryPolicy,
        what: str,
        *,
        total_left: Optional[Callable[[], Optional[float]]] = None,
        logger: Optional[logging.Logger] = None,
    ) -> None:
        self.policy = policy
        self.what = what
        self.count = 0
        self._total_left = total_left
        self._logger = logger or RETRY_LOGGER

    def begin(self) -> int:
        """Start the next attempt; returns its number (from 1)."""
        self.count += 1
        return self.count

    def retryable(self, error: BaseException, *, delivered: bool = False) -> bool:
        return (
            not delivered and self.count < self.policy.max_retries and self.policy.retryable(error)
        )

    def after(
        self, error: BaseException, *, delivered: bool = False, immediate: bool = False
    ) -> Optional[float]:
        """Seconds to wait before the next attempt, or ``None`` when ``error`` is final.

        Args:
            error: Why the attempt failed.
            delivered: Output of this call already reached the caller (never replayed).
            immediate: Retry at once (a socket the server closed while idle: a race, not load).
        """
        if not self.retryable(error, delivered=delivered):
            return None
        delay = 0.0 if immediate else self.policy.delay(self.count, error)
        left = self._total_left() if self._total_left is not None else None
        if left is not None and delay >= left:
            return None
        self._logger.info(
            "Retrying %s after %s (attempt %d/%d in %.2f s)",
            self.what,
            type(error).__name__,
            self.count + 1,
            self.policy.max_retries,
            delay,
        )
        return delay
