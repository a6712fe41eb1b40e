"""The floor clients of ``floor.py`` are correct: bit-exact tone audio on every transport, any read cuts.

Not part of ``python -m pytest`` (``testpaths = ["tests"]``); run with ``pytest benchmarks/test_floor.py``.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import struct
from typing import Any, Dict, Iterator, List

import pytest

from cartesia.server import LocalServer
from cartesia.server.audio import OutputFormat, StreamEncoder, synthesize
from cartesia.server.engines.tone import ToneEngine
from cartesia.server.generation import Renderer, parse_generation
from cartesia.server.voices import CATALOGUE

from .floor import AsyncFloorClient, Chunked, FloorClient, FloorError, Frames

TEXT = "Floor clients, bit exact: every sample as the tone engine made it."
VOICE = CATALOGUE[0]
F32 = {"container": "raw", "encoding": "pcm_f32le", "sample_rate": 44100}


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(engine="tone", pace="none") as srv:
        yield srv


def v0_body() -> Dict[str, Any]:
    return {"transcript": TEXT, "model_id": "genial-planet-1346", "voice": list(VOICE.embedding)}


def v1_body() -> Dict[str, Any]:
    return {"model_id": "sonic-3", "transcript": TEXT, "voice": {"mode": "id", "id": VOICE.id}, "output_format": F32}


def expected(transport: str) -> bytes:
    """What the tone engine renders for the request (computed here, not by the server)."""
    engine = ToneEngine()
    if transport in ("http", "ws"):
        return Renderer(engine).render_sync(parse_generation(v0_body())).samples.astype("<f4").tobytes()
    encoder = StreamEncoder(OutputFormat("raw", "pcm_f32le", 44100), engine.sample_rate)
    return encoder.header() + encoder.feed(synthesize(engine, TEXT, VOICE).samples) + encoder.finish()


TRANSPORTS = ("http", "sse", "bytes", "ws", "ctx")


def body_of(transport: str) -> Dict[str, Any]:
    return v0_body() if transport in ("http", "ws") else v1_body()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_sync_floor_is_bit_exact_and_reuses_its_socket(server: LocalServer, transport: str) -> None:
    client = FloorClient(server.base_url, server.api_key)
    try:
        first = b"".join(client.stream(transport, body_of(transport)))
        sock = client._socks[transport]
        second = b"".join(client.stream(transport, body_of(transport)))
        assert client._socks[transport] is sock  # one connection, two generations
        assert client.first_byte is not None
    finally:
        client.close()
    want = expected(transport)
    assert len(want) > 100_000
    assert first == want and second == want


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_async_floor_is_bit_exact(server: LocalServer, transport: str) -> None:
    client = AsyncFloorClient(server.base_url, server.api_key)
    try:
        got = []
        for _ in range(2):
            parts = [a async for a in client.stream(transport, body_of(transport))]
            got.append(b"".join(parts))
        assert len(client._protos) == 1
    finally:
        await client.close()
    assert got == [expected(transport)] * 2


def test_floor_reports_server_errors(server: LocalServer) -> None:
    bad = dict(v1_body(), voice={"mode": "id", "id": "no-such-voice"})
    client = FloorClient(server.base_url, server.api_key)
    try:
        with pytest.raises(FloorError, match="HTTP 4"):
            list(client.stream("sse", bad))
    finally:
        client.close()
    client = FloorClient(server.base_url, server.api_key)
    try:
        with pytest.raises(FloorError, match="error frame"):
            list(client.stream("ctx", bad))
    finally:
        client.close()


# --- the sans-IO readers under every read boundary -------------------------------------------------


def chunked_response(pieces: List[bytes]) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in pieces)
    return head + body + b"0\r\n\r\n"


def cuts(data: bytes, rng: random.Random, max_read: int) -> List[bytes]:
    out, pos = [], 0
    while pos < len(data):
        n = rng.randint(1, max_read)
        out.append(data[pos : pos + n])
        pos += n
    return out


def test_chunked_any_read_boundaries() -> None:
    rng = random.Random(7)
    pieces = [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300))) for _ in range(20)]
    wire = chunked_response(pieces)
    for max_read in (1, 2, 3, 7, 64, len(wire)):
        resp, body = Chunked(), b""
        for read in cuts(wire, rng, max_read):
            body += b"".join(bytes(p) for p in resp.feed(read))
        assert resp.done and resp.status == 200
        assert body == b"".join(pieces), max_read


def test_chunked_content_length_error_body() -> None:
    wire = b'HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\n\r\n{"e": "no"}'
    resp = Chunked()
    body = b"".join(bytes(p) for read in cuts(wire, random.Random(1), 5) for p in resp.feed(read))
    assert resp.status == 400 and resp.done and body == b'{"e": "no"}'


def server_frame(payload: bytes, op: int = 1, fin: bool = True) -> bytes:
    n = len(payload)
    b0 = (0x80 if fin else 0) | op
    if n < 126:
        return bytes([b0, n]) + payload
    if n < 65536:
        return bytes([b0, 126]) + struct.pack(">H", n) + payload
    return bytes([b0, 127]) + struct.pack(">Q", n) + payload


def test_frames_any_read_boundaries() -> None:
    rng = random.Random(3)
    messages = [json.dumps({"i": i, "data": "A" * size}).encode() for i, size in enumerate((10, 200, 70_000, 0, 5))]
    wire = b""
    for msg in messages[:2]:
        wire += server_frame(msg)
    # A fragmented message with a ping between its fragments, then the large one and the rest.
    wire += server_frame(messages[2][:1000], 1, fin=False) + server_frame(b"hi", 9)
    wire += server_frame(messages[2][1000:5000], 0, fin=False) + server_frame(messages[2][5000:], 0)
    for msg in messages[3:]:
        wire += server_frame(msg)
    for max_read in (1, 3, 9, 127, 4096, len(wire)):
        frames, got = Frames(), []
        for read in cuts(wire, rng, max_read):
            got += [(op, bytes(p)) for op, p in frames.feed(read)]
        assert got == [(1, messages[0]), (1, messages[1]), (9, b"hi"), (1, messages[2]),
                       (1, messages[3]), (1, messages[4])], max_read


def test_frames_reject_masked_server_frames() -> None:
    with pytest.raises(FloorError, match="masked"):
        Frames().feed(bytes([0x81, 0x80 | 2]) + b"\x00" * 6)


def test_floor_client_frames_are_masked_and_valid() -> None:
    """What the floor sends decodes back (checked against a hand-rolled unmask)."""
    from .floor import ws_frame

    for payload in (b"", b"x", b"y" * 200, b"z" * 70_000):
        frame = ws_frame(payload)
        assert frame[0] == 0x81 and frame[1] & 0x80
        size, pos = frame[1] & 0x7F, 2
        if size == 126:
            size, pos = struct.unpack(">H", frame[2:4])[0], 4
        elif size == 127:
            size, pos = struct.unpack(">Q", frame[2:10])[0], 10
        mask, data = frame[pos : pos + 4], frame[pos + 4 :]
        assert size == len(payload) == len(data)
        assert bytes(b ^ mask[i % 4] for i, b in enumerate(data)) == payload


def test_floor_connection_closed_mid_response_is_an_error() -> None:
    """A server that hangs up mid-body: a clear error, never a hang (bounded by a socket timeout)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def serve() -> None:
            conn, _ = await loop.sock_accept(listener)
            await loop.sock_recv(conn, 65536)
            await loop.sock_sendall(conn, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
            conn.close()

        task = asyncio.ensure_future(serve())
        client = AsyncFloorClient(f"127.0.0.1:{port}", "k")
        try:
            with pytest.raises(FloorError, match="connection"):
                await asyncio.wait_for(_drain(client.stream("bytes", {})), 10)
        finally:
            await client.close()
            await task

    listener.setblocking(False)
    try:
        asyncio.run(main())
    finally:
        listener.close()


async def _drain(stream: Any) -> None:
    async for _ in stream:
        pass
