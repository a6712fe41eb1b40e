"""Websocket routes of the local server: frames, reuse, multiplexing, acks, cancel, errors, auth."""

from __future__ import annotations

import asyncio
import base64
import json

import aiohttp
import httpx
import pytest
from server_fixtures import WS_TIMEOUT, audio_of, split_json_objects

from cartesia.server import LocalServer

# A server bug must fail a test, never hang it.
TIMEOUT = aiohttp.ClientTimeout(total=30)

WS = "/v0/audio/websocket"
XWS = "/v0/experimental/audio/websocket"


def body(text: str = "Hello websocket", **extra) -> dict:
    return {"transcript": text, "voice": "Milo", "model_id": "genial-planet-1346", **extra}


async def collect(ws: aiohttp.ClientWebSocketResponse, context_id: str, ack: bool = False) -> list:
    """Frames of one context up to and including its done frame (others are not expected).

    With ``ack`` every audio frame is acknowledged (the experimental route needs it).
    """
    frames = []
    while True:
        msg = await asyncio.wait_for(ws.receive_json(), 10)
        assert msg["context_id"] == context_id
        frames.append(msg)
        if msg["done"]:
            return frames
        if ack:
            await ws.send_json({"context_id": context_id})


def http_audio(server: LocalServer, **b) -> bytes:
    resp = httpx.post(
        server.base_url + "/v0/audio/stream", json=b, headers={"X-API-Key": "k"}, timeout=20
    )
    return audio_of(split_json_objects(resp.content))


async def test_frames_match_http_stream(local_server):
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.ws_connect(f"{local_server.ws_url}{WS}?api_key=k", **WS_TIMEOUT) as ws:
            await ws.send_json({"context_id": "ctx-1", "data": body()})
            frames = await collect(ws, "ctx-1")
    *audio, done = frames
    assert done == {"done": True, "context_id": "ctx-1"}
    for frame in audio:
        assert set(frame) == {"data", "sampling_rate", "done", "context_id", "step_time", "length"}
        assert frame["done"] is False and frame["sampling_rate"] == 44100
        assert len(base64.b64decode(frame["data"])) == 4 * frame["length"]
    assert audio_of(audio) == http_audio(local_server, **body())


async def test_many_sequential_generations_on_one_socket(local_server):
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.ws_connect(f"{local_server.ws_url}{WS}?api_key=k", **WS_TIMEOUT) as ws:
            for i in range(5):
                await ws.send_json({"context_id": f"seq-{i}", "data": body(f"Sentence {i}.")})
                frames = await collect(ws, f"seq-{i}")
                assert frames[-1]["done"] and len(frames) > 2


async def test_concurrent_contexts_each_in_order(local_server):
    texts = {f"mux-{i}": f"Multiplexed sentence number {i}." for i in range(4)}
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.ws_connect(f"{local_server.ws_url}{WS}?api_key=k", **WS_TIMEOUT) as ws:
            for cid, text in texts.items():
                await ws.send_json({"context_id": cid, "data": body(text)})
            per_ctx = {cid: [] for cid in texts}
            done = set()
            while len(done) < len(texts):
                msg = await asyncio.wait_for(ws.receive_json(), 10)
                assert msg["context_id"] not in done
                if msg["done"]:
                    done.add(msg["context_id"])
                else:
                    per_ctx[msg["context_id"]].append(msg)
    for cid, text in texts.items():
        assert audio_of(per_ctx[cid]) == http_audio(local_server, **body(text))


