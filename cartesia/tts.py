"""The cartesia 0.0.5 facade: ``CartesiaTTS`` and ``AsyncCartesiaTTS`` on the ``_client`` seams."""

from __future__ import annotations

import atexit
import logging
import os
import uuid
import weakref
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    Dict,
    Generic,
    Iterator,
    List,
    Literal,
    Optional,
    Tuple,
    TypedDict,
    TypeVar,
    Union,
    overload,
)

import aiohttp

from ._client.config import DEFAULT_API_VERSION, DEFAULT_BASE_URL, ClientConfig
from ._client.generation import (
    Chunk,
    Deadline,
    Generation,
    MetricsCallback,
    Settings,
    Timeouts,
    run_async,
    run_sync,
)
from ._client.metrics import GenerationMetrics
from ._client.output import ChunkShaper
from ._client.redact import redact
from ._client.runtime import LoopRuntime, LoopRuntimes
from ._client.streams import AsyncAudioStream, AudioStream
from ._client.transport.http_async import AsyncHttp
from ._client.transport.http_sync import SyncHttp
from ._client.transport.ws_async import AsyncWsAttempt
from ._client.transport.ws_sync import SyncWsAttempt, SyncWsPool
from .protocol import v0
from .streaming import AudioBuffer

__all__ = [
    "CartesiaTTS",
    "AsyncCartesiaTTS",
    "AudioOutput",
    "VoiceMetadata",
    "Embedding",
    "GenerationMetrics",
    "Timeouts",
    "AudioStream",
    "AsyncAudioStream",
    "DEFAULT_MODEL_ID",
    "DEFAULT_BASE_URL",
    "DEFAULT_API_VERSION",
    "DEFAULT_TIMEOUT",
    "DEFAULT_NUM_CONNECTIONS",
    "DEFAULT_MAX_QUEUED_CHUNKS",
    "MAX_RETRIES",
    "BACKOFF_FACTOR",
]

DEFAULT_MODEL_ID = v0.DEFAULT_MODEL_ID
DEFAULT_TIMEOUT = 30  # seconds
DEFAULT_NUM_CONNECTIONS = 10  # connections per client
#: Frames buffered per websocket context before the socket's reader waits for the consumer.
DEFAULT_MAX_QUEUED_CHUNKS = 256

BACKOFF_FACTOR = 1
MAX_RETRIES = 3

logger = logging.getLogger(__name__)


class AudioOutput(TypedDict):
    audio: bytes
    sampling_rate: int


Embedding = List[float]


class VoiceMetadata(TypedDict):
    id: str
    name: str
    description: str
    embedding: Optional[Embedding]


if TYPE_CHECKING:
    from typing_extensions import NotRequired, Required, Unpack

    class _GenerateOptions(TypedDict, total=False):
        """The arguments of ``generate`` besides ``stream`` (for its typed overloads)."""

        transcript: Required[str]
        voice: Required[Embedding]
        model_id: NotRequired[str]
        duration: NotRequired[Optional[int]]
        chunk_time: NotRequired[Optional[float]]
        websocket: NotRequired[bool]
        context_id: NotRequired[Optional[str]]
        as_numpy: NotRequired[bool]
        sink: NotRequired[Any]
        on_metrics: NotRequired[Optional[MetricsCallback]]


def _new_context_id() -> str:
    return uuid.uuid4().hex


StreamT = TypeVar("StreamT", AudioStream, AsyncAudioStream)

# Sync clients still open at exit: their sockets are torn down without waiting (see __del__).
_LIVE: weakref.WeakSet[CartesiaTTS] = weakref.WeakSet()


@atexit.register
def _close_live_clients() -> None:
    for client in list(_LIVE):
        client._close_nowait()


