"""Streamed responses of ``/tts/bytes`` and ``/tts/sse`` (sync and async), read as the body arrives."""

from __future__ import annotations

import asyncio
import codecs
import io
import json
import os
from typing import Any, AsyncIterator, Iterator, List, Mapping, Optional, Union

import httpx
import numpy as np

from .._client.errors import Where
from .._current.http import AsyncResend, Resend, aiter_guarded, iter_guarded
from .._current.pcm import SinkFeeder, body_to_numpy
from .._current.tracking import Tracker
from ..protocol import v1
from ..types.tts import TTSSSEEvent, sse_event

__all__ = ["BinaryResponse", "AsyncBinaryResponse", "SSEStream", "AsyncSSEStream", "pcm_to_numpy"]

PathLike = Union[str, "os.PathLike[str]"]


def pcm_to_numpy(pcm: bytes, output_format: Mapping[str, Any]) -> np.ndarray:
    """A ``raw`` or ``wav`` body in ``output_format`` as float32 samples in [-1, 1] (decoded by the core).

    Raw ``pcm_f32le`` is already float32: the result is a read-only view on ``pcm`` (no second
    copy of the audio; ``.copy()`` it to write). Other formats give a new, writable array.
    """
    raw_f32 = output_format.get("container") == "raw" and output_format.get("encoding", "pcm_f32le") == "pcm_f32le"
    if raw_f32 and len(pcm) % 4 == 0:
        return np.frombuffer(pcm, dtype="<f4")
    return body_to_numpy(pcm, output_format)  # also what names a partial sample


