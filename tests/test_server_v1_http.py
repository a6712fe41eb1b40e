"""Current-API HTTP routes of the local server over real sockets: versions, auth, tokens,
``/tts/bytes`` and ``/tts/sse`` byte-exact against the tone engine, bad input, limits, faults."""

from __future__ import annotations

import base64
import json
import struct
import threading
import time
from typing import Any, Dict, List, Optional

import aiohttp
import httpx
import numpy as np
import pytest

from cartesia.server import LocalServer
from cartesia.server.audio import OutputFormat, StreamEncoder, synthesize
from cartesia.server.engines.tone import ToneEngine
from cartesia.server.v1.pipeline import segments
from cartesia.server.v1.versions import KNOWN_VERSIONS, LATEST
from cartesia.server.voices import CATALOGUE

VOICE = CATALOGUE[0]
OTHER_VOICE = CATALOGUE[2]
TEXT = "Hello there, local server"
NEW_ERROR_KEYS = {"error_code", "title", "message", "request_id", "doc_url"}
TIMEOUT = aiohttp.ClientTimeout(total=30)


# --- helpers shared with test_server_v1_ws.py ---------------------------------------------------


def raw_format(encoding: str = "pcm_f32le", sample_rate: int = 44100) -> Dict[str, Any]:
    return {"container": "raw", "encoding": encoding, "sample_rate": sample_rate}


def tts_body(transcript: str = TEXT, **fields: Any) -> Dict[str, Any]:
    body: Dict[str, Any] = {
        "model_id": "sonic-3",
        "transcript": transcript,
        "voice": {"mode": "id", "id": VOICE.id},
        "output_format": raw_format(),
    }
    body.update(fields)
    return body


def expected_audio(pieces: List[str], fmt: OutputFormat, voice=VOICE, **synth: Any) -> bytes:
    """What the server must send: each text piece synthesized in turn by the tone engine, through
    one stream encoder."""
    engine = ToneEngine()
    encoder = StreamEncoder(fmt, engine.sample_rate)
    out = encoder.header()
    for piece in pieces:
        out += encoder.feed(synthesize(engine, piece, voice, **synth).samples)
    return out + encoder.finish()


def headers(server: LocalServer, version: Optional[str] = LATEST, **extra: str) -> Dict[str, str]:
    out = {"Authorization": f"Bearer {server.api_key}", **extra}
    if version is not None:
        out["Cartesia-Version"] = version
    return out


def sse_events(body: bytes) -> List[Dict[str, Any]]:
    """Strict SSE parse: every event is exactly one ``data: {json}`` line and a blank line."""
    text = body.decode("utf-8")
    assert text.endswith("\n\n"), text[-80:]
    events = []
    for block in text[:-2].split("\n\n"):
        assert block.startswith("data: ") and "\n" not in block, block[:120]
        events.append(json.loads(block[6:]))
    return events


def check_new_error(resp: httpx.Response, status: int, code: Optional[str] = None) -> Dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == NEW_ERROR_KEYS, body
    assert body["message"] and body["title"] and body["request_id"]
    if code is not None:
        assert body["error_code"] == code, body
    return body


@pytest.fixture(scope="module")
def http(local_server: LocalServer):
    with httpx.Client(
        base_url=local_server.base_url, headers=headers(local_server), timeout=20
    ) as client:
        yield client


# --- health, versions, error shapes ------------------------------------------------------------


def test_health_without_auth_names_the_latest_version(local_server):
    resp = httpx.get(local_server.base_url + "/", timeout=10)
    assert resp.status_code == 200
    body = resp.json()
    assert body["ok"] is True and body["version"] == LATEST == "2026-08-14"
    assert body["engine"] == "tone" and body["versions"] == list(KNOWN_VERSIONS)


