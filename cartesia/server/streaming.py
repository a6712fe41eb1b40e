"""Writes one generation to an HTTP stream, applying pacing and injected faults."""

from __future__ import annotations

import asyncio
import collections
from typing import List

from aiohttp import web

from .faults import Fault
from .generation import Generation
from .pacing import Pacer

__all__ = ["MALFORMED_HTTP_FRAME", "due", "write_http_generation"]

#: What the ``malformed`` fault sends: looks like a frame, is not JSON (``nope`` is no literal).
MALFORMED_HTTP_FRAME = b'{"data":"AAAA","sampling_rate":44100,"done":nope,"step_time":0,"length":1}'


def due(faults: List[Fault], kind: str, index: int, at_end: bool) -> List[Fault]:
    """Faults of ``kind`` that fire before audio frame ``index``.

    A fault fires before frame ``min(after_frames, frames)``: at the end of the audio
    (``at_end``, ``index`` = the number of frames) the ones whose ``after_frames`` lies past
    the end fire too.
    """
    return [
        f
        for f in faults
        if f.kind == kind and (f.after_frames == index or (at_end and f.after_frames > index))
    ]


async def write_http_generation(
    request: web.Request,
    resp: web.StreamResponse,
    generation: Generation,
    faults: List[Fault],
    pacer: Pacer,
    stats: collections.Counter[str],
) -> bool:
    """Write every frame of ``generation`` (then the final object) to ``resp``, as rendered.

    Each write waits for the socket to drain when its buffer is full, so a client that does not
    read holds the generation (and its bounded look-ahead) instead of filling server memory.

    Returns:
        ``True`` when the stream ended normally, ``False`` when a fault cut it short (the
        caller must then not finish the response normally after a drop).
    """
    split = next((f for f in faults if f.kind == "split"), None)
    coalesce = next((f for f in faults if f.kind == "coalesce"), None)
    # coalesce with frames=0 means the whole body in one write (buffered to the end).
    group = (coalesce.frames or 1 << 62) if coalesce else 1
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

    index = 0
    chunk = await generation.next()
    while True:
        at_end = chunk is None
        for fault in due(faults, "stall", index, at_end):
            await flush()
            stats["faults_fired"] += 1
            await asyncio.sleep(fault.seconds)
        if due(faults, "malformed", index, at_end):
            stats["faults_fired"] += 1
            await emit(MALFORMED_HTTP_FRAME)
            await flush()
            return True
        if due(faults, "drop", index, at_end):
            await flush()
            stats["faults_fired"] += 1
            transport = request.transport
            if transport is not None:
                transport.abort()
            return False
        if chunk is None:
            break
        frame, samples = chunk
        if not buffer:
            await pacer.before_chunk(index)
        await emit(frame)
        stats["audio_frames_sent"] += 1
        pacer.sent(samples / generation.sampling_rate)
        index += 1
        chunk = await generation.next()
    await emit(generation.end_frame)
    await flush()
    return True