class _ClientBase(Generic[StreamT]):
    """Configuration, validation and the blocking HTTP calls shared by both clients."""

    def __init__(
        self,
        *,
        api_key: Optional[str] = None,
        experimental_ws_handle_interrupts: bool = False,
        base_url: Optional[str] = None,
        api_version: Optional[str] = None,
        connect_timeout: Optional[float] = DEFAULT_TIMEOUT,
        first_audio_timeout: Optional[float] = DEFAULT_TIMEOUT,
        chunk_gap_timeout: Optional[float] = DEFAULT_TIMEOUT,
        total_timeout: Optional[float] = None,
        max_retries: int = MAX_RETRIES,
        backoff_factor: float = BACKOFF_FACTOR,
        max_connections: Optional[int] = None,
        max_queued_chunks: int = DEFAULT_MAX_QUEUED_CHUNKS,
    ) -> None:
        """Args:
        api_key: The API key; defaults to the ``CARTESIA_API_KEY`` environment variable.
        experimental_ws_handle_interrupts: Use the interrupt-aware websocket: every chunk is
            acknowledged, and a stream the caller stops reading is cancelled on the server.
        base_url: API host (``CARTESIA_BASE_URL``, default ``api.cartesia.ai``); a loopback host
            (``localhost``, ``127.0.0.0/8``, ``::1``) uses ``http``/``ws``, any other ``https``/
            ``wss``; an explicit ``http://`` or ``https://`` wins.
        api_version: Path version (``CARTESIA_API_VERSION``, default ``v0``).
        connect_timeout: Seconds to open a connection or complete the websocket handshake.
        first_audio_timeout: Seconds from sending a generation to its first audio chunk (for
            the other calls: to their answer).
        chunk_gap_timeout: Longest allowed wait between two chunks of a generation.
        total_timeout: Longest allowed call, retries included; ``None`` for no limit.
        max_retries: Attempts per call (retries happen only before any audio was delivered).
        backoff_factor: Base of the jittered exponential backoff between attempts, in seconds.
        max_connections: HTTP connections open at once; ``None`` (the default): no limit (as
            0.0.5's blocking calls, which open a connection per request; ours keep up to
            ``DEFAULT_NUM_CONNECTIONS`` idle ones for reuse). A streamed generation holds its
            connection for its whole length, so a cap is a cap on concurrent generations: the
            ones above it wait for a connection while their first-audio timeout runs. (Every websocket generation of
            the async client also rides on its few pooled websockets, see ``contexts_per_socket``.)
        max_queued_chunks: Frames buffered per running websocket generation; when a consumer
            falls this far behind, reading from the shared socket pauses (backpressure: memory
            stays bounded, and the other generations on that socket wait for the slow one).

        Raises:
            cartesia.errors.ConfigurationError: The base URL is malformed (before any I/O).
        """
        self.timeouts = Timeouts(
            connect=connect_timeout,
            first_audio=first_audio_timeout,
            chunk_gap=chunk_gap_timeout,
            total=total_timeout,
        )
        self.config = ClientConfig.resolve(
            api_key=api_key,
            base_url=base_url,
            api_version=api_version,
            experimental=experimental_ws_handle_interrupts,
            timeouts=self.timeouts,
            max_retries=max_retries,
            backoff_factor=backoff_factor,
            max_connections=max_connections,
            max_queued_chunks=max_queued_chunks,
        )
        config = self.config
        # The 0.0.5 attributes.
        self.base_url = config.base_url
        self.api_key = config.api_key
        self.api_version = config.api_version
        self.headers = {"X-API-Key": self.api_key, "Content-Type": "application/json"}
        self.websocket: Any = None
        self.experimental_ws_handle_interrupts = experimental_ws_handle_interrupts
        self.retry_policy = config.retry
        self.max_connections = max_connections
        self.max_queued_chunks = max_queued_chunks
        self.last_metrics: Optional[GenerationMetrics] = None
        self._endpoints = config.endpoints
        self._settings = Settings(self.timeouts, config.retry, config.api_key)
        # The blocking calls (voices, ...) run one at a time per calling thread.
        self._sync_http = SyncHttp(
            config.endpoints.http, config.api_key, max_connections, keep_alive=DEFAULT_NUM_CONNECTIONS
        )

    # --- helpers kept from 0.0.5 -----------------------------------------------------------

    def _http_url(self) -> str:
        return self._endpoints.http

    def _ws_url(self) -> str:
        return self._endpoints.ws

    def _ws_route_url(self) -> str:
        # The key rides in the query; this URL is only ever shown through `redact`.
        path = v0.ws_path(self.experimental_ws_handle_interrupts)
        return f"{self._endpoints.ws}{path}{v0.ws_query(self.api_key)}"

    def _headers(self) -> Dict[str, str]:
        return v0.headers(self.api_key)

    def _redact(self, text: str) -> str:
        return redact(text, self.api_key)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, api_version={self.api_version!r}, "
            f"api_key={'***' if self.api_key else None})"
        )

    def _check_inputs(
        self, transcript: str, duration: Optional[float], chunk_time: Optional[float]
    ) -> None:
        v0.check_inputs(transcript, duration, chunk_time)

    def _generate_request_body(
        self,
        *,
        transcript: str,
        voice: Embedding,
        model_id: str,
        duration: Optional[int] = None,
        chunk_time: Optional[float] = None,
    ) -> Dict[str, Any]:
        """The JSON body of a generation; optional fields left as None are not sent."""
        return v0.generation_body(
            transcript=transcript,
            voice=voice,
            model_id=model_id,
            duration=duration,
            chunk_time=chunk_time,
        )

    def prepare_audio_and_headers(
        self, raw_audio: Union[bytes, str]
    ) -> Tuple[bytes, Dict[str, Any]]:
        """Read ``raw_audio`` (bytes, or a path) and the headers of a multipart upload."""
        if isinstance(raw_audio, str):
            with open(raw_audio, "rb") as f:
                raw_audio_bytes = f.read()
        else:
            raw_audio_bytes = raw_audio
        return raw_audio_bytes, v0.headers(self.api_key, json_content=False)

    # --- blocking HTTP (also used by the async client, as in 0.0.5) --------------------------

    def _call(self, request: v0.HttpRequest) -> Any:
        return self._sync_http.call(request, Deadline(self.timeouts), self.retry_policy)

    def get_voices(self, skip_embeddings: bool = True) -> Dict[str, VoiceMetadata]:
        """Return a mapping from voice name to voice metadata.

        Args:
            skip_embeddings: Leave the (large) embeddings out; fetch the ones you need with
                :meth:`get_voice_embedding`.

        Returns:
            ``{name: {"id", "name", "description", ...}}``. When two voices share a name, one of
            them wins.

        Raises:
            ValueError: The request failed (an :class:`~cartesia.errors.APIStatusError`).
        """
        data = self._call(v0.voices_request(skip_embeddings))
        return v0.voices_result(data, skip_embeddings)

    def get_voice_embedding(
        self,
        *,
        voice_id: Optional[str] = None,
        filepath: Optional[str] = None,
        link: Optional[str] = None,
    ) -> Embedding:
        """Get a voice embedding from a voice id, an audio file or a YouTube link.

        Args:
            voice_id: The voice id.
            filepath: Path of an audio clip to clone the voice from.
            link: URL of the audio to clone (the API supports YouTube share links).

        Returns:
            The embedding, a list of floats.

        Raises:
            ValueError: Not exactly one of the arguments was given, or the request failed.
        """
        if sum(bool(x) for x in (voice_id, filepath, link)) != 1:
            raise ValueError("Exactly one of `voice_id`, `filepath` or `url` should be specified.")
        if voice_id:
            request = v0.embedding_request(voice_id)
        elif filepath:
            with open(filepath, "rb") as clip:
                request = v0.clone_clip_request(os.path.basename(filepath), clip.read())
        else:
            request = v0.clone_url_request(str(link))
        return v0.embedding_result(self._call(request))

    def _transcribe_sync(self, raw_audio: Union[bytes, str]) -> str:
        audio, _ = self.prepare_audio_and_headers(raw_audio)
        return v0.transcript_result(self._call(v0.transcription_request(audio)))

    # --- generation setup (the same for both clients) --------------------------------------

    def _generation(
        self,
        transport: str,
        context_id: Optional[str],
        shaper: ChunkShaper,
        on_metrics: Optional[MetricsCallback],
    ) -> Generation:
        def finished(metrics: GenerationMetrics) -> None:
            self.last_metrics = metrics
            if on_metrics is not None:
                on_metrics(metrics)

        return Generation(self._settings, transport, context_id, shaper, finished)

    def _prepare(
        self,
        transcript: str,
        voice: Embedding,
        model_id: str,
        duration: Optional[int],
        chunk_time: Optional[float],
        *,
        stream: bool,
        websocket: bool,
        context_id: Optional[str],
        as_numpy: bool,
        sink: Any,
        on_metrics: Optional[MetricsCallback],
    ) -> Tuple[Generation, Dict[str, Any], Any]:
        """Check the inputs (before any I/O) and set up the generation: ``(gen, body, buffer)``."""
        v0.validate_generation(transcript, voice, model_id, duration, chunk_time)
        body = self._generate_request_body(
            transcript=transcript,
            voice=voice,
            model_id=model_id,
            duration=duration,
            chunk_time=chunk_time,
        )
        buffer = None
        if stream:
            echo = context_id or None if websocket else None
            shaper = ChunkShaper(as_numpy=as_numpy, sink=sink, context_id=echo)
        else:
            # The audio goes to `sink` when given, else to a new float32 buffer.
            buffer = sink if sink is not None else AudioBuffer(encoding="pcm_f32le")
            shaper = ChunkShaper(sink=buffer)
        transport = "websocket" if websocket else "http"
        cid = (context_id or _new_context_id()) if websocket else None
        return self._generation(transport, cid, shaper, on_metrics), body, buffer

    # --- the 0.0.5 stream helpers (one definition; each client wraps its own chunks) -------

    def _stream_of(self, gen: Generation, body: Dict[str, Any], websocket: bool) -> StreamT:
        raise NotImplementedError

    def _generate_ws(
        self,
        body: Dict[str, Any],
        *,
        context_id: Optional[str] = None,
        as_numpy: bool = False,
        sink: Any = None,
        on_metrics: Optional[MetricsCallback] = None,
    ) -> StreamT:
        """Stream one generation over the websocket (the 0.0.5 helper; ``body`` unchecked).

        Args:
            body: The request body.
            context_id: The context id; when given, every chunk also carries ``"context_id"``.
        """
        shaper = ChunkShaper(as_numpy=as_numpy, sink=sink, context_id=context_id or None)
        gen = self._generation("websocket", context_id or _new_context_id(), shaper, on_metrics)
        return self._stream_of(gen, body, True)

    def _generate_http_wrapper(self, body: Dict[str, Any]) -> StreamT:
        """Stream one generation over HTTP (kept for code that called the 0.0.5 helper)."""
        return self._stream_of(self._generation("http", None, ChunkShaper(), None), body, False)

    _generate_http = _generate_http_wrapper

    @staticmethod
    def _audio_output(buffer: Any, sink: Any, as_numpy: bool, sampling_rate: Any) -> AudioOutput:
        """The result of a whole generation: the buffered audio, or none when a sink took it."""
        if sink is not None:
            return {"audio": b"", "sampling_rate": sampling_rate}
        audio = buffer.to_numpy() if as_numpy else buffer.to_bytes()
        return {"audio": audio, "sampling_rate": sampling_rate}