@pytest.mark.parametrize("version", KNOWN_VERSIONS)
def test_error_shape_follows_the_version(local_server, version):
    resp = httpx.post(
        local_server.base_url + "/tts/bytes",
        json=tts_body(transcript="   "),
        headers=headers(local_server, version),
        timeout=10,
    )
    assert resp.status_code == 400
    assert resp.headers["x-should-retry"] == "false"
    body = resp.json()
    if version >= "2026-03-01":
        assert set(body) == NEW_ERROR_KEYS and "transcript" in body["message"]
    else:
        assert body == {"error": body["error"], "status_code": 400} and "transcript" in body["error"]


def test_unknown_version_names_the_accepted_ones(local_server):
    resp = httpx.post(
        local_server.base_url + "/tts/bytes",
        json=tts_body(),
        headers=headers(local_server, "2025-01-01"),
        timeout=10,
    )
    body = check_new_error(resp, 400, "invalid_version")
    assert all(v in body["message"] for v in KNOWN_VERSIONS)


def test_no_version_means_the_latest(local_server):
    # A bare string voice id only exists from 2026-08-14: accepted without any version.
    body = tts_body(voice=VOICE.id)
    resp = httpx.post(
        local_server.base_url + "/tts/bytes", json=body, headers=headers(local_server, None), timeout=10
    )
    assert resp.status_code == 200, resp.text
    old = httpx.post(
        local_server.base_url + "/tts/bytes",
        json=body,
        headers=headers(local_server, "2025-11-04"),
        timeout=10,
    )
    assert old.status_code == 400 and "voice" in old.json()["error"]


def test_version_query_parameter_on_http(local_server):
    resp = httpx.post(
        local_server.base_url + "/tts/bytes",
        params={"cartesia_version": "2024-06-10"},
        json=tts_body(transcript=""),
        headers={"X-API-Key": local_server.api_key},
        timeout=10,
    )
    assert resp.status_code == 400 and set(resp.json()) == {"error", "status_code"}


def test_unimplemented_routes_say_so(http):
    for method, path in [
        ("POST", "/stt/bytes"),
        ("GET", "/stt/websocket"),
        ("POST", "/infill/bytes"),
        ("POST", "/voice-changer/bytes"),
        ("GET", "/datasets"),
        ("GET", "/pronunciation-dicts/abc"),
    ]:
        body = check_new_error(http.request(method, path), 404, "not_implemented")
        assert "does not implement" in body["message"], body


def test_unknown_route_is_a_versioned_404(http):
    body = check_new_error(http.get("/no/such/route"), 404)
    assert "/no/such/route" in body["message"]


# --- auth and tokens ---------------------------------------------------------------------------


def test_auth_headers(make_server):
    server = make_server(api_keys=["right-key"])
    url = server.base_url + "/tts/bytes"
    body = tts_body()
    for auth in ({"Authorization": "Bearer right-key"}, {"X-API-Key": "right-key"}):
        assert httpx.post(url, json=body, headers=auth, timeout=10).status_code == 200
    for auth in ({}, {"Authorization": "Bearer wrong-key"}, {"X-API-Key": "wrong-key"}):
        resp = httpx.post(url, json=body, headers=auth, timeout=10)
        msg = check_new_error(resp, 401)["message"]
        assert "wrong-key" not in msg and "right-key" not in msg
    old = httpx.post(url, json=body, headers={"Cartesia-Version": "2024-06-10"}, timeout=10)
    assert old.status_code == 401 and set(old.json()) == {"error", "status_code"}


