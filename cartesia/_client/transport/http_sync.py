"""Sync HTTP over httpx: plain calls and the streamed generation, each limit in its own phase.

httpx fixes one read timeout for a whole response body, so on its own it cannot let the first
audio and the gaps between chunks have different limits. This adapter hands httpcore a network
backend whose reads ask the running call for the limit of the current phase instead.
"""

from __future__ import annotations

import inspect
import logging
import ssl
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import httpcore
import httpx

from ...protocol import Dialect, v0
from ...protocol.events import Event
from ...protocol.v0 import HttpRequest
from ..errors import Where, map_exception, status_error
from ..generation import Deadline, Generation, out_of_connect_time
from ..retry import Attempts, RetryPolicy
from .chunked import READ_SIZE, ChunkedBody

__all__ = [
    "SyncHttp",
    "HttpStreamAttempt",
    "raw_body",
    "iter_raw_body",
    "release_raw",
    "install_cookie_filter",
    "send_stream",
]

_PHASE = threading.local()  # .limit: Callable[[], Optional[float]] of the call reading now
_MIN_WAIT = 1e-3  # a zero socket timeout would mean "non-blocking", not "expired"
_END_WAIT = 0.1  # how long a finished generation waits for its body's last chunk
_COALESCE = 64 * 1024  # a body piece up to this size takes its request's head along (a copy)


def _phase_timeout(default: Optional[float]) -> Optional[float]:
    limit: Optional[Callable[[], Optional[float]]] = getattr(_PHASE, "limit", None)
    if limit is None:
        return default
    left = limit()
    return None if left is None else max(_MIN_WAIT, left)


class _PhaseStream(httpcore.NetworkStream):
    """A connection whose reads wait as long as the running call's current phase allows.

    It also lets a streamed body be read past h11 (see :func:`raw_body`): while a response's
    headers are awaited, h11 is handed at most one header block per read and the bytes after
    it wait here, so once httpx returns the response nothing of its body was parsed yet.
    """

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner
        self._pending = b""  # read off the socket, not handed to h11 yet
        self._in_headers = False  # a request went out: its response's headers come next
        self._tail = b""  # the end of what h11 got in header mode (a CRLFCRLF across reads)
        self._body_start = False  # h11 has exactly the headers, none of the body
        self._buffer: Optional[bytearray] = None  # the read buffer of the bodies read past h11
        # A request's head, held back to go out with the first piece of its body.
        self._unsent: Optional[Tuple[bytes, Optional[float]]] = None

    def read(self, max_bytes: int, timeout: Optional[float] = None) -> bytes:
        if self._unsent is not None:
            # A request without a body part to carry its head: the head goes out now. httpcore
            # ignores a failed write of a request and reads what the server said (it may have
            # answered and closed early); so does this one.
            try:
                self._flush()
            except httpcore.WriteError:
                pass
        if self._pending:
            data, self._pending = self._pending, b""
        else:
            data = self._inner.read(max_bytes, _phase_timeout(timeout))
        self._body_start = False
        if self._in_headers and data:
            window = self._tail + data
            end = window.find(b"\r\n\r\n")
            if end < 0:
                self._tail = window[-3:]
            else:
                cut = end + 4 - len(self._tail)
                data, self._pending = data[:cut], data[cut:]
                self._in_headers, self._tail, self._body_start = False, b"", True
        return data

    def write(self, buffer: bytes, timeout: Optional[float] = None) -> None:
        # h11 writes a request's head, then each piece of its body: the head waits for the
        # first piece and both leave in one system call (one `send`, one TCP segment for a
        # small request), as a bare client sends them.
        unsent = self._unsent
        if unsent is not None:
            self._unsent = None
            if len(buffer) <= _COALESCE:
                self._inner.write(unsent[0] + buffer, timeout)
                return
            self._inner.write(unsent[0], unsent[1])
        elif not self._in_headers:  # the first write of a request: its head
            self._in_headers, self._tail, self._body_start = True, b"", False
            self._unsent = (buffer, timeout)
            return
        self._inner.write(buffer, timeout)

    def _flush(self) -> None:
        unsent, self._unsent = self._unsent, None
        if unsent is not None:
            self._inner.write(*unsent)

    def take_body(self) -> Optional[ChunkedBody]:
        """The body of the response whose headers h11 just parsed, to be read here; None when
        it cannot be (h11 already has some of it, or the socket is not the plain/TLS one)."""
        if not self._body_start:
            return None
        sock = self._inner.get_extra_info("socket")
        if sock is None or (
            # TLS inside TLS (an HTTPS proxy): the socket carries the outer layer.
            self._inner.get_extra_info("ssl_object") is not None
            and not isinstance(sock, ssl.SSLSocket)
        ):
            return None
        self._body_start = False
        first, self._pending = self._pending, b""
        # One read buffer per connection, reused by each body read on it (one at a time): a
        # fresh 128 KiB per request costs its allocation and zeroing (and page faults).
        if self._buffer is None:
            self._buffer = bytearray(READ_SIZE)
        return ChunkedBody(sock, first, self._buffer)

    def end_body(self) -> None:
        """The body read here ended: h11 gets the end of an empty chunked body, so it ends the
        response and the connection goes back to the pool."""
        self._pending = b"0\r\n\r\n"

    def close(self) -> None:
        self._pending, self._unsent = b"", None
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> httpcore.NetworkStream:
        return _PhaseStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._pending:
            return True  # bytes nobody asked for: the pool must not reuse this connection
        return self._inner.get_extra_info(info)


