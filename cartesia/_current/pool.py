"""The async client's HTTP pool: httpx clients in shards of a bounded load, so that 1,000 streams scale.

httpcore's async pool re-scans every connection it holds each time a request starts or a response
closes (``is_idle``/``has_expired`` per connection, a ``getpeername`` each): with N streams at once
that is O(N²) work. At 1,000 concurrent streams it took more CPU than the streams themselves and
fell behind real time. Here each request goes to the least loaded of several ``httpx.AsyncClient``
shards, and a new shard opens only when every shard carries ``SHARD_LOAD`` requests, so each scan
covers at most about that many connections. One request at a time always uses the first shard (its
kept-alive connection is reused as before).
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Callable, List

import httpx

__all__ = ["ShardedAsyncClient", "SHARD_LOAD"]

#: In-flight requests per shard before another shard opens.
SHARD_LOAD = 16


class _Released(httpx.AsyncByteStream):
    """A response body that gives its shard's slot back once, when it is closed."""

    def __init__(self, inner: Any, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._inner:
            yield part

    async def aclose(self) -> None:
        release, self._release = self._release, _noop
        try:
            await self._inner.aclose()
        finally:
            release()


def _noop() -> None:
    pass


class _Counted(httpx.AsyncBaseTransport):
    """httpx's own transport, counting the requests whose responses are still open."""

    def __init__(self, limits: httpx.Limits, verify: Any) -> None:
        self.inner = httpx.AsyncHTTPTransport(limits=limits, verify=verify)
        self.active = 0

    def _release(self) -> None:
        self.active -= 1

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.active += 1
        try:
            response = await self.inner.handle_async_request(request)
        except BaseException:
            self.active -= 1
            raise
        response.stream = _Released(response.stream, self._release)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class ShardedAsyncClient:
    """``httpx.AsyncClient`` shards with no cap on connections (``limits`` per shard)."""

    def __init__(self, timeout: httpx.Timeout, limits: httpx.Limits) -> None:
        self._timeout = timeout
        self._limits = limits
        self._shards: List[httpx.AsyncClient] = []
        self._loads: List[_Counted] = []
        self._ssl: Any = None  # one TLS context for every shard (loading the CAs takes ~0.1 s)
        self.is_closed = False

    @property
    def shards(self) -> int:
        """Shards opened so far."""
        return len(self._shards)

    def pick(self) -> httpx.AsyncClient:
        """The shard for the next request: the least loaded, a new one when all are full."""
        best = min(range(len(self._loads)), key=lambda i: self._loads[i].active, default=None)
        if best is None or self._loads[best].active >= SHARD_LOAD:
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            transport = _Counted(self._limits, self._ssl)
            self._loads.append(transport)
            self._shards.append(httpx.AsyncClient(timeout=self._timeout, transport=transport))
            best = len(self._shards) - 1
        return self._shards[best]

    async def aclose(self) -> None:
        self.is_closed = True
        shards, self._shards, self._loads = self._shards, [], []
        for shard in shards:
            await shard.aclose()
