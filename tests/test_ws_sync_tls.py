"""The sync websocket over TLS (``wss://``): the library's reader thread and the callers' sends
share one TLS connection without ever using its SSL object at the same time."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import Dict, List

import pytest
from current_ws_support import audio_of, defaults, expected, sync_conn
from raw_server import LoopbackServer

from cartesia.errors import (
    APIConnectionError,
    CartesiaTimeoutError,
    ConnectTimeoutError,
    WebSocketClosedError,
)
from cartesia.protocol import v1
from cartesia.resources.tts_websocket import connect
from cartesia.server import LocalServer
from cartesia.server.v1.pipeline import segments

pytest.importorskip("trustme", reason="trustme (the `tls` extra) is not installed")

# Most servers send TLS 1.3 session tickets right after the handshake (two by default); many of
# them keep the client's reader thread busy with them while the upgrade request is written
# (twelve: ~1 in 90 opens failed before, against ~1 in 1,000 with two).
TICKETS = 12
OPENS = 300


@pytest.fixture
def ticket_server(make_server, monkeypatch) -> LocalServer:
    server = make_server(tls=True)
    # The local server sends none (see test_server_tls); this one behaves like most servers.
    # The context is read at each accept, so the change applies to every connection from now.
    server._tls.server_context.num_tickets = TICKETS
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_path))
    return server


def test_opens_and_generations_with_session_tickets_arriving(ticket_server):
    # Before: the reader thread processed the tickets in SSL_read while the caller's thread wrote
    # the upgrade request in SSL_write on the same SSL object: the request was lost (the open
    # timed out), the write failed with "[SSL] internal error", or the process crashed.
    failures: List[str] = []
    for i in range(OPENS):
        text = f"Open number {i}."
        try:
            with sync_conn(ticket_server, connect_timeout=3.0) as ws:
                ctx = ws.context(f"c{i}", **defaults(timeout=5.0))
                ctx.push(text, continue_=False)
                if audio_of(ctx.receive()) != expected([text]):
                    failures.append(f"{i}: wrong audio")
        except Exception as exc:  # noqa: BLE001 - every failure is listed
            failures.append(f"{i}: {type(exc).__name__}: {exc}")
    assert not failures, failures


def test_threads_sharing_one_tls_connection(ticket_server):
    texts = [f"Thread number {i} speaks over TLS." for i in range(4)]
    results: Dict[int, bytes] = {}
    with sync_conn(ticket_server) as ws:

        def run(i: int) -> None:
            ctx = ws.context(f"t{i}", **defaults())
            ctx.push(texts[i], continue_=False)
            results[i] = audio_of(ctx.receive())

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(texts))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads)
        turns = ws.socket.conn.turns  # the callers read the TLS socket in their own threads
        assert turns is not None and type(turns.sock).__name__ == "LockedTLSSocket"
    assert [results.get(i) for i in range(len(texts))] == [expected([t]) for t in texts]


def test_a_tls_1_2_server(ticket_server):
    # TLS 1.2 has no post-handshake tickets; the handshake and records differ, the API does not.
    ticket_server._tls.server_context.maximum_version = ssl.TLSVersion.TLSv1_2
    with sync_conn(ticket_server) as ws:
        ctx = ws.context("old", **defaults())
        ctx.push("Spoken over TLS one point two.", continue_=False)
        audio = audio_of(ctx.receive())
        assert ws.socket.conn.turns.sock.version() == "TLSv1.2"
    assert audio == expected(["Spoken over TLS one point two."])


def test_a_long_generation_over_tls_is_bit_exact(ticket_server):
    # Many TLS records per read, records cut across reads: all of it reaches the context.
    text = " ".join(["A long sentence spoken over a TLS websocket, read in large pieces."] * 12)
    with sync_conn(ticket_server) as ws:
        ctx = ws.context("long", **defaults())
        ctx.push(text, continue_=False)
        audio = audio_of(ctx.receive())
    assert len(audio) > 1_000_000 and audio == expected(segments(text))


def test_an_untrusted_certificate_is_refused_with_a_clear_error(make_server, monkeypatch):
    server = make_server(tls=True)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)  # the system CAs do not know this one
    with pytest.raises(APIConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        with sync_conn(server):
            pass


def test_a_tls_handshake_that_never_answers_times_out(monkeypatch, tmp_path):
    # A peer that accepts the connection and never answers the ClientHello.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        url = f"wss://127.0.0.1:{port}/tts/websocket"
        started = time.monotonic()
        with pytest.raises(ConnectTimeoutError):
            with connect(url, headers={"X-API-Key": "k"}, secret="k", connect_timeout=0.5):
                pass
        assert time.monotonic() - started < 5


def test_the_server_going_away_mid_stream_ends_the_context_at_once(ticket_server):
    with sync_conn(ticket_server) as ws:
        ctx = ws.context("cut", **defaults())
        ctx.push(" ".join(["Words that will not all be spoken."] * 40), continue_=False)
        events = ctx.receive()
        first = next(events)
        assert first.type == "chunk"
        started = time.monotonic()
        ticket_server.stop()
        with pytest.raises(WebSocketClosedError):
            for _ in events:
                pass
        assert time.monotonic() - started < 5


class RecordCutter(LoopbackServer):
    """Relays connections to ``upstream``; once ``cut`` is set, it forwards the first bytes of
    the server's next piece and nothing after: the client holds part of a TLS record."""

    def __init__(self, upstream: int, delay: float = 0.0) -> None:
        super().__init__()
        self._upstream = upstream
        self._delay = delay  # seconds between the cut and the record's first bytes
        self.cut = threading.Event()
        self.held = 0

    def _handle(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self._upstream), timeout=10)
        self.sockets.append(upstream)
        self.spawn(self._down, upstream, client)
        try:
            while True:
                piece = client.recv(65536)
                if not piece:
                    return
                upstream.sendall(piece)
        except OSError:
            return

    def _down(self, upstream: socket.socket, client: socket.socket) -> None:
        try:
            while True:
                piece = upstream.recv(65536)
                if not piece:
                    return
                if self.cut.is_set():
                    time.sleep(self._delay)
                    client.sendall(piece[:7])  # a record's 5-byte header and 2 bytes of it
                    self.held = len(piece) - 7
                    while upstream.recv(65536):  # the rest never arrives
                        pass
                    return
                client.sendall(piece)
        except OSError:
            return