class _LineSplitter:
    """Lines out of text pieces that may split them anywhere; a line ends at ``\n`` (``\r\n``
    too: the ``\r`` is dropped with it)."""

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, text: str) -> List[str]:
        *lines, self._pending = (self._pending + text).split("\n")
        return [line[:-1] if line.endswith("\r") else line for line in lines]

    def close(self) -> List[str]:
        rest, self._pending = self._pending, ""
        return [rest[:-1] if rest.endswith("\r") else rest] if rest else []


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
        resend: Any = None,
    ) -> None:
        # ``resend``: a Resend (sync) or AsyncResend (async response): the call's next attempt.
        self.http_response = response
        self._where = where
        self._format = dict(output_format)
        self._content: Optional[bytes] = None
        self._tracker = tracker or Tracker()
        self._resend = resend

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
    def url(self) -> httpx.URL:
        return self.http_response.url

    @property
    def http_request(self) -> httpx.Request:
        return self.http_response.request

    @property
    def is_closed(self) -> bool:
        return self.http_response.is_closed

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
        return self._body(chunk_size, None)

    def _body(self, chunk_size: Optional[int], feeder: Optional[SinkFeeder]) -> Iterator[bytes]:
        # With a feeder the body goes into its sink and nothing is yielded; the call counts as
        # done only once the feeder accepted the end of the body.
        if self._content is not None:
            if feeder is None:
                yield self._content
                return
            feeder.feed(self._content)
            feeder.close()
            return
        tracker = self._tracker
        delivered = False
        try:
            while True:
                try:
                    for data in iter_guarded(self.http_response, self._where, chunk_size):
                        delivered = True
                        tracker.metrics.chunk(len(data))
                        if feeder is None:
                            yield data
                        else:
                            feeder.feed(data)
                    break
                except Exception as exc:  # noqa: BLE001 - the shared rule decides, else re-raised
                    if delivered or not self._send_again(exc):
                        raise
            if feeder is not None:
                feeder.close()
            tracker.finish("done")
        except GeneratorExit:
            tracker.finish("cancelled")
            raise
        except BaseException as exc:
            tracker.failed(exc)
            raise
        finally:
            self.close()

    def _send_again(self, error: BaseException) -> bool:
        """After a body failure before any of it was delivered: the call's next attempt."""
        resend: Optional[Resend] = self._resend
        fresh = resend(error) if resend is not None else None
        if fresh is None:
            return False
        self.http_response.close()
        self.http_response = fresh
        return True

    def __iter__(self) -> Iterator[bytes]:
        return self.iter_bytes()

    def parse(self) -> BinaryResponse:
        """The response itself (what 4.2.0's ``with_*_response.generate(...).parse()`` returns)."""
        return self

    def text(self) -> str:
        return self.read().decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.read())

    def iter_text(self, chunk_size: Optional[int] = None) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        for data in self.iter_bytes(chunk_size):
            text = decoder.decode(data)
            if text:
                yield text
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    def iter_lines(self) -> Iterator[str]:
        splitter = _LineSplitter()
        for text in self.iter_text():
            yield from splitter.feed(text)
        yield from splitter.close()

    def write_to_file(self, file: PathLike) -> None:
        with open(file, "wb") as f:
            f.write(self.read())

    def stream_to_file(self, file: PathLike, *, chunk_size: Optional[int] = None) -> None:
        with open(file, "wb") as f:
            for data in self.iter_bytes(chunk_size):
                f.write(data)

    def to_numpy(self) -> np.ndarray:
        """The whole body as float32 samples (``raw`` or ``wav``; mp3 raises ``InvalidInputError``)."""
        return pcm_to_numpy(self.read(), self._format)

    def drain_into(self, sink: Any, *, chunk_size: Optional[int] = None) -> int:
        """Put the audio into a ``PCMRing``/``AudioBuffer`` as it arrives; returns the samples.

        Raw PCM goes in as is, WAV after its header (its ``fmt`` chunk must match the sink);
        a sample split across two chunks is carried over.

        Raises:
            StreamFormatError: a malformed or unsupported WAV header, or a body that ends
                inside a sample.
        """
        feeder = SinkFeeder(sink, self._format)
        for _ in self._body(chunk_size, feeder):
            pass
        return feeder.samples

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

    def iter_bytes(self, chunk_size: Optional[int] = None) -> AsyncIterator[bytes]:
        return self._body(chunk_size, None)

    async def _body(self, chunk_size: Optional[int], feeder: Optional[SinkFeeder]) -> AsyncIterator[bytes]:
        if self._content is not None:
            if feeder is None:
                yield self._content
                return
            feeder.feed(self._content)
            feeder.close()
            return
        tracker = self._tracker
        delivered = False
        try:
            while True:
                try:
                    async for data in aiter_guarded(self.http_response, self._where, chunk_size):
                        delivered = True
                        tracker.metrics.chunk(len(data))
                        if feeder is None:
                            yield data
                        else:
                            feeder.feed(data)
                    break
                except Exception as exc:  # noqa: BLE001 - the shared rule decides, else re-raised
                    if delivered or not await self._send_again(exc):
                        raise
            if feeder is not None:
                feeder.close()
            tracker.finish("done")
        except GeneratorExit:
            tracker.finish("cancelled")
            raise
        except BaseException as exc:
            tracker.failed(exc)
            raise
        finally:
            await self.close()

    async def _send_again(self, error: BaseException) -> bool:
        resend: Optional[AsyncResend] = self._resend
        fresh = await resend(error) if resend is not None else None
        if fresh is None:
            return False
        await self.http_response.aclose()
        self.http_response = fresh
        return True

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.iter_bytes()

    async def parse(self) -> AsyncBinaryResponse:
        """The response itself (as :meth:`BinaryResponse.parse`)."""
        return self

    async def text(self) -> str:
        return (await self.read()).decode("utf-8", "replace")

    async def json(self) -> Any:
        return json.loads(await self.read())

    async def iter_text(self, chunk_size: Optional[int] = None) -> AsyncIterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        async for data in self.iter_bytes(chunk_size):
            text = decoder.decode(data)
            if text:
                yield text
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    async def iter_lines(self) -> AsyncIterator[str]:
        splitter = _LineSplitter()
        async for text in self.iter_text():
            for line in splitter.feed(text):
                yield line
        for line in splitter.close():
            yield line

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

    async def drain_into(self, sink: Any, *, chunk_size: Optional[int] = None) -> int:
        """As :meth:`BinaryResponse.drain_into`."""
        feeder = SinkFeeder(sink, self._format)
        async for _ in self._body(chunk_size, feeder):
            pass
        return feeder.samples

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
        self,
        response: httpx.Response,
        where: Where,
        sink: Any = None,
        tracker: Optional[Tracker] = None,
        resend: Any = None,
    ) -> None:
        self.response = response
        self._where = where
        self._sink = sink
        self._decoder = v1.SseDecoder(sink=sink)
        self._tracker = tracker or Tracker()
        self._resend = resend

    def _restart(self, fresh: httpx.Response) -> None:
        # Nothing was delivered: no event, hence nothing in the sink; a partial line is dropped.
        self.response = fresh
        self._decoder = v1.SseDecoder(sink=self._sink)

    @property
    def metrics(self) -> Any:
        """The call's ``GenerationMetrics`` (final once the stream ended)."""
        return self._tracker.metrics

    @property
    def http_response(self) -> httpx.Response:
        return self.response

    @property
    def headers(self) -> httpx.Headers:
        return self.response.headers

    @property
    def status_code(self) -> int:
        return self.response.status_code

    def parse(self) -> SSEStream:
        """The stream itself (what 4.2.0's ``with_*_response.generate_sse(...).parse()`` returns)."""
        return self

    def _events_of(self, data: bytes) -> Iterator[TTSSSEEvent]:
        """The events of one read; the first ones go out before the rest of the read is decoded."""
        decoder = self._decoder
        yield from self._events(decoder.feed(data))
        while decoder.pending:
            yield from self._events(decoder.feed_pending())

    def _events(self, events: List[Any]) -> List[TTSSSEEvent]:
        out = [sse_event(e) for e in events]
        for event in out:
            if event.type == "chunk":
                self._tracker.metrics.chunk(len(event.audio or b""))
            elif event.type in ("done", "error"):
                self._tracker.finish(event.type)
        return out

    def __iter__(self) -> Iterator[TTSSSEEvent]:
        delivered = False
        try:
            while True:
                try:
                    body = iter_guarded(self.response, self._where)
                    for data in body:
                        for event in self._events_of(data):
                            delivered = True
                            if event.type in ("done", "error"):
                                # The body ends right after its last event: read that end
                                # first, so the connection goes back to the pool even when the
                                # caller stops at this event.
                                body.finish()
                                yield event
                                return
                            yield event
                    break
                except Exception as exc:  # noqa: BLE001 - the shared rule decides, else re-raised
                    fresh = None if delivered or self._resend is None else self._resend(exc)
                    if fresh is None:
                        raise
                    self.response.close()
                    self._restart(fresh)
            yield from self._events(self._decoder.close())
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
        delivered = False
        try:
            while True:
                try:
                    body = aiter_guarded(self.response, self._where)
                    async for data in body:
                        for event in self._events_of(data):
                            delivered = True
                            if event.type in ("done", "error"):
                                await body.finish()  # as in SSEStream.__iter__
                                yield event
                                return
                            yield event
                    break
                except Exception as exc:  # noqa: BLE001 - the shared rule decides, else re-raised
                    fresh = None if delivered or self._resend is None else await self._resend(exc)
                    if fresh is None:
                        raise
                    await self.response.aclose()
                    self._restart(fresh)
            for event in self._events(self._decoder.close()):
                yield event
        except GeneratorExit:
            self._tracker.finish("cancelled")
            raise
        except BaseException as exc:
            self._tracker.failed(exc)
            raise
        finally:
            await self.aclose()

    async def parse(self) -> AsyncSSEStream:  # type: ignore[override]
        """The stream itself (awaited, as 4.2.0's async ``parse()``)."""
        return self

    async def aclose(self) -> None:
        await self.response.aclose()

    async def __aenter__(self) -> AsyncSSEStream:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
