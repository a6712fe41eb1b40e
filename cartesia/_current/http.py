"""HTTP for the current-API clients: one request with retries, typed errors, streamed bodies.

The retry rules, the error classes and their messages come from :mod:`cartesia._client`; this
module only adapts them to httpx calls on the versionless current API.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, Iterator, Mapping, Optional, Tuple

import httpx

from .._client.errors import Where, map_exception, status_error
from .._client.generation import Deadline, Timeouts
from .._client.metrics import GenerationMetrics
from .._client.retry import Attempts
from .._client.transport.http_async import bounded
from .._client.transport.http_sync import (
    _END_WAIT,
    _MIN_WAIT,
    _install_phase_backend,
    _Phase,
    _read_timeout,
    install_cookie_filter,
    iter_raw_body,
    raw_body,
    send_stream,
)
from ..protocol import v1
from ..protocol.v1 import HttpRequest
from .aiohttp_transport import aiohttp_body
from .config import DEFAULT, CurrentConfig, merge_headers, to_httpx_timeout
from .pool import async_client

__all__ = [
    "SyncHttp",
    "AsyncHttp",
    "Resend",
    "AsyncResend",
    "iter_guarded",
    "aiter_guarded",
    "GuardedBody",
    "AsyncGuardedBody",
    "phase_deadline",
]


def phase_deadline(
    connect_timeout: Optional[float],
    first_audio_timeout: Optional[float],
    chunk_gap_timeout: Optional[float],
    total_timeout: Optional[float],
) -> Optional[Deadline]:
    """The per-phase limits of one streamed call (the v0 client's options), or None when none is set.

    When one is set they replace the httpx ``timeout`` of the call: each phase (connect, first
    bytes, gap between chunks, whole call) raises its own typed timeout.
    """
    if connect_timeout is None and first_audio_timeout is None and chunk_gap_timeout is None and total_timeout is None:
        return None
    return Deadline(Timeouts(connect_timeout, first_audio_timeout, chunk_gap_timeout, total_timeout))


class _NoPhase:
    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: Any) -> None:
        pass


def _phase(deadline: Optional[Deadline]) -> Any:
    return _Phase(deadline.remaining) if deadline is not None else _NoPhase()


def _split_files(request: HttpRequest) -> Tuple[Optional[Dict[str, Any]], Optional[Dict[str, str]]]:
    if not request.files:
        return None, None
    files: Dict[str, Any] = {}
    data: Dict[str, str] = {}
    for name, (filename, content, ctype) in request.files.items():
        if filename is None:
            data[name] = content.decode("utf-8")
        else:
            files[name] = (filename, content, ctype) if ctype else (filename, content)
    return files or None, data or None


class _Base:
    def __init__(self, config: CurrentConfig) -> None:
        self.config = config
        # (client, header set -> the client's headers merged with it), see `_merged_headers`
        self._merged: Optional[Tuple[Any, Dict[Any, httpx.Headers]]] = None

    def url(self, request: HttpRequest) -> str:
        return self.config.base_url + request.path

    def request_url(self, request: HttpRequest) -> Any:
        """The URL handed to httpx (a ``str`` here; the sync client keeps it parsed)."""
        return self.url(request)

    def where(self, request: HttpRequest, timeout: httpx.Timeout, deadline: Optional[Deadline] = None) -> Where:
        return Where(
            request.what, self.url(request), self.config.api_key, connect_timeout=timeout.connect,
            deadline=deadline,
        )

    def build(
        self,
        client: Any,
        request: HttpRequest,
        extra_headers: Optional[Mapping[str, str]],
        extra_query: Optional[Mapping[str, Any]],
        timeout: Any,
        deadline: Optional[Deadline] = None,
    ) -> Tuple[httpx.Request, httpx.Timeout]:
        cfg = self.config
        headers = v1.headers(
            cfg.api_key,
            json_content=request.json_content and request.content is not None,
            version=cfg.version,
            accept=request.accept,
        )
        # Ours, then the client's defaults, then the call's: names compared case-insensitively.
        headers = merge_headers(merge_headers(headers, cfg.default_headers), extra_headers or {})
        params: Dict[str, Any] = dict(cfg.default_query)
        params.update(request.params or {})
        params.update(extra_query or {})
        if deadline is not None:
            connect = deadline.connect_limit()
            limit = httpx.Timeout(connect=connect, read=None, write=connect, pool=connect)
        else:
            limit = cfg.timeout if timeout is DEFAULT else to_httpx_timeout(timeout)
        files, data = _split_files(request)
        url = self.request_url(request)
        if params or files or data or client.cookies or client.params or not isinstance(limit, httpx.Timeout):
            built = client.build_request(
                request.method, url, params=params or None, content=request.content,
                files=files, data=data, headers=headers, timeout=limit,
            )
        else:
            built = httpx.Request(
                request.method, url, content=request.content,
                headers=self._merged_headers(client, headers),
                extensions={"timeout": limit.as_dict()},
            )
        return built, limit

    def _merged_headers(self, client: Any, headers: Dict[str, str]) -> httpx.Headers:
        """The client's default headers updated by ``headers``, as ``build_request`` merges them.

        httpx merges them per request (two ``Headers`` built, a third of its ~0.1 ms of CPU per
        request here); a client sends few distinct header sets, so each merge is kept, per client.
        The request built with it is what ``build_request`` builds (no params, files, cookies).
        """
        cache = self._merged
        if cache is None or cache[0] is not client:
            cache = self._merged = (client, {})
        key: Optional[Tuple[Any, ...]] = tuple(headers.items())
        try:
            merged = cache[1].get(key)
        except TypeError:  # a header value that cannot be a key: merged as httpx does
            merged = None
            key = None
        if merged is None:
            merged = httpx.Headers(client.headers)
            merged.update(headers)
            if key is not None:
                if len(cache[1]) >= 32:  # headers with per-call values: never grow unbounded
                    cache[1].clear()
                cache[1][key] = merged
        return merged

    def attempts(self, request: HttpRequest, deadline: Optional[Deadline]) -> Attempts:
        """The attempts of one call (the shared retry rule, within its total time limit)."""
        return Attempts(
            self.config.retry,
            f"{request.method} {request.path}",
            total_left=deadline.total_left if deadline is not None else None,
        )

    def failure(self, request: HttpRequest, response: httpx.Response) -> BaseException:
        return status_error(
            response.status_code,
            response.text,
            prefix=request.what,
            headers=response.headers,
            secret=self.config.api_key,
        )


class SyncHttp(_Base):
    """The sync client's pooled httpx client (created on first use, closed by ``close``)."""

    def __init__(self, config: CurrentConfig) -> None:
        super().__init__(config)
        self._client: Optional[httpx.Client] = None
        self._lock = threading.Lock()
        self._urls: Dict[str, httpx.URL] = {}  # url -> parsed, for build_request

    def request_url(self, request: HttpRequest) -> Any:
        # httpx parses a str URL twice per request (to merge it, then in Request): ~0.1 ms of
        # CPU per call here. A parsed URL is kept per URL (a few: the paths are fixed).
        url = self.url(request)
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= 64:  # paths with ids in them (voices): never grow unbounded
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    def client(self) -> httpx.Client:
        with self._lock:
            if self._client is None or self._client.is_closed:
                self._client = httpx.Client(timeout=self.config.timeout)
                _install_phase_backend(self._client)  # reads obey a call's phase limits
                install_cookie_filter(self._client)
            return self._client

    def send(
        self,
        request: HttpRequest,
        *,
        stream: bool = False,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        timeout: Any = DEFAULT,
        deadline: Optional[Deadline] = None,
        metrics: Optional[GenerationMetrics] = None,
        attempts: Optional[Attempts] = None,
    ) -> httpx.Response:
        """The successful response (body unread when ``stream``), after the retries the policy allows.

        Args:
            attempts: The call's attempts so far (a :class:`Resend` passes them on, so that
                the retries of a call never exceed ``max_retries``).

        Raises:
            APIStatusError: (a subclass per status) for an error answer.
            APIConnectionError: the connection failed (``APITimeoutError`` when a limit ran out).
        """
        client = self.client()
        attempts = attempts or self.attempts(request, deadline)
        while True:
            attempts.begin()
            if deadline is not None:
                deadline.restart_phase()
            if metrics is not None:
                metrics.restart()
            built, limit = self.build(client, request, extra_headers, extra_query, timeout, deadline)
            try:
                with _phase(deadline):
                    response = send_stream(client, built) if stream else client.send(built)
            except Exception as exc:  # noqa: BLE001 - mapped to our typed errors
                error = map_exception(exc, self.where(request, limit, deadline))
            else:
                if response.is_success:
                    if metrics is not None:
                        metrics.first_byte()
                    return response
                try:
                    response.read()
                    error = self.failure(request, response)
                except Exception as exc:  # noqa: BLE001
                    error = map_exception(exc, self.where(request, limit))
                finally:
                    response.close()
            delay = attempts.after(error)
            if delay is None:
                raise error
            time.sleep(delay)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


class AsyncHttp(_Base):
    """The async client's httpx client (on aiohttp, see :mod:`.pool`): nothing here blocks the loop."""

    def __init__(self, config: CurrentConfig) -> None:
        super().__init__(config)
        self._client: Optional[httpx.AsyncClient] = None

    def client(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            self._client = async_client(self.config.timeout)
        return self._client

    async def send(
        self,
        request: HttpRequest,
        *,
        stream: bool = False,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        timeout: Any = DEFAULT,
        deadline: Optional[Deadline] = None,
        metrics: Optional[GenerationMetrics] = None,
        attempts: Optional[Attempts] = None,
    ) -> httpx.Response:
        """As :meth:`SyncHttp.send`."""
        client = self.client()
        attempts = attempts or self.attempts(request, deadline)
        while True:
            attempts.begin()
            if deadline is not None:
                deadline.restart_phase()
            if metrics is not None:
                metrics.restart()
            built, limit = self.build(client, request, extra_headers, extra_query, timeout, deadline)
            try:
                sent = client.send(built, stream=stream)
                response = await (sent if deadline is None else bounded(sent, deadline.remaining()))
            except Exception as exc:  # noqa: BLE001 - mapped to our typed errors
                error = map_exception(exc, self.where(request, limit, deadline))
            else:
                if response.is_success:
                    if metrics is not None:
                        metrics.first_byte()
                    return response
                try:
                    await response.aread()
                    error = self.failure(request, response)
                except Exception as exc:  # noqa: BLE001
                    error = map_exception(exc, self.where(request, limit))
                finally:
                    await response.aclose()
            delay = attempts.after(error)
            if delay is None:
                raise error
            await asyncio.sleep(delay)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class Resend:
    """Sends a streamed call again after its body failed before any of it reached the caller.

    The body is read after ``send`` returned, outside its retry loop; this continues that loop
    (same :class:`~cartesia._client.retry.Attempts`, same rule). The response classes only ask
    while nothing was delivered: audio that reached the caller is never replayed.

    Args:
        send: Sends the request once more (with its own status retries) and returns the response.
        attempts: The call's attempts, shared with ``send``.
    """

    def __init__(self, send: Callable[[], httpx.Response], attempts: Attempts) -> None:
        self._send = send
        self._attempts = attempts

    def __call__(self, error: BaseException) -> Optional[httpx.Response]:
        """The new response, or None when ``error`` is final (the caller raises it)."""
        delay = self._attempts.after(error)
        if delay is None:
            return None
        time.sleep(delay)
        return self._send()


class AsyncResend:
    """As :class:`Resend`, for the async client."""

    def __init__(self, send: Callable[[], Awaitable[httpx.Response]], attempts: Attempts) -> None:
        self._send = send
        self._attempts = attempts

    async def __call__(self, error: BaseException) -> Optional[httpx.Response]:
        delay = self._attempts.after(error)
        if delay is None:
            return None
        await asyncio.sleep(delay)
        return await self._send()


class GuardedBody:
    """The body's bytes as they arrive (an iterator); a transport failure raises our typed error.

    With ``where.deadline`` each read waits only as long as the current phase allows and a
    limit that ran out raises its own typed timeout.
    """

    def __init__(self, response: httpx.Response, where: Where, chunk_size: Optional[int] = None) -> None:
        self._where = where
        self._deadline: Any = where.deadline
        self._end: Optional[float] = None  # set by `finish`: the end's own short limit
        raw = raw_body(response) if chunk_size is None else None  # large reads past h11
        self._raw = raw is not None
        if raw is not None:
            # Read here, each read told its limit directly (no phase to enter per read).
            self._default = _read_timeout(response)
            self._chunks: Iterator[bytes] = iter_raw_body(response, raw, self._wait)
        else:
            self._phase = _phase(self._deadline)  # type: ignore[arg-type]
            self._chunks = response.iter_bytes(chunk_size)

    def _wait(self) -> Optional[float]:
        # How long the next read of a raw body may wait.
        if self._end is not None:
            left: Optional[float] = self._end - time.monotonic()
        elif self._deadline is not None:
            left = self._deadline.remaining()
        else:
            return self._default  # the call's httpx read timeout
        return None if left is None else left if left > _MIN_WAIT else _MIN_WAIT

    def __iter__(self) -> GuardedBody:
        return self

    def __next__(self) -> bytes:
        deadline = self._deadline
        try:
            if self._raw:
                data = next(self._chunks, None)
            else:
                with self._phase:
                    data = next(self._chunks, None)
        except Exception as exc:  # noqa: BLE001
            raise map_exception(exc, self._where) from exc
        if data is None:
            raise StopIteration
        if deadline is not None:
            deadline.audio()
        return data

    def finish(self) -> None:
        """Read the end of a body whose last event came, so its connection serves the next call.

        The server ends the body right after that event; if the end takes longer than
        ``_END_WAIT`` (or the read fails) the connection is left to be closed. Never raises.
        """
        end = self._end = time.monotonic() + _END_WAIT
        try:
            with _Phase(lambda: end - time.monotonic()):
                for _ in self._chunks:
                    if time.monotonic() >= end:
                        return
        except Exception:  # noqa: BLE001 - the connection is then closed: nothing is lost
            pass


class AsyncGuardedBody:
    """As :class:`GuardedBody`, for an async response (an async iterator).

    A body from :class:`~.aiohttp_transport.AiohttpTransport` is read straight from aiohttp
    (everything buffered per read, past httpx's layers of iterators) unless ``chunk_size`` asks
    for httpx's re-chunking.
    """

    def __init__(self, response: httpx.Response, where: Where, chunk_size: Optional[int] = None) -> None:
        self._where = where
        raw = aiohttp_body(response) if chunk_size is None else None
        self._read: Callable[[], Awaitable[bytes]] = (
            raw.read if raw is not None else _reader(response.aiter_bytes(chunk_size).__aiter__())
        )

    def __aiter__(self) -> AsyncGuardedBody:
        return self

    async def __anext__(self) -> bytes:
        deadline = self._where.deadline
        try:
            if deadline is None:
                data = await self._read()
            else:
                data = await bounded(self._read(), deadline.remaining())  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001
            raise map_exception(exc, self._where) from exc
        if not data:
            raise StopAsyncIteration
        if deadline is not None:
            deadline.audio()  # type: ignore[attr-defined]
        return data

    async def finish(self) -> None:
        """As :meth:`GuardedBody.finish`."""
        try:
            await bounded(self._drain(), _END_WAIT)
        except Exception:  # noqa: BLE001 - the connection is then closed: nothing is lost
            pass

    async def _drain(self) -> None:
        while await self._read():
            pass


def _reader(chunks: AsyncIterator[bytes]) -> Callable[[], Awaitable[bytes]]:
    """``chunks`` as a read that returns ``b""`` at their end (httpx yields no empty chunk)."""

    async def read() -> bytes:
        try:
            return await chunks.__anext__()
        except StopAsyncIteration:
            return b""

    return read


def iter_guarded(response: httpx.Response, where: Where, chunk_size: Optional[int] = None) -> GuardedBody:
    """The body's bytes as they arrive (see :class:`GuardedBody`)."""
    return GuardedBody(response, where, chunk_size)


def aiter_guarded(response: httpx.Response, where: Where, chunk_size: Optional[int] = None) -> AsyncGuardedBody:
    """As :func:`iter_guarded`, for an async response."""
    return AsyncGuardedBody(response, where, chunk_size)
