"""``/tts/bytes`` audio into a sink or numpy: WAV (its streamed header parsed without trusting the
size fields) and raw PCM, split at odd byte boundaries, bit-exact against the tone engine and
checked against an independent decoding (``wave``/numpy) of what ``read()`` returns; mp3 passes
through untouched; malformed or unsupported headers raise a typed error."""

from __future__ import annotations

import http.server
import io
import struct
import threading
import wave
from typing import Any, Dict, Iterator, Tuple

import numpy as np
import pytest
from test_current_http import RAW, _args, _want

from cartesia import AsyncCartesia, Cartesia
from cartesia._current.wav import WavStream, wav_payload
from cartesia.errors import InvalidInputError, StreamFormatError
from cartesia.streaming import AudioBuffer, PCMRing

WAV = [dict(fmt, container="wav") for fmt in RAW]
MP3 = {"container": "mp3", "sample_rate": 44100, "bit_rate": 64000}


def _id(fmt: Dict[str, Any]) -> str:
    return f"{fmt['container']}-{fmt['encoding']}"


@pytest.fixture
def client(local_server) -> Iterator[Cartesia]:
    with Cartesia(api_key=local_server.api_key, base_url=local_server.base_url, timeout=20) as c:
        yield c


# --- an independent decoder (no cartesia code) -------------------------------------------------


def _chunks(body: bytes) -> Tuple[bytes, bytes]:
    """(fmt chunk, data payload) of a WAV body whose data chunk runs to the end."""
    assert body[:4] == b"RIFF" and body[8:12] == b"WAVE"
    pos, fmt = 12, b""
    while True:
        cid, size = body[pos : pos + 4], struct.unpack("<I", body[pos + 4 : pos + 8])[0]
        if cid == b"data":
            return fmt, body[pos + 8 :]
        if cid == b"fmt ":
            fmt = body[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)


