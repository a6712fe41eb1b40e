"""Resolves a current-API client's arguments and environment once (URLs, key, timeout, retries)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

import httpx

from .._client.redact import redact
from .._client.retry import RetryPolicy
from ..errors import ConfigurationError
from ..protocol import v1

__all__ = ["CurrentConfig", "DEFAULT_BASE_URL", "WEBSOCKET_ENV", "current_retry_policy", "custom_headers_from_env",
           "merge_headers", "to_httpx_timeout", "CUSTOM_HEADERS_ENV", "ASYNC_CONNECTION_LIMITS"]

DEFAULT_BASE_URL = "https://api.cartesia.ai"
#: Environment variable for the websocket root (4.2.0 has none; it forces ``wss``).
WEBSOCKET_ENV = "CARTESIA_WEBSOCKET_BASE_URL"
#: 4.2.0's defaults: 60 s, 5 s to connect.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
#: The async client's HTTP pool: no cap on connections open at once or kept idle (idle ones close
#: after httpx's 5 s keep-alive expiry). A streamed call holds its connection for its whole length,
#: so httpx's default of 100 queued the 101st concurrent generation, and its pool timeout failed it.
ASYNC_CONNECTION_LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=None)

TimeoutArg = Union[float, int, httpx.Timeout, None]


def current_retry_policy(max_retries: int) -> RetryPolicy:
    """4.2.0's retry rules for ``max_retries`` retries: 408, 409, 429, 5xx, connection errors and
    timeouts; 0.5 s doubling backoff up to 8 s, jittered down by at most 25 %."""
    return RetryPolicy(
        max_retries=max_retries + 1,
        backoff_factor=0.5,
        max_backoff=8.0,
        jitter=0.25,
        extra_statuses=frozenset({408, 409}),
        retry_timeouts=True,
    )


def to_httpx_timeout(value: Any) -> httpx.Timeout:
    """A number, an ``httpx.Timeout`` or None (no limit) as an ``httpx.Timeout``."""
    if value is None:
        return httpx.Timeout(None)
    if isinstance(value, httpx.Timeout):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return httpx.Timeout(float(value))
    raise ConfigurationError(
        f"`timeout` must be a positive number of seconds, an httpx.Timeout or None, not {value!r}"
    )


#: Extra headers for every request, one ``Name: value`` per line (read as 4.2.0 does).
CUSTOM_HEADERS_ENV = "CARTESIA_CUSTOM_HEADERS"
# RFC 9110 token characters: what a header name may be made of.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def custom_headers_from_env() -> Dict[str, str]:
    """The headers of ``CARTESIA_CUSTOM_HEADERS`` (none when unset); blank lines are skipped.

    Raises:
        ConfigurationError: a line is not ``Name: value`` or holds characters no header may
            hold; the message names the variable and the line number, never the line (a
            pasted key must not end up in a log).
    """
    raw = os.environ.get(CUSTOM_HEADERS_ENV)
    headers: Dict[str, str] = {}
    for number, line in enumerate((raw or "").split("\n"), 1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not _TOKEN.fullmatch(name):
            raise ConfigurationError(
                f"{CUSTOM_HEADERS_ENV} line {number} is not a `Name: value` header "
                "(one per line, the name made of letters, digits and !#$%&'*+-.^_`|~)"
            )
        if any(ord(c) < 32 and c != "\t" or ord(c) == 127 for c in value):
            raise ConfigurationError(
                f"{CUSTOM_HEADERS_ENV} line {number}: the value of header {name!r} holds control characters"
            )
        headers[name] = value
    return headers


def merge_headers(under: Mapping[str, str], over: Mapping[str, str]) -> Dict[str, str]:
    """``under`` updated by ``over``, names compared case-insensitively (one header per name)."""
    merged = {k: v for k, v in under.items() if k.lower() not in {o.lower() for o in over}}
    merged.update(over)
    return merged


def _root(url: str, what: str, schemes: Tuple[str, ...]) -> str:
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigurationError(
            f"`{what}` must be an absolute {'/'.join(schemes)} URL, got {redact(url, None)!r}"
        )
    return url.rstrip("/")


@dataclass
class CurrentConfig:
    """Everything a current-API client needs, checked before any I/O.

    Attributes:
        api_key: ``api_key`` or ``token`` or ``CARTESIA_API_KEY`` (sent as ``Authorization: Bearer``).
        base_url: HTTP root (argument, ``CARTESIA_BASE_URL``, or the public API).
        websocket_base_url: Websocket root (argument, ``CARTESIA_WEBSOCKET_BASE_URL``, or
            ``base_url`` with ``http`` → ``ws`` and ``https`` → ``wss``).
        timeout: The default httpx timeout of a request.
        retry: Retry rules (``max_retries`` retries, i.e. ``max_retries + 1`` attempts).
        version: The ``Cartesia-Version`` header.
        default_headers: Sent with every request (they override ours, as in 4.2.0).
        default_query: Query parameters added to every request.
    """

    api_key: Optional[str]
    base_url: str
    websocket_base_url: str
    timeout: httpx.Timeout
    retry: RetryPolicy
    version: str = v1.API_VERSION
    default_headers: Dict[str, str] = field(default_factory=dict)
    default_query: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def resolve(
        cls,
        *,
        api_key: Optional[str],
        token: Optional[str],
        base_url: Optional[str],
        websocket_base_url: Optional[str],
        timeout: Any,
        max_retries: int,
        default_headers: Optional[Mapping[str, str]],
        default_query: Optional[Mapping[str, Any]],
    ) -> CurrentConfig:
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
            raise ConfigurationError("`max_retries` must be a non-negative integer (0 turns retries off)")
        key = api_key or token or os.environ.get("CARTESIA_API_KEY") or None
        base = _root(
            base_url or os.environ.get("CARTESIA_BASE_URL") or DEFAULT_BASE_URL,
            "base_url",
            ("http", "https"),
        )
        ws = websocket_base_url or os.environ.get(WEBSOCKET_ENV)
        if not ws:
            scheme, rest = base.split(":", 1)
            ws = ("wss" if scheme == "https" else "ws") + ":" + rest
        ws = _root(ws, "websocket_base_url", ("ws", "wss"))
        headers = merge_headers(custom_headers_from_env(), default_headers or {})
        version = v1.API_VERSION
        for name in list(headers):
            if name.lower() == "cartesia-version":
                version = headers.pop(name)
        return cls(
            api_key=key,
            base_url=base,
            websocket_base_url=ws,
            timeout=DEFAULT_TIMEOUT if timeout is _DEFAULT else to_httpx_timeout(timeout),
            retry=current_retry_policy(max_retries),
            version=version,
            default_headers=headers,
            default_query=dict(default_query or {}),
        )

    def __repr__(self) -> str:
        return (
            f"CurrentConfig(base_url={self.base_url!r}, websocket_base_url="
            f"{self.websocket_base_url!r}, api_key={'***' if self.api_key else None})"
        )


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


#: "Not given" for ``timeout`` (None means "no limit", as in 4.2.0).
_DEFAULT: Any = _Default()
DEFAULT = _DEFAULT
