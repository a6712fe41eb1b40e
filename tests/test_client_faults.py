"""Injected server faults end in the right typed error, or a transparent retry, in bounded time."""

from __future__ import annotations

import time
from typing import Any

import pytest
from server_fixtures import LOAD_SLACK
from test_client_support import (  # noqa: F401  (fixtures)
    async_client,
    expected_audio,
    sync_client,
    voice,
)

from cartesia.errors import (
    AuthenticationError,
    CartesiaConnectionError,
    ChunkGapTimeoutError,
    ConnectTimeoutError,
    FirstAudioTimeoutError,
    RateLimitError,
    ServerError,
    StreamFormatError,
    TotalTimeoutError,
)

LONG = "Long enough for a dozen chunks of audio, so that faults can hit the middle of it."
TRANSPORTS = pytest.mark.parametrize("websocket", [True, False], ids=["ws", "http"])


def _on(websocket: bool) -> str:
    return "ws" if websocket else "stream"


# --- timeouts --------------------------------------------------------------------------------------


@TRANSPORTS
def test_sync_stall_mid_stream_is_a_chunk_gap_timeout(
    local_server: Any, server_faults: Any, voice: list, websocket: bool
) -> None:
    client = sync_client(local_server, chunk_gap_timeout=0.3)
    try:
        server_faults.add("stall", after_frames=2, seconds=6.0, on=_on(websocket))
        got = []
        start = time.monotonic()
        with pytest.raises(ChunkGapTimeoutError):
            for chunk in client.generate(transcript=LONG, voice=voice, websocket=websocket, stream=True):
                got.append(chunk["audio"])
        assert 0.25 < time.monotonic() - start < 1.5 + LOAD_SLACK
        assert len(got) == 2 and client.last_metrics.status == "timeout"
        out = client.generate(transcript="recovered", voice=voice, websocket=websocket)
        assert out["audio"] == expected_audio("recovered", voice)
    finally:
        client.close()


@TRANSPORTS
def test_sync_first_audio_and_total_timeouts(
    local_server: Any, server_faults: Any, voice: list, websocket: bool
) -> None:
    client = sync_client(local_server, first_audio_timeout=0.3)
    try:
        server_faults.add("stall", after_frames=0, seconds=6.0, on=_on(websocket))
        start = time.monotonic()
        with pytest.raises(FirstAudioTimeoutError):
            client.generate(transcript=LONG, voice=voice, websocket=websocket)
        assert time.monotonic() - start < 1.5 + LOAD_SLACK
    finally:
        client.close()
    client = sync_client(local_server, chunk_gap_timeout=0.5, total_timeout=0.3)
    try:
        server_faults.add("stall", after_frames=1, seconds=6.0, on=_on(websocket))
        start = time.monotonic()
        with pytest.raises(TotalTimeoutError):
            client.generate(transcript=LONG, voice=voice, websocket=websocket)
        assert time.monotonic() - start < 1.5 + LOAD_SLACK
    finally:
        client.close()


@TRANSPORTS
async def test_async_stall_timeouts(local_server: Any, server_faults: Any, voice: list, websocket: bool) -> None:
    async with async_client(local_server, chunk_gap_timeout=0.3, first_audio_timeout=0.3) as client:
        server_faults.add("stall", after_frames=2, seconds=6.0, on=_on(websocket))
        start = time.monotonic()
        got = []
        with pytest.raises(ChunkGapTimeoutError):
            async for c in await client.generate(transcript=LONG, voice=voice, websocket=websocket, stream=True):
                got.append(c)
        assert len(got) == 2 and time.monotonic() - start < 1.5 + LOAD_SLACK
        server_faults.add("stall", after_frames=0, seconds=6.0, on=_on(websocket))
        with pytest.raises(FirstAudioTimeoutError):
            await client.generate(transcript=LONG, voice=voice, websocket=websocket)
        out = await client.generate(transcript="ok again", voice=voice, websocket=websocket)
        assert out["audio"] == expected_audio("ok again", voice)


def test_connect_timeout_and_refused(voice: list) -> None:
    import socket

    # A listening socket that never accepts: the handshake cannot complete.
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(0)
    port = blackhole.getsockname()[1]
    try:
        from cartesia.tts import CartesiaTTS

        client = CartesiaTTS(api_key="k", base_url=f"http://127.0.0.1:{port}", connect_timeout=0.3, max_retries=1)
        start = time.monotonic()
        with pytest.raises((ConnectTimeoutError, CartesiaConnectionError)):
            client.generate(transcript="x", voice=voice)
        assert time.monotonic() - start < 3 + LOAD_SLACK
        client.close()
    finally:
        blackhole.close()
    client = CartesiaTTS(api_key="k", base_url=f"http://127.0.0.1:{port}", max_retries=2, backoff_factor=0.01)
    for websocket in (True, False):
        with pytest.raises(CartesiaConnectionError):  # nothing listens any more
            client.generate(transcript="x", voice=voice, websocket=websocket)
    client.close()


# --- status errors and retries ------------------------------------------------------------------------


