"""The v0 async client's proxies: the environment's, read once per session (not in threads before
every request), for HTTP and the websocket; NO_PROXY hosts stay direct; proxy credentials sent."""

from __future__ import annotations

import base64
import socket
from typing import Any, Iterator, List, Optional
from urllib.parse import urlsplit

import pytest
from raw_server import LoopbackServer
from test_client_support import expected_audio, voice  # noqa: F401  (fixture)

from cartesia.errors import CartesiaConnectionError
from cartesia.tts import AsyncCartesiaTTS

_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "WS_PROXY", "WSS_PROXY", "ALL_PROXY", "NO_PROXY")
#: A host that never resolves: a request only arrives if it went through the proxy.
FAR = "cartesia-proxy-test.invalid"


class RelayProxy(LoopbackServer):
    """A forward proxy on a loopback port: it notes each request head it gets and relays the
    connection, both ways, to ``upstream`` (the local server, whatever host the head names)."""

    def __init__(self, upstream_port: int) -> None:
        super().__init__()
        self.heads: List[bytes] = []
        self._upstream = upstream_port

    def url(self, credentials: str = "") -> str:
        return f"http://{credentials}127.0.0.1:{self.port}"

    def __enter__(self) -> RelayProxy:
        super().__enter__()
        return self

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(5)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                piece = client.recv(65536)
                if not piece:
                    return
                data += piece
            self.heads.append(data.split(b"\r\n\r\n", 1)[0])
            upstream = socket.create_connection(("127.0.0.1", self._upstream), timeout=5)
            self.sockets.append(upstream)
            upstream.sendall(data)
            self.spawn(self._pipe, upstream, client)
            self._pipe(client, upstream)
        except OSError:
            return

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                piece = source.recv(65536)
                if not piece:
                    sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(piece)
        except OSError:
            return


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


@pytest.fixture
def relay(local_server: Any) -> Iterator[RelayProxy]:
    with RelayProxy(int(local_server.base_url.rsplit(":", 1)[1])) as proxy:
        yield proxy


def _client(local_server: Any, base_url: Optional[str] = None, **kw: Any) -> AsyncCartesiaTTS:
    port = local_server.base_url.rsplit(":", 1)[1]
    return AsyncCartesiaTTS(
        api_key=local_server.api_key,
        base_url=base_url or f"http://{FAR}:{port}",
        connect_timeout=2,
        first_audio_timeout=3,
        total_timeout=5,
        **kw,
    )


def _dead_port() -> int:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return int(unused.getsockname()[1])


async def test_http_goes_through_the_proxy_with_its_credentials(
    local_server: Any, clean_env: pytest.MonkeyPatch, relay: RelayProxy, voice: list
) -> None:
    clean_env.setenv("HTTP_PROXY", relay.url("someone:s3cret@"))
    client = _client(local_server)
    try:
        out = await client.generate(transcript="through the proxy", voice=voice, websocket=False)
    finally:
        await client.close()
    assert out["audio"] == expected_audio("through the proxy", voice)
    assert len(relay.heads) == 1
    head = relay.heads[0].decode("latin-1")
    assert head.startswith(f"POST http://{FAR}:"), head  # absolute form: a proxy request
    auth = base64.b64encode(b"someone:s3cret").decode()
    assert f"\r\nProxy-Authorization: Basic {auth}" in head, head


async def test_websocket_connect_goes_through_the_proxy(
    local_server: Any, clean_env: pytest.MonkeyPatch, relay: RelayProxy, voice: list
) -> None:
    # aiohttp takes a ws:// URL's proxy from WS_PROXY (its scheme), as it did with trust_env.
    clean_env.setenv("WS_PROXY", relay.url())
    client = _client(local_server)
    try:
        out = await client.generate(transcript="proxied socket", voice=voice, websocket=True)
    finally:
        await client.close()
    assert out["audio"] == expected_audio("proxied socket", voice)
    assert len(relay.heads) == 1
    head = relay.heads[0].decode("latin-1")
    assert head.startswith(f"GET ws://{FAR}:") and "\r\nUpgrade: websocket" in head, head


@pytest.mark.parametrize("websocket", [False, True], ids=["http", "ws"])
async def test_no_proxy_hosts_stay_direct(
    local_server: Any, clean_env: pytest.MonkeyPatch, voice: list, websocket: bool
) -> None:
    dead = f"http://127.0.0.1:{_dead_port()}"  # nothing listens there
    clean_env.setenv("HTTP_PROXY", dead)
    clean_env.setenv("WS_PROXY", dead)
    clean_env.setenv("NO_PROXY", urlsplit(local_server.base_url).hostname or "")
    client = _client(local_server, base_url=local_server.base_url)
    try:
        out = await client.generate(transcript="direct", voice=voice, websocket=websocket)
        assert out["audio"] == expected_audio("direct", voice)
    finally:
        await client.close()
    clean_env.setenv("NO_PROXY", "")
    client = _client(local_server, base_url=local_server.base_url, max_retries=1)
    try:
        with pytest.raises(CartesiaConnectionError):  # now through the dead proxy
            await client.generate(transcript="direct", voice=voice, websocket=websocket)
    finally:
        await client.close()


async def test_the_environment_is_read_once_per_session(
    local_server: Any, clean_env: pytest.MonkeyPatch, relay: RelayProxy, voice: list
) -> None:
    """aiohttp's trust_env looked the proxy up in threads before every request (0.3-1 ms of
    time to first audio); now a session keeps what it found on its first request."""
    clean_env.setenv("HTTP_PROXY", relay.url())
    client = _client(local_server, max_retries=1)
    try:
        for _ in range(2):  # before: the second request went to the dead proxy and failed
            out = await client.generate(transcript="again", voice=voice, websocket=False)
            assert out["audio"] == expected_audio("again", voice)
            clean_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{_dead_port()}")
        # Both went through the relay: one kept-alive connection to it, or one each on aiohttp
        # 3.9, which does not keep a proxied connection alive.
        assert 1 <= len(relay.heads) <= 2
    finally:
        await client.close()
    client = _client(local_server, max_retries=1)
    try:
        with pytest.raises(CartesiaConnectionError):  # a new session reads the new value
            await client.generate(transcript="again", voice=voice, websocket=False)
    finally:
        await client.close()
