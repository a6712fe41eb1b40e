"""The proxy the environment names for each origin, looked up once per aiohttp session.

aiohttp with ``trust_env=True`` reads the proxy variables and netrc in executor threads before
every request (0.3-1 ms before the request leaves). The session is opened with
``trust_env=False`` instead and each request passes the proxy aiohttp itself would have chosen
(:func:`aiohttp.helpers.get_env_proxy_for_url`: ``*_PROXY`` by the URL's scheme, ``NO_PROXY``,
the proxy's credentials from its URL or netrc), found once per origin in a thread.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from typing import Dict, Optional, Tuple

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

__all__ = ["EnvProxies", "env_proxy"]

_Origin = Tuple[str, Optional[str], Optional[int]]

# The resolver of each session that has one (sessions opened by the v0 async client).
_OF_SESSION: weakref.WeakKeyDictionary[aiohttp.ClientSession, EnvProxies] = weakref.WeakKeyDictionary()


def _lookup(url: URL) -> Optional[URL]:
    try:
        proxy, auth = get_env_proxy_for_url(url)
    except LookupError:  # no proxy for this scheme, or NO_PROXY exempts the host
        return None
    if auth is not None:
        # In the URL, not as ``proxy_auth`` (deprecated in aiohttp 3.14): aiohttp sends the
        # credentials of a proxy URL as Proxy-Authorization, in the request or its CONNECT.
        proxy = proxy.with_user(auth.login).with_password(auth.password)
    return proxy


class EnvProxies:
    """The environment's proxy per origin (scheme, host, port), each looked up once."""

    def __init__(self) -> None:
        self._by_url: Dict[str, Optional[URL]] = {}  # no URL parsed per request
        self._by_origin: Dict[_Origin, Optional[URL]] = {}
        self._pending: Dict[_Origin, asyncio.Future[Optional[URL]]] = {}

    def attach(self, session: aiohttp.ClientSession) -> aiohttp.ClientSession:
        """Make this the resolver :func:`env_proxy` uses for ``session``; returns the session."""
        _OF_SESSION[session] = self
        return session

    async def proxy(self, url: str) -> Optional[URL]:
        """The proxy for ``url`` (None: go direct)."""
        try:
            return self._by_url[url]
        except KeyError:
            pass
        target = URL(url)
        origin = (target.scheme, target.host, target.port)
        if origin in self._by_origin:
            found = self._by_origin[origin]
        else:
            pending = self._pending.get(origin)
            if pending is None:
                # One lookup however many requests start at once, off the loop's thread (netrc
                # is a file read, and proxy_bypass asks the system on some platforms).
                pending = asyncio.get_running_loop().run_in_executor(None, _lookup, target)
                self._pending[origin] = pending
                pending.add_done_callback(functools.partial(self._looked_up, origin))
            # Shielded: a request cancelled meanwhile does not cancel the others' lookup.
            found = await asyncio.shield(pending)
        self._by_url[url] = found
        return found

    def _looked_up(self, origin: _Origin, done: asyncio.Future[Optional[URL]]) -> None:
        del self._pending[origin]
        if not done.cancelled() and done.exception() is None:
            self._by_origin[origin] = done.result()


async def env_proxy(session: aiohttp.ClientSession, url: str) -> Optional[URL]:
    """The proxy of ``url`` for a request on ``session`` (None: go direct, or a session that has
    no resolver); the environment is read on the session's first request to that origin."""
    proxies = _OF_SESSION.get(session)
    return None if proxies is None else await proxies.proxy(url)