def _g711(codes: np.ndarray, encoding: str) -> np.ndarray:
    c = codes.astype(np.int32)
    if encoding == "pcm_mulaw":
        u = ~c & 0xFF
        mag = (((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 7)
        lin = np.where(u & 0x80, 0x84 - mag, mag - 0x84)
    else:
        a = c ^ 0x55
        seg = (a >> 4) & 7
        t = (a & 0x0F) << 4
        t = np.where(seg == 0, t + 8, np.where(seg == 1, t + 0x108, (t + 0x108) << np.maximum(seg - 1, 0)))
        lin = np.where(a & 0x80, t, -t)
    return (lin.astype(np.float32) / np.float32(32768)).astype(np.float32)


def independent_samples(body: bytes, encoding: str) -> np.ndarray:
    """Float32 samples of a WAV body, decoded with the standard library and numpy only."""
    fmt, payload = _chunks(body)
    tag, channels, _rate, _brate, _align, bits = struct.unpack("<HHIIHH", fmt[:16])
    assert channels == 1
    if encoding == "pcm_s16le":
        assert (tag, bits) == (1, 16)
        with wave.open(io.BytesIO(body)) as w:  # the stdlib reads 16-bit PCM WAV
            frames = w.readframes(w.getnframes())
        assert frames == payload
        return (np.frombuffer(frames, "<i2").astype(np.float32) / np.float32(32768)).astype(np.float32)
    if encoding == "pcm_f32le":
        assert (tag, bits) == (3, 32)
        return np.frombuffer(payload, "<f4")
    assert (tag, bits) == ({"pcm_alaw": 6, "pcm_mulaw": 7}[encoding], 8)
    return _g711(np.frombuffer(payload, np.uint8), encoding)


# --- WAV and raw into a sink / numpy, bit-exact ------------------------------------------------


@pytest.mark.parametrize("fmt", WAV, ids=_id)
def test_wav_into_sink_and_numpy_is_bit_exact(client, fmt):
    enc = fmt["encoding"]
    body = client.tts.generate(**_args(fmt)).read()
    assert body == _want(fmt)  # the tone engine's WAV, whole
    assert _chunks(body)[1] == _want(dict(fmt, container="raw"))  # its payload: the raw route's PCM
    want = independent_samples(body, enc)
    assert len(want) > 1000
    sink = AudioBuffer(encoding=enc)
    response = client.tts.generate(**_args(fmt), sink=sink)
    assert response.read() == b"" and np.array_equal(sink.to_numpy(), want)
    ring = PCMRing(len(want) + 8, encoding=enc)
    client.tts.generate(**_args(fmt), sink=ring)
    assert len(ring) == len(want) and np.array_equal(ring.read(len(want)), want)
    assert np.array_equal(client.tts.generate(**_args(fmt)).to_numpy(), want)


@pytest.mark.parametrize("fmt", WAV + RAW, ids=_id)
@pytest.mark.parametrize("piece", [1, 3, 5, 7])
def test_odd_chunk_boundaries_carry_partial_samples(client, fmt, piece):
    # Chunks of 1/3/5/7 bytes split samples (and the WAV header) everywhere.
    enc = fmt["encoding"]
    body = client.tts.generate(**_args(fmt)).read()
    want = independent_samples(body, enc) if fmt["container"] == "wav" else independent_samples(
        _want(dict(fmt, container="wav")), enc
    )
    sink = AudioBuffer(encoding=enc)
    response = client.tts.generate(**_args(fmt))
    assert response.drain_into(sink, chunk_size=piece) == len(want)
    assert sink.pending_bytes == 0 and np.array_equal(sink.to_numpy(), want)


@pytest.mark.parametrize("fmt", [WAV[0], WAV[1], RAW[0]], ids=_id)
def test_server_split_writes_into_sink(client, fmt):
    # The server writes every frame in 3-byte pieces: real small TCP segments, not our slicing.
    enc = fmt["encoding"]
    want = independent_samples(_want(dict(fmt, container="wav")), enc)
    sink = AudioBuffer(encoding=enc)
    client.tts.generate(**_args(fmt), sink=sink, extra_headers={"X-Cartesia-Fault": "split;piece=3"})
    assert np.array_equal(sink.to_numpy(), want)


@pytest.mark.parametrize("fmt", WAV, ids=_id)
async def test_async_wav_into_sink_and_numpy(local_server, fmt):
    enc = fmt["encoding"]
    want = independent_samples(_want(fmt), enc)
    async with AsyncCartesia(api_key=local_server.api_key, base_url=local_server.base_url) as c:
        sink = AudioBuffer(encoding=enc)
        response = await c.tts.generate(**_args(fmt), sink=sink)
        assert await response.read() == b"" and np.array_equal(sink.to_numpy(), want)
        assert np.array_equal(await (await c.tts.generate(**_args(fmt))).to_numpy(), want)
        other = AudioBuffer(encoding=enc)
        await (await c.tts.generate(**_args(fmt))).drain_into(other, chunk_size=3)
        assert np.array_equal(other.to_numpy(), want)


# --- mp3 and mismatched sinks ------------------------------------------------------------------------


def test_mp3_passes_through_and_refuses_sinks_and_numpy(client):
    pytest.importorskip("lameenc", reason="the mp3 extra is not installed")
    assert client.tts.generate(**_args(MP3)).read() == _want(MP3)
    with pytest.raises(InvalidInputError) as info:
        client.tts.generate(**_args(MP3), sink=AudioBuffer())
    assert info.value.field == "sink" and "mp3" in str(info.value)
    with pytest.raises(InvalidInputError) as info:
        client.tts.generate(**_args(MP3)).to_numpy()
    assert info.value.field == "output_format"


def test_a_sink_of_another_encoding_is_refused_before_the_request(local_server, client):
    before = local_server.stats["http_requests"]
    with pytest.raises(InvalidInputError) as info:
        client.tts.generate(**_args(WAV[1]), sink=PCMRing(100, encoding="pcm_f32le"))
    assert info.value.field == "sink" and "pcm_s16le" in str(info.value)
    assert local_server.stats["http_requests"] == before


# --- malformed bodies from a real (hand-written) server ---------------------------------------


class _FixedBody:
    """A loopback HTTP server answering every POST with 200 and ``body``."""

    def __init__(self, body: bytes) -> None:
        payload = body

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _FixedBody:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


def _header(tag: int = 1, bits: int = 16, channels: int = 1, rate: int = 24000, extra: bytes = b"") -> bytes:
    width = bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * width * channels, width * channels, bits)
    return b"RIFF\xff\xff\xff\xffWAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra + b"data\0\0\0\0"


@pytest.mark.parametrize(
    "body, match",
    [
        (b"ID3\x04" + bytes(100), "RIFF"),  # an mp3 where WAV was asked for
        (_header(tag=2, bits=4) + bytes(10), "unsupported sample format"),  # ADPCM
        (_header(bits=24) + bytes(12), "unsupported sample format"),
        (b"RIFF\0\0\0\0WAVEdata\0\0\0\0" + bytes(8), "before the fmt chunk"),
        (b"RIFF\0\0\0\0WAVEfmt ", "ended inside its header"),
        (_header() + b"\x01", "do not form a whole sample"),
    ],
)
def test_malformed_wav_raises_a_typed_error(body, match):
    with _FixedBody(body) as server, Cartesia(api_key="k", base_url=server.url, max_retries=0) as c:
        with pytest.raises(StreamFormatError, match=match):
            c.tts.generate(**_args(WAV[1]), sink=AudioBuffer(encoding="pcm_s16le"))
        with pytest.raises(StreamFormatError, match=match):
            c.tts.generate(**_args(WAV[1])).to_numpy()


def test_a_wav_of_another_encoding_than_asked_raises():
    with _FixedBody(_header(tag=3, bits=32) + bytes(8)) as server, Cartesia(api_key="k", base_url=server.url) as c:
        with pytest.raises(StreamFormatError, match="pcm_f32le, not the pcm_s16le"):
            c.tts.generate(**_args(WAV[1]), sink=AudioBuffer(encoding="pcm_s16le"))


def test_raw_body_ending_inside_a_sample_raises():
    with _FixedBody(bytes(7)) as server, Cartesia(api_key="k", base_url=server.url) as c:
        with pytest.raises(StreamFormatError, match="3 byte"):
            c.tts.generate(**_args(RAW[0]), sink=AudioBuffer())  # f32: 7 bytes = 1 sample + 3


# --- the header parser on its own ----------------------------------------------------------------


def test_header_parser_skips_chunks_and_ignores_size_fields():
    pcm = np.arange(-50, 50, dtype="<i2").tobytes()
    # An odd-sized LIST chunk (padded), a fact chunk, and size fields that are plainly wrong.
    extra = b"LIST" + struct.pack("<I", 5) + b"abcde\0" + b"fact" + struct.pack("<II", 4, 3)
    body = _header(extra=extra) + pcm
    for piece in (1, 2, 7, len(body)):
        stream, out = WavStream(), b""
        for i in range(0, len(body), piece):
            out += stream.feed(body[i : i + piece])
        stream.close()
        assert out == pcm and stream.format is not None
        assert (stream.format.encoding, stream.format.sample_rate, stream.format.channels) == ("pcm_s16le", 24000, 1)


def test_header_parser_reads_wave_format_extensible():
    sub = struct.pack("<H", 3) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 2, 16000, 16000 * 8, 8, 32, 22, 32, 3) + sub
    body = b"RIFF\0\0\0\0WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data\xff\xff\xff\xff" + bytes(16)
    found, payload = wav_payload(body)
    assert (found.encoding, found.sample_rate, found.channels) == ("pcm_f32le", 16000, 2) and payload == bytes(16)


def test_header_parser_refuses_an_endless_header():
    stream = WavStream()
    stream.feed(b"RIFF\0\0\0\0WAVE")
    with pytest.raises(StreamFormatError, match="chunk before the audio"):
        stream.feed(b"junk" + struct.pack("<I", 10**8))
