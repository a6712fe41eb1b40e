"""The state and rules of websocket connections and contexts, shared by the sync and async classes (no I/O)."""

from __future__ import annotations

import threading
import uuid
from typing import (
    Any,
    Callable,
    Dict,
    Generic,
    List,
    Mapping,
    Optional,
    TypeVar,
    cast,
)

from ..._client.routing import RoutedSocket, Slot
from ...errors import (
    CartesiaConnectionError,
    CartesiaError,
    CartesiaTimeoutError,
    ChunkGapTimeoutError,
    FirstAudioTimeoutError,
    InvalidInputError,
    WebSocketClosedError,
)
from ...protocol import v1 as WIRE
from .events import WebSocketResponse, decode, omit
from .stream import RAW, StreamState

__all__ = [
    "ContextBase",
    "ConnectionBase",
    "DEFAULT_QUEUE_FRAMES",
    "KEEPALIVE_S",
    "BIND",
    "RESEND",
    "SEND",
]

#: Seconds between the async socket's pings (the sync one uses the websockets library's 20 s
#: keepalive): a half-open socket fails its pending receives within about this long.
KEEPALIVE_S = 20.0
#: Frames one context may have waiting before the socket's reader waits for its consumer.
DEFAULT_QUEUE_FRAMES = 256
#: What 4.2.0's ``no_more_inputs()`` sends as voice when the context has none.
_DEFAULT_VOICE = "6ccbfb76-1fc6-48f7-b71d-91ac6298247b"
_DEFAULT_FORMAT = {"container": "raw", "encoding": "pcm_f32le", "sample_rate": 44100}

#: What :meth:`ContextBase._next_step` tells the transport-specific ``_deliver`` to do.
BIND, RESEND, SEND = "bind", "resend", "send"

#: The named options of an input, and what each is when not given (``omit``: the context's
#: default; ``None``: not sent).
_INPUT_OPTIONS: Dict[str, Any] = {
    "model_id": None,
    "output_format": None,
    "language": omit,
    "speed": None,
    "add_timestamps": omit,
    "add_phoneme_timestamps": omit,
    "flush": omit,
    "generation_config": omit,
}
#: Options that fall back to the context's default when a call leaves them out.
_DEFAULTED = ("language", "add_timestamps", "add_phoneme_timestamps", "generation_config")
#: Context settings sent with every input (no per-call argument).
_CONTEXT_ONLY = ("max_buffer_delay_ms", "pronunciation_dict_id", "use_normalized_timestamps")
_CONTEXT_DEFAULTS = ("model_id", "voice", "output_format") + _DEFAULTED + _CONTEXT_ONLY

R = TypeVar("R")  # what an input call returns: None (sync) or an awaitable of None (async)
RI = TypeVar("RI")  # what flush() returns: int (sync) or an awaitable of int (async)
C = TypeVar("C", bound="ContextBase[Any, Any]")


def _closed_message() -> CartesiaError:
    return CartesiaError("This websocket connection was closed.")