def raw_body(response: httpx.Response) -> Optional[ChunkedBody]:
    """The chunked body of a streamed ``response``, to be read straight off its socket.

    None when httpx must read it (not HTTP/1.1 chunked, content-encoded, another network
    backend): the caller then iterates the response as usual.
    """
    headers = response.headers
    if (
        response.http_version != "HTTP/1.1"
        or headers.get("transfer-encoding", "").lower() != "chunked"
        or headers.get("content-encoding", "identity").lower() != "identity"
        or response.is_stream_consumed
    ):
        return None
    stream = response.extensions.get("network_stream")
    return stream.take_body() if isinstance(stream, _PhaseStream) else None


def release_raw(response: httpx.Response, body: ChunkedBody) -> None:
    """Hand the connection of a body read by :func:`raw_body` back to the pool if it was read
    to its end (else it is closed); never raises."""
    stream = response.extensions.get("network_stream")
    try:
        if body.done and not body.extra and isinstance(stream, _PhaseStream):
            stream.end_body()
            for _ in response.iter_raw():  # h11 reads the end just queued: no I/O
                pass
    except Exception:  # noqa: BLE001 - the connection is then closed instead of reused
        pass
    response.close()


def _read_timeout(response: httpx.Response) -> Optional[float]:
    timeouts = response.request.extensions.get("timeout") or {}
    read: Optional[float] = timeouts.get("read")
    return read


def iter_raw_body(
    response: httpx.Response,
    body: ChunkedBody,
    wait: Optional[Callable[[], Optional[float]]] = None,
) -> Iterator[bytes]:
    """The bytes of a body taken by :func:`raw_body`, one piece per socket read; the
    connection goes back to the pool at the end. Each read waits ``wait()`` seconds when
    given (None: no limit), else as the running call's phase allows."""
    default = _read_timeout(response)
    try:
        while True:
            pieces = body.read(wait() if wait is not None else _phase_timeout(default))
            if not pieces:
                return
            yield pieces[0].tobytes() if len(pieces) == 1 else b"".join(pieces)
    finally:
        release_raw(response, body)


