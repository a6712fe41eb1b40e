"""output_format validation and the stream encoder: raw at every rate, streamed WAV, real MP3 frames."""

from __future__ import annotations

import io
import itertools
import struct
import sys
import wave

import numpy as np
import pytest

from cartesia.server.audio import FormatError, OutputFormat, StreamEncoder, encode_pcm, parse_output_format
from cartesia.server.audio.encode import UNKNOWN_SIZE
from cartesia.server.audio.formats import ENCODINGS, MP3_BIT_RATES, SAMPLE_RATES
from cartesia.server.engines.resample import Resampler
from cartesia.server.engines.tone import ToneEngine
from cartesia.server.voices import VOICES_BY_NAME

SOURCE = 44100
# Real engine audio: 3.6 s of bit-exact tone speech.
SPEECH = ToneEngine().synthesize("Hello, world! This is the audio layer speaking. " * 2, VOICES_BY_NAME["milo"])


def raw(encoding: str, rate: int) -> OutputFormat:
    return parse_output_format({"container": "raw", "encoding": encoding, "sample_rate": rate}, route="bytes")


def encode_in_blocks(fmt: OutputFormat, x: np.ndarray, cuts, **kw) -> bytes:
    enc = StreamEncoder(fmt, SOURCE, **kw)
    out = [enc.header()]
    for a, b in zip([0] + cuts, cuts + [len(x)]):
        out.append(enc.feed(x[a:b]))
    out.append(enc.finish())
    return b"".join(out)


def random_cuts(n: int, seed: int):
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(np.arange(1, n), size=40, replace=False).tolist())


# --- parse_output_format ---------------------------------------------------------------------


def test_every_raw_format_parses_on_every_route():
    for route, encoding, rate in itertools.product(("bytes", "sse", "websocket"), ENCODINGS, SAMPLE_RATES):
        fmt = parse_output_format({"container": "raw", "encoding": encoding, "sample_rate": rate}, route=route)
        assert fmt == OutputFormat("raw", encoding, rate)
        assert fmt.bytes_per_sample == ENCODINGS[encoding]
        assert fmt.content_type() == "application/octet-stream"
    wav = parse_output_format({"container": "wav", "encoding": "pcm_s16le", "sample_rate": 44100}, route="bytes")
    assert wav.content_type() == "audio/wav" and wav.bytes_per_sample == 2
    mp3 = parse_output_format({"container": "mp3", "sample_rate": 44100}, route="bytes")
    assert mp3 == OutputFormat("mp3", None, 44100, 128000)
    assert mp3.content_type() == "audio/mpeg" and mp3.bytes_per_sample == 0
    # 8 kHz MP3 (MPEG-2.5) carries at most 64 kbit/s: that is the default there.
    assert parse_output_format({"container": "mp3", "sample_rate": 8000}, route="bytes").bit_rate == 64000


@pytest.mark.parametrize(
    "obj, route, message",
    [
        ("raw", "bytes", "output_format must be an object"),
        (
            {"encoding": "pcm_f32le", "sample_rate": 44100},
            "bytes",
            r"output_format.container must be one of raw, wav, mp3 \(missing\)",
        ),
        (
            {"container": "flac", "encoding": "pcm_f32le", "sample_rate": 44100},
            "bytes",
            "output_format.container must be one of",
        ),
        ({"container": "raw", "sample_rate": 44100}, "bytes", "output_format.encoding must be one of pcm_f32le"),
        ({"container": "raw", "encoding": "pcm_s24le", "sample_rate": 44100}, "bytes", "output_format.encoding"),
        (
            {"container": "raw", "encoding": "pcm_f32le"},
            "bytes",
            "output_format.sample_rate must be one of 8000, 16000",
        ),
        ({"container": "raw", "encoding": "pcm_f32le", "sample_rate": 44000}, "sse", r"sample_rate .*\(got 44000\)"),
        ({"container": "raw", "encoding": "pcm_f32le", "sample_rate": 44100.0}, "bytes", "output_format.sample_rate"),
        ({"container": "raw", "encoding": "pcm_f32le", "sample_rate": "44100"}, "bytes", "output_format.sample_rate"),
        ({"container": "raw", "encoding": "pcm_f32le", "sample_rate": True}, "bytes", "output_format.sample_rate"),
        ({"container": "raw", "encoding": ["x"] * 50, "sample_rate": 44100}, "bytes", r"got \['x', 'x'.*\.\.\.\)"),
        (
            {"container": "wav", "encoding": "pcm_s16le", "sample_rate": 44100},
            "sse",
            "container 'wav' is only available on /tts/bytes",
        ),
        (
            {"container": "wav", "encoding": "pcm_s16le", "sample_rate": 44100},
            "websocket",
            "use 'raw' on /tts/websocket",
        ),
        ({"container": "mp3", "sample_rate": 44100, "bit_rate": 128000}, "sse", "container 'mp3' is only available"),
        (
            {"container": "mp3", "sample_rate": 44100, "bit_rate": 320000},
            "bytes",
            "output_format.bit_rate must be one of 32000, 64000",
        ),
        (
            {"container": "mp3", "sample_rate": 24000, "bit_rate": 192000},
            "bytes",
            "bit_rate 192000 is not possible in MP3 at sample_rate 24000",
        ),
        ({"container": "mp3", "sample_rate": 8000, "bit_rate": 96000}, "bytes", r"at most 64000"),
    ],
)
def test_bad_formats_name_the_field(obj, route, message):
    with pytest.raises(FormatError, match=message):
        parse_output_format(obj, route=route)