class ContextBase(Generic[R, RI]):
    """One context's inputs and state, and every rule of its inputs and events.

    The public input methods are written once here; each hands the message it built to
    ``_submit``, which the sync class runs now and the async class returns as a coroutine (so
    that, as before, nothing is checked or sent until it is awaited).
    """

    _connection: Any  # the connection that made it
    _sock: Optional[RoutedSocket[Any]]
    _slot: Optional[Slot]

    def __init__(
        self,
        connection: Any,
        context_id: str,
        defaults: Dict[str, Any],
        *,
        timeout: Optional[float],
        first_audio_timeout: Optional[float],
        chunk_timeout: Optional[float],
        sink: Any,
        raise_errors: bool,
    ) -> None:
        self._connection = connection
        self._sock = None
        self._slot = None
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

    # --- the public inputs (one definition for both classes) ----------------------------------

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
    ) -> R:
        """Send one input of this context (4.2.0's arguments; unknown keywords are sent as is).

        Raises:
            InvalidInputError: The context is complete or ended, or an argument is invalid.
            WebSocketClosedError: The socket died after this context started (its audio so far
                was delivered; nothing is replayed).
        """
        options = dict(
            model_id=model_id, output_format=output_format, language=language, speed=speed,
            add_timestamps=add_timestamps, add_phoneme_timestamps=add_phoneme_timestamps,
            flush=flush, generation_config=generation_config,
        )
        options.update(kwargs)
        return cast(R, self._submit(lambda: self._message(transcript, voice, continue_, options)))

    def push(
        self, transcript: str, *, continue_: bool = True, voice: Any = omit, **kwargs: Any
    ) -> R:
        """Send ``transcript`` with the context's defaults (a continuation unless ``continue_``
        is False)."""
        return cast(
            R,
            self._submit(
                lambda: self._message(transcript, self._voice(voice), continue_, kwargs)
            ),
        )

    def flush(self) -> RI:
        """Close the current flush segment; returns its ``flush_id`` (``flush_done`` follows)."""
        return cast(
            RI,
            self._submit(
                lambda: self._message("", self._voice(omit), True, {"flush": True}),
                lambda: self._flushes,
            ),
        )

    def no_more_inputs(self) -> R:
        """Tell the server this context has no more text (then it ends with ``done``)."""
        return cast(R, self._submit(self._last_message))

    def _submit(
        self, build: Callable[[], Optional[str]], result: Optional[Callable[[], Any]] = None
    ) -> Any:
        """Deliver the message ``build`` makes (None: nothing to send); then ``result()``."""
        raise NotImplementedError

    # --- the rules of inputs --------------------------------------------------------------------

    def _message(
        self, transcript: str, voice: Any, continue_: bool, options: Mapping[str, Any]
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
        given = {name: options.get(name, unset) for name, unset in _INPUT_OPTIONS.items()}
        d = self._defaults
        body: Dict[str, Any] = {
            "context_id": self._context_id,
            "model_id": given["model_id"] or d.get("model_id") or WIRE.DEFAULT_MODEL_ID,
            "transcript": transcript,
            "voice": voice,
            "output_format": given["output_format"] or d.get("output_format") or _DEFAULT_FORMAT,
            "continue": continue_,
        }
        for name in _DEFAULTED:
            value = d.get(name) if given[name] is omit else given[name]
            if value is not None:
                body[name] = value
        for name in _CONTEXT_ONLY:
            if d.get(name) is not None:
                body[name] = d[name]
        flush = given["flush"]
        if flush is not omit and flush is not None:
            body["flush"] = flush
            if flush:
                self._flushes += 1
        if given["speed"] is not None:
            body["speed"] = given["speed"]
        body.update((k, v) for k, v in options.items() if k not in _INPUT_OPTIONS)
        if not continue_:
            self._completed = True
        # The wire module fixes the routing keys (`context_id`, `continue`) last.
        return WIRE.ws_generate(body, self._context_id, continue_=continue_)

    def _last_message(self) -> Optional[str]:
        """The input of ``no_more_inputs()``, or None when the context needs none."""
        if self._completed or self._finished:
            return None
        voice = self._defaults.get("voice") or _DEFAULT_VOICE
        return self._message("", voice, False, {})

    def _voice(self, voice: Any) -> Any:
        if voice is not omit:
            return voice
        if self._defaults.get("voice") is None:
            raise InvalidInputError(
                "this context has no voice: pass voice= to context() or push()", field="voice"
            )
        return self._defaults["voice"]

    def _next_step(self, text: str, record: bool) -> str:
        """What delivering ``text`` takes: ``BIND`` (the first input: open the context on a
        socket), ``RESEND`` (the socket closed before anything was heard: everything goes
        again on a new one) or ``SEND``; raises what ended the socket otherwise."""
        if record and self._unanswered is not None:
            self._unanswered.append(text)
        slot = self._slot
        if slot is None:
            return BIND
        if slot.failure is not None:
            if self._may_resend(slot.failure) is None:
                raise slot.failure
            self._unbind()
            return RESEND
        return SEND

    def _may_resend(self, exc: BaseException) -> Optional[List[str]]:
        """The inputs to send again on a new socket after ``exc``, or None (raise it)."""
        inputs = self._unanswered
        if self._resent or not inputs or self._finished or self._connection._closed:
            return None
        if not isinstance(exc, WebSocketClosedError):
            return None
        self._resent = True
        return list(inputs)

    def _resend_list(self) -> List[str]:
        return list(self._unanswered or ())

    # --- the rules of events ----------------------------------------------------------------

    def _receiving(self) -> bool:
        """Whether ``receive()`` has anything to wait for (raises when nothing was sent)."""
        if self._slot is None or self._sock is None:
            if self._finished:
                return False
            raise InvalidInputError(
                f"context {self._context_id!r} has sent nothing yet: push() before receive()",
                field="context_id",
            )
        return True

    def _wait(self) -> Optional[float]:
        return self._first_timeout if self._frames == 0 else self._gap_timeout

    def _on_failure(self, exc: BaseException) -> Optional[List[str]]:
        """After the wait for a frame raised ``exc``: the inputs to send again on a new socket,
        or None (the context has ended; the caller re-raises)."""
        inputs = self._may_resend(exc)
        if inputs is None:
            self._failure = exc if isinstance(exc, CartesiaError) else None
            self._end()
            return None
        self._unbind()
        return inputs

    def _socket_stalled(self, waited_from: float) -> bool:
        """After a wait that timed out: True when nothing at all arrived on the socket (it is
        dead: the caller closes it)."""
        sock = self._sock
        return sock is not None and sock.router.stalled_since(waited_from)

    def _timeout_error(self, waited: Optional[float]) -> CartesiaTimeoutError:
        if self._frames == 0:
            return FirstAudioTimeoutError(
                f"Context {self._context_id!r}: no frame within {waited} s of waiting."
            )
        return ChunkGapTimeoutError(
            f"Context {self._context_id!r}: no frame for {waited} s after the last one."
        )

    def _event(self, payload: Any) -> WebSocketResponse:
        """The event of ``payload`` (its context ends on ``done``/``error``); raises the typed
        error of an error frame when asked to."""
        self._frames += 1
        self._unanswered = None
        event = decode(payload, self._sink)
        if event.type in ("done", "error"):
            self._end()
        if event.type == "error" and self._raise_errors:
            raise event.to_exception(self._secret)
        return event

    # --- the end ------------------------------------------------------------------------------

    def _end(self) -> None:
        self._finished = True
        self._connection._forget(self)
        if self._sock is not None and self._slot is not None:
            self._sock.release_slot(self._slot)

    def _unbind(self) -> None:
        """Let go of the failed slot before the inputs go again on a new socket."""
        if self._sock is not None and self._slot is not None:
            self._sock.release_slot(self._slot)
        self._slot = None

    def _cancel_message(self) -> Optional[str]:
        """End this context; the cancel to send, or None (ended already, or the socket is
        gone: the server stopped the context with it)."""
        if self._finished:
            return None
        self._finished = True
        self._connection._forget(self)
        sock, slot = self._sock, self._slot
        if sock is not None and slot is not None and sock.release_slot(slot) and sock.is_open():
            return WIRE.ws_cancel(slot.id)
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._context_id!r}>"