def test_access_tokens(make_server):
    server = make_server(api_keys=["issuer-key"])
    url = server.base_url
    key = {"Authorization": "Bearer issuer-key"}
    resp = httpx.post(url + "/access-token", json={"grants": {"tts": True}, "expires_in": 60},
                      headers=key, timeout=10)
    assert resp.status_code == 200, resp.text
    token = resp.json()["token"]
    assert token and "issuer-key" not in token
    ok = httpx.post(url + "/tts/bytes", json=tts_body(), headers={"Authorization": f"Bearer {token}"},
                    timeout=10)
    assert ok.status_code == 200 and len(ok.content) > 1000
    # A token cannot mint tokens.
    check_new_error(httpx.post(url + "/access-token", json={}, headers={"Authorization": f"Bearer {token}"},
                               timeout=10), 403)
    # Without the tts grant: 403 on TTS routes.
    stt_only = httpx.post(url + "/access-token", json={"grants": {"stt": True}}, headers=key,
                          timeout=10).json()["token"]
    body = check_new_error(httpx.post(url + "/tts/sse", json=tts_body(),
                                      headers={"Authorization": f"Bearer {stt_only}"}, timeout=10), 403)
    assert "tts" in body["message"]
    # Expired: 401.
    short = httpx.post(url + "/access-token", json={"expires_in": 1}, headers=key, timeout=10).json()["token"]
    time.sleep(1.1)
    body = check_new_error(httpx.post(url + "/tts/bytes", json=tts_body(),
                                      headers={"Authorization": f"Bearer {short}"}, timeout=10), 401)
    assert "expired" in body["message"]
    # Unknown token-shaped credential: 401 even though no key list would refuse it.
    forged = token[:-4] + "AAAA"
    check_new_error(httpx.post(url + "/tts/bytes", json=tts_body(),
                               headers={"Authorization": f"Bearer {forged}"}, timeout=10), 401)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"expires_in": 3601}, "expires_in"),
        ({"expires_in": 0}, "expires_in"),
        ({"expires_in": "60"}, "expires_in"),
        ({"grants": {"tts": "yes"}}, "grants.tts"),
        ({"grants": {"admin": True}}, "admin"),
        ({"grants": ["tts"]}, "grants"),
    ],
)
def test_access_token_bad_requests(http, body, field):
    assert field in check_new_error(http.post("/access-token", json=body), 400)["message"]


# --- /tts/bytes --------------------------------------------------------------------------------


ENCODINGS = ("pcm_f32le", "pcm_s16le", "pcm_mulaw", "pcm_alaw")
RATES = (8000, 16000, 22050, 24000, 44100, 48000)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("rate", RATES)
def test_bytes_raw_is_byte_exact(http, encoding, rate):
    assert segments(TEXT) == [TEXT]  # one sentence: synthesized in one piece
    resp = http.post("/tts/bytes", json=tts_body(output_format=raw_format(encoding, rate)))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/octet-stream"
    want = expected_audio([TEXT], OutputFormat("raw", encoding, rate))
    assert resp.content == want
    width = {"pcm_f32le": 4, "pcm_s16le": 2}.get(encoding, 1)
    assert len(resp.content) % width == 0
    # Hand-checked invariant: the length is the tone engine's duration at the output rate.
    seconds = len(synthesize(ToneEngine(), TEXT, VOICE).samples) / 44100
    assert abs(len(resp.content) / width - seconds * rate) <= 2


def test_bytes_f32_at_engine_rate_is_the_engine_output(http):
    resp = http.post("/tts/bytes", json=tts_body())
    samples = np.frombuffer(resp.content, dtype="<f4")
    want = synthesize(ToneEngine(), TEXT, VOICE).samples
    assert np.array_equal(samples, want)


def test_bytes_sentences_are_synthesized_one_by_one(http):
    text = "Hello there. How are you today? Fine."
    assert segments(text) == ["Hello there. ", "How are you today? ", "Fine."]
    resp = http.post("/tts/bytes", json=tts_body(text, output_format=raw_format("pcm_s16le", 16000)))
    want = expected_audio(["Hello there. ", "How are you today? ", "Fine."],
                          OutputFormat("raw", "pcm_s16le", 16000))
    assert resp.content == want


