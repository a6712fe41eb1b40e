"""When each chunk of a generation may leave the server (``realtime`` or ``none`` pace)."""

from __future__ import annotations

import asyncio
import time

__all__ = ["Pacer"]


class Pacer:
    """Releases chunks of one generation.

    With ``realtime`` pace chunk *i* leaves no earlier than ``first_chunk_latency`` plus the audio
    duration of the chunks before it, measured from the start of the generation; with ``none`` only
    the first-chunk latency applies.

    Args:
        pace: ``realtime`` or ``none``.
        first_chunk_latency: Seconds before the first chunk.
    """

    def __init__(self, pace: str, first_chunk_latency: float) -> None:
        self.realtime = pace == "realtime"
        self.latency = first_chunk_latency
        self._start = time.monotonic()
        self._audio_seconds = 0.0

    async def before_chunk(self, index: int) -> None:
        """Wait until chunk ``index`` may be sent."""
        if index == 0:
            if self.latency > 0:
                await asyncio.sleep(max(0.0, self._start + self.latency - time.monotonic()))
            return
        if self.realtime:
            due = self._start + self.latency + self._audio_seconds
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    def sent(self, seconds: float) -> None:
        """Record that a chunk of ``seconds`` of audio has been sent."""
        self._audio_seconds += seconds
