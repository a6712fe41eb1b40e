"""synthesize() for the current API, with both engines: timestamps, speed, volume, emotion, language."""

from __future__ import annotations

import time

import numpy as np
import pytest
from test_server_engines import SENTENCE, f0_estimate

from cartesia.server.audio import Speech, supported_languages, synthesize
from cartesia.server.audio.numbers import number_words
from cartesia.server.engines import LANGUAGES, create_engine
from cartesia.server.engines.tone import ToneEngine
from cartesia.server.voices import VOICES_BY_NAME

MILO = VOICES_BY_NAME["milo"]
TOKENS = SENTENCE.split()


@pytest.fixture(
    scope="module",
    params=["tone", pytest.param("speech", marks=pytest.mark.speech)],
)
def engine(request):
    if request.param == "speech":
        pytest.importorskip("espeakng_loader", reason="espeakng-loader (the `speech` extra) is not installed")
    return create_engine(request.param)


@pytest.fixture(scope="module")
def speech_engine():
    pytest.importorskip("espeakng_loader", reason="espeakng-loader (the `speech` extra) is not installed")
    return create_engine("speech")


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def assert_well_formed(items, duration: float):
    """Sorted, non-overlapping, non-empty names, within the audio."""
    prev_end = 0.0
    for name, start, end in items:
        assert name and isinstance(name, str)
        assert prev_end <= start <= end <= duration, (name, start, end, prev_end, duration)
        prev_end = end


# --- timestamps --------------------------------------------------------------------------------


def test_timestamps_are_monotone_within_and_cover_the_audio(engine):
    s = synthesize(engine, SENTENCE, MILO, timestamps=True)
    assert isinstance(s, Speech) and s.sample_rate == 44100 and s.samples.dtype == np.float32
    for items in (s.words, s.normalized_words, s.phonemes):
        assert_well_formed(items, s.duration)
    # Words as written, and as spoken (no punctuation).
    assert [w for w, _, _ in s.words] == TOKENS
    assert [w for w, _, _ in s.normalized_words] == [t.strip("!.") for t in TOKENS]
    assert s.words[0][1] < 0.3 and s.words[-1][2] > s.duration - 0.3
    # Phonemes cover the spoken words: more of them than words, spread over the whole audio.
    assert len(s.phonemes) > 2 * len(TOKENS)
    assert s.phonemes[0][1] < 0.3 and s.phonemes[-1][2] > s.duration - 0.3
    # Without the flag nothing is computed.
    assert synthesize(engine, SENTENCE, MILO).words == []


def test_word_timestamps_follow_the_audio(engine):
    """Inside the word spans there is speech, in the pauses between sentences (almost) none."""
    text = "First sentence here. Second one follows! And a third?"
    s = synthesize(engine, text, MILO, timestamps=True)
    inside = np.zeros(len(s.samples), bool)
    for _, a, b in s.words:
        inside[int(a * 44100) : int(b * 44100)] = True
    assert inside.mean() > 0.6
    assert rms(s.samples[inside]) > 4 * rms(s.samples[~inside])
    for word, a, b in s.words:
        assert rms(s.samples[int(a * 44100) : int(b * 44100)]) > 0.02, word


def test_tone_timestamps_are_the_text_layout():
    s = synthesize(ToneEngine(), "Hi, you.", MILO, timestamps=True)
    edge, letter, comma, space = 882, 2866, 3969, 1984  # 20 ms, 65 ms, 90 ms, 45 ms at 44.1 kHz
    you = edge + 2 * letter + comma + space
    assert s.words == [
        ("Hi,", edge / 44100, (edge + 2 * letter) / 44100),
        ("you.", you / 44100, (you + 3 * letter) / 44100),
    ]
    assert [p for p, _, _ in s.phonemes] == ["h", "i", "y", "o", "u"]
    assert s.phonemes[1] == ("i", (edge + letter) / 44100, (edge + 2 * letter) / 44100)


