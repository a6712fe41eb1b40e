"""The async websocket with and without its frame prefilter: routing, pings, fragments, closes,
backpressure and the audio itself are the same on both paths (real servers over loopback)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator, List, Optional

import aiohttp
import pytest
from test_client_support import async_client, expected_audio, voice  # noqa: F401  (fixtures)
from test_ws_transport_perf import LIMIT, fragmenting_server, pinging_server  # noqa: F401

from cartesia._client.errors import Where
from cartesia._client.transport import ws_async
from cartesia._client.transport.ws_async import AsyncSocket, handshake_trace
from cartesia.errors import WebSocketClosedError
from cartesia.protocol import v0

LONG = "This sentence is long enough to be cut into a good number of chunks, twelve or more."


@pytest.fixture(params=[True, False], ids=["prefilter", "aiohttp-only"])
def fast(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    if request.param and not ws_async.FAST_FRAMES:
        pytest.skip("this aiohttp decodes text frames itself: no prefilter (aiohttp < 3.12)")
    monkeypatch.setattr(ws_async, "FAST_FRAMES", request.param)
    return bool(request.param)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(trace_configs=[handshake_trace()]) as s:
        yield s


class _Recording:
    """aiohttp's parser behind the prefilter, with a record of every read handed to it."""

    def __init__(self, inner: Any, log: List[bytes]) -> None:
        self._inner, self._log = inner, log

    def feed_data(self, data: bytes) -> Any:
        self._log.append(bytes(data))
        return self._inner.feed_data(data)

    def feed_eof(self) -> None:
        self._inner.feed_eof()


async def _socket(url: str, session: aiohttp.ClientSession, fast: bool) -> AsyncSocket:
    sock = AsyncSocket(url, None, 8, v0)
    await sock.connect(session, Where("test ", url, None, connect_timeout=LIMIT), LIMIT)
    assert (sock.prefilter is not None) is fast  # this aiohttp's connection takes the prefilter
    return sock


async def test_fragments_and_pings_are_aiohttps_and_frames_are_routed(
    fragmenting_server: str, session: aiohttp.ClientSession, fast: bool  # noqa: F811
) -> None:
    sock = await _socket(fragmenting_server, session, fast)
    try:
        slots = [sock.open_context(cid) for cid in ("a", "b")]
        for cid in ("b", "a"):
            await sock.send(json.dumps({"context_id": cid}))
        for slot in slots:
            payload = await slot.get(LIMIT)
            assert payload is not None
            assert json.loads(payload) == {"context_id": slot.id, "done": True, "data": ""}
        assert sock.router.dropped_frames == 0 and sock.is_open()
        if fast:
            assert sock.prefilter is not None and sock.prefilter.pending == 0
    finally:
        await sock.close()
    assert not sock.is_open()


async def test_a_ping_mid_stream_is_answered_and_data_frames_stay_in_order(
    pinging_server: str, session: aiohttp.ClientSession, fast: bool  # noqa: F811
) -> None:
    sock = await _socket(pinging_server, session, fast)
    to_aiohttp: List[bytes] = []
    if sock.prefilter is not None:
        sock.prefilter._inner = _Recording(sock.prefilter._inner, to_aiohttp)
    try:
        slot = sock.open_context("p")
        await sock.send(json.dumps({"context_id": "p"}))
        got = []
        for _ in range(4):
            payload = await slot.get(LIMIT)
            assert payload is not None
            got.append(json.loads(payload))
        assert [sorted(m) for m in got] == [["context_id", "n"], ["context_id", "pong"],
                                            ["context_id", "data"], ["context_id", "done"]]
        assert got[1]["pong"] is True and len(got[2]["data"]) == 70_000
        if fast:  # only the ping went through aiohttp's parser (whole: 2 header bytes + payload)
            assert to_aiohttp == [b"\x89\x0amid-stream"]
    finally:
        await sock.close()


async def test_a_server_close_fails_every_pending_context_with_its_code(
    fragmenting_server: str, session: aiohttp.ClientSession, fast: bool  # noqa: F811
) -> None:
    sock = await _socket(fragmenting_server, session, fast)
    try:
        pending = [sock.open_context(cid) for cid in ("x", "y")]
        await sock.send(json.dumps({"close": True}))
        for slot in pending:
            with pytest.raises(WebSocketClosedError) as info:
                await slot.get(LIMIT)
            assert info.value.code == 1011
    finally:
        await sock.close()


async def _read(stream: Any, out: List[bytes], gate: Optional[asyncio.Event] = None) -> None:
    async for chunk in stream:
        out.append(chunk["audio"])
        if gate is not None:
            await gate.wait()  # stop reading after the first chunk until told to go on


async def test_multiplexed_contexts_with_a_stalled_reader_lose_and_reorder_nothing(
    local_server: Any, voice: list, fast: bool  # noqa: F811
) -> None:
    texts = [LONG, LONG + " Two.", LONG + " Three."]
    async with async_client(local_server, max_queued_chunks=2) as client:
        streams = [await client.generate(transcript=t, voice=voice, stream=True) for t in texts]
        outs: List[List[bytes]] = [[], [], []]
        gate = asyncio.Event()
        slow = asyncio.ensure_future(_read(streams[0], outs[0], gate))  # stalls: queue fills up
        while not outs[0]:
            await asyncio.wait_for(asyncio.sleep(0.01), LIMIT)
        pool = client._runtime().current_pool
        assert pool is not None and len(pool.sockets) == 1  # all three share one socket
        sock = pool.sockets[0]
        assert (sock.prefilter is not None) is fast

        async def reader_waits() -> None:
            while not sock.router.waiting_on_consumer:  # the stalled context's queue is full
                await asyncio.sleep(0.005)

        await asyncio.wait_for(reader_waits(), LIMIT)
        rest = asyncio.ensure_future(
            asyncio.gather(_read(streams[1], outs[1]), _read(streams[2], outs[2]))
        )
        gate.set()
        await asyncio.wait_for(asyncio.gather(slow, rest), 20)
        for text, out in zip(texts, outs):
            assert b"".join(out) == expected_audio(text, voice)
        assert sock.router.dropped_frames == 0
        if fast:
            assert sock.prefilter is not None and sock.prefilter.pending == 0


async def test_a_dropped_connection_fails_every_waiting_context(
    local_server: Any, server_faults: Any, voice: list, fast: bool  # noqa: F811
) -> None:
    texts = [f"{LONG} {i}" for i in range(3)]
    async with async_client(local_server) as client:
        server_faults.add("drop", after_frames=2, on="ws")

        async def consume(text: str) -> Any:
            got: List[bytes] = []
            try:
                await _read(await client.generate(transcript=text, voice=voice, stream=True), got)
            except Exception as exc:  # noqa: BLE001 - the test inspects what each one got
                return exc, b"".join(got)
            return None, b"".join(got)

        results = await asyncio.wait_for(asyncio.gather(*(consume(t) for t in texts)), 20)
        for text, (exc, audio) in zip(texts, results):
            if exc is None:
                assert audio == expected_audio(text, voice)  # finished, or retried before audio
            else:
                assert isinstance(exc, WebSocketClosedError) and exc.code == 1006
                assert expected_audio(text, voice).startswith(audio)
        assert any(exc is not None for exc, _ in results)
        out = await client.generate(transcript="after", voice=voice)
        assert out["audio"] == expected_audio("after", voice)
