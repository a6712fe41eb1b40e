"""The current API's ``/tts/websocket``: connections, contexts and their events (sync and async).

A connection is one websocket at a time, opened again transparently for the next context when
the server closed the previous one (idle 1000, deploy 1001, 1006, 1011). Its contexts share
the one context router of :mod:`cartesia._client.routing`: frames go to a bounded queue per
context, frames of cancelled or finished contexts are dropped, and when the socket dies every
pending ``receive()`` raises :class:`~cartesia.errors.WebSocketClosedError` at once.

What a stuck consumer costs the others: a context whose frames are not read holds at most
``queue_size`` frames; once its queue is full the socket's reader waits for it (backpressure
reaches the server over TCP), so the other contexts *on that socket* stall with it until it
reads, is cancelled, or its connection is closed. Memory stays bounded in every case.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
    Union,
)

from .._client.errors import Where, status_error
from .._client.routing import AsyncSlot, SyncSlot
from .._client.transport.ws_async import AsyncSocket, handshake_trace
from .._client.transport.ws_sync import SyncSocket
from ..errors import (
    APIStatusError,
    CartesiaConnectionError,
    CartesiaError,
    CartesiaTimeoutError,
    ChunkGapTimeoutError,
    FirstAudioTimeoutError,
    InvalidInputError,
    WebSocketClosedError,
)
from ..protocol import v1 as WIRE
from ..protocol.events import ErrorFrame
from ..streaming import Message, parse_message

__all__ = [
    "WebSocketConnection",
    "AsyncWebSocketConnection",
    "WebSocketContext",
    "AsyncWebSocketContext",
    "WebSocketResponse",
    "Stamps",
    "connect",
    "connect_async",
    "DEFAULT_QUEUE_FRAMES",
]

#: Seconds between the async socket's pings (the sync one uses the websockets library's 20 s
#: keepalive): a half-open socket fails its pending receives within about this long.
KEEPALIVE_S = 20.0
#: Frames one context may have waiting before the socket's reader waits for its consumer.
DEFAULT_QUEUE_FRAMES = 256
#: What 4.2.0's ``no_more_inputs()`` sends as voice when the context has none.
_DEFAULT_VOICE = "6ccbfb76-1fc6-48f7-b71d-91ac6298247b"
_DEFAULT_FORMAT = {"container": "raw", "encoding": "pcm_f32le", "sample_rate": 44100}
_DEFAULT_MODEL = "sonic-latest"
_WHAT = "Failed to generate audio. "


# --- events -------------------------------------------------------------------------------------


class Stamps:
    """Word or phoneme timestamps (4.2.0's ``WordTimestamps`` / ``PhonemeTimestamps``):
    ``words`` (or ``phonemes``), ``start`` and ``end``, as the server sent them."""

    __slots__ = ("_data",)

    def __init__(self, data: Dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(name) from None

    def to_dict(self) -> Dict[str, Any]:
        return dict(self._data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Stamps) and other._data == self._data

    def __repr__(self) -> str:
        return f"Stamps({self._data!r})"


_FIELDS = (
    "done", "status_code", "step_time", "flush_id", "flush_done",
    "title", "message", "error_code", "request_id", "doc_url",
)


class WebSocketResponse:
    """One frame of a context, with the attribute names of 4.2.0's ``WebsocketResponse`` union.

    ``type`` is ``chunk``, ``timestamps``, ``phoneme_timestamps``, ``flush_done``, ``done`` or
    ``error``. The core decoded the audio once (``audio``, or into the context's sink: then
    ``samples`` counts what it wrote); nothing is validated per chunk.
    """

    __slots__ = ("_msg",)

    def __init__(self, message: Message) -> None:
        self._msg = message

    @property
    def type(self) -> str:
        return self._msg.type

    @property
    def context_id(self) -> Optional[str]:
        return self._msg.context_id

    @property
    def audio(self) -> Optional[bytes]:
        """The decoded audio of a chunk (``None`` when empty or when a sink took it)."""
        return self._msg.audio or None

    @property
    def data(self) -> Optional[str]:
        """The base64 audio, as sent (re-encoded on demand: the core decoded it already)."""
        if self._msg.type != "chunk":
            return None
        import base64

        return base64.b64encode(self._msg.audio).decode("ascii")

    @property
    def samples(self) -> int:
        """Samples the core wrote into the context's sink for this chunk."""
        return self._msg.samples

    @property
    def word_timestamps(self) -> Optional[Stamps]:
        value = self._msg.fields.get("word_timestamps")
        return Stamps(value) if isinstance(value, dict) else None

    @property
    def phoneme_timestamps(self) -> Optional[Stamps]:
        value = self._msg.fields.get("phoneme_timestamps")
        return Stamps(value) if isinstance(value, dict) else None

    @property
    def error(self) -> Optional[str]:
        """4.2.0's ``title: message`` of an error event."""
        if self._msg.type != "error":
            return None
        return f"{self.title}: {self.message}"

    def __getattr__(self, name: str) -> Any:
        if name in _FIELDS:
            if name == "done":
                return self._msg.done
            return self._msg.fields.get(name)
        raise AttributeError(name)

    def to_dict(self) -> Dict[str, Any]:
        """The frame as a dict (``data`` as base64, as sent)."""
        out: Dict[str, Any] = {"type": self.type, "done": self._msg.done}
        if self._msg.type == "chunk":
            out["data"] = self.data
        out.update(self._msg.fields)
        if self.context_id is not None:
            out["context_id"] = self.context_id
        return out

    def to_exception(self, secret: Optional[str] = None) -> APIStatusError:
        """The typed status error of an error frame (the classes HTTP errors raise)."""
        frame = next(e for e in WIRE.events_of(self._msg) if isinstance(e, ErrorFrame))
        err = status_error(frame.status_code or 500, frame.message, prefix=_WHAT, secret=secret)
        err.request_id = frame.request_id
        return err

    def __repr__(self) -> str:
        fields = {k: v for k, v in self.to_dict().items() if k != "data"}
        if self._msg.type == "chunk":
            fields["audio"] = f"<{len(self._msg.audio)} bytes>"
        return f"WebSocketResponse({fields!r})"


def decode(payload: Union[str, bytes], sink: Any = None) -> WebSocketResponse:
    """The response of one frame, decoded by the core (audio into ``sink`` when given)."""
    return WebSocketResponse(parse_message(payload, sink=sink))


class _Omit:
    """Marks an argument that was not given (``None`` means: send nothing, as in 4.2.0)."""

    def __repr__(self) -> str:
        return "omit"


omit: Any = _Omit()


# --- what both contexts share: inputs, their defaults and the events' end -----------------------


class _ContextBase:
    """The inputs and state of one context (no I/O)."""

    _connection: Any  # the connection that made it (set by the sync and async subclasses)

    def __init__(
        self,
        context_id: str,
        defaults: Dict[str, Any],
        *,
        timeout: Optional[float],
        first_audio_timeout: Optional[float],
        chunk_timeout: Optional[float],
        sink: Any,
        raise_errors: bool,
    ) -> None:
        self._context_id = context_id
        self._defaults = defaults
        self._timeout = timeout
        self._first_timeout = first_audio_timeout if first_audio_timeout is not None else timeout
        self._gap_timeout = chunk_timeout if chunk_timeout is not None else timeout
        self._sink = sink
        self._raise_errors = raise_errors
        self._secret: Optional[str] = None
        self._completed = False  # no_more_inputs() (or continue_=False) was sent
        self._finished = False  # done, error, cancel or a dead socket: nothing more will come
        self._flushes = 0
        self._frames = 0
        # The inputs sent before the first frame arrived: a socket that closes before then
        # delivered nothing of this context, so they are sent once more on a new socket.
        self._unanswered: Optional[List[str]] = []
        self._resent = False
        self._failure: Optional[BaseException] = None  # what ended it, when not done/cancel

    @property
    def context_id(self) -> str:
        """This context's id (sent with every input)."""
        return self._context_id

    def _message(
        self,
        transcript: str,
        voice: Any,
        model_id: Optional[str],
        output_format: Any,
        continue_: bool,
        language: Any,
        speed: Any,
        add_timestamps: Any,
        add_phoneme_timestamps: Any,
        flush: Any,
        generation_config: Any,
        extra: Mapping[str, Any],
    ) -> str:
        """The JSON of one input: the call's values, else the context's defaults (as 4.2.0)."""
        if self._completed:
            raise InvalidInputError(
                f"context {self._context_id!r} is complete: no_more_inputs() was sent already",
                field="context_id",
            )
        if self._failure is not None:
            raise self._failure
        if self._finished:
            raise InvalidInputError(
                f"context {self._context_id!r} has ended (done, error or cancel); open a new one",
                field="context_id",
            )
        if not isinstance(transcript, str):
            raise InvalidInputError(
                f"transcript must be a string, not {type(transcript).__name__}",
                field="transcript",
            )
        d = self._defaults
        msg: Dict[str, Any] = {
            "context_id": self._context_id,
            "model_id": model_id or d.get("model_id") or _DEFAULT_MODEL,
            "transcript": transcript,
            "voice": voice,
            "output_format": output_format or d.get("output_format") or _DEFAULT_FORMAT,
            "continue": continue_,
        }
        for name, value in (
            ("language", language),
            ("add_timestamps", add_timestamps),
            ("add_phoneme_timestamps", add_phoneme_timestamps),
            ("generation_config", generation_config),
        ):
            if value is omit:
                value = d.get(name)
            if value is not None:
                msg[name] = value
        for name in ("max_buffer_delay_ms", "pronunciation_dict_id", "use_normalized_timestamps"):
            if d.get(name) is not None:
                msg[name] = d[name]
        if flush is not omit and flush is not None:
            msg["flush"] = flush
            if flush:
                self._flushes += 1
        if speed is not None:
            msg["speed"] = speed
        msg.update(extra)
        if not continue_:
            self._completed = True
        return json.dumps(msg, separators=(",", ":"))

    def _may_resend(self, exc: BaseException) -> Optional[List[str]]:
        """The inputs to send again on a new socket after ``exc``, or None (raise it)."""
        inputs = self._unanswered
        if self._resent or not inputs or self._finished or self._connection._closed:
            return None
        if not isinstance(exc, WebSocketClosedError):
            return None
        self._resent = True
        return list(inputs)

    def _voice(self, voice: Any) -> Any:
        if voice is not omit:
            return voice
        if self._defaults.get("voice") is None:
            raise InvalidInputError(
                "this context has no voice: pass voice= to context() or push()", field="voice"
            )
        return self._defaults["voice"]

    def _wait(self) -> Optional[float]:
        return self._first_timeout if self._frames == 0 else self._gap_timeout

    def _timeout_error(self, waited: Optional[float]) -> CartesiaTimeoutError:
        if self._frames == 0:
            return FirstAudioTimeoutError(
                f"Context {self._context_id!r}: no frame within {waited} s of waiting."
            )
        return ChunkGapTimeoutError(
            f"Context {self._context_id!r}: no frame for {waited} s after the last one."
        )

    def _event(self, payload: Union[str, bytes]) -> WebSocketResponse:
        """The event of ``payload``; raises the typed error of an error frame when asked to."""
        self._frames += 1
        self._unanswered = None
        event = decode(payload, self._sink)
        if event.type == "error" and self._raise_errors:
            raise event.to_exception(self._secret)
        return event

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._context_id!r}>"


