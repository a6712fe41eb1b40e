"""Reference "floor" clients: a bare socket, a minimal HTTP/1.1 or websocket reader, the compiled core.

What any client must at least spend per audio-second: a few dozen lines of plain Python around a socket
feeding the same core our client uses (``StreamParser`` for HTTP bodies, ``parse_message`` per websocket
message). No retries, timeouts, proxies, TLS, pooling, validation or flow control: benchmarks only,
never a client to ship. Each client keeps one connection open and runs one generation at a time on it.

Every path yields the audio bytes (``/tts/bytes``: the body as it arrives) and records ``first_byte``:
the ``perf_counter`` of the first bytes of the answer, so the time the client itself adds before the
first audio can be measured.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
import uuid
from typing import Any, AsyncIterator, Callable, Dict, Iterator, List, Optional, Tuple

from cartesia.streaming import StreamParser, parse_message

__all__ = ["Chunked", "Frames", "Request", "FloorClient", "AsyncFloorClient", "TRANSPORTS"]

READ = 256 * 1024
V1_VERSION = "2026-08-14"
#: transport name -> (path, framing of the body: "json" | "sse" | "raw" | "ws")
TRANSPORTS = {
    "http": ("/v0/audio/stream", "json"),
    "sse": ("/tts/sse", "sse"),
    "bytes": ("/tts/bytes", "raw"),
    "ws": ("/v0/audio/websocket", "ws"),
    "ctx": ("/tts/websocket", "ws"),
}


class FloorError(RuntimeError):
    """The server answered with an error (status, frame or close)."""


# --- sans-IO readers -----------------------------------------------------------------------------


class Chunked:
    """One HTTP/1.1 response: status line and headers, then a chunked (or Content-Length) body.

    ``feed`` returns zero-copy views of the body pieces; ``done`` is set after the last chunk.
    """

    def __init__(self) -> None:
        self.head = b""
        self.status = 0
        self.done = False
        self._in_body = False
        self._left = 0  # body bytes left in the current chunk
        self._skip = 0  # CRLF bytes after a chunk still to skip
        self._line = b""  # a chunk-size line split between reads
        self._last = False  # the last (empty) chunk was announced
        self._chunked = True

    def _headers(self, data: bytes) -> int:
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            return len(data)
        lines = self.head[:end].decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ", 2)[1])
        fields = dict((k.strip().lower(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:]))
        self._in_body = True
        if fields.get("transfer-encoding", "").lower() != "chunked":
            self._chunked = False
            self._left = int(fields.get("content-length", "0"))
            self.done = self._left == 0
        return len(data) - (len(self.head) - end - 4)

    def feed(self, data: bytes) -> List[memoryview]:
        if self._line:  # a chunk-size line split between reads (rare): join it with this read
            data, self._line = self._line + data, b""
        pos, n, out = 0, len(data), []
        if not self._in_body:
            pos = self._headers(data)
        mv = memoryview(data)
        while pos < n and not self.done:
            if self._left:
                take = min(self._left, n - pos)
                out.append(mv[pos : pos + take])
                pos += take
                self._left -= take
                if not self._chunked and not self._left:
                    self.done = True
            elif self._skip:
                take = min(self._skip, n - pos)
                pos += take
                self._skip -= take
                self.done = self._last and not self._skip
            else:
                eol = data.find(b"\r\n", pos)
                if eol < 0:
                    self._line = data[pos:]
                    break
                size = int(data[pos:eol].split(b";", 1)[0], 16)
                pos = eol + 2
                # NOTE: trailers are not supported (the server sends none): "0" CRLF CRLF ends it.
                self._last = size == 0
                self._left, self._skip = size, 2
        return out


class Frames:
    """Websocket frames from a server (unmasked): ``feed`` returns complete ``(opcode, payload)``."""

    def __init__(self) -> None:
        self._head = b""  # a frame header split between reads
        self._part: Optional[bytearray] = None  # payload of a frame split between reads
        self._fill = 0
        self._op = 0
        self._fin = True
        self._frag: List[bytes] = []  # earlier fragments of a fragmented message
        self._frag_op = 0

    def _frame(self, fin: bool, op: int, payload: Any, out: List[Tuple[int, Any]]) -> None:
        if op >= 8:  # control frames may sit between fragments
            out.append((op, payload))
        elif not fin:
            if op:
                self._frag_op = op
            self._frag.append(bytes(payload))
        elif op == 0:
            out.append((self._frag_op, b"".join(self._frag) + bytes(payload)))
            self._frag = []
        else:
            out.append((op, payload))

    def feed(self, data: bytes) -> List[Tuple[int, Any]]:
        out: List[Tuple[int, Any]] = []
        mv, pos, n = memoryview(data), 0, len(data)
        if self._part is not None:  # finish the split payload first
            take = min(len(self._part) - self._fill, n)
            self._part[self._fill : self._fill + take] = mv[:take]
            self._fill += take
            pos = take
            if self._fill < len(self._part):
                return out
            part, self._part = self._part, None
            self._frame(self._fin, self._op, part, out)
        if self._head:
            data = self._head + bytes(mv[pos:])
            mv, pos, n, self._head = memoryview(data), 0, len(data), b""
        while pos < n:
            if n - pos < 2:
                self._head = bytes(mv[pos:])
                break
            b0, b1 = data[pos], data[pos + 1]
            if b1 & 0x80:
                raise FloorError("masked frame from the server")
            size, hdr = b1 & 0x7F, 2
            if size >= 126:
                hdr = 4 if size == 126 else 10
                if n - pos < hdr:
                    self._head = bytes(mv[pos:])
                    break
                size = int.from_bytes(data[pos + 2 : pos + hdr], "big")
            start, end = pos + hdr, pos + hdr + size
            fin, op = bool(b0 & 0x80), b0 & 0x0F
            if end > n:
                self._part = bytearray(size)
                self._fill = n - start
                self._part[: self._fill] = mv[start:]
                self._fin, self._op = fin, op
                break
            self._frame(fin, op, mv[start:end], out)
            pos = end
        return out


def ws_frame(payload: bytes, op: int = 1) -> bytes:
    """One masked client frame (RFC 6455 requires clients to mask)."""
    n = len(payload)
    head = bytes([0x80 | op])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    mask = os.urandom(4)
    body = (int.from_bytes(payload, "little") ^ int.from_bytes(mask * (n // 4 + 1), "little")).to_bytes(
        n + 4, "little"
    )[:n] if n else b""
    return head + mask + body


# --- requests ------------------------------------------------------------------------------------


class Request:
    """The bytes of one generation on ``transport`` and what is needed to read its answer."""

    def __init__(self, transport: str, host: str, api_key: str, body: Dict[str, Any]) -> None:
        self.transport = transport
        self.path, self.framing = TRANSPORTS[transport]
        self.host = host
        self.api_key = api_key
        self.body = body
        self.v0 = self.path.startswith("/v0")

    def auth(self) -> str:
        if self.v0:
            return f"X-API-Key: {self.api_key}\r\n"
        return f"Authorization: Bearer {self.api_key}\r\nCartesia-Version: {V1_VERSION}\r\n"

    def http(self) -> bytes:
        content = json.dumps(self.body).encode()
        return (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}\r\n{self.auth()}Content-Type: application/json\r\n"
            f"Content-Length: {len(content)}\r\n\r\n"
        ).encode() + content

    def upgrade(self) -> Tuple[bytes, str]:
        key = base64.b64encode(os.urandom(16)).decode()
        query = f"?api_key={self.api_key}" if self.v0 else ""
        head = (
            f"GET {self.path}{query} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{'' if self.v0 else self.auth()}\r\n"
        )
        return head.encode(), key

    def message(self, context_id: str) -> bytes:
        if self.v0:
            return json.dumps({"data": self.body, "context_id": context_id}).encode()
        return json.dumps(dict(self.body, context_id=context_id, **{"continue": False})).encode()


def _check_upgrade(head: bytes) -> None:
    if not head.startswith(b"HTTP/1.1 101"):
        raise FloorError(f"websocket upgrade refused: {head[:200]!r}")


class _Body:
    """Turns body pieces of one response into audio bytes (the core does the work)."""

    def __init__(self, framing: str) -> None:
        self.raw = framing == "raw"
        self.parser = None if self.raw else StreamParser(framing)
        self.error: Optional[str] = None

    def audio(self, piece: Any, out: List[bytes]) -> None:
        if self.parser is None:
            out.append(bytes(piece))
            return
        for msg in self.parser.feed(piece):
            if msg.audio:
                out.append(msg.audio)
            elif msg.type == "error" or "error" in msg.fields:
                self.error = str(msg.fields)[:300]

    def end(self, out: List[bytes]) -> None:
        if self.parser is not None:
            for msg in self.parser.close():
                if msg.audio:
                    out.append(msg.audio)


def _ws_audio(payload: Any, context_id: str, out: List[bytes]) -> bool:
    """Audio of one websocket text message into ``out``; True once its context is done."""
    msg = parse_message(payload)
    if msg.context_id != context_id:
        raise FloorError(f"frame of another context: {msg.context_id!r}")
    if msg.type == "error" or "error" in msg.fields:
        raise FloorError(f"error frame: {str(msg.fields)[:300]}")
    if msg.audio:
        out.append(msg.audio)
    return msg.done


def _split(base_url: str) -> Tuple[str, int]:
    hostport = base_url.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    return host, int(port)


# --- sync ------------------------------------------------------------------------------------------


class FloorClient:
    """Blocking sockets, one per transport, reused across generations."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.host, self.port = _split(base_url)
        self.api_key = api_key
        self.first_byte: Optional[float] = None
        self._socks: Dict[str, socket.socket] = {}
        self._frames: Dict[str, Frames] = {}

    def _sock(self, transport: str) -> socket.socket:
        sock = self._socks.get(transport)
        if sock is None:
            sock = socket.create_connection((self.host, self.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._socks[transport] = sock
        return sock

    def stream(self, transport: str, body: Dict[str, Any]) -> Iterator[bytes]:
        req = Request(transport, f"{self.host}:{self.port}", self.api_key, body)
        return self._ws(req) if req.framing == "ws" else self._http(req)

    def _http(self, req: Request) -> Iterator[bytes]:
        sock = self._sock(req.transport)
        sock.sendall(req.http())
        resp, body, out = Chunked(), _Body(req.framing), []
        self.first_byte = None
        while not resp.done:
            data = sock.recv(READ)
            if self.first_byte is None:
                self.first_byte = time.perf_counter()
            if not data:
                raise FloorError("connection closed mid-response")
            pieces = resp.feed(data)
            if resp.status != 200 and resp.status:
                raise FloorError(f"HTTP {resp.status}: {data[:300]!r}")
            for piece in pieces:
                body.audio(piece, out)
            if out:
                yield from out
                out.clear()
        body.end(out)
        yield from out
        if body.error:
            raise FloorError(body.error)

    def _ws(self, req: Request) -> Iterator[bytes]:
        sock = self._socks.get(req.transport)
        if sock is None:
            sock = self._sock(req.transport)
            head, _ = req.upgrade()
            sock.sendall(head)
            got = b""
            while b"\r\n\r\n" not in got:
                got += sock.recv(4096)
            _check_upgrade(got)
            self._frames[req.transport] = Frames()
            extra = got.split(b"\r\n\r\n", 1)[1]
            if extra:  # NOTE: the server never speaks first; anything here is a protocol error
                raise FloorError(f"unexpected bytes after the upgrade: {extra[:100]!r}")
        frames = self._frames[req.transport]
        context_id = uuid.uuid4().hex
        sock.sendall(ws_frame(req.message(context_id)))
        out: List[bytes] = []
        done = False
        self.first_byte = None
        while not done:
            data = sock.recv(READ)
            if self.first_byte is None:
                self.first_byte = time.perf_counter()
            if not data:
                raise FloorError("connection closed mid-generation")
            for op, payload in frames.feed(data):
                if op == 1:
                    done = _ws_audio(payload, context_id, out) or done
                elif op == 9:
                    sock.sendall(ws_frame(bytes(payload), 10))
                elif op == 8:
                    raise FloorError(f"server closed the websocket: {bytes(payload)[:200]!r}")
            if out:
                yield from out
                out.clear()

    def close(self) -> None:
        for transport, sock in self._socks.items():
            if transport in self._frames:
                try:
                    sock.sendall(ws_frame(b"\x03\xe8", 8))
                except OSError:
                    pass
            sock.close()
        self._socks.clear()


# --- async -----------------------------------------------------------------------------------------


class _Proto(asyncio.Protocol):
    """Hands every read to ``on_data`` (set per generation); wakes the reader through ``waiter``."""

    def __init__(self) -> None:
        self.transport: Optional[asyncio.Transport] = None
        self.on_data: Callable[[bytes], None] = self._early
        self.waiter: Optional[asyncio.Future] = None
        self.lost: Optional[BaseException] = None
        self.head = b""
        self.frames = Frames()

    def _early(self, data: bytes) -> None:
        self.head += data  # the websocket upgrade answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.on_data(data)
        self.wake()

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.lost = exc or FloorError("connection closed")
        self.wake()

    def wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def wait(self) -> None:
        if self.lost is not None:
            raise FloorError(f"connection lost: {self.lost}")
        self.waiter = asyncio.get_running_loop().create_future()
        await self.waiter
        self.waiter = None


class AsyncFloorClient:
    """``asyncio.Protocol`` connections, one per transport, reused across generations."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.host, self.port = _split(base_url)
        self.api_key = api_key
        self.first_byte: Optional[float] = None
        self._protos: Dict[str, _Proto] = {}

    async def _proto(self, transport: str) -> Tuple[_Proto, bool]:
        proto = self._protos.get(transport)
        if proto is not None:
            return proto, False
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(_Proto, self.host, self.port)
        self._protos[transport] = proto
        return proto, True

    def stream(self, transport: str, body: Dict[str, Any]) -> AsyncIterator[bytes]:
        req = Request(transport, f"{self.host}:{self.port}", self.api_key, body)
        return self._ws(req) if req.framing == "ws" else self._http(req)

    def _mark(self) -> None:
        if self.first_byte is None:
            self.first_byte = time.perf_counter()

    async def _http(self, req: Request) -> AsyncIterator[bytes]:
        proto, _ = await self._proto(req.transport)
        resp, body, out = Chunked(), _Body(req.framing), []
        failed: List[str] = []

        def on_data(data: bytes) -> None:
            self._mark()
            pieces = resp.feed(data)
            if resp.status and resp.status != 200:
                failed.append(f"HTTP {resp.status}: {data[:300]!r}")
            for piece in pieces:
                body.audio(piece, out)

        self.first_byte = None
        proto.on_data = on_data
        assert proto.transport is not None
        proto.transport.write(req.http())
        while True:
            if out:
                got = out[:]
                out.clear()
                for audio in got:
                    yield audio
            if failed:
                raise FloorError(failed[0])
            if resp.done:
                break
            await proto.wait()
        body.end(out)
        for audio in out:
            yield audio
        if body.error:
            raise FloorError(body.error)

    async def _ws(self, req: Request) -> AsyncIterator[bytes]:
        proto, new = await self._proto(req.transport)
        assert proto.transport is not None
        if new:
            head, _ = req.upgrade()
            proto.transport.write(head)
            while b"\r\n\r\n" not in proto.head:
                await proto.wait()
            _check_upgrade(proto.head)
        frames = proto.frames
        context_id = uuid.uuid4().hex
        out: List[bytes] = []
        state: List[Any] = []  # True when done, or an exception

        def on_data(data: bytes) -> None:
            self._mark()
            try:
                for op, payload in frames.feed(data):
                    if op == 1:
                        if _ws_audio(payload, context_id, out):
                            state.append(True)
                    elif op == 9:
                        proto.transport.write(ws_frame(bytes(payload), 10))  # type: ignore[union-attr]
                    elif op == 8:
                        raise FloorError(f"server closed the websocket: {bytes(payload)[:200]!r}")
            except Exception as exc:  # surfaced in the reader
                state.append(exc)

        self.first_byte = None
        proto.on_data = on_data
        proto.transport.write(ws_frame(req.message(context_id)))
        while True:
            if out:
                got = out[:]
                out.clear()
                for audio in got:
                    yield audio
            if state:
                if isinstance(state[0], BaseException):
                    raise state[0]
                break
            await proto.wait()

    async def close(self) -> None:
        for transport, proto in self._protos.items():
            if proto.transport is not None:
                if TRANSPORTS[transport][1] == "ws":
                    proto.transport.write(ws_frame(b"\x03\xe8", 8))
                proto.transport.close()
        self._protos.clear()
        await asyncio.sleep(0)
