"""Long generations are rendered as sent: a client that does not read costs only the look-ahead."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import time
from typing import Callable

import httpx
import pytest
from server_fixtures import split_json_objects

from cartesia.server.engines.tone import ToneEngine
from cartesia.server.generation import Renderer, parse_generation

LOOKAHEAD = 64 * 1024
#: Long enough for 60 s of tone audio (the duration caps it).
LONG = "Every word counts, and this text goes on and on. " * 60
CONTEXTS = 8
#: Largest frame of a 0.1 s chunk (4410 float32 samples in base64 plus the JSON around them).
FRAME_BYTES = 4 * 4410 * 4 // 3 + 200
BOUND = 15.0


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        match = re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)
    assert match
    return int(match.group(1)) * 1024


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def ws_text_frame(text: str) -> bytes:
    """A masked websocket text frame (what a client sends)."""
    payload = text.encode()
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x81, 0x80 | n])
    elif n < 65536:
        head = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x81, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def non_reading_websocket(port: int) -> socket.socket:
    """A websocket client that does the handshake and then never reads again."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.settimeout(BOUND)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        b"GET /v0/audio/websocket?api_key=k HTTP/1.1\r\nHost: localhost\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        piece = sock.recv(1)
        assert piece, "closed during the handshake"
        head += piece
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock


def test_non_reading_websocket_holds_only_the_lookahead(make_server):
    server = make_server(engine="tone", lookahead_bytes=LOOKAHEAD)
    stats, renderer = server.stats, server.state.renderer
    before = rss_bytes()
    started = stats["generations_started"]
    sock = non_reading_websocket(server.port)
    try:
        for i in range(CONTEXTS):
            body = {"transcript": LONG, "voice": "Milo", "duration": 60}
            sock.sendall(ws_text_frame(json.dumps({"context_id": f"c{i}", "data": body})))
        wait_for(lambda: stats["generations_started"] == started + CONTEXTS, "all contexts")

        # Wait until the server can send no more: the client's socket buffers are full.
        def stalled() -> bool:
            sent = stats["audio_frames_sent"]
            time.sleep(0.3)
            return sent > 0 and stats["audio_frames_sent"] == sent

        wait_for(stalled, "the sender to stall on the non-reading socket")
        # Far from done: 8 x 600 frames do not fit in the socket buffers.
        assert stats["audio_frames_sent"] < CONTEXTS * 600 // 2
        assert stats["generations_completed"] == 0
        assert renderer.open_generations == CONTEXTS
        # What the server holds per generation is the look-ahead, not 60 s of audio (~14 MB).
        assert 0 < renderer.peak_buffered_bytes <= LOOKAHEAD + FRAME_BYTES
        assert renderer.buffered_bytes <= CONTEXTS * (LOOKAHEAD + FRAME_BYTES)
        # The old server held each whole generation: ~35 MB each, 280 MB here.
        assert rss_bytes() - before < 100 * 1024 * 1024
        gauges = httpx.get(server.base_url + "/_emulator/stats", headers={"X-API-Key": "k"}).json()
        assert gauges["buffered_peak_bytes"] == renderer.peak_buffered_bytes
        assert gauges["lookahead_bytes"] == LOOKAHEAD
    finally:
        sock.close()
    # Closing the socket ends the generations and frees what they held.
    wait_for(lambda: renderer.open_generations == 0, "the generations to end")
    assert renderer.buffered_bytes == 0
    wait_for(lambda: renderer.buffered_bytes == 0, "the look-ahead to be released")


@pytest.mark.parametrize("chunk_time", [0.1, 1.0])
def test_a_long_generation_streams_bit_identical_within_the_lookahead(make_server, chunk_time):
    server = make_server(engine="tone", lookahead_bytes=LOOKAHEAD)
    body = {"transcript": LONG, "voice": "Milo", "duration": 60, "chunk_time": chunk_time}
    resp = httpx.post(
        server.base_url + "/v0/audio/stream", json=body, headers={"X-API-Key": "k"}, timeout=60
    )
    assert resp.status_code == 200
    frames = split_json_objects(resp.content)
    expected = Renderer(ToneEngine()).render_sync(parse_generation(body))
    assert len(expected.samples) == 60 * 44100
    got = b"".join(base64.b64decode(f["data"]) for f in frames)
    assert got == expected.samples.tobytes()
    assert [f["length"] for f in frames] == expected.lengths + [0]
    assert frames[-1]["done"] is True
    frame_bytes = max(len(f) for f in expected.http_frames)
    assert 0 < server.state.renderer.peak_buffered_bytes <= LOOKAHEAD + frame_bytes
    assert server.state.renderer.buffered_bytes == 0


