"""Byte-exact sample encoders: s16 rounding, G.711 against audioop and the ITU tables, the resampler."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from cartesia._stream_py import _to_float32
from cartesia.server.audio.encode import encode_pcm, to_int16
from cartesia.server.engines.resample import Resampler, resample_poly

with warnings.catch_warnings():
    # audioop is deprecated in 3.11-3.12 (removed in 3.13, where the audioop-lts backport of the
    # test extra provides the same module): it is the independent reference here.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int32)
# Every int16 value as the float the client decodes it to, plus random and out-of-range floats.
EXACT = (ALL_INT16 / 32768.0).astype(np.float32)
RANDOM = np.random.default_rng(7).uniform(-1.05, 1.05, 200_000).astype(np.float32)


# --- float -> int16 ----------------------------------------------------------------------------


def test_s16_is_the_inverse_of_the_clients_decoding():
    # Every value the client can decode re-encodes to the same int16.
    assert np.array_equal(np.frombuffer(encode_pcm(EXACT, "pcm_s16le"), "<i2"), ALL_INT16)
    # Any float decodes back within half a step, except above 32767.5/32768 (saturation).
    x = np.clip(RANDOM, -1.0, 32767.5 / 32768)
    decoded = _to_float32("pcm_s16le", encode_pcm(x, "pcm_s16le")).astype(np.float64)
    assert np.max(np.abs(decoded - x)) <= 0.5 / 32768 + 1e-9


def test_s16_rounds_half_to_even_and_clips():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 32766.5, 40000.0, -32768.0, -40000.0]) / 32768.0
    assert to_int16(x).tolist() == [0, 2, 2, 0, -2, 32766, 32767, -32768, -32768]
    assert encode_pcm(np.array([1.0, -1.0], np.float32), "pcm_s16le") == b"\xff\x7f\x00\x80"


def test_f32_passes_in_range_samples_bit_for_bit_and_clips_the_rest():
    assert encode_pcm(EXACT, "pcm_f32le") == EXACT.astype("<f4").tobytes()
    out = np.frombuffer(encode_pcm(np.array([1.5, -2.0, 0.25], np.float32), "pcm_f32le"), "<f4")
    assert out.tolist() == [1.0, -1.0, 0.25]


def test_unknown_encoding_is_refused():
    with pytest.raises(ValueError, match="unknown encoding"):
        encode_pcm(EXACT[:4], "pcm_s24le")


# --- G.711 against audioop ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoding, reference", [("pcm_mulaw", audioop.lin2ulaw), ("pcm_alaw", audioop.lin2alaw)]
)
@pytest.mark.parametrize("samples", [EXACT, RANDOM], ids=["all-int16", "random-floats"])
def test_g711_matches_audioop_byte_for_byte(encoding, reference, samples):
    expected = reference(encode_pcm(samples, "pcm_s16le"), 2)
    got = encode_pcm(samples, encoding)
    assert len(got) == len(samples)
    assert got == expected


# --- G.711 from the ITU-T tables ---------------------------------------------------------------
# G.711 Table 2 (mu-law) and Table 1 (A-law) give, per segment, the first decision value and the
# step on the 14-bit (mu) / 13-bit (A) magnitude scale; each segment has 16 intervals. The
# character of positive interval n (0 = the one holding 0) is 0xFF - n for mu-law (all bits
# inverted) and (0x80 | n) ^ 0x55 for A-law (even bits inverted); negative values use sign bit 0.
MU_SEGMENTS = [(0, 2), (31, 4), (95, 8), (223, 16), (479, 32), (991, 64), (2015, 128), (4063, 256)]
A_SEGMENTS = [(0, 2), (32, 2), (64, 4), (128, 8), (256, 16), (512, 32), (1024, 64), (2048, 128)]


def decision_values(segments, first_interval_width=None):
    """Lower decision value of each of the 128 magnitude intervals."""
    lows = []
    for start, step in segments:
        lows += [start + k * step for k in range(16)]
    if first_interval_width is not None:
        # mu-law: interval 0 is [0, 1) and the rest of segment 0 is shifted by one.
        lows = [0] + [1 + 2 * k for k in range(15)] + lows[16:]
    return np.array(lows)


MU_LOWS = decision_values(MU_SEGMENTS, first_interval_width=1)
A_LOWS = decision_values(A_SEGMENTS)


def test_itu_decision_tables_are_what_g711_lists():
    # Spot values straight from the tables: segment ends and the overload points.
    assert MU_LOWS[:3].tolist() == [0, 1, 3] and MU_LOWS[16] == 31 and MU_LOWS[127] == 7903
    assert A_LOWS[:3].tolist() == [0, 2, 4] and A_LOWS[32] == 64 and A_LOWS[127] == 3968


def itu_encode(v: np.ndarray, lows: np.ndarray, positive, negative, neg_magnitude) -> np.ndarray:
    mag = np.where(v < 0, neg_magnitude(v), v)
    n = np.searchsorted(lows, mag, side="right") - 1
    return np.where(v < 0, negative(n), positive(n)).astype(np.uint8)


def test_mulaw_matches_the_itu_table():
    v14 = np.arange(-8192, 8192)
    # 16-bit input v * 4 is exactly the 14-bit value v (the scale G.711 defines mu-law on).
    got = np.frombuffer(encode_pcm((v14 * 4 / 32768.0).astype(np.float32), "pcm_mulaw"), np.uint8)
    expected = itu_encode(v14, MU_LOWS, lambda n: 0xFF - n, lambda n: 0x7F - n, lambda v: -v)
    assert np.array_equal(got, expected)


def test_alaw_matches_the_itu_table():
    v13 = np.arange(-4096, 4096)
    got = np.frombuffer(encode_pcm((v13 * 8 / 32768.0).astype(np.float32), "pcm_alaw"), np.uint8)
    # On the 13-bit two's-complement scale a negative value v has magnitude -v - 1 (the
    # reference CCITT mapping, symmetric about -1/2): -1 is the first negative interval.
    expected = itu_encode(
        v13, A_LOWS, lambda n: (0x80 | n) ^ 0x55, lambda n: n ^ 0x55, lambda v: -v - 1
    )
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("encoding, lows, scale", [("pcm_mulaw", MU_LOWS, 4), ("pcm_alaw", A_LOWS, 8)])
def test_g711_decodes_to_the_itu_reconstruction_values(encoding, lows, scale):
    """Server encoding then client decoding lands in the middle of the ITU interval."""
    highs = np.append(lows[1:], 2 * lows[-1] - lows[-2])
    mids = (lows + highs) / 2.0
    if encoding == "pcm_mulaw":
        mids[0] = 0.0  # the interval [0, 1) reconstructs as 0
    samples = (lows * scale / 32768.0).astype(np.float32)
    decoded = _to_float32(encoding, encode_pcm(samples, encoding)).astype(np.float64) * 32768 / scale
    assert np.allclose(decoded, mids)


# --- resampler ---------------------------------------------------------------------------------

TARGETS = [8000, 16000, 22050, 24000, 48000]


def stream(resampler: Resampler, x: np.ndarray, cuts) -> np.ndarray:
    parts = [resampler.feed(x[a:b]) for a, b in zip([0] + cuts, cuts + [len(x)])]
    return np.concatenate(parts + [resampler.finish()])


@pytest.mark.parametrize("target", TARGETS + [88200])
def test_streaming_resampler_is_independent_of_block_splits(target):
    rng = np.random.default_rng(target)
    x = rng.uniform(-1, 1, 30_000)
    whole = stream(Resampler(target, 44100), x, [])
    assert len(whole) == -(-len(x) * target // 44100)
    for trial in range(6):
        cuts = sorted(rng.choice(np.arange(1, len(x)), size=rng.integers(1, 60), replace=False).tolist())
        if trial == 0:
            cuts = list(range(1, len(x), 1))[:500]  # one sample at a time, then the rest
        assert np.array_equal(stream(Resampler(target, 44100), x, cuts), whole)
    # The same filter and alignment as the one-shot definition in resample.py.
    assert np.max(np.abs(whole - resample_poly(x, target, 44100))) < 1e-12


def tone_level_db(y: np.ndarray, rate: int, freq: float) -> float:
    """Level of ``freq`` in ``y`` relative to a full-scale sine, in dB (Hann window)."""
    w = np.hanning(len(y))
    spectrum = np.abs(np.fft.rfft(y * w)) / (w.sum() / 2)
    bins = np.fft.rfftfreq(len(y), 1 / rate)
    k = np.argmin(np.abs(bins - freq))
    return 20 * np.log10(max(spectrum[max(0, k - 3) : k + 4].max(), 1e-20))


@pytest.mark.parametrize("target", TARGETS)
def test_resampler_passes_the_band_and_rejects_what_would_alias(target):
    t = np.arange(44100) / 44100
    # One second in and out: 1 Hz FFT bins, so whole-Hz tones sit exactly on a bin.
    passband = round(0.4 * target / 2)  # well inside the new band
    y = stream(Resampler(target, 44100), np.sin(2 * np.pi * passband * t), [])
    ideal = np.sin(2 * np.pi * passband * np.arange(len(y)) / target)
    # Away from the edges (where the filter sees the zeros around the signal) it is the sine.
    assert np.max(np.abs(y - ideal)[500:-500]) < 1e-3
    if target < 44100:
        # A tone above the new Nyquist would fold down to target - f: it must (nearly) vanish.
        # The filter is -6 dB at 0.95 x Nyquist; measured at 1.1 x Nyquist: -122 dB (8, 16 and
        # 24 kHz), -113 dB (22.05 kHz); at 1.05 x: -63 dB.
        cases = [(round(1.1 * target / 2), -100.0), (round(0.5 * target + 0.2 * (22050 - 0.5 * target)), -90.0)]
        cases = [(tone, target - tone, limit) for tone, limit in cases]
    else:
        # Upsampling: the image of f at 44100 - f (folded by the new rate) must vanish (-126 dB).
        cases = [(15000, target - (44100 - 15000), -100.0)]
    for tone, alias, limit in cases:
        y = stream(Resampler(target, 44100), np.sin(2 * np.pi * tone * t), [])
        level = tone_level_db(y, target, alias)
        assert level < limit, f"{tone} Hz -> {target} Hz left {level:.1f} dB at {alias} Hz"
