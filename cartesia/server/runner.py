"""Serve the app on bound sockets, every connection under the read timeouts (CLI and embed)."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from typing import List, Optional, Tuple

from aiohttp import web

from .config import ServerConfig
from .connection import GuardedConnection
from .state import STATE_KEY

__all__ = ["AppServer", "bind_sockets"]


def _ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def _listen(family: int, addr: Tuple[str, int]) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
        sock.listen(1024)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_sockets(host: str, port: int) -> List[socket.socket]:
    """Listening sockets for ``host:port``.

    For ``localhost`` both loopback addresses are bound on the same port (127.0.0.1 first, then
    ::1 when the machine has IPv6), so clients that resolve the name either way connect.
    With ``port == 0`` a free port is picked (retrying if ::1 happens to have it taken).
    """
    if host != "localhost":
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return [_listen(family, (host.strip("[]"), port))]
    want_v6 = _ipv6_loopback_available()
    for _ in range(20):
        v4 = _listen(socket.AF_INET, ("127.0.0.1", port))
        if not want_v6:
            return [v4]
        chosen = v4.getsockname()[1]
        try:
            return [v4, _listen(socket.AF_INET6, ("::1", chosen))]
        except OSError as exc:
            v4.close()
            if port != 0 or exc.errno != errno.EADDRINUSE:
                raise
    raise OSError(errno.EADDRINUSE, "no port free on both 127.0.0.1 and ::1")

class AppServer:
    """An aiohttp application served on already bound sockets.

    Every connection is wrapped in a :class:`~cartesia.server.connection.GuardedConnection`
    (header and body timeouts of ``config``); idle keep-alive connections are closed after
    ``config.idle_timeout`` by aiohttp.

    Args:
        app: The application (from :func:`~cartesia.server.app.create_app`).
        config: Its settings (the timeouts).
        shutdown_timeout: Seconds :meth:`stop` lets running handlers finish.
        ssl_context: Serve TLS on the same sockets when given.
    """

    def __init__(
        self,
        app: web.Application,
        config: ServerConfig,
        *,
        shutdown_timeout: float = 2.0,
        ssl_context: Optional[ssl.SSLContext] = None,
    ) -> None:
        self.app = app
        self.config = config
        self.ssl_context = ssl_context
        self._runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=shutdown_timeout,
            keepalive_timeout=config.idle_timeout,
        )
        self._servers: List[asyncio.AbstractServer] = []

    async def start(self, sockets: List[socket.socket]) -> None:
        """Serve on ``sockets`` (listening, non-blocking); :meth:`stop` closes them."""
        await self._runner.setup()
        server = self._runner.server
        assert server is not None
        config = self.config

        def connection() -> GuardedConnection:
            return GuardedConnection(server(), config.header_timeout, config.body_timeout)

        loop = asyncio.get_running_loop()
        tls = self.ssl_context
        # The TLS handshake comes before any header: it gets the same limit.
        handshake_timeout = config.header_timeout if tls is not None else None
        for sock in sockets:
            self._servers.append(
                await loop.create_server(
                    connection,
                    sock=sock,
                    backlog=1024,
                    ssl=tls,
                    ssl_handshake_timeout=handshake_timeout,
                )
            )

    async def listen(self, host: str, port: int) -> int:
        """Bind ``host:port`` (see :func:`bind_sockets`), serve there and return the bound port."""
        sockets = bind_sockets(host, port)
        try:
            await self.start(sockets)
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
        return int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop accepting, end every connection and wait for renders still running."""
        for server in self._servers:
            server.close()
        await self._runner.cleanup()
        self._servers.clear()
        if STATE_KEY in self.app:
            await self.app[STATE_KEY].renderer.drain()
