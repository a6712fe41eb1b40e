"""A raw TCP server on a loopback port for the failures the real server never produces.

Modes:
    ``silent``: accept, read what comes, never answer (a hung peer).
    ``truncated``: answer any HTTP request with ``200`` and a body of ``frames`` v0 frames
        that ends cleanly (``Connection: close``) without the final ``done`` frame.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from typing import Any, Callable, List

import numpy as np

#: The audio of one frame of the ``truncated`` mode (float32 LE).
FRAME_PCM = np.linspace(-0.5, 0.5, 4410, dtype="<f4").tobytes()


class LoopbackServer:
    """A TCP listener on a loopback port: ``_handle(conn)`` runs in a thread of its own for each
    connection it accepts (``connections`` counts them). On exit every socket in ``sockets``
    (the accepted ones, and any a subclass adds) is shut down and closed, which ends a handler
    blocked on it, and every thread is joined."""

    def __init__(self) -> None:
        self.connections = 0
        self.sockets: List[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []

    def __enter__(self) -> LoopbackServer:
        self.spawn(self._serve)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for sock in list(self.sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in list(self._threads):
            thread.join(5)
        self._listener.close()

    def spawn(self, target: Callable[..., None], *args: Any) -> None:
        """Run ``target(*args)`` in a daemon thread that exit joins."""
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            self.sockets.append(conn)
            self.spawn(self._handle, conn)

    def _handle(self, conn: socket.socket) -> None:
        raise NotImplementedError


class RawServer(LoopbackServer):
    """``with RawServer("silent") as server: ... server.host_for_env ...``; every socket it
    accepted is closed on exit, and ``connections`` counts them."""

    def __init__(self, mode: str, *, frames: int = 2) -> None:
        super().__init__()
        self.mode = mode
        self.frames = frames

    @property
    def host_for_env(self) -> str:
        # An explicit scheme: plain HTTP whatever rule a client applies to a bare host.
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RawServer:
        super().__enter__()
        return self

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        data = b""
        while not self._stop.is_set():
            try:
                piece = conn.recv(65536)
            except socket.timeout:
                if self.mode == "truncated" and b"\r\n\r\n" in data:
                    break  # the request (and whatever body came) is in
                continue
            except OSError:
                return
            if not piece:
                return
            data += piece
        if self.mode != "truncated" or self._stop.is_set():
            return
        frame = json.dumps(
            {"data": base64.b64encode(FRAME_PCM).decode(), "sampling_rate": 44100, "done": False}
        ).encode()
        body = frame * self.frames
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        try:
            conn.sendall(head + body)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