class CartesiaTTS(_ClientBase[AudioStream]):
    """The client for Cartesia's text-to-speech API.

    Drop-in for the cartesia 0.0.5 ``CartesiaTTS``: same methods, arguments, return shapes and
    error messages. Beyond 0.0.5: one client may be shared by many threads (their generations
    are multiplexed on a small pool of websockets, routed by context id), sockets are reused
    across generations, every call has per-phase time limits that raise typed timeout errors,
    transient failures are retried with jittered backoff (never after audio reached the
    caller), bad input is refused before any I/O, and the API key never appears in errors,
    reprs or logs.

    Examples:
        >>> client = CartesiaTTS()
        >>> voices = client.get_voices()
        >>> embedding = client.get_voice_embedding(voice_id=voices["Milo"]["id"])
        >>> audio = client.generate(transcript="Hello world!", voice=embedding)
        >>> for chunk in client.generate(transcript="Hello world!", voice=embedding, stream=True):
        ...     audio, sr = chunk["audio"], chunk["sampling_rate"]
    """

    _pool: Optional[SyncWsPool] = None

    def _ws_pool(self) -> SyncWsPool:
        pool = self._pool
        if pool is None:
            config = self.config
            pool = self._pool = SyncWsPool(
                self._ws_route_url(),
                self.api_key,
                queue_size=config.max_queued_chunks,
                per_socket=config.contexts_per_socket,
                max_sockets=config.max_sockets,
                dialect=config.dialect,
            )
            _LIVE.add(self)
        return pool

    def refresh_websocket(self) -> None:
        """Open the websocket unless an open one exists (replacing one the server closed)."""
        sock, _, _ = self._ws_pool().acquire(None, None, self.timeouts.connect)
        self.websocket = sock.conn

    def _is_websocket_closed(self) -> bool:
        pool = self._pool
        return pool is None or pool.current() is None

    # --- generation ---------------------------------------------------------------------------

    @overload
    def generate(
        self, *, stream: Literal[False] = ..., **options: Unpack[_GenerateOptions]
    ) -> AudioOutput: ...

    @overload
    def generate(
        self, *, stream: Literal[True], **options: Unpack[_GenerateOptions]
    ) -> AudioStream: ...

    @overload
    def generate(
        self, *, stream: bool, **options: Unpack[_GenerateOptions]
    ) -> Union[AudioOutput, AudioStream]: ...

    def generate(
        self,
        *,
        transcript: str,
        voice: Embedding,
        model_id: str = DEFAULT_MODEL_ID,
        duration: Optional[int] = None,
        chunk_time: Optional[float] = None,
        stream: bool = False,
        websocket: bool = True,
        context_id: Optional[str] = None,
        as_numpy: bool = False,
        sink: Any = None,
        on_metrics: Optional[MetricsCallback] = None,
    ) -> Union[AudioOutput, AudioStream]:
        """Generate audio from a transcript.

        Args:
            transcript: The text to speak.
            voice: The voice embedding (list of floats).
            model_id: The model to use.
            duration: Maximum length of the audio in seconds.
            chunk_time: Seconds of audio per chunk (0.1 to 0.5).
            stream: Return a stream of chunks instead of the whole audio.
            websocket: Generate over the (reused) websocket; ``False`` uses HTTP streaming.
            context_id: Websocket context id to use (echoed in every chunk when given).
            as_numpy: Audio as ``numpy.float32`` arrays instead of bytes (whole samples only).
            sink: A :class:`cartesia.streaming.PCMRing` (or ``AudioBuffer``) that receives the
                decoded audio directly; chunks then carry ``"audio": b""`` and ``"samples"``.
            on_metrics: Called with the :class:`GenerationMetrics` when the generation ends.

        Returns:
            With ``stream=False`` a dict with ``"audio"`` (all of it) and ``"sampling_rate"``;
            with ``stream=True`` an :class:`AudioStream` of such dicts, one per chunk.

        Raises:
            ValueError: Invalid input (``InvalidInputError``, before any I/O), or the server
                rejected the request (``APIStatusError``).
            RuntimeError: The websocket generation failed (``GenerationError``,
                ``WebSocketClosedError``).
            cartesia.errors.CartesiaTimeoutError: A time limit ran out.
        """
        gen, body, buffer = self._prepare(
            transcript,
            voice,
            model_id,
            duration,
            chunk_time,
            stream=stream,
            websocket=websocket,
            context_id=context_id,
            as_numpy=as_numpy,
            sink=sink,
            on_metrics=on_metrics,
        )
        if stream:
            return self._stream_of(gen, body, websocket)
        sampling_rate = None
        for chunk in self._chunks(gen, body, websocket):
            if sampling_rate is None:
                sampling_rate = chunk["sampling_rate"]
        return self._audio_output(buffer, sink, as_numpy, sampling_rate)

    def _stream_of(self, gen: Generation, body: Dict[str, Any], websocket: bool) -> AudioStream:
        return AudioStream(self._chunks(gen, body, websocket), gen.metrics)

    def _chunks(self, gen: Generation, body: Dict[str, Any], websocket: bool) -> Iterator[Chunk]:
        if websocket:
            pool, experimental = self._ws_pool(), self.experimental_ws_handle_interrupts
            cid = str(gen.context_id)

            def open_ws(g: Generation) -> SyncWsAttempt:
                attempt = SyncWsAttempt(pool, g, cid, v0.ws_generate(body, cid), experimental)
                self.websocket = attempt.sock.conn
                return attempt

            return run_sync(gen, open_ws)
        request = v0.stream_request(body)
        return run_sync(gen, lambda g: self._sync_http.stream(request, g))

    # --- other calls --------------------------------------------------------------------------

    def transcribe(self, raw_audio: Union[bytes, str]) -> str:
        """Transcribe audio (bytes of a WAV file, or its path) to text."""
        return self._transcribe_sync(raw_audio)

    def close(self) -> None:
        """Close the websockets and the HTTP connection pool (the client stays usable)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
        self._sync_http.close()

    def _close_nowait(self) -> None:
        # Never blocks: safe from __del__ and at interpreter exit.
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close(wait=False)

    def __del__(self) -> None:
        try:
            self._close_nowait()
            self._sync_http.close()
        except Exception:  # noqa: BLE001 - never raise from __del__
            pass

    def __enter__(self) -> CartesiaTTS:
        self.refresh_websocket()
        return self

    def __exit__(
        self,
        exc_type: Optional[type],
        exc: Optional[BaseException],
        exc_tb: Optional[TracebackType],
    ) -> None:
        self.close()


class AsyncCartesiaTTS(_ClientBase[AsyncAudioStream]):
    """Asyncio client for Cartesia's text-to-speech API (drop-in for 0.0.5's).

    ``generate`` and ``transcribe`` are coroutines; ``get_voices`` and ``get_voice_embedding``
    stay blocking calls exactly as in 0.0.5. Many generations can run at once: they share a
    small pool of websockets (contexts routed by ``context_id``, each with a bounded queue; a
    generation beyond the pool's capacity waits for room instead of failing) and one pooled
    aiohttp session, uncapped unless ``max_connections`` is given. The client may be used from
    several event loops (e.g. two ``asyncio.run`` calls); each loop gets its own connections,
    released when that loop ends or on :meth:`close`.
    """

    # --- per-loop resources -------------------------------------------------------------------

    @property
    def _loops(self) -> LoopRuntimes[aiohttp.ClientSession]:
        loops: Optional[LoopRuntimes[aiohttp.ClientSession]] = self.__dict__.get("_loop_runtimes")
        if loops is None:
            loops = self.__dict__["_loop_runtimes"] = LoopRuntimes.of_client(
                self.config, self._ws_route_url()
            )
        return loops

    def _runtime(self) -> LoopRuntime[aiohttp.ClientSession]:
        return self._loops.get()

    async def _get_session(self) -> aiohttp.ClientSession:
        return await self._runtime().session()

    def _async_http(self) -> AsyncHttp:
        return AsyncHttp(self._endpoints.http, self.api_key, self._get_session)

    async def refresh_websocket(self) -> None:
        """Open the websocket of the current event loop unless it is open already."""
        sock, _, _ = await self._runtime().pool().acquire(None, None, self.timeouts.connect)
        self.websocket = sock.ws

    def _is_websocket_closed(self) -> bool:
        return self.websocket is None or self.websocket.closed

    @property
    def active_generations(self) -> int:
        """Websocket generations running on this event loop's sockets; 0 outside a loop."""
        pool = self._loops.current_pool()
        return len(pool.contexts) if pool is not None else 0

    async def close(self) -> None:
        """Close the websockets and the HTTP session(s); the client stays usable afterwards.

        It is strongly recommended to call this (or use ``async with``) when done.
        """
        await self._loops.close()
        self._sync_http.close()

    def __del__(self) -> None:
        try:
            loops: Optional[LoopRuntimes[aiohttp.ClientSession]] = self.__dict__.get("_loop_runtimes")
            if loops is not None:
                loops.close_soon()
            self._sync_http.close()
        except Exception:  # noqa: BLE001 - never raise from __del__
            pass

    async def __aenter__(self) -> AsyncCartesiaTTS:
        await self.refresh_websocket()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type],
        exc: Optional[BaseException],
        exc_tb: Optional[TracebackType],
    ) -> None:
        await self.close()

    # --- generation ---------------------------------------------------------------------------

    @overload
    async def generate(
        self, *, stream: Literal[False] = ..., **options: Unpack[_GenerateOptions]
    ) -> AudioOutput: ...

    @overload
    async def generate(
        self, *, stream: Literal[True], **options: Unpack[_GenerateOptions]
    ) -> AsyncAudioStream: ...

    @overload
    async def generate(
        self, *, stream: bool, **options: Unpack[_GenerateOptions]
    ) -> Union[AudioOutput, AsyncAudioStream]: ...

    async def generate(
        self,
        *,
        transcript: str,
        voice: Embedding,
        model_id: str = DEFAULT_MODEL_ID,
        duration: Optional[int] = None,
        chunk_time: Optional[float] = None,
        stream: bool = False,
        websocket: bool = True,
        context_id: Optional[str] = None,
        as_numpy: bool = False,
        sink: Any = None,
        on_metrics: Optional[MetricsCallback] = None,
    ) -> Union[AudioOutput, AsyncAudioStream]:
        """Generate audio from a transcript (see :meth:`CartesiaTTS.generate`).

        Returns:
            With ``stream=False`` a dict with ``"audio"`` and ``"sampling_rate"``; with
            ``stream=True`` an :class:`AsyncAudioStream` to iterate with ``async for``.
        """
        gen, body, buffer = self._prepare(
            transcript,
            voice,
            model_id,
            duration,
            chunk_time,
            stream=stream,
            websocket=websocket,
            context_id=context_id,
            as_numpy=as_numpy,
            sink=sink,
            on_metrics=on_metrics,
        )
        if stream:
            return self._stream_of(gen, body, websocket)
        chunks = self._chunks(gen, body, websocket)
        sampling_rate = None
        try:
            async for chunk in chunks:
                if sampling_rate is None:
                    sampling_rate = chunk["sampling_rate"]
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]
        return self._audio_output(buffer, sink, as_numpy, sampling_rate)

    def _stream_of(
        self, gen: Generation, body: Dict[str, Any], websocket: bool
    ) -> AsyncAudioStream:
        return AsyncAudioStream(self._chunks(gen, body, websocket), gen.metrics, on_drop=gen.drop)

    def _chunks(
        self, gen: Generation, body: Dict[str, Any], websocket: bool
    ) -> AsyncIterator[Chunk]:
        if websocket:
            experimental = self.experimental_ws_handle_interrupts
            cid = str(gen.context_id)

            async def open_ws(g: Generation) -> AsyncWsAttempt:
                message = v0.ws_generate(body, cid)
                attempt = await AsyncWsAttempt(self._runtime().pool(), g, cid, experimental).open(
                    message
                )
                self.websocket = attempt.sock.ws if attempt.sock is not None else None
                return attempt

            return run_async(gen, open_ws)
        request = v0.stream_request(body)
        http = self._async_http()
        return run_async(gen, lambda g: http.stream(request, g))

    async def transcribe(self, raw_audio: Union[bytes, str]) -> str:
        """Transcribe audio (bytes of a WAV file, or its path) to text."""
        audio, _ = self.prepare_audio_and_headers(raw_audio)
        request = v0.transcription_request(audio)
        data = await self._async_http().call(request, Deadline(self.timeouts), self.retry_policy)
        return v0.transcript_result(data)
