"""200 concurrent websocket generations and 200 concurrent HTTP streams against one server."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from server_fixtures import WS_TIMEOUT, audio_of, split_json_objects

from cartesia.server.engines.tone import ToneEngine
from cartesia.server.voices import VOICES_BY_NAME

# A server bug must fail a test, never hang it.
TIMEOUT = aiohttp.ClientTimeout(total=30)

N = 200
VOICES = ["Milo", "Graham", "Olivia", "Nora"]
pytestmark = pytest.mark.slow


def request(i: int) -> dict:
    # Short, distinct texts: the point is many concurrent sockets, not long audio.
    return {"transcript": f"Request {i}.", "voice": VOICES[i % len(VOICES)], "chunk_time": 0.1}


def expected(i: int) -> bytes:
    body = request(i)
    voice = VOICES_BY_NAME[body["voice"].lower()]
    return ToneEngine().synthesize(body["transcript"], voice).astype("<f4").tobytes()


async def test_200_concurrent_websocket_generations(make_server):
    server = make_server(engine="tone", pace="none")
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as session:

        async def one(i: int) -> bytes:
            async with session.ws_connect(
                f"{server.ws_url}/v0/audio/websocket?api_key=k", max_msg_size=0
            ) as ws:
                await ws.send_json({"context_id": f"c{i}", "data": request(i)})
                frames = []
                while True:
                    msg = await ws.receive_json()
                    assert msg["context_id"] == f"c{i}"
                    if msg["done"]:
                        assert "error" not in msg, msg
                        return audio_of(frames)
                    frames.append(msg)

        start = time.perf_counter()
        results = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(N))), 60)
        elapsed = time.perf_counter() - start
    for i, audio in enumerate(results):
        assert audio == expected(i), i
    assert server.stats["generations_completed"] == N
    print(f"\n{N} concurrent websocket generations: {elapsed:.2f} s")


async def test_200_concurrent_http_streams(make_server):
    server = make_server(engine="tone", pace="none")
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, headers={"X-API-Key": "k"}, timeout=TIMEOUT) as session:

        async def one(i: int) -> bytes:
            async with session.post(f"{server.base_url}/v0/audio/stream", json=request(i)) as resp:
                assert resp.status == 200
                frames = split_json_objects(await resp.read())
                assert frames[-1]["done"] is True
                return audio_of(frames)

        start = time.perf_counter()
        results = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(N))), 60)
        elapsed = time.perf_counter() - start
    for i, audio in enumerate(results):
        assert audio == expected(i), i
    assert server.stats["generations_completed"] == N
    print(f"\n{N} concurrent HTTP streams: {elapsed:.2f} s")


async def test_200_contexts_multiplexed_on_one_socket(local_server):
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.ws_connect(f"{local_server.ws_url}/v0/audio/websocket?api_key=k", **WS_TIMEOUT) as ws:
            for i in range(N):
                await ws.send_json({"context_id": f"m{i}", "data": request(i)})
            frames = {f"m{i}": [] for i in range(N)}
            done = set()
            while len(done) < N:
                msg = await asyncio.wait_for(ws.receive_json(), 20)
                assert "error" not in msg, msg
                if msg["done"]:
                    done.add(msg["context_id"])
                else:
                    frames[msg["context_id"]].append(msg)
    for i in range(N):
        assert audio_of(frames[f"m{i}"]) == expected(i)
