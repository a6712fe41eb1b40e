"""PCMRing and AudioBuffer behaviour (encodings, leftovers, overflow, threads, sinks), per twin."""

import base64
import threading
import time

import numpy as np
import pytest

from cartesia.errors import Base64DecodeError, RingOverflowError

ENCODINGS = ["pcm_f32le", "pcm_s16le", "pcm_mulaw", "pcm_alaw"]


def f32(values):
    return np.asarray(values, dtype="<f4").tobytes()


# --- encodings -------------------------------------------------------------------------------


def test_g711_and_s16_values_are_exact(stream_mod):
    buf = stream_mod.AudioBuffer(encoding="pcm_mulaw")
    buf.append(bytes([0x00, 0x80, 0xFF, 0x7F, 0x0F]))
    # ITU-T G.711 mu-law: 0x00 -> -32124, 0x80 -> +32124, 0xFF/0x7F -> 0, 0x0F -> -16764 (as linear16 / 32768).
    assert buf.to_numpy().tolist() == [v / 32768 for v in (-32124, 32124, 0, 0, -16764)]
    buf = stream_mod.AudioBuffer(encoding="pcm_alaw")
    buf.append(bytes([0xD5, 0x55, 0xAA, 0x2A]))
    assert buf.to_numpy().tolist() == [v / 32768 for v in (8, -8, 32256, -32256)]
    buf = stream_mod.AudioBuffer(encoding="pcm_s16le")
    buf.append(np.array([-32768, -1, 0, 1, 32767], dtype="<i2").tobytes())
    assert buf.to_numpy().tolist() == [-1.0, -1 / 32768, 0.0, 1 / 32768, 32767 / 32768]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_byte_value_decodes_identically_in_both_twins(both_twins, encoding):
    raw = bytes(range(256)) * 4
    results = []
    for mod in both_twins:
        buf = mod.AudioBuffer(encoding=encoding)
        buf.append(raw)
        ring = mod.PCMRing(1024, encoding=encoding)
        ring.write(raw)
        results += [buf.to_bytes(), ring.read(1024).tobytes()]
    assert len(set(results)) == 1


def test_f32_keeps_nan_payload_bits(stream_mod):
    raw = np.array([0x7FC00001, 0xFFF00F00, 0x00000001], dtype="<u4").tobytes()
    buf = stream_mod.AudioBuffer()
    buf.append(raw)
    ring = stream_mod.PCMRing(8)
    ring.write(raw)
    assert buf.to_bytes() == raw and ring.read(8).tobytes() == raw


def test_unknown_encoding(stream_mod):
    with pytest.raises(ValueError, match="unknown encoding"):
        stream_mod.AudioBuffer(encoding="pcm_f64le")
    with pytest.raises(ValueError, match="unknown encoding"):
        stream_mod.PCMRing(8, encoding="mp3")


# --- AudioBuffer -------------------------------------------------------------------------------


def test_audio_buffer_grows_and_keeps_partial_samples(stream_mod):
    values = np.arange(10000, dtype="<f4")
    raw = values.tobytes()
    buf = stream_mod.AudioBuffer()
    total = 0
    for i in range(0, len(raw), 7):
        total += buf.append(raw[i : i + 7])
    assert total == len(buf) == 10000 and buf.pending_bytes == 0
    assert buf.to_bytes() == raw
    assert buf.to_numpy().dtype == np.float32
    assert buf.append(b"\x00\x01") == 0 and buf.pending_bytes == 2 and len(buf) == 10000
    assert buf.to_bytes() == raw  # pending bytes are not part of the audio
    buf.clear()
    assert len(buf) == 0 and buf.pending_bytes == 0 and buf.to_bytes() == b""
    assert buf.encoding == "pcm_f32le"


def test_audio_buffer_to_numpy_is_a_view(stream_mod):
    buf = stream_mod.AudioBuffer(capacity=100)
    buf.append(f32([1, 2, 3]))
    view = buf.to_numpy()
    assert view.base is not None and not view.flags.owndata
    assert np.shares_memory(view, buf.to_numpy())
    buf.clear()
    assert view.tolist() == [1.0, 2.0, 3.0]  # arrays handed out earlier stay intact


def test_audio_buffer_b64(stream_mod):
    buf = stream_mod.AudioBuffer(encoding="pcm_s16le")
    raw = np.arange(-50, 50, dtype="<i2").tobytes()
    assert buf.append_b64(base64.b64encode(raw[:3])) == 1 and buf.pending_bytes == 1
    assert buf.append_b64(base64.b64encode(raw[3:]).decode()) == 99
    assert buf.to_numpy().tolist() == [v / 32768 for v in range(-50, 50)]
    with pytest.raises(Base64DecodeError) as info:
        buf.append_b64(b"AAAA!AAA")
    assert info.value.offset == 4 and len(buf) == 100


# --- PCMRing ---------------------------------------------------------------------------------