async def test_contexts_run_concurrently_on_one_socket(local_server):
    """Deterministic interleaving: on the ack route every context sends one chunk unasked."""
    cids = [f"par-{i}" for i in range(3)]
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.ws_connect(f"{local_server.ws_url}{XWS}?api_key=k", **WS_TIMEOUT) as ws:
            for cid in cids:
                await ws.send_json({"context_id": cid, "data": body(f"Parallel {cid}")})
            firsts = [await asyncio.wait_for(ws.receive_json(), 5) for _ in cids]
            assert sorted(m["context_id"] for m in firsts) == cids
            assert not any(m["done"] for m in firsts)
            frames = {m["context_id"]: [m] for m in firsts}
            for cid in reversed(cids):
                await ws.send_json({"context_id": cid})
            seconds = [await asyncio.wait_for(ws.receive_json(), 5) for _ in cids]
            assert sorted(m["context_id"] for m in seconds) == cids
            for m in seconds:
                frames[m["context_id"]].append(m)
            for cid in cids:
                await ws.send_json({"context_id": cid})
                frames[cid] += await collect(ws, cid, ack=True)
    for cid in cids:
        assert audio_of(frames[cid]) == http_audio(local_server, **body(f"Parallel {cid}"))


async def test_cancel_stops_a_context(local_server):
    before = local_server.stats["generations_cancelled"]
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.ws_connect(f"{local_server.ws_url}{XWS}?api_key=k", **WS_TIMEOUT) as ws:
            await ws.send_json({"context_id": "long", "data": body("word " * 60)})
            first = await ws.receive_json()
            assert first["done"] is False
            await ws.send_json({"context_id": "long", "action": "cancel"})
            final = await asyncio.wait_for(ws.receive_json(), 5)
            assert final == {"done": True, "context_id": "long"}
            # The socket is still usable after a cancel.
            await ws.send_json({"context_id": "next", "data": body("Next")})
            assert (await collect(ws, "next", ack=True))[-1]["done"]
    assert local_server.stats["generations_cancelled"] == before + 1


async def test_experimental_route_sends_one_chunk_per_ack(local_server):
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.ws_connect(f"{local_server.ws_url}{XWS}?api_key=k", **WS_TIMEOUT) as ws:
            await ws.send_json({"context_id": "acked", "data": body("Acknowledge every chunk")})
            got = [await ws.receive_json()]
            # Without an ack nothing more arrives.
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.receive_json(), 0.3)
            while not got[-1]["done"]:
                await ws.send_json({"context_id": "acked"})
                got.append(await asyncio.wait_for(ws.receive_json(), 5))
    assert len(got) > 3
    assert audio_of(got) == http_audio(local_server, **body("Acknowledge every chunk"))


@pytest.mark.parametrize(
    "message, status, words",
    [
        ("not json", 400, "not valid JSON"),
        ("[1]", 400, "JSON object"),
        (json.dumps({"context_id": "e", "data": {"voice": "Milo"}}), 400, "transcript"),
        (json.dumps({"context_id": "e", "data": body(" ")}), 400, "non empty"),
        (json.dumps({"context_id": "e", "data": body(voice=[1.0, 2.0])}), 422, "192"),
        (json.dumps({"context_id": "e", "data": {"transcript": "x", "voice": "Zed"}}), 400, "voice"),
        (json.dumps({"context_id": "e", "hello": 1}), 400, "unrecognised"),
        (json.dumps({"context_id": 7, "data": body()}), 400, "context_id"),
    ],
)
async def test_error_frames(local_server, message, status, words):
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.ws_connect(f"{local_server.ws_url}{WS}?api_key=k", **WS_TIMEOUT) as ws:
            await ws.send_str(message)
            err = await asyncio.wait_for(ws.receive_json(), 5)
            assert err["done"] is True and err["status_code"] == status
            assert words in err["error"]
            # Errors do not kill the socket.
            await ws.send_json({"context_id": "after", "data": body("ok")})
            assert (await collect(ws, "after"))[-1]["done"]


async def test_duplicate_active_context_is_refused(local_server):
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.ws_connect(f"{local_server.ws_url}{XWS}?api_key=k", **WS_TIMEOUT) as ws:
            await ws.send_json({"context_id": "dup", "data": body()})
            await ws.send_json({"context_id": "dup", "data": body()})
            msgs = [await ws.receive_json(), await ws.receive_json()]
            errors = [m for m in msgs if "error" in m]
            assert len(errors) == 1 and "already generating" in errors[0]["error"]