class _PhaseBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: Optional[float] = None,
        local_address: Optional[str] = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        return _PhaseStream(
            self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        )

    def connect_unix_socket(
        self, path: str, timeout: Optional[float] = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        return _PhaseStream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def _install_phase_backend(client: httpx.Client) -> None:
    # httpx exposes no public hook for httpcore's network backend; the pools read this
    # attribute whenever they open a connection. Without it (another httpx), reads fall back
    # to the static timeout given per request.
    transports = [client._transport, *client._mounts.values()]  # noqa: SLF001
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        if pool is not None and hasattr(pool, "_network_backend"):
            pool._network_backend = _PhaseBackend()  # noqa: SLF001


try:  # httpx's own pieces of `Client.send`, to do what it does when it has nothing else to do
    from httpx._client import BoundSyncStream as _BoundStream
    from httpx._client import ClientState as _ClientState
    from httpx._exceptions import request_context as _request_context
except ImportError:  # pragma: no cover - another httpx: every request goes through `send`
    _BoundStream = _ClientState = _request_context = None  # type: ignore[assignment,misc]
# httpx before 0.28 binds its streams to a `Timer` instead of a start time: `send` for those.
_DIRECT = (
    _BoundStream is not None
    and "start" in inspect.signature(_BoundStream.__init__).parameters
    and hasattr(httpx.Client, "_transport_for_url")
    and hasattr(httpx.Client, "_build_redirect_request")
)

_httpx_log = logging.getLogger("httpx")


def _plain(client: httpx.Client, request: httpx.Request) -> bool:
    """Whether ``client.send(request)`` would run no auth flow, redirect or event hook."""
    try:
        hooks = client._event_hooks  # noqa: SLF001
        return (
            _DIRECT
            and client._state is _ClientState.OPENED  # noqa: SLF001 - closed: send raises
            and hasattr(client, "_default_encoding")
            and client._auth is None  # noqa: SLF001
            and not client.follow_redirects
            and not hooks["request"]
            and not hooks["response"]
            and "timeout" in request.extensions
            and not request.url.userinfo  # credentials in the URL: httpx sends Basic auth
        )
    except (AttributeError, KeyError, TypeError):  # another httpx
        return False


def send_stream(client: httpx.Client, request: httpx.Request) -> httpx.Response:
    """``client.send(request, stream=True)``: the same response, errors and side effects.

    A client without auth, event hooks or redirects to follow (ours) runs none of them, yet
    ``send`` passes every request through the generators of its auth and redirect flows (tens
    of µs of CPU per request). Then this does only what ``send`` does for such a client: the
    transport for the URL (proxies and mounts included), the timing, the cookies, the log line.
    Anything else goes through ``send`` itself.
    """
    if not _plain(client, request):
        return client.send(request, stream=True)
    transport = client._transport_for_url(request.url)  # noqa: SLF001
    start = time.perf_counter()
    with _request_context(request=request):
        response = transport.handle_request(request)
    response.request = request
    response.stream = _BoundStream(response.stream, response=response, start=start)  # type: ignore[arg-type]
    client.cookies.extract_cookies(response)
    response.default_encoding = client._default_encoding  # noqa: SLF001
    if response.has_redirect_location:
        # What httpx sets when it does not follow (`next_request`); a bad Location raises, and
        # the response is closed first, as in httpx.
        try:
            response.next_request = client._build_redirect_request(request, response)  # noqa: SLF001
        except BaseException:
            response.close()
            raise
    if _httpx_log.isEnabledFor(logging.INFO):
        _httpx_log.info(
            'HTTP Request: %s %s "%s %d %s"',
            request.method,
            request.url,
            response.http_version,
            response.status_code,
            response.reason_phrase,
        )
    return response


class _SetCookiesOnly(httpx.Cookies):
    """The client's cookie jar, which only looks at responses that set a cookie.

    httpx hands every response to ``extract_cookies``, which wraps the request and the response
    in ``urllib`` shims before the jar finds no ``Set-Cookie``: tens of µs between the response
    head and the first audio of every generation. Cookies that are set are kept as before.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


def install_cookie_filter(client: Any) -> None:
    """Give an ``httpx.Client``/``AsyncClient`` the jar of :class:`_SetCookiesOnly` (same cookies).

    httpx has no public hook for it (the ``cookies`` setter copies into a plain jar); without
    the private attribute (another httpx) the client keeps its own jar.
    """
    cookies = getattr(client, "_cookies", None)
    if isinstance(cookies, httpx.Cookies) and not isinstance(cookies, _SetCookiesOnly):
        client._cookies = _SetCookiesOnly(cookies.jar)  # noqa: SLF001


class _Phase:
    """Within the block, this thread's reads wait at most ``limit()`` seconds."""

    def __init__(self, limit: Callable[[], Optional[float]]) -> None:
        self._limit = limit

    def __enter__(self) -> None:
        self._saved = getattr(_PHASE, "limit", None)
        _PHASE.limit = self._limit

    def __exit__(self, *exc: Any) -> None:
        _PHASE.limit = self._saved


def _files(request: HttpRequest) -> Optional[Dict[str, Tuple[Any, ...]]]:
    if not request.files:
        return None
    # httpx guesses the content type from the file name when none is given.
    return {
        k: (name, data, ctype) if ctype else (name, data)
        for k, (name, data, ctype) in request.files.items()
    }


class SyncHttp:
    """The sync client's pooled httpx client (created on first use, closed by ``close``)."""

    def __init__(
        self,
        root: str,
        api_key: Optional[str],
        max_connections: Optional[int],
        dialect: Dialect = v0,
        *,
        keep_alive: Optional[int] = None,
    ) -> None:
        self.dialect = dialect
        self._root = root
        self._key = api_key
        # No cap by default: one streamed generation holds a connection for its whole length.
        self._limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=keep_alive if keep_alive is not None else max_connections,
        )
        self._client: Optional[httpx.Client] = None
        self._lock = threading.Lock()
        self._urls: Dict[str, httpx.URL] = {}  # path -> its parsed URL
        # (client, its default headers merged with ours) for the streamed requests
        self._stream_headers: Optional[Tuple[httpx.Client, httpx.Headers]] = None

    def client(self) -> httpx.Client:
        with self._lock:
            if self._client is None or self._client.is_closed:
                self._client = httpx.Client(limits=self._limits)
                _install_phase_backend(self._client)
                install_cookie_filter(self._client)
            return self._client

    def url(self, request: HttpRequest) -> str:
        return f"{self._root}{request.path}"

    def stream_request(
        self, client: httpx.Client, request: HttpRequest, timeout: Dict[str, Optional[float]]
    ) -> httpx.Request:
        """The POST of a streamed generation, as ``client.build_request`` would build it.

        Parsing the URL and merging the client's default headers with ours cost about 0.2 ms
        of CPU per request; here both are done once per client (a client with cookies still
        gets them merged per request, by httpx).
        """
        ours = self.dialect.headers(self._key)
        if client.cookies:
            return client.build_request(
                "POST", self.url(request), content=request.content, headers=ours,
                extensions={"timeout": timeout},
            )
        url = self._urls.get(request.path)
        if url is None:
            url = self._urls[request.path] = httpx.URL(self.url(request))
        cached = self._stream_headers
        if cached is None or cached[0] is not client:
            merged = httpx.Headers(client.headers)  # what httpx's own merge does
            merged.update(ours)
            cached = self._stream_headers = (client, merged)
        return httpx.Request(
            "POST", url, content=request.content, headers=cached[1], extensions={"timeout": timeout}
        )

    def call(self, request: HttpRequest, deadline: Deadline, policy: RetryPolicy) -> Any:
        """One plain call (JSON answer) with retries; ``first_audio`` bounds the wait for it."""
        url = self.url(request)
        where = Where(request.what, url, self._key, connect_timeout=deadline.timeouts.connect)
        attempts = Attempts(
            policy, f"{request.method} {request.path}", total_left=deadline.total_left
        )
        while True:
            attempts.begin()
            deadline.restart_phase()
            error = self._once(request, url, where, deadline)
            if not isinstance(error, BaseException):
                return error
            delay = None if out_of_connect_time(error, deadline) else attempts.after(error)
            if delay is None:
                raise error
            time.sleep(delay)

    def _once(self, request: HttpRequest, url: str, where: Where, deadline: Deadline) -> Any:
        where.deadline = deadline
        timeout = httpx.Timeout(
            connect=deadline.connect_limit(),
            read=None,
            write=deadline.connect_limit(),
            pool=deadline.connect_limit(),
        )
        try:
            with _Phase(deadline.remaining):
                response = self.client().request(
                    request.method,
                    url,
                    params=request.params,
                    content=request.content,
                    files=_files(request),
                    headers=self.dialect.headers(self._key, json_content=request.json_content),
                    timeout=timeout,
                )
                if response.is_success:
                    return response.json()
        except Exception as exc:  # noqa: BLE001 - mapped to our typed errors just below
            return _plain_timeout(map_exception(exc, where), where, deadline)
        return status_error(
            response.status_code,
            response.text,
            prefix=request.error_prefix(response.status_code),
            headers=response.headers,
            secret=self._key,
        )

    def stream(self, request: HttpRequest, gen: Generation) -> HttpStreamAttempt:
        return HttpStreamAttempt(self, request, gen)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


