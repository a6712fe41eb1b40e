"""The websocket lifecycle: reuse, transparent replacement, mid-stream closes, cancels, interrupts."""

from __future__ import annotations

import time
from typing import Any

import pytest
from server_fixtures import LOAD_SLACK
from test_client_support import (  # noqa: F401  (fixtures)
    async_client,
    expected_audio,
    expected_chunks,
    sync_client,
    voice,
)

from cartesia.errors import WebSocketClosedError

LONG = "This sentence is long enough to be cut into a good number of chunks, twelve or more."


def _delta(server: Any, before: dict, key: str) -> int:
    return server.stats[key] - before.get(key, 0)


def _settled_delta(server: Any, before: dict, key: str, want: int, wait: float = 1.0) -> int:
    """The counter change once the server has processed messages still in flight."""
    end = time.monotonic() + wait
    while _delta(server, before, key) != want and time.monotonic() < end:
        time.sleep(0.005)
    return _delta(server, before, key)


def test_sync_socket_is_reused_across_generations(local_server: Any, voice: list) -> None:
    client = sync_client(local_server)
    before = dict(local_server.stats)
    try:
        reused = []
        for text in ("one", "two", "three"):
            out = client.generate(transcript=text, voice=voice)
            assert out["audio"] == expected_audio(text, voice)
            reused.append(client.last_metrics.connection_reused)
        stream = client.generate(transcript="four", voice=voice, stream=True)
        assert b"".join(c["audio"] for c in stream) == expected_audio("four", voice)
        reused.append(stream.metrics.connection_reused)
        assert reused == [False, True, True, True]
        assert _delta(local_server, before, "ws_connections") == 1
    finally:
        client.close()


@pytest.mark.parametrize("code", [1000, 1001, 1011])
def test_sync_idle_closed_socket_is_replaced_transparently(
    local_server: Any, server_faults: Any, voice: list, code: int
) -> None:
    client = sync_client(local_server)
    try:
        client.generate(transcript="warm up", voice=voice)
        server_faults.add("ws_idle_close", code=code, seconds=0)
        client.generate(transcript="first", voice=voice)  # the server closes the socket after it
        end = time.monotonic() + 5
        while not client._is_websocket_closed() and time.monotonic() < end:
            time.sleep(0.01)  # wait for the close frame, so this is the idle case, not the race
        assert client._is_websocket_closed()
        before = dict(local_server.stats)
        out = client.generate(transcript="second", voice=voice)
        assert out["audio"] == expected_audio("second", voice)
        assert client.last_metrics.connection_reused is False
        assert client.last_metrics.attempts == 1
        assert _delta(local_server, before, "ws_connections") == 1
    finally:
        client.close()


def test_sync_close_racing_the_next_request_is_retried(local_server: Any, server_faults: Any, voice: list) -> None:
    # No pause: the close frame may arrive after the next request went out. Either way the
    # caller gets the full audio, once.
    client = sync_client(local_server)
    try:
        for _ in range(5):
            server_faults.add("ws_idle_close", code=1000, seconds=0)
            client.generate(transcript="a", voice=voice)
            out = client.generate(transcript="b", voice=voice)
            assert out["audio"] == expected_audio("b", voice)
    finally:
        client.close()


@pytest.mark.parametrize("fault,code", [("close1011", 1011), ("close1000", 1000), ("drop", 1006)])
def test_sync_mid_stream_close_raises_then_next_generation_works(
    local_server: Any, server_faults: Any, voice: list, fault: str, code: int
) -> None:
    client = sync_client(local_server)
    try:
        server_faults.add(fault, after_frames=2, on="ws")
        got = []
        start = time.monotonic()
        with pytest.raises(WebSocketClosedError) as info:
            for chunk in client.generate(transcript=LONG, voice=voice, stream=True):
                got.append(chunk["audio"])
        assert time.monotonic() - start < 2.0 + LOAD_SLACK
        assert isinstance(info.value, RuntimeError) and info.value.code == code
        # Exactly the two chunks sent before the close, never replayed.
        assert len(got) == 2
        assert expected_audio(LONG, voice).startswith(b"".join(got))
        assert client.last_metrics.status == "error"
        out = client.generate(transcript="after", voice=voice)
        assert out["audio"] == expected_audio("after", voice)
        assert client.last_metrics.connection_reused is False
    finally:
        client.close()


@pytest.mark.parametrize("fault", ["close1011", "drop"])
def test_sync_close_before_any_audio_is_retried_transparently(
    local_server: Any, server_faults: Any, voice: list, fault: str
) -> None:
    client = sync_client(local_server)
    try:
        client.generate(transcript="warm up", voice=voice)
        server_faults.add(fault, after_frames=0, on="ws")
        chunks = list(client.generate(transcript=LONG, voice=voice, stream=True))
        assert b"".join(c["audio"] for c in chunks) == expected_audio(LONG, voice)
        assert client.last_metrics.attempts == 2
    finally:
        client.close()


def test_sync_break_and_close_cancel_without_leaking_frames(local_server: Any, voice: list) -> None:
    client = sync_client(local_server)
    try:
        for _ in range(3):
            for i, _chunk in enumerate(client.generate(transcript=LONG, voice=voice, stream=True)):
                if i == 1:
                    break
            # Late frames of the abandoned generation never reach this one.
            assert client.generate(transcript="clean", voice=voice)["audio"] == expected_audio("clean", voice)
        with client.generate(transcript=LONG, voice=voice, stream=True) as stream:
            next(stream)
        assert stream.metrics.status == "cancelled"
        assert client.generate(transcript="next", voice=voice)["audio"] == expected_audio("next", voice)
        assert client.last_metrics.connection_reused is True
    finally:
        client.close()