def test_ring_wraps_and_reads_in_order(stream_mod):
    ring = stream_mod.PCMRing(10)
    assert (ring.capacity, ring.free, len(ring), ring.encoding) == (10, 10, 0, "pcm_f32le")
    assert ring.write(f32(range(7))) == 7
    assert ring.read(5).tolist() == [0, 1, 2, 3, 4]
    assert ring.write(f32(range(7, 15))) == 8  # wraps
    assert len(ring) == 10 and ring.free == 0
    out = np.zeros(4, dtype=np.float32)
    assert ring.readinto(out) == 4 and out.tolist() == [5, 6, 7, 8]
    assert ring.read(100).tolist() == [9, 10, 11, 12, 13, 14]
    assert ring.read(3).tolist() == [] and ring.readinto(out) == 0


def test_ring_overflow_writes_nothing(stream_mod):
    ring = stream_mod.PCMRing(8)
    ring.write(f32(range(6)) + b"\x01")  # 6 samples and one leftover byte
    assert ring.pending_bytes == 1
    with pytest.raises(RingOverflowError):
        ring.write(b"\x00\x00\x00" + f32([1, 2]))  # completes the sample -> 3 samples > 2 free
    assert len(ring) == 6 and ring.pending_bytes == 1 and ring.free == 2
    with pytest.raises(RingOverflowError):
        ring.write_b64(base64.b64encode(b"\x00" * 15))
    assert len(ring) == 6 and ring.pending_bytes == 1
    ring.read(1)
    assert ring.write(b"\x00\x00\x00" + f32([1, 2])) == 3  # the same write now fits
    assert ring.read(10).tobytes() == f32([1, 2, 3, 4, 5]) + b"\x01\x00\x00\x00" + f32([1, 2])


def test_ring_b64_across_the_wrap(stream_mod):
    ring = stream_mod.PCMRing(13)
    ring.write(f32(range(9)))
    ring.read(9)
    values = np.arange(100, 112, dtype="<f4")
    assert ring.write_b64(base64.b64encode(values.tobytes())) == 12
    assert ring.read(20).tobytes() == values.tobytes()
    with pytest.raises(Base64DecodeError):
        ring.write_b64("AAA=AAAA")
    assert len(ring) == 0


def test_ring_readinto_checks_its_argument(stream_mod):
    ring = stream_mod.PCMRing(4)
    with pytest.raises((TypeError, ValueError, BufferError)):
        ring.readinto(np.zeros(4, dtype=np.float64))
    with pytest.raises((TypeError, ValueError, BufferError)):
        ring.readinto(bytes(16))
    with pytest.raises(ValueError):
        stream_mod.PCMRing(0)


def test_ring_clear(stream_mod):
    ring = stream_mod.PCMRing(4)
    ring.write(f32([1, 2]) + b"\x00")
    ring.clear()
    assert len(ring) == 0 and ring.pending_bytes == 0 and ring.free == 4


def test_ring_two_threads_every_sample_in_order(stream_mod):
    total = 2_000_000  # 45 s of 44.1 kHz audio
    values = np.arange(total, dtype="<f4")
    raw = values.tobytes()
    ring = stream_mod.PCMRing(4096)
    got = np.empty(total, dtype=np.float32)
    errors = []

    def producer():
        try:
            pos, step, k = 0, 4097, 0  # odd sizes: leftovers and wraps all the time
            while pos < len(raw):
                piece = raw[pos : pos + step]
                try:
                    if k % 2:
                        ring.write_b64(base64.b64encode(piece))
                    else:
                        ring.write(piece)
                except RingOverflowError:
                    time.sleep(0)
                    continue
                pos += len(piece)
                k += 1
                step = 1 + (step * 7 + 13) % 9000
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=producer)
    thread.start()
    done = 0
    deadline = time.monotonic() + 30
    while done < total and time.monotonic() < deadline:
        n = ring.readinto(got[done : done + 1500])
        done += n
        if not n:
            time.sleep(0)
    thread.join(10)
    assert not errors and not thread.is_alive()
    assert done == total and got.tobytes() == raw


# --- sinks -------------------------------------------------------------------------------------


def test_parser_sinks_of_both_twins(stream_mod, both_twins):
    values = np.linspace(-1, 1, 1000, dtype="<f4")
    wire = b"".join(
        b'{"data": "' + base64.b64encode(values[i : i + 250].tobytes()) + b'", "done": false}'
        for i in range(0, 1000, 250)
    )
    for sink_mod in both_twins:
        for sink in (sink_mod.AudioBuffer(), sink_mod.PCMRing(1000)):
            parser = stream_mod.StreamParser(sink=sink)
            out = []
            for i in range(0, len(wire), 333):
                out += parser.feed(wire[i : i + 333])
            assert [(m.audio, m.samples) for m in out] == [(b"", 250)] * 4
            stored = sink.to_bytes() if hasattr(sink, "to_bytes") else sink.read(2000).tobytes()
            assert stored == values.tobytes()
        msg = stream_mod.parse_message(wire[: wire.index(b"}") + 1], sink=sink_mod.AudioBuffer(encoding="pcm_s16le"))
        assert msg.samples == 500


def test_parser_ring_overflow_kills_parser(stream_mod):
    wire = b'{"data": "' + base64.b64encode(bytes(40)) + b'"}'
    parser = stream_mod.StreamParser(sink=stream_mod.PCMRing(5))
    with pytest.raises(RingOverflowError):
        parser.feed(wire)
    with pytest.raises(RingOverflowError):
        parser.feed(b" ")