def _context_id(context_id: Optional[str]) -> str:
    if context_id is None:
        return str(uuid.uuid4())
    if not isinstance(context_id, str) or not context_id:
        raise InvalidInputError("context_id must be a non-empty string", field="context_id")
    return context_id


def _duplicate(context_id: str) -> InvalidInputError:
    return InvalidInputError(
        f"context_id {context_id!r} is already in use on this connection "
        "(wait for its done, or cancel it, before reusing the id)",
        field="context_id",
    )


_CONTEXT_DEFAULTS = (
    "model_id",
    "voice",
    "output_format",
    "language",
    "add_timestamps",
    "add_phoneme_timestamps",
    "generation_config",
    "max_buffer_delay_ms",
    "pronunciation_dict_id",
    "use_normalized_timestamps",
)


class _ConnectionBase:
    """The settings and the context registry shared by both connections (no I/O)."""

    def __init__(
        self,
        url: str,
        *,
        headers: Optional[Dict[str, str]],
        secret: Optional[str],
        connect_timeout: Optional[float],
        queue_size: int,
    ) -> None:
        if queue_size < 1:
            raise InvalidInputError("queue_size must be >= 1", field="queue_size")
        self.url = url
        self._headers = dict(headers or {})
        self._secret = secret
        self._connect_timeout = connect_timeout
        self._queue_size = queue_size
        self._contexts: Dict[str, Any] = {}  # id -> context, while it may still receive
        self._registry_lock = threading.Lock()
        self._closed = False
        #: Websockets this connection opened (1 + the transparent reconnects).
        self.connections_opened = 0

    def _register(self, ctx: Any) -> Any:
        with self._registry_lock:
            if self._closed:
                raise CartesiaError("This websocket connection was closed.")
            if ctx.context_id in self._contexts:
                raise _duplicate(ctx.context_id)
            self._contexts[ctx.context_id] = ctx
        ctx._secret = self._secret
        return ctx

    def _forget(self, ctx: Any) -> None:
        with self._registry_lock:
            key: str = ctx.context_id
            if self._contexts.get(key) is ctx:
                del self._contexts[key]

    @staticmethod
    def _defaults(values: Dict[str, Any]) -> Dict[str, Any]:
        return {name: values[name] for name in _CONTEXT_DEFAULTS if values[name] is not None}

    def __repr__(self) -> str:
        from .._client.redact import redact

        return f"<{type(self).__name__} {redact(self.url, self._secret)}>"


