"""``client.tts.websocket_connect()`` of the current-API clients against the local server: the
client's key, ``Cartesia-Version``, default headers and query reach the upgrade."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from current_ws_support import audio_of, defaults, expected

from cartesia import AsyncCartesia, Cartesia
from cartesia.errors import AuthenticationError, ConnectTimeoutError
from cartesia.resources.tts_websocket import AsyncWebSocketConnection, WebSocketConnection


def test_sync_client_websocket_connect(local_server):
    with Cartesia(api_key=local_server.api_key, base_url=local_server.base_url) as client:
        with client.tts.websocket_connect() as ws:
            assert isinstance(ws, WebSocketConnection)
            assert ws.url == local_server.ws_url + "/tts/websocket"
            ctx = ws.context(**defaults())
            ctx.push("Through the client.", continue_=False)
            events = list(ctx.receive())
    assert audio_of(events) == expected(["Through the client."])


def test_enter_returns_the_connection(local_server):
    client = Cartesia(api_key=local_server.api_key, base_url=local_server.base_url)
    ws = client.tts.websocket_connect(extra_query={"tag": "x y"}).enter()
    try:
        assert ws.url.endswith("/tts/websocket?tag=x+y") and ws.connections_opened == 1
    finally:
        ws.close()
        client.close()


def test_wrong_key_is_an_authentication_error_without_the_key(make_server):
    server = make_server(api_keys=["the-right-key"])
    secret = "sk_wrong_" + "z" * 20
    with Cartesia(api_key=secret, base_url=server.base_url) as client:
        conn = client.tts.websocket_connect()
        with pytest.raises(AuthenticationError) as info:
            conn.enter()
        conn.close()
    assert info.value.status_code == 401 and secret not in str(info.value)
    assert secret not in repr(conn)


def test_unsupported_version_header_is_refused(local_server):
    with Cartesia(
        api_key=local_server.api_key,
        base_url=local_server.base_url,
        default_headers={"Cartesia-Version": "1999-01-01"},
    ) as client:
        conn = client.tts.websocket_connect()
        with pytest.raises(Exception) as info:
            conn.enter()
        conn.close()
    assert getattr(info.value, "status_code", None) == 400


async def test_async_client_websocket_connect(local_server):
    client = AsyncCartesia(api_key=local_server.api_key, base_url=local_server.base_url)
    async with client:
        async with client.tts.websocket_connect() as ws:
            assert isinstance(ws, AsyncWebSocketConnection)
            ctx = ws.context(**defaults())
            await ctx.push("Through the async client.", continue_=False)
            events = await asyncio.wait_for(_collect(ctx), 15)
    assert audio_of(events) == expected(["Through the async client."])


async def _collect(ctx) -> list:
    return [e async for e in ctx.receive()]


@pytest.fixture
def silent_upgrade():
    """A TCP listener that takes connections and never answers the websocket upgrade."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def test_websocket_open_waits_as_long_as_the_official_client(silent_upgrade):
    # 4.2.0 opens its websocket with websockets' own 10 s open timeout, whatever httpx's 5 s
    # connect default: the open is a TLS handshake plus the upgrade's answer, which a loaded
    # server (CI) has taken more than 5 s to give. A client left at the default waits as long.
    secret = "sk_silent_" + "q" * 20
    with Cartesia(api_key=secret, base_url=silent_upgrade) as client:
        assert client.tts.websocket_connect()._connect_timeout == 10.0
        # A timeout the caller chose is the websocket's open limit too.
        with Cartesia(api_key=secret, base_url=silent_upgrade, timeout=httpx.Timeout(60, connect=0.3)) as short:
            ws = short.tts.websocket_connect()
            with pytest.raises(ConnectTimeoutError) as info:
                ws.enter()
            # The websocket's own option is more specific than the client's timeout.
            options = {"open_timeout": 0.2}
            assert short.tts.websocket_connect(websocket_connection_options=options)._connect_timeout == 0.2
    assert "0.3 s" in str(info.value) and secret not in str(info.value)
