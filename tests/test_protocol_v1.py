"""The current-API dialect on bytes alone: request building, SSE and websocket decoding."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cartesia.errors import InvalidInputError, StreamFormatError, TruncatedStreamError
from cartesia.protocol import v1
from cartesia.protocol.events import (
    Audio,
    Done,
    ErrorFrame,
    FlushDone,
    PhonemeTimestamps,
    WordTimestamps,
)
from cartesia.server.v1 import frames
from cartesia.server.v1.pipeline import Timestamps
from cartesia.streaming import AudioBuffer

FMT = {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 8000}
PCM = np.arange(-200, 200, dtype="<i2").tobytes()


def _body(**kw):
    args = dict(model_id="sonic-3", transcript="Hi.", voice="v-1", output_format=FMT)
    args.update(kw)
    return v1.generation_body(**args)


def _sse(*events) -> bytes:
    return b"".join(b"data: " + frames.encode(e) + b"\n\n" for e in events)


def test_headers_pin_version_and_bearer():
    h = v1.headers("sk-1", accept="audio/wav")
    assert h == {
        "Cartesia-Version": "2026-08-14",
        "Authorization": "Bearer sk-1",
        "Content-Type": "application/json",
        "Accept": "audio/wav",
    }
    assert v1.headers(None, json_content=False, version="2025-04-16") == {
        "Cartesia-Version": "2025-04-16"
    }


def test_generation_body_names_and_omissions():
    body = _body(language="en", speed=None, duration=2.5, extra_body={"save": True})
    assert body == {
        "model_id": "sonic-3",
        "transcript": "Hi.",
        "voice": {"mode": "id", "id": "v-1"},
        "output_format": FMT,
        "language": "en",
        "duration": 2.5,
        "save": True,
    }
    assert _body(voice={"id": "x"})["voice"] == {"id": "x"}


@pytest.mark.parametrize(
    "kw, field",
    [
        ({"transcript": "  "}, "transcript"),
        ({"transcript": None}, "transcript"),
        ({"model_id": ""}, "model_id"),
        ({"voice": 3}, "voice"),
        ({"voice": ""}, "voice"),
        ({"output_format": {"encoding": "pcm_s16le"}}, "output_format"),
    ],
)
def test_generation_body_names_the_bad_field(kw, field):
    with pytest.raises(InvalidInputError) as info:
        _body(**kw)
    assert info.value.field == field


def test_requests_paths_and_accept():
    body = _body()
    r = v1.bytes_request(body)
    assert (r.method, r.path, r.accept) == ("POST", "/tts/bytes", "audio/wav")
    assert json.loads(r.content) == body
    s = v1.sse_request(body)
    assert (s.path, s.accept) == ("/tts/sse", "text/event-stream")
    lst = v1.voices_list_request(limit=2, starting_after="a", q=None, expand=["preview_file_url"])
    assert lst.params == {"limit": 2, "starting_after": "a", "expand[]": ["preview_file_url"]}
    assert v1.voice_get_request("abc").path == "/voices/abc"
    assert v1.voice_delete_request("abc").method == "DELETE"
    with pytest.raises(InvalidInputError):
        v1.voice_get_request("../x/")
    clone = v1.voice_clone_request(
        clip=("a.wav", b"RIFF", "audio/wav"), name="N", language="en", description=None
    )
    assert set(clone.files) == {"clip", "name", "language"}
    assert clone.files["name"] == (None, b"N", None)


def test_ws_messages():
    body = _body()
    msg = json.loads(v1.ws_generate(body, "c1", continue_=True, flush=True))
    assert msg["context_id"] == "c1" and msg["continue"] is True and msg["flush"] is True
    assert msg["transcript"] == "Hi."
    assert json.loads(v1.ws_generate(body, "c1")) == {**body, "context_id": "c1", "continue": False}
    assert json.loads(v1.ws_cancel("c1")) == {"context_id": "c1", "cancel": True}


def test_sse_decoder_any_split():
    stamps = Timestamps("words", [("Hi", 0.0, 0.25)])
    phon = Timestamps("phonemes", [("h", 0.0, 0.1), ("a", 0.1, 0.25)])
    data = _sse(
        frames.chunk(PCM[:300], 1.5, "c"),
        frames.timestamps(stamps, "c"),
        frames.timestamps(phon, "c"),
        frames.chunk(PCM[300:], 2.0, "c"),
        frames.done("c"),
    )
    for step in (1, 7, len(data)):
        dec = v1.SseDecoder()
        events = []
        for i in range(0, len(data), step):
            events += dec.feed(data[i : i + step])
        events += dec.close()
        kinds = [type(e) for e in events]
        assert kinds == [Audio, WordTimestamps, PhonemeTimestamps, Audio, Done]
        assert b"".join(e.message.audio for e in events if isinstance(e, Audio)) == PCM
        assert events[0].message.fields["step_time"] == 1.5
        assert events[1].word_timestamps == {"words": ["Hi"], "start": [0.0], "end": [0.25]}
        assert events[2].phoneme_timestamps["phonemes"] == ["h", "a"]
        assert events[-1].context_id == "c" and dec.done


def test_sse_into_sink():
    buf = AudioBuffer(encoding="pcm_s16le")
    dec = v1.SseDecoder(sink=buf)
    events = dec.feed(_sse(frames.chunk(PCM, 1.0, None), frames.done(None))) + dec.close()
    assert [type(e) for e in events] == [Audio, Done]
    assert events[0].message.audio == b"" and events[0].message.samples == len(PCM) // 2
    expected = np.frombuffer(PCM, "<i2").astype(np.float32) / 32768
    assert np.array_equal(buf.to_numpy(), expected)


def test_sse_truncated_raises():
    dec = v1.SseDecoder()
    dec.feed(_sse(frames.chunk(PCM, 1.0, None)))
    with pytest.raises(TruncatedStreamError):
        dec.close()


def test_sse_error_event_ends_stream():
    err = {
        "type": "error",
        "done": True,
        "status_code": 429,
        "title": "Too Many Requests",
        "message": "concurrency limit",
        "error_code": "concurrency_limited",
        "request_id": "r-1",
    }
    dec = v1.SseDecoder()
    events = dec.feed(_sse(err, frames.done(None))) + dec.close()
    assert len(events) == 1 and isinstance(events[0], ErrorFrame)
    e = events[0]
    assert (e.status_code, e.message, e.title, e.error_code, e.request_id) == (
        429,
        "concurrency limit",
        "Too Many Requests",
        "concurrency_limited",
        "r-1",
    )
    assert not dec.done


def test_sse_malformed_event_raises():
    dec = v1.SseDecoder()
    with pytest.raises(StreamFormatError):
        dec.feed(b"data: " + frames.MALFORMED + b"\n\n")


def test_decode_ws_frames():
    (audio,) = v1.decode_ws(frames.encode(frames.chunk(PCM, 3.0, "c", 2)))
    assert audio.message.audio == PCM and audio.message.context_id == "c"
    assert audio.message.fields["flush_id"] == 2
    (fd,) = v1.decode_ws(frames.encode(frames.flush_done("c", 1)).decode())
    assert fd == FlushDone("c", 1)
    assert v1.decode_ws(frames.encode(frames.done("c"))) == [Done("c")]
    (old,) = v1.decode_ws(
        '{"type":"error","context_id":"c","status_code":400,"done":true,"error":"transcript empty"}'
    )
    assert (old.message, old.status_code, old.context_id, old.title) == (
        "transcript empty",
        400,
        "c",
        None,
    )
    assert v1.context_id_of(frames.encode(frames.chunk(PCM, 1.0, "ctx-9"))) == "ctx-9"