def test_sync_streams_interleave_on_one_socket(local_server: Any, voice: list) -> None:
    """A second generation no longer cancels a half-read first one: both run on one socket."""
    client = sync_client(local_server)
    before = dict(local_server.stats)
    try:
        first = client.generate(transcript=LONG, voice=voice, stream=True)
        got = [next(first)["audio"]]  # keep it alive, half read
        second = client.generate(transcript="second", voice=voice)
        assert second["audio"] == expected_audio("second", voice)
        got += [c["audio"] for c in first]
        assert b"".join(got) == expected_audio(LONG, voice)
        assert _delta(local_server, before, "ws_connections") == 1
    finally:
        client.close()


def test_sync_interrupts_ack_and_cancel(local_server: Any, voice: list) -> None:
    client = sync_client(local_server, experimental_ws_handle_interrupts=True)
    try:
        before = dict(local_server.stats)
        out = client.generate(transcript=LONG, voice=voice)
        assert out["audio"] == expected_audio(LONG, voice)
        n = expected_chunks(LONG, voice)
        assert _settled_delta(local_server, before, "acks", n) == n  # one acknowledgement per chunk
        for _ in range(3):  # several cancels in a row, then a clean generation on the same socket
            before = dict(local_server.stats)
            for i, _chunk in enumerate(client.generate(transcript=LONG, voice=voice, stream=True)):
                if i == 2:
                    break
            out = client.generate(transcript="after cancel", voice=voice)
            assert out["audio"] == expected_audio("after cancel", voice)
            assert _settled_delta(local_server, before, "generations_cancelled", 1) == 1
            assert client.last_metrics.connection_reused is True
    finally:
        client.close()


async def test_async_socket_reuse_and_idle_replacement(local_server: Any, server_faults: Any, voice: list) -> None:
    before = dict(local_server.stats)
    async with async_client(local_server) as client:
        for text in ("one", "two"):
            assert (await client.generate(transcript=text, voice=voice))["audio"] == expected_audio(text, voice)
        assert client.last_metrics.connection_reused is True
        assert _settled_delta(local_server, before, "ws_connections", 1) == 1  # `async with` opened it
        for code in (1000, 1001, 1011):
            server_faults.add("ws_idle_close", code=code, seconds=0)
            await client.generate(transcript="closing", voice=voice)
            out = await client.generate(transcript="fresh", voice=voice)
            assert out["audio"] == expected_audio("fresh", voice)


@pytest.mark.parametrize("fault,code", [("close1011", 1011), ("drop", 1006)])
async def test_async_mid_stream_close(
    local_server: Any, server_faults: Any, voice: list, fault: str, code: int
) -> None:
    async with async_client(local_server) as client:
        server_faults.add(fault, after_frames=2, on="ws")
        got = []
        with pytest.raises(WebSocketClosedError) as info:
            async for chunk in await client.generate(transcript=LONG, voice=voice, stream=True):
                got.append(chunk["audio"])
        assert info.value.code == code and len(got) == 2
        assert (await client.generate(transcript="after", voice=voice))["audio"] == expected_audio("after", voice)
        server_faults.add(fault, after_frames=0, on="ws")
        out = await client.generate(transcript=LONG, voice=voice)
        assert out["audio"] == expected_audio(LONG, voice) and client.last_metrics.attempts == 2


@pytest.mark.parametrize("experimental", [False, True], ids=["plain", "interrupts"])
async def test_async_break_cancels_context(local_server: Any, voice: list, experimental: bool) -> None:
    before = dict(local_server.stats)
    async with async_client(local_server, experimental_ws_handle_interrupts=experimental) as client:
        for _ in range(3):
            async for _chunk in await client.generate(transcript=LONG, voice=voice, stream=True):
                break
            out = await client.generate(transcript="clean", voice=voice)
            assert out["audio"] == expected_audio("clean", voice)
        async with await client.generate(transcript=LONG, voice=voice, stream=True) as stream:
            await stream.__anext__()
        assert stream.metrics.status == "cancelled"
        assert (await client.generate(transcript="x", voice=voice))["audio"] == expected_audio("x", voice)
        if experimental:
            assert _settled_delta(local_server, before, "generations_cancelled", 4) == 4
        assert _settled_delta(local_server, before, "ws_connections", 1) == 1


def test_server_restart_between_generations(make_server: Any, voice: list) -> None:
    """The server goes away (deploy/restart) while the socket is idle; the next call reconnects."""
    server = make_server()
    port = server.port
    client = sync_client(server)
    try:
        assert client.generate(transcript="before", voice=voice)["audio"] == expected_audio("before", voice)
        server.stop()
        restarted = make_server(port=port)
        out = client.generate(transcript="after", voice=voice)
        assert out["audio"] == expected_audio("after", voice)
        assert client.last_metrics.connection_reused is False
        assert restarted.stats["ws_connections"] == 1
    finally:
        client.close()


async def test_async_server_restart_between_generations(make_server: Any, voice: list) -> None:
    server = make_server()
    port = server.port
    async with async_client(server) as client:
        assert (await client.generate(transcript="before", voice=voice))["audio"] == expected_audio("before", voice)
        server.stop()
        make_server(port=port)
        out = await client.generate(transcript="after", voice=voice)
        assert out["audio"] == expected_audio("after", voice)
        assert client.last_metrics.connection_reused is False