def test_engine_failure_mid_stream_cuts_http_and_errors_only_that_context(make_server):
    import asyncio

    import aiohttp
    from server_fixtures import WS_TIMEOUT

    server = make_server(engine="tone", lookahead_bytes=LOOKAHEAD)
    engine = server.state.engine
    real_stream = engine.stream

    def failing_stream(text, voice, speed=1.0, max_seconds=None):
        pulled = 0
        for piece in real_stream(text, voice, speed, max_seconds):
            if "fail" in text and pulled > 2 * 44100:
                raise RuntimeError("engine gave up")
            pulled += len(piece)
            yield piece

    engine.stream = failing_stream
    long_fail = {"transcript": "fail " + LONG, "voice": "Milo", "duration": 30}
    with pytest.raises(httpx.HTTPError):
        with httpx.stream(
            "POST", server.base_url + "/v0/audio/stream", json=long_fail,
            headers={"X-API-Key": "k"}, timeout=30,
        ) as resp:  # fmt: skip
            assert resp.status_code == 200
            for _ in resp.iter_bytes():
                pass

    async def over_websocket() -> None:
        url = f"{server.ws_url}/v0/audio/websocket?api_key=k"
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url, **WS_TIMEOUT) as ws:
                await ws.send_json({"context_id": "bad", "data": long_fail})
                ok = {"transcript": "Fine words.", "voice": "Milo"}
                await ws.send_json({"context_id": "good", "data": ok})
                ends = {}
                while len(ends) < 2:
                    msg = await asyncio.wait_for(ws.receive_json(), 10)
                    if msg["done"]:
                        ends[msg["context_id"]] = msg
                assert ends["bad"]["status_code"] == 500
                assert ends["bad"]["error"] == "generation failed: RuntimeError: engine gave up"
                assert ends["good"] == {"done": True, "context_id": "good"}

    asyncio.run(over_websocket())
    wait_for(lambda: server.state.renderer.open_generations == 0, "the generations to end")


def test_streamed_pieces_are_the_whole_rendering():
    import numpy as np

    from cartesia.server.engines.resample import BLOCK, iter_upsample, resample_poly
    from cartesia.server.transcribe import Fingerprint, TranscriptionRegistry
    from cartesia.server.voices import VOICES_BY_NAME

    milo = VOICES_BY_NAME["milo"]
    tone = ToneEngine()
    pieces = list(tone.stream(LONG, milo, 1.0, 3.0))
    assert len(pieces) > 10
    assert np.concatenate(pieces).tobytes() == tone.synthesize(LONG, milo, 1.0, 3.0).tobytes()
    # The speech engine's block-wise resampling gives the numbers of the one-go resampler.
    rng = np.random.default_rng(7)
    for n in (0, 1000, BLOCK, 3 * BLOCK + 17):
        pcm = rng.integers(-32768, 32767, n).astype("<i2")
        whole = resample_poly(pcm.astype(np.float64) / 32768.0, 2)
        assert np.concatenate(list(iter_upsample(pcm, 2, 32768.0))).tobytes() == whole.tobytes()
    # A fingerprint built chunk by chunk is the whole audio's fingerprint.
    audio = np.concatenate(pieces)
    whole_fp, chunked = Fingerprint(44100), Fingerprint(44100)
    whole_fp.update(audio)
    for start in range(0, len(audio), 4410):
        chunked.update(audio[start : start + 4410])
    assert chunked.digest == whole_fp.digest
    assert np.array_equal(chunked.features, whole_fp.features)
    registry = TranscriptionRegistry()
    registry.add(chunked, "the text")
    assert registry.recognise(audio.astype("<f4").tobytes()) == "the text"
