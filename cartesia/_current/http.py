"""HTTP for the current-API clients: one request with retries, typed errors, streamed bodies.

The retry rules, the error classes and their messages come from :mod:`cartesia._client`; this
module only adapts them to httpx calls on the versionless current API.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, AsyncIterator, Dict, Iterator, Mapping, Optional, Tuple

import httpx

from ..protocol import v1
from ..protocol.v1 import HttpRequest
from .._client.errors import Where, map_exception, status_error
from .._client.retry import Attempts
from .config import DEFAULT, CurrentConfig, to_httpx_timeout

__all__ = ["SyncHttp", "AsyncHttp", "iter_guarded", "aiter_guarded"]


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

    def url(self, request: HttpRequest) -> str:
        return self.config.base_url + request.path

    def where(self, request: HttpRequest, timeout: httpx.Timeout) -> Where:
        return Where(request.what, self.url(request), self.config.api_key, connect_timeout=timeout.connect)

    def build(
        self,
        client: Any,
        request: HttpRequest,
        extra_headers: Optional[Mapping[str, str]],
        extra_query: Optional[Mapping[str, Any]],
        timeout: Any,
    ) -> Tuple[httpx.Request, httpx.Timeout]:
        cfg = self.config
        headers = v1.headers(
            cfg.api_key,
            json_content=request.json_content and request.content is not None,
            version=cfg.version,
            accept=request.accept,
        )
        headers.update(cfg.default_headers)
        headers.update(extra_headers or {})
        params: Dict[str, Any] = dict(cfg.default_query)
        params.update(request.params or {})
        params.update(extra_query or {})
        limit = cfg.timeout if timeout is DEFAULT else to_httpx_timeout(timeout)
        files, data = _split_files(request)
        built = client.build_request(
            request.method,
            self.url(request),
            params=params or None,
            content=request.content,
            files=files,
            data=data,
            headers=headers,
            timeout=limit,
        )
        return built, limit

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

    def client(self) -> httpx.Client:
        with self._lock:
            if self._client is None or self._client.is_closed:
                self._client = httpx.Client(timeout=self.config.timeout)
            return self._client

    def send(
        self,
        request: HttpRequest,
        *,
        stream: bool = False,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        timeout: Any = DEFAULT,
    ) -> httpx.Response:
        """The successful response (body unread when ``stream``), after the retries the policy allows.

        Raises:
            APIStatusError: (a subclass per status) for an error answer.
            APIConnectionError: the connection failed (``APITimeoutError`` when a limit ran out).
        """
        client = self.client()
        attempts = Attempts(self.config.retry, f"{request.method} {request.path}")
        while True:
            attempts.begin()
            built, limit = self.build(client, request, extra_headers, extra_query, timeout)
            try:
                response = client.send(built, stream=stream)
            except Exception as exc:  # noqa: BLE001 - mapped to our typed errors
                error = map_exception(exc, self.where(request, limit))
            else:
                if response.is_success:
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
    """The async client's httpx client: nothing here blocks the event loop."""

    def __init__(self, config: CurrentConfig) -> None:
        super().__init__(config)
        self._client: Optional[httpx.AsyncClient] = None

    def client(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            self._client = httpx.AsyncClient(timeout=self.config.timeout)
        return self._client

    async def send(
        self,
        request: HttpRequest,
        *,
        stream: bool = False,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        timeout: Any = DEFAULT,
    ) -> httpx.Response:
        """As :meth:`SyncHttp.send`."""
        client = self.client()
        attempts = Attempts(self.config.retry, f"{request.method} {request.path}")
        while True:
            attempts.begin()
            built, limit = self.build(client, request, extra_headers, extra_query, timeout)
            try:
                response = await client.send(built, stream=stream)
            except Exception as exc:  # noqa: BLE001
                error = map_exception(exc, self.where(request, limit))
            else:
                if response.is_success:
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


def iter_guarded(response: httpx.Response, where: Where, chunk_size: Optional[int] = None) -> Iterator[bytes]:
    """The body's bytes as they arrive; a transport failure raises our typed error."""
    chunks = response.iter_bytes(chunk_size)
    while True:
        try:
            data = next(chunks, None)
        except Exception as exc:  # noqa: BLE001
            raise map_exception(exc, where) from exc
        if data is None:
            return
        yield data


async def aiter_guarded(
    response: httpx.Response, where: Where, chunk_size: Optional[int] = None
) -> AsyncIterator[bytes]:
    """As :func:`iter_guarded`, for an async response."""
    chunks = response.aiter_bytes(chunk_size).__aiter__()
    while True:
        try:
            data = await chunks.__anext__()
        except StopAsyncIteration:
            return
        except Exception as exc:  # noqa: BLE001
            raise map_exception(exc, where) from exc
        yield data
