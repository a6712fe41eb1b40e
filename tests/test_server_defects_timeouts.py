"""Incomplete requests time out: silent, half-header and half-body connections get 408 or close."""

from __future__ import annotations

import json
import signal
import socket
import sys
import time

import pytest
from test_server_cli import ready_port, start

from cartesia.server import ServerConfig

SHORT = 0.5
#: Far above SHORT (the machine is shared and slow at times), far below the old "never".
BOUND = 10.0


@pytest.fixture
def strict_server(make_server):
    return make_server(
        engine="tone", header_timeout=SHORT, body_timeout=SHORT, idle_timeout=SHORT
    )


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=BOUND)
    sock.settimeout(BOUND)
    return sock


def until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (socket.timeout: it did not)."""
    data = b""
    with sock:
        while True:
            try:
                piece = sock.recv(65536)
            except ConnectionResetError:
                return data
            if not piece:
                return data
            data += piece


def response(data: bytes) -> tuple:
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head.decode("latin-1"), json.loads(body) if body else None


def test_a_silent_connection_is_closed(strict_server):
    started = time.monotonic()
    assert until_closed(connect(strict_server.port)) == b""
    # Not closed the moment it opened: it had its header time.
    assert time.monotonic() - started >= SHORT * 0.9


def test_half_sent_headers_get_408_and_a_close(strict_server):
    sock = connect(strict_server.port)
    sock.sendall(b"POST /v0/audio/stream HTTP/1.1\r\nHost: localhost\r\nX-API-Key: k\r\n")
    status, head, body = response(until_closed(sock))
    assert status == 408 and "Connection: close" in head
    assert body == {
        "error": f"request headers not received within {SHORT:g} s",
        "status_code": 408,
    }


@pytest.mark.parametrize(
    "path, content_type",
    [
        ("/v0/audio/stream", "application/json"),
        ("/v0/voices/clone/clip", "multipart/form-data; boundary=xyz"),
        ("/_emulator/faults", "application/json"),
    ],
)
def test_half_sent_body_gets_408_and_a_close(strict_server, path, content_type):
    sock = connect(strict_server.port)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nX-API-Key: k\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: 1000\r\n\r\n"
    )
    sock.sendall(head.encode() + b'{"transcript": "Hel')
    status, head, body = response(until_closed(sock))
    assert status == 408 and "Connection: close" in head
    assert body == {"error": f"request body not received within {SHORT:g} s", "status_code": 408}


@pytest.mark.parametrize("path", ["/tts/bytes", "/tts/sse", "/access-token"])
def test_half_sent_body_on_the_current_api_gets_408_in_its_error_shape(strict_server, path):
    sock = connect(strict_server.port)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nX-API-Key: k\r\n"
        "Cartesia-Version: 2024-11-13\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    sock.sendall(head.encode() + b'{"transcript": "Hel')
    status, head, body = response(until_closed(sock))
    assert status == 408 and "Connection: close" in head
    assert body == {"error": f"request body not received within {SHORT:g} s", "status_code": 408}


def test_idle_keep_alive_connection_is_closed_after_its_requests(strict_server):
    sock = connect(strict_server.port)
    request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
    # Two requests on one connection: the guard does not break keep-alive...
    for _ in range(2):
        sock.sendall(request)
        data = b""
        while b"}" not in data:
            piece = sock.recv(65536)
            assert piece, "closed before answering"
            data += piece
        assert response(data)[0] == 200
    # ...and then the idle connection goes.
    assert until_closed(sock) == b""


def test_half_sent_headers_after_a_request_on_the_same_connection_get_408(make_server):
    # A long idle limit: the header clock, not the idle one, must end this connection.
    server = make_server(engine="tone", header_timeout=SHORT, idle_timeout=BOUND * 10)
    sock = connect(server.port)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    data = b""
    while b"}" not in data:
        piece = sock.recv(65536)
        assert piece, "closed before answering"
        data += piece
    assert response(data)[0] == 200
    sock.sendall(b"GET / HTTP/1.1\r\nHost: loc")
    status, _, body = response(until_closed(sock))
    assert status == 408 and "headers" in body["error"]


def test_a_slow_but_timely_request_is_served(make_server):
    server = make_server(engine="tone", header_timeout=BOUND, body_timeout=BOUND)
    sock = connect(server.port)
    body = json.dumps({"transcript": "Hi", "voice": "Milo"}).encode()
    head = (
        "POST /v0/audio/stream HTTP/1.1\r\nHost: localhost\r\nX-API-Key: k\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
    )
    for piece in (head.encode()[:20], head.encode()[20:], b"\r\n", body[:5], body[5:]):
        sock.sendall(piece)
        time.sleep(0.05)
    data = until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200 ") and b'"done":true' in data


def test_timeouts_are_validated():
    for name in ("header_timeout", "body_timeout", "idle_timeout"):
        with pytest.raises(ValueError, match=name):
            ServerConfig(**{name: 0})


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_cli_flags_set_the_timeouts():
    proc = start(
        "--port", "0", "--engine", "tone",
        "--header-timeout", str(SHORT), "--body-timeout", str(SHORT), "--idle-timeout", "5",
    )  # fmt: skip
    try:
        port = ready_port(proc)
        assert until_closed(connect(port)) == b""
        sock = connect(port)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        assert response(until_closed(sock))[0] == 408
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
