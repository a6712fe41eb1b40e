"""The generation's per-read work: the first-audible check and one read's chunks counted together.

``ChunkShaper.is_audible`` looks at the first samples one by one before numpy sees the rest; it
must answer as the whole-chunk check does (silence, a late sound, NaN, a partial sample).
``Generation.handle`` times a read's chunks once: the counters, ``ttfa <= ttfa_audible`` and the
chunk-gap clock stay what they were per chunk, for every kind of chunk the shaper builds.
"""

from __future__ import annotations

import base64
import json
import struct

import numpy as np
import pytest

from cartesia._client.generation import Generation, Settings, Timeouts
from cartesia._client.output import AUDIBLE, ChunkShaper
from cartesia._client.retry import RetryPolicy
from cartesia.errors import GenerationError
from cartesia.protocol.events import Audio, Done, ErrorFrame
from cartesia.streaming import AudioBuffer, Message, StreamParser


def _pcm(*samples: float) -> bytes:
    return struct.pack(f"<{len(samples)}f", *samples)


def _reference(audio: bytes) -> bool:
    samples = np.frombuffer(audio, dtype="<f4", count=len(audio) // 4)
    return bool(np.any(np.abs(samples) > AUDIBLE))


@pytest.mark.parametrize(
    "audio",
    [
        _pcm(0.5),
        _pcm(*([0.0] * 10), -0.2),
        _pcm(*([0.0] * 64), 0.01),  # audible just past the samples looked at one by one
        _pcm(*([1e-4] * 5000), -0.3),
        _pcm(*([0.0] * 5000)),
        _pcm(*([0.0] * 64)),
        _pcm(*([0.0] * 63), 0.9 * AUDIBLE, -0.9 * AUDIBLE),  # below -60 dBFS
        _pcm(*([0.0] * 63), -1.1 * AUDIBLE),
        _pcm(float("nan"), 0.0),
        _pcm(float("nan"), 0.5),
        _pcm(*([float("nan")] * 100), -0.5),
        _pcm(0.0, 0.0) + b"\x00\x00",  # a partial sample at the end is ignored
        _pcm(0.0) + b"\x00\x00\x80",
        b"\x00\x00",
        b"",
    ],
)
def test_is_audible_answers_as_the_whole_chunk_check(audio):
    assert ChunkShaper().is_audible(Message("chunk", audio=audio)) is _reference(audio)


def test_is_audible_with_an_audio_buffer_sink_looks_at_its_newest_samples():
    sink = AudioBuffer()
    parser = StreamParser("json", sink=sink)
    frame = {"data": base64.b64encode(_pcm(0.0, 0.0, 0.4)).decode(), "done": False, "sampling_rate": 8000}
    (msg,) = parser.feed(json.dumps(frame).encode())
    shaper = ChunkShaper(sink=sink)
    assert msg.audio == b"" and shaper.is_audible(msg)
    (quiet,) = parser.feed(json.dumps({**frame, "data": base64.b64encode(_pcm(0.0)).decode()}).encode())
    assert not shaper.is_audible(quiet)


def _frames(*audio: bytes, sink: object = None) -> list:
    body = b"".join(
        json.dumps({"data": base64.b64encode(a).decode(), "done": False, "sampling_rate": 44100}).encode()
        for a in audio
    )
    return list(StreamParser("json", sink=sink).feed(body))


def _generation(shaper: ChunkShaper) -> Generation:
    gen = Generation(Settings(Timeouts(), RetryPolicy(), "k"), "http", None, shaper, lambda m: None)
    gen.begin()
    return gen


@pytest.mark.parametrize("kind", ["bytes", "numpy", "context", "sink"])
def test_one_reads_chunks_are_counted_and_timed_together(kind):
    quiet, loud = _pcm(*([0.0] * 100)), _pcm(*([0.0] * 100), 0.5)
    sink = AudioBuffer() if kind == "sink" else None
    shaper = ChunkShaper(as_numpy=kind == "numpy", sink=sink, context_id="c1" if kind == "context" else None)
    gen = _generation(shaper)
    msgs = _frames(quiet, loud, sink=sink)
    chunks = gen.handle([Audio(msgs[0]), Audio(msgs[1])])
    m = gen.metrics
    assert (m.chunks, m.bytes) == (2, len(quiet) + len(loud))
    assert m.ttfb is not None and m.ttfb <= m.ttfa <= m.ttfa_audible
    assert m.max_gap == 0.0 and gen.delivered and gen.deadline.got_audio
    if kind == "bytes":
        assert chunks == [{"audio": quiet, "sampling_rate": 44100}, {"audio": loud, "sampling_rate": 44100}]
    elif kind == "numpy":
        assert [c["audio"].tobytes() for c in chunks] == [quiet, loud]
    elif kind == "context":
        assert [c["context_id"] for c in chunks] == ["c1", "c1"]
    else:
        assert [c["samples"] for c in chunks] == [100, 101] and sink.to_numpy()[-1] == np.float32(0.5)
    first_ttfa = m.ttfa
    gen.handle([Audio(_frames(loud, sink=sink)[0]), Done(None)])
    assert (m.chunks, m.ttfa) == (3, first_ttfa) and m.max_gap > 0.0 and gen.done


def test_chunks_ahead_of_an_error_frame_are_counted_and_the_error_raised():
    gen = _generation(ChunkShaper())
    (msg,) = _frames(_pcm(0.5))
    with pytest.raises(GenerationError, match="boom"):
        gen.handle([Audio(msg), ErrorFrame("boom", 500, None, None)])
    assert gen.metrics.chunks == 1 and not gen.delivered and not gen.deadline.got_audio
