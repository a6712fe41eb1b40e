"""The ``speech`` engine: real speech from the espeak-ng library bundled in ``espeakng-loader``."""

from __future__ import annotations

import bisect
import ctypes
import threading
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..voices import Voice
from . import LANGUAGES, OUTPUT_RATE, Engine, Rendering, emotion_shift
from .resample import iter_upsample, resample_poly

__all__ = ["SpeechEngine"]

# Constants from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
# Report a PHONEME event per phoneme, named in IPA.
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_PHONEME_IPA = 0x0002
_EVENT_LIST_TERMINATED, _EVENT_WORD, _EVENT_PHONEME = 0, 1, 7
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4


class _Event(ctypes.Structure):
    # espeak_EVENT. ``sample`` is the event's position in samples from the start of the
    # synthesis; ``id`` is a union whose ``char string[8]`` holds a PHONEME event's name.
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]
    # What the fields read as, for the type checker (ctypes makes them from ``_fields_``).
    type: int
    text_position: int
    sample: int
    id: bytes


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class _Library:
    """The process-wide espeak-ng instance (the C library has one global state)."""

    _instance: Optional[_Library] = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int
        data_path = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS,
            0,
            data_path,
            _INITIALIZE_DONT_EXIT | _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_PHONEME_IPA,
        )
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed (data path {data_path!r})")
        self.lib = lib
        self.rate = rate
        self.lock = threading.Lock()
        self._chunks: List[bytes] = []
        self._collected = 0
        self._limit: Optional[int] = None
        # (type, text_position, sample, phoneme name) while a synthesis wants events, else None.
        self._events: Optional[List[Tuple[int, int, int, str]]] = None
        # Keep a reference: if the callback object were collected the process would crash.
        self._callback = _CALLBACK(self._on_audio)
        lib.espeak_SetSynthCallback(self._callback)

    @classmethod
    def get(cls) -> _Library:
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _on_audio(
        self,
        wav: ctypes._Pointer[ctypes.c_short],
        numsamples: int,
        events: ctypes._Pointer[_Event],
    ) -> int:
        if numsamples > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, numsamples * 2))
            self._collected += numsamples
        if self._events is not None and events:
            i = 0
            while True:
                ev: _Event = events[i]
                if ev.type == _EVENT_LIST_TERMINATED:
                    break
                if ev.type in (_EVENT_WORD, _EVENT_PHONEME):
                    # A name can be cut inside a UTF-8 sequence at 8 bytes: drop the stub.
                    name = ev.id.decode("utf-8", "ignore") if ev.type == _EVENT_PHONEME else ""
                    self._events.append((ev.type, ev.text_position, ev.sample, name))
                i += 1
        # Returning 1 makes espeak-ng stop: enough audio for the request's duration cap.
        return 1 if self._limit is not None and self._collected >= self._limit else 0

    def synth(
        self,
        text: str,
        voice: str,
        rate: int,
        pitch: int,
        max_samples: Optional[int] = None,
        *,
        pitch_range: int = 50,
        events: Optional[List[Tuple[int, int, int, str]]] = None,
    ) -> np.ndarray:
        """int16 samples at :attr:`rate` for ``text`` (serialised by the process-wide lock).

        Synthesis stops early once ``max_samples`` have been produced. When ``events`` is a
        list, WORD and PHONEME events are appended to it as
        ``(type, 1-based text position, sample position, IPA name)``.
        """
        encoded = text.encode("utf-8") + b"\0"
        with self.lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"espeak-ng does not know the voice {voice!r}")
            # Parameters persist across calls and voice changes: set them every time.
            self.lib.espeak_SetParameter(_RATE, rate, 0)
            self.lib.espeak_SetParameter(_PITCH, pitch, 0)
            self.lib.espeak_SetParameter(_VOLUME, 100, 0)
            self.lib.espeak_SetParameter(_RANGE, pitch_range, 0)
            self._chunks = []
            self._collected = 0
            self._limit = max_samples
            self._events = events
            buf = ctypes.create_string_buffer(encoded)
            status = self.lib.espeak_Synth(
                buf, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            self.lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
            self._events = None
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with status {status}")
        return np.frombuffer(b"".join(chunks), dtype="<i2")


class SpeechEngine(Engine):
    """Real (robotic but intelligible) speech: each voice is a distinct espeak voice, variant and
    pitch; the 22.05 kHz int16 output is converted to float32 and resampled 2x to 44.1 kHz with
    a band-limited polyphase filter.
    """

    name = "speech"

    def __init__(self) -> None:
        self._lib = _Library.get()
        if OUTPUT_RATE % self._lib.rate:
            raise RuntimeError(f"unexpected espeak-ng sample rate {self._lib.rate}")
        self._up = OUTPUT_RATE // self._lib.rate

    def synthesize(
        self,
        text: str,
        voice: Voice,
        speed: float = 1.0,
        max_seconds: Optional[float] = None,
    ) -> np.ndarray:
        return self.render(text, voice, speed=speed, max_seconds=max_seconds).samples

    def stream(
        self,
        text: str,
        voice: Voice,
        speed: float = 1.0,
        max_seconds: Optional[float] = None,
    ) -> Iterator[np.ndarray]:
        # espeak-ng renders the utterance in one locked call; what is held afterwards is its
        # compact int16 output, converted and resampled one block at a time as it is pulled.
        rate = int(round(voice.rate * speed))
        max_samples = self._max_samples(max_seconds)
        pcm = self._lib.synth(text, voice.espeak, rate, voice.pitch, max_samples)
        for y in iter_upsample(pcm, self._up, divisor=32768.0):
            np.clip(y, -1.0, 1.0, out=y)
            yield y.astype(np.float32)

    def _max_samples(self, max_seconds: Optional[float]) -> Optional[int]:
        """espeak's sample budget for ``max_seconds`` of output (``None``: unbounded)."""
        if max_seconds is None:
            return None
        # A little extra so the resampler's tail does not reach the kept audio.
        return int(max_seconds * self._lib.rate) + 256

    def render(
        self,
        text: str,
        voice: Voice,
        *,
        language: Optional[str] = None,
        speed: float = 1.0,
        emotion: Optional[Sequence[str]] = None,
        max_seconds: Optional[float] = None,
        timestamps: bool = False,
    ) -> Rendering:
        rate = int(round(voice.rate * speed))
        max_samples = self._max_samples(max_seconds)
        d_pitch, d_range = emotion_shift(emotion)
        pitch = max(0, min(100, voice.pitch + d_pitch))
        events: Optional[List[Tuple[int, int, int, str]]] = [] if timestamps else None
        pcm = self._lib.synth(
            text,
            espeak_voice(voice, language),
            rate,
            pitch,
            max_samples,
            pitch_range=max(0, min(100, 50 + d_range)),
            events=events,
        )
        samples = self._to_output(pcm)
        if events is None:
            return Rendering(samples)
        words, phonemes = _timing(events, self._up, len(samples))
        return Rendering(samples, words, phonemes)

    def _to_output(self, pcm: np.ndarray) -> np.ndarray:
        x = pcm.astype(np.float64) / 32768.0
        del pcm
        y = resample_poly(x, self._up) if self._up > 1 else x
        del x
        np.clip(y, -1.0, 1.0, out=y)
        return y.astype(np.float32)


def espeak_voice(voice: Voice, language: Optional[str]) -> str:
    """The espeak-ng voice that speaks ``voice`` in ``language``: the language's espeak voice
    with the catalogue voice's variant (``+f3``); English (or no language) keeps the voice's own
    accent (``en-gb-x-rp``).
    """
    if language is None or language == "en":
        return voice.espeak
    base = LANGUAGES.get(language)
    if base is None:
        raise ValueError(f"language {language!r} is not supported")
    _, plus, variant = voice.espeak.partition("+")
    return base + plus + variant


def _timing(
    events: List[Tuple[int, int, int, str]], up: int, n: int
) -> Tuple[List[Tuple[int, int, int]], List[Tuple[str, int, int]]]:
    """Word and phoneme spans (output-rate samples) from espeak's event list.

    A phoneme lasts until the next phoneme event (unnamed ones are pauses and are not
    reported); a word runs from its WORD event to the end of its last phoneme.
    """
    phon = [(sample * up, name) for kind, _, sample, name in events if kind == _EVENT_PHONEME]
    phonemes: List[Tuple[str, int, int]] = []
    for i, (start, name) in enumerate(phon):
        end = min(phon[i + 1][0] if i + 1 < len(phon) else n, n)
        # "(en)"-style names mark a switch of language, not a sound.
        if name and not name.startswith("(") and end > start:
            phonemes.append((name, start, end))
    word_events = [(pos - 1, sample * up) for kind, pos, sample, _ in events if kind == _EVENT_WORD]
    starts = [s for _, s, _ in phonemes]
    words: List[Tuple[int, int, int]] = []
    for i, (pos, start) in enumerate(word_events):
        nxt = word_events[i + 1][1] if i + 1 < len(word_events) else n
        # The word's phonemes start in [start, nxt); phoneme spans are sorted and disjoint.
        lo, hi = bisect.bisect_left(starts, start), bisect.bisect_left(starts, max(nxt, start + 1))
        end = phonemes[hi - 1][2] if hi > lo else nxt
        words.append((pos, start, end))
    return words, phonemes