@pytest.mark.parametrize(
    "text, words",
    [
        ("0", ["zero"]),
        ("42", ["forty", "two"]),
        ("115", ["one", "hundred", "fifteen"]),
        ("2026", ["two", "thousand", "twenty", "six"]),
        ("1,234", ["one", "thousand", "two", "hundred", "thirty", "four"]),
        ("7000000", ["seven", "million"]),
        ("3.05", ["three", "point", "zero", "five"]),
        ("007", ["zero", "zero", "seven"]),
        ("1,23", None),
        ("12ab", None),
        ("1000000000000", None),
    ],
)
def test_number_words(text, words):
    assert number_words(text) == words


def test_normalized_words_spell_numbers_in_english(engine):
    text = "It's 42 o'clock, 3.5 times."
    s = synthesize(engine, text, MILO, timestamps=True)
    assert [w for w, _, _ in s.words] == text.split()
    spoken = ["It's", "forty", "two", "o'clock", "three", "point", "five", "times"]
    assert [w for w, _, _ in s.normalized_words] == spoken
    assert_well_formed(s.normalized_words, s.duration)
    # "42" is timed inside the span of the original token.
    _, a, b = s.words[1]
    assert a <= s.normalized_words[1][1] < s.normalized_words[2][2] <= b
    if engine.name == "speech":
        # espeak reports one word event per spoken number word: "two" starts where its "t" does.
        two = next(p for p in s.phonemes if p[0] == "t" and p[1] >= s.normalized_words[2][1] - 0.03)
        assert abs(two[1] - s.normalized_words[2][1]) < 0.03
    # Other languages read numbers their own way: the digits stay.
    french = synthesize(engine, "Il est 42 heures.", MILO, language="fr", timestamps=True)
    assert [w for w, _, _ in french.normalized_words] == ["Il", "est", "42", "heures"]


@pytest.mark.speech
def test_speech_timestamps_come_from_espeak(speech_engine):
    s = synthesize(speech_engine, "Hello world", MILO, timestamps=True)
    # Real IPA from espeak-ng's phoneme events.
    assert [p for p, _, _ in s.phonemes] == ["h", "ə", "l", "ˈoʊ", "w", "ˈɜː", "l", "d"]
    hello, world = s.words
    assert hello[0] == "Hello" and world[0] == "world"
    # "Hello" ends with its last phoneme, "world" starts with its first.
    assert hello[2] == s.phonemes[3][2] and world[1] <= s.phonemes[4][1]
    s = synthesize(speech_engine, "Call Smith-Jones - ok.", MILO, timestamps=True)
    assert [w for w, _, _ in s.words] == ["Call", "Smith-Jones", "ok."]
    assert [w for w, _, _ in s.normalized_words] == ["Call", "Smith", "Jones", "ok"]


# --- speed, volume, emotion --------------------------------------------------------------------


@pytest.mark.parametrize("speed, lo, hi", [(0.6, 1.35, 1.85), (1.5, 0.55, 0.8)])
def test_speed_changes_the_duration(engine, speed, lo, hi):
    base = synthesize(engine, SENTENCE, MILO).duration
    ratio = synthesize(engine, SENTENCE, MILO, speed=speed).duration / base
    assert lo < ratio < hi, ratio


@pytest.mark.parametrize("volume", [0.5, 1.5, 2.0])
def test_volume_scales_the_level(engine, volume):
    base = synthesize(engine, SENTENCE, MILO)
    louder = synthesize(engine, SENTENCE, MILO, volume=volume)
    assert np.max(np.abs(louder.samples)) <= 1.0
    ratio = rms(louder.samples) / rms(base.samples)
    if engine.name == "tone":
        # Deterministic: exactly the same samples times the gain.
        assert np.array_equal(louder.samples, base.samples * np.float32(volume))
    else:
        # espeak's peaks (~0.7) clip at 2.0, so the level rises a little less there.
        assert volume * (0.85 if volume == 2.0 else 0.93) < ratio < volume * 1.07, ratio


def test_emotion_shifts_the_pitch(engine):
    f0 = {
        emo: f0_estimate(synthesize(engine, SENTENCE, MILO, emotion=[emo] if emo else None).samples)
        for emo in ("sad", None, "happy")
    }
    assert f0["sad"] < 0.97 * f0[None] and f0["happy"] > 1.03 * f0[None], f0
    # One name (what the current API sends) or the legacy "name:intensity" list form.
    if engine.name == "tone":
        one = synthesize(engine, SENTENCE, MILO, emotion="happy").samples
        assert one.tobytes() == synthesize(engine, SENTENCE, MILO, emotion=["happy"]).samples.tobytes()
        legacy = synthesize(engine, SENTENCE, MILO, emotion=["positivity:highest"]).samples
        assert f0_estimate(legacy) > f0["happy"]


