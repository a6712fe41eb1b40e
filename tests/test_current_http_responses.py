"""The 4.2.0 response surface of ``tts`` over HTTP against the real local server: ``bytes(...)``
keeps ``duration`` (sync and async), ``with_streaming_response`` / ``with_raw_response`` for
``generate`` and ``generate_sse`` (and the ``sse`` alias), and the response's reading methods."""

from __future__ import annotations

import json

import httpx
import pytest
from test_current_http import RAW, _args, _want, aclient, client  # noqa: F401 (fixtures)
from test_current_http_wav import _FixedBody
from test_server_v1_http import VOICE, headers

from cartesia import AsyncCartesia, Cartesia

FMT = RAW[1]  # pcm_s16le 24 kHz


def _oracle(local_server, **extra) -> bytes:
    body = dict(_args(FMT), voice={"mode": "id", "id": VOICE.id}, **extra)
    resp = httpx.post(local_server.base_url + "/tts/bytes", json=body, headers=headers(local_server), timeout=20)
    assert resp.status_code == 200
    return resp.content


async def test_async_bytes_sends_duration(local_server, aclient):
    chunks = await aclient.tts.bytes(**_args(FMT), duration=0.25)
    short = b"".join([c async for c in chunks])
    assert short == _oracle(local_server, duration=0.25) and len(short) == int(0.25 * 24000) * 2


def test_streaming_response_generate_is_closed_on_exit(client):
    with client.tts.with_streaming_response.generate(**_args(FMT)) as response:
        assert response.status_code == 200 and response.headers["content-type"]
        assert not response.is_closed and response.url.path == "/tts/bytes"
        assert response.http_request.method == "POST"
        first = next(iter(response.iter_bytes(100)))
        assert len(first) == 100
    assert response.is_closed  # left early: the connection is released, not leaked
    with client.tts.with_streaming_response.generate(**_args(FMT)) as response:
        assert response.parse() is response and response.read() == _want(FMT)


async def test_async_streaming_response_generate_is_closed_on_exit(aclient):
    async with aclient.tts.with_streaming_response.generate(**_args(FMT)) as response:
        assert response.status_code == 200 and not response.is_closed
        async for first in response.iter_bytes(100):
            assert len(first) == 100
            break
    assert response.is_closed
    async with aclient.tts.with_streaming_response.generate(**_args(FMT)) as response:
        assert await response.parse() is response and await response.read() == _want(FMT)


def test_streaming_and_raw_sse(client):
    with client.tts.with_streaming_response.generate_sse(**_args(FMT)) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        events = list(response.parse())
    assert events[-1].type == "done"
    assert b"".join(e.audio for e in events if e.type == "chunk") == _want(FMT)
    with client.tts.with_streaming_response.sse(**_args(FMT)) as response:
        next(iter(response))  # left after one event
    assert response.response.is_closed
    raw = client.tts.with_raw_response.sse(**_args(FMT))
    assert [e.type for e in raw.parse()][-1] == "done"
    binary = client.tts.with_raw_response.generate(**_args(FMT))
    assert binary.is_closed and binary.parse().read() == _want(FMT)  # read eagerly, as 4.2.0


async def test_async_streaming_and_raw_sse(aclient):
    async with aclient.tts.with_streaming_response.generate_sse(**_args(FMT)) as response:
        stream = await response.parse()
        types = [e.type async for e in stream]
    assert types[-1] == "done" and "chunk" in types
    raw = await aclient.tts.with_raw_response.generate_sse(**_args(FMT))
    assert [e.type async for e in await raw.parse()][-1] == "done"
    binary = await aclient.tts.with_raw_response.generate(**_args(FMT))
    assert binary.is_closed and await (await binary.parse()).read() == _want(FMT)


TEXT_BODY = json.dumps({"a": "é" * 5}).encode() + b"\r\nsecond\nthird"


@pytest.mark.parametrize("chunk_size", [1, 3])
def test_text_methods(chunk_size):
    # iter_text must not split a UTF-8 sequence, iter_lines not a line, whatever the chunks.
    with _FixedBody(TEXT_BODY) as server, Cartesia(api_key="k", base_url=server.url) as c:
        assert "".join(c.tts.generate(**_args(FMT)).iter_text(chunk_size)) == TEXT_BODY.decode()
        assert list(c.tts.generate(**_args(FMT)).iter_lines()) == TEXT_BODY.decode().splitlines()
        assert c.tts.generate(**_args(FMT)).text() == TEXT_BODY.decode()
    with _FixedBody(b'{"x": [1, 2]}') as server, Cartesia(api_key="k", base_url=server.url) as c:
        assert c.tts.generate(**_args(FMT)).json() == {"x": [1, 2]}


async def test_async_text_methods():
    with _FixedBody(TEXT_BODY) as server:
        async with AsyncCartesia(api_key="k", base_url=server.url) as c:
            texts = [t async for t in (await c.tts.generate(**_args(FMT))).iter_text(1)]
            assert "".join(texts) == TEXT_BODY.decode()
            lines = [line async for line in (await c.tts.generate(**_args(FMT))).iter_lines()]
            assert lines == TEXT_BODY.decode().splitlines()
            assert await (await c.tts.generate(**_args(FMT))).text() == TEXT_BODY.decode()