@TRANSPORTS
def test_sync_429_is_retried_after_retry_after(
    local_server: Any, server_faults: Any, voice: list, websocket: bool
) -> None:
    client = sync_client(local_server)
    try:
        client.close()  # so the websocket handshake itself meets the 429
        server_faults.add("429", retry_after=0.3, on=_on(websocket))
        start = time.monotonic()
        out = client.generate(transcript="limited", voice=voice, websocket=websocket)
        assert time.monotonic() - start >= 0.3
        assert out["audio"] == expected_audio("limited", voice)
        assert client.last_metrics.attempts == 2
        server_faults.add("429", retry_after=0.05, count=0, on=_on(websocket))  # forever
        client.close()
        with pytest.raises(RateLimitError) as info:
            client.generate(transcript="limited", voice=voice, websocket=websocket)
        assert info.value.status_code == 429 and info.value.retry_after == pytest.approx(0.05)
        assert isinstance(info.value, ValueError)
    finally:
        client.close()


@TRANSPORTS
async def test_async_500_retried_then_server_error(
    local_server: Any, server_faults: Any, voice: list, websocket: bool
) -> None:
    async with async_client(local_server) as client:
        await client.close()
        server_faults.add("500", on=_on(websocket))
        out = await client.generate(transcript="flaky", voice=voice, websocket=websocket)
        assert out["audio"] == expected_audio("flaky", voice)
        assert client.last_metrics.attempts == 2
        await client.close()
        server_faults.add("500", count=0, on=_on(websocket))
        before = local_server.stats["http_requests"]
        with pytest.raises(ServerError) as info:
            await client.generate(transcript="flaky", voice=voice, websocket=websocket)
        assert info.value.status_code == 500 and client.last_metrics.attempts == 3
        if not websocket:
            assert local_server.stats["http_requests"] - before == 3


@TRANSPORTS
def test_bad_key_is_an_authentication_error_not_retried(make_server: Any, voice: list, websocket: bool) -> None:
    server = make_server(api_keys=["right-key"])
    from cartesia.tts import CartesiaTTS

    client = CartesiaTTS(api_key="wrong-key-123", base_url=server.host_for_env, backoff_factor=0.01)
    try:
        start = time.monotonic()
        with pytest.raises(AuthenticationError) as info:
            client.generate(transcript="x", voice=voice, websocket=websocket)
        # websockets 12 waits up to close_timeout (1 s) after a refused upgrade.
        assert time.monotonic() - start < 2.5 + LOAD_SLACK
        assert info.value.status_code == 401 and isinstance(info.value, ValueError)
        assert "wrong-key-123" not in str(info.value) and "wrong-key-123" not in repr(info.value)
        assert server.stats["auth_failures"] == 1  # 4xx: never retried
        with pytest.raises(AuthenticationError, match="^Failed to get voices. Error: "):
            client.get_voices()
    finally:
        client.close()


@TRANSPORTS
async def test_async_bad_key(make_server: Any, voice: list, websocket: bool) -> None:
    server = make_server(api_keys=["right-key"])
    from cartesia.tts import AsyncCartesiaTTS

    client = AsyncCartesiaTTS(api_key="wrong-key-456", base_url=server.host_for_env)
    try:
        with pytest.raises(AuthenticationError) as info:
            await client.generate(transcript="x", voice=voice, websocket=websocket)
        assert "wrong-key-456" not in str(info.value)
        assert server.stats["auth_failures"] == 1
    finally:
        await client.close()


# --- broken streams ---------------------------------------------------------------------------------


@TRANSPORTS
def test_malformed_frame_is_a_stream_format_error(
    local_server: Any, server_faults: Any, voice: list, websocket: bool
) -> None:
    client = sync_client(local_server)
    try:
        server_faults.add("malformed", after_frames=2, on=_on(websocket))
        start = time.monotonic()
        with pytest.raises(StreamFormatError):
            client.generate(transcript=LONG, voice=voice, websocket=websocket)
        assert time.monotonic() - start < 3 + LOAD_SLACK
        out = client.generate(transcript="fine", voice=voice, websocket=websocket)
        assert out["audio"] == expected_audio("fine", voice)
    finally:
        client.close()


async def test_async_malformed_frame(local_server: Any, server_faults: Any, voice: list) -> None:
    async with async_client(local_server) as client:
        for websocket in (True, False):
            server_faults.add("malformed", after_frames=1, on=_on(websocket))
            with pytest.raises(StreamFormatError):
                await client.generate(transcript=LONG, voice=voice, websocket=websocket)
            out = await client.generate(transcript="fine", voice=voice, websocket=websocket)
            assert out["audio"] == expected_audio("fine", voice)


