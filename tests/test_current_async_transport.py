"""The async client's httpx transport over aiohttp, against the real local server: httpx's exception
types (hence our typed errors) with the server's message, each timeout, TLS, proxies, dropped and
cancelled bodies, and closing with streams open."""

from __future__ import annotations

import asyncio
import gc
import socket
from typing import Any, AsyncIterator, Iterator, List

import httpx
import pytest
from current_ws_support import S16, VOICE, expected
from raw_server import RawServer

from cartesia import APIConnectionError, APITimeoutError, AsyncCartesia, AuthenticationError, RateLimitError
from cartesia._current.aiohttp_transport import AiohttpTransport
from cartesia.errors import ChunkGapTimeoutError, ConnectTimeoutError, FirstAudioTimeoutError

TEXT = "Hi."
LONGER = "Several frames of audio."
KW = dict(model_id="sonic-3", transcript=TEXT, voice={"mode": "id", "id": VOICE.id}, output_format=S16)
LONG_KW = dict(KW, transcript=LONGER)
#: The server pauses this long after the first frame: longer than any bound below.
STALL = {"X-Cartesia-Fault": "stall;after_frames=1;seconds=30"}
BOUND_S = 10.0  # every wait of a test ends within this
SHORT = httpx.Timeout(BOUND_S, read=0.2)
# A read limit that the stalled body reaches, but the response head (the server's first frame)
# does not, on a loaded machine either: 0.2 s was not always enough for the head there.
STALLED = httpx.Timeout(BOUND_S, read=1.0)


def _v1_headers(server: Any, **extra: str) -> dict:
    return {"X-API-Key": server.api_key, "Cartesia-Version": "2025-04-16", **extra}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A bare httpx client on the transport (what the transport raises, before our mapping)."""
    async with httpx.AsyncClient(transport=AiohttpTransport(httpx.create_ssl_context()), timeout=BOUND_S) as client:
        yield client


@pytest.fixture
def blackhole() -> Iterator[str]:
    """``host:port`` of a listener whose backlog is full: a connect to it never completes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    held: List[socket.socket] = []
    try:
        for _ in range(8):  # fill the backlog until a connect stalls
            probe = socket.socket()
            held.append(probe)
            probe.settimeout(0.2)
            try:
                probe.connect(listener.getsockname())
            except OSError:
                break
        else:
            pytest.skip("this kernel accepts every connect: no way to stall one")
        host, port = listener.getsockname()
        yield f"{host}:{port}"
    finally:
        for s in held:
            s.close()
        listener.close()


async def _closed(stream: Any) -> bool:
    """True once the socket behind a response's ``network_stream`` is closed (bounded wait)."""
    sock = stream.get_extra_info("socket")
    for _ in range(1000):
        if sock.fileno() == -1:
            return True
        await asyncio.sleep(0.005)
    return False


# --- httpx's exception types, as httpcore would raise them -------------------------------------


async def test_transport_raises_httpx_exception_types(
    local_server: Any, http: httpx.AsyncClient, blackhole: str
) -> None:
    with pytest.raises(httpx.ConnectError, match="Cannot connect"):
        with socket.socket() as unused:  # a port nothing listens on
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
        await http.get(f"http://127.0.0.1:{port}/")
    with pytest.raises(httpx.ConnectTimeout):
        await http.get(f"http://{blackhole}/", timeout=httpx.Timeout(BOUND_S, connect=0.2))
    with RawServer("silent") as silent, pytest.raises(httpx.ReadTimeout):
        await http.get(silent.host_for_env + "/", timeout=SHORT)  # no answer at all
    with socket.socket() as deaf:  # connects (the kernel's backlog), never reads a byte
        deaf.bind(("127.0.0.1", 0))
        deaf.listen(8)
        host, port = deaf.getsockname()
        with pytest.raises(httpx.WriteTimeout):  # the upload fills the socket buffers, then stalls
            await http.post(f"http://{host}:{port}/", content=bytes(16 << 20), timeout=httpx.Timeout(0.2))
    url = local_server.base_url + "/tts/bytes"
    async with http.stream("POST", url, json=LONG_KW, headers=_v1_headers(local_server, **STALL), timeout=STALLED) as r:
        assert r.status_code == 200
        with pytest.raises(httpx.ReadTimeout):  # the body stops after its first frame
            async for _ in r.aiter_bytes():
                pass
    drop = _v1_headers(local_server, **{"X-Cartesia-Fault": "drop;after_frames=1"})
    async with http.stream("POST", url, json=LONG_KW, headers=drop) as r:
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete response body: ") as broke:
            await r.aread()
        assert "400" not in str(broke.value)  # llhttp's internal code is no HTTP status


