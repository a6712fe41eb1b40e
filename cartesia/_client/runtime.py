"""The async client's resources per event loop: its HTTP session and its websocket pool."""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Callable, Dict, Generic, Optional, Protocol, Set, TypeVar

import aiohttp

from .config import ClientConfig
from .transport.env_proxy import EnvProxies
from .transport.ws_async import AsyncWsPool, handshake_trace

__all__ = ["ClosedWhenDropped", "LoopRuntime", "LoopRuntimes", "LoopResource"]


class LoopResource(Protocol):
    """What a runtime keeps per loop: an ``aiohttp.ClientSession``, or anything closed alike."""

    @property
    def closed(self) -> bool: ...

    async def close(self) -> None: ...


S = TypeVar("S", bound=LoopResource)

# Runtimes whose keeper still runs. The loop only holds its tasks weakly: without this, a
# runtime whose client was dropped would be garbage-collected with its keeper still pending,
# and never close its session and sockets.
_RUNNING: Set[LoopRuntime[Any]] = set()


class LoopRuntime(Generic[S]):
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
        make_session: Callable[[], S],
        make_pool: Optional[Callable[[LoopRuntime[S]], AsyncWsPool]] = None,
    ) -> None:
        self.loop = loop
        self._make_session = make_session
        self._make_pool = make_pool
        self._session: Optional[S] = None
        self._pool: Optional[AsyncWsPool] = None
        self._stop = asyncio.Event()
        self._keeper = loop.create_task(self._keep())
        _RUNNING.add(self)

    @property
    def closed(self) -> bool:
        return self._keeper.done() or self.loop.is_closed()

    async def session(self) -> S:
        if self._session is None or self._session.closed:
            self._session = self._make_session()
        return self._session

    def pool(self) -> AsyncWsPool:
        if self._pool is None:
            if self._make_pool is None:
                raise RuntimeError("this runtime has no websocket pool")
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


def _new_session(config: ClientConfig) -> aiohttp.ClientSession:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=config.timeouts.connect)
    # No cap unless one is asked for (limit=0): each streamed generation holds its connection
    # for its whole length, so aiohttp's default of 100 would queue the 101st generation.
    connector = aiohttp.TCPConnector(limit=config.max_connections or 0)
    # The proxy variables (HTTPS_PROXY, NO_PROXY, ...) apply as they do for httpx and
    # websockets, looked up once per origin (EnvProxies) instead of by aiohttp's trust_env in
    # threads before every request; trust_env would also add netrc logins to our requests.
    session = aiohttp.ClientSession(
        timeout=timeout, connector=connector, trust_env=False, trace_configs=[handshake_trace()]
    )
    return EnvProxies().attach(session)


def _new_pool(config: ClientConfig, url: str, runtime: LoopRuntime[aiohttp.ClientSession]) -> AsyncWsPool:
    return AsyncWsPool(
        url,
        config.api_key,
        runtime.session,
        queue_size=config.max_queued_chunks,
        per_socket=config.contexts_per_socket,
        max_sockets=config.max_sockets,
        dialect=config.dialect,
    )


class LoopRuntimes(Generic[S]):
    """The runtimes of one async client, one per event loop it is used from.

    The factories hold the configuration, not the client: a dropped client can be collected
    while its loop still runs (its ``__del__`` then closes the runtimes).

    Args:
        make_session: Opens the HTTP session of a loop (or another :class:`LoopResource`).
        make_pool: Opens the websocket pool of a loop (None: the runtimes have none).
    """

    def __init__(
        self,
        make_session: Callable[[], S],
        make_pool: Optional[Callable[[LoopRuntime[S]], AsyncWsPool]] = None,
    ) -> None:
        self._make_session = make_session
        self._make_pool = make_pool
        self._by_loop: Dict[int, LoopRuntime[S]] = {}

    @classmethod
    def of_client(cls, config: ClientConfig, ws_url: str) -> LoopRuntimes[aiohttp.ClientSession]:
        """The v0 async client's runtimes: its session and its websocket pool per loop."""
        return LoopRuntimes(functools.partial(_new_session, config), functools.partial(_new_pool, config, ws_url))

    def get(self) -> LoopRuntime[S]:
        """The runtime of the running loop (created on first use)."""
        loop = asyncio.get_running_loop()
        for key in [k for k, rt in self._by_loop.items() if rt.closed]:
            del self._by_loop[key]
        runtime = self._by_loop.get(id(loop))
        if runtime is None or runtime.loop is not loop:
            runtime = LoopRuntime(loop, make_session=self._make_session, make_pool=self._make_pool)
            self._by_loop[id(loop)] = runtime
        return runtime

    def current_pool(self) -> Optional[AsyncWsPool]:
        """The websocket pool of the running loop, if it has one (never creates anything)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        runtime = self._by_loop.get(id(loop))
        return runtime.current_pool if runtime is not None and runtime.loop is loop else None

    async def close(self) -> None:
        """Close the running loop's runtime now and ask the other loops to close theirs."""
        try:
            current: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        runtimes, self._by_loop = self._by_loop, {}
        for runtime in runtimes.values():
            if runtime.loop is current:
                await runtime.close()
            else:
                runtime.close_soon()

    def close_soon(self) -> None:
        for runtime in list(self._by_loop.values()):
            runtime.close_soon()


class ClosedWhenDropped:
    """Mixin for an object that keeps its per-loop resources in ``self._loops``
    (:class:`LoopRuntimes`): when it is collected, each loop is asked to close its own."""

    def __del__(self) -> None:
        loops = self.__dict__.get("_loops")
        if loops is not None:
            try:
                loops.close_soon()  # never blocks: each loop closes what it holds
            except Exception:  # noqa: BLE001 - never raise from __del__
                pass