def test_bytes_wav_streamed_header(http):
    resp = http.post("/tts/bytes", json=tts_body(output_format={
        "container": "wav", "encoding": "pcm_s16le", "sample_rate": 22050}))
    assert resp.status_code == 200 and resp.headers["content-type"] == "audio/wav"
    data = resp.content
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt "
    tag, channels, rate, byte_rate, align, bits = struct.unpack("<HHIIHH", data[20:36])
    assert (tag, channels, rate, byte_rate, align, bits) == (1, 1, 22050, 44100, 2, 16)
    assert data[36:40] == b"data"
    # Streamed: the sizes say "unknown" (0xFFFFFFFF), the body runs to the end.
    assert struct.unpack("<I", data[4:8])[0] == 0xFFFFFFFF
    assert struct.unpack("<I", data[40:44])[0] == 0xFFFFFFFF
    assert data == expected_audio([TEXT], OutputFormat("wav", "pcm_s16le", 22050))


def test_bytes_mp3_frames(http):
    pytest.importorskip("lameenc", reason="the mp3 extra is not installed")
    resp = http.post("/tts/bytes", json=tts_body(output_format={
        "container": "mp3", "sample_rate": 44100, "bit_rate": 64000}))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "audio/mpeg"
    data = resp.content
    assert data[0] == 0xFF and data[1] & 0xE0 == 0xE0  # an MPEG frame sync at the start
    assert (data[2] >> 4) == 5  # bit-rate index 5 of MPEG-1 layer III = 64 kbit/s
    seconds = len(synthesize(ToneEngine(), TEXT, VOICE).samples) / 44100
    assert abs(len(data) - seconds * 64000 / 8) < 2000


def test_bytes_writes_end_inside_samples(local_server):
    """Chunk boundaries are not sample-aligned (clients must re-frame)."""

    async def run() -> List[int]:
        ends, total = [], 0
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            async with session.post(
                local_server.base_url + "/tts/bytes",
                json=tts_body("A long sentence with many letters in it to make chunks",
                              output_format=raw_format("pcm_s16le", 44100)),
                headers=headers(local_server),
            ) as resp:
                assert resp.status == 200
                async for data, end_of_chunk in resp.content.iter_chunks():
                    total += len(data)
                    if end_of_chunk:
                        ends.append(total)
        return ends

    import asyncio

    ends = asyncio.run(run())
    assert len(ends) > 3
    assert any(end % 2 for end in ends), ends


def test_bytes_save_header(http):
    resp = http.post("/tts/bytes", json=tts_body(save=True))
    assert resp.status_code == 200 and resp.headers["Cartesia-File-ID"].startswith("file_")
    assert "Cartesia-File-ID" not in http.post("/tts/bytes", json=tts_body()).headers


def test_generation_controls_change_the_audio(http):
    base = http.post("/tts/bytes", json=tts_body()).content
    fast = http.post("/tts/bytes", json=tts_body(generation_config={"speed": 1.5})).content
    slow = http.post("/tts/bytes", json=tts_body(speed="slow")).content
    loud = http.post("/tts/bytes", json=tts_body(generation_config={"volume": 2.0})).content
    quiet = http.post("/tts/bytes", json=tts_body(generation_config={"volume": 0.5})).content
    assert len(fast) < len(base) * 0.75 and len(slow) > len(base) * 1.15
    rms = lambda b: float(np.sqrt(np.mean(np.frombuffer(b, "<f4").astype(np.float64) ** 2)))  # noqa: E731
    assert rms(loud) > rms(base) * 1.6 and rms(quiet) < rms(base) * 0.6
    emo = http.post("/tts/bytes", json=tts_body(generation_config={"emotion": "happy"}))
    assert emo.status_code == 200
    other = http.post("/tts/bytes", json=tts_body(voice={"id": OTHER_VOICE.id})).content
    assert other != base
    assert fast == expected_audio([TEXT], OutputFormat("raw", "pcm_f32le", 44100), speed=1.5)


