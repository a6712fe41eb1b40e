"""``client.tts.websocket_connect()``: the URL, headers and options of a new connection."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

from ..._current.config import DEFAULT_TIMEOUT
from ...protocol import v1 as WIRE
from .aio import AsyncWebSocketConnection
from .sync import WebSocketConnection

__all__ = ["connect", "connect_async"]


def _settings(
    target: Any,
    extra_query: Optional[Mapping[str, Any]],
    extra_headers: Optional[Mapping[str, str]],
    websocket_connection_options: Optional[Mapping[str, Any]],
    options: Dict[str, Any],
) -> Tuple[str, Dict[str, Any]]:
    """The URL and connection options for ``target``: a URL, or a ``client.tts`` resource
    (its client's websocket root, key, ``Cartesia-Version``, default headers and query)."""
    client_limit: Optional[float] = None
    if isinstance(target, str):
        url = target
        headers: Dict[str, str] = dict(options.pop("headers", None) or {})
        query: Dict[str, Any] = {}
    else:
        cfg = target._http.config
        url = cfg.websocket_base_url.rstrip("/") + WIRE.WS_PATH
        headers = WIRE.headers(cfg.api_key, json_content=False, version=cfg.version)
        headers.update(cfg.default_headers)
        query = dict(cfg.default_query)
        options.setdefault("secret", cfg.api_key)
        # A client left at the default timeout opens its websocket with the connection's own
        # default (10 s, websockets' open timeout, as 4.2.0 does): the open takes a TLS handshake
        # and the upgrade's answer, not just the TCP connect that httpx's 5 s default bounds.
        if cfg.timeout is not DEFAULT_TIMEOUT:
            client_limit = getattr(cfg.timeout, "connect", None)
    headers.update(extra_headers or {})
    query.update(extra_query or {})
    if query:
        from urllib.parse import urlencode

        url += ("&" if "?" in url else "?") + urlencode(query, doseq=True)
    ws_options = dict(websocket_connection_options or {})
    # 4.2.0 hands these to `websockets.connect`; the one that maps onto ours is the open timeout.
    # The most specific limit wins: connect_timeout=, then open_timeout, then the client's.
    for limit in (ws_options.get("open_timeout"), client_limit):
        if limit is not None:
            options.setdefault("connect_timeout", limit)
    options["headers"] = headers
    return url, options


def connect(
    target: Any,
    *,
    extra_query: Optional[Mapping[str, Any]] = None,
    extra_headers: Optional[Mapping[str, str]] = None,
    websocket_connection_options: Optional[Mapping[str, Any]] = None,
    **options: Any,
) -> WebSocketConnection:
    """An unopened :class:`WebSocketConnection` (``with`` or ``enter()`` opens it).

    Args:
        target: The ``/tts/websocket`` URL, or the ``client.tts`` resource it belongs to.
        extra_query, extra_headers, websocket_connection_options: As in 4.2.0's
            ``websocket_connect()``.
        **options: :class:`WebSocketConnection` keywords (``queue_size``, ``connect_timeout``...).
    """
    url, kwargs = _settings(
        target, extra_query, extra_headers, websocket_connection_options, options
    )
    return WebSocketConnection(url, **kwargs)


def connect_async(target: Any, **options: Any) -> AsyncWebSocketConnection:
    """An unopened :class:`AsyncWebSocketConnection` (the arguments of :func:`connect`)."""
    url, kwargs = _settings(
        target,
        options.pop("extra_query", None),
        options.pop("extra_headers", None),
        options.pop("websocket_connection_options", None),
        options,
    )
    return AsyncWebSocketConnection(url, **kwargs)
