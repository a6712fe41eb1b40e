"""The ``tone`` engine: bit-exact numpy synthesis in which every character shapes the sound."""

from __future__ import annotations

import dataclasses
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..voices import Voice
from . import OUTPUT_RATE, Engine, Rendering, emotion_shift

__all__ = ["ToneEngine"]

# Segment lengths in seconds at speed 1.0.
_LETTER = 0.065
_SPACE = 0.045
_COMMA = 0.09
_STOP = 0.18
_EDGE = 0.02
_RAMP = 0.005
# Octaves per espeak pitch unit (espeak's pitch 20 -> 90 spans about 0.85 octave).
_OCTAVE_PER_PITCH_UNIT = 0.012
# A word of the tone engine's timing: letters, digits and inner apostrophes.
_WORD = re.compile(r"[\w'’]+")


class ToneEngine(Engine):
    """Bit-exact synthesis: the same text, voice and speed always give the same float32 samples.

    Each letter becomes a short harmonic tone whose pitch depends on the character and the voice's
    base frequency, spaces and punctuation become pauses, so the audio length grows with the text
    and different texts (or voices) give different audio.
    """

    name = "tone"

    def synthesize(
        self,
        text: str,
        voice: Voice,
        speed: float = 1.0,
        max_seconds: Optional[float] = None,
    ) -> np.ndarray:
        pieces, _ = self._layout(text, voice, speed, max_seconds)
        return np.concatenate(pieces)

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
        """As :meth:`synthesize`; ``language`` does not change the tones, an emotion shifts the
        base frequency like the speech engine's pitch, and the timing is the text layout: each
        letter is a phoneme, each run of letters/digits a word."""
        d_pitch, _ = emotion_shift(emotion)
        if d_pitch:
            voice = dataclasses.replace(voice, f0=voice.f0 * 2.0 ** (d_pitch * _OCTAVE_PER_PITCH_UNIT))
        pieces, spans = self._layout(text, voice, speed, max_seconds)
        samples = np.concatenate(pieces)
        if not timestamps:
            return Rendering(samples)
        tones = {i: span for i, span in spans.items() if _is_tone(text[i])}
        phonemes = [(text[i].lower(), a, b) for i, (a, b) in sorted(tones.items())]
        words: List[Tuple[int, int, int]] = []
        for m in _WORD.finditer(text):
            inside = [tones[i] for i in range(m.start(), m.end()) if i in tones]
            if inside:
                words.append((m.start(), inside[0][0], inside[-1][1]))
        return Rendering(samples, words, phonemes)

    def _layout(
        self, text: str, voice: Voice, speed: float, max_seconds: Optional[float]
    ) -> Tuple[List[np.ndarray], Dict[int, Tuple[int, int]]]:
        """The pieces to concatenate, and each rendered character's ``(start, end)`` sample."""
        rate = OUTPUT_RATE
        limit = None if max_seconds is None else int(max_seconds * rate) + 1
        scale = 1.0 / speed
        edge = np.zeros(int(round(_EDGE * rate)), dtype=np.float32)
        pieces = [edge]
        total = len(edge)
        letter_n = int(round(_LETTER * scale * rate))
        t = np.arange(letter_n, dtype=np.float64) / rate
        ramp_n = int(round(_RAMP * rate))
        env = np.ones(letter_n, dtype=np.float64)
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp_n, dtype=np.float64) / ramp_n)
        env[:ramp_n] = ramp
        env[-ramp_n:] = ramp[::-1]
        b = voice.brightness
        weights = (1.0, b, b * b * 0.8, b * b * b * 0.6)
        norm = 0.3 / sum(weights)
        pauses = {
            kind: np.zeros(int(round(seconds * scale * rate)), dtype=np.float32)
            for kind, seconds in (("space", _SPACE), ("comma", _COMMA), ("stop", _STOP))
        }
        tones: Dict[str, np.ndarray] = {}
        spans: Dict[int, Tuple[int, int]] = {}
        for index, ch in enumerate(text):
            if limit is not None and total >= limit:
                break
            if ch.isspace():
                piece = pauses["space"]
            elif ch in ",;:":
                piece = pauses["comma"]
            elif ch in ".!?":
                piece = pauses["stop"]
            else:
                cached = tones.get(ch)
                if cached is not None:
                    piece = cached
                else:
                    code = ord(ch.lower())
                    # A pentatonic-ish step per character keeps pitches in a voice-like range.
                    step = (code * 7) % 19
                    f = voice.f0 * 2.0 ** (step / 24.0)
                    tone = np.zeros(letter_n, dtype=np.float64)
                    for k, w in enumerate(weights, start=1):
                        tone += w * np.sin(2.0 * np.pi * f * k * t)
                    # Upper-case letters are louder: case is part of the text too.
                    tone *= env * norm * (1.3 if ch.isupper() else 1.0)
                    piece = tones[ch] = tone.astype(np.float32)
            pieces.append(piece)
            spans[index] = (total, total + len(piece))
            total += len(piece)
        pieces.append(edge)
        return pieces, spans


def _is_tone(ch: str) -> bool:
    """Whether the tone engine renders ``ch`` as a tone (not a pause)."""
    return not ch.isspace() and ch not in ",;:.!?"
