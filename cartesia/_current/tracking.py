"""The metrics of one streamed current-API call, reported once to its ``on_metrics`` callback."""

from __future__ import annotations

from typing import Callable, Optional

from .._client.metrics import GenerationMetrics

__all__ = ["Tracker", "MetricsCallback"]

MetricsCallback = Callable[[GenerationMetrics], None]


class Tracker:
    """Counts chunks and bytes, times the call, and ends it exactly once."""

    __slots__ = ("metrics", "_callback", "_reported")

    def __init__(self, callback: Optional[MetricsCallback] = None) -> None:
        self.metrics = GenerationMetrics("http")
        self._callback = callback
        self._reported = False

    def finish(self, status: str, error: Optional[BaseException] = None) -> None:
        self.metrics.finish(status, error)
        if self._callback is not None and not self._reported:
            self._reported = True
            self._callback(self.metrics)

    def failed(self, error: BaseException) -> None:
        self.finish("timeout" if isinstance(error, TimeoutError) else "error", error)
