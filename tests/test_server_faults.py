"""Every injected fault of the local server, seen from the client side of a real socket."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import httpx
import pytest
from server_fixtures import WS_TIMEOUT, audio_of, split_json_objects

from cartesia.server import FaultSpecError, LocalServer, parse_fault_spec
from cartesia.server.streaming import MALFORMED_HTTP_FRAME
from cartesia.server.ws_api import MALFORMED_WS_FRAME

# A server bug must fail a test, never hang it.
TIMEOUT = aiohttp.ClientTimeout(total=30)

BODY = {"transcript": "Fault injection test", "voice": "Milo"}
# For the faults that write in small pieces: a few frames are enough, and a loaded machine reads
# a whole sentence byte by byte too slowly.
SHORT_BODY = {**BODY, "duration": 0.4}
WS = "/v0/audio/websocket"


async def raw_http(server: LocalServer, body: dict, headers: dict = None) -> tuple:
    """POST /audio/stream over a bare TCP socket.

    Returns:
        (status line, list of chunk payloads as the server wrote them, ended cleanly?)
    """
    return await asyncio.wait_for(_raw_http(server, body, headers), 20)


async def _raw_http(server: LocalServer, body: dict, headers: dict = None) -> tuple:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    payload = json.dumps(body).encode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    writer.write(
        (
            f"POST /v0/audio/stream HTTP/1.1\r\nHost: localhost\r\nX-API-Key: k\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            f"Connection: close\r\n{extra}\r\n"
        ).encode()
        + payload
    )
    await writer.drain()
    status = (await reader.readline()).decode().strip()
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    chunks, clean = [], False
    try:
        while True:
            size_line = await reader.readline()
            if not size_line:
                break
            size = int(size_line.strip(), 16)
            if size == 0:
                clean = True
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()
    try:
        await writer.wait_closed()
    except ConnectionError:
        pass
    return status, chunks, clean


def frames_of(chunks: list) -> list:
    return split_json_objects(b"".join(chunks))


async def test_reference_stream_is_one_frame_per_write(local_server, server_faults):
    status, chunks, clean = await raw_http(local_server, BODY)
    assert status.endswith("200 OK") and clean
    assert len(chunks) == len(frames_of(chunks))
    assert all(c.startswith(b"{") and c.endswith(b"}") for c in chunks)


async def test_split_writes_one_byte_pieces(local_server, server_faults):
    server_faults.add("split", on="stream")
    # 0.1 s of audio: about 24,000 one-byte writes (a whole word was 300,000, which took 20 s
    # to read on a loaded CI machine).
    body = {"transcript": "Hi", "voice": "Milo", "chunk_time": 0.05, "duration": 0.1}
    status, chunks, clean = await raw_http(local_server, body)
    assert clean and {len(c) for c in chunks} == {1}
    reference = (await raw_http(local_server, body))[1]
    assert b"".join(chunks) == b"".join(reference)


async def test_split_piece_size_per_request_header(local_server, server_faults):
    status, chunks, clean = await raw_http(
        local_server, SHORT_BODY, {"X-Cartesia-Fault": "split;piece=7"}
    )
    # Each frame is split on its own, so a frame's last piece may be shorter.
    assert clean and max(len(c) for c in chunks) == 7 and len(chunks) > 3 * len(frames_of(chunks))


async def test_coalesce_writes_all_frames_at_once(local_server, server_faults):
    server_faults.add("coalesce")
    status, chunks, clean = await raw_http(local_server, BODY)
    assert clean and len(chunks) == 1 and len(frames_of(chunks)) > 5
    status, chunks, clean = await raw_http(local_server, BODY, {"X-Cartesia-Fault": "coalesce;frames=3"})
    sizes = [len(split_json_objects(c)) for c in chunks]
    assert set(sizes[:-1]) == {3}


async def test_drop_cuts_the_http_stream(local_server, server_faults):
    server_faults.add("drop", after_frames=2)
    status, chunks, clean = await raw_http(local_server, BODY)
    frames = frames_of(chunks)
    assert status.endswith("200 OK") and not clean
    assert len(frames) == 2 and not any(f["done"] for f in frames)
    # httpx sees the broken chunked body as a protocol error.
    server_faults.add("drop", after_frames=1)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(local_server.base_url + "/v0/audio/stream", json=BODY, headers={"X-API-Key": "k"})


async def test_drop_after_all_audio_keeps_done_missing(local_server, server_faults):
    server_faults.add("drop", after_frames=10_000)
    status, chunks, clean = await raw_http(local_server, BODY)
    frames = frames_of(chunks)
    assert not clean and frames and not frames[-1]["done"]


async def test_stall_pauses_mid_stream(local_server, server_faults):
    server_faults.add("stall", after_frames=2, seconds=0.4)
    gaps = []
    async with aiohttp.ClientSession(headers={"X-API-Key": "k"}, timeout=TIMEOUT) as session:
        async with session.post(local_server.base_url + "/v0/audio/stream", json=BODY) as resp:
            data = b""
            last = time.monotonic()
            async for piece in resp.content.iter_any():
                now = time.monotonic()
                gaps.append((len(split_json_objects_prefix(data)), now - last))
                data += piece
                last = now
    stall = [gap for before, gap in gaps if gap >= 0.35]
    assert len(stall) == 1
    assert split_json_objects(data)[-1]["done"] is True


def split_json_objects_prefix(data: bytes) -> list:
    """The complete objects at the start of ``data``."""
    decoder = json.JSONDecoder()
    text, pos, out = data.decode(), 0, []
    while pos < len(text):
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except ValueError:
            break
        out.append(obj)
    return out


async def test_malformed_frame_ends_the_stream(local_server, server_faults):
    server_faults.add("malformed", after_frames=1)
    status, chunks, clean = await raw_http(local_server, BODY)
    body = b"".join(chunks)
    assert clean and body.endswith(MALFORMED_HTTP_FRAME)
    assert len(split_json_objects_prefix(body)) == 1
    with pytest.raises(ValueError):
        split_json_objects(body)


@pytest.mark.parametrize("status", [401, 429, 500, 503])
def test_status_fault_for_next_n_requests(local_server, server_faults, status):
    server_faults.add(str(status), count=2, retry_after=1.5 if status == 429 else None)
    url = local_server.base_url + "/v0/voices"
    for _ in range(2):
        resp = httpx.get(url, headers={"X-API-Key": "k"})
        assert resp.status_code == status and str(status) in resp.json()["error"]
        assert resp.headers.get("Retry-After") == ("1.5" if status == 429 else None)
    assert httpx.get(url, headers={"X-API-Key": "k"}).status_code == 200


def test_status_fault_targets(local_server, server_faults):
    server_faults.add("status", status=500, on="ws")
    server_faults.add("status", status=503, on="stream")
    h = {"X-API-Key": "k"}
    assert httpx.get(local_server.base_url + "/v0/voices", headers=h).status_code == 200
    assert httpx.post(local_server.base_url + "/v0/audio/stream", json=BODY, headers=h).status_code == 503
    assert [f.on for f in server_faults.pending()] == ["ws"]
    # Health and control endpoints are never faulted.
    server_faults.add("500", count=0)
    assert httpx.get(local_server.base_url + "/").status_code == 200
    assert httpx.get(local_server.base_url + "/_emulator/faults", headers=h).status_code == 200


def test_per_request_status_header_does_not_touch_other_requests(local_server, server_faults):
    url = local_server.base_url + "/v0/voices"
    resp = httpx.get(url, headers={"X-API-Key": "k", "X-Cartesia-Fault": "429;retry_after=4"})
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "4"
    assert httpx.get(url, headers={"X-API-Key": "k"}).status_code == 200
    bad = httpx.get(url, headers={"X-API-Key": "k", "X-Cartesia-Fault": "meltdown"})
    assert bad.status_code == 400 and "meltdown" in bad.json()["error"]


def test_forever_fault(local_server, server_faults):
    server_faults.add("500", count=0, on="voices")
    for _ in range(3):
        assert httpx.get(local_server.base_url + "/v0/voices", headers={"X-API-Key": "k"}).status_code == 500
    server_faults.clear()
    assert httpx.get(local_server.base_url + "/v0/voices", headers={"X-API-Key": "k"}).status_code == 200


# --- websocket faults -----------------------------------------------------------------------


async def ws_run(server: LocalServer, query: str = "", message_extra: dict = None) -> tuple:
    """One generation on a fresh socket: (text frames received, final message type, close code)."""
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.ws_connect(f"{server.ws_url}{WS}?api_key=k{query}", **WS_TIMEOUT) as ws:
            await ws.send_json({"context_id": "f", "data": BODY, **(message_extra or {})})
            texts = []
            while True:
                msg = await asyncio.wait_for(ws.receive(), 10)
                if msg.type == aiohttp.WSMsgType.CLOSE:
                    # The code the server sent (ws.close_code may say 1006 here: aiohttp's
                    # auto-close inside a wait_for task loses it).
                    return texts, msg.type, msg.data
                if msg.type != aiohttp.WSMsgType.TEXT:
                    return texts, msg.type, ws.close_code
                texts.append(msg.data)
                try:
                    if json.loads(msg.data)["done"]:
                        return texts, None, None
                except ValueError:
                    return texts, "malformed", None


@pytest.mark.parametrize("code", [1000, 1011])
async def test_ws_close_mid_generation(local_server, server_faults, code):
    server_faults.add(f"close{code}", after_frames=3)
    texts, kind, close_code = await ws_run(local_server)
    assert len(texts) == 3 and kind == aiohttp.WSMsgType.CLOSE and close_code == code


async def test_ws_drop_gives_abnormal_closure(local_server, server_faults):
    server_faults.add("drop", after_frames=2, on="ws")
    texts, kind, close_code = await ws_run(local_server)
    assert len(texts) == 2
    assert kind in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)
    assert close_code == 1006


async def test_ws_malformed_frame(local_server, server_faults):
    server_faults.add("malformed", after_frames=2)
    texts, kind, _ = await ws_run(local_server)
    assert kind == "malformed" and texts[-1] == MALFORMED_WS_FRAME and len(texts) == 3


async def test_ws_stall(local_server, server_faults):
    server_faults.add("stall", after_frames=1, seconds=0.4, on="ws")
    start = time.monotonic()
    texts, kind, _ = await ws_run(local_server)
    assert kind is None and time.monotonic() - start >= 0.4


async def test_ws_status_fault_refuses_upgrade(local_server, server_faults):
    server_faults.add("429", retry_after=2, on="ws")
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(f"{local_server.ws_url}{WS}?api_key=k", **WS_TIMEOUT)
        assert info.value.status == 429 and info.value.headers["Retry-After"] == "2"
    texts, kind, _ = await ws_run(local_server)
    assert kind is None


@pytest.mark.parametrize("code", [1000, 1001])
async def test_ws_idle_close_between_generations(local_server, server_faults, code):
    server_faults.add("ws_idle_close", code=code, seconds=0.1)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.ws_connect(f"{local_server.ws_url}{WS}?api_key=k", **WS_TIMEOUT) as ws:
            await ws.send_json({"context_id": "a", "data": BODY})
            while not json.loads((await ws.receive()).data)["done"]:
                pass
            msg = await asyncio.wait_for(ws.receive(), 5)
            assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == code


async def test_ws_fault_from_query_applies_to_that_socket_only(local_server, server_faults):
    texts, kind, code = await ws_run(local_server, "&fault=close1011;after_frames=1")
    assert len(texts) == 1 and code == 1011
    texts, kind, code = await ws_run(local_server)
    assert kind is None


async def test_ws_fault_in_message(local_server, server_faults):
    texts, kind, code = await ws_run(local_server, message_extra={"fault": "close1000;after_frames=2"})
    assert len(texts) == 2 and code == 1000


async def test_generation_faults_respect_target(local_server, server_faults):
    server_faults.add("drop", on="stream")
    texts, kind, _ = await ws_run(local_server)
    assert kind is None
    status, chunks, clean = await raw_http(local_server, BODY)
    assert not clean and chunks == []


async def test_fault_counts(local_server, server_faults):
    server_faults.add("malformed", count=2, on="stream")
    for _ in range(2):
        assert (await raw_http(local_server, BODY))[1][-1] == MALFORMED_HTTP_FRAME
    status, chunks, clean = await raw_http(local_server, BODY)
    assert frames_of(chunks)[-1]["done"] is True
    assert len(server_faults) == 0


async def test_audio_before_a_fault_is_exact(local_server, server_faults):
    reference = frames_of((await raw_http(local_server, BODY))[1])
    server_faults.add("drop", after_frames=3)
    partial = frames_of((await raw_http(local_server, BODY))[1])
    assert audio_of(partial) == audio_of(reference[:3])


def test_spec_parser():
    faults = parse_fault_spec(" stall;after_frames=2;seconds=0.5 , split;piece=3,429;retry_after=2;count=3")
    assert [(f.kind, f.after_frames, f.seconds) for f in faults[:1]] == [("stall", 2, 0.5)]
    assert faults[1].piece == 3 and faults[2].status == 429 and faults[2].count == 3
    assert parse_fault_spec("close1000")[0].code == 1000
    assert parse_fault_spec("ws_idle_close")[0].code == 1000
    assert parse_fault_spec("ws_close")[0].code == 1011
    for bad in ("boom", "stall;seconds", "stall;seconds=x", "stall;colour=red", "status;status=200",
                "ws_close;code=999", "drop;on=moon", "stall;after_frames=-1"):
        with pytest.raises(FaultSpecError):
            parse_fault_spec(bad)


async def test_transport_specific_faults_wait_for_their_transport(local_server, server_faults):
    server_faults.add("split", piece=5)
    texts, kind, code = await ws_run(local_server)
    assert kind is None and [f.kind for f in server_faults.pending()] == ["split"]
    server_faults.add("close1011")
    status, chunks, clean = await raw_http(local_server, SHORT_BODY)
    assert clean and max(len(c) for c in chunks) == 5
    assert [f.kind for f in server_faults.pending()] == ["ws_close"]
    texts, kind, code = await ws_run(local_server)
    assert code == 1011 and len(server_faults) == 0


def test_status_fault_retry_hints_on_the_v0_routes_too(local_server):
    # Regression: the v0 routes built only Retry-After and dropped retry_after_ms/should_retry.
    url = local_server.base_url + "/v0/voices"
    spec = "503;retry_after=1;retry_after_ms=250;should_retry=false"
    resp = httpx.get(url, headers={"X-API-Key": "k", "X-Cartesia-Fault": spec}, timeout=10)
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "1"
    assert resp.headers["retry-after-ms"] == "250"
    assert resp.headers["x-should-retry"] == "false"
