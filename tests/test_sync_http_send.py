"""A streamed sync request skips httpx's auth/redirect layers only where they do nothing, and its
head leaves with its body in one write.

``send_stream`` must give what ``httpx.Client.send(stream=True)`` gives (status, headers, the
request, cookies set, ``next_request`` of a redirect, ``elapsed``, the log line) and must run
auth, event hooks and redirects through ``send`` whenever a client has them. The request's head
is held back until its first body piece (or the first read), so a small request is one
``send`` on the wire, as a bare client sends it.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator, List

import httpcore
import httpx
import pytest

from cartesia._client.transport import http_sync
from cartesia._client.transport.http_sync import (
    _install_phase_backend,
    _PhaseStream,
    install_cookie_filter,
    send_stream,
)

LIMIT = 5.0  # every wait here is bounded by this


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: List[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if self.path.startswith("/redirect"):
            self.send_response(307)
            self.send_header("Location", "http://[::1" if self.path == "/redirect-bad" else "/moved")
            self.send_header("Set-Cookie", "session=s1; Path=/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for piece in (b"abc", body):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):  # a test that stops reading early
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(LIMIT)


_TLS = httpx.create_ssl_context()  # one for all the clients here (each would load the CAs)


def _client(**kwargs: object) -> httpx.Client:
    client = httpx.Client(timeout=LIMIT, verify=_TLS, **kwargs)  # type: ignore[arg-type]
    _install_phase_backend(client)
    install_cookie_filter(client)
    return client


def _post(client: httpx.Client, url: str) -> httpx.Request:
    return client.build_request("POST", url, content=b"hello")


def test_send_stream_gives_what_send_gives(server):
    with _client() as client:
        client.get(server + "/warm-up", timeout=LIMIT)  # a 501 from http.server: opens the client
        for path in ("/stream", "/redirect"):
            theirs = client.send(_post(client, server + path), stream=True)
            theirs_body = theirs.read()
            theirs.close()
            client.cookies.clear()
            ours = send_stream(client, _post(client, server + path))
            ours_body = ours.read()
            ours.close()
            assert (ours.status_code, ours.http_version, ours_body) == (
                theirs.status_code, theirs.http_version, theirs_body
            )
            assert [k for k in ours.headers if k != "date"] == [k for k in theirs.headers if k != "date"]
            assert ours.request.url == theirs.request.url and ours.elapsed.total_seconds() > 0
            assert (ours.next_request and ours.next_request.url) == (
                theirs.next_request and theirs.next_request.url
            )
        assert ours.next_request is not None and ours.next_request.url.path == "/moved"
        assert client.cookies.get("session") == "s1"  # the redirect's Set-Cookie was kept
        assert ours_body == b"" and theirs_body == b""
        assert all(s["body"] == b"hello" for s in _Handler.seen if s["path"] != "/warm-up")


def test_a_streamed_body_and_the_pooled_connection(server):
    with _client() as client:
        client.get(server + "/warm-up", timeout=LIMIT)
        for _ in range(3):
            response = send_stream(client, _post(client, server + "/stream"))
            assert response.read() == b"abchello"
            response.close()
        pool = client._transport._pool  # noqa: SLF001
        assert len(pool.connections) == 1  # one connection served every request


def test_auth_hooks_and_redirects_still_run(server):
    calls: List[str] = []
    hooks = {"request": [lambda r: calls.append("request")], "response": [lambda r: calls.append("response")]}
    with _client(auth=("user", "pw"), event_hooks=hooks) as client:
        client.get(server + "/warm-up", timeout=LIMIT)
        calls.clear()
        send_stream(client, _post(client, server + "/stream")).close()
    assert calls == ["request", "response"]
    assert _Handler.seen[-1]["auth"] is not None and _Handler.seen[-1]["auth"].startswith("Basic ")
    with _client(follow_redirects=True) as client:
        client.get(server + "/warm-up", timeout=LIMIT)
        response = send_stream(client, _post(client, server + "/redirect"))
        response.close()
    assert [s["path"] for s in _Handler.seen[-2:]] == ["/redirect", "/moved"]
    assert response.history and response.history[0].status_code == 307


def test_credentials_in_the_url_are_sent(server):
    with _client() as client:
        client.get(server + "/warm-up", timeout=LIMIT)
        url = server.replace("http://", "http://user:pw@") + "/stream"
        send_stream(client, _post(client, url)).close()
    assert _Handler.seen[-1]["auth"] is not None and _Handler.seen[-1]["auth"].startswith("Basic ")


def test_a_closed_client_refuses_as_send_does(server):
    client = _client()
    client.get(server + "/warm-up", timeout=LIMIT)
    client.close()
    with pytest.raises(RuntimeError, match="closed"):
        send_stream(client, _post(client, server + "/stream"))


def test_the_httpx_log_line_is_kept(server, caplog):
    with _client() as client:
        client.get(server + "/warm-up", timeout=LIMIT)
        with caplog.at_level(logging.INFO, logger="httpx"):
            send_stream(client, _post(client, server + "/stream")).close()
    assert any('HTTP Request: POST ' in r.getMessage() and '"HTTP/1.1 200 OK"' in r.getMessage()
               for r in caplog.records)


def test_connection_errors_are_httpx_errors_naming_the_request():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    with _client() as client:
        client.cookies.clear()
        client._state = type(client._state).OPENED  # noqa: SLF001 - as after a first request
        request = _post(client, f"http://127.0.0.1:{port}/stream")
        with pytest.raises(httpx.ConnectError) as info:
            send_stream(client, request)
    assert info.value.request is request


# --- the request's head goes out with its body -------------------------------------------


def _readable(sock: socket.socket, wait: float) -> bool:
    return bool(select.select([sock], [], [], wait)[0])


@pytest.fixture
def pair() -> Iterator[tuple]:
    a, b = socket.socketpair()
    try:
        yield _PhaseStream(httpcore._backends.sync.SyncStream(a)), b  # noqa: SLF001
    finally:
        a.close()
        b.close()


def test_a_requests_head_leaves_with_its_first_body_piece(pair):
    stream, peer = pair
    stream.write(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", LIMIT)
    assert not _readable(peer, 0.0)  # held back
    stream.write(b"hello", LIMIT)
    assert _readable(peer, LIMIT)
    assert peer.recv(1000) == b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"  # one send
    stream.write(b"", LIMIT)  # h11's end of a sized body: nothing
    peer.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert stream.read(1000, LIMIT) == b"HTTP/1.1 204 No Content\r\n\r\n"
    # The next request on the connection is held back again.
    stream.write(b"GET / HTTP/1.1\r\n\r\n", LIMIT)
    assert not _readable(peer, 0.0)


def test_a_head_without_a_body_leaves_before_the_first_read(pair):
    stream, peer = pair
    stream.write(b"GET / HTTP/1.1\r\n\r\n", LIMIT)
    peer.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert stream.read(1000, LIMIT) == b"HTTP/1.1 204 No Content\r\n\r\n"
    assert peer.recv(1000) == b"GET / HTTP/1.1\r\n\r\n"


def test_a_large_body_piece_follows_its_head(pair):
    stream, peer = pair
    big = b"x" * (100 * 1024)
    head = b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(big)
    got = bytearray()
    reader = threading.Thread(target=lambda: got.extend(_recv_all(peer, len(head) + len(big))))
    reader.start()
    stream.write(head, LIMIT)
    stream.write(big, LIMIT)
    reader.join(LIMIT)
    assert bytes(got) == head + big


def _recv_all(sock: socket.socket, n: int) -> bytes:
    sock.settimeout(LIMIT)
    out = bytearray()
    while len(out) < n:
        data = sock.recv(n - len(out))
        if not data:
            break
        out += data
    return bytes(out)


def test_a_failed_head_write_is_left_to_the_read(pair):
    # httpcore ignores a request that could not be written and reads the server's answer (it
    # may have answered and closed); the held head behaves the same.
    stream, peer = pair
    peer.sendall(b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n")
    peer.shutdown(socket.SHUT_RD)
    peer.close()
    stream.write(b"GET / HTTP/1.1\r\n\r\n", LIMIT)
    try:
        data = stream.read(1000, LIMIT)
    except httpcore.ReadError:
        return  # the kernel dropped the answer with the reset: a read error, as without holding
    assert data.startswith(b"HTTP/1.1 413")


def test_the_bodies_of_one_connection_share_its_read_buffer_and_stay_exact(server):
    from cartesia._client.transport.http_sync import iter_raw_body, raw_body

    buffers = set()
    with _client() as client:
        client.get(server + "/warm-up", timeout=LIMIT)
        for n in (70_000, 3, 200_000, 10):  # one body larger than the read buffer
            payload = bytes(range(256)) * (n // 256) + b"z" * (n % 256)
            response = send_stream(client, client.build_request("POST", server + "/stream", content=payload))
            body = raw_body(response)
            assert body is not None
            buffers.add(id(body._buf))  # noqa: SLF001
            assert b"".join(iter_raw_body(response, body)) == b"abc" + payload
        assert len(client._transport._pool.connections) == 1  # noqa: SLF001
    assert len(buffers) == 1


@pytest.mark.skipif(
    not http_sync._DIRECT,  # noqa: SLF001
    reason="this httpx binds streams to a Timer: every request goes through send",
)
def test_a_plain_client_skips_the_auth_and_redirect_layers(server, monkeypatch):
    with _client() as client:
        client.get(server + "/warm-up", timeout=LIMIT)

        def layered(*args: object, **kwargs: object) -> None:
            raise AssertionError("went through Client.send's auth and redirect layers")

        monkeypatch.setattr(client, "_send_handling_auth", layered)
        response = send_stream(client, _post(client, server + "/stream"))
        assert response.read() == b"abchello"
        response.close()
        client.headers["X-Extra"] = "1"  # headers are not a layer: still direct
        send_stream(client, _post(client, server + "/stream")).close()
        client.event_hooks = {"request": [lambda r: None]}
        with pytest.raises(AssertionError, match="layers"):
            send_stream(client, _post(client, server + "/stream"))


def test_a_bad_redirect_location_raises_as_send_does_and_frees_the_connection(server):
    with _client() as client:
        client.get(server + "/warm-up", timeout=LIMIT)
        with pytest.raises(httpx.RemoteProtocolError) as theirs:
            client.send(_post(client, server + "/redirect-bad"), stream=True)
        with pytest.raises(httpx.RemoteProtocolError) as ours:
            send_stream(client, _post(client, server + "/redirect-bad"))
        assert str(ours.value) == str(theirs.value)
        assert client._transport._pool._requests == []  # noqa: SLF001 - no response left open
