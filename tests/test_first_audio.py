"""Time to first audio: the first audio reaches the caller as soon as it arrives, on every path, and
a streamed current-API call leaves its connection to the next one (no reconnect per generation)."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Callable, Dict, Iterator, List

import httpx
import pytest
from current_ws_support import async_conn, defaults, sync_conn
from test_client_support import async_client, run_isolated, sync_client, voice  # noqa: F401  (fixture)
from test_server_v1_http import VOICE

from cartesia import AsyncCartesia, Cartesia
from cartesia._client.transport.http_sync import install_cookie_filter
from cartesia.streaming import AudioBuffer

TEXT = "Hello there. How are you today?"  # several frames of 0.1 s
FORMAT = {"container": "raw", "encoding": "pcm_f32le", "sample_rate": 44100}
CURRENT = dict(model_id="sonic-3", transcript=TEXT, voice={"mode": "id", "id": VOICE.id}, output_format=FORMAT)
#: The server stalls this long after the first frame: far longer than any wait below, so a first
#: audio held back until the next frame fails the wait instead of arriving late.
STALL_S = 20.0
WAIT_S = 10.0  # every wait for the first audio (the tests never measure how long it took)


def _local_port(stream: Any) -> int:
    port: int = stream.extensions["network_stream"].get_extra_info("client_addr")[1]
    return port


# --- the connection of an SSE stream serves the next call ---------------------------------------


def test_sync_sse_stream_leaves_its_connection_to_the_next_call(local_server: Any) -> None:
    with Cartesia(api_key=local_server.api_key, base_url=local_server.base_url, timeout=WAIT_S) as client:
        ports: List[int] = []
        for _ in range(3):
            stream = client.tts.generate_sse(**CURRENT)
            ports.append(_local_port(stream.response))
            for event in stream:
                if event.type == "done":
                    break  # callers often stop at `done`: the body's end must already be read
        assert len(set(ports)) == 1, ports


async def test_async_sse_stream_leaves_its_connection_to_the_next_call(local_server: Any) -> None:
    async with AsyncCartesia(api_key=local_server.api_key, base_url=local_server.base_url, timeout=WAIT_S) as client:
        ports: List[int] = []
        for n in range(4):
            stream = await client.tts.generate_sse(**CURRENT)
            ports.append(_local_port(stream.response))
            async for event in stream:
                if n % 2 and event.type == "done":
                    break
        assert len(set(ports)) == 1, ports


# --- the first audio reaches the caller while the server stalls after it -------------------------


def _v0(client: Any, voice: list, websocket: bool) -> Iterator[bytes]:
    for chunk in client.generate(transcript=TEXT, voice=voice, stream=True, websocket=websocket):
        yield chunk["audio"]


def _sync_paths(server: Any, voice: list) -> Dict[str, Callable[[List[Any]], Iterator[bytes]]]:
    def v0(websocket: bool) -> Callable[[List[Any]], Iterator[bytes]]:
        def run(closers: List[Any]) -> Iterator[bytes]:
            client = sync_client(server)
            closers.append(client)
            return _v0(client, voice, websocket)

        return run

    def current(kind: str) -> Callable[[List[Any]], Iterator[bytes]]:
        def run(closers: List[Any]) -> Iterator[bytes]:
            client = Cartesia(api_key=server.api_key, base_url=server.base_url, timeout=WAIT_S)
            closers.append(client)
            if kind == "sse":
                return (e.audio for e in client.tts.generate_sse(**CURRENT) if e.type == "chunk")
            return client.tts.generate(**CURRENT).iter_bytes()

        return run

    def ctx(closers: List[Any]) -> Iterator[bytes]:
        conn = sync_conn(server).enter()
        closers.append(conn)
        context = conn.context(**defaults(output_format=FORMAT))
        context.push(TEXT, continue_=False)
        return (e.audio for e in context.receive() if e.type == "chunk")

    return {"v0-http": v0(False), "v0-ws": v0(True), "sse": current("sse"), "bytes": current("bytes"), "ctx": ctx}


SYNC_PATHS = ["v0-http", "v0-ws", "sse", "bytes", "ctx"]


def _stall_after_first_frame(server: Any, path: str) -> None:
    on = "ws" if path in ("v0-ws", "ctx") else "stream"
    server.faults.add("stall", after_frames=1, seconds=STALL_S, on=on)


@pytest.mark.parametrize("path", SYNC_PATHS)
def test_sync_first_audio_arrives_while_the_server_stalls(
    local_server: Any, server_faults: Any, voice: list, path: str
) -> None:
    _stall_after_first_frame(local_server, path)
    closers: List[Any] = []
    try:
        audio = _sync_paths(local_server, voice)[path](closers)
        # A client that held the first frame until the next one would end here in its own
        # first-audio/read timeout (WAIT_S), long before the stall ends.
        first = next(a for a in audio if a)
        assert first and local_server.faults.pending() == []
    finally:
        for c in reversed(closers):
            c.close()


def _async_paths(server: Any, voice: list) -> Dict[str, Callable[[List[Any]], AsyncIterator[bytes]]]:
    async def v0(closers: List[Any], websocket: bool) -> AsyncIterator[bytes]:
        client = async_client(server)
        closers.append(client)
        async for chunk in await client.generate(transcript=TEXT, voice=voice, stream=True, websocket=websocket):
            yield chunk["audio"]

    async def current(closers: List[Any], kind: str) -> AsyncIterator[bytes]:
        client = AsyncCartesia(api_key=server.api_key, base_url=server.base_url, timeout=WAIT_S)
        closers.append(client)
        if kind == "sse":
            async for event in await client.tts.generate_sse(**CURRENT):
                if event.type == "chunk":
                    yield event.audio
        else:
            async for data in (await client.tts.generate(**CURRENT)).iter_bytes():
                yield data

    async def ctx(closers: List[Any]) -> AsyncIterator[bytes]:
        conn = await async_conn(server).enter()
        closers.append(conn)
        context = conn.context(**defaults(output_format=FORMAT))
        await context.push(TEXT, continue_=False)
        async for event in context.receive():
            if event.type == "chunk":
                yield event.audio

    return {
        "v0-http": lambda c: v0(c, False),
        "v0-ws": lambda c: v0(c, True),
        "sse": lambda c: current(c, "sse"),
        "bytes": lambda c: current(c, "bytes"),
        "ctx": ctx,
    }


@pytest.mark.parametrize("path", SYNC_PATHS)
async def test_async_first_audio_arrives_while_the_server_stalls(
    local_server: Any, server_faults: Any, voice: list, path: str
) -> None:
    _stall_after_first_frame(local_server, path)
    closers: List[Any] = []
    audio = _async_paths(local_server, voice)[path](closers)
    try:

        async def first_audio() -> bytes:
            async for a in audio:
                if a:
                    return a
            return b""

        first = await asyncio.wait_for(first_audio(), WAIT_S)
        assert first and local_server.faults.pending() == []
    finally:
        await audio.aclose()  # type: ignore[attr-defined]
        for c in reversed(closers):
            await c.close()


# --- what the HTTP clients skip between the response head and the first audio -------------------


@pytest.mark.parametrize("client_class", [httpx.Client, httpx.AsyncClient])
def test_cookies_set_by_a_response_are_still_kept(client_class: Any) -> None:
    # The jar skips responses without Set-Cookie (most of them): one that sets one still counts.
    client = client_class()
    try:
        install_cookie_filter(client)
        request = client.build_request("GET", "http://tts.example.test/v0/voices")
        client.cookies.extract_cookies(httpx.Response(200, request=request))
        assert len(client.cookies) == 0
        client.cookies.extract_cookies(
            httpx.Response(200, headers={"set-cookie": "lb=node-2; Path=/"}, request=request)
        )
        assert client.cookies.get("lb") == "node-2"
        assert "lb=node-2" in client.build_request("GET", "http://tts.example.test/x").headers["cookie"]
    finally:
        if isinstance(client, httpx.Client):
            client.close()
        else:
            run_isolated(client.aclose())


# --- the first frame of a read goes out before the frames that came with it are decoded ---------

LONG = "Long enough for a dozen frames of audio, all of them written at once by the server."


def _first_chunk_and_buffer(chunks: Iterator[Any], buffer: AudioBuffer) -> Any:
    for chunk in chunks:
        samples = chunk.get("samples") if isinstance(chunk, dict) else getattr(chunk, "samples", None)
        if samples:
            return samples, len(buffer)
    raise AssertionError("no audio")


def test_sync_first_frame_of_a_burst_is_handed_over_before_the_rest_is_decoded(
    local_server: Any, server_faults: Any, voice: list
) -> None:
    # The whole body in one write: the first reads hold many frames. The sink (decoded into by
    # the parser) shows what was decoded when the first chunk reached the caller.
    server_faults.add("coalesce", on="stream")
    client = sync_client(local_server)
    try:
        buffer = AudioBuffer()
        stream = client.generate(transcript=LONG, voice=voice, stream=True, websocket=False, sink=buffer)
        samples, decoded = _first_chunk_and_buffer(iter(stream), buffer)
        assert decoded == samples, (decoded, samples)
        rest = sum(c["samples"] for c in stream)
        assert len(buffer) == samples + rest and rest > 4 * samples
    finally:
        client.close()


async def test_async_first_frame_of_a_burst_is_handed_over_before_the_rest_is_decoded(
    local_server: Any, server_faults: Any, voice: list
) -> None:
    server_faults.add("coalesce", on="stream")
    client = async_client(local_server)
    try:
        buffer = AudioBuffer()
        stream = await client.generate(transcript=LONG, voice=voice, stream=True, websocket=False, sink=buffer)
        first = None
        async for chunk in stream:
            if first is None and chunk["samples"]:
                first = (chunk["samples"], len(buffer))
        assert first is not None and first[0] == first[1], first
        assert len(buffer) > 5 * first[0]
    finally:
        await client.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_sse_first_event_of_a_burst_is_handed_over_before_the_rest_is_decoded(
    local_server: Any, server_faults: Any, mode: str
) -> None:
    server_faults.add("coalesce", on="stream")
    args = dict(CURRENT, transcript=LONG)
    buffer = AudioBuffer()
    client_args = dict(api_key=local_server.api_key, base_url=local_server.base_url, timeout=WAIT_S)
    if mode == "sync":
        with Cartesia(**client_args) as client:
            seen = [(e.type, len(buffer)) for e in client.tts.generate_sse(**args, sink=buffer)]
    else:

        async def main() -> List[Any]:
            async with AsyncCartesia(**client_args) as client:
                return [(e.type, len(buffer)) async for e in await client.tts.generate_sse(**args, sink=buffer)]

        seen = run_isolated(main())
    decoded_at_chunk = [n for kind, n in seen if kind == "chunk"]
    assert seen[-1][0] == "done" and len(decoded_at_chunk) > 5
    # One frame in the sink when the first chunk event was handed over, not the whole read.
    per_frame = len(buffer) / len(decoded_at_chunk)
    assert decoded_at_chunk[0] <= 1.5 * per_frame, (decoded_at_chunk[:3], per_frame)
