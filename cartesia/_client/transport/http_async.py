"""Async HTTP over aiohttp: plain calls and the streamed generation, each limit in its own phase."""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Awaitable, Callable, List, Optional, TypeVar

import aiohttp

from ...protocol import Dialect, v0
from ...protocol.events import Event
from ...protocol.v0 import HttpRequest
from ..errors import Where, map_exception, status_error
from ..generation import Deadline, Generation, out_of_connect_time
from ..retry import Attempts, RetryPolicy
from .aiohttp_body import BodyReader
from .env_proxy import env_proxy
from .http_sync import _plain_timeout

__all__ = ["AsyncHttp", "AsyncHttpStreamAttempt", "bounded"]

T = TypeVar("T")

# Bytes a response may hold unread before aiohttp pauses the socket (it resumes below this).
# aiohttp's 64 KiB holds under three 23.6 kB frames: a reader that falls behind for a moment
# paused and resumed the socket (two epoll changes) every few frames.
_READ_BUFSIZE = 1 << 18

if sys.version_info >= (3, 11):

    async def bounded(awaitable: Awaitable[T], timeout: Optional[float]) -> T:
        """Await with a time limit (raises ``asyncio.TimeoutError``); no task per call."""
        if timeout is None:
            return await awaitable
        async with asyncio.timeout(timeout):
            return await awaitable

else:

    async def bounded(awaitable: Awaitable[T], timeout: Optional[float]) -> T:
        """Await with a time limit (raises ``asyncio.TimeoutError``)."""
        return await asyncio.wait_for(awaitable, timeout)


def _form(request: HttpRequest) -> Any:
    if not request.files:
        return request.content
    data = aiohttp.FormData()
    for name, (filename, content, ctype) in request.files.items():
        data.add_field(name, content, filename=filename, content_type=ctype)
    return data


class AsyncHttp:
    """HTTP calls on the session of the running event loop (``session`` gives it)."""

    def __init__(
        self,
        root: str,
        api_key: Optional[str],
        session: Callable[[], Awaitable[aiohttp.ClientSession]],
        dialect: Dialect = v0,
    ) -> None:
        self.dialect = dialect
        self._root = root
        self._key = api_key
        self._session = session

    def url(self, request: HttpRequest) -> str:
        return f"{self._root}{request.path}"

    async def _send(self, request: HttpRequest, connect: Optional[float]) -> aiohttp.ClientResponse:
        session = await self._session()
        url = self.url(request)
        return await session.request(
            request.method,
            url,
            proxy=await env_proxy(session, url),
            read_bufsize=_READ_BUFSIZE,
            params=request.params,
            data=_form(request),
            headers=self.dialect.headers(self._key, json_content=request.json_content),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect),
        )

    async def call(self, request: HttpRequest, deadline: Deadline, policy: RetryPolicy) -> Any:
        """One plain call (JSON answer) with retries; ``first_audio`` bounds the wait for it."""
        where = Where(
            request.what,
            self.url(request),
            self._key,
            connect_timeout=deadline.timeouts.connect,
            deadline=deadline,
        )
        attempts = Attempts(
            policy, f"{request.method} {request.path}", total_left=deadline.total_left
        )
        while True:
            attempts.begin()
            deadline.restart_phase()
            result = await self._once(request, where, deadline)
            if not isinstance(result, BaseException):
                return result
            delay = None if out_of_connect_time(result, deadline) else attempts.after(result)
            if delay is None:
                raise result
            await asyncio.sleep(delay)

    async def _once(self, request: HttpRequest, where: Where, deadline: Deadline) -> Any:
        try:
            response = await bounded(
                self._send(request, deadline.connect_limit()), deadline.remaining()
            )
            async with response:
                if response.status < 400:
                    return await bounded(response.json(), deadline.remaining())
                text = await bounded(response.text(), deadline.remaining())
                return status_error(
                    response.status,
                    text,
                    prefix=request.error_prefix(response.status),
                    headers=response.headers,
                    secret=self._key,
                )
        except Exception as exc:  # noqa: BLE001 - mapped to our typed errors
            return _plain_timeout(map_exception(exc, where), where, deadline)

    async def stream(self, request: HttpRequest, gen: Generation) -> AsyncHttpStreamAttempt:
        attempt = AsyncHttpStreamAttempt(self, request, gen)
        await attempt.open()
        return attempt


class AsyncHttpStreamAttempt:
    """One ``POST /audio/stream`` on aiohttp: the response's bytes, as events."""

    reused: Optional[bool] = None

    def __init__(self, http: AsyncHttp, request: HttpRequest, gen: Generation) -> None:
        self._http = http
        self._request = request
        self._gen = gen
        self._where = gen.where(request.what, http.url(request))
        self._decoder = http.dialect.HttpStreamDecoder(sink=gen.sink)
        self._response: Optional[aiohttp.ClientResponse] = None
        self._body: Optional[BodyReader] = None

    async def open(self) -> None:
        gen = self._gen
        error: Optional[BaseException] = None
        try:
            self._response = await bounded(
                self._http._send(self._request, gen.connect_limit()), gen.wait_limit()
            )
            gen.metrics.first_byte()
            if self._response.status >= 400:
                text = await bounded(self._response.text(), gen.wait_limit())
                error = status_error(
                    self._response.status,
                    text,
                    prefix=self._request.what,
                    headers=self._response.headers,
                    secret=self._http._key,  # noqa: SLF001
                )
        except Exception as exc:  # noqa: BLE001
            error = map_exception(exc, self._where)
        if error is not None:
            self.close(False)
            raise error
        # Buffered bytes are taken without a wait; a wait on an empty buffer is bounded by
        # the generation's phase (first audio, chunk gap, total) with one lazy timer.
        assert self._response is not None
        self._body = BodyReader(self._response, gen.wait_limit)

    async def receive(self) -> List[Event]:
        assert self._body is not None
        error: Optional[BaseException] = None
        try:
            if self._decoder.pending:
                return self._decoder.feed_pending()  # the rest of the read of the first frame
            data = await self._body.read()
            if not data:
                return self._decoder.close()
            events = self._decoder.feed(data)
            if not events:
                self._gen.deadline.check()
            return events
        except Exception as exc:  # noqa: BLE001
            error = map_exception(exc, self._where)
        raise error

    async def delivered(self) -> None:
        pass

    def close(self, completed: bool) -> None:
        body, self._body = self._body, None
        response, self._response = self._response, None
        if body is not None:
            body.release()
        elif response is not None:
            response.release()
