"""Streamed responses of ``/tts/bytes`` and ``/tts/sse`` (sync and async), read as the body arrives."""

from __future__ import annotations

import asyncio
import io
import os
from typing import Any, AsyncIterator, Iterator, List, Mapping, Optional, Union

import httpx
import numpy as np

from .._client.errors import Where
from .._current.http import aiter_guarded, iter_guarded
from .._current.tracking import Tracker
from ..errors import InvalidInputError
from ..protocol import v1
from ..streaming import AudioBuffer
from ..types.tts import TTSSSEEvent, sse_event

__all__ = ["BinaryResponse", "AsyncBinaryResponse", "SSEStream", "AsyncSSEStream", "pcm_to_numpy"]

PathLike = Union[str, "os.PathLike[str]"]


def pcm_to_numpy(pcm: bytes, output_format: Mapping[str, Any]) -> np.ndarray:
    """Raw PCM in ``output_format`` as float32 samples in [-1, 1] (decoded by the core).

    ``pcm_f32le`` is already float32: the result is a read-only view on ``pcm`` (no second copy
    of the audio; ``.copy()`` it to write). Other encodings give a new, writable array.
    """
    if output_format.get("container") != "raw":
        raise InvalidInputError(
            "numpy output needs `output_format` container 'raw' (wav and mp3 are files)",
            field="output_format",
        )
    encoding = str(output_format.get("encoding", "pcm_f32le"))
    if encoding == "pcm_f32le":
        return np.frombuffer(pcm, dtype="<f4", count=len(pcm) // 4)  # a partial sample is ignored
    buf = AudioBuffer(encoding=encoding)
    buf.append(pcm)
    return buf.to_numpy()


def _write_file(file: PathLike, data: bytes) -> None:
    with open(file, "wb") as f:
        f.write(data)


class _Binary:
    def __init__(
        self,
        response: httpx.Response,
        where: Where,
        output_format: Mapping[str, Any],
        tracker: Optional[Tracker] = None,
    ) -> None:
        self.http_response = response
        self._where = where
        self._format = dict(output_format)
        self._content: Optional[bytes] = None
        self._tracker = tracker or Tracker()

    @property
    def metrics(self) -> Any:
        """The call's ``GenerationMetrics`` (final once the body was read)."""
        return self._tracker.metrics

    @property
    def headers(self) -> httpx.Headers:
        return self.http_response.headers

    @property
    def status_code(self) -> int:
        return self.http_response.status_code

    @property
    def file_id(self) -> Optional[str]:
        """``Cartesia-File-ID`` of a ``save=True`` generation."""
        file_id: Optional[str] = self.http_response.headers.get("cartesia-file-id")
        return file_id


class BinaryResponse(_Binary):
    """The audio of ``tts.generate``: the body is read as it arrives, not buffered up front.

    ``read()`` returns the whole body (and keeps it); ``iter_bytes()`` yields it as it comes;
    a transport failure raises :class:`~cartesia.errors.APIConnectionError`.
    """

    def read(self) -> bytes:
        if self._content is None:
            # BytesIO grows its bytes object in place and getvalue() hands it over: one copy of
            # the audio, where b"".join held every chunk next to the joined body (2x).
            out = io.BytesIO()
            for data in self.iter_bytes():
                out.write(data)
            self._content = out.getvalue()
        return self._content

    @property
    def content(self) -> bytes:
        return self.read()

    def iter_bytes(self, chunk_size: Optional[int] = None) -> Iterator[bytes]:
        if self._content is not None:
            yield self._content
            return
        tracker = self._tracker
        try:
            for data in iter_guarded(self.http_response, self._where, chunk_size):
                tracker.metrics.chunk(len(data))
                yield data
            tracker.finish("done")
        except GeneratorExit:
            tracker.finish("cancelled")
            raise
        except BaseException as exc:
            tracker.failed(exc)
            raise
        finally:
            self.close()

    def __iter__(self) -> Iterator[bytes]:
        return self.iter_bytes()

    def write_to_file(self, file: PathLike) -> None:
        with open(file, "wb") as f:
            f.write(self.read())

    def stream_to_file(self, file: PathLike, *, chunk_size: Optional[int] = None) -> None:
        with open(file, "wb") as f:
            for data in self.iter_bytes(chunk_size):
                f.write(data)

    def to_numpy(self) -> np.ndarray:
        """The whole body as float32 samples (``raw`` container only)."""
        return pcm_to_numpy(self.read(), self._format)

    def drain_into(self, sink: Any) -> int:
        """Append the body to a ``PCMRing``/``AudioBuffer`` as it arrives; returns the samples."""
        put = sink.append if hasattr(sink, "append") else sink.write
        return sum(int(put(data)) for data in self.iter_bytes())

    def close(self) -> None:
        self.http_response.close()

    def __enter__(self) -> BinaryResponse:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncBinaryResponse(_Binary):
    """As :class:`BinaryResponse`, for the async client (every read is awaited)."""

    async def read(self) -> bytes:
        if self._content is None:
            out = io.BytesIO()  # one copy of the audio (see BinaryResponse.read)
            async for data in self.iter_bytes():
                out.write(data)
            self._content = out.getvalue()
        return self._content

    async def iter_bytes(self, chunk_size: Optional[int] = None) -> AsyncIterator[bytes]:
        if self._content is not None:
            yield self._content
            return
        tracker = self._tracker
        try:
            async for data in aiter_guarded(self.http_response, self._where, chunk_size):
                tracker.metrics.chunk(len(data))
                yield data
            tracker.finish("done")
        except GeneratorExit:
            tracker.finish("cancelled")
            raise
        except BaseException as exc:
            tracker.failed(exc)
            raise
        finally:
            await self.close()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.iter_bytes()

    async def write_to_file(self, file: PathLike) -> None:
        data = await self.read()
        await asyncio.to_thread(_write_file, file, data)  # disk I/O off the event loop

    async def stream_to_file(self, file: PathLike, *, chunk_size: Optional[int] = None) -> None:
        f = await asyncio.to_thread(open, file, "wb")
        try:
            async for data in self.iter_bytes(chunk_size):
                await asyncio.to_thread(f.write, data)
        finally:
            await asyncio.to_thread(f.close)

    async def to_numpy(self) -> np.ndarray:
        return pcm_to_numpy(await self.read(), self._format)

    async def drain_into(self, sink: Any) -> int:
        put = sink.append if hasattr(sink, "append") else sink.write
        total = 0
        async for data in self.iter_bytes():
            total += int(put(data))
        return total

    async def close(self) -> None:
        await self.http_response.aclose()

    async def __aenter__(self) -> AsyncBinaryResponse:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


class SSEStream:
    """The events of ``tts.generate_sse``, decoded by the core's SSE framing as they arrive.

    Error events are yielded (as 4.2.0 does) and end the stream; a body that ends without
    ``done`` or an error raises :class:`~cartesia.errors.TruncatedStreamError`.
    """

    def __init__(
        self, response: httpx.Response, where: Where, sink: Any = None, tracker: Optional[Tracker] = None
    ) -> None:
        self.response = response
        self._where = where
        self._decoder = v1.SseDecoder(sink=sink)
        self._tracker = tracker or Tracker()

    @property
    def metrics(self) -> Any:
        """The call's ``GenerationMetrics`` (final once the stream ended)."""
        return self._tracker.metrics

    def _events(self, data: Optional[bytes]) -> List[TTSSSEEvent]:
        events = self._decoder.close() if data is None else self._decoder.feed(data)
        out = [sse_event(e) for e in events]
        for event in out:
            if event.type == "chunk":
                self._tracker.metrics.chunk(len(event.audio or b""))
            elif event.type in ("done", "error"):
                self._tracker.finish(event.type)
        return out

    def __iter__(self) -> Iterator[TTSSSEEvent]:
        try:
            for data in iter_guarded(self.response, self._where):
                for event in self._events(data):
                    yield event
                    if event.type in ("done", "error"):
                        return
            yield from self._events(None)
        except GeneratorExit:
            self._tracker.finish("cancelled")
            raise
        except BaseException as exc:
            self._tracker.failed(exc)
            raise
        finally:
            self.close()

    def close(self) -> None:
        self.response.close()

    def __enter__(self) -> SSEStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncSSEStream(SSEStream):
    """As :class:`SSEStream`, for the async client."""

    def __iter__(self) -> Iterator[TTSSSEEvent]:
        raise TypeError("use `async for` with the async client's stream")

    async def __aiter__(self) -> AsyncIterator[TTSSSEEvent]:
        try:
            async for data in aiter_guarded(self.response, self._where):
                for event in self._events(data):
                    yield event
                    if event.type in ("done", "error"):
                        return
            for event in self._events(None):
                yield event
        except GeneratorExit:
            self._tracker.finish("cancelled")
            raise
        except BaseException as exc:
            self._tracker.failed(exc)
            raise
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        await self.response.aclose()

    async def __aenter__(self) -> AsyncSSEStream:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
