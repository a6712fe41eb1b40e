"""The sync HTTP stream's per-read and per-request shortcuts keep every behaviour they replace.

A body read past h11 leaves its socket non-blocking after the first read (what is there is taken
in one call) and waits with ``poll`` only when nothing is: over plain and TLS sockets the bytes
stay exact and a silent peer still times out. Streamed requests are built without httpx's
per-request URL parsing and header merging, yet byte for byte as ``build_request`` builds them.
The generation's batch handling and its deadline give the same chunks, metrics and limits.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import Iterator, Tuple

import httpx
import pytest
from chunked_support import read_all

from cartesia._client.generation import Deadline, Generation, Settings, Timeouts
from cartesia._client.output import ChunkShaper
from cartesia._client.retry import RetryPolicy
from cartesia._client.transport.chunked import ChunkedBody
from cartesia._client.transport.http_sync import SyncHttp
from cartesia.errors import GenerationError
from cartesia.protocol import v0
from cartesia.protocol.events import Audio, Done, ErrorFrame
from cartesia.streaming import StreamParser

PIECES = [b"a" * 5000, b"b" * 70_000, b"c" * 3, bytes(range(256)) * 100]
BODY = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in PIECES) + b"0\r\n\r\n"
LIMIT = 5.0  # every wait of these tests is bounded by this


def paced_sender(sock: socket.socket, data: bytes, step: int, go: threading.Event) -> threading.Thread:
    """Sends ``data`` in writes of ``step`` bytes, each after the reader asked for more
    (``go``): the reader finds an empty socket and must wait for most of them."""

    def send() -> None:
        try:
            for i in range(0, len(data), step):
                go.wait(LIMIT)
                go.clear()
                sock.sendall(data[i : i + step])
        except OSError:
            pass

    t = threading.Thread(target=send, daemon=True)
    t.start()
    return t


class Asking(ChunkedBody):
    """Sets ``go`` before every socket read, so the peer sends while the read waits."""

    def __init__(self, sock: object, go: threading.Event) -> None:
        super().__init__(sock, b"")
        self._go = go

    def _recv(self, timeout):  # type: ignore[no-untyped-def]
        self._go.set()
        return super()._recv(timeout)


@pytest.fixture(scope="module")
def tls_contexts() -> Tuple[ssl.SSLContext, ssl.SSLContext]:
    trustme = pytest.importorskip("trustme", reason="trustme (the `tls` extra) is not installed")
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


def tls_pair(contexts: Tuple[ssl.SSLContext, ssl.SSLContext]) -> Tuple[ssl.SSLSocket, ssl.SSLSocket]:
    a, b = socket.socketpair()
    a.settimeout(LIMIT)
    b.settimeout(LIMIT)
    server_ctx, client_ctx = contexts
    done: list = []
    t = threading.Thread(
        target=lambda: done.append(server_ctx.wrap_socket(b, server_side=True)), daemon=True
    )
    t.start()
    client = client_ctx.wrap_socket(a, server_hostname="localhost")
    t.join(LIMIT)
    return client, done[0]


SMALL = [b"hello", b"\r\n0\r\n", b"z" * 40]


@pytest.mark.parametrize(
    "pieces,step", [(PIECES, 1000), (PIECES, 1 << 20), (SMALL, 3)]  # 3: every line split
)
def test_waiting_reads_over_plain_sockets_are_exact(pieces, step):
    data = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    a, b = socket.socketpair()
    go = threading.Event()
    with a, b:
        t = paced_sender(b, data, step, go)
        body = Asking(a, go)
        assert read_all(body) == b"".join(pieces) and body.done
        assert a.gettimeout() == 0.0  # non-blocking since the first read; httpcore resets it
        t.join(LIMIT)


@pytest.mark.parametrize("step", [1000, 1 << 20])
def test_waiting_reads_over_tls_are_exact(tls_contexts, step):
    # A TLS record split across writes: the socket is readable before the record is whole.
    client, server = tls_pair(tls_contexts)
    go = threading.Event()
    with client, server:
        t = paced_sender(server, BODY, step, go)
        assert read_all(Asking(client, go)) == b"".join(PIECES)
        t.join(LIMIT)


def test_a_peer_that_falls_silent_after_the_first_read_times_out():
    a, b = socket.socketpair()
    with a, b:
        b.sendall(b"5\r\nab")
        body = ChunkedBody(a, b"")
        assert body.read(LIMIT)[0].tobytes() == b"ab"  # the first read, through the socket
        start = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            body.read(0.05)  # the non-blocking socket waits in poll, within the limit
        assert time.monotonic() - start >= 0.05
        b.sendall(b"cde\r\n0\r\n\r\n")
        assert body.read(LIMIT)[0].tobytes() == b"cde"  # the body goes on after the timeout


def test_a_silent_tls_peer_times_out_after_the_first_read(tls_contexts):
    client, server = tls_pair(tls_contexts)
    with client, server:
        server.sendall(b"5\r\nab")
        body = ChunkedBody(client, b"")
        assert body.read(LIMIT)[0].tobytes() == b"ab"
        with pytest.raises(httpx.ReadTimeout):
            body.read(0.05)


def test_a_peer_that_closes_mid_body_is_a_protocol_error_after_the_wait():
    a, b = socket.socketpair()
    with a:
        b.sendall(b"5\r\nab")
        body = ChunkedBody(a, b"")
        assert body.read(LIMIT)
        b.close()
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            body.read(LIMIT)


# --- the streamed request ------------------------------------------------------------------


@pytest.fixture
def http_client() -> Iterator[Tuple[SyncHttp, httpx.Client]]:
    http = SyncHttp("http://127.0.0.1:9/v0", "key-123", 4)
    try:
        yield http, http.client()
    finally:
        http.close()


def test_streamed_request_is_what_build_request_builds(http_client):
    http, client = http_client
    request = v0.stream_request({"transcript": "hi", "voice": [0.5] * 3})
    timeout = {"connect": 1.5, "read": None, "write": 1.5, "pool": 1.5}
    for _ in range(2):  # the second one from the cached URL and headers
        ours = http.stream_request(client, request, timeout)
        theirs = client.build_request(
            "POST", http.url(request), content=request.content,
            headers=v0.headers("key-123"), timeout=httpx.Timeout(**timeout),
        )
        assert (ours.method, ours.url, ours.headers.raw, ours.read()) == (
            theirs.method, theirs.url, theirs.headers.raw, theirs.read()
        )
        assert ours.extensions == theirs.extensions


def test_streamed_request_carries_the_clients_cookies(http_client):
    http, client = http_client
    request = v0.stream_request({"transcript": "hi"})
    timeout = {"connect": 1.0, "read": None, "write": 1.0, "pool": 1.0}
    assert "cookie" not in http.stream_request(client, request, timeout).headers
    client.cookies.set("session", "s1")
    assert http.stream_request(client, request, timeout).headers["cookie"] == "session=s1"


def test_streamed_request_follows_a_new_client(http_client):
    http, client = http_client
    request = v0.stream_request({"transcript": "hi"})
    timeout = {"connect": 1.0, "read": None, "write": 1.0, "pool": 1.0}
    http.stream_request(client, request, timeout)
    client.headers["X-Extra"] = "1"  # a changed client would be a new client: it is rebuilt
    http.close()
    fresh = http.client()
    assert fresh is not client
    assert "x-extra" not in http.stream_request(fresh, request, timeout).headers


# --- the generation's batches and its deadline -------------------------------------------


def frames(*audio: bytes, done: bool = True) -> list:
    import base64
    import json

    body = b"".join(
        json.dumps({"data": base64.b64encode(a).decode(), "done": False, "sampling_rate": 44100}).encode()
        for a in audio
    )
    if done:
        body += b'{"done": true}'
    return list(StreamParser("json").feed(body))


def generation() -> Generation:
    return Generation(Settings(Timeouts(), RetryPolicy(), "k"), "http", None, ChunkShaper(), lambda m: None)


def test_a_batch_gives_its_chunks_metrics_and_clock():
    gen = generation()
    gen.begin()
    a, b = b"\x00\x00\x80\x3f" * 10, b"\x00\x00\x00\x3f" * 5
    msgs = frames(a, b)
    events = [Audio(msgs[0]), Audio(msgs[1]), Done(None)]
    assert not gen.deadline.got_audio
    chunks = gen.handle(events)
    assert [c["audio"] for c in chunks] == [a, b] and chunks[0]["sampling_rate"] == 44100
    m = gen.metrics
    assert (m.chunks, m.bytes) == (2, len(a) + len(b))
    assert m.ttfb is not None and m.ttfa is not None and m.ttfa_audible is not None
    assert gen.done and gen.delivered and gen.deadline.got_audio
    assert gen.handle([]) == []


def test_a_batch_without_audio_counts_its_first_byte_only():
    gen = generation()
    gen.begin()
    assert gen.handle([Done(None)]) == []
    assert gen.done and not gen.delivered and not gen.deadline.got_audio
    assert gen.metrics.ttfb is not None and gen.metrics.chunks == 0


def test_an_error_frame_after_audio_in_one_batch_raises_and_delivers_nothing():
    gen = generation()
    gen.begin()
    msg = frames(b"\x00\x00\x80\x3f", done=False)[0]
    with pytest.raises(GenerationError, match="boom"):
        gen.handle([Audio(msg), ErrorFrame("boom", 500, None, None)])
    assert not gen.delivered  # so the shared rule may still retry it


def test_deadline_remaining_takes_the_nearer_limit():
    d = Deadline(Timeouts(first_audio=10.0, chunk_gap=20.0, total=0.5))
    assert 0.4 < d.remaining() <= 0.5  # the total is nearer than first audio
    d = Deadline(Timeouts(first_audio=0.3, chunk_gap=20.0, total=10.0))
    assert 0.2 < d.remaining() <= 0.3
    d.audio()
    assert 9.0 < d.remaining() <= 10.0  # the chunk gap (20 s), within the total's 10 s
    d = Deadline(Timeouts(first_audio=None, chunk_gap=None, total=0.5))
    assert 0.4 < d.remaining() <= 0.5
    d = Deadline(Timeouts(first_audio=None, chunk_gap=5.0, total=None))
    assert d.remaining() is None  # no first-audio limit, no total: wait as long as it takes
    d.audio()
    assert 4.0 < d.remaining() <= 5.0
    assert isinstance(Deadline(Timeouts(first_audio=0.2)).remaining(), float)
