"""The API key never shows up in exception messages, tracebacks, reprs or log lines."""

from __future__ import annotations

import logging
import socket
import traceback
from typing import Any

import pytest
from test_client_support import voice  # noqa: F401  (fixture)

from cartesia._client.redact import RedactingFilter, redact
from cartesia.errors import CartesiaError
from cartesia.tts import AsyncCartesiaTTS, CartesiaTTS

KEY = "sk_live_TOPSECRET_0123456789"


def _everything_about(exc: BaseException) -> str:
    """Every text a user could see or log about ``exc``: message, repr, full chained traceback."""
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))]
    seen = set()
    cur: Any = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        parts += [str(cur), repr(cur)] + [repr(a) for a in getattr(cur, "args", ())]
        cur = cur.__cause__ or cur.__context__
    return "\n".join(parts)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # every logger, including the websockets library's
    return caplog


def test_redact_helpers() -> None:
    assert redact(f"ws://h/v0/audio/websocket?api_key={KEY}&x=1") == "ws://h/v0/audio/websocket?api_key=***&x=1"
    assert KEY not in redact(f"{{'X-API-Key': '{KEY}'}}")
    assert KEY not in redact(f"Authorization: Bearer {KEY}")
    assert redact(f"the key {KEY} leaked", KEY) == "the key *** leaked"
    record = logging.LogRecord("x", logging.DEBUG, __file__, 1, "GET %s", (f"/v0?api_key={KEY}",), None)
    assert RedactingFilter().filter(record) and KEY not in record.getMessage()


def test_reprs_have_no_key(voice: list) -> None:
    sync = CartesiaTTS(api_key=KEY, base_url="localhost:9")
    aio = AsyncCartesiaTTS(api_key=KEY, base_url="localhost:9")
    stream = sync.generate(transcript="x", voice=voice, stream=True)
    for obj in (sync, aio, stream, stream.metrics, sync._endpoints):
        assert KEY not in repr(obj) and KEY not in str(obj)
    stream.close()
    sync.close()


@pytest.mark.parametrize("websocket", [True, False], ids=["ws", "http"])
def test_sync_errors_and_logs_have_no_key(
    make_server: Any, debug_logs: pytest.LogCaptureFixture, voice: list, websocket: bool
) -> None:
    server = make_server(api_keys=["another-key"])
    failures = []
    client = CartesiaTTS(api_key=KEY, base_url=server.host_for_env, max_retries=2, backoff_factor=0.01)
    with pytest.raises(CartesiaError) as info:  # 401
        client.generate(transcript="x", voice=voice, websocket=websocket)
    failures.append(info.value)
    client.close()
    dead = CartesiaTTS(
        api_key=KEY, base_url=f"localhost:{_free_port()}", max_retries=2, backoff_factor=0.01
    )
    with pytest.raises(CartesiaError) as info:  # connection refused (after a logged retry)
        dead.generate(transcript="x", voice=voice, websocket=websocket)
    failures.append(info.value)
    with pytest.raises(CartesiaError) as info:
        dead.get_voices()
    failures.append(info.value)
    dead.close()
    for exc in failures:
        assert KEY not in _everything_about(exc)
    assert debug_logs.records, "expected debug/retry log lines to inspect"
    assert KEY not in debug_logs.text
    assert all(KEY not in r.getMessage() for r in debug_logs.records)


def test_ws_mid_stream_close_has_no_key(local_server: Any, server_faults: Any, debug_logs: Any, voice: list) -> None:
    client = CartesiaTTS(api_key=KEY, base_url=local_server.host_for_env)
    server_faults.add("close1011", after_frames=1, on="ws")
    with pytest.raises(CartesiaError) as info:
        client.generate(transcript="A sentence of several chunks.", voice=voice)
    client.close()
    assert KEY not in _everything_about(info.value)
    assert KEY not in debug_logs.text


@pytest.mark.parametrize("websocket", [True, False], ids=["ws", "http"])
async def test_async_errors_and_logs_have_no_key(
    make_server: Any, debug_logs: pytest.LogCaptureFixture, voice: list, websocket: bool
) -> None:
    server = make_server(api_keys=["another-key"])
    client = AsyncCartesiaTTS(api_key=KEY, base_url=server.host_for_env, backoff_factor=0.01)
    failures = []
    try:
        with pytest.raises(CartesiaError) as info:
            await client.generate(transcript="x", voice=voice, websocket=websocket)
        failures.append(info.value)
    finally:
        await client.close()
    dead = AsyncCartesiaTTS(api_key=KEY, base_url=f"localhost:{_free_port()}", max_retries=2, backoff_factor=0.01)
    try:
        with pytest.raises(CartesiaError) as info:
            await dead.generate(transcript="x", voice=voice, websocket=websocket)
        failures.append(info.value)
    finally:
        await dead.close()
    for exc in failures:
        assert KEY not in _everything_about(exc)
    assert KEY not in debug_logs.text


def test_a_short_key_does_not_garble_messages() -> None:
    """With ``CARTESIA_API_KEY=any`` (the README's example) messages stay readable; a key is
    still scrubbed from URL queries and header dumps, whatever its length."""
    assert redact("unknown voice id 'Germany'", "any") == "unknown voice id 'Germany'"
    assert redact("too many concurrent contexts", "man") == "too many concurrent contexts"
    assert redact("ws://h/v0/audio/websocket?api_key=any", "any") == "ws://h/v0/audio/websocket?api_key=***"
    assert redact("{'X-API-Key': 'any'}", "any") == "{'X-API-Key': '***'}"
    assert redact(f"the key {KEY} leaked", KEY) == "the key *** leaked"


@pytest.mark.parametrize("websocket", [True, False], ids=["ws", "http"])
def test_server_messages_survive_a_short_key(make_server: Any, websocket: bool) -> None:
    server = make_server(api_keys=["any"])
    client = CartesiaTTS(api_key="any", base_url=server.host_for_env, max_retries=1)
    try:
        with pytest.raises(CartesiaError) as info:
            client.generate(transcript="Hello", voice="Germany-voice", websocket=websocket)
        assert "unknown voice id 'Germany-voice'" in str(info.value)
        assert "***" not in str(info.value)
    finally:
        client.close()
