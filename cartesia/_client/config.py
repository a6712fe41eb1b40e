"""One client configuration: options, environment, time limits and the URL rules."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from typing import Optional, Tuple
from urllib.parse import urlsplit

from ..errors import ConfigurationError
from ..protocol import Dialect, v0
from .generation import Timeouts
from .redact import redact
from .retry import RetryPolicy

__all__ = ["ClientConfig", "Endpoints", "is_loopback", "DEFAULT_BASE_URL", "DEFAULT_API_VERSION"]

DEFAULT_BASE_URL = "api.cartesia.ai"
DEFAULT_API_VERSION = "v0"
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)$")


def is_loopback(host: str) -> bool:
    """``localhost``, ``127.0.0.0/8`` and ``::1``: the only hosts that get plain http/ws."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _split(base_url: str) -> Tuple[Optional[str], str, str]:
    """``(scheme or None, netloc, path)``; a malformed URL is a ConfigurationError."""
    match = _SCHEME.match(base_url.strip())
    scheme, rest = (match.group(1).lower(), match.group(2)) if match else (None, base_url.strip())
    parts = urlsplit(f"//{rest}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        parts = None  # type: ignore[assignment]
    if parts is None or not parts.hostname or parts.query or parts.fragment or "@" in parts.netloc:
        raise ConfigurationError(
            f"Malformed base URL {redact(base_url)!r} (CARTESIA_BASE_URL or base_url): expected "
            "host[:port] or http(s)://host[:port]"
        )
    return scheme, parts.netloc, parts.path.rstrip("/")


class Endpoints:
    """The HTTP and websocket roots of one API host and version.

    A bare host (the 0.0.5 form, e.g. ``api.cartesia.ai``) gets ``https``/``wss`` unless the
    parsed host is a loopback one (``localhost``, ``127.0.0.0/8``, ``::1``), which gets plain
    ``http``/``ws``. An explicit scheme (``http://``, ``https://``, ``ws://``, ``wss://``) wins.
    """

    def __init__(self, base_url: str, api_version: str) -> None:
        scheme, netloc, path = _split(base_url)
        if scheme is None:
            host = urlsplit(f"//{netloc}").hostname or ""
            secure = not is_loopback(host)
        elif scheme in ("http", "ws"):
            secure = False
        elif scheme in ("https", "wss"):
            secure = True
        else:
            raise ConfigurationError(f"Unsupported URL scheme in base URL: {scheme!r}")
        http_scheme, ws_scheme = ("https", "wss") if secure else ("http", "ws")
        suffix = f"{path}/{api_version}" if api_version else path
        self.http = f"{http_scheme}://{netloc}{suffix}"
        self.ws = f"{ws_scheme}://{netloc}{suffix}"

    def __repr__(self) -> str:
        return f"Endpoints(http={self.http!r}, ws={self.ws!r})"


@dataclass(frozen=True)
class ClientConfig:
    """Everything a client needs to know, resolved once from its arguments and the environment.

    Attributes:
        api_key: The key (``CARTESIA_API_KEY``), or None.
        base_url: As given or from ``CARTESIA_BASE_URL``.
        api_version: Path version (``CARTESIA_API_VERSION``).
        endpoints: The URL roots (checked: a malformed base URL fails here, before any I/O).
        experimental: Use the interrupt-aware websocket.
        timeouts: Per-phase time limits.
        retry: Retry rules.
        max_connections: HTTP connections open at once (``None``: no limit).
        max_queued_chunks: Frames buffered per websocket context before the reader waits.
        contexts_per_socket: Generations one websocket carries at once before another opens.
        max_sockets: Websockets one client (per event loop) opens at the most.
        dialect: The wire format (the ``v0`` module today).
    """

    api_key: Optional[str]
    base_url: str
    api_version: str
    endpoints: Endpoints
    experimental: bool
    timeouts: Timeouts
    retry: RetryPolicy
    max_connections: Optional[int]
    max_queued_chunks: int
    contexts_per_socket: int
    max_sockets: int
    dialect: Dialect

    @classmethod
    def resolve(
        cls,
        *,
        api_key: Optional[str],
        base_url: Optional[str],
        api_version: Optional[str],
        experimental: bool,
        timeouts: Timeouts,
        max_retries: int,
        backoff_factor: float,
        max_connections: Optional[int],
        max_queued_chunks: int,
        contexts_per_socket: int = 512,
        max_sockets: int = 8,
        dialect: Dialect = v0,
    ) -> ClientConfig:
        if max_retries < 1:
            raise ValueError("`max_retries` counts attempts and must be at least 1")
        if max_queued_chunks < 1:
            raise ValueError("`max_queued_chunks` must be at least 1")
        if max_connections is not None and max_connections < 1:
            raise ValueError("`max_connections` must be at least 1")
        base = base_url or os.environ.get("CARTESIA_BASE_URL", DEFAULT_BASE_URL)
        version = api_version or os.environ.get("CARTESIA_API_VERSION", DEFAULT_API_VERSION)
        return cls(
            api_key=api_key or os.environ.get("CARTESIA_API_KEY"),
            base_url=base,
            api_version=version,
            endpoints=Endpoints(base, version),
            experimental=experimental,
            timeouts=timeouts,
            retry=RetryPolicy(max_retries=max_retries, backoff_factor=backoff_factor),
            max_connections=max_connections,
            max_queued_chunks=max_queued_chunks,
            contexts_per_socket=contexts_per_socket,
            max_sockets=max_sockets,
            dialect=dialect,
        )

    def __repr__(self) -> str:
        return (
            f"ClientConfig(base_url={self.base_url!r}, api_version={self.api_version!r}, "
            f"api_key={'***' if self.api_key else None})"
        )
