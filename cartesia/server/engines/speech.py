"""The ``speech`` engine: real speech from the espeak-ng library bundled in ``espeakng-loader``."""

from __future__ import annotations

import ctypes
import threading
from typing import Iterator, List, Optional

import numpy as np

from ..voices import Voice
from . import OUTPUT_RATE, Engine
from .resample import iter_upsample

__all__ = ["SpeechEngine"]

# Constants from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4


class _Event(ctypes.Structure):
    # espeak_EVENT; only the leading fields are read, the union is kept for the right size.
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_uint64),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class _Library:
    """The process-wide espeak-ng instance (the C library has one global state)."""

    _instance: Optional["_Library"] = None
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
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed (data path {data_path!r})")
        self.lib = lib
        self.rate = rate
        self.lock = threading.Lock()
        self._chunks: List[bytes] = []
        self._collected = 0
        self._limit: Optional[int] = None
        # Keep a reference: if the callback object were collected the process would crash.
        self._callback = _CALLBACK(self._on_audio)
        lib.espeak_SetSynthCallback(self._callback)

    @classmethod
    def get(cls) -> "_Library":
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _on_audio(self, wav, numsamples, events) -> int:  # noqa: ANN001 - ctypes callback
        if numsamples > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, numsamples * 2))
            self._collected += numsamples
        # Returning 1 makes espeak-ng stop: enough audio for the request's duration cap.
        return 1 if self._limit is not None and self._collected >= self._limit else 0

    def synth(
        self, text: str, voice: str, rate: int, pitch: int, max_samples: Optional[int] = None
    ) -> np.ndarray:
        """int16 samples at :attr:`rate` for ``text`` (serialised by the process-wide lock).

        Synthesis stops early once ``max_samples`` have been produced.
        """
        encoded = text.encode("utf-8") + b"\0"
        with self.lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"espeak-ng does not know the voice {voice!r}")
            # Parameters persist across calls and voice changes: set them every time.
            self.lib.espeak_SetParameter(_RATE, rate, 0)
            self.lib.espeak_SetParameter(_PITCH, pitch, 0)
            self.lib.espeak_SetParameter(_VOLUME, 100, 0)
            self.lib.espeak_SetParameter(_RANGE, 50, 0)
            self._chunks = []
            self._collected = 0
            self._limit = max_samples
            buf = ctypes.create_string_buffer(encoded)
            status = self.lib.espeak_Synth(
                buf, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            self.lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
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
        return np.concatenate(list(self.stream(text, voice, speed, max_seconds)))

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
        max_samples = None
        if max_seconds is not None:
            # A little extra so the resampler's tail does not reach the kept audio.
            max_samples = int(max_seconds * self._lib.rate) + 256
        pcm = self._lib.synth(text, voice.espeak, rate, voice.pitch, max_samples)
        for y in iter_upsample(pcm, self._up, divisor=32768.0):
            np.clip(y, -1.0, 1.0, out=y)
            yield y.astype(np.float32)
