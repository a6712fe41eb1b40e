"""Injected faults of one incremental generation: which fire before which audio frame.

The generation's length is not known up front (it is rendered as it is sent), so a fault whose
``after_frames`` lies past the end fires just before the final frame (``done``), as on v0.
"""

from __future__ import annotations

import asyncio
import collections
from typing import List, Optional

from aiohttp import web

from ..faults import Fault

__all__ = ["FaultPlan", "HttpWriter"]


class FaultPlan:
    """The generation faults taken for one request or context.

    Args:
        faults: Faults taken for it (``stall``, ``drop``, ``malformed``, ``ws_close``, ...).
        stats: The server counters (``faults_fired`` is incremented).
    """

    def __init__(self, faults: List[Fault], stats: collections.Counter[str]) -> None:
        self.faults = [f for f in faults if f.kind in ("stall", "drop", "malformed", "ws_close")]
        self.split = next((f for f in faults if f.kind == "split"), None)
        self.coalesce = next((f for f in faults if f.kind == "coalesce"), None)
        self.idle_close = next((f for f in faults if f.kind == "ws_idle_close"), None)
        self.stats = stats
        self.frames = 0

    async def before_frame(self, final: bool = False) -> Optional[Fault]:
        """Run stalls due now; return a terminal fault (drop, malformed, ws_close) due now.

        Args:
            final: This is the closing frame: every fault not fired yet is due.
        """
        due = [f for f in self.faults if final or f.after_frames == self.frames]
        for fault in due:
            self.faults.remove(fault)
            self.stats["faults_fired"] += 1
            if fault.kind == "stall":
                await asyncio.sleep(fault.seconds)
        return next((f for f in due if f.kind != "stall"), None)

    def sent_frame(self) -> None:
        """Count one audio frame as sent."""
        self.frames += 1


class HttpWriter:
    """Writes an HTTP body frame by frame, split into ``piece``-byte writes or coalesced as the
    ``split`` / ``coalesce`` faults ask."""

    def __init__(self, resp: web.StreamResponse, plan: FaultPlan) -> None:
        self.resp = resp
        self.split = plan.split
        self.group = (plan.coalesce.frames or 1 << 30) if plan.coalesce else 1
        self._buffer: List[bytes] = []

    async def write(self, data: bytes) -> None:
        """Queue one frame; written once ``group`` frames are queued."""
        self._buffer.append(data)
        if len(self._buffer) >= self.group:
            await self.flush()

    async def flush(self) -> None:
        """Write everything queued."""
        if not self._buffer:
            return
        data = b"".join(self._buffer)
        self._buffer.clear()
        if self.split is None:
            await self.resp.write(data)
            return
        step = self.split.piece
        for pos in range(0, len(data), step):
            await self.resp.write(data[pos : pos + step])
