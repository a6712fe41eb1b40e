"""Streamed HTTP bodies read past h11: chunked framing off a real socket, connection reuse.

The sync clients read a chunked generation body straight off the socket httpx opened
(``cartesia._client.transport.chunked``). These tests drive that reader over real socket pairs
with every awkward framing HTTP allows, and the v0 and current-API clients against a small
loopback HTTP/1.1 server that writes hand-made chunked bodies and counts its connections.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from typing import Callable, Iterator, List, Tuple

import httpx
import numpy as np
import pytest
from chunked_support import read_all
from raw_server import LoopbackServer

from cartesia import Cartesia
from cartesia._client.transport.chunked import ChunkedBody
from cartesia.errors import CartesiaConnectionError
from cartesia.tts import CartesiaTTS

PCM = np.linspace(-0.5, 0.5, 4410, dtype="<f4").tobytes()
EMBEDDING = [0.1] * 192


def chunked(pieces: List[bytes], ext: bytes = b"", trailers: bytes = b"") -> bytes:
    body = b"".join(b"%x%s\r\n%s\r\n" % (len(p), ext, p) for p in pieces)
    return body + b"0\r\n" + trailers + b"\r\n"


def pair_sending(data: bytes, step: int, first: int = 0) -> Tuple[socket.socket, bytes, threading.Thread]:
    """A socket whose peer sends ``data[first:]`` in writes of ``step`` bytes; and ``data[:first]``
    (what arrived with the headers)."""
    a, b = socket.socketpair()

    def send() -> None:
        # Separate writes land in separate reads often enough to split every boundary.
        with b:
            try:
                for i in range(first, len(data), step):
                    b.sendall(data[i : i + step])
            except OSError:  # the reader gave up on a broken body and closed its end
                pass

    t = threading.Thread(target=send, daemon=True)
    t.start()
    return a, data[:first], t


PAYLOADS = [b"x" * 1, b"hello", bytes(range(256)) * 40, b"\r\n\r\n0\r\n", b"y" * 70_000]


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000, 1 << 20])
@pytest.mark.parametrize(
    "ext,trailers",
    [(b"", b""), (b";name=value", b""), (b" ;a;b=c", b"X-Trailer: 1\r\nY: two\r\n")],
)
def test_body_is_exact_whatever_the_read_boundaries(step, ext, trailers):
    data = chunked(PAYLOADS, ext, trailers)
    for first in (0, 3, 40):
        sock, head, t = pair_sending(data, step, first)
        with sock:
            body = ChunkedBody(sock, head)
            assert read_all(body) == b"".join(PAYLOADS)
            assert body.done and body.extra == b""
            assert body.read(1.0) == []  # done stays done, no more reads
        t.join(5)


def test_upper_case_hex_and_bytes_after_the_body():
    data = b"1A\r\n" + b"z" * 26 + b"\r\n0\r\n\r\nHTTP/1.1 200"
    sock, head, t = pair_sending(data, 1 << 20)
    with sock:
        body = ChunkedBody(sock, head)
        assert read_all(body) == b"z" * 26
        assert body.extra == b"HTTP/1.1 200"  # never handed on as body data
    t.join(5)


@pytest.mark.parametrize(
    "data",
    [
        b"zz\r\nabc\r\n",  # not hex
        b"0x3\r\nabc\r\n0\r\n\r\n",  # int() would take it; HTTP does not
        b"-3\r\nabc\r\n0\r\n\r\n",
        b"3\r\nabcX\r\n0\r\n\r\n",  # no CRLF after the data
        b"\r\n",  # an empty size line
        b"1" * 5000,  # a size line that never ends
        b"11111111111111111\r\n",  # more than 16 hex digits
    ],
)
def test_broken_framing_raises_the_protocol_error(data):
    for step in (1, 1 << 20):
        sock, head, t = pair_sending(data, step)
        with sock, pytest.raises(httpx.RemoteProtocolError):
            read_all(ChunkedBody(sock, head))
        t.join(5)


def test_a_body_cut_short_raises_instead_of_ending():
    sock, head, t = pair_sending(b"10\r\n" + b"a" * 8, 1 << 20)
    with sock:
        body = ChunkedBody(sock, head)
        assert body.read(5.0)[0].tobytes() == b"a" * 8  # what arrived is delivered first
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            body.read(5.0)
    t.join(5)


def test_a_silent_peer_raises_read_timeout():
    a, b = socket.socketpair()
    with a, b:
        body = ChunkedBody(a, b"5\r\nab")
        assert body.read(5.0)[0].tobytes() == b"ab"
        with pytest.raises(httpx.ReadTimeout):
            body.read(0.05)


# --- clients against a hand-made chunked server ----------------------------------------------


def v0_frame(audio: bytes, done: bool = False) -> bytes:
    obj = {"data": base64.b64encode(audio).decode(), "sampling_rate": 44100, "done": done}
    return json.dumps(obj).encode()


class ChunkedServer(LoopbackServer):
    """Answers every request with ``body(path)`` as a chunked 200, each chunk its own write;
    counts connections. ``after`` bytes are written after each body (a misbehaving server)."""

    def __init__(self, body: Callable[[str], List[bytes]], *, trailers: bytes = b"", after: bytes = b""):
        super().__init__()
        self._body = body
        self._trailers = trailers
        self._after = after
        self.requests = 0
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ChunkedServer:
        super().__enter__()
        return self

    def _handle(self, conn: socket.socket) -> None:
        try:
            self._answer(conn)
        except OSError:  # the client closed a body it did not read to the end
            pass

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        buf = b""
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not data:
                    return
                buf += data
                while b"\r\n\r\n" in buf:
                    head, rest = buf.split(b"\r\n\r\n", 1)
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    if len(rest) < length:
                        break
                    buf = rest[length:]
                    path = head.split(b" ")[1].decode()
                    self.requests += 1
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n"
                    )
                    pieces = self._body(path)
                    for p in pieces:
                        # the CRLF after the data in a write of its own: split across reads
                        conn.sendall(b"%x;x=1\r\n%s" % (len(p), p))
                        conn.sendall(b"\r\n")
                    conn.sendall(b"0\r\n" + self._trailers + b"\r\n" + self._after)


@pytest.fixture
def v0_env(monkeypatch) -> Iterator[Callable[..., ChunkedServer]]:
    def start(**kw) -> ChunkedServer:
        server = ChunkedServer(lambda path: [v0_frame(PCM), v0_frame(PCM[:400]), v0_frame(b"", True)], **kw)
        monkeypatch.setenv("CARTESIA_BASE_URL", server.url)
        monkeypatch.setenv("CARTESIA_API_KEY", "test-key")
        return server

    yield start


def stream_audio(client: CartesiaTTS) -> bytes:
    chunks = client.generate(transcript="Hello", voice=EMBEDDING, stream=True, websocket=False)
    return b"".join(c["audio"] for c in chunks)


def test_v0_streamed_generations_reuse_one_connection(v0_env):
    # Regression: the client closed the response at the `done` frame, before the body's last
    # chunk, so httpx dropped the connection and every generation opened a new one.
    with v0_env(trailers=b"X-End: yes\r\n") as server:
        client = CartesiaTTS()
        try:
            for _ in range(3):
                assert stream_audio(client) == PCM + PCM[:400]
            assert client.generate(transcript="Hello", voice=EMBEDDING, websocket=False)["audio"] == PCM + PCM[:400]
        finally:
            client.close()
    assert server.requests == 4 and server.connections == 1


def test_v0_bytes_after_the_body_never_reach_the_next_generation(v0_env):
    with v0_env(after=b"HTTP/1.1 500 junk\r\n\r\n") as server:
        client = CartesiaTTS()
        try:
            for _ in range(2):
                assert stream_audio(client) == PCM + PCM[:400]
        finally:
            client.close()
    assert server.connections == 2  # the connection with stray bytes was not reused


def test_v0_body_cut_short_is_a_typed_connection_error(monkeypatch):
    frame = v0_frame(PCM)

    class Cut(ChunkedServer):
        def _answer(self, conn: socket.socket) -> None:
            with conn:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + b"%x\r\n%s\r\n" % (len(frame), frame)
                    + b"%x\r\n" % len(frame)
                    + frame[:100]
                )

    with Cut(lambda path: []) as server:
        monkeypatch.setenv("CARTESIA_BASE_URL", server.url)
        monkeypatch.setenv("CARTESIA_API_KEY", "test-key")
        client = CartesiaTTS()
        got: List[bytes] = []
        try:
            with pytest.raises(CartesiaConnectionError) as info:
                for chunk in client.generate(transcript="Hello", voice=EMBEDDING, stream=True, websocket=False):
                    got.append(chunk["audio"])
        finally:
            client.close()
    assert got == [PCM]  # the audio before the cut was delivered, nothing replayed after it
    assert "test-key" not in str(info.value)


def current_client(server: ChunkedServer) -> Cartesia:
    return Cartesia(api_key="test-key", base_url=server.url, max_retries=0)


FORMAT = {"container": "raw", "encoding": "pcm_f32le", "sample_rate": 44100}


def test_current_bytes_and_sse_read_past_h11_and_reuse_the_connection():
    def body(path: str) -> List[bytes]:
        if path.startswith("/tts/sse"):
            chunk = {"type": "chunk", "data": base64.b64encode(PCM).decode(), "done": False}
            return [
                b"data: " + json.dumps(chunk).encode() + b"\n\n",
                b'data: {"type": "done", "done": true, "status_code": 200}\n\n',
            ]
        return [PCM[:1001], PCM[1001:]]

    with ChunkedServer(body) as server:
        client = current_client(server)
        try:
            for _ in range(2):
                response = client.tts.generate(
                    model_id="sonic-3", transcript="Hi", voice="v", output_format=FORMAT
                )
                assert response.read() == PCM
                events = list(
                    client.tts.sse(model_id="sonic-3", transcript="Hi", voice="v", output_format=FORMAT)
                )
                assert [e.type for e in events] == ["chunk", "done"]
                assert events[0].audio == PCM
            # chunk_size asks httpx to re-chunk: the library path still serves it.
            response = client.tts.generate(model_id="sonic-3", transcript="Hi", voice="v", output_format=FORMAT)
            assert [len(c) for c in response.iter_bytes(4410 * 2)] == [8820, 8820]
        finally:
            client.close()
    assert server.requests == 5 and server.connections == 1


def test_current_bytes_abandoned_midway_closes_its_connection():
    big = [b"a" * 400_000, b"b" * 400_000]  # longer than one read: the first cannot hold the end
    with ChunkedServer(lambda path: big) as server:
        client = current_client(server)
        try:
            response = client.tts.generate(model_id="sonic-3", transcript="Hi", voice="v", output_format=FORMAT)
            it = response.iter_bytes()
            assert next(it)
            it.close()  # the rest of the body is never read: the connection cannot be reused
            assert client.tts.generate(
                model_id="sonic-3", transcript="Hi", voice="v", output_format=FORMAT
            ).read() == b"".join(big)
        finally:
            client.close()
    assert server.connections == 2



# --- undecoded websocket frames (the sync reader takes text frames as bytes) -----------------

ROUTING_CASES = [
    '{"data":"AAAA","context_id":"abc","done":false}',
    '{"context_id" :\t "x y"}',
    '{"done":true,"context_id":null}',
    '{"data":"AAAA"}',
    '{"context_id":"a\\"b","done":true}',
    '{"context_id":"żółw-🐢","done":true}',
    '{"context_id":"unterminated',
    '{"context_id" "no colon"}',
]


@pytest.mark.parametrize("text", ROUTING_CASES)
def test_context_id_of_bytes_matches_text(text):
    from cartesia.protocol import v0

    raw = text.encode("utf-8")
    assert v0.context_id_of(raw) == v0.context_id_of(text)
    assert v0.context_id_of(bytearray(raw)) == v0.context_id_of(text)


def test_context_id_of_bytes_with_invalid_utf8_id_is_unroutable():
    from cartesia.protocol import v0

    assert v0.context_id_of(b'{"context_id":"\xff\xfe","done":true}') is None
