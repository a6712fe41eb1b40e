"""``WS /tts/websocket`` of the local server over real sockets: contexts, interleaving,
continuations, flushes, cancel, timestamps, auth at the upgrade, limits, idle close, faults."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any, Dict, List, Optional

import aiohttp
import httpx
import pytest
from server_fixtures import WS_TIMEOUT
from test_server_v1_http import VOICE, expected_audio, raw_format, tts_body

from cartesia.server import LocalServer
from cartesia.server.audio import OutputFormat, StreamEncoder, synthesize
from cartesia.server.engines.tone import ToneEngine
from cartesia.server.v1.versions import LATEST

TIMEOUT = aiohttp.ClientTimeout(total=30)
F32 = OutputFormat("raw", "pcm_f32le", 44100)
#: What 4.2.0's no_more_inputs() sends, whatever the context used before.
END_MARKER = {
    "transcript": "",
    "continue": False,
    "model_id": "sonic-latest",
    "voice": "6ccbfb76-1fc6-48f7-b71d-91ac6298247b",
    "output_format": raw_format(),
}


def ws_url(server: LocalServer, version: Optional[str] = LATEST, **query: str) -> str:
    params = {"api_key": server.api_key, **query}
    if version is not None:
        params["cartesia_version"] = version
    return f"{server.ws_url}/tts/websocket?" + "&".join(f"{k}={v}" for k, v in params.items())


def ctx_input(context_id: str, transcript: str, **fields: Any) -> Dict[str, Any]:
    body = tts_body(transcript, context_id=context_id, max_buffer_delay_ms=0)
    body.update(fields)
    return body


async def receive_until_done(ws, context_ids, limit: float = 15) -> Dict[str, List[dict]]:
    """Frames per context until every one of ``context_ids`` has a ``done: true`` frame."""
    out: Dict[str, List[dict]] = {c: [] for c in context_ids}
    open_ids = set(context_ids)
    deadline = time.monotonic() + limit
    while open_ids:
        msg = await asyncio.wait_for(ws.receive(), max(deadline - time.monotonic(), 0.01))
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        frame = json.loads(msg.data)
        assert "type" in frame and "context_id" in frame, frame
        out.setdefault(frame["context_id"], []).append(frame)
        if frame["done"]:
            open_ids.discard(frame["context_id"])
    return out


def audio(frames: List[dict]) -> bytes:
    return b"".join(base64.b64decode(f["data"]) for f in frames if f["type"] == "chunk")


def connect(session: aiohttp.ClientSession, url: str):
    # The request context manager, not the awaited socket: aiohttp < 3.10 sockets are no context
    # managers themselves, and the lowest-versions CI job runs aiohttp 3.9.
    return session.ws_connect(url, **WS_TIMEOUT)


# --- one context -------------------------------------------------------------------------------


async def test_one_context_frames_and_audio(local_server):
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(local_server)) as ws:
            await ws.send_json(ctx_input("c1", "Hello websocket"))
            frames = (await receive_until_done(ws, ["c1"]))["c1"]
    *chunks, done = frames
    assert done == {"type": "done", "done": True, "status_code": 200, "context_id": "c1"}
    for f in chunks:
        assert f["type"] == "chunk" and f["done"] is False and f["status_code"] == 206
        assert f["flush_id"] == 1 and f["step_time"] >= 0
    assert audio(frames) == expected_audio(["Hello websocket"], F32)


async def test_continuations_are_concatenated_verbatim(local_server):
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(local_server)) as ws:
            # Default buffering: text waits for a sentence end (or the end of the context).
            for piece in ("Hel", "lo wor", "ld, how are", " you"):
                body = ctx_input("c1", piece, **{"continue": True})
                del body["max_buffer_delay_ms"]
                await ws.send_json(body)
            await ws.send_json({**END_MARKER, "context_id": "c1"})
            frames = (await receive_until_done(ws, ["c1"]))["c1"]
    assert audio(frames) == expected_audio(["Hello world, how are you"], F32)


async def test_buffer_delay_zero_speaks_each_input_at_once(local_server):
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(local_server)) as ws:
            await ws.send_json(ctx_input("c1", "First part", **{"continue": True}))
            first = await asyncio.wait_for(ws.receive_json(), 5)  # before any further input
            assert first["type"] == "chunk"
            await ws.send_json(ctx_input("c1", " second part", **{"continue": False}))
            frames = [first] + (await receive_until_done(ws, ["c1"]))["c1"]
    assert audio(frames) == expected_audio(["First part", " second part"], F32)


async def test_buffer_delay_releases_unfinished_text(local_server):
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(local_server)) as ws:
            t0 = time.monotonic()
            await ws.send_json(ctx_input("c1", "No sentence end", max_buffer_delay_ms=400,
                                         **{"continue": True}))
            first = await asyncio.wait_for(ws.receive_json(), 5)
            waited = time.monotonic() - t0
            await ws.send_json({**END_MARKER, "context_id": "c1"})
            await receive_until_done(ws, ["c1"])
    assert first["type"] == "chunk" and 0.35 <= waited < 3.0


async def test_sentence_end_releases_buffered_text(local_server):
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(local_server)) as ws:
            body = ctx_input("c1", "A full sentence. And more", max_buffer_delay_ms=5000,
                             **{"continue": True})
            await ws.send_json(body)
            # Within 4.5 s: the 5 s buffer delay did not release it.
            first = await asyncio.wait_for(ws.receive_json(), 4.5)
            assert first["type"] == "chunk"
            await ws.send_json({**END_MARKER, "context_id": "c1"})
            frames = [first] + (await receive_until_done(ws, ["c1"]))["c1"]
    assert audio(frames) == expected_audio(["A full sentence. ", "And more"], F32)


# --- many contexts -----------------------------------------------------------------------------


async def test_contexts_interleave_and_stay_in_order(local_server):
    texts = {f"ctx-{i}": f"Context number {i} speaks a longer sentence here" for i in range(4)}
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(local_server)) as ws:
            for cid, text in texts.items():
                await ws.send_json(ctx_input(cid, text))
            order: List[str] = []
            out: Dict[str, List[dict]] = {c: [] for c in texts}
            while any(not f or not f[-1]["done"] for f in out.values()):
                frame = await asyncio.wait_for(ws.receive_json(), 10)
                order.append(frame["context_id"])
                out[frame["context_id"]].append(frame)
    # Interleaved: some context sends again after another one sent in between.
    switches = sum(1 for a, b in zip(order, order[1:]) if a != b)
    assert switches > len(texts)
    for cid, text in texts.items():
        assert out[cid][-1]["type"] == "done"
        assert audio(out[cid]) == expected_audio([text], F32)


async def test_flush_ids_and_flush_done(local_server):
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(local_server)) as ws:
            await ws.send_json(ctx_input("c1", "First segment", **{"continue": True}))
            await ws.send_json(ctx_input("c1", "", flush=True, **{"continue": True}))
            await ws.send_json(ctx_input("c1", "Second segment", **{"continue": True}))
            await ws.send_json(ctx_input("c1", "", flush=True, **{"continue": True}))
            await ws.send_json(ctx_input("c1", "Third", **{"continue": False}))
            frames = (await receive_until_done(ws, ["c1"]))["c1"]
    kinds = [(f["type"], f.get("flush_id")) for f in frames]
    flush_done = [i for i, k in enumerate(kinds) if k[0] == "flush_done"]
    assert [kinds[i][1] for i in flush_done] == [1, 2]
    for i, (kind, fid) in enumerate(kinds):
        if kind == "chunk":
            segment = 1 + sum(1 for j in flush_done if j < i)
            assert fid == segment, kinds
    assert all(frames[i]["flush_done"] is True and frames[i]["done"] is False for i in flush_done)
    assert kinds[-1] == ("done", None)
    assert audio(frames) == expected_audio(["First segment", "Second segment", "Third"], F32)


async def test_cancel_stops_one_context(make_server):
    server = make_server(pace="realtime")
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(server)) as ws:
            long_text = "This context speaks for several seconds at the pace of real audio"
            await ws.send_json(ctx_input("doomed", long_text))
            await ws.send_json(ctx_input("kept", "Short one"))
            first = await asyncio.wait_for(ws.receive_json(), 5)
            assert first["type"] == "chunk"
            await ws.send_json({"context_id": "doomed", "cancel": True})
            sent_cancel = time.monotonic()
            late: List[dict] = []
            kept = []
            while not kept or not kept[-1]["done"]:
                frame = await asyncio.wait_for(ws.receive_json(), 10)
                if frame["context_id"] == "doomed":
                    late.append((time.monotonic() - sent_cancel, frame))
                else:
                    kept.append(frame)
            # Nothing more for the cancelled context after the cancel was processed.
            await ws.send_json(ctx_input("doomed", "more text"))
            await ws.send_json(ctx_input("after", "Probe"))
            probe = await receive_until_done(ws, ["after"])
    # Only frames already on their way when the cancel arrived (realtime pace: one per 0.1 s of
    # audio; the cancelled context had seconds of audio left).
    assert len(late) <= 5 and all(t < 1.0 and f["type"] == "chunk" for t, f in late), late
    assert kept[-1]["type"] == "done"
    assert probe.get("doomed", []) == []
    assert server.stats["generations_cancelled"] == 1


async def test_empty_first_transcript_is_a_400_error_frame(local_server):
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(local_server, "2025-11-04")) as ws:
            await ws.send_json(ctx_input("c1", "", **{"continue": True}))
            err = await asyncio.wait_for(ws.receive_json(), 5)
            # The socket lives on.
            await ws.send_json(ctx_input("c2", "Still here"))
            ok = await receive_until_done(ws, ["c2"])
    assert err["type"] == "error" and err["status_code"] == 400 and err["done"] is True
    assert err["context_id"] == "c1" and "transcript" in err["error"]
    assert ok["c2"][-1]["type"] == "done"


async def test_no_more_inputs_with_other_defaults_ends_the_context(local_server):
    fmt = raw_format("pcm_s16le", 16000)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(local_server)) as ws:
            await ws.send_json(ctx_input("c1", "Hello there", output_format=fmt, model_id="sonic-3",
                                         **{"continue": True}))
            await ws.send_json({**END_MARKER, "context_id": "c1"})
            frames = (await receive_until_done(ws, ["c1"]))["c1"]
            # A second end marker for the finished context is ignored; text for it is refused.
            await ws.send_json({**END_MARKER, "context_id": "c1"})
            await ws.send_json(ctx_input("c1", "Again"))
            refused = await asyncio.wait_for(ws.receive_json(), 5)
    assert frames[-1]["type"] == "done"
    assert audio(frames) == expected_audio(["Hello there"], OutputFormat("raw", "pcm_s16le", 16000))
    assert refused["type"] == "error" and refused["context_id"] == "c1"
    assert "finished" in refused["message"]


async def test_timestamps_over_websocket(local_server):
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(local_server)) as ws:
            await ws.send_json(ctx_input("c1", "Hello there. ", add_timestamps=True,
                                         add_phoneme_timestamps=True, **{"continue": True}))
            await ws.send_json(ctx_input("c1", "How are you?", **{"continue": False}))
            frames = (await receive_until_done(ws, ["c1"]))["c1"]
    seconds = len(audio(frames)) / 4 / 44100
    words = [f["word_timestamps"] for f in frames if f["type"] == "timestamps"]
    assert [w for ts in words for w in ts["words"]] == ["Hello", "there.", "How", "are", "you?"]
    starts = [s for ts in words for s in ts["start"]]
    ends = [s for ts in words for s in ts["end"]]
    assert starts == sorted(starts) and ends == sorted(ends) and ends[-1] <= seconds + 1e-6
    # The second input's words are on the context's clock, after the first input's audio.
    first_len = len(expected_audio(["Hello there. "], F32)) / 4 / 44100
    assert words[1]["start"][0] >= first_len - 1e-3
    phonemes = [f for f in frames if f["type"] == "phoneme_timestamps"]
    assert phonemes and all(f["phoneme_timestamps"]["phonemes"] for f in phonemes)


# --- bad messages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, context_id",
    [
        ("[" * 100_000, None),
        ('{"context_id": "c9", "transcript": ', "c9"),
        ("[1, 2, 3]", None),
        (json.dumps({"context_id": 5, "transcript": "x"}), None),
        (json.dumps({**tts_body("x"), "context_id": "c9", "continue": "yes"}), "c9"),
        (json.dumps({**tts_body("x"), "context_id": "c9", "output_format": raw_format("mp3")}), "c9"),
        (json.dumps({**tts_body("x"), "context_id": "c9", "max_buffer_delay_ms": 99999}), "c9"),
        (json.dumps({**tts_body("x"), "context_id": "c9", "model_id": "nope"}), "c9"),
    ],
    ids=["deep", "torn", "array", "id-type", "continue-type", "format", "delay", "model"],
)
async def test_bad_message_fails_only_its_context(local_server, raw, context_id):
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(local_server)) as ws:
            await ws.send_json(ctx_input("good", "A sentence that keeps going for a while",
                                         **{"continue": True}))
            await ws.send_str(raw)
            await ws.send_json(ctx_input("good", " and then ends", **{"continue": False}))
            frames = await receive_until_done(ws, ["good"])
            errors = [f for fs in frames.values() for f in fs if f["type"] == "error"]
            if not errors:
                errors = [await asyncio.wait_for(ws.receive_json(), 5)]
    assert len(errors) == 1
    err = errors[0]
    assert err["status_code"] == 400 and err["done"] is True and err["context_id"] == context_id
    assert set(err) >= {"error_code", "title", "message", "request_id"}
    assert frames["good"][-1]["type"] == "done"
    assert audio(frames["good"]) == expected_audio(
        ["A sentence that keeps going for a while", " and then ends"], F32
    )


async def test_bad_later_input_ends_that_context(local_server):
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(local_server)) as ws:
            await ws.send_json(ctx_input("c1", "Some text", **{"continue": True}))
            await ws.send_json({"context_id": "c1", "transcript": 42})
            frames = (await receive_until_done(ws, ["c1"]))["c1"]
    assert frames[-1]["type"] == "error" and "transcript" in frames[-1]["message"]


async def test_context_id_required_from_2026_03_01(local_server):
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(local_server, "2026-03-01")) as ws:
            await ws.send_json(tts_body("No id"))
            err = await asyncio.wait_for(ws.receive_json(), 5)
        async with connect(session, ws_url(local_server, "2024-11-13")) as ws:
            await ws.send_json(tts_body("No id"))
            frames = []
            while not frames or not frames[-1]["done"]:
                frames.append(await asyncio.wait_for(ws.receive_json(), 5))
    assert err["type"] == "error" and "context_id" in err["message"]
    assert frames[-1]["type"] == "done" and frames[-1]["context_id"]


# --- handshake: auth, versions, caps -----------------------------------------------------------


async def refused(url: str, headers: Optional[Dict[str, str]] = None) -> aiohttp.WSServerHandshakeError:
    """The handshake error of a websocket upgrade the server must refuse."""
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            async with session.ws_connect(url, headers=headers or {}, **WS_TIMEOUT):
                pass
    return info.value


async def speaks(url: str, headers: Optional[Dict[str, str]] = None) -> None:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.ws_connect(url, headers=headers or {}, **WS_TIMEOUT) as ws:
            await ws.send_json(ctx_input("c1", "Hi there"))
            frames = await receive_until_done(ws, ["c1"])
    assert frames["c1"][-1]["type"] == "done"


async def test_bad_key_is_refused_at_the_upgrade(make_server):
    server = make_server(api_keys=["good"])
    url = f"{server.ws_url}/tts/websocket"
    for query, hdrs in [("", {}), ("?api_key=bad", {}), ("", {"Authorization": "Bearer bad"})]:
        assert (await refused(url + query, hdrs)).status == 401
    # The refusal is a plain HTTP answer with the versioned JSON error, never a 101.
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode()}
    async with httpx.AsyncClient(timeout=10) as client:
        resp = await client.get(url + "?api_key=bad", headers=upgrade)
    assert resp.status_code == 401 and resp.json()["error_code"] == "unauthorized"
    for query, hdrs in [("?api_key=good", {}), ("", {"Authorization": "Bearer good"}),
                        ("", {"X-API-Key": "good"})]:
        await speaks(url + query, hdrs)


async def test_access_token_on_the_websocket(make_server):
    server = make_server(api_keys=["good"])
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        tts = (await client.post("/access-token", json={"grants": {"tts": True}},
                                 headers={"X-API-Key": "good"})).json()["token"]
        stt = (await client.post("/access-token", json={"grants": {"stt": True}},
                                 headers={"X-API-Key": "good"})).json()["token"]
    url = f"{server.ws_url}/tts/websocket"
    await speaks(f"{url}?access_token={tts}")
    assert (await refused(f"{url}?access_token={stt}")).status == 403


async def test_version_query_wins_on_websockets(local_server):
    url = f"{local_server.ws_url}/tts/websocket?api_key=k&cartesia_version=2024-06-10"
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.ws_connect(url, headers={"Cartesia-Version": "2026-08-14"}, **WS_TIMEOUT) as ws:
            await ws.send_json(ctx_input("c1", "", **{"continue": True}))
            err = await asyncio.wait_for(ws.receive_json(), 5)
    assert set(err) == {"type", "done", "status_code", "context_id", "error"}  # the old shape
    assert (await refused(url.replace("2024-06-10", "1999-01-01"))).status == 400


async def test_socket_cap_is_429_at_the_upgrade(make_server):
    server = make_server(max_sockets=2)
    url = ws_url(server)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.ws_connect(url, **WS_TIMEOUT), session.ws_connect(url, **WS_TIMEOUT):
            assert (await refused(url)).status == 429
    # Closed sockets give their places back.
    for _ in range(20):
        try:
            await speaks(url)
            return
        except aiohttp.WSServerHandshakeError:
            await asyncio.sleep(0.1)
    pytest.fail("the socket cap never freed up")


async def test_concurrency_limit_is_an_error_frame(make_server):
    server = make_server(concurrency_limit=2, pace="realtime")
    long_text = "A context that speaks for a few seconds at the pace of real audio"
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(server)) as ws:
            await ws.send_json(ctx_input("a", long_text))
            await ws.send_json(ctx_input("b", long_text))
            await ws.send_json(ctx_input("c", "Too many"))
            frames = await receive_until_done(ws, ["c"])
            err = frames["c"][-1]
            # HTTP generations count against the same limit.
            resp = await session.post(server.base_url + "/tts/bytes", json=tts_body(),
                                      headers={"X-API-Key": server.api_key})
            assert resp.status == 429
            await ws.send_json({"context_id": "a", "cancel": True})
            await ws.send_json({"context_id": "b", "cancel": True})
            await asyncio.sleep(0.2)
            await ws.send_json(ctx_input("d", "Room again"))
            again = await receive_until_done(ws, ["d"])
    assert err["type"] == "error" and err["status_code"] == 429
    assert err["error_code"] == "concurrency_limited"
    assert again["d"][-1]["type"] == "done"


async def test_idle_socket_is_closed_with_1000(make_server):
    server = make_server(tts_ws_idle_timeout=0.5)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(server)) as ws:
            await ws.send_json(ctx_input("c1", "Before the silence"))
            await receive_until_done(ws, ["c1"])
            t0 = time.monotonic()
            msg = await asyncio.wait_for(ws.receive(), 10)
            idle = time.monotonic() - t0
    assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 1000
    assert 0.4 <= idle < 5


async def test_waiting_context_expires_with_done(make_server):
    server = make_server(context_expiry=0.3)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(server)) as ws:
            await ws.send_json(ctx_input("c1", "Left open", **{"continue": True}))
            t0 = time.monotonic()
            frames = (await receive_until_done(ws, ["c1"]))["c1"]
    assert frames[-1]["type"] == "done" and 0.25 <= time.monotonic() - t0 < 5
    assert audio(frames) == expected_audio(["Left open"], F32)


# --- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [1000, 1001, 1011])
async def test_close_mid_context(local_server, server_faults, code):
    server_faults.add(f"close{code}", after_frames=2)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(local_server)) as ws:
            await ws.send_json(ctx_input("c1", "A sentence long enough for several chunks"))
            frames = []
            while True:
                msg = await asyncio.wait_for(ws.receive(), 10)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                frames.append(json.loads(msg.data))
    assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == code
    assert [f["type"] for f in frames] == ["chunk", "chunk"]


async def test_drop_and_malformed_on_the_websocket(local_server):
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(local_server, fault="drop;after_frames=1")) as ws:
            await ws.send_json(ctx_input("c1", "A sentence long enough for several chunks"))
            first = await asyncio.wait_for(ws.receive(), 10)
            after = await asyncio.wait_for(ws.receive(), 10)
        assert first.type == aiohttp.WSMsgType.TEXT
        assert after.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)
        assert ws.close_code in (None, 1006)
        async with connect(session, ws_url(local_server)) as ws:
            body = ctx_input("c1", "A sentence long enough for several chunks", fault="malformed;after_frames=1")
            await ws.send_json(body)
            await asyncio.wait_for(ws.receive_json(), 10)
            bad = await asyncio.wait_for(ws.receive(), 10)
            with pytest.raises(ValueError):
                json.loads(bad.data)
            # The socket still serves other contexts.
            await ws.send_json(ctx_input("c2", "Fine"))
            ok = await receive_until_done(ws, ["c2"])
    assert ok["c2"][-1]["type"] == "done"


async def test_status_fault_refuses_the_upgrade(local_server, server_faults):
    server_faults.add("429", on="ws", retry_after=2)
    err = await refused(ws_url(local_server))
    assert err.status == 429 and err.headers["Retry-After"] == "2"


async def test_slow_reader_applies_backpressure(make_server):
    """A client that stops reading stops the generation (bounded output in flight)."""
    server = make_server()
    text = " ".join(["This sentence is spoken again and again."] * 60)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(server)) as ws:
            await ws.send_json(ctx_input("c1", text))
            await asyncio.wait_for(ws.receive_json(), 10)
            await asyncio.sleep(1.0)  # not reading: the server must block on its sends
            started = server.stats["generations_completed"]
            assert started == 0
            frames = (await receive_until_done(ws, ["c1"], limit=60))["c1"]
    assert frames[-1]["type"] == "done"


async def test_many_contexts_and_sse_streams_at_once(local_server):
    """60 websocket contexts on 3 sockets and 20 SSE streams together, every one complete."""
    texts = {f"m{i}": f"Generation {i} of many at once" for i in range(60)}

    async def sock(session, ids):
        async with connect(session, ws_url(local_server)) as ws:
            for cid in ids:
                await ws.send_json(ctx_input(cid, texts[cid]))
            return await receive_until_done(ws, ids, limit=60)

    async def sse(session, i):
        async with session.post(local_server.base_url + "/tts/sse", json=tts_body(f"Stream {i} at once"),
                                headers={"X-API-Key": "k"}) as resp:
            assert resp.status == 200
            body = await resp.read()
        return body.count(b'"type":"done"')

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=90)) as session:
        ids = list(texts)
        results = await asyncio.gather(
            *(sock(session, ids[k::3]) for k in range(3)), *(sse(session, i) for i in range(20))
        )
    frames: Dict[str, List[dict]] = {}
    for r in results[:3]:
        frames.update(r)
    assert results[3:] == [1] * 20
    for cid in ("m0", "m31", "m59"):
        assert audio(frames[cid]) == expected_audio([texts[cid]], F32)
    assert all(frames[c][-1]["type"] == "done" for c in texts)


async def test_idle_close_fault_after_a_context(local_server, server_faults):
    server_faults.add("ws_idle_close", seconds=0.2)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(local_server)) as ws:
            await ws.send_json(ctx_input("c1", "Then idle"))
            await receive_until_done(ws, ["c1"])
            msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 1000


async def test_server_shutdown_closes_sockets_with_1001(make_server):
    server = make_server()
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(server)) as ws:
            await ws.send_json(ctx_input("c1", "Before shutdown"))
            await receive_until_done(ws, ["c1"])
            loop = asyncio.get_running_loop()
            stopping = loop.run_in_executor(None, server.stop)
            msg = await asyncio.wait_for(ws.receive(), 10)
            await asyncio.wait_for(stopping, 10)
    assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 1001


async def test_duration_caps_each_piece_of_a_context(local_server):
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(local_server)) as ws:
            text = "One two three four five six seven"
            await ws.send_json(ctx_input("c1", text, duration=0.5, **{"continue": True}))
            await ws.send_json(ctx_input("c1", text, duration=0.5, **{"continue": False}))
            frames = (await receive_until_done(ws, ["c1"]))["c1"]
    assert len(audio(frames)) == 2 * 4 * 22050


async def test_waiting_text_is_bounded(local_server):
    from cartesia.server.v1.tts_ws import MAX_PENDING_CHARS

    piece = "x" * 20_000  # no sentence end: it all waits in the buffer
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(local_server)) as ws:
            for _ in range(MAX_PENDING_CHARS // len(piece) + 1):
                await ws.send_json(ctx_input("c1", piece, max_buffer_delay_ms=5000, **{"continue": True}))
            err = await asyncio.wait_for(ws.receive_json(), 10)
            await ws.send_json(ctx_input("c2", "Still serving"))
            ok = await receive_until_done(ws, ["c2"])
    assert err["type"] == "error" and err["status_code"] == 413 and err["context_id"] == "c1"
    assert ok["c2"][-1]["type"] == "done"


@pytest.mark.parametrize(
    "version, voice, ok",
    [
        ("2024-06-10", {"mode": "embedding", "embedding": list(VOICE.embedding)}, True),
        ("2025-11-04", {"embedding": list(VOICE.embedding)}, True),
        ("2026-03-01", {"mode": "embedding", "embedding": list(VOICE.embedding)}, False),
        ("2026-03-01", VOICE.id, False),
        ("2026-08-14", VOICE.id, True),
    ],
)
async def test_voice_specifiers_by_version_on_the_websocket(local_server, version, voice, ok):
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(local_server, version)) as ws:
            await ws.send_json(ctx_input("c1", "Which voice", voice=voice))
            frames = (await receive_until_done(ws, ["c1"]))["c1"]
    if ok:
        assert frames[-1]["type"] == "done"
        assert audio(frames) == expected_audio(["Which voice"], F32)
    else:
        err = frames[-1]
        assert err["type"] == "error" and err["status_code"] == 400 and "voice" in json.dumps(err)


async def test_closing_a_socket_gives_its_slots_back(make_server):
    server = make_server(concurrency_limit=1, pace="realtime")
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(server)) as ws:
            await ws.send_json(ctx_input("a", "A context that would speak for several seconds more"))
            assert (await asyncio.wait_for(ws.receive_json(), 5))["type"] == "chunk"
            busy = await session.post(server.base_url + "/tts/bytes", json=tts_body(),
                                      headers={"X-API-Key": server.api_key})
            assert busy.status == 429
        # The socket is gone mid-context: its slot must come back.
        for _ in range(50):
            resp = await session.post(server.base_url + "/tts/bytes", json=tts_body("Free again"),
                                      headers={"X-API-Key": server.api_key})
            await resp.read()
            if resp.status == 200:
                return
            await asyncio.sleep(0.1)
    pytest.fail("the closed socket's context kept its concurrency slot")


@pytest.mark.parametrize("delay", [0, None], ids=["unbuffered", "buffered"])
async def test_generation_config_of_a_continuation_applies_from_that_input(local_server, delay):
    # 4.2.0's tts_websocket_emotion example: push("Well maybe if you just "), then
    # push("loosen up a little!", generation_config={"emotion": "angry"}).
    first, second, third = "Well maybe if you just ", "loosen up a little!", " Please."
    angrier = {"emotion": "angry", "volume": 2.0, "speed": 1.5}
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(local_server)) as ws:
            inputs = [
                ctx_input("c1", first, **{"continue": True}),
                ctx_input("c1", second, generation_config=angrier, **{"continue": True}),
                ctx_input("c1", third, **{"continue": False}),  # no settings: keeps the angry ones
            ]
            for body in inputs:
                if delay is None:
                    del body["max_buffer_delay_ms"]  # the first input waits in the buffer
                await ws.send_json(body)
            frames = (await receive_until_done(ws, ["c1"]))["c1"]
    engine = ToneEngine()
    encoder = StreamEncoder(F32, engine.sample_rate)
    angry = {"emotion": ["angry"], "volume": 2.0, "speed": 1.5}
    # Buffered, the first input (no sentence end) is spoken when the new settings arrive, and the
    # second at its sentence end: the same pieces either way.
    pieces = [(first, {}), (second, angry), (third, angry)]
    want = b"".join(encoder.feed(synthesize(engine, t, VOICE, **kw).samples) for t, kw in pieces)
    want += encoder.finish()
    assert audio(frames) == want
    assert want != expected_audio([t for t, _ in pieces], F32)  # the settings change the audio


async def test_bad_generation_config_of_a_continuation_ends_that_context(local_server):
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(local_server)) as ws:
            await ws.send_json(ctx_input("c1", "Fine so far", **{"continue": True}))
            await ws.send_json(ctx_input("c1", "then", generation_config={"volume": 9}, **{"continue": True}))
            frames = (await receive_until_done(ws, ["c1"]))["c1"]
    assert frames[-1]["type"] == "error" and "generation_config.volume" in frames[-1]["message"]


async def test_the_same_generation_config_on_every_input_keeps_the_buffer_whole(local_server):
    # 4.2.0's ctx.push sends the context's generation_config with every input: text buffered
    # across them is still spoken as one piece (at its sentence end), not cut at each input.
    cfg = {"speed": 1.2}
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with connect(session, ws_url(local_server)) as ws:
            for piece in ("Hel", "lo wor", "ld, how are", " you"):
                body = ctx_input("c1", piece, generation_config=cfg, **{"continue": True})
                del body["max_buffer_delay_ms"]
                await ws.send_json(body)
            await ws.send_json({**END_MARKER, "context_id": "c1", "generation_config": cfg})
            frames = (await receive_until_done(ws, ["c1"]))["c1"]
    assert audio(frames) == expected_audio(["Hello world, how are you"], F32, speed=1.2)
