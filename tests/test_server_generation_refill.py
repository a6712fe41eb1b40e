"""The server's generation look-ahead: a sender that never yields still gets every chunk."""

from __future__ import annotations

import asyncio
import threading

from cartesia.server.engines.tone import ToneEngine
from cartesia.server.generation import Renderer, parse_generation

BOUND = 60.0


async def drain_between_refills(renderer: Renderer, text: str) -> int:
    """Take every chunk the way a sender on a fast socket does: between refills it yields one
    loop turn at a time, then takes everything rendered without yielding at all."""
    generation = await renderer.open(parse_generation({"transcript": text, "voice": "Milo"}))
    samples = 0
    try:
        while True:
            refill = generation._refill
            while refill is not None and not refill.done():
                await asyncio.sleep(0)
            chunk = await generation.next()
            if chunk is None:
                return samples
            samples += chunk[1]
    finally:
        generation.close()


def test_a_refill_that_finished_before_its_callback_ran_does_not_spin():
    # Regression: the finished refill stayed set until its done-callback ran, and the sender,
    # woken first in that loop turn, re-awaited the finished task forever (100% CPU, every
    # other connection of the server stalled).
    renderer = Renderer(ToneEngine(), cache_bytes=0, lookahead_bytes=16 * 1024)
    text = "A long sentence that takes many look-ahead batches to render. " * 8
    expected = renderer.render_sync(parse_generation({"transcript": text, "voice": "Milo"}))
    result: list = []
    worker = threading.Thread(
        target=lambda: result.append(asyncio.run(drain_between_refills(renderer, text))),
        daemon=True,
    )
    worker.start()
    worker.join(BOUND)
    assert not worker.is_alive(), "the generation spun instead of rendering the next batch"
    assert result == [len(expected.samples)]
