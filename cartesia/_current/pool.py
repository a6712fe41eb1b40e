"""The async client's HTTP pool: httpx clients in shards of a bounded load, so that 1,000 streams scale.

httpcore's async pool re-scans its connections and waiting requests each time a request starts or
a response closes (``is_idle``/``has_expired`` per connection, a ``getpeername`` each): with N
streams at once that is O(N²) work, about half of the client's CPU at 300 concurrent streams, and
at 1,000 the streams fell far behind real time. Here each request goes to the least loaded of
several ``httpx.AsyncClient`` shards and a new shard opens only when every shard carries
``SHARD_LOAD`` requests, so each scan stays short. One request at a time always uses the first
shard (its kept-alive connection is reused as before). Each shard is a plain ``httpx.AsyncClient``
(its own transport, so proxies from the environment still apply).
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Callable, List, Tuple

import httpx

from .._client.transport.http_sync import install_cookie_filter

__all__ = ["ShardedAsyncClient", "SHARD_LOAD", "hold_until_closed"]

#: In-flight requests per shard before another shard opens.
SHARD_LOAD = 16


class _Released(httpx.AsyncByteStream):
    """A response body that gives its shard's slot back when it is closed."""

    def __init__(self, inner: Any, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._inner:
            yield part

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._release()


def hold_until_closed(response: httpx.Response, release: Callable[[], None]) -> None:
    """Keep a streamed response's slot (from :meth:`ShardedAsyncClient.pick`) until it is closed."""
    response.stream = _Released(response.stream, release)


class ShardedAsyncClient:
    """``httpx.AsyncClient`` shards, each with ``limits`` (the whole pool has no other cap)."""

    def __init__(self, timeout: httpx.Timeout, limits: httpx.Limits) -> None:
        self._timeout = timeout
        self._limits = limits
        self._shards: List[httpx.AsyncClient] = []
        self._loads: List[int] = []
        self._ssl: Any = None  # one TLS context for every shard (loading the CAs takes ~0.1 s)
        self.is_closed = False

    @property
    def shards(self) -> int:
        """Shards opened so far."""
        return len(self._shards)

    def first(self) -> httpx.AsyncClient:
        """A shard for work without I/O (building a request: every shard builds it alike)."""
        return self._shards[0] if self._shards else self._open()

    def _open(self) -> httpx.AsyncClient:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        shard = httpx.AsyncClient(timeout=self._timeout, limits=self._limits, verify=self._ssl)
        install_cookie_filter(shard)  # no cookie-jar work on responses that set no cookie
        self._shards.append(shard)
        self._loads.append(0)
        return self._shards[-1]

    def pick(self) -> Tuple[httpx.AsyncClient, Callable[[], None]]:
        """The shard for the next request, and the call that gives its slot back (once).

        The least loaded shard, a new one when all carry ``SHARD_LOAD`` requests.
        """
        best = min(range(len(self._loads)), key=self._loads.__getitem__, default=None)
        if best is None or self._loads[best] >= SHARD_LOAD:
            self._open()
            best = len(self._shards) - 1
        self._loads[best] += 1
        shards, index, done = self._shards, best, [False]

        def release() -> None:
            # Once only, and never into a pool that was closed (and emptied) meanwhile.
            if not done[0] and shards is self._shards:
                done[0] = True
                self._loads[index] -= 1

        return self._shards[best], release

    async def aclose(self) -> None:
        self.is_closed = True
        shards, self._shards, self._loads = self._shards, [], []
        for shard in shards:
            await shard.aclose()
