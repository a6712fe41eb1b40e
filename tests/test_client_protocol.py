"""The v0 protocol layer driven with bytes only: requests, websocket messages, events, validation."""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import pytest

from cartesia.errors import InvalidInputError, TranscriptTypeError, TruncatedStreamError
from cartesia.protocol import v0
from cartesia.streaming import AudioBuffer

PCM = np.arange(8, dtype="<f4").tobytes()
VOICE = [0.1] * v0.EMBEDDING_SIZE


def _frame(pcm: bytes, done: bool = False, **extra: object) -> bytes:
    obj = {"data": base64.b64encode(pcm).decode(), "sampling_rate": 44100, "done": done, **extra}
    return json.dumps(obj).encode()


def test_http_body_in_any_split_gives_the_same_events() -> None:
    body = _frame(PCM[:16]) + _frame(PCM[16:]) + b'{"done": true}'
    for size in (1, 3, 7, len(body)):
        dec = v0.HttpStreamDecoder()
        events = []
        for i in range(0, len(body), size):
            events += dec.feed(body[i : i + size])
        events += dec.close()
        kinds = [type(e).__name__ for e in events]
        assert kinds == ["Audio", "Audio", "Done"], size
        assert b"".join(e.message.audio for e in events if isinstance(e, v0.Audio)) == PCM


def test_http_body_without_done_is_truncated() -> None:
    dec = v0.HttpStreamDecoder()
    events = dec.feed(_frame(PCM) + _frame(PCM))
    assert len(events) == 2
    with pytest.raises(TruncatedStreamError, match="without its final `done`"):
        dec.close()


def test_http_body_decodes_into_a_sink_and_stops_at_done() -> None:
    sink = AudioBuffer(encoding="pcm_f32le")
    dec = v0.HttpStreamDecoder(sink=sink)
    events = dec.feed(_frame(PCM, done=True))
    assert [type(e) for e in events] == [v0.Audio, v0.Done]
    assert sink.to_bytes() == PCM and events[0].message.audio == b""
    assert dec.feed(_frame(PCM)) == [] and dec.close() == []  # nothing after done counts


def test_error_frames_become_error_events() -> None:
    (err,) = v0.decode_ws(
        '{"error": "unknown voice", "status_code": 400, "context_id": "c", "request_id": "r"}'
    )
    assert err == v0.ErrorFrame("unknown voice", 400, "r", "c")
    (err,) = v0.decode_ws('{"error": {"detail": 1}, "status_code": true}')
    assert err.message == '{"detail": 1}' and err.status_code is None
    dec = v0.HttpStreamDecoder()
    (err,) = dec.feed(b'{"error": "boom", "status_code": 500}')
    assert isinstance(err, v0.ErrorFrame)
    assert dec.close() == []  # an error ends the body: not a truncation


def test_ws_messages() -> None:
    body = v0.generation_body(transcript="t", voice=VOICE, model_id="m", chunk_time=0.2)
    assert json.loads(v0.ws_generate(body, "c1")) == {"data": body, "context_id": "c1"}
    assert json.loads(v0.ws_ack("c1")) == {"context_id": "c1"}
    assert json.loads(v0.ws_cancel("c1")) == {"context_id": "c1", "action": "cancel"}
    assert v0.ws_path(False) == "/audio/websocket"
    assert v0.ws_path(True) == "/experimental/audio/websocket"
    assert v0.ws_query("a b&c") == "?api_key=a+b%26c" and v0.ws_query(None) == ""
    events = v0.decode_ws(_frame(PCM, context_id="c1"))
    assert [type(e) for e in events] == [v0.Audio] and events[0].message.context_id == "c1"
    assert [type(e) for e in v0.decode_ws(b'{"done": true, "context_id": "c1"}')] == [v0.Done]


def test_context_id_of() -> None:
    assert v0.context_id_of('{"data":"AAAA","context_id":"abc","done":false}') == "abc"
    assert v0.context_id_of(b'{"context_id" : "x y"}') == "x y"
    assert v0.context_id_of('{"done":true,"context_id":null}') is None
    assert v0.context_id_of('{"data":"AAAA"}') is None
    assert v0.context_id_of('{"context_id":"a\\"b","done":true}') == 'a"b'


def test_requests() -> None:
    req = v0.stream_request({"transcript": "t"})
    assert (req.method, req.path, json.loads(req.content or b"")) == (
        "POST",
        "/audio/stream",
        {"transcript": "t"},
    )
    assert v0.voices_request(True).params == {"select": "id, name, description"}
    assert v0.voices_request(False).params is None
    assert (
        v0.embedding_request("x").error_prefix(404)
        == "Failed to clone voice. Status Code: 404\nError: "
    )
    assert v0.transcription_request(b"a").files == {"clip": ("input.wav", b"a", "audio/wav")}
    assert not v0.clone_clip_request("f.wav", b"a").json_content
    assert v0.headers("k") == {"X-API-Key": "k", "Content-Type": "application/json"}
    assert v0.headers(None, json_content=False) == {}
    voices = v0.voices_result([{"name": "A", "embedding": "[1.0]"}], skip_embeddings=False)
    assert voices == {"A": {"name": "A", "embedding": [1.0]}}
    assert v0.embedding_result({"embedding": [2.0]}) == [2.0]


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(voice=None), "voice"),
        (dict(voice=[0.1] * 3), "voice"),
        (dict(voice=[math.nan] * v0.EMBEDDING_SIZE), "voice"),
        (dict(voice={"id": 1}), "voice"),
        (dict(duration=math.nan), "duration"),
        (dict(duration=-1), "duration"),
        (dict(duration="2"), "duration"),
        (dict(chunk_time=0.05), "chunk_time"),
        (dict(transcript="x" * (v0.MAX_TRANSCRIPT_CHARS + 1)), "transcript"),
        (dict(transcript="  "), "transcript"),
        (dict(model_id=""), "model_id"),
    ],
)
def test_validation_names_the_field(kwargs: dict, field: str) -> None:
    args = dict(transcript="hi", voice=VOICE, model_id="m", duration=None, chunk_time=None)
    args.update(kwargs)
    with pytest.raises(InvalidInputError) as info:
        v0.validate_generation(**args)
    assert info.value.field == field and isinstance(info.value, ValueError)


def test_non_string_transcript_is_also_an_attribute_error() -> None:
    for bad in (None, 12, b"bytes"):
        with pytest.raises(TranscriptTypeError) as info:
            v0.validate_generation(bad, VOICE, "m", None, None)
        assert isinstance(info.value, AttributeError) and isinstance(info.value, ValueError)
    v0.validate_generation("fine", VOICE, "m", 1, 0.2)
    v0.validate_generation("fine", "a-voice-id", "m", None, None)