def test_format_error_is_a_value_error_and_routes_are_checked():
    assert issubclass(FormatError, ValueError)
    with pytest.raises(ValueError, match="unknown route"):
        parse_output_format({"container": "raw"}, route="grpc")


def test_mp3_without_the_extra_names_the_install_command(monkeypatch):
    # A None entry in sys.modules makes `import lameenc` raise ImportError, as when not installed.
    monkeypatch.setitem(sys.modules, "lameenc", None)
    with pytest.raises(FormatError, match=r"pip install 'cartesia\[mp3\]'"):
        parse_output_format({"container": "mp3", "sample_rate": 44100, "bit_rate": 128000}, route="bytes")
    # Raw and WAV do not need it.
    assert parse_output_format({"container": "wav", "encoding": "pcm_alaw", "sample_rate": 8000}, route="bytes")


# --- raw ---------------------------------------------------------------------------------------


def test_raw_at_the_engine_rate_is_the_engine_output_bit_for_bit():
    fmt = raw("pcm_f32le", SOURCE)
    assert encode_in_blocks(fmt, SPEECH, random_cuts(len(SPEECH), 1)) == SPEECH.astype("<f4").tobytes()


@pytest.mark.parametrize("rate", SAMPLE_RATES)
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_raw_is_resampled_then_encoded_whatever_the_blocks(encoding, rate):
    fmt = raw(encoding, rate)
    r = Resampler(rate, SOURCE)
    expected = encode_pcm(np.concatenate([r.feed(SPEECH), r.finish()]), encoding)
    assert len(expected) == -(-len(SPEECH) * rate // SOURCE) * ENCODINGS[encoding]
    for seed in range(3):
        assert encode_in_blocks(fmt, SPEECH, random_cuts(len(SPEECH), seed)) == expected


# --- wav ---------------------------------------------------------------------------------------


def read_riff(data: bytes):
    """A plain RIFF/WAVE reader: ``(riff_size, fmt fields, fact, data)``; a data size of
    0xFFFFFFFF means "to the end of the stream"."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    riff_size = struct.unpack("<I", data[4:8])[0]
    pos, fmt, fact = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = data[pos + 8 : pos + 8 + size] if size != UNKNOWN_SIZE else data[pos + 8 :]
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16]) + ((struct.unpack("<H", body[16:18])[0],) if size >= 18 else ())
        elif cid == b"fact":
            fact = struct.unpack("<I", body)[0]
        elif cid == b"data":
            assert size == UNKNOWN_SIZE or size == len(body)
            return riff_size, fmt, fact, body
        pos += 8 + size + (size & 1)
    raise AssertionError("no data chunk")


WAV_TAGS = {"pcm_s16le": 1, "pcm_f32le": 3, "pcm_alaw": 6, "pcm_mulaw": 7}


@pytest.mark.parametrize("known_length", [True, False], ids=["exact-sizes", "streamed"])
@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("rate", [8000, 24000, 44100])
def test_wav_is_a_riff_file_a_plain_reader_can_read(encoding, rate, known_length):
    fmt = parse_output_format({"container": "wav", "encoding": encoding, "sample_rate": rate}, route="bytes")
    kw = {"total_source_samples": len(SPEECH)} if known_length else {}
    data = encode_in_blocks(fmt, SPEECH, random_cuts(len(SPEECH), rate), **kw)
    riff_size, fields, fact, body = read_riff(data)
    width = ENCODINGS[encoding]
    assert fields[:6] == (WAV_TAGS[encoding], 1, rate, rate * width, width, 8 * width)
    assert body == encode_in_blocks(raw(encoding, rate), SPEECH, [])
    frames = len(body) // width
    if known_length:
        assert riff_size == len(data) - 8
        assert fact in (None, frames)
    else:
        assert riff_size == UNKNOWN_SIZE and fact in (None, UNKNOWN_SIZE)
    # Non-PCM formats carry cbSize = 0 and a fact chunk; PCM has neither.
    assert (len(fields) == 7 and fields[6] == 0 and fact is not None) == (encoding != "pcm_s16le")


@pytest.mark.parametrize("known_length", [True, False], ids=["exact-sizes", "streamed"])
def test_wav_s16_opens_with_the_wave_module(known_length):
    fmt = parse_output_format({"container": "wav", "encoding": "pcm_s16le", "sample_rate": 22050}, route="bytes")
    kw = {"total_source_samples": len(SPEECH)} if known_length else {}
    data = encode_in_blocks(fmt, SPEECH, random_cuts(len(SPEECH), 5), **kw)
    expected = encode_in_blocks(raw("pcm_s16le", 22050), SPEECH, [])
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 22050)
        if known_length:
            assert w.getnframes() == len(expected) // 2
        # A streamed header says "as long as the stream": reading gets exactly what was sent.
        assert w.readframes(w.getnframes()) == expected


def test_wav_header_sizes_exact_when_told_unknown_otherwise():
    fmt = parse_output_format({"container": "wav", "encoding": "pcm_s16le", "sample_rate": 44100}, route="bytes")
    exact = StreamEncoder(fmt, SOURCE, total_source_samples=1000).header()
    assert len(exact) == 44 and struct.unpack("<I", exact[40:44])[0] == 2000
    assert struct.unpack("<I", exact[4:8])[0] == 36 + 2000
    streamed = StreamEncoder(fmt, SOURCE).header()
    assert struct.unpack("<I", streamed[4:8])[0] == UNKNOWN_SIZE == struct.unpack("<I", streamed[40:44])[0]
    assert StreamEncoder(raw("pcm_s16le", 44100), SOURCE).header() == b""


# --- mp3 ---------------------------------------------------------------------------------------

_MPEG1_KBPS = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]
_MPEG2_KBPS = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def mp3_frames(data: bytes):
    """Walk MPEG audio layer III frames: ``[(bit_rate, sample_rate, length)]``; they must tile
    ``data`` exactly."""
    frames, pos = [], 0
    while pos < len(data):
        (h,) = struct.unpack(">I", data[pos : pos + 4])
        assert h >> 21 == 0x7FF, f"no frame sync at byte {pos}"
        version, layer = (h >> 19) & 3, (h >> 17) & 3
        assert version in _RATES and layer == 1, "not MPEG layer III"
        kbps = (_MPEG1_KBPS if version == 3 else _MPEG2_KBPS)[(h >> 12) & 0xF]
        rate = _RATES[version][(h >> 10) & 3]
        length = (144 if version == 3 else 72) * kbps * 1000 // rate + ((h >> 9) & 1)
        frames.append((kbps * 1000, rate, length))
        pos += length
    assert pos == len(data), "the last frame is cut"
    return frames


MP3_CASES = [
    (rate, br)
    for rate in SAMPLE_RATES
    for br in MP3_BIT_RATES
    if br <= {8000: 64000, 16000: 160000, 22050: 160000, 24000: 160000}.get(rate, 192000)
]


@pytest.mark.parametrize("rate, bit_rate", MP3_CASES)
def test_mp3_frames_carry_the_requested_rate_and_bit_rate(rate, bit_rate):
    pytest.importorskip("lameenc", reason="lameenc (the `mp3` extra) is in the test extra")
    fmt = parse_output_format({"container": "mp3", "sample_rate": rate, "bit_rate": bit_rate}, route="bytes")
    data = encode_in_blocks(fmt, SPEECH, random_cuts(len(SPEECH), 3))
    frames = mp3_frames(data)
    assert {(f[0], f[1]) for f in frames} == {(bit_rate, rate)}
    seconds = len(SPEECH) / SOURCE
    # CBR: bytes per second of audio match the bit rate (the encoder adds about one frame).
    per_frame = 1152 if rate >= 32000 else 576
    assert len(frames) * per_frame / rate == pytest.approx(seconds, abs=3 * per_frame / rate)
    assert len(data) / seconds == pytest.approx(bit_rate / 8, rel=0.08)


@pytest.mark.parametrize("container", ["raw", "mp3"])
def test_finish_is_final(container):
    if container == "mp3":
        pytest.importorskip("lameenc", reason="lameenc (the `mp3` extra) is in the test extra")
    obj = {"container": container, "encoding": "pcm_s16le", "sample_rate": 16000}
    enc = StreamEncoder(parse_output_format(obj, route="bytes"), SOURCE)
    enc.feed(SPEECH[:5000])
    assert enc.finish() and enc.finish() == b""
    with pytest.raises(RuntimeError, match="after finish"):
        enc.feed(SPEECH[:10])


def test_mp3_does_not_depend_on_the_block_split():
    pytest.importorskip("lameenc", reason="lameenc (the `mp3` extra) is in the test extra")
    fmt = parse_output_format({"container": "mp3", "sample_rate": 24000, "bit_rate": 64000}, route="bytes")
    whole = encode_in_blocks(fmt, SPEECH, [])
    assert encode_in_blocks(fmt, SPEECH, random_cuts(len(SPEECH), 9)) == whole
    assert StreamEncoder(fmt, SOURCE).header() == b""
