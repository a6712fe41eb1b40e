"""The current-API clients over HTTP against the real local server: ``tts.generate``/``bytes``/
``generate_sse`` sync and async, each output format bit-exact against the tone engine, errors,
faults (truncated and dropped streams) and the constructor's environment."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any, Dict, List

import httpx
import numpy as np
import pytest
from server_fixtures import LOAD_SLACK
from test_server_v1_http import VOICE, expected_audio, headers, sse_events

from cartesia import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AsyncCartesia,
    AuthenticationError,
    BadRequestError,
    Cartesia,
    InternalServerError,
    RateLimitError,
)
from cartesia.errors import (
    CartesiaConnectionError,
    ConfigurationError,
    InvalidInputError,
    StreamFormatError,
    TruncatedStreamError,
)
from cartesia.server.audio import OutputFormat
from cartesia.server.v1.pipeline import segments
from cartesia.streaming import AudioBuffer, PCMRing
from cartesia.types import TTSSSEChunkEvent, TTSSSEErrorEvent

TEXT = "Hello there. How are you?"
MODEL = "sonic-3"
RAW = [
    {"container": "raw", "encoding": enc, "sample_rate": rate}
    for enc, rate in (("pcm_f32le", 44100), ("pcm_s16le", 24000), ("pcm_mulaw", 8000), ("pcm_alaw", 8000))
]
FILES = [
    {"container": "wav", "encoding": "pcm_s16le", "sample_rate": 22050},
    {"container": "wav", "encoding": "pcm_f32le", "sample_rate": 16000},
    {"container": "mp3", "sample_rate": 44100, "bit_rate": 64000},
]
FORMATS = RAW + FILES


def _id(fmt: Dict[str, Any]) -> str:
    return "-".join(str(v) for v in fmt.values())


def _fmt(fmt: Dict[str, Any]) -> OutputFormat:
    return OutputFormat(fmt["container"], fmt.get("encoding"), fmt["sample_rate"], fmt.get("bit_rate"))


def _want(fmt: Dict[str, Any], text: str = TEXT) -> bytes:
    if fmt["container"] == "mp3":
        pytest.importorskip("lameenc", reason="the mp3 extra is not installed")
    return expected_audio(segments(text), _fmt(fmt))


def _args(fmt: Dict[str, Any], text: str = TEXT) -> Dict[str, Any]:
    return dict(model_id=MODEL, transcript=text, voice=VOICE.id, output_format=fmt)


@pytest.fixture
def client(local_server):
    with Cartesia(api_key=local_server.api_key, base_url=local_server.base_url, timeout=20) as c:
        yield c


@pytest.fixture
async def aclient(local_server):
    async with AsyncCartesia(api_key=local_server.api_key, base_url=local_server.base_url, timeout=20) as c:
        yield c


# --- generate / bytes: every format, sync and async --------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS, ids=_id)
def test_generate_every_format_bit_exact(client, fmt, tmp_path):
    want = _want(fmt)
    response = client.tts.generate(**_args(fmt))
    assert response.read() == want and response.content == want
    chunks = list(client.tts.generate(**_args(fmt)).iter_bytes())
    assert b"".join(chunks) == want
    client.tts.generate(**_args(fmt)).write_to_file(tmp_path / "a")
    client.tts.generate(**_args(fmt)).stream_to_file(tmp_path / "b")
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes() == want
    with client.tts.with_streaming_response.generate(**_args(fmt)) as streamed:
        assert b"".join(streamed.iter_bytes()) == want


@pytest.mark.parametrize("fmt", FORMATS, ids=_id)
async def test_async_generate_every_format_bit_exact(aclient, fmt, tmp_path):
    want = _want(fmt)
    response = await aclient.tts.generate(**_args(fmt))
    assert await response.read() == want
    response = await aclient.tts.generate(**_args(fmt))
    assert b"".join([c async for c in response.iter_bytes()]) == want
    await (await aclient.tts.generate(**_args(fmt))).write_to_file(tmp_path / "a")
    await (await aclient.tts.generate(**_args(fmt))).stream_to_file(tmp_path / "b")
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes() == want
    async with aclient.tts.with_streaming_response.generate(**_args(fmt)) as streamed:
        assert b"".join([c async for c in streamed.iter_bytes()]) == want


def test_generate_streams_before_the_body_ends(local_server, client):
    # A stall after the first frame: generate() returns and the first bytes are readable
    # while the server still holds the rest (4.2.0 waits for the whole body).
    fmt = RAW[1]
    response = client.tts.generate(
        **_args(fmt), extra_headers={"X-Cartesia-Fault": f"stall;after_frames=1;seconds={1.5 + LOAD_SLACK}"}
    )
    import time

    t0 = time.monotonic()
    chunks = response.iter_bytes()
    first = next(chunks)
    assert first and time.monotonic() - t0 < 1.0 + LOAD_SLACK  # before the stall ends
    rest = b"".join(chunks)
    assert first + rest == _want(fmt)


def test_bytes_sends_duration(local_server, client):
    fmt = RAW[1]
    full = b"".join(client.tts.bytes(**_args(fmt)))
    short = b"".join(client.tts.bytes(**_args(fmt), duration=0.25))
    assert full == _want(fmt)
    body = dict(_args(fmt), voice={"mode": "id", "id": VOICE.id}, duration=0.25)
    oracle = httpx.post(local_server.base_url + "/tts/bytes", json=body, headers=headers(local_server), timeout=20)
    assert short == oracle.content and len(short) == int(0.25 * 24000) * 2


async def test_async_bytes(aclient):
    fmt = RAW[0]
    chunks = await aclient.tts.bytes(**_args(fmt))
    assert b"".join([c async for c in chunks]) == _want(fmt)


@pytest.mark.parametrize("fmt", RAW, ids=_id)
def test_generate_into_sink_and_numpy(client, fmt):
    buf = AudioBuffer(encoding=fmt["encoding"])
    buf.append(_want(fmt))
    want = buf.to_numpy()
    sink = AudioBuffer(encoding=fmt["encoding"])
    response = client.tts.generate(**_args(fmt), sink=sink)
    assert response.read() == b"" and np.array_equal(sink.to_numpy(), want)
    ring = PCMRing(len(want) + 16, encoding=fmt["encoding"])
    client.tts.generate(**_args(fmt), sink=ring)
    assert len(ring) == len(want)
    assert np.array_equal(client.tts.generate(**_args(fmt)).to_numpy(), want)


def test_sink_needs_pcm(client):
    # mp3 is a file: no sink (raw and wav go into one, see test_current_http_wav.py).
    with pytest.raises(InvalidInputError) as info:
        client.tts.generate(**_args(FILES[2]), sink=AudioBuffer())
    assert info.value.field == "sink"


# --- SSE -------------------------------------------------------------------------------------


def _server_sse(local_server, **body: Any) -> List[Dict[str, Any]]:
    resp = httpx.post(local_server.base_url + "/tts/sse", json=body, headers=headers(local_server), timeout=20)
    assert resp.status_code == 200
    return sse_events(resp.content)


def _check_events(ours: list, theirs: List[Dict[str, Any]]) -> None:
    assert [e.type for e in ours] == [e["type"] for e in theirs]
    for mine, raw in zip(ours, theirs):
        d = mine.to_dict()
        # step_time is the server's own timing: present on both, never equal across runs.
        assert (d.pop("step_time", None) is None) == (raw.pop("step_time", None) is None)
        assert d == raw, (d, raw)


@pytest.mark.parametrize("fmt", RAW, ids=_id)
def test_sse_events_match_the_server(local_server, client, fmt):
    opts = dict(context_id="ctx-1", add_timestamps=True, add_phoneme_timestamps=True)
    theirs = _server_sse(local_server, voice={"mode": "id", "id": VOICE.id}, model_id=MODEL,
                         transcript=TEXT, output_format=fmt, **opts)
    ours = list(client.tts.generate_sse(**_args(fmt), **opts))
    _check_events(ours, theirs)
    chunks = [e for e in ours if isinstance(e, TTSSSEChunkEvent)]
    assert b"".join(e.audio for e in chunks) == _want(fmt)
    assert all(e.status_code == 206 and e.step_time is not None and not e.done for e in chunks)
    words = [w for e in ours if e.type == "timestamps" for w in e.word_timestamps.words]
    assert words == ["Hello", "there.", "How", "are", "you?"]
    phonemes = [e for e in ours if e.type == "phoneme_timestamps"]
    assert phonemes and phonemes[0].timestamps.phonemes
    assert ours[-1].type == "done" and ours[-1].context_id == "ctx-1"
    assert [e.type for e in client.tts.sse(**_args(fmt))][-1] == "done"  # the alias


@pytest.mark.parametrize("fmt", RAW[:2], ids=_id)
async def test_async_sse_events_match_the_server(local_server, aclient, fmt):
    theirs = _server_sse(local_server, voice={"mode": "id", "id": VOICE.id}, model_id=MODEL,
                         transcript=TEXT, output_format=fmt, add_timestamps=True)
    stream = await aclient.tts.generate_sse(**_args(fmt), add_timestamps=True)
    _check_events([e async for e in stream], theirs)


def test_sse_into_sink(client):
    fmt = RAW[1]
    sink = AudioBuffer(encoding="pcm_s16le")
    events = list(client.tts.generate_sse(**_args(fmt), sink=sink))
    want = AudioBuffer(encoding="pcm_s16le")
    want.append(_want(fmt))
    assert all(e.audio is None for e in events if e.type == "chunk")
    assert np.array_equal(sink.to_numpy(), want.to_numpy())


def test_sse_mid_stream_error_is_yielded(local_server, client, monkeypatch):
    import cartesia.server.v1.pipeline as pipeline

    real, calls = pipeline.synthesize, []

    def failing(engine, text, *args, **kwargs):
        calls.append(text)
        if len(calls) > 1:
            raise RuntimeError("engine broke")
        return real(engine, text, *args, **kwargs)

    monkeypatch.setattr(pipeline, "synthesize", failing)
    events = list(client.tts.generate_sse(**_args(RAW[0], "First one. Second one.")))
    assert events[0].type == "chunk"
    err = events[-1]
    assert isinstance(err, TTSSSEErrorEvent) and err.type == "error" and err.done
    assert err.status_code == 500 and err.title and err.message and err.request_id


# --- errors ----------------------------------------------------------------------------------


def test_empty_transcript_is_the_servers_bad_request(client):
    with pytest.raises(BadRequestError) as info:
        client.tts.generate(**_args(FILES[0], ""))
    err = info.value
    assert err.status_code == 400 and err.request_id
    assert "transcript" in err.message and err.body["error_code"] == "invalid_request"
    assert isinstance(err, APIStatusError) and isinstance(err, APIError) and isinstance(err, ValueError)


def test_bad_key_is_authentication_error(make_server):
    server = make_server(api_keys=["right-key"])
    with Cartesia(api_key="wrong-secret-key", base_url=server.base_url) as c:
        with pytest.raises(AuthenticationError) as info:
            c.tts.generate(**_args(RAW[0]))
    assert info.value.status_code == 401 and "wrong-secret-key" not in str(info.value)


@pytest.mark.parametrize("status, cls", [(429, RateLimitError), (500, InternalServerError)])
def test_retries_then_the_status_class(local_server, server_faults, status, cls):
    server_faults.add(str(status), count=2, on="stream")
    with Cartesia(api_key=local_server.api_key, base_url=local_server.base_url, max_retries=1) as c:
        with pytest.raises(cls) as info:
            c.tts.generate(**_args(RAW[0]))
        assert info.value.status_code == status
    # max_retries=1 made two attempts: both faults are used up, the next call succeeds.
    server_faults.add(str(status), count=1, on="stream")
    with Cartesia(api_key=local_server.api_key, base_url=local_server.base_url) as c:
        assert c.tts.generate(**_args(RAW[0])).read() == _want(RAW[0])


def test_max_retries_zero_turns_retries_off(local_server, server_faults):
    server_faults.add("503", count=1, on="stream")
    with Cartesia(api_key=local_server.api_key, base_url=local_server.base_url, max_retries=0) as c:
        with pytest.raises(InternalServerError):
            c.tts.generate(**_args(RAW[0]))
        assert c.tts.generate(**_args(RAW[0])).read() == _want(RAW[0])


async def test_async_errors(local_server, aclient):
    with pytest.raises(BadRequestError):
        await aclient.tts.generate_sse(**_args(FILES[0]))  # wav is not an SSE format


def test_drop_mid_stream_is_a_connection_error(client):
    fault = {"X-Cartesia-Fault": "drop;after_frames=2"}
    with pytest.raises(APIConnectionError) as info:
        client.tts.generate(**_args(RAW[0]), extra_headers=fault).read()
    assert isinstance(info.value, CartesiaConnectionError)
    with pytest.raises(APIConnectionError):
        list(client.tts.generate_sse(**_args(RAW[0]), extra_headers=fault))


async def test_async_drop_mid_stream_is_a_connection_error(aclient):
    fault = {"X-Cartesia-Fault": "drop;after_frames=2"}
    with pytest.raises(APIConnectionError):
        await (await aclient.tts.generate(**_args(RAW[0]), extra_headers=fault)).read()
    stream = await aclient.tts.generate_sse(**_args(RAW[0]), extra_headers=fault)
    with pytest.raises(APIConnectionError):
        [e async for e in stream]


def test_malformed_sse_event_raises(client):
    fault = {"X-Cartesia-Fault": "malformed;after_frames=1"}
    with pytest.raises(StreamFormatError):
        list(client.tts.generate_sse(**_args(RAW[0]), extra_headers=fault))


class _SseWithoutDone:
    """A loopback HTTP server whose SSE body ends cleanly after one chunk, without ``done``
    (the real server never does this)."""

    BODY = b'data: {"type":"chunk","data":"AAAAAA==","done":false,"status_code":206,"step_time":1.0}\n\n'

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(10)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self._sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(next(
                line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
            ))
            while len(body) < length:
                body += conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n"
                b"Content-Length: " + str(len(self.BODY)).encode() + b"\r\n\r\n" + self.BODY
            )

    def close(self) -> None:
        self._sock.close()
        self._thread.join(10)


def test_sse_without_done_raises():
    server = _SseWithoutDone()
    try:
        with Cartesia(api_key="k", base_url=server.url) as c:
            stream = c.tts.generate_sse(**_args(RAW[0]))
            with pytest.raises(TruncatedStreamError):
                for _ in stream:
                    pass
    finally:
        server.close()


def test_connect_refused_is_a_connection_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with Cartesia(api_key="k", base_url=f"http://127.0.0.1:{port}", max_retries=0) as c:
        with pytest.raises(APIConnectionError) as info:
            c.tts.generate(**_args(RAW[0]))
    assert not isinstance(info.value, APITimeoutError)


def test_read_timeout_is_an_api_timeout(client):
    fault = {"X-Cartesia-Fault": "stall;after_frames=1;seconds=2"}
    with pytest.raises(APITimeoutError):
        client.tts.generate(**_args(RAW[0]), extra_headers=fault, timeout=0.5).read()


# --- constructor -----------------------------------------------------------------------------


def test_environment_and_defaults(local_server, monkeypatch):
    monkeypatch.setenv("CARTESIA_API_KEY", local_server.api_key)
    monkeypatch.setenv("CARTESIA_BASE_URL", local_server.base_url)
    monkeypatch.delenv("CARTESIA_WEBSOCKET_BASE_URL", raising=False)
    with Cartesia() as c:
        assert c.api_key == local_server.api_key and c.max_retries == 2
        assert c.websocket_base_url == local_server.base_url.replace("http://", "ws://")
        assert local_server.api_key not in repr(c)
        assert c.tts.generate(**_args(RAW[0])).read() == _want(RAW[0])
    monkeypatch.setenv("CARTESIA_WEBSOCKET_BASE_URL", "wss://example.test:9")
    assert Cartesia().websocket_base_url == "wss://example.test:9"
    assert Cartesia(token="tok").api_key == "tok"  # an explicit token wins over the environment
    assert Cartesia(api_key="a", token="tok").api_key == "a"


def test_version_override_and_default_query(local_server):
    # 2024-11-13 answers errors in the old {"error", "status_code"} shape.
    with Cartesia(
        api_key=local_server.api_key,
        base_url=local_server.base_url,
        default_headers={"Cartesia-Version": "2024-11-13"},
        default_query={"unused": "1"},
    ) as c:
        with pytest.raises(BadRequestError) as info:
            c.tts.generate(**_args(RAW[0], ""))
    assert set(info.value.body) == {"error", "status_code"}


@pytest.mark.parametrize(
    "kwargs",
    [{"base_url": "localhost:8000"}, {"websocket_base_url": "http://x"}, {"timeout": -1},
     {"max_retries": -1}],
)
def test_bad_configuration(kwargs):
    with pytest.raises(ConfigurationError):
        Cartesia(api_key="k", **kwargs)


def test_async_client_does_not_block_its_loop(local_server):
    async def main() -> float:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.ensure_future(ticker())
        async with AsyncCartesia(api_key=local_server.api_key, base_url=local_server.base_url) as c:
            fault = {"X-Cartesia-Fault": "stall;after_frames=1;seconds=0.5"}
            await (await c.tts.generate(**_args(RAW[0]), extra_headers=fault)).read()
        stop.set()
        await task
        return ticks

    assert asyncio.run(main()) >= 20  # ~50 while the stream stalled for 0.5 s


# --- per-phase timeouts (the v0 client's options) ----------------------------------------------


def test_chunk_gap_and_first_audio_timeouts(client):
    from cartesia.errors import ChunkGapTimeoutError, FirstAudioTimeoutError, TotalTimeoutError

    stall = {"X-Cartesia-Fault": "stall;after_frames=1;seconds=6"}
    import time

    t0 = time.monotonic()
    with pytest.raises(ChunkGapTimeoutError) as info:
        client.tts.generate(**_args(RAW[0]), extra_headers=stall, chunk_gap_timeout=0.4).read()
    assert isinstance(info.value, APITimeoutError) and time.monotonic() - t0 < 2.5 + LOAD_SLACK
    with pytest.raises(ChunkGapTimeoutError):
        list(client.tts.generate_sse(**_args(RAW[0]), extra_headers=stall, chunk_gap_timeout=0.4))
    with pytest.raises(TotalTimeoutError):
        client.tts.generate(**_args(RAW[0]), extra_headers=stall, total_timeout=0.6).read()
    first = {"X-Cartesia-Fault": "stall;after_frames=0;seconds=3"}
    with pytest.raises(FirstAudioTimeoutError):
        client.tts.generate(**_args(RAW[0]), extra_headers=first, first_audio_timeout=0.4).read()
    # Generous limits change nothing.
    ok = client.tts.generate(**_args(RAW[0]), first_audio_timeout=10, chunk_gap_timeout=10, total_timeout=20)
    assert ok.read() == _want(RAW[0])


async def test_async_chunk_gap_timeout(aclient):
    from cartesia.errors import ChunkGapTimeoutError

    stall = {"X-Cartesia-Fault": "stall;after_frames=1;seconds=6"}
    response = await aclient.tts.generate(**_args(RAW[0]), extra_headers=stall, chunk_gap_timeout=0.4)
    with pytest.raises(ChunkGapTimeoutError):
        await response.read()
    stream = await aclient.tts.generate_sse(**_args(RAW[0]), extra_headers=stall, chunk_gap_timeout=0.4)
    with pytest.raises(ChunkGapTimeoutError):
        [e async for e in stream]
    ok = await aclient.tts.generate(**_args(RAW[0]), chunk_gap_timeout=10, total_timeout=20)
    assert await ok.read() == _want(RAW[0])


# --- metrics ---------------------------------------------------------------------------------


def test_metrics_of_bytes_and_sse(client):
    seen = []
    response = client.tts.generate(**_args(RAW[1]), on_metrics=seen.append)
    body = response.read()
    m = response.metrics
    assert seen == [m] and m.status == "done" and m.bytes == len(body) and m.chunks >= 1
    assert m.attempts == 1 and 0 < m.ttfb <= m.ttfa <= m.duration
    stream = client.tts.generate_sse(**_args(RAW[1]), on_metrics=seen.append)
    audio = b"".join(e.audio for e in stream if e.type == "chunk")
    assert seen[-1] is stream.metrics and stream.metrics.status == "done"
    assert stream.metrics.bytes == len(audio) == len(_want(RAW[1]))
    with pytest.raises(APIConnectionError):
        client.tts.generate(**_args(RAW[1]), extra_headers={"X-Cartesia-Fault": "drop;after_frames=2"},
                            on_metrics=seen.append).read()
    assert seen[-1].status == "error" and "Connection" in seen[-1].error


async def test_async_metrics(aclient):
    seen = []
    response = await aclient.tts.generate(**_args(RAW[1]), on_metrics=seen.append)
    body = await response.read()
    assert seen[0].status == "done" and seen[0].bytes == len(body)
    stream = await aclient.tts.generate_sse(**_args(RAW[1]), on_metrics=seen.append)
    [e async for e in stream]
    assert seen[-1].status == "done" and seen[-1].bytes == len(_want(RAW[1]))