def test_http_drop_mid_stream_and_before_audio(local_server: Any, server_faults: Any, voice: list) -> None:
    client = sync_client(local_server)
    try:
        server_faults.add("stall", after_frames=2, seconds=0.1, on="stream")
        server_faults.add("drop", after_frames=2, on="stream")
        got = []
        with pytest.raises(CartesiaConnectionError):
            for c in client.generate(transcript=LONG, voice=voice, websocket=False, stream=True):
                got.append(c["audio"])
        assert len(got) == 2 and expected_audio(LONG, voice).startswith(b"".join(got))
        server_faults.add("drop", after_frames=0, on="stream")
        out = client.generate(transcript=LONG, voice=voice, websocket=False)
        assert out["audio"] == expected_audio(LONG, voice) and client.last_metrics.attempts == 2
    finally:
        client.close()


async def test_async_http_drop(local_server: Any, server_faults: Any, voice: list) -> None:
    async with async_client(local_server) as client:
        # The pause lets the client take the first two frames before the connection dies
        # (aiohttp would otherwise report the broken body before handing out buffered data,
        # and the generation would be retried, correctly, as nothing had been delivered).
        server_faults.add("stall", after_frames=2, seconds=0.1, on="stream")
        server_faults.add("drop", after_frames=2, on="stream")
        with pytest.raises(CartesiaConnectionError):
            await client.generate(transcript=LONG, voice=voice, websocket=False)
        assert client.last_metrics.chunks == 2 and client.last_metrics.attempts == 1
        server_faults.add("drop", after_frames=0, on="stream")
        out = await client.generate(transcript=LONG, voice=voice, websocket=False)
        assert out["audio"] == expected_audio(LONG, voice)


@pytest.mark.parametrize("fault", ["split;piece=7", "split;piece=1", "coalesce", "coalesce;frames=3"])
def test_http_framing_is_independent_of_writes(local_server: Any, voice: list, fault: str) -> None:
    """One byte per write or everything in one write: the same audio, chunk for chunk."""
    client = sync_client(local_server)
    try:
        kind, _, param = fault.partition(";")
        options = {}
        if param:
            key, value = param.split("=")
            options[key] = int(value)
        # Small bodies for the split faults: one write per byte is slow on the server side.
        text = "Split me" if kind == "split" else LONG
        duration = 0.1 if options.get("piece") == 1 else None
        local_server.faults.add(kind, on="stream", **options)
        chunks = list(
            client.generate(transcript=text, voice=voice, websocket=False, stream=True, duration=duration)
        )
        assert b"".join(c["audio"] for c in chunks) == expected_audio(text, voice, duration=duration)
        assert all(len(c["audio"]) % 4 == 0 for c in chunks)
    finally:
        local_server.faults.clear()
        client.close()


@TRANSPORTS
def test_missing_key_is_an_authentication_error(
    make_server: Any, monkeypatch: pytest.MonkeyPatch, voice: list, websocket: bool
) -> None:
    monkeypatch.delenv("CARTESIA_API_KEY", raising=False)
    server = make_server(api_keys=["right-key"])
    from cartesia.tts import CartesiaTTS

    client = CartesiaTTS(base_url=server.host_for_env)
    try:
        assert client.api_key is None
        with pytest.raises(AuthenticationError, match="missing API key"):
            client.generate(transcript="x", voice=voice, websocket=websocket)
    finally:
        client.close()


@TRANSPORTS
def test_sync_stream_yields_as_data_arrives(
    local_server: Any, server_faults: Any, voice: list, websocket: bool
) -> None:
    """Chunks reach the caller while the server is still working, not when the body ends."""
    client = sync_client(local_server)
    try:
        client.generate(transcript="warm", voice=voice, websocket=websocket)
        server_faults.add("stall", after_frames=2, seconds=0.6, on=_on(websocket))
        start = time.monotonic()
        times = [time.monotonic() - start for _ in client.generate(
            transcript=LONG, voice=voice, websocket=websocket, stream=True
        )]
        assert times[1] < 0.4 < 0.6 <= times[2] + 0.05
    finally:
        client.close()


@TRANSPORTS
async def test_async_stream_yields_as_data_arrives(
    local_server: Any, server_faults: Any, voice: list, websocket: bool
) -> None:
    async with async_client(local_server) as client:
        await client.generate(transcript="warm", voice=voice, websocket=websocket)
        server_faults.add("stall", after_frames=2, seconds=0.6, on=_on(websocket))
        start = time.monotonic()
        stream = await client.generate(transcript=LONG, voice=voice, websocket=websocket, stream=True)
        times = [time.monotonic() - start async for _ in stream]
        assert times[1] < 0.4 < 0.6 <= times[2] + 0.05


async def test_async_ws_refused_upgrade_keeps_the_server_message(
    local_server: Any, server_faults: Any, voice: list
) -> None:
    """aiohttp drops the body of a refused upgrade ("429 Invalid response status"); the
    server's message is kept, as over HTTP."""
    async with async_client(local_server, max_retries=1) as client:
        await client.close()
        for status, cls in ((429, RateLimitError), (401, AuthenticationError), (500, ServerError)):
            server_faults.add(str(status), on="ws", count=1)
            with pytest.raises(cls) as info:
                await client.generate(transcript="x", voice=voice)
            assert f"injected fault: HTTP {status}" in str(info.value)
            assert "Invalid response status" not in str(info.value)
