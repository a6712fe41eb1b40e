"""Many concurrent streams on one async client with its default settings: all of them open at once.

A streamed generation holds its HTTP connection for its whole length, so a pool cap is a cap on
concurrent generations: the async v0 client used to cap at 10 connections and the current-API
client at httpx's 100, queueing every generation above that until its first-audio (or pool)
timeout failed it. Each test starts more streams than the old cap and lets none of them finish
before every one has received its first audio: with a cap, the queued ones never start and the
bounded wait fails the test.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, AsyncIterator, Awaitable, Callable, List

import pytest
from current_ws_support import S16, VOICE, expected
from test_client_support import expected_audio, voice  # noqa: F401  (fixture)

from cartesia import AsyncCartesia
from cartesia._current.aiohttp_transport import AiohttpTransport
from cartesia.tts import AsyncCartesiaTTS

N = 128  # above both old caps (10 and 100)
TEXT = "Hi."
BOUND_S = 30.0  # every wait of a test ends within this


async def all_open_at_once(n: int, start: Callable[[int], Awaitable[AsyncIterator[bytes]]]) -> List[bytes]:
    """Run ``n`` streams; each one waits, after its first audio, until all ``n`` have had theirs."""
    arrived = 0
    everyone = asyncio.Event()

    async def one(i: int) -> bytes:
        nonlocal arrived
        chunks = (await start(i)).__aiter__()
        got = [await chunks.__anext__()]
        arrived += 1
        if arrived == n:
            everyone.set()
        await everyone.wait()
        async for data in chunks:
            got.append(data)
        return b"".join(got)

    return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), BOUND_S)


async def test_v0_async_http_streams_are_not_capped_by_a_pool(local_server: Any, voice: list) -> None:  # noqa: F811
    client = AsyncCartesiaTTS(api_key=local_server.api_key, base_url=local_server.host_for_env)
    assert client.max_connections is None  # the documented default: no cap

    async def start(i: int) -> AsyncIterator[bytes]:
        stream = await client.generate(transcript=TEXT, voice=voice, stream=True)

        async def audio() -> AsyncIterator[bytes]:
            async for chunk in stream:
                yield chunk["audio"]

        return audio()

    try:
        got = await all_open_at_once(N, start)
    finally:
        await client.close()
    want = expected_audio(TEXT, voice)
    assert all(g == want for g in got)


async def test_v0_async_client_keeps_a_cap_when_asked(local_server: Any) -> None:
    client = AsyncCartesiaTTS(api_key=local_server.api_key, base_url=local_server.host_for_env, max_connections=3)
    try:
        session = await client._get_session()
        assert session.connector is not None and session.connector.limit == 3
    finally:
        await client.close()
    with pytest.raises(ValueError, match="max_connections"):
        AsyncCartesiaTTS(api_key="k", max_connections=0)


KW = dict(model_id="sonic-3", transcript=TEXT, voice={"mode": "id", "id": VOICE.id}, output_format=S16)


@pytest.mark.parametrize("call", ["bytes", "generate_sse"])
async def test_current_async_http_streams_are_not_capped_by_a_pool(local_server: Any, call: str) -> None:
    async with AsyncCartesia(api_key=local_server.api_key, base_url=local_server.base_url) as client:

        async def start(i: int) -> AsyncIterator[bytes]:
            response = await getattr(client.tts, call)(**KW)
            if call == "bytes":
                return response.__aiter__()

            async def audio() -> AsyncIterator[bytes]:
                async for event in response:
                    if event.type == "chunk" and event.audio:
                        yield event.audio

            return audio()

        got = await all_open_at_once(N, start)
        # All of them went through the one aiohttp session (httpcore's pool is not in the path).
        assert isinstance(client.tts._http.client()._transport, AiohttpTransport)  # noqa: SLF001
    want = expected([TEXT])
    assert all(g == want for g in got)


async def test_one_request_at_a_time_stays_on_one_connection(local_server: Any) -> None:
    async with AsyncCartesia(api_key=local_server.api_key, base_url=local_server.base_url) as client:
        ports = set()
        for _ in range(3):
            response = await client.tts.generate(**KW)
            ports.add(response.http_response.extensions["network_stream"].get_extra_info("client_addr")[1])
            assert await response.read() == expected([TEXT])
        assert len(ports) == 1, ports  # the kept-alive connection served every call


def test_a_proxied_client_serves_several_event_loops(local_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # httpcore's pool belongs to the loop that opened its connections: one proxied transport for
    # every loop raised "Event loop is closed" in the second asyncio.run and left its socket open.
    monkeypatch.setenv("HTTP_PROXY", local_server.base_url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = AsyncCartesia(api_key=local_server.api_key, base_url="http://cartesia-proxy-test.invalid")

    async def one() -> bytes:
        return b"".join([b async for b in await client.tts.bytes(**KW)])

    try:
        assert asyncio.run(one()) == asyncio.run(one()) == expected([TEXT])
    finally:
        asyncio.run(client.close())


async def test_current_async_pool_still_takes_its_proxy_from_the_environment(
    local_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The local server answers absolute-form requests, so it stands in for the proxy: the
    # request only arrives if the client sent it through HTTP_PROXY (the host does not resolve).
    monkeypatch.setenv("HTTP_PROXY", local_server.base_url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with AsyncCartesia(api_key=local_server.api_key, base_url="http://cartesia-proxy-test.invalid") as client:
        data = b"".join([b async for b in await client.tts.bytes(**KW)])
    assert data == expected([TEXT])


def test_v0_sync_http_streams_are_not_capped_by_a_pool(local_server: Any, voice: list) -> None:  # noqa: F811
    # 0.0.5's blocking calls open a connection each, so threads sharing one client never wait
    # for one another; a pool of 10 made the 11th generation wait for a whole one to end.
    from cartesia.tts import CartesiaTTS

    threads, text = 16, "A generation long enough to hold its connection past its first chunk. " * 4
    client = CartesiaTTS(api_key=local_server.api_key, base_url=local_server.host_for_env)
    assert client.max_connections is None
    everyone = threading.Barrier(threads, timeout=BOUND_S)  # all have a first chunk, none ended

    def one() -> bytes:
        chunks = client.generate(transcript=text, voice=voice, stream=True, websocket=False)
        got = [next(chunks)["audio"]]
        everyone.wait()
        return b"".join(got + [c["audio"] for c in chunks])

    try:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            got = [f.result(timeout=BOUND_S) for f in [pool.submit(one) for _ in range(threads)]]
    finally:
        client.close()
    assert all(g == expected_audio(text, voice) for g in got)
