"""The synthesis engines: bit-exact tone audio, real espeak-ng speech, the resampler, voices."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from server_fixtures import audio_of, split_json_objects

from cartesia.server.engines import create_engine, default_engine_name, speech_available
from cartesia.server.engines.resample import resample_poly
from cartesia.server.engines.tone import ToneEngine
from cartesia.server.voices import CATALOGUE, VOICES_BY_NAME, voice_for_embedding

RATE = 44100
SENTENCE = "Hello! Welcome to Cartesia. This is a test of the voice."


def f0_estimate(x: np.ndarray, rate: int = RATE) -> float:
    """Median autocorrelation pitch over voiced 2048-sample frames (0.0 when none is voiced)."""
    n, out = 2048, []
    lo, hi = rate // 400, rate // 60
    for s in range(0, len(x) - n, n):
        frame = x[s : s + n] - x[s : s + n].mean()
        if np.sqrt(np.mean(frame**2)) < 0.02:
            continue
        ac = np.correlate(frame, frame, "full")[n - 1 :]
        k = lo + int(np.argmax(ac[lo:hi]))
        if ac[k] > 0.3 * ac[0]:
            out.append(rate / k)
    return float(np.median(out)) if out else 0.0


def centroid(x: np.ndarray, rate: int = RATE) -> float:
    spectrum = np.abs(np.fft.rfft(x))
    return float((spectrum * np.fft.rfftfreq(len(x), 1 / rate)).sum() / spectrum.sum())


# --- tone engine -----------------------------------------------------------------------------


def test_tone_is_bit_exact_and_text_shaped():
    engine = ToneEngine()
    milo = VOICES_BY_NAME["milo"]
    a = engine.synthesize("Hello world", milo)
    assert a.dtype == np.float32 and a.ndim == 1
    assert a.tobytes() == ToneEngine().synthesize("Hello world", milo).tobytes()
    assert a.tobytes() != engine.synthesize("Hello worle", milo).tobytes()
    assert a.tobytes() != engine.synthesize("Hello world", VOICES_BY_NAME["olivia"]).tobytes()
    short, long = engine.synthesize("Hi", milo), engine.synthesize("Hi " * 20, milo)
    assert len(long) > 10 * len(short)
    assert np.max(np.abs(a)) <= 1.0 and np.sqrt(np.mean(a.astype(np.float64) ** 2)) > 0.05
    # Faster models speak faster.
    assert len(engine.synthesize("Hello world", milo, 1.12)) < len(a)


def test_tone_bit_exact_end_to_end(local_server):
    """What the client receives is exactly what the engine produced."""
    h = {"X-API-Key": "k"}
    body = {"transcript": "Bit exact, end to end.", "voice": "Graham", "chunk_time": 0.2}
    received = audio_of(
        split_json_objects(httpx.post(local_server.base_url + "/v0/audio/stream", json=body, headers=h).content)
    )
    expected = ToneEngine().synthesize(body["transcript"], VOICES_BY_NAME["graham"]).astype("<f4")
    assert received == expected.tobytes()


def test_engine_selection():
    assert default_engine_name() == ("speech" if speech_available() else "tone")
    assert create_engine("tone").name == "tone"
    with pytest.raises(ValueError, match="unknown engine"):
        create_engine("opera")


# --- voices ----------------------------------------------------------------------------------


def test_nearest_and_derived_voices():
    milo = VOICES_BY_NAME["milo"]
    noisy = np.asarray(milo.embedding) + np.random.default_rng(0).normal(0, 0.002, 192)
    assert voice_for_embedding(list(noisy)) is milo
    other = list(np.random.default_rng(1).normal(0, 1, 192))
    derived = voice_for_embedding(other)
    assert derived.id.startswith("derived-") and derived not in CATALOGUE
    assert voice_for_embedding(other) == derived
    assert voice_for_embedding([0.0] * 192).id.startswith("derived-")


def test_catalogue_voices_are_distinct():
    assert len({(v.espeak, v.pitch) for v in CATALOGUE}) == len(CATALOGUE)
    assert len({v.f0 for v in CATALOGUE}) == len(CATALOGUE)


# --- resampler ------------------------------------------------------------------------------


def test_resampler_is_band_limited_and_aligned():
    t = np.arange(22050) / 22050
    x = np.sin(2 * np.pi * 440 * t)
    y = resample_poly(x, 2)
    assert len(y) == 44100
    ref = np.sin(2 * np.pi * 440 * np.arange(44100) / 44100)
    assert np.max(np.abs(y[2000:-2000] - ref[2000:-2000])) < 1e-3
    # No image of a 5 kHz tone at 22.05 - 5 = 17.05 kHz.
    y = resample_poly(np.sin(2 * np.pi * 5000 * t), 2)
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1 / 44100)
    image = spectrum[np.argmin(np.abs(freqs - 17050))]
    assert 20 * np.log10(image / spectrum.max()) < -70
    assert len(resample_poly(np.ones(44100), 160, 441)) == 16000
    with pytest.raises(ValueError):
        resample_poly(x, 0)


# --- speech engine ---------------------------------------------------------------------------


@pytest.mark.speech
def test_speech_is_nonsilent_with_plausible_duration(speech_server):
    h = {"X-API-Key": "k"}
    body = {"transcript": SENTENCE, "voice": "Milo"}
    resp = httpx.post(speech_server.base_url + "/v0/audio/stream", json=body, headers=h, timeout=30)
    frames = split_json_objects(resp.content)
    assert frames[0]["sampling_rate"] == 44100
    x = np.frombuffer(audio_of(frames), "<f4").astype(np.float64)
    seconds = len(x) / RATE
    # 11 words at ~170 wpm plus pauses: a few seconds, not milliseconds and not minutes.
    assert 2.0 < seconds < 7.0
    rms = np.sqrt(np.mean(x**2))
    assert rms > 0.03 and np.max(np.abs(x)) < 1.0
    # Mostly voiced speech (pitch found), not noise.
    assert 70 < f0_estimate(x) < 200
    # Longer text, longer audio.
    body["transcript"] = SENTENCE + " " + SENTENCE
    resp = httpx.post(speech_server.base_url + "/v0/audio/stream", json=body, headers=h, timeout=30)
    longer = len(audio_of(split_json_objects(resp.content))) / 4 / RATE
    assert 1.7 * seconds < longer < 2.3 * seconds


@pytest.mark.speech
def test_speech_voices_differ_measurably(speech_server):
    pytest.importorskip("espeakng_loader")
    engine = create_engine("speech")
    measured = {}
    for name in ("milo", "olivia", "ezra", "luna", "graham", "theo"):
        x = engine.synthesize(SENTENCE, VOICES_BY_NAME[name]).astype(np.float64)
        measured[name] = (f0_estimate(x), centroid(x))
    f0 = {k: v[0] for k, v in measured.items()}
    # Female voices sit well above male ones; the low male voice below the default one.
    assert f0["olivia"] > 1.5 * f0["milo"] and f0["luna"] > 1.5 * f0["theo"]
    assert f0["ezra"] < f0["milo"] * 0.95
    # Every pair differs in pitch or spectral centroid by a clear margin.
    names = list(measured)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            (fa, ca), (fb, cb) = measured[a], measured[b]
            assert abs(fa - fb) / max(fa, fb) > 0.05 or abs(ca - cb) / max(ca, cb) > 0.05, (a, b)


@pytest.mark.speech
def test_speech_transcription_round_trip(speech_server):
    h = {"X-API-Key": "k"}
    body = {"transcript": "Offline speech, recognised again.", "voice": "Olivia"}
    base = speech_server.base_url + "/v0"
    audio = audio_of(split_json_objects(httpx.post(base + "/audio/stream", json=body, headers=h).content))
    resp = httpx.post(base + "/audio/transcriptions", files={"clip": ("input.wav", audio)}, headers=h)
    assert resp.json() == {"text": body["transcript"]}


def test_blockwise_upsampling_equals_one_pass():
    from cartesia.server.engines import resample

    x = np.random.default_rng(0).standard_normal(3 * resample.BLOCK + 123)
    h = resample.design_lowpass(2, 1)
    assert np.array_equal(resample.resample_poly(x, 2), resample._resample_full(x, 2, 1, h))


def test_audio_is_capped_early(monkeypatch):
    from cartesia.server import generation
    from cartesia.server.generation import Renderer, parse_generation

    milo = VOICES_BY_NAME["milo"]
    text = "Hello world, again and again. " * 40
    full = ToneEngine().synthesize(text, milo)
    capped = ToneEngine().synthesize(text, milo, max_seconds=1.0)
    assert len(full) > 30 * RATE and RATE <= len(capped) < 2 * RATE
    assert capped[:RATE].tobytes() == full[:RATE].tobytes()
    # Without `duration` the server-wide cap applies.
    monkeypatch.setattr(generation, "MAX_DURATION", 1.5)
    rendition = Renderer(ToneEngine()).render_sync(parse_generation({"transcript": text, "voice": "Milo"}))
    assert len(rendition.samples) == int(1.5 * RATE)


@pytest.mark.speech
def test_speech_stops_early_for_capped_audio(speech_server):
    engine = create_engine("speech")
    milo = VOICES_BY_NAME["milo"]
    capped = engine.synthesize("word " * 2000, milo, max_seconds=2.0)
    assert 2.0 <= len(capped) / RATE < 2.5
    # The aborted synthesis leaves the library ready for the next request.
    normal = engine.synthesize(SENTENCE, milo)
    assert 2.0 < len(normal) / RATE < 7.0 and f0_estimate(normal.astype(np.float64)) > 70