def test_duration_caps_the_audio(http):
    resp = http.post("/tts/bytes", json=tts_body("One two three four five six seven eight", duration=0.5))
    assert len(resp.content) == 4 * 22050


@pytest.mark.parametrize(
    "model", ["sonic-3", "sonic-2", "sonic-turbo", "sonic-latest", "sonic-english",
              "sonic-multilingual", "sonic-2-2025-03-07", "sonic-3-2026-01-12", "sonic-3.5"]
)
def test_model_catalogue(http, model):
    assert http.post("/tts/bytes", json=tts_body(model_id=model)).status_code == 200


@pytest.mark.parametrize(
    "version, voice, ok",
    [
        ("2024-06-10", {"mode": "id", "id": VOICE.id}, True),
        ("2024-06-10", {"id": VOICE.id}, True),
        ("2024-06-10", {"mode": "embedding", "embedding": list(VOICE.embedding)}, True),
        ("2024-06-10", {"embedding": list(VOICE.embedding)}, True),
        ("2024-06-10", {"mode": "id", "id": VOICE.id,
                        "__experimental_controls": {"speed": "fast", "emotion": ["positivity:high"]}}, True),
        ("2025-11-04", {"mode": "embedding", "embedding": list(VOICE.embedding)}, True),
        ("2026-03-01", {"mode": "embedding", "embedding": list(VOICE.embedding)}, False),
        ("2026-03-01", {"mode": "id", "id": VOICE.id}, True),
        ("2026-03-01", VOICE.id, False),
        ("2026-08-14", VOICE.id, True),
        ("2026-08-14", {"id": VOICE.id, "future_field": 1}, True),
        ("2026-08-14", {"embedding": list(VOICE.embedding)}, False),
    ],
)
def test_voice_specifiers_by_version(local_server, version, voice, ok):
    resp = httpx.post(local_server.base_url + "/tts/bytes", json=tts_body(voice=voice),
                      headers=headers(local_server, version), timeout=10)
    assert resp.status_code == (200 if ok else 400), resp.text
    if not ok:
        assert "voice" in resp.text


def test_embedding_voice_speaks_the_catalogue_voice(local_server):
    by_id = httpx.post(local_server.base_url + "/tts/bytes", json=tts_body(),
                       headers=headers(local_server, "2024-06-10"), timeout=10)
    by_emb = httpx.post(local_server.base_url + "/tts/bytes",
                        json=tts_body(voice={"mode": "embedding", "embedding": list(VOICE.embedding)}),
                        headers=headers(local_server, "2024-06-10"), timeout=10)
    assert by_id.content == by_emb.content


def test_unknown_voice_is_404(http):
    body = check_new_error(http.post("/tts/bytes", json=tts_body(voice={"id": "no-such-voice"})), 404)
    assert "no-such-voice" in body["message"]