def _closed_on_send(exc: BaseException) -> bool:
    """A send that failed because the socket had closed (nothing of it was delivered)."""
    return isinstance(exc, CartesiaConnectionError)


# --- sync ---------------------------------------------------------------------------------------


class WebSocketContext(_ContextBase):
    """One context on a :class:`WebSocketConnection` (4.2.0's ``WebSocketContext``).

    Any thread may drive its own contexts; the connection's reader thread routes the frames.
    """

    def __init__(self, connection: WebSocketConnection, context_id: str, **kwargs: Any) -> None:
        super().__init__(context_id, **kwargs)
        self._connection = connection
        self._sock: Optional[SyncSocket] = None
        self._slot: Optional[SyncSlot] = None

    def send(
        self,
        *,
        transcript: str,
        voice: Any,
        model_id: Optional[str] = None,
        output_format: Optional[Mapping[str, Any]] = None,
        continue_: bool = True,
        language: Any = omit,
        speed: Any = None,
        add_timestamps: Any = omit,
        add_phoneme_timestamps: Any = omit,
        flush: Any = omit,
        generation_config: Any = omit,
        **kwargs: Any,
    ) -> None:
        """Send one input of this context (4.2.0's arguments; unknown keywords are sent as is).

        Raises:
            InvalidInputError: The context is complete or ended, or an argument is invalid.
            WebSocketClosedError: The socket died after this context started (its audio so far
                was delivered; nothing is replayed).
        """
        text = self._message(
            transcript, voice, model_id, output_format, continue_, language, speed,
            add_timestamps, add_phoneme_timestamps, flush, generation_config, kwargs,
        )
        self._deliver(text)

    def push(
        self, transcript: str, *, continue_: bool = True, voice: Any = omit, **kwargs: Any
    ) -> None:
        """Send ``transcript`` with the context's defaults (a continuation unless ``continue_``
        is False)."""
        self.send(transcript=transcript, continue_=continue_, voice=self._voice(voice), **kwargs)

    def flush(self) -> int:
        """Close the current flush segment; returns its ``flush_id`` (``flush_done`` follows)."""
        self.push("", flush=True)
        return self._flushes

    def no_more_inputs(self) -> None:
        """Tell the server this context has no more text (then it ends with ``done``)."""
        if self._completed or self._finished:
            return
        voice = self._defaults.get("voice") or _DEFAULT_VOICE
        self.send(transcript="", voice=voice, continue_=False)

    def cancel(self) -> None:
        """Stop this context: the server stops generating, its late frames are dropped."""
        if self._finished:
            return
        self._finished = True
        self._connection._forget(self)
        sock, slot = self._sock, self._slot
        if sock is not None and slot is not None:
            sock.release(slot, cancel=True)

    def receive(self) -> Iterator[WebSocketResponse]:
        """This context's events until ``done`` or ``error`` (both are yielded).

        Raises:
            WebSocketClosedError: The socket died before this context's ``done``.
            FirstAudioTimeoutError, ChunkGapTimeoutError: No frame within the context's timeout.
        """
        slot, sock = self._slot, self._sock
        if slot is None or sock is None:
            if self._finished:
                return
            raise InvalidInputError(
                f"context {self._context_id!r} has sent nothing yet: push() before receive()",
                field="context_id",
            )
        while not self._finished:
            wait = self._wait()
            waited_from = time.monotonic()
            try:
                payload = slot.get(wait)
            except BaseException as exc:
                inputs = self._may_resend(exc)
                if inputs is None:
                    self._failure = exc if isinstance(exc, CartesiaError) else None
                    self._end()
                    raise
                sock.release(slot, cancel=False)
                self._slot = None
                for text in inputs:
                    self._deliver(text, record=False)
                slot, sock = self._slot, self._sock
                assert slot is not None and sock is not None
                continue
            if payload is None:
                if sock.router.stalled_since(waited_from):
                    sock.close_nowait()  # nothing at all arrived: the socket is dead
                raise self._timeout_error(wait)
            event = self._event(payload)
            if event.type in ("done", "error"):
                self._end()
            yield event

    def _end(self) -> None:
        self._finished = True
        self._connection._forget(self)
        if self._sock is not None and self._slot is not None:
            self._sock.release(self._slot, cancel=False)

    def _deliver(self, text: str, record: bool = True) -> None:
        if record and self._unanswered is not None:
            self._unanswered.append(text)
        if self._slot is None:
            self._sock, self._slot = self._connection._bind(self, text)
            return
        assert self._sock is not None
        if self._slot.failure is not None:
            if self._may_resend(self._slot.failure) is None:
                raise self._slot.failure
            # The socket closed before this context heard anything: all of it goes again
            # (this input is the last of them) on a new socket.
            self._sock.release(self._slot, cancel=False)
            self._slot = None
            for sent in list(self._unanswered or ()):
                self._deliver(sent, record=False)
            return
        self._sock.send(text)


