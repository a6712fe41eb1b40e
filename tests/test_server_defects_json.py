"""Deeply nested or ill-typed JSON: a 400 for that request only, never a 500 or a dead socket."""

from __future__ import annotations

import asyncio

import aiohttp
import httpx
import pytest
from server_fixtures import WS_TIMEOUT, audio_of

from cartesia.server.engines.tone import ToneEngine
from cartesia.server.generation import Renderer, parse_generation

TIMEOUT = aiohttp.ClientTimeout(total=30)
KEY = {"X-API-Key": "k"}
#: What broke the old server: ``json.loads`` raises RecursionError on it.
DEEP = "[" * 100_000
VOICE = "Milo"


def body(text: str = "Hello nesting", **extra) -> dict:
    return {"transcript": text, "voice": VOICE, **extra}


@pytest.mark.parametrize(
    "payload",
    [DEEP, '{"transcript": "hi", "voice": ' + DEEP, '{"transcript": ' + '{"a": ' * 100_000],
    ids=["bare", "in-voice", "in-transcript"],
)
def test_deep_json_body_is_a_400(local_server, payload):
    url = local_server.base_url + "/v0/audio/stream"
    resp = httpx.post(url, content=payload, headers=KEY, timeout=30)
    assert resp.status_code == 400
    assert resp.json() == {"error": "request body: JSON nested too deeply", "status_code": 400}
    # The server is fine afterwards.
    ok = httpx.post(url, json=body(), headers=KEY, timeout=30)
    assert ok.status_code == 200 and ok.content.endswith(b'"done":true,"step_time":0.0,"length":0}')


def test_deep_json_to_the_fault_control_endpoint_is_a_400(local_server):
    url = local_server.base_url + "/_emulator/faults"
    resp = httpx.post(url, content=DEEP, headers=KEY, timeout=30)
    assert resp.status_code == 400 and "nested too deeply" in resp.json()["error"]
    assert httpx.get(url, headers=KEY, timeout=30).json() == []


@pytest.mark.parametrize(
    "fault, field",
    [
        ({"spec": [[["drop"]]]}, "`spec` must be a string, got an array"),
        ({"kind": "stall", "seconds": [[1]]}, "'seconds' must be a finite number, got an array"),
        ({"kind": "drop", "after_frames": True}, "must be an integer, got a boolean"),
        ({"kind": {"k": "drop"}}, "'kind' must be a string, got an object"),
        ({"kind": "drop", "count": 1.5}, "'count' must be an integer, got a number"),
    ],
)
def test_ill_typed_fault_fields_are_a_400_naming_the_field(local_server, fault, field):
    url = local_server.base_url + "/_emulator/faults"
    resp = httpx.post(url, json=fault, headers=KEY, timeout=30)
    assert resp.status_code == 400 and field in resp.json()["error"]
    assert httpx.get(url, headers=KEY, timeout=30).json() == []


def expected_audio(text: str) -> bytes:
    """What the tone engine renders for ``body(text)``."""
    return Renderer(ToneEngine()).render_sync(parse_generation(body(text))).samples.tobytes()


async def _frames(
    ws: aiohttp.ClientWebSocketResponse, want: dict, ack: bool, n_errors: int
) -> list:
    """Read until every context in ``want`` (id -> list of frames) has its done frame and
    ``n_errors`` error frames came; acknowledges audio frames if asked. Returns the errors."""
    errors = []
    open_ids = set(want)
    while open_ids or len(errors) < n_errors:
        msg = await asyncio.wait_for(ws.receive_json(), 10)
        cid = msg["context_id"]
        if "error" in msg:
            errors.append(msg)
            continue
        assert cid in want, msg
        want[cid].append(msg)
        if msg["done"]:
            open_ids.discard(cid)
        elif ack:
            await ws.send_json({"context_id": cid})
    return errors


@pytest.mark.parametrize("route", ["/v0/audio/websocket", "/v0/experimental/audio/websocket"])
async def test_deep_json_message_is_an_error_frame_and_other_contexts_complete(local_server, route):
    ack = "experimental" in route
    text = "The other context keeps going. " * 4
    url = f"{local_server.ws_url}{route}?api_key=k"
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.ws_connect(url, **WS_TIMEOUT) as ws:
            await ws.send_json({"context_id": "a", "data": body(text)})
            # The experimental route holds context a until its first frame is acknowledged, so
            # a is certainly still running when the deep message arrives.
            first = await asyncio.wait_for(ws.receive_json(), 10)
            assert first["context_id"] == "a" and not first["done"]
            await ws.send_str(DEEP)
            await ws.send_str('{"context_id": "bad", "data": ' + DEEP)
            await ws.send_json({"context_id": "bad-fault", "data": body(), "fault": [["drop"]]})
            if ack:
                await ws.send_json({"context_id": "a"})
            frames = {"a": [first]}
            errors = await _frames(ws, frames, ack, n_errors=3)
            deep = [e for e in errors if e["context_id"] is None]
            assert len(deep) == 2
            for err in deep:
                assert err == {
                    "context_id": None,
                    "done": True,
                    "error": "message: JSON nested too deeply",
                    "status_code": 400,
                }
            (bad_fault,) = [e for e in errors if e["context_id"] == "bad-fault"]
            assert bad_fault["status_code"] == 400 and bad_fault["done"] is True
            assert "`fault` must be a string, got an array" in bad_fault["error"]
            assert frames["a"][-1] == {"done": True, "context_id": "a"}
            assert audio_of(frames["a"]) == expected_audio(text)
            # The socket still takes new work.
            await ws.send_json({"context_id": "b", "data": body("After the storm.")})
            after = {"b": []}
            assert await _frames(ws, after, ack, n_errors=0) == []
            assert audio_of(after["b"]) == expected_audio("After the storm.")
            assert not ws.closed


@pytest.mark.parametrize(
    "field, status",
    [("transcript", 422), ("voice", 422), ("model_id", 422), ("duration", 422),
     ("chunk_time", 422)],
)  # fmt: skip
def test_nested_values_the_decoder_takes_are_refused_by_name(local_server, field, status):
    # 400 levels: JSON the decoder accepts, but no message may format (or recurse into) it.
    nested = "[" * 400 + "]" * 400
    fields = {"transcript": '"Hello"', "voice": '"Milo"', field: nested}
    payload = "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}"
    resp = httpx.post(
        local_server.base_url + "/v0/audio/stream", content=payload, headers=KEY, timeout=30
    )
    assert resp.status_code == status
    error = resp.json()["error"]
    assert f"`{field}`" in error and len(error) < 200