async def test_transport_response_is_httpx_s(local_server: Any, http: httpx.AsyncClient) -> None:
    r = await http.post(local_server.base_url + "/tts/bytes", json=KW, headers=_v1_headers(local_server))
    assert r.status_code == 200 and r.http_version == "HTTP/1.1" and r.reason_phrase == "OK"
    assert r.headers["content-type"] == "application/octet-stream" and r.content == expected([TEXT])
    port = r.extensions["network_stream"].get_extra_info("client_addr")[1]
    again = await http.post(local_server.base_url + "/tts/bytes", json=KW, headers=_v1_headers(local_server))
    assert again.extensions["network_stream"].get_extra_info("client_addr")[1] == port  # kept alive


# --- through the client: typed errors with the server's message ---------------------------------


async def test_status_errors_carry_the_server_message(make_server: Any, local_server: Any, server_faults: Any) -> None:
    server = make_server(api_keys=["right-key"])
    async with AsyncCartesia(api_key="wrong-key", base_url=server.base_url, max_retries=0) as client:
        with pytest.raises(AuthenticationError, match="invalid API key") as info:
            await client.tts.generate(**KW)
        assert "wrong-key" not in str(info.value)
    server_faults.add("status", status=429, retry_after=0, should_retry=False)
    async with AsyncCartesia(api_key=local_server.api_key, base_url=local_server.base_url) as client:
        with pytest.raises(RateLimitError):
            await client.tts.generate(**KW)


async def test_connection_failures_are_typed(local_server: Any, blackhole: str) -> None:
    async with AsyncCartesia(api_key="k", base_url=f"http://{blackhole}", max_retries=0) as client:
        with pytest.raises(ConnectTimeoutError):
            await client.tts.generate(**KW, connect_timeout=0.2)
        with pytest.raises(APITimeoutError):
            await client.tts.generate(**KW, timeout=httpx.Timeout(BOUND_S, connect=0.2))
    async with AsyncCartesia(api_key=local_server.api_key, base_url=local_server.base_url, max_retries=0) as client:
        drop = {"X-Cartesia-Fault": "drop;after_frames=1"}
        with pytest.raises(APIConnectionError, match="incomplete response body: "):
            await (await client.tts.generate(**LONG_KW, extra_headers=drop)).read()
        assert await (await client.tts.generate(**KW)).read() == expected([TEXT])  # the next call is fine


async def test_every_phase_limit_applies(local_server: Any) -> None:
    async with AsyncCartesia(api_key=local_server.api_key, base_url=local_server.base_url, max_retries=0) as client:
        response = await client.tts.generate(**LONG_KW, extra_headers=STALL, timeout=STALLED)
        with pytest.raises(APITimeoutError):  # httpx's read limit, on the body
            await response.read()
        response = await client.tts.generate(**LONG_KW, extra_headers=STALL, chunk_gap_timeout=0.2)
        with pytest.raises(ChunkGapTimeoutError):
            await response.read()
        first = {"X-Cartesia-Fault": "stall;after_frames=0;seconds=30"}
        with pytest.raises(FirstAudioTimeoutError):  # the server holds back even its headers
            [e async for e in await client.tts.generate_sse(**LONG_KW, extra_headers=first, first_audio_timeout=0.2)]
        # A read limit shorter than the whole body, but never reached between two pieces.
        ok = await client.tts.generate(**LONG_KW, timeout=httpx.Timeout(BOUND_S, read=2.0))
        assert await ok.read() == expected([LONGER])


# --- TLS and proxies ---------------------------------------------------------------------------


async def test_tls_is_verified_against_ssl_cert_file(make_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("trustme", reason="trustme (the `tls` extra) is not installed")
    server = make_server(tls=True)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    async with AsyncCartesia(api_key=server.api_key, base_url=server.base_url, max_retries=0) as client:
        with pytest.raises(APIConnectionError, match="(?i)certificate"):  # an unknown CA
            await client.tts.generate(**KW)
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_path))
    async with AsyncCartesia(api_key=server.api_key, base_url=server.base_url) as client:
        response = await client.tts.generate(**KW)
        assert response.http_response.extensions["network_stream"].get_extra_info("ssl_object") is not None
        assert await response.read() == expected([TEXT])


