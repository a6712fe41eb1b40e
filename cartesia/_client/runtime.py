"""The async client's resources of one event loop: its HTTP session and its websocket pool."""

from __future__ import annotations

import asyncio
from typing import Callable, Optional, Set

import aiohttp

from .transport.ws_async import AsyncWsPool

__all__ = ["LoopRuntime"]

# Runtimes whose keeper still runs. The loop only holds its tasks weakly: without this, a
# runtime whose client was dropped would be garbage-collected with its keeper still pending,
# and never close its session and sockets.
_RUNNING: Set["LoopRuntime"] = set()


class LoopRuntime:
    """Everything of the async client that belongs to one event loop.

    A keeper task owns the resources: ``close()`` stops it, and when the loop shuts down
    (``asyncio.run`` returning cancels every task) the keeper's ``finally`` still closes the
    websockets and the HTTP session inside that loop. So a client can be used from several
    ``asyncio.run`` calls without "Unclosed client session" warnings, even if nobody closes it.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        make_session: Callable[[], aiohttp.ClientSession],
        make_pool: Callable[["LoopRuntime"], AsyncWsPool],
    ) -> None:
        self.loop = loop
        self._make_session = make_session
        self._make_pool = make_pool
        self._session: Optional[aiohttp.ClientSession] = None
        self._pool: Optional[AsyncWsPool] = None
        self._stop = asyncio.Event()
        self._keeper = loop.create_task(self._keep())
        _RUNNING.add(self)

    @property
    def closed(self) -> bool:
        return self._keeper.done() or self.loop.is_closed()

    async def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = self._make_session()
        return self._session

    def pool(self) -> AsyncWsPool:
        if self._pool is None:
            self._pool = self._make_pool(self)
        return self._pool

    @property
    def current_pool(self) -> Optional[AsyncWsPool]:
        return self._pool

    async def _keep(self) -> None:
        try:
            await self._stop.wait()
        finally:
            try:
                await self._release()
            finally:
                _RUNNING.discard(self)

    async def _release(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def close(self) -> None:
        """Close the websockets and the session; safe to call more than once."""
        self._stop.set()
        if not self._keeper.done():
            await asyncio.shield(self._keeper)

    def close_soon(self) -> None:
        """Ask the owning loop to release everything (from any thread, e.g. ``__del__``)."""
        if not self.loop.is_closed() and not self._keeper.done():
            try:
                self.loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # the loop closed in between
                pass