@pytest.mark.parametrize(
    "fields, needle",
    [
        ({"transcript": ""}, "transcript"),
        ({"transcript": "   "}, "transcript"),
        ({"transcript": "?!.,"}, "transcript"),
        ({"transcript": 5}, "transcript"),
        ({"transcript": None}, "transcript"),
        ({"model_id": "sonic-9"}, "model_id"),
        ({"model_id": 3}, "model_id"),
        ({"model_id": "sonic-2-2025-13-45"}, "model_id"),
        ({"voice": None}, "voice"),
        ({"voice": 12}, "voice"),
        ({"voice": {"mode": "id"}}, "voice.id"),
        ({"voice": {"mode": "clone", "id": "x"}}, "voice.mode"),
        ({"output_format": None}, "output_format"),
        ({"output_format": {"container": "ogg", "sample_rate": 44100}}, "container"),
        ({"output_format": raw_format("pcm_s24le")}, "encoding"),
        ({"output_format": raw_format(sample_rate=44101)}, "sample_rate"),
        ({"output_format": raw_format(sample_rate=True)}, "sample_rate"),
        ({"language": "xx"}, "language"),
        ({"language": 7}, "language"),
        ({"model_id": "sonic-english", "language": "fr"}, "language"),
        ({"language": "en", "locale": "en-GB"}, "locale"),
        ({"speed": "warp"}, "speed"),
        ({"speed": 2}, "speed"),
        ({"generation_config": {"speed": 1.6}}, "generation_config.speed"),
        ({"generation_config": {"speed": 0.5}}, "generation_config.speed"),
        ({"generation_config": {"volume": 2.5}}, "generation_config.volume"),
        ({"generation_config": {"volume": "loud"}}, "generation_config.volume"),
        ({"generation_config": {"emotion": 3}}, "generation_config.emotion"),
        ({"generation_config": []}, "generation_config"),
        ({"duration": -1}, "duration"),
        ({"duration": "long"}, "duration"),
        ({"save": "yes"}, "save"),
        ({"pronunciation_dict_id": 4}, "pronunciation_dict_id"),
        ({"add_timestamps": 1}, "add_timestamps"),
    ],
)
@pytest.mark.parametrize("route", ["bytes", "sse"])
def test_bad_fields_are_400_naming_the_field(http, fields, needle, route):
    body = check_new_error(http.post(f"/tts/{route}", json=tts_body(**fields)), 400)
    assert needle in body["message"], body


@pytest.mark.parametrize(
    "raw",
    [b"[" * 100_000, b"{" * 50_000, b"", b"not json", b"\xff\xfe", b"[1, 2]", b'"text"'],
)
def test_bad_json_bodies_are_400(http, raw):
    resp = http.post("/tts/bytes", content=raw, headers={"Content-Type": "application/json"})
    check_new_error(resp, 400)
    # The server is still up.
    assert http.post("/tts/bytes", json=tts_body()).status_code == 200


def test_wav_and_mp3_refused_on_sse(http):
    for fmt in ({"container": "wav", "encoding": "pcm_s16le", "sample_rate": 8000},
                {"container": "mp3", "sample_rate": 44100, "bit_rate": 128000}):
        body = check_new_error(http.post("/tts/sse", json=tts_body(output_format=fmt)), 400)
        assert "container" in body["message"]


def test_pronunciation_dict_id_is_accepted(http):
    assert http.post("/tts/bytes", json=tts_body(pronunciation_dict_id="pdict_123")).status_code == 200


# --- /tts/sse ----------------------------------------------------------------------------------


def test_sse_framing_and_audio(http):
    fmt = raw_format("pcm_s16le", 24000)
    resp = http.post("/tts/sse", json=tts_body(output_format=fmt))
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert b"\nid:" not in resp.content and not resp.content.startswith(b"id:")
    events = sse_events(resp.content)
    assert [e["type"] for e in events[:-1]] == ["chunk"] * (len(events) - 1)
    assert events[-1] == {"type": "done", "done": True, "status_code": 200}
    for e in events[:-1]:
        assert e["done"] is False and e["status_code"] == 206
        assert isinstance(e["step_time"], float) and e["step_time"] >= 0
        assert "context_id" not in e  # not sent, not echoed
        assert len(base64.b64decode(e["data"])) % 2 == 0  # whole samples per chunk
    audio = b"".join(base64.b64decode(e["data"]) for e in events[:-1])
    assert audio == expected_audio([TEXT], OutputFormat("raw", "pcm_s16le", 24000))