async def test_no_proxy_hosts_stay_direct(local_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead = unused.getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{dead}")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "localhost")
    async with AsyncCartesia(api_key=local_server.api_key, base_url=local_server.base_url) as client:
        assert await (await client.tts.generate(**KW)).read() == expected([TEXT])
    monkeypatch.setenv("NO_PROXY", "")
    async with AsyncCartesia(api_key=local_server.api_key, base_url=local_server.base_url, max_retries=0) as client:
        with pytest.raises(APIConnectionError):  # now through the dead proxy
            await client.tts.generate(**KW)


# --- cancelled and closed ----------------------------------------------------------------------


async def test_cancelled_stream_closes_its_connection(local_server: Any) -> None:
    async with AsyncCartesia(api_key=local_server.api_key, base_url=local_server.base_url) as client:
        first = asyncio.Event()
        opened: List[Any] = []

        async def listen() -> None:
            response = await client.tts.generate(**LONG_KW, extra_headers=STALL)
            opened.append(response.http_response.extensions["network_stream"])
            async for _ in response:
                first.set()

        task = asyncio.ensure_future(listen())
        await asyncio.wait_for(first.wait(), BOUND_S)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, BOUND_S)
        assert await _closed(opened[0])  # its unread rest can serve no other call
        response = await client.tts.generate(**KW)
        assert response.http_response.extensions["network_stream"] is not opened[0]
        assert await response.read() == expected([TEXT])


async def test_close_with_streams_open(local_server: Any) -> None:
    client = AsyncCartesia(api_key=local_server.api_key, base_url=local_server.base_url, max_retries=0)
    response = await client.tts.generate(**LONG_KW, extra_headers=STALL)
    stream = await client.tts.generate_sse(**LONG_KW, extra_headers=STALL)
    chunks, events = response.__aiter__(), stream.__aiter__()
    assert await asyncio.wait_for(chunks.__anext__(), BOUND_S)
    assert (await asyncio.wait_for(events.__anext__(), BOUND_S)).type == "chunk"
    await asyncio.wait_for(client.close(), BOUND_S)
    with pytest.raises(APIConnectionError):  # never a silent end: the audio was cut short
        await asyncio.wait_for(chunks.__anext__(), BOUND_S)
    with pytest.raises(APIConnectionError):
        await asyncio.wait_for(events.__anext__(), BOUND_S)
    # A closed client opens a fresh session on its next call (as httpx's closed pool did not).
    assert await asyncio.wait_for((await client.tts.generate(**KW)).read(), BOUND_S) == expected([TEXT])
    await client.close()


def test_one_client_serves_several_event_loops(local_server: Any) -> None:
    """A client kept across ``asyncio.run`` calls (a script, or tests with a loop each): each
    loop gets its own session, closed inside that loop when it ends (no unclosed session)."""

    async def one(client: AsyncCartesia) -> bytes:
        return await asyncio.wait_for((await client.tts.generate(**KW)).read(), BOUND_S)

    async def close(client: AsyncCartesia) -> None:
        await client.close()

    client = AsyncCartesia(api_key=local_server.api_key, base_url=local_server.base_url, max_retries=0)
    assert asyncio.run(one(client)) == expected([TEXT])
    assert asyncio.run(one(client)) == expected([TEXT])  # was: "attached to a different loop"
    asyncio.run(close(client))
    del client
    gc.collect()  # an unclosed aiohttp session would warn here (an error under pytest's filters)


async def test_a_dropped_client_closes_its_session(local_server: Any) -> None:
    """Never closed, only dropped: its session closes while the loop still runs (a server that
    makes a client per request would otherwise keep every session and its sockets)."""
    client = AsyncCartesia(api_key=local_server.api_key, base_url=local_server.base_url, max_retries=0)
    assert await asyncio.wait_for((await client.tts.generate(**KW)).read(), BOUND_S) == expected([TEXT])
    transport = client._http.client()._transport  # noqa: SLF001 - what the test watches
    assert isinstance(transport, AiohttpTransport)
    runtime = transport._loops.get()  # noqa: SLF001
    del client, transport
    gc.collect()
    for _ in range(100):  # bounded: the keeper closes the session within a few loop turns
        if runtime.closed:
            break
        await asyncio.sleep(0.01)
    assert runtime.closed
