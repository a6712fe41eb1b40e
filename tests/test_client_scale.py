"""Many callers on one client: 200 threads on one sync client, 2,000 async generations.

Regressions: 50 threads on one ``CartesiaTTS`` over the websocket made 49 fail, opened 49
sockets and left descriptors and threads behind after ``close()`` (200 let a raw
``ConcurrencyError`` escape); 2,000 concurrent async generations hit the server's context limit
of 1,024 per socket and 46 failed.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, List

from test_client_support import (  # noqa: F401  (fixtures)
    async_client,
    expected_audio,
    sync_client,
    voice,
)


def _fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


def _settle(measure: Any, target: int, wait: float = 5.0) -> int:
    end = time.monotonic() + wait
    while measure() > target and time.monotonic() < end:
        time.sleep(0.05)
    return measure()


def _client_threads(before: set) -> int:
    # The local server runs in this process; its executor threads ("asyncio_N") are not ours.
    return sum(
        1 for t in threading.enumerate() if t not in before and not t.name.startswith("asyncio_")
    )


def test_200_threads_share_one_sync_client(local_server: Any, voice: list) -> None:
    texts = [f"Thread number {i % 20}" for i in range(200)]
    fds, threads = _fds(), set(threading.enumerate())
    before = dict(local_server.stats)
    client = sync_client(local_server)
    barrier = threading.Barrier(200, timeout=30)

    def one(i: int) -> bytes:
        barrier.wait()  # all at once
        if i % 2:
            return b"".join(
                c["audio"] for c in client.generate(transcript=texts[i], voice=voice, stream=True)
            )
        return client.generate(transcript=texts[i], voice=voice)["audio"]

    try:
        with ThreadPoolExecutor(200) as pool:
            results: List[bytes] = list(pool.map(one, range(200), timeout=120))
        for i, audio in enumerate(results):
            assert audio == expected_audio(texts[i], voice), i
        opened = local_server.stats["ws_connections"] - before.get("ws_connections", 0)
        assert 1 <= opened <= 2  # multiplexed, not one socket per thread
    finally:
        client.close()
    assert _settle(lambda: _client_threads(threads), 0) == 0
    assert _settle(_fds, fds) <= fds + 2  # the server's side of closing sockets may lag a moment


async def test_2000_concurrent_async_generations_never_hit_the_context_limit(
    local_server: Any, voice: list
) -> None:
    texts = [f"Generation {i % 10}" for i in range(2000)]
    async with async_client(local_server, total_timeout=120.0, first_audio_timeout=60.0) as client:
        results = await asyncio.gather(
            *(client.generate(transcript=t, voice=voice) for t in texts), return_exceptions=True
        )
        pool = client._runtime().current_pool
        assert pool is not None and 2 <= pool.connections_opened <= 8
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, failures[:3]
    for text, out in zip(texts, results):
        assert out["audio"] == expected_audio(text, voice)
