"""Writes one generation to an HTTP stream, applying pacing and injected faults."""

from __future__ import annotations

import asyncio
from typing import List

from aiohttp import web

from .faults import Fault
from .generation import Rendition
from .pacing import Pacer

__all__ = ["MALFORMED_HTTP_FRAME", "write_http_generation"]

#: What the ``malformed`` fault sends: looks like a frame, is not JSON (``nope`` is no literal).
MALFORMED_HTTP_FRAME = b'{"data":"AAAA","sampling_rate":44100,"done":nope,"step_time":0,"length":1}'


def fire_at(faults: List[Fault], kind: str, index: int, last: int) -> List[Fault]:
    """Faults of ``kind`` due before frame ``index`` (``after_frames`` past the end: ``last``)."""
    return [f for f in faults if f.kind == kind and min(f.after_frames, last) == index]


async def write_http_generation(
    request: web.Request,
    resp: web.StreamResponse,
    rendition: Rendition,
    faults: List[Fault],
    pacer: Pacer,
    stats: "object",
) -> bool:
    """Write every frame of ``rendition`` (then the final object) to ``resp``.

    Returns:
        ``True`` when the stream ended normally, ``False`` when a fault cut it short (the
        caller must then not finish the response normally after a drop).
    """
    frames = rendition.http_frames
    n_audio = len(frames) - 1
    split = next((f for f in faults if f.kind == "split"), None)
    coalesce = next((f for f in faults if f.kind == "coalesce"), None)
    group = (coalesce.frames or len(frames)) if coalesce else 1
    buffer: List[bytes] = []

    async def flush() -> None:
        if not buffer:
            return
        data = b"".join(buffer)
        buffer.clear()
        if split is not None:
            step = split.piece
            for pos in range(0, len(data), step):
                await resp.write(data[pos : pos + step])
        else:
            await resp.write(data)

    async def emit(frame: bytes) -> None:
        buffer.append(frame)
        if len(buffer) >= group:
            await flush()

    for index in range(n_audio + 1):
        for fault in fire_at(faults, "stall", index, n_audio):
            await flush()
            stats["faults_fired"] += 1  # type: ignore[index]
            await asyncio.sleep(fault.seconds)
        if fire_at(faults, "malformed", index, n_audio):
            stats["faults_fired"] += 1  # type: ignore[index]
            await emit(MALFORMED_HTTP_FRAME)
            await flush()
            return True
        if fire_at(faults, "drop", index, n_audio):
            await flush()
            stats["faults_fired"] += 1  # type: ignore[index]
            transport = request.transport
            if transport is not None:
                transport.abort()
            return False
        if index == n_audio:
            break
        if not buffer:
            await pacer.before_chunk(index)
        await emit(frames[index])
        pacer.sent(rendition.chunk_seconds(index))
    await emit(frames[-1])
    await flush()
    return True