def test_sse_echoes_context_id_and_sends_timestamps(http):
    text = "Hello there. How are you?"
    resp = http.post("/tts/sse", json=tts_body(text, context_id="ctx-7", add_timestamps=True,
                                               add_phoneme_timestamps=True))
    events = sse_events(resp.content)
    assert all(e["context_id"] == "ctx-7" for e in events)
    types = [e["type"] for e in events]
    assert types.count("timestamps") == 2 and types.count("phoneme_timestamps") == 2
    audio = b"".join(base64.b64decode(e["data"]) for e in events if e["type"] == "chunk")
    seconds = len(audio) / 4 / 44100
    words = [w for e in events if e["type"] == "timestamps" for w in e["word_timestamps"]["words"]]
    assert words == ["Hello", "there.", "How", "are", "you?"]
    for kind, key in (("timestamps", "word_timestamps"), ("phoneme_timestamps", "phoneme_timestamps")):
        starts = [s for e in events if e["type"] == kind for s in e[key]["start"]]
        ends = [s for e in events if e["type"] == kind for s in e[key]["end"]]
        assert starts == sorted(starts) and ends == sorted(ends)
        assert all(0 <= s <= t <= seconds + 1e-6 for s, t in zip(starts, ends))
    # Each sentence's timestamps come after its audio.
    first_ts = types.index("timestamps")
    assert types[:first_ts].count("chunk") >= 1
    normalized = sse_events(http.post("/tts/sse", json=tts_body(
        text, add_timestamps=True, use_normalized_timestamps=True)).content)
    words = [w for e in normalized if e["type"] == "timestamps" for w in e["word_timestamps"]["words"]]
    assert words == ["Hello", "there", "How", "are", "you"]


def test_sse_mid_stream_error_is_an_event_inside_the_200(local_server, monkeypatch):
    """An engine failure after the first sentence: an error event with done: true."""
    import cartesia.server.v1.pipeline as pipeline

    real = pipeline.synthesize
    calls = []

    def failing(engine, text, *args, **kwargs):
        calls.append(text)
        if len(calls) > 1:
            raise RuntimeError("engine broke")
        return real(engine, text, *args, **kwargs)

    monkeypatch.setattr(pipeline, "synthesize", failing)
    resp = httpx.post(local_server.base_url + "/tts/sse", json=tts_body("First one. Second one."),
                      headers=headers(local_server, "2026-03-01"), timeout=10)
    assert resp.status_code == 200
    events = sse_events(resp.content)
    assert events[0]["type"] == "chunk"
    err = events[-1]
    assert err["type"] == "error" and err["done"] is True and err["status_code"] == 500
    assert err["title"] and err["message"] and err["request_id"]
    # A failure before anything was sent is a plain 500 in the version's shape.
    calls.clear()
    calls.append("prime")
    resp = httpx.post(local_server.base_url + "/tts/bytes", json=tts_body(),
                      headers=headers(local_server, "2024-11-13"), timeout=10)
    assert resp.status_code == 500 and resp.json()["status_code"] == 500


# --- limits ------------------------------------------------------------------------------------


def test_http_concurrency_limit(make_server):
    server = make_server(concurrency_limit=1, pace="realtime")
    url = server.base_url + "/tts/bytes"
    long_text = "A sentence that takes a few seconds to speak at the pace of audio"
    started = threading.Event()
    result: Dict[str, Any] = {}

    def slow() -> None:
        with httpx.stream("POST", url, json=tts_body(long_text), headers=headers(server), timeout=30) as r:
            started.set()
            result["len"] = sum(len(c) for c in r.iter_bytes())

    t = threading.Thread(target=slow)
    t.start()
    assert started.wait(10)
    resp = httpx.post(url, json=tts_body(), headers=headers(server), timeout=10)
    body = check_new_error(resp, 429, "concurrency_limited")
    assert "limit 1" in body["message"] and resp.headers["x-should-retry"] == "true"
    t.join(30)
    assert not t.is_alive() and result["len"] > 0
    assert httpx.post(url, json=tts_body(), headers=headers(server), timeout=10).status_code == 200


# --- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 429, 500])
def test_status_faults_for_the_next_requests(local_server, server_faults, status):
    server_faults.add(str(status), count=2, retry_after=1)
    for _ in range(2):
        resp = httpx.post(local_server.base_url + "/tts/bytes", json=tts_body(),
                          headers=headers(local_server), timeout=10)
        check_new_error(resp, status)
        assert resp.headers["Retry-After"] == "1"
    ok = httpx.post(local_server.base_url + "/tts/sse", json=tts_body(), headers=headers(local_server),
                    timeout=10)
    assert ok.status_code == 200


