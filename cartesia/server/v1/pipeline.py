"""Incremental generation: text cut into sentences, each synthesized, encoded and chunked in turn.

Memory per generation stays bounded whatever the transcript's length: at most the sentence being
sent and one sentence of look-ahead (synthesized in a worker thread meanwhile) are held, and the
caller awaits each chunk's send, so a client that does not read stops the generation.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from typing import AsyncIterator, Iterator, List, Optional, Tuple, Union

import numpy as np

from ..audio import Speech, StreamEncoder, synthesize
from ..engines import Engine
from .request import TTSRequest, speakable

__all__ = [
    "SynthesisError",
    "segments",
    "complete_sentences",
    "Chunk",
    "Timestamps",
    "Generation",
    "CHUNK_SECONDS",
    "MAX_SEGMENT_CHARS",
]

#: Audio per chunk frame (seconds of engine output).
CHUNK_SECONDS = 0.1
#: Longest piece of text synthesized at once (longer sentences are cut at a space).
MAX_SEGMENT_CHARS = 120
# A sentence ends after . ! ? ; … (and closing quotes/brackets) followed by white space, or at a
# line break.
_BOUNDARY = re.compile(r"[.!?;…]+[\"'”’)\]]*\s+|\n+")

Timed = Tuple[str, float, float]


class SynthesisError(Exception):
    """The engine failed on a piece of text (told apart from a client that went away)."""


def _cut_long(piece: str, limit: int) -> List[str]:
    out = []
    while len(piece) > limit:
        cut = piece.rfind(" ", 0, limit)
        cut = limit if cut <= 0 else cut + 1
        out.append(piece[:cut])
        piece = piece[cut:]
    out.append(piece)
    return out


def segments(text: str, limit: int = MAX_SEGMENT_CHARS) -> List[str]:
    """Cut ``text`` into the pieces synthesized one at a time.

    The pieces concatenate back to ``text`` exactly, except that pieces with nothing to say
    (blank or punctuation only) are joined to a neighbour; a text with nothing to say at all
    gives ``[]``.
    """
    raw: List[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        raw.extend(_cut_long(text[start : match.end()], limit))
        start = match.end()
    if start < len(text):
        raw.extend(_cut_long(text[start:], limit))
    out: List[str] = []
    carry = ""
    for piece in raw:
        if not speakable(piece):
            if out:
                out[-1] += piece
            else:
                carry += piece
            continue
        out.append(carry + piece)
        carry = ""
    return out


def complete_sentences(text: str) -> Tuple[str, str]:
    """``text`` cut after its last sentence end: ``(complete, rest)``."""
    end = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
    return text[:end], text[end:]


@dataclasses.dataclass
class Chunk:
    """Encoded audio of one chunk frame.

    Attributes:
        audio: Bytes in the output format (whole samples for ``raw``).
        step_ms: Synthesis time attributed to this chunk, in ms.
        seconds: Audio length (engine seconds) the chunk covers, for pacing.
    """

    audio: bytes
    step_ms: float
    seconds: float


@dataclasses.dataclass
class Timestamps:
    """Word or phoneme timings of one sentence, in seconds from the start of the generation.

    Attributes:
        kind: ``words`` or ``phonemes``.
        items: ``(text, start, end)`` triples, sorted.
    """

    kind: str
    items: List[Timed]


Event = Union[Chunk, Timestamps]


class Generation:
    """The audio of one HTTP request or one websocket context, rendered text piece by text piece.

    One encoder (resampler state, MP3 frames) and one clock run across every :meth:`render`
    call, so a context's continued inputs make one continuous stream with timestamps that keep
    counting.

    Args:
        engine: The server's engine.
        req: Voice, language, speed, volume, emotion, format, timestamp switches, duration cap.
    """

    def __init__(self, engine: Engine, req: TTSRequest) -> None:
        self.engine = engine
        self.req = req
        self.rate = engine.sample_rate
        self.encoder = StreamEncoder(req.output_format, self.rate)
        self.samples_done = 0
        self._per_render = int(round(req.max_seconds * self.rate))
        self._cap = self._per_render
        self._timestamps = req.add_timestamps or req.add_phoneme_timestamps
        self._header_sent = False

    @property
    def exhausted(self) -> bool:
        """Whether the current :meth:`render` has reached its ``duration`` cap."""
        return self.samples_done >= self._cap

    def header(self) -> bytes:
        """Container bytes before the audio (a WAV header), once."""
        if self._header_sent:
            return b""
        self._header_sent = True
        return self.encoder.header()

    def _synth(self, text: str, max_seconds: float) -> Tuple[Speech, float]:
        t0 = time.perf_counter()
        speech = synthesize(
            self.engine,
            text,
            self.req.voice,
            language=self.req.language,
            speed=self.req.speed,
            volume=self.req.volume,
            emotion=list(self.req.emotion) or None,
            max_seconds=max_seconds,
            timestamps=self._timestamps,
        )
        return speech, (time.perf_counter() - t0) * 1000.0

    def _submit(self, text: str) -> asyncio.Future[Tuple[Speech, float]]:
        remaining = max(self._cap - self.samples_done, 0) / self.rate
        return asyncio.get_running_loop().run_in_executor(None, self._synth, text, remaining)

    async def render(self, text: str) -> AsyncIterator[Event]:
        """Chunks (and, when asked for, timestamps) of ``text``, sentence by sentence.

        The request's ``duration`` (else the server's cap) bounds the audio of each call: an
        HTTP generation is one call, a websocket context one call per piece of text it speaks.
        """
        pieces = segments(text)
        self._cap = self.samples_done + self._per_render
        if not pieces:
            return
        pending: Optional[asyncio.Future[Tuple[Speech, float]]] = self._submit(pieces[0])
        try:
            for i in range(len(pieces)):
                assert pending is not None
                try:
                    speech, synth_ms = await pending
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    raise SynthesisError(f"{type(exc).__name__}: {exc}") from exc
                pending = None
                offset = self.samples_done
                samples = speech.samples[: max(self._cap - offset, 0)]
                self.samples_done += len(samples)
                if i + 1 < len(pieces) and not self.exhausted:
                    pending = self._submit(pieces[i + 1])  # look-ahead: one sentence
                for event in self._events(samples, speech, offset / self.rate, synth_ms):
                    yield event
                if self.exhausted:
                    break
        finally:
            if pending is not None:
                pending.cancel()

    def _events(
        self, samples: np.ndarray, speech: Speech, offset: float, synth_ms: float
    ) -> Iterator[Event]:
        # A generator: each chunk is encoded only when the previous one has been sent.
        length = len(samples) / self.rate
        per = max(1, int(round(CHUNK_SECONDS * self.rate)))
        n = len(samples)
        for start in range(0, n, per):
            block = np.ascontiguousarray(samples[start : start + per])
            audio = self.encoder.feed(block)
            share = synth_ms * len(block) / n
            yield Chunk(audio, round(share, 3), len(block) / self.rate)
        if self.req.add_timestamps:
            words = speech.normalized_words if self.req.use_normalized_timestamps else speech.words
            yield Timestamps("words", _shift(words, offset, length))
        if self.req.add_phoneme_timestamps:
            yield Timestamps("phonemes", _shift(speech.phonemes, offset, length))

    def finish(self) -> bytes:
        """The encoder's tail (resampler delay, last MP3 frames)."""
        return self.encoder.finish()


def _shift(items: List[Timed], offset: float, length: float) -> List[Timed]:
    """Timings of a sentence moved to the generation's clock, cut at the sentence's audio."""
    out = []
    for name, start, end in items:
        if start >= length:
            break
        out.append((name, round(offset + start, 6), round(offset + min(end, length), 6)))
    return out
