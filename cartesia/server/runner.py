"""Serve the app on bound sockets, every connection under the read timeouts (CLI and embed)."""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import List, Optional

from aiohttp import web

from .config import ServerConfig
from .connection import GuardedConnection
from .state import STATE_KEY

__all__ = ["AppServer"]


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
        extra = {}
        if self.ssl_context is not None:
            # The TLS handshake comes before any header: it gets the same limit.
            extra = {"ssl": self.ssl_context, "ssl_handshake_timeout": config.header_timeout}
        for sock in sockets:
            self._servers.append(
                await loop.create_server(connection, sock=sock, backlog=1024, **extra)
            )

    async def stop(self) -> None:
        """Stop accepting, end every connection and wait for renders still running."""
        for server in self._servers:
            server.close()
        await self._runner.cleanup()
        self._servers.clear()
        if STATE_KEY in self.app:
            await self.app[STATE_KEY].renderer.drain()