def test_fault_header_per_request(http):
    resp = http.post("/tts/bytes", json=tts_body(), headers={"X-Cartesia-Fault": "503"})
    check_new_error(resp, 503)
    bad = http.post("/tts/bytes", json=tts_body(), headers={"X-Cartesia-Fault": "explode"})
    assert "X-Cartesia-Fault" in check_new_error(bad, 400)["message"]


def test_drop_cuts_the_bytes_body(http):
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/tts/bytes", json=tts_body(), headers={"X-Cartesia-Fault": "drop;after_frames=2"})


def test_stall_split_coalesce_keep_the_stream_intact(http):
    want = http.post("/tts/sse", json=tts_body()).content
    t0 = time.monotonic()
    stalled = http.post("/tts/sse", json=tts_body(),
                        headers={"X-Cartesia-Fault": "stall;after_frames=1;seconds=0.4"})
    assert time.monotonic() - t0 >= 0.4
    split = http.post("/tts/sse", json=tts_body(), headers={"X-Cartesia-Fault": "split;piece=7"})
    coalesced = http.post("/tts/bytes", json=tts_body(), headers={"X-Cartesia-Fault": "coalesce"})

    def audio(body: bytes) -> bytes:
        return b"".join(base64.b64decode(e["data"]) for e in sse_events(body) if e["type"] == "chunk")

    assert audio(stalled.content) == audio(split.content) == audio(want)
    assert coalesced.content == http.post("/tts/bytes", json=tts_body()).content


def test_malformed_sse_frame(http):
    resp = http.post("/tts/sse", json=tts_body(), headers={"X-Cartesia-Fault": "malformed;after_frames=1"})
    blocks = resp.content.decode().strip().split("\n\n")
    assert json.loads(blocks[0][6:])["type"] == "chunk"
    with pytest.raises(ValueError):
        json.loads(blocks[-1][6:])
    assert len(blocks) == 2


def test_cli_flags_and_config_checks():
    from cartesia.server.cli import build_parser
    from cartesia.server.config import ServerConfig

    args = build_parser().parse_args(
        ["--concurrency-limit", "3", "--max-sockets", "5", "--tts-ws-idle-timeout", "9",
         "--max-buffer-delay-ms", "0", "--context-expiry", "2.5"]
    )
    assert (args.concurrency_limit, args.max_sockets, args.tts_ws_idle_timeout,
            args.max_buffer_delay_ms, args.context_expiry) == (3, 5, 9.0, 0, 2.5)
    defaults = build_parser().parse_args([])
    assert defaults.tts_ws_idle_timeout == 300.0 and defaults.max_buffer_delay_ms == 3000
    for bad in ({"concurrency_limit": 0}, {"max_sockets": -1}, {"tts_ws_idle_timeout": 0},
                {"max_buffer_delay_ms": 5001}, {"context_expiry": 0}):
        with pytest.raises(ValueError):
            ServerConfig(**bad)


def test_a_client_that_leaves_mid_stream_gives_its_slot_back(make_server):
    server = make_server(concurrency_limit=1, pace="realtime")
    url = server.base_url + "/tts/sse"
    long_text = "A sentence that takes a few seconds to speak at the pace of audio"
    with httpx.stream("POST", url, json=tts_body(long_text), headers=headers(server), timeout=10) as r:
        next(r.iter_bytes())  # the stream has started; now leave
    for _ in range(50):
        if httpx.post(url, json=tts_body("Free again"), headers=headers(server), timeout=10).status_code == 200:
            return
        time.sleep(0.1)
    pytest.fail("the departed client's generation kept its concurrency slot")