class WebSocketConnection(_ConnectionBase):
    """A websocket to ``/tts/websocket`` and its contexts (4.2.0's ``TTSResourceConnection``).

    A context manager (``with``), or call :meth:`enter` and :meth:`close`. Safe to use from
    several threads.

    Args:
        url: The ``wss://.../tts/websocket`` URL (with any query parameters).
        headers: Headers of the upgrade (authentication, ``Cartesia-Version``).
        secret: The credential, scrubbed from every message.
        connect_timeout: Seconds a connect may take.
        queue_size: Frames one context may have waiting (see the module docstring).
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Optional[Dict[str, str]] = None,
        secret: Optional[str] = None,
        connect_timeout: Optional[float] = 10.0,
        queue_size: int = DEFAULT_QUEUE_FRAMES,
    ) -> None:
        super().__init__(
            url, headers=headers, secret=secret, connect_timeout=connect_timeout,
            queue_size=queue_size,
        )
        self._sock: Optional[SyncSocket] = None
        self._lock = threading.Lock()

    def __enter__(self) -> WebSocketConnection:
        return self.enter()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def enter(self) -> WebSocketConnection:
        """Open the websocket now (else the first context opens it)."""
        self._live()
        return self

    def close(self) -> None:
        """Close the websocket; pending ``receive()`` calls raise ``WebSocketClosedError``."""
        with self._registry_lock:
            self._closed = True
            self._contexts.clear()
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def context(
        self,
        context_id: Optional[str] = None,
        *,
        timeout: Optional[float] = None,
        model_id: Optional[str] = None,
        voice: Any = None,
        output_format: Optional[Mapping[str, Any]] = None,
        language: Optional[str] = None,
        add_timestamps: Optional[bool] = None,
        add_phoneme_timestamps: Optional[bool] = None,
        generation_config: Optional[Mapping[str, Any]] = None,
        max_buffer_delay_ms: Optional[int] = None,
        pronunciation_dict_id: Optional[str] = None,
        use_normalized_timestamps: Optional[bool] = None,
        sink: Any = None,
        first_audio_timeout: Optional[float] = None,
        chunk_timeout: Optional[float] = None,
        raise_errors: bool = False,
    ) -> WebSocketContext:
        """A new context (4.2.0's arguments are the defaults of its inputs).

        Args:
            context_id: Its id; a UUID when omitted. An id in use on this connection raises.
            timeout: Seconds ``receive()`` waits for a frame (4.2.0's ``timeout``).
            sink: A ``PCMRing`` / ``AudioBuffer`` the core decodes the audio into; chunks then
                carry ``samples`` and no ``audio``.
            first_audio_timeout: Seconds to wait for the first frame (default ``timeout``).
            chunk_timeout: Seconds to wait between frames (default ``timeout``).
            raise_errors: Raise an error frame as the typed status error (``BadRequestError``,
                ``RateLimitError``, ...) instead of yielding it.

        Raises:
            InvalidInputError: ``context_id`` is in use on this connection.
        """
        values = dict(locals())
        ctx = WebSocketContext(
            self,
            _context_id(context_id),
            defaults=self._defaults(values),
            timeout=timeout,
            first_audio_timeout=first_audio_timeout,
            chunk_timeout=chunk_timeout,
            sink=sink,
            raise_errors=raise_errors,
        )
        registered: WebSocketContext = self._register(ctx)
        return registered

    @property
    def socket(self) -> Optional[SyncSocket]:
        """The current websocket (``None`` before the first connect)."""
        return self._sock

    def _live(self) -> SyncSocket:
        """The open websocket; a new one when the last one closed (transparent reconnect)."""
        with self._lock:
            if self._closed:
                raise CartesiaError("This websocket connection was closed.")
            sock = self._sock
            if sock is not None and sock.is_open():
                return sock
            if sock is not None:
                sock.close_nowait()
            sock = SyncSocket(self.url, self._secret, self._queue_size, WIRE, self._headers)
            sock.connect(None, self._connect_timeout)
            self._sock = sock
            self.connections_opened += 1
            return sock

    def _bind(self, ctx: WebSocketContext, first: str) -> Tuple[SyncSocket, SyncSlot]:
        """Route ``ctx`` on the open socket and send its first input there.

        A socket that closed before that input reached it is replaced once: nothing of the
        context was sent or delivered, so nothing is replayed.
        """
        for attempt in (0, 1):
            sock = self._live()
            try:
                slot = sock.open_context(ctx.context_id)
            except ValueError:
                raise _duplicate(ctx.context_id) from None
            except WebSocketClosedError:
                if attempt:
                    raise
                continue
            try:
                sock.send(first)
            except Exception as exc:  # noqa: BLE001 - retried or re-raised
                sock.release(slot, cancel=False)
                if attempt or not _closed_on_send(exc):
                    raise
                sock.close_nowait()
                continue
            return sock, slot
        raise AssertionError("unreachable")  # pragma: no cover


# --- async --------------------------------------------------------------------------------------


class AsyncWebSocketContext(_ContextBase):
    """One context on an :class:`AsyncWebSocketConnection` (4.2.0's ``AsyncWebSocketContext``).

    Any number of tasks may drive contexts of one connection at the same time.
    """

    def __init__(
        self, connection: AsyncWebSocketConnection, context_id: str, **kwargs: Any
    ) -> None:
        super().__init__(context_id, **kwargs)
        self._connection = connection
        self._sock: Optional[AsyncSocket] = None
        self._slot: Optional[AsyncSlot] = None

    async def send(
        self,
        *,
        transcript: str,
        voice: Any,
        model_id: Optional[str] = None,
        output_format: Optional[Mapping[str, Any]] = None,
        continue_: bool = True,
        language: Any = omit,
        speed: Any = None,
        add_timestamps: Any = omit,
        add_phoneme_timestamps: Any = omit,
        flush: Any = omit,
        generation_config: Any = omit,
        **kwargs: Any,
    ) -> None:
        """Send one input (see :meth:`WebSocketContext.send`)."""
        text = self._message(
            transcript, voice, model_id, output_format, continue_, language, speed,
            add_timestamps, add_phoneme_timestamps, flush, generation_config, kwargs,
        )
        await self._deliver(text)

    async def push(
        self, transcript: str, *, continue_: bool = True, voice: Any = omit, **kwargs: Any
    ) -> None:
        """Send ``transcript`` with the context's defaults (see :meth:`WebSocketContext.push`)."""
        await self.send(
            transcript=transcript, continue_=continue_, voice=self._voice(voice), **kwargs
        )

    async def flush(self) -> int:
        """Close the current flush segment; returns its ``flush_id``."""
        await self.push("", flush=True)
        return self._flushes

    async def no_more_inputs(self) -> None:
        """Tell the server this context has no more text (then it ends with ``done``)."""
        if self._completed or self._finished:
            return
        voice = self._defaults.get("voice") or _DEFAULT_VOICE
        await self.send(transcript="", voice=voice, continue_=False)

    async def cancel(self) -> None:
        """Stop this context: the server stops generating, its late frames are dropped."""
        if self._finished:
            return
        self._finished = True
        self._connection._forget(self)
        sock, slot = self._sock, self._slot
        if sock is not None and slot is not None:
            if sock.release_slot(slot) and sock.is_open():
                try:
                    await sock.send(WIRE.ws_cancel(slot.id))
                except CartesiaError:
                    pass  # the socket died: the server stopped the context with it

    async def receive(self) -> AsyncIterator[WebSocketResponse]:
        """This context's events until ``done`` or ``error`` (see
        :meth:`WebSocketContext.receive`)."""
        slot, sock = self._slot, self._sock
        if slot is None or sock is None:
            if self._finished:
                return
            raise InvalidInputError(
                f"context {self._context_id!r} has sent nothing yet: push() before receive()",
                field="context_id",
            )
        while not self._finished:
            wait = self._wait()
            waited_from = time.monotonic()
            try:
                payload = await slot.get(wait)
            except BaseException as exc:
                inputs = self._may_resend(exc)
                if inputs is None:
                    self._failure = exc if isinstance(exc, CartesiaError) else None
                    self._end()
                    raise
                sock.release_slot(slot)
                self._slot = None
                for text in inputs:
                    await self._deliver(text, record=False)
                slot, sock = self._slot, self._sock
                assert slot is not None and sock is not None
                continue
            if payload is None:
                if sock.router.stalled_since(waited_from):
                    await sock.close()  # nothing at all arrived: the socket is dead
                raise self._timeout_error(wait)
            event = self._event(payload)
            if event.type in ("done", "error"):
                self._end()
            yield event

    def _end(self) -> None:
        self._finished = True
        self._connection._forget(self)
        if self._sock is not None and self._slot is not None:
            self._sock.release_slot(self._slot)

    async def _deliver(self, text: str, record: bool = True) -> None:
        if record and self._unanswered is not None:
            self._unanswered.append(text)
        if self._slot is None:
            self._sock, self._slot = await self._connection._bind(self, text)
            return
        assert self._sock is not None
        if self._slot.failure is not None:
            if self._may_resend(self._slot.failure) is None:
                raise self._slot.failure
            # As in the sync context: nothing was heard yet, so all of it goes again.
            self._sock.release_slot(self._slot)
            self._slot = None
            for sent in list(self._unanswered or ()):
                await self._deliver(sent, record=False)
            return
        await self._sock.send(text)


class AsyncWebSocketConnection(_ConnectionBase):
    """The async :class:`WebSocketConnection` (``async with``, or ``await enter()`` and
    ``await close()``); its reader task runs on the loop that opened it."""

    def __init__(
        self,
        url: str,
        *,
        headers: Optional[Dict[str, str]] = None,
        secret: Optional[str] = None,
        connect_timeout: Optional[float] = 10.0,
        queue_size: int = DEFAULT_QUEUE_FRAMES,
        session_factory: Optional[Callable[[], Any]] = None,
    ) -> None:
        super().__init__(
            url, headers=headers, secret=secret, connect_timeout=connect_timeout,
            queue_size=queue_size,
        )
        self._sock: Optional[AsyncSocket] = None
        self._lock: Optional[asyncio.Lock] = None
        self._session: Any = None
        self._session_factory = session_factory

    async def __aenter__(self) -> AsyncWebSocketConnection:
        return await self.enter()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def enter(self) -> AsyncWebSocketConnection:
        """Open the websocket now (else the first context opens it)."""
        await self._live()
        return self

    async def close(self) -> None:
        """Close the websocket (and the session it opened); pending receives raise."""
        with self._registry_lock:
            self._closed = True
            self._contexts.clear()
        sock, self._sock = self._sock, None
        if sock is not None:
            await sock.close()
        session, self._session = self._session, None
        if session is not None and self._session_factory is None:
            await session.close()

    def context(
        self,
        context_id: Optional[str] = None,
        *,
        timeout: Optional[float] = None,
        model_id: Optional[str] = None,
        voice: Any = None,
        output_format: Optional[Mapping[str, Any]] = None,
        language: Optional[str] = None,
        add_timestamps: Optional[bool] = None,
        add_phoneme_timestamps: Optional[bool] = None,
        generation_config: Optional[Mapping[str, Any]] = None,
        max_buffer_delay_ms: Optional[int] = None,
        pronunciation_dict_id: Optional[str] = None,
        use_normalized_timestamps: Optional[bool] = None,
        sink: Any = None,
        first_audio_timeout: Optional[float] = None,
        chunk_timeout: Optional[float] = None,
        raise_errors: bool = False,
    ) -> AsyncWebSocketContext:
        """A new context (see :meth:`WebSocketConnection.context`; not a coroutine, as 4.2.0)."""
        values = dict(locals())
        ctx = AsyncWebSocketContext(
            self,
            _context_id(context_id),
            defaults=self._defaults(values),
            timeout=timeout,
            first_audio_timeout=first_audio_timeout,
            chunk_timeout=chunk_timeout,
            sink=sink,
            raise_errors=raise_errors,
        )
        registered: AsyncWebSocketContext = self._register(ctx)
        return registered

    @property
    def socket(self) -> Optional[AsyncSocket]:
        """The current websocket (``None`` before the first connect)."""
        return self._sock

    async def _get_session(self) -> Any:
        if self._session is None:
            if self._session_factory is not None:
                self._session = await self._session_factory()
            else:
                import aiohttp

                self._session = aiohttp.ClientSession(trace_configs=[handshake_trace()])
        return self._session

    async def _live(self) -> AsyncSocket:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._closed:
                raise CartesiaError("This websocket connection was closed.")
            sock = self._sock
            if sock is not None and sock.is_open():
                return sock
            if sock is not None:
                await sock.close()
            sock = AsyncSocket(
                self.url, self._secret, self._queue_size, WIRE, self._headers, KEEPALIVE_S
            )
            where = Where(
                _WHAT, self.url, self._secret, connect_timeout=self._connect_timeout,
                connecting=True,
            )
            await sock.connect(await self._get_session(), where, self._connect_timeout)
            self._sock = sock
            self.connections_opened += 1
            return sock

    async def _bind(
        self, ctx: AsyncWebSocketContext, first: str
    ) -> Tuple[AsyncSocket, AsyncSlot]:
        """Route ``ctx`` on the open socket and send its first input (see
        :meth:`WebSocketConnection._bind`)."""
        for attempt in (0, 1):
            sock = await self._live()
            try:
                slot = sock.open_context(ctx.context_id)
            except ValueError:
                raise _duplicate(ctx.context_id) from None
            except WebSocketClosedError:
                if attempt:
                    raise
                continue
            try:
                await sock.send(first)
            except Exception as exc:  # noqa: BLE001 - retried or re-raised
                sock.release_slot(slot)
                if attempt or not _closed_on_send(exc):
                    raise
                await sock.close()
                continue
            return sock, slot
        raise AssertionError("unreachable")  # pragma: no cover


# --- factories (``client.tts.websocket_connect()`` calls these) ----------------------------------


def _settings(
    target: Any,
    extra_query: Optional[Mapping[str, Any]],
    extra_headers: Optional[Mapping[str, str]],
    websocket_connection_options: Optional[Mapping[str, Any]],
    options: Dict[str, Any],
) -> Tuple[str, Dict[str, Any]]:
    """The URL and connection options for ``target``: a URL, or a ``client.tts`` resource
    (its client's websocket root, key, ``Cartesia-Version``, default headers and query)."""
    if isinstance(target, str):
        url = target
        headers: Dict[str, str] = dict(options.pop("headers", None) or {})
        query: Dict[str, Any] = {}
    else:
        cfg = target._http.config
        url = cfg.websocket_base_url.rstrip("/") + WIRE.WS_PATH
        headers = WIRE.headers(cfg.api_key, json_content=False, version=cfg.version)
        headers.update(cfg.default_headers)
        query = dict(cfg.default_query)
        options.setdefault("secret", cfg.api_key)
        connect_limit = getattr(cfg.timeout, "connect", None)
        if connect_limit is not None:
            options.setdefault("connect_timeout", connect_limit)
    headers.update(extra_headers or {})
    query.update(extra_query or {})
    if query:
        from urllib.parse import urlencode

        url += ("&" if "?" in url else "?") + urlencode(query, doseq=True)
    ws_options = dict(websocket_connection_options or {})
    # 4.2.0 hands these to `websockets.connect`; the one that maps onto ours is the open timeout.
    if ws_options.get("open_timeout") is not None:
        options.setdefault("connect_timeout", ws_options["open_timeout"])
    options["headers"] = headers
    return url, options


def connect(
    target: Any,
    *,
    extra_query: Optional[Mapping[str, Any]] = None,
    extra_headers: Optional[Mapping[str, str]] = None,
    websocket_connection_options: Optional[Mapping[str, Any]] = None,
    **options: Any,
) -> WebSocketConnection:
    """An unopened :class:`WebSocketConnection` (``with`` or ``enter()`` opens it).

    Args:
        target: The ``/tts/websocket`` URL, or the ``client.tts`` resource it belongs to.
        extra_query, extra_headers, websocket_connection_options: As in 4.2.0's
            ``websocket_connect()``.
        **options: :class:`WebSocketConnection` keywords (``queue_size``, ``connect_timeout``...).
    """
    url, kwargs = _settings(
        target, extra_query, extra_headers, websocket_connection_options, options
    )
    return WebSocketConnection(url, **kwargs)


def connect_async(
    target: Any,
    *,
    extra_query: Optional[Mapping[str, Any]] = None,
    extra_headers: Optional[Mapping[str, str]] = None,
    websocket_connection_options: Optional[Mapping[str, Any]] = None,
    **options: Any,
) -> AsyncWebSocketConnection:
    """An unopened :class:`AsyncWebSocketConnection` (see :func:`connect`)."""
    url, kwargs = _settings(
        target, extra_query, extra_headers, websocket_connection_options, options
    )
    return AsyncWebSocketConnection(url, **kwargs)
