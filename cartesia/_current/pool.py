"""The async client's httpx client: requests go through aiohttp, proxied ones through httpx's transport.

httpcore's async pool re-scanned every connection and waiting request each time a request
started or a response closed: O(N²) work with N streams at once (the reason this module used to
shard requests over many httpx clients). :class:`~.aiohttp_transport.AiohttpTransport` takes a
connection from aiohttp's pool in O(1), so one httpx client serves any number of streams.

httpx reads proxies from the environment only for a client without a transport of its own; the
client built here mounts, as httpx would, its default transport on each proxied pattern
(``NO_PROXY`` hosts stay direct), read once when the client is made. httpcore's pool belongs to
the event loop that opened its connections, so each proxied mount is one transport per loop,
closed inside its loop when that loop ends (as the aiohttp sessions are).
"""

from __future__ import annotations

import functools
from typing import Callable, Dict, Optional

import httpx

from .._client.runtime import ClosedWhenDropped, LoopRuntimes
from .._client.transport.http_sync import install_cookie_filter
from .aiohttp_transport import AiohttpTransport
from .config import ASYNC_CONNECTION_LIMITS

__all__ = ["PerLoopTransport", "async_client", "proxy_mounts"]

try:  # where httpx reads *_PROXY / NO_PROXY (0.25 to 0.28)
    from httpx._utils import get_environment_proxies as _environment_proxies
except ImportError:  # pragma: no cover - another httpx: the standard library's reading
    import urllib.request

    def _environment_proxies() -> Dict[str, Optional[str]]:
        found = urllib.request.getproxies()
        return {f"{scheme}://": found[scheme] for scheme in ("http", "https", "all") if scheme in found}


class _LoopTransport:
    """One loop's transport, closed as a :class:`~cartesia._client.runtime.LoopResource`."""

    def __init__(self, make: Callable[[], httpx.AsyncBaseTransport]) -> None:
        self.transport = make()
        self.closed = False

    async def close(self) -> None:
        self.closed = True
        await self.transport.aclose()


class PerLoopTransport(ClosedWhenDropped, httpx.AsyncBaseTransport):
    """The transport ``make`` builds, one per event loop that sends through it.

    Args:
        make: Builds a loop's transport (called inside that loop, on its first request).
    """

    def __init__(self, make: Callable[[], httpx.AsyncBaseTransport]) -> None:
        self._loops = LoopRuntimes(functools.partial(_LoopTransport, make))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        owned = await self._loops.get().session()
        return await owned.transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._loops.close()


def _proxied(verify: object, url: str) -> httpx.AsyncBaseTransport:
    return httpx.AsyncHTTPTransport(
        verify=verify,  # type: ignore[arg-type]
        limits=ASYNC_CONNECTION_LIMITS,
        proxy=httpx.Proxy(url),
    )


def proxy_mounts(verify: object) -> Dict[str, Optional[httpx.AsyncBaseTransport]]:
    """httpx's transport (through the proxy, one per event loop) for each pattern the
    environment proxies; None (the client's own transport) for the ones ``NO_PROXY`` exempts."""
    mounts: Dict[str, Optional[httpx.AsyncBaseTransport]] = {}
    for pattern, url in _environment_proxies().items():
        mounts[pattern] = None if url is None else PerLoopTransport(functools.partial(_proxied, verify, url))
    return mounts


def async_client(timeout: httpx.Timeout) -> httpx.AsyncClient:
    """One ``httpx.AsyncClient`` on :class:`AiohttpTransport`, TLS and proxies as httpx's default
    (verify on, certifi or ``SSL_CERT_FILE``/``SSL_CERT_DIR``, ``*_PROXY``/``NO_PROXY``)."""
    tls = httpx.create_ssl_context()  # loaded once (the CAs take ~0.1 s), shared by every mount
    client = httpx.AsyncClient(timeout=timeout, transport=AiohttpTransport(tls), mounts=proxy_mounts(tls))
    install_cookie_filter(client)  # no cookie-jar work on responses that set no cookie
    return client