def new_context_id(context_id: Optional[str]) -> str:
    """``context_id``, checked; a UUID when None."""
    if context_id is None:
        return str(uuid.uuid4())
    if not isinstance(context_id, str) or not context_id:
        raise InvalidInputError("context_id must be a non-empty string", field="context_id")
    return context_id


def duplicate_error(context_id: str) -> InvalidInputError:
    return InvalidInputError(
        f"context_id {context_id!r} is already in use on this connection "
        "(wait for its done, or cancel it, before reusing the id)",
        field="context_id",
    )


def closed_on_send(exc: BaseException) -> bool:
    """A send that failed because the socket had closed (nothing of it was delivered)."""
    return isinstance(exc, CartesiaConnectionError)


class ConnectionBase(Generic[C]):
    """The settings, the context registry and the rules shared by both connections (no I/O).

    ``context()`` is written once here; the subclass names its context class in ``_context_class``.
    """

    _context_class: Callable[..., C]
    _slot_class: Callable[[str, int], Slot]  # a context's own bounded queue
    _inbox_slot_class: Callable[[str, Any], Slot]  # a context of the connection's stream

    def _inbox(self) -> Any:
        """The queue of the connection-level stream (see :mod:`.stream`)."""
        raise NotImplementedError

    def _make_slot(self, context_id: str) -> Any:
        """The slot the socket's router makes for ``context_id``."""
        if self._contexts.get(context_id) is RAW:
            return self._inbox_slot_class(context_id, self._inbox())
        return self._slot_class(context_id, self._queue_size)

    def __init__(
        self,
        url: str,
        *,
        headers: Optional[Dict[str, str]] = None,
        secret: Optional[str] = None,
        connect_timeout: Optional[float] = 10.0,
        queue_size: int = DEFAULT_QUEUE_FRAMES,
    ) -> None:
        """See :class:`~.sync.WebSocketConnection` for the arguments."""
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
        self._stream = StreamState(self)
        self._setup()

    def _setup(self) -> None:
        """The transport's own state (its socket, lock and inbox)."""
        raise NotImplementedError

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
    ) -> C:
        """A new context (4.2.0's arguments are the defaults of its inputs; not a coroutine on
        the async connection either, as in 4.2.0).

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
        ctx = self._context_class(
            self,
            new_context_id(context_id),
            {name: values[name] for name in _CONTEXT_DEFAULTS if values[name] is not None},
            timeout=timeout,
            first_audio_timeout=first_audio_timeout,
            chunk_timeout=chunk_timeout,
            sink=sink,
            raise_errors=raise_errors,
        )
        self._register(ctx.context_id, ctx)
        ctx._secret = self._secret
        return ctx

    def _register(self, context_id: str, owner: Any) -> None:
        with self._registry_lock:
            if self._closed:
                raise _closed_message()
            if context_id in self._contexts:
                raise duplicate_error(context_id)
            self._contexts[context_id] = owner

    def _forget(self, ctx: Any) -> None:
        with self._registry_lock:
            key: str = ctx.context_id
            if self._contexts.get(key) is ctx:
                del self._contexts[key]

    def _mark_closed(self) -> None:
        with self._registry_lock:
            self._closed = True
            self._contexts.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise _closed_message()

    @staticmethod
    def _open_slot(sock: RoutedSocket[Any], context_id: str, attempt: int) -> Optional[Slot]:
        """The context's slot on ``sock``; None when the socket closed before (try a new one)."""
        try:
            slot: Slot = sock.open_context(context_id)
            return slot
        except ValueError:
            raise duplicate_error(context_id) from None
        except WebSocketClosedError:
            if attempt:
                raise
            return None

    @staticmethod
    def _first_send_failed(
        sock: RoutedSocket[Any], slot: Slot, exc: BaseException, attempt: int
    ) -> None:
        """After the first input could not be sent: returns when a new socket may carry it
        (the old one had closed, so nothing was delivered), else re-raises ``exc``."""
        sock.release_slot(slot)
        if attempt or not closed_on_send(exc):
            raise exc

    def __repr__(self) -> str:
        from ..._client.redact import redact

        return f"<{type(self).__name__} {redact(self.url, self._secret)}>"