def _plain_timeout(error: BaseException, where: Where, deadline: Deadline) -> BaseException:
    # A plain call has no audio: a read that ran out is "no answer", unless the total did.
    from ...errors import CartesiaTimeoutError, ConnectTimeoutError, TotalTimeoutError

    if isinstance(error, CartesiaTimeoutError) and not isinstance(
        error, (ConnectTimeoutError, TotalTimeoutError)
    ):
        return CartesiaTimeoutError(
            f"{where.what}The server did not answer within {deadline.timeouts.first_audio} s."
        )
    return error


class HttpStreamAttempt:
    """One ``POST /audio/stream``: the response's bytes, as events."""

    reused: Optional[bool] = None

    def __init__(self, http: SyncHttp, request: HttpRequest, gen: Generation) -> None:
        self._gen = gen
        url = http.url(request)
        self._where = gen.where(request.what, url)
        self._phase = _Phase(gen.wait_limit)
        self._remaining = gen.deadline.remaining  # = gen.wait_limit, one call less per read
        self._decoder = http.dialect.HttpStreamDecoder(sink=gen.sink)
        self._response: Optional[httpx.Response] = None
        self._raw: Optional[ChunkedBody] = None
        limit = gen.connect_limit()
        # httpx.Timeout(connect=limit, read=None, write=limit, pool=limit).as_dict()
        timeout = {"connect": limit, "read": None, "write": limit, "pool": limit}
        error: Optional[BaseException] = None
        try:
            with self._phase:
                client = http.client()
                self._response = send_stream(client, http.stream_request(client, request, timeout))
                gen.metrics.first_byte()
                if not self._response.is_success:
                    self._response.read()
                    error = status_error(
                        self._response.status_code,
                        self._response.text,
                        prefix=request.what,
                        headers=self._response.headers,
                        secret=http._key,  # noqa: SLF001
                    )
        except Exception as exc:  # noqa: BLE001
            error = map_exception(exc, self._where)
        if error is not None:
            self.close(False)
            raise error
        assert self._response is not None
        # Read the body off the socket when httpx allows it (see `raw_body`); else via httpx.
        self._raw = raw_body(self._response)
        self._chunks: Iterator[bytes] = iter(()) if self._raw else self._response.iter_bytes()

    def receive(self) -> List[Event]:
        error: Optional[BaseException] = None
        raw, decoder = self._raw, self._decoder
        try:
            if decoder.pending:
                # The rest of the read whose first frame went out (no I/O: the views on the
                # read buffer are valid until the next read).
                return decoder.feed_pending()
            if raw is not None:
                left = self._remaining()
                pieces = raw.read(None if left is None else left if left > _MIN_WAIT else _MIN_WAIT)
                if not pieces:
                    return decoder.close()
                events = decoder.feed_pieces(pieces)
            else:
                with self._phase:
                    data = next(self._chunks, b"")
                if not data:
                    return decoder.close()
                events = decoder.feed(data)
            if not events:
                self._gen.deadline.check()  # a trickle of bytes without a whole frame
            return events
        except Exception as exc:  # noqa: BLE001
            error = map_exception(exc, self._where)
        raise error

    def delivered(self) -> None:
        pass

    def close(self, completed: bool) -> None:
        response, self._response = self._response, None
        if response is None:
            return
        raw = self._raw
        if raw is None:
            response.close()
            return
        if completed and not raw.done:
            # The `done` frame came; the body's last chunk follows at once. Read it (briefly)
            # so the connection can serve the next generation instead of being closed.
            try:
                while raw.read(_END_WAIT):
                    pass
            except Exception:  # noqa: BLE001 - then the connection is closed, nothing lost
                pass
        release_raw(response, raw)
