"""Synthesis for the current API: an engine rendering plus volume, trimming and timestamps.

Timestamps are in seconds, sorted, non-overlapping and within the audio. ``words`` are the
transcript's own whitespace-separated tokens exactly as written (``"Hello,"``), each timed from
the first to the last engine word inside it; tokens the engine speaks as one word (espeak says
"of the" in one go) share its span in proportion to their length, and tokens with nothing to
say (a lone ``"-"``) are left out. ``normalized_words`` (what ``use_normalized_timestamps``
selects) are the spoken words without punctuation: a token splits at anything but letters,
digits, inner apostrophes and number separators (``"Smith-Jones,"`` gives ``Smith`` and
``Jones``), and in English numbers are spelled out as they are read (``"42"`` gives ``forty``
and ``two``, timed by espeak's own word events when it reports one per word).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from ..engines import LANGUAGES, Engine, Rendering
from ..voices import Voice
from .numbers import number_words

__all__ = ["Speech", "synthesize", "supported_languages"]

Timed = Tuple[str, float, float]
_TOKEN = re.compile(r"\S+")
# Tokens without a word of their own that one engine word may absorb ("of the").
_MAX_JOINED = 3
# A spoken word: a number with its separators ("1,234.5"), or letters/digits with inner
# apostrophes ("o'clock").
_WORD = re.compile(r"\d+(?:[.,]\d+)*(?![^\W_])|[^\W_]+(?:['’][^\W_]+)*")


@dataclass
class Speech:
    """Audio and timing of one generation.

    Attributes:
        samples: float32 mono at :attr:`sample_rate` (the engine rate, 44100).
        sample_rate: Hz.
        words: ``(word, start_s, end_s)`` for the transcript's tokens as written.
        phonemes: ``(phoneme, start_s, end_s)`` (IPA for the speech engine, letters for tone).
        normalized_words: ``(word, start_s, end_s)`` for the words as spoken.
    """

    samples: np.ndarray
    sample_rate: int
    words: List[Timed] = field(default_factory=list)
    phonemes: List[Timed] = field(default_factory=list)
    normalized_words: List[Timed] = field(default_factory=list)

    @property
    def duration(self) -> float:
        """Length of the audio in seconds."""
        return len(self.samples) / self.sample_rate


def supported_languages() -> Tuple[str, ...]:
    """ISO 639-1 codes both engines accept (the speech engine speaks each with an espeak-ng
    voice of that language)."""
    return tuple(LANGUAGES)


def _check_factor(name: str, value: float, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo:g} and {hi:g}")
    return float(value)


def synthesize(
    engine: Engine,
    text: str,
    voice: Voice,
    *,
    language: Optional[str] = None,
    speed: float = 1.0,
    volume: float = 1.0,
    emotion: Union[str, Sequence[str], None] = None,
    max_seconds: Optional[float] = None,
    timestamps: bool = False,
) -> Speech:
    """Render ``text`` for the current API.

    Args:
        engine: The server's engine.
        text: Non-empty transcript.
        voice: The voice to speak with.
        language: ISO code from :func:`supported_languages`; ``None`` = the voice's language.
        speed: Speaking-rate factor (the API allows 0.6-1.5; 0.25-4 is accepted here).
        volume: Gain factor (the API allows 0.5-2.0; 0-4 accepted); the result is clipped to
            -1..1.
        emotion: An emotion name or a list of them; they shift the pitch a little (see
            :func:`cartesia.server.engines.emotion_shift`).
        max_seconds: Cut the audio (and the engine's work) at this length.
        timestamps: Fill ``words``, ``phonemes`` and ``normalized_words``.

    Raises:
        ValueError: Empty text, unsupported language or out-of-range factor (the message names
            the parameter).
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("transcript must be a non-empty string")
    if language is not None and (not isinstance(language, str) or language not in LANGUAGES):
        raise ValueError(
            f"language {str(language)[:20]!r} is not supported; choose one of {', '.join(LANGUAGES)}"
        )
    speed = _check_factor("speed", speed, 0.25, 4.0)
    volume = _check_factor("volume", volume, 0.0, 4.0)
    if max_seconds is not None:
        max_seconds = _check_factor("max_seconds", max_seconds, 0.0, 24 * 3600.0)
    if isinstance(emotion, str):
        emotion = [emotion]  # the current API sends one name, the legacy controls a list
    rendering = engine.render(
        text,
        voice,
        language=language,
        speed=speed,
        emotion=emotion,
        max_seconds=max_seconds,
        timestamps=timestamps,
    )
    rate = engine.sample_rate
    samples = rendering.samples
    if max_seconds is not None:
        samples = samples[: int(round(max_seconds * rate))]
    if volume != 1.0:
        samples = np.clip(samples * np.float32(volume), -1.0, 1.0).astype(np.float32)
    speech = Speech(samples, rate)
    if timestamps:
        # Cut short: the engine stopped (or the audio was trimmed) before the end of the text.
        complete = max_seconds is None or len(rendering.samples) < max_seconds * rate
        # Numbers are spelled out in English only (the other languages read them otherwise).
        _fill_timestamps(speech, text, rendering, complete, spell=language in (None, "en"))
    return speech


def _monotone(items: List[Tuple[str, int, int]], n: int, rate: int) -> List[Timed]:
    """Sorted, non-overlapping spans within ``0..n`` samples, in seconds."""
    out: List[Timed] = []
    prev_end = 0
    for name, start, end in sorted(items, key=lambda it: (it[1], it[2])):
        start = max(start, prev_end)
        end = min(max(end, start), n)
        if start >= n or not name:
            continue
        if out and out[-1][2] > start / rate:
            out[-1] = (out[-1][0], out[-1][1], start / rate)
        out.append((name, start / rate, end / rate))
        prev_end = end
    return out


def _fill_timestamps(
    speech: Speech, text: str, rendering: Rendering, complete: bool, spell: bool
) -> None:
    n, rate = len(speech.samples), speech.sample_rate
    toks = list(_TOKEN.finditer(text))
    # Engine words by token. espeak may place a word on a neighbouring unspoken token
    # ("- ok" reports "ok" at the dash), so a word lands on the next token that has letters.
    speakable = [bool(_WORD.search(t.group())) for t in toks]
    owned: List[List[Tuple[int, int, int]]] = [[] for _ in toks]
    k = 0
    for i, s, e in sorted(rendering.words):
        while k < len(toks) and toks[k].end() <= i:
            k += 1
        j = k
        while j + 1 < len(toks) and not speakable[j]:
            j += 1
        if j < len(toks):
            # Keep the text index inside the owning token for _spoken_words.
            owned[j].append((max(i, toks[j].start()), s, e))
    # espeak can speak a few tokens as one word ("of the"): a speakable token without a word
    # of its own joins the group before it, and a group's span is split by the tokens' lengths.
    # After the last engine word, tokens join only when the audio was not cut short.
    last = max((j for j in range(len(toks)) if owned[j]), default=-1)
    groups: List[List[int]] = []
    for j in range(len(toks)):
        if owned[j]:
            groups.append([j])
        elif (
            speakable[j]
            and groups
            and groups[-1][-1] == j - 1
            and len(groups[-1]) <= _MAX_JOINED
            and (j < last or complete)
        ):
            groups[-1].append(j)
    tokens: List[Tuple[str, int, int]] = []
    spoken: List[Tuple[str, int, int]] = []
    for group in groups:
        events = [ev for j in group for ev in owned[j]]
        start, end = min(s for _, s, _ in events), max(e for _, _, e in events)
        weights = [len(toks[j].group()) for j in group]
        total, at = sum(weights), 0
        for j, w in zip(group, weights):
            a = start + (end - start) * at // total
            at += w
            b = start + (end - start) * at // total
            inside = owned[j] if len(group) == 1 else [(toks[j].start(), a, b)]
            tokens.append((toks[j].group(), a, b))
            spoken.extend(_spoken_words(toks[j], inside, spell))
    speech.words = _monotone(tokens, n, rate)
    speech.normalized_words = _monotone(spoken, n, rate)
    speech.phonemes = _monotone(list(rendering.phonemes), n, rate)


def _spoken_words(
    tok: re.Match[str], inside: List[Tuple[int, int, int]], spell: bool
) -> List[Tuple[str, int, int]]:
    """A token's words without punctuation, timed by the engine words that start in each.

    A word without an engine word of its own (``Jones`` of ``Smith-Jones``) shares the span of
    the one before it, split in proportion to the words' lengths. With ``spell``, numbers
    become their English words, timed one to one by the engine's words when the counts agree.
    """
    runs = list(_WORD.finditer(tok.group()))
    if not runs:
        return []
    base = tok.start()
    # Groups of runs: a run that holds an engine word opens a group, the others join it.
    groups: List[List[re.Match[str]]] = []
    owned: List[List[Tuple[int, int]]] = []
    for run in runs:
        mine = [(s, e) for i, s, e in inside if base + run.start() <= i < base + run.end()]
        if mine or not groups:
            groups.append([run])
            owned.append(mine)
        else:
            groups[-1].append(run)
    whole = (min(s for _, s, _ in inside), max(e for _, _, e in inside))
    out: List[Tuple[str, int, int]] = []
    for group, mine in zip(groups, owned):
        words = [w for run in group for w in ((spell and number_words(run.group())) or [run.group()])]
        if len(words) > 1 and len(mine) == len(words):
            out.extend((w, s, e) for w, (s, e) in zip(words, sorted(mine)))
            continue
        start, end = (min(s for s, _ in mine), max(e for _, e in mine)) if mine else whole
        total, at = sum(len(w) for w in words), 0
        for w in words:
            a = start + (end - start) * at // total
            at += len(w)
            out.append((w, a, start + (end - start) * at // total))
    return out
