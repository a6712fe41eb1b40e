"""``client.tts`` of the current API: ``generate`` (``/tts/bytes``), ``generate_sse``, ``bytes`` and the websocket."""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, Any, AsyncIterator, Dict, Iterator, Mapping, Optional, Tuple

import httpx

from .._client.errors import Where
from .._client.generation import Deadline
from .._current.config import DEFAULT
from .._current.http import AsyncHttp, AsyncResend, Resend, SyncHttp, phase_deadline
from .._current.pcm import check_sink
from .._current.tracking import MetricsCallback, Tracker
from ..protocol import v1
from ._responses import AsyncBinaryResponse, AsyncSSEStream, BinaryResponse, SSEStream

if TYPE_CHECKING:
    from .tts_websocket import AsyncWebSocketContext, WebSocketContext

__all__ = ["TTS", "AsyncTTS", "WebSocketContext", "AsyncWebSocketContext"]

#: Names served from :mod:`.tts_websocket` on first use (4.2.0 code imports the async context
#: class from here); loading it lazily keeps ``websockets`` out of plain HTTP use.
_WEBSOCKET_NAMES = frozenset(
    {"WebSocketConnection", "AsyncWebSocketConnection", "WebSocketContext", "AsyncWebSocketContext"}
)


def __getattr__(name: str) -> Any:
    if name in _WEBSOCKET_NAMES:
        from . import tts_websocket

        return getattr(tts_websocket, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _body(
    model_id: Any,
    transcript: Any,
    voice: Any,
    output_format: Any,
    extra_body: Optional[Mapping[str, Any]],
    optional: Dict[str, Any],
) -> Dict[str, Any]:
    # An empty transcript is left to the server: its 400 is the BadRequestError that 4.2.0 code
    # (its error-handling example) expects; types and shapes are still checked here.
    return v1.generation_body(
        model_id=model_id,
        transcript=transcript,
        voice=voice,
        output_format=output_format,
        extra_body=extra_body,
        allow_empty_transcript=True,
        **optional,
    )


class _Common:
    def _where(self, request: v1.HttpRequest, deadline: Optional[Deadline] = None) -> Where:
        http = self._http  # type: ignore[attr-defined]
        return Where(request.what, http.url(request), http.config.api_key, deadline=deadline)


def _stream_sender(
    http: Any,
    request: v1.HttpRequest,
    extra_headers: Optional[Mapping[str, str]],
    extra_query: Optional[Mapping[str, Any]],
    timeout: Any,
    deadline: Optional[Deadline],
    tracker: Tracker,
) -> Tuple[Any, Any]:
    """The call that sends ``request`` for a streamed body (``SyncHttp`` or ``AsyncHttp``), and
    the attempt counter that its retries and a resend of a failed body share."""
    attempts = http.attempts(request, deadline)
    send = functools.partial(
        http.send,
        request,
        stream=True,
        extra_headers=extra_headers,
        extra_query=extra_query,
        timeout=timeout,
        deadline=deadline,
        metrics=tracker.metrics,
        attempts=attempts,
    )
    return send, attempts


class TTS(_Common):
    """Text to speech over HTTP (and the websocket, see :meth:`websocket_connect`)."""

    def __init__(self, http: SyncHttp, client: Any = None) -> None:
        self._http = http
        self._client = client
        self.with_streaming_response = _StreamingTTS(self)
        self.with_raw_response = _RawTTS(self)

    def _open(
        self,
        request: v1.HttpRequest,
        extra_headers: Optional[Mapping[str, str]],
        extra_query: Optional[Mapping[str, Any]],
        timeout: Any,
        deadline: Optional[Deadline],
        tracker: Tracker,
    ) -> Tuple[httpx.Response, Resend]:
        """The streamed response (after the retries its answer allows) and how to send it again."""
        send, attempts = _stream_sender(
            self._http, request, extra_headers, extra_query, timeout, deadline, tracker
        )
        try:
            return send(), Resend(send, attempts)
        except BaseException as exc:
            tracker.failed(exc)
            raise

    def _bytes_response(
        self,
        body: Dict[str, Any],
        extra_headers: Optional[Mapping[str, str]],
        extra_query: Optional[Mapping[str, Any]],
        timeout: Any,
        deadline: Optional[Deadline],
        on_metrics: Optional[MetricsCallback],
    ) -> BinaryResponse:
        request = v1.bytes_request(body)
        tracker = Tracker(on_metrics)
        response, resend = self._open(request, extra_headers, extra_query, timeout, deadline, tracker)
        return BinaryResponse(response, self._where(request, deadline), body["output_format"], tracker, resend)

    def generate(
        self,
        *,
        model_id: str,
        output_format: Mapping[str, Any],
        transcript: str,
        voice: Any,
        generation_config: Optional[Mapping[str, Any]] = None,
        language: Optional[str] = None,
        locale: Optional[str] = None,
        normalization: Optional[str] = None,
        pronunciation_dict_id: Optional[str] = None,
        save: Optional[bool] = None,
        speed: Optional[str] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        timeout: Any = DEFAULT,
        connect_timeout: Optional[float] = None,
        first_audio_timeout: Optional[float] = None,
        chunk_gap_timeout: Optional[float] = None,
        total_timeout: Optional[float] = None,
        on_metrics: Optional[MetricsCallback] = None,
        sink: Any = None,
    ) -> BinaryResponse:
        """``POST /tts/bytes``: the audio in ``output_format``'s container, read as it arrives.

        Returns once the response headers are in (4.2.0 waits for the whole body); read it with
        ``read()``, ``iter_bytes()``, ``write_to_file()`` or ``stream_to_file()``.

        Args:
            sink: A ``PCMRing``/``AudioBuffer`` (of ``output_format``'s encoding): the audio
                goes into it as it arrives, before this returns (raw PCM as is, WAV after its
                streamed header; partial samples carried over); ``read()`` is then empty.
                mp3 cannot go into a sink.
            timeout: Seconds or an ``httpx.Timeout`` for this call (None: no limit).
            connect_timeout, first_audio_timeout, chunk_gap_timeout, total_timeout: Per-phase
                limits in seconds (the v0 client's options; any of them replaces ``timeout``);
                each raises its own ``APITimeoutError`` subclass (``FirstAudioTimeoutError``…).
            on_metrics: Called once with the call's ``GenerationMetrics`` when it ends (also on
                ``response.metrics``).

        Raises:
            APIStatusError: a subclass per status, with the server's message.
            APIConnectionError: the connection failed or a time limit ran out.
        """
        check_sink(sink, output_format)
        body = _body(
            model_id,
            transcript,
            voice,
            output_format,
            extra_body,
            dict(
                generation_config=generation_config,
                language=language,
                locale=locale,
                normalization=normalization,
                pronunciation_dict_id=pronunciation_dict_id,
                save=save,
                speed=speed,
            ),
        )
        response = self._bytes_response(
            body,
            extra_headers,
            extra_query,
            timeout,
            phase_deadline(connect_timeout, first_audio_timeout, chunk_gap_timeout, total_timeout),
            on_metrics,
        )
        if sink is not None:
            response.drain_into(sink)
            response._content = b""  # noqa: SLF001 - the audio is in the sink
        return response

    def bytes(
        self,
        *,
        model_id: str,
        output_format: Mapping[str, Any],
        transcript: str,
        voice: Any,
        duration: Optional[float] = None,
        generation_config: Optional[Mapping[str, Any]] = None,
        language: Optional[str] = None,
        pronunciation_dict_id: Optional[str] = None,
        save: Optional[bool] = None,
        speed: Optional[str] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        timeout: Any = DEFAULT,
        connect_timeout: Optional[float] = None,
        first_audio_timeout: Optional[float] = None,
        chunk_gap_timeout: Optional[float] = None,
        total_timeout: Optional[float] = None,
        on_metrics: Optional[MetricsCallback] = None,
    ) -> Iterator[bytes]:
        """The deprecated 4.2.0 iterator over ``/tts/bytes``; unlike 4.2.0 it sends ``duration``."""
        body = _body(
            model_id,
            transcript,
            voice,
            output_format,
            extra_body,
            dict(
                duration=duration,
                generation_config=generation_config,
                language=language,
                pronunciation_dict_id=pronunciation_dict_id,
                save=save,
                speed=speed,
            ),
        )
        return self._bytes_response(
            body,
            extra_headers,
            extra_query,
            timeout,
            phase_deadline(connect_timeout, first_audio_timeout, chunk_gap_timeout, total_timeout),
            on_metrics,
        ).iter_bytes()

    def generate_sse(
        self,
        *,
        model_id: str,
        output_format: Mapping[str, Any],
        transcript: str,
        voice: Any,
        add_phoneme_timestamps: Optional[bool] = None,
        add_timestamps: Optional[bool] = None,
        context_id: Optional[str] = None,
        generation_config: Optional[Mapping[str, Any]] = None,
        language: Optional[str] = None,
        locale: Optional[str] = None,
        normalization: Optional[str] = None,
        pronunciation_dict_id: Optional[str] = None,
        speed: Optional[str] = None,
        use_normalized_timestamps: Optional[bool] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        timeout: Any = DEFAULT,
        connect_timeout: Optional[float] = None,
        first_audio_timeout: Optional[float] = None,
        chunk_gap_timeout: Optional[float] = None,
        total_timeout: Optional[float] = None,
        on_metrics: Optional[MetricsCallback] = None,
        sink: Any = None,
    ) -> SSEStream:
        """``POST /tts/sse``: an iterator of 4.2.0-shaped events (``chunk``, ``timestamps``…).

        Args:
            sink: A ``PCMRing``/``AudioBuffer`` the core decodes the audio into (chunk events
                then have ``audio`` None).
        """
        body = _body(
            model_id,
            transcript,
            voice,
            output_format,
            extra_body,
            dict(
                add_phoneme_timestamps=add_phoneme_timestamps,
                add_timestamps=add_timestamps,
                context_id=context_id,
                generation_config=generation_config,
                language=language,
                locale=locale,
                normalization=normalization,
                pronunciation_dict_id=pronunciation_dict_id,
                speed=speed,
                use_normalized_timestamps=use_normalized_timestamps,
            ),
        )
        request = v1.sse_request(body)
        deadline = phase_deadline(connect_timeout, first_audio_timeout, chunk_gap_timeout, total_timeout)
        tracker = Tracker(on_metrics)
        response, resend = self._open(request, extra_headers, extra_query, timeout, deadline, tracker)
        return SSEStream(response, self._where(request, deadline), sink=sink, tracker=tracker, resend=resend)

    sse = generate_sse

    # --- websocket: wired by the lead ----------------------------------------------------
    def websocket_connect(self, *args: Any, **kwargs: Any) -> Any:
        """The ``/tts/websocket`` connection (see :mod:`cartesia.resources.tts_websocket`)."""
        from . import tts_websocket  # noqa: PLC0415 - lazy: websockets is only loaded when used

        return tts_websocket.connect(self, *args, **kwargs)


class _StreamingTTS:
    """``tts.with_streaming_response``: the same calls as context managers (closed on exit)."""

    def __init__(self, tts: TTS) -> None:
        self._tts = tts

    @contextlib.contextmanager
    def generate(self, **kwargs: Any) -> Iterator[BinaryResponse]:
        response = self._tts.generate(**kwargs)
        try:
            yield response
        finally:
            response.close()

    @contextlib.contextmanager
    def generate_sse(self, **kwargs: Any) -> Iterator[SSEStream]:
        """Yields the stream; ``parse()`` returns it too (4.2.0 code calls it)."""
        stream = self._tts.generate_sse(**kwargs)
        try:
            yield stream
        finally:
            stream.close()

    sse = generate_sse


class _RawTTS:
    """``tts.with_raw_response``: 4.2.0's raw calls; ``parse()`` gives what the plain call gives."""

    def __init__(self, tts: TTS) -> None:
        self._tts = tts

    def generate(self, **kwargs: Any) -> BinaryResponse:
        response = self._tts.generate(**kwargs)
        response.read()  # a raw response holds the whole body, as in 4.2.0
        return response

    def generate_sse(self, **kwargs: Any) -> SSEStream:
        return self._tts.generate_sse(**kwargs)

    sse = generate_sse


class AsyncTTS(_Common):
    """As :class:`TTS`, for :class:`~cartesia.AsyncCartesia` (every call is awaited)."""

    def __init__(self, http: AsyncHttp, client: Any = None) -> None:
        self._http = http
        self._client = client
        self.with_streaming_response = _AsyncStreamingTTS(self)
        self.with_raw_response = _AsyncRawTTS(self)

    async def _open(
        self,
        request: v1.HttpRequest,
        extra_headers: Optional[Mapping[str, str]],
        extra_query: Optional[Mapping[str, Any]],
        timeout: Any,
        deadline: Optional[Deadline],
        tracker: Tracker,
    ) -> Tuple[httpx.Response, AsyncResend]:
        """The streamed response (after the retries its answer allows) and how to send it again."""
        send, attempts = _stream_sender(
            self._http, request, extra_headers, extra_query, timeout, deadline, tracker
        )
        try:
            return await send(), AsyncResend(send, attempts)
        except BaseException as exc:
            tracker.failed(exc)
            raise

    async def _bytes_response(
        self,
        body: Dict[str, Any],
        extra_headers: Optional[Mapping[str, str]],
        extra_query: Optional[Mapping[str, Any]],
        timeout: Any,
        deadline: Optional[Deadline],
        on_metrics: Optional[MetricsCallback],
    ) -> AsyncBinaryResponse:
        request = v1.bytes_request(body)
        tracker = Tracker(on_metrics)
        response, resend = await self._open(request, extra_headers, extra_query, timeout, deadline, tracker)
        return AsyncBinaryResponse(
            response, self._where(request, deadline), body["output_format"], tracker, resend
        )

    async def generate(
        self,
        *,
        model_id: str,
        output_format: Mapping[str, Any],
        transcript: str,
        voice: Any,
        generation_config: Optional[Mapping[str, Any]] = None,
        language: Optional[str] = None,
        locale: Optional[str] = None,
        normalization: Optional[str] = None,
        pronunciation_dict_id: Optional[str] = None,
        save: Optional[bool] = None,
        speed: Optional[str] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        timeout: Any = DEFAULT,
        connect_timeout: Optional[float] = None,
        first_audio_timeout: Optional[float] = None,
        chunk_gap_timeout: Optional[float] = None,
        total_timeout: Optional[float] = None,
        on_metrics: Optional[MetricsCallback] = None,
        sink: Any = None,
    ) -> AsyncBinaryResponse:
        """As :meth:`TTS.generate`."""
        check_sink(sink, output_format)
        body = _body(
            model_id,
            transcript,
            voice,
            output_format,
            extra_body,
            dict(
                generation_config=generation_config,
                language=language,
                locale=locale,
                normalization=normalization,
                pronunciation_dict_id=pronunciation_dict_id,
                save=save,
                speed=speed,
            ),
        )
        response = await self._bytes_response(
            body,
            extra_headers,
            extra_query,
            timeout,
            phase_deadline(connect_timeout, first_audio_timeout, chunk_gap_timeout, total_timeout),
            on_metrics,
        )
        if sink is not None:
            await response.drain_into(sink)
            response._content = b""  # noqa: SLF001
        return response

    async def bytes(
        self,
        *,
        model_id: str,
        output_format: Mapping[str, Any],
        transcript: str,
        voice: Any,
        duration: Optional[float] = None,
        generation_config: Optional[Mapping[str, Any]] = None,
        language: Optional[str] = None,
        pronunciation_dict_id: Optional[str] = None,
        save: Optional[bool] = None,
        speed: Optional[str] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        timeout: Any = DEFAULT,
        connect_timeout: Optional[float] = None,
        first_audio_timeout: Optional[float] = None,
        chunk_gap_timeout: Optional[float] = None,
        total_timeout: Optional[float] = None,
        on_metrics: Optional[MetricsCallback] = None,
    ) -> AsyncIterator[bytes]:
        """As :meth:`TTS.bytes` (awaited, then ``async for``)."""
        body = _body(
            model_id,
            transcript,
            voice,
            output_format,
            extra_body,
            dict(
                duration=duration,
                generation_config=generation_config,
                language=language,
                pronunciation_dict_id=pronunciation_dict_id,
                save=save,
                speed=speed,
            ),
        )
        response = await self._bytes_response(
            body,
            extra_headers,
            extra_query,
            timeout,
            phase_deadline(connect_timeout, first_audio_timeout, chunk_gap_timeout, total_timeout),
            on_metrics,
        )
        return response.iter_bytes()

    async def generate_sse(
        self,
        *,
        model_id: str,
        output_format: Mapping[str, Any],
        transcript: str,
        voice: Any,
        add_phoneme_timestamps: Optional[bool] = None,
        add_timestamps: Optional[bool] = None,
        context_id: Optional[str] = None,
        generation_config: Optional[Mapping[str, Any]] = None,
        language: Optional[str] = None,
        locale: Optional[str] = None,
        normalization: Optional[str] = None,
        pronunciation_dict_id: Optional[str] = None,
        speed: Optional[str] = None,
        use_normalized_timestamps: Optional[bool] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        timeout: Any = DEFAULT,
        connect_timeout: Optional[float] = None,
        first_audio_timeout: Optional[float] = None,
        chunk_gap_timeout: Optional[float] = None,
        total_timeout: Optional[float] = None,
        on_metrics: Optional[MetricsCallback] = None,
        sink: Any = None,
    ) -> AsyncSSEStream:
        """As :meth:`TTS.generate_sse` (awaited, then ``async for``)."""
        body = _body(
            model_id,
            transcript,
            voice,
            output_format,
            extra_body,
            dict(
                add_phoneme_timestamps=add_phoneme_timestamps,
                add_timestamps=add_timestamps,
                context_id=context_id,
                generation_config=generation_config,
                language=language,
                locale=locale,
                normalization=normalization,
                pronunciation_dict_id=pronunciation_dict_id,
                speed=speed,
                use_normalized_timestamps=use_normalized_timestamps,
            ),
        )
        request = v1.sse_request(body)
        deadline = phase_deadline(connect_timeout, first_audio_timeout, chunk_gap_timeout, total_timeout)
        tracker = Tracker(on_metrics)
        response, resend = await self._open(request, extra_headers, extra_query, timeout, deadline, tracker)
        return AsyncSSEStream(
            response, self._where(request, deadline), sink=sink, tracker=tracker, resend=resend
        )

    sse = generate_sse

    # --- websocket: wired by the lead ----------------------------------------------------
    def websocket_connect(self, *args: Any, **kwargs: Any) -> Any:
        """The ``/tts/websocket`` connection (see :mod:`cartesia.resources.tts_websocket`)."""
        from . import tts_websocket  # noqa: PLC0415

        return tts_websocket.connect_async(self, *args, **kwargs)


class _AsyncStreamingTTS:
    """As :class:`_StreamingTTS`, for the async client (``async with``)."""

    def __init__(self, tts: AsyncTTS) -> None:
        self._tts = tts

    @contextlib.asynccontextmanager
    async def generate(self, **kwargs: Any) -> AsyncIterator[AsyncBinaryResponse]:
        response = await self._tts.generate(**kwargs)
        try:
            yield response
        finally:
            await response.close()

    @contextlib.asynccontextmanager
    async def generate_sse(self, **kwargs: Any) -> AsyncIterator[AsyncSSEStream]:
        stream = await self._tts.generate_sse(**kwargs)
        try:
            yield stream
        finally:
            await stream.aclose()

    sse = generate_sse


class _AsyncRawTTS:
    """As :class:`_RawTTS`, for the async client (every call awaited)."""

    def __init__(self, tts: AsyncTTS) -> None:
        self._tts = tts

    async def generate(self, **kwargs: Any) -> AsyncBinaryResponse:
        response = await self._tts.generate(**kwargs)
        await response.read()
        return response

    async def generate_sse(self, **kwargs: Any) -> AsyncSSEStream:
        return await self._tts.generate_sse(**kwargs)

    sse = generate_sse