async def test_binary_message_is_refused(local_server):
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.ws_connect(f"{local_server.ws_url}{WS}?api_key=k", **WS_TIMEOUT) as ws:
            await ws.send_bytes(b"\x00\x01")
            err = await ws.receive_json()
            assert err["status_code"] == 400 and "binary" in err["error"]


async def test_upgrade_refused_with_401(make_server):
    server = make_server(api_keys=["right"])
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        for query in ("", "?api_key=wrong"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await session.ws_connect(f"{server.ws_url}{WS}{query}", **WS_TIMEOUT)
            assert info.value.status == 401
        async with session.ws_connect(f"{server.ws_url}{WS}?api_key=right", **WS_TIMEOUT) as ws:
            await ws.send_json({"context_id": "a", "data": body("ok")})
            assert (await collect(ws, "a"))[-1]["done"]


async def test_idle_timeout_closes_with_1000(make_server):
    server = make_server(ws_idle_timeout=0.3)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.ws_connect(f"{server.ws_url}{WS}?api_key=k", **WS_TIMEOUT) as ws:
            await ws.send_json({"context_id": "a", "data": body("ok")})
            await collect(ws, "a")
            msg = await asyncio.wait_for(ws.receive(), 5)
            assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 1000
            assert "idle" in msg.extra


async def test_realtime_pace_and_first_chunk_latency(make_server):
    server = make_server(pace="realtime", first_chunk_latency=0.2)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.ws_connect(f"{server.ws_url}{WS}?api_key=k", **WS_TIMEOUT) as ws:
            start = loop.time()
            await ws.send_json({"context_id": "rt", "data": body("Real time", chunk_time=0.1)})
            first = await ws.receive_json()
            t_first = loop.time() - start
            frames = [first] + await collect(ws, "rt")
            t_all = loop.time() - start
    seconds = sum(f.get("length", 0) for f in frames) / 44100
    assert t_first >= 0.2  # a lower bound only: an upper one measures the machine's load
    # Chunks leave at audio speed: the whole generation takes about latency + audio length.
    assert t_all >= 0.2 + seconds - 0.15


async def test_too_many_contexts_on_one_socket(local_server, monkeypatch):
    from cartesia.server import ws_api

    monkeypatch.setattr(ws_api, "MAX_CONTEXTS_PER_SOCKET", 2)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.ws_connect(f"{local_server.ws_url}{XWS}?api_key=k", **WS_TIMEOUT) as ws:
            for i in range(3):
                await ws.send_json({"context_id": f"cap-{i}", "data": body()})
            msgs = [await asyncio.wait_for(ws.receive_json(), 5) for _ in range(3)]
            errors = [m for m in msgs if "error" in m]
            assert len(errors) == 1 and errors[0]["status_code"] == 429
            assert errors[0]["context_id"] == "cap-2"


async def test_stop_with_open_sockets_and_running_generations(make_server):
    server = make_server(pace="realtime")
    async with aiohttp.ClientSession(headers={"X-API-Key": "k"}, timeout=TIMEOUT) as session:
        ws = await session.ws_connect(f"{server.ws_url}{WS}?api_key=k", **WS_TIMEOUT)
        await ws.send_json({"context_id": "long", "data": body("word " * 40)})
        assert (await ws.receive_json())["done"] is False
        resp = await session.post(f"{server.base_url}/v0/audio/stream", json=body("word " * 40))
        await resp.content.read(10)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await loop.run_in_executor(None, server.stop)
        assert loop.time() - start < 5
        msg = await asyncio.wait_for(ws.receive(), 5)
        while msg.type == aiohttp.WSMsgType.TEXT:  # frames sent before the stop
            assert json.loads(msg.data)["done"] is False
            msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
        resp.release()
        await ws.close()


def test_localhost_answers_on_both_loopback_families(local_server):
    import socket

    from cartesia.server.runner import _ipv6_loopback_available

    addrs = ["127.0.0.1"] + (["::1"] if _ipv6_loopback_available() else [])
    for addr in addrs:
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect((addr, local_server.port))
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            assert sock.recv(64).startswith(b"HTTP/1.1 200")