def test_tone_is_bit_exact_for_the_current_api():
    e = ToneEngine()
    kw = dict(language="fr", speed=0.8, volume=1.3, emotion=["angry"], max_seconds=1.0, timestamps=True)
    a, b = synthesize(e, SENTENCE, MILO, **kw), synthesize(ToneEngine(), SENTENCE, MILO, **kw)
    assert a.samples.tobytes() == b.samples.tobytes() and a.words == b.words and a.phonemes == b.phonemes
    # Defaults give exactly what the v0 API renders; a neutral or unknown emotion changes nothing.
    v0 = e.synthesize(SENTENCE, MILO, 1.12)
    for emotion in (None, ["neutral"], ["whimsical"]):
        assert synthesize(e, SENTENCE, MILO, speed=1.12, emotion=emotion).samples.tobytes() == v0.tobytes()


# --- language ----------------------------------------------------------------------------------


def test_supported_languages_and_unknown_ones():
    langs = supported_languages()
    assert set("en fr de es it pt ja zh ko hi nl pl ru".split()) <= set(langs)
    assert langs == tuple(LANGUAGES)
    with pytest.raises(ValueError, match="language 'xx' is not supported; choose one of en, fr"):
        synthesize(ToneEngine(), "hi", MILO, language="xx")
    with pytest.raises(ValueError, match=r"language \"\['en'\]\" is not supported"):
        synthesize(ToneEngine(), "hi", MILO, language=["en"])


@pytest.mark.speech
@pytest.mark.parametrize(
    "language, text, expected",
    [
        ("fr", "Bonjour, je suis rouge.", {"ʁ", "ɔ̃"}),
        ("de", "Ich bin nicht hier.", {"ç"}),
        ("es", "El perro corre.", {"r"}),
        ("ru", "Привет мир", {"mʲ"}),
        ("ja", "こんにちは", {"tɕ"}),
    ],
)
def test_speech_speaks_each_language_with_its_own_voice(speech_engine, language, text, expected):
    s = synthesize(speech_engine, text, MILO, language=language, timestamps=True)
    phonemes = {p.strip("ˈˌ") for p, _, _ in s.phonemes}
    assert expected <= phonemes, phonemes
    # English reads the same text with English phonemes.
    english_phonemes = synthesize(speech_engine, text, MILO, language="en", timestamps=True).phonemes
    english = {p.strip("ˈˌ") for p, _, _ in english_phonemes}
    assert not expected <= english


@pytest.mark.speech
def test_every_supported_language_speaks(speech_engine):
    for language in supported_languages():
        s = synthesize(speech_engine, "one two three", VOICES_BY_NAME["olivia"], language=language)
        assert 0.3 < s.duration < 8 and rms(s.samples) > 0.02, language


# --- bounds and bad input ----------------------------------------------------------------------


def test_max_seconds_bounds_the_work_and_the_timestamps(engine):
    text = "All work and no play makes a dull voice. " * 3000  # about half an hour of speech
    t0 = time.perf_counter()
    s = synthesize(engine, text, MILO, max_seconds=2.0, timestamps=True)
    assert time.perf_counter() - t0 < 5.0
    assert 1.9 < s.duration <= 2.0
    assert_well_formed(s.words, s.duration)
    assert s.words and s.words[-1][2] <= 2.0 and len(s.words) < 20


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"text": "  "}, "transcript must be a non-empty string"),
        ({"speed": 0.0}, "speed must be between"),
        ({"speed": float("nan")}, "speed must be a number"),
        ({"volume": 9.0}, "volume must be between"),
        ({"volume": True}, "volume must be a number"),
        ({"max_seconds": -1.0}, "max_seconds must be between"),
    ],
)
def test_bad_arguments_name_the_parameter(kw, message):
    text = kw.pop("text", "hello")
    with pytest.raises(ValueError, match=message):
        synthesize(ToneEngine(), text, MILO, **kw)