@pytest.mark.parametrize(
    "limit, delay",
    [
        (0.6, 0.0),  # a wait shorter than the read turns' 1 s slice
        (2.5, 0.0),  # longer
        # The record's start arrives 0.6 s before the deadline, during a read that may block
        # for the whole slice: reading on for the rest of it would overrun by ~0.4 s.
        (1.5, 0.9),
    ],
)
def test_a_record_cut_across_reads_does_not_hold_the_reader_past_its_deadline(
    ticket_server, limit, delay
):
    with RecordCutter(ticket_server.port, delay) as relay:
        url = f"wss://127.0.0.1:{relay.port}{v1.WS_PATH}"
        headers = v1.headers(ticket_server.api_key, json_content=False)
        with connect(url, headers=headers, secret=ticket_server.api_key, connect_timeout=10) as ws:
            ctx = ws.context("cut", **defaults(timeout=limit))
            ctx.push(" ".join(["Words that stop halfway through a record."] * 40), continue_=False)
            events = ctx.receive()
            assert next(events).type == "chunk"
            relay.cut.set()
            last = time.monotonic()
            with pytest.raises(CartesiaTimeoutError):
                for event in events:  # what came before the cut, then the wait
                    assert event.type == "chunk"
                    last = time.monotonic()
            waited = time.monotonic() - last
            # The caller read the socket itself (it had the turn), and gave up on time.
            assert ws.socket.conn.turns is not None
            assert limit * 0.9 <= waited < limit + 0.25, waited
        assert relay.held > 0


def test_closing_does_not_wait_for_the_close_timeout(ticket_server):
    # The server's close frame and its close_notify often come in one read: the reader must
    # still see the end at once (it waits on the socket's readiness, which nothing else brings
    # before the server's TCP close, and that waits for the client: a 1 s close timeout).
    slowest = 0.0
    for i in range(12):
        with sync_conn(ticket_server) as ws:
            ctx = ws.context(f"close{i}", **defaults())
            ctx.push("Short.", continue_=False)
            assert audio_of(ctx.receive())
            started = time.monotonic()
        slowest = max(slowest, time.monotonic() - started)
    assert slowest < 0.5, slowest
