"""Sync and async clients for the Cartesia v0 text-to-speech API (drop-in for cartesia 0.0.5)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from types import TracebackType
from urllib.parse import urlencode
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Dict,
    Iterator,
    List,
    Optional,
    Tuple,
    TypedDict,
    Union,
)

import aiohttp
import httpx

from ._client_http import frame_error, status_error
from ._client_metrics import Deadline, GenerationMetrics, Timeouts
from ._client_mux import AsyncMux, LoopRuntime, bounded
from ._client_output import ChunkShaper
from ._client_retry import RetryPolicy
from ._client_streams import AsyncAudioStream, AudioStream
from ._client_urls import Endpoints, redact
from ._client_ws import SyncWebSocket, extract_context_id, make_ws_logger
from .errors import (
    CartesiaConnectionError,
    CartesiaError,
    CartesiaTimeoutError,
    ConnectTimeoutError,
    GenerationError,
    WebSocketClosedError,
)
from .streaming import AudioBuffer, StreamParser, parse_message

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

DEFAULT_MODEL_ID = "genial-planet-1346"
DEFAULT_BASE_URL = "api.cartesia.ai"
DEFAULT_API_VERSION = "v0"
DEFAULT_TIMEOUT = 30  # seconds
DEFAULT_NUM_CONNECTIONS = 10  # connections per client
#: Frames buffered per websocket context of the async client before the reader waits.
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


MetricsCallback = Callable[[GenerationMetrics], None]


def _new_context_id() -> str:
    return uuid.uuid4().hex


def _load_embedding(value: Any) -> Any:
    # The v0 API has served embeddings both as a list and as a JSON-encoded string of the list.
    return json.loads(value) if isinstance(value, str) else value


class _ClientBase:
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
        max_connections: int = DEFAULT_NUM_CONNECTIONS,
    ) -> None:
        self.base_url = base_url or os.environ.get("CARTESIA_BASE_URL", DEFAULT_BASE_URL)
        self.api_key = api_key or os.environ.get("CARTESIA_API_KEY")
        self.api_version = api_version or os.environ.get("CARTESIA_API_VERSION", DEFAULT_API_VERSION)
        self.headers = {"X-API-Key": self.api_key, "Content-Type": "application/json"}
        self.websocket: Any = None
        self.experimental_ws_handle_interrupts = experimental_ws_handle_interrupts
        self.timeouts = Timeouts(
            connect=connect_timeout,
            first_audio=first_audio_timeout,
            chunk_gap=chunk_gap_timeout,
            total=total_timeout,
        )
        if max_retries < 1:
            raise ValueError("`max_retries` counts attempts and must be at least 1")
        self.retry_policy = RetryPolicy(max_retries=max_retries, backoff_factor=backoff_factor)
        self.max_connections = max_connections
        self.last_metrics: Optional[GenerationMetrics] = None
        self._endpoints = Endpoints(self.base_url, self.api_version)
        self._sync_http: Optional[httpx.Client] = None

    # --- helpers kept from 0.0.5 -----------------------------------------------------------

    def _http_url(self) -> str:
        return self._endpoints.http

    def _ws_url(self) -> str:
        return self._endpoints.ws

    def _ws_route_url(self) -> str:
        # The v0 websocket authenticates with a query parameter; this URL is never logged or
        # put in a message without going through `redact`.
        url = self._endpoints.websocket(self.experimental_ws_handle_interrupts)
        return f"{url}?{urlencode({'api_key': self.api_key})}" if self.api_key else url

    def _headers(self) -> Dict[str, str]:
        # Without a key the header is left out (the server then says the key is missing),
        # rather than sent as "None".
        return {k: v for k, v in self.headers.items() if v is not None}

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
        if chunk_time is not None and not 0.1 <= chunk_time <= 0.5:
            raise ValueError("`chunk_time` must be between 0.1 and 0.5")
        if chunk_time is not None and duration is not None and duration < chunk_time:
            raise ValueError("`duration` must be greater than chunk_time")
        # `.strip()` on purpose: 0.0.5 raised AttributeError for a transcript of None.
        if transcript.strip() == "":
            raise ValueError("`transcript` must be non empty")

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
        body: Dict[str, Any] = {"transcript": transcript, "model_id": model_id, "voice": voice}
        if duration is not None:
            body["duration"] = duration
        if chunk_time is not None:
            body["chunk_time"] = chunk_time
        return body

    def prepare_audio_and_headers(
        self, raw_audio: Union[bytes, str]
    ) -> Tuple[bytes, Dict[str, Any]]:
        """Read ``raw_audio`` (bytes, or a path) and the headers of a multipart upload."""
        if isinstance(raw_audio, str):
            with open(raw_audio, "rb") as f:
                raw_audio_bytes = f.read()
        else:
            raw_audio_bytes = raw_audio
        headers = {k: v for k, v in self.headers.items() if k != "Content-Type" and v is not None}
        return raw_audio_bytes, headers

    # --- blocking HTTP (also used by the async client, as in 0.0.5) --------------------------

    def _http_client(self) -> httpx.Client:
        if self._sync_http is None or self._sync_http.is_closed:
            self._sync_http = httpx.Client(
                timeout=httpx.Timeout(DEFAULT_TIMEOUT, connect=self.timeouts.connect),
                limits=httpx.Limits(max_connections=self.max_connections),
            )
        return self._sync_http

    def _close_sync_http(self) -> None:
        client, self._sync_http = self._sync_http, None
        if client is not None:
            client.close()

    def _request(
        self, method: str, url: str, *, prefix: Union[str, Callable[[int], str]], **kwargs: Any
    ) -> httpx.Response:
        """One HTTP call with retries on connection errors, 429 and 5xx; typed errors otherwise."""
        policy = self.retry_policy
        attempt = 0
        while True:
            attempt += 1
            error: Optional[BaseException] = None
            try:
                response = self._http_client().request(method, url, **kwargs)
                if response.is_success:
                    return response
                error = status_error(
                    response.status_code,
                    response.text,
                    prefix=prefix(response.status_code) if callable(prefix) else prefix,
                    headers=response.headers,
                    secret=self.api_key,
                )
            except httpx.TimeoutException as exc:
                error = self._map_httpx_timeout(exc)
            except httpx.TransportError as exc:
                what = prefix(0).split(".")[0] + ". " if callable(prefix) else prefix
                error = CartesiaConnectionError(f"{what}{self._redact(str(exc))}")
            if attempt >= policy.max_retries or not policy.retryable(error):
                raise error
            delay = policy.delay(attempt, error)
            logger.warning(
                "Retrying %s %s after %s (attempt %d/%d in %.2f s)",
                method,
                self._redact(url),
                type(error).__name__,
                attempt + 1,
                policy.max_retries,
                delay,
            )
            time.sleep(delay)

    def _map_httpx_timeout(self, exc: httpx.TimeoutException) -> CartesiaTimeoutError:
        if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
            return ConnectTimeoutError(
                f"Connecting to {self._http_url()} took longer than {self.timeouts.connect} s."
            )
        return CartesiaTimeoutError(f"The server did not answer in time: {self._redact(str(exc))}")

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
        params = {"select": "id, name, description"} if skip_embeddings else None
        response = self._request(
            "GET",
            f"{self._http_url()}/voices",
            prefix="Failed to get voices. Error: ",
            headers=self._headers(),
            params=params,
        )
        voices = response.json()
        if not skip_embeddings:
            for voice in voices:
                if "embedding" in voice:
                    voice["embedding"] = _load_embedding(voice["embedding"])
        return {voice["name"]: voice for voice in voices}

    def get_voice_embedding(
        self, *, voice_id: Optional[str] = None, filepath: Optional[str] = None, link: Optional[str] = None
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

        def prefix(status: int) -> str:
            return f"Failed to clone voice. Status Code: {status}\nError: "

        if voice_id:
            response = self._request(
                "GET",
                f"{self._http_url()}/voices/embedding/{voice_id}",
                prefix=prefix,
                headers=self._headers(),
            )
        elif filepath:
            headers = {k: v for k, v in self._headers().items() if k != "Content-Type"}
            with open(filepath, "rb") as clip:
                content = clip.read()
            response = self._request(
                "POST",
                f"{self._http_url()}/voices/clone/clip",
                prefix=prefix,
                headers=headers,
                files={"clip": (os.path.basename(filepath), content)},
            )
        else:
            response = self._request(
                "POST",
                f"{self._http_url()}/voices/clone/url",
                prefix=prefix,
                headers=self._headers(),
                params={"link": link},
            )
        out = response.json()
        return _load_embedding(out["embedding"])

    def _transcribe_sync(self, raw_audio: Union[bytes, str]) -> str:
        raw_audio_bytes, headers = self.prepare_audio_and_headers(raw_audio)
        response = self._request(
            "POST",
            f"{self._http_url()}/audio/transcriptions",
            prefix="Failed to transcribe audio. Error: ",
            headers=headers,
            files={"clip": ("input.wav", raw_audio_bytes, "audio/wav")},
        )
        return response.json()["text"]

    def _checked_body(
        self,
        transcript: str,
        voice: Embedding,
        model_id: str,
        duration: Optional[int],
        chunk_time: Optional[float],
    ) -> Dict[str, Any]:
        """Check the inputs of a generation and build its request body."""
        self._check_inputs(transcript, duration, chunk_time)
        return self._generate_request_body(
            transcript=transcript,
            voice=voice,
            model_id=model_id,
            duration=duration,
            chunk_time=chunk_time,
        )

    def _whole_chunks(
        self,
        body: Dict[str, Any],
        websocket: bool,
        context_id: Optional[str],
        sink: Any,
        on_metrics: Optional[MetricsCallback],
    ) -> Tuple[Any, Any]:
        """The buffer and the chunks (an async iterator in the async client) of a whole generation.

        The audio goes to ``sink`` when given, else to a new float32 buffer.
        """
        buffer = sink if sink is not None else AudioBuffer(encoding="pcm_f32le")
        shaper = ChunkShaper(sink=buffer)
        # Each client defines `_ws_chunks` and `_http_chunks` over its own I/O.
        if websocket:
            cid = context_id or _new_context_id()
            metrics = self._new_metrics("websocket", cid)
            chunks = self._ws_chunks(body, cid, shaper, metrics, on_metrics)  # type: ignore
        else:
            metrics = self._new_metrics("http", None)
            chunks = self._http_chunks(body, shaper, metrics, on_metrics)  # type: ignore
        return buffer, chunks

    @staticmethod
    def _audio_output(buffer: Any, sink: Any, as_numpy: bool, sampling_rate: Any) -> AudioOutput:
        """The result of a whole generation: the buffered audio, or none when a sink took it."""
        if sink is not None:
            return {"audio": b"", "sampling_rate": sampling_rate}  # type: ignore[typeddict-item]
        audio = buffer.to_numpy() if as_numpy else buffer.to_bytes()
        return {"audio": audio, "sampling_rate": sampling_rate}

    def _new_metrics(self, transport: str, context_id: Optional[str]) -> GenerationMetrics:
        return GenerationMetrics(transport=transport, context_id=context_id)

    def _finish(
        self,
        metrics: GenerationMetrics,
        status: str,
        error: Optional[BaseException],
        on_metrics: Optional[MetricsCallback],
    ) -> None:
        if metrics.status != "running":
            return
        metrics.finish(status, error)
        self.last_metrics = metrics
        if on_metrics is not None:
            on_metrics(metrics)

    def _retry_delay(
        self,
        policy: RetryPolicy,
        transport: str,
        attempt: int,
        error: BaseException,
        delivered: bool,
        metrics: GenerationMetrics,
        on_metrics: Optional[MetricsCallback],
    ) -> Optional[float]:
        """The seconds to wait before retrying a failed generation attempt, or None.

        None means ``error`` is final (audio already reached the caller, the attempts are used
        up, or it is not retryable): the metrics are then finished with it and the caller
        raises it.
        """
        if delivered or attempt >= policy.max_retries or not policy.retryable(error):
            self._finish(metrics, _status_of(error), error, on_metrics)
            return None
        # A websocket the server closed before any audio: replace it at once the first time
        # (idle close race); back off on anything else.
        delay = (
            0.0
            if transport == "websocket" and isinstance(error, WebSocketClosedError) and attempt == 1
            else policy.delay(attempt, error)
        )
        logger.info(
            "Retrying %s generation after %s (attempt %d/%d in %.2f s)",
            transport,
            type(error).__name__,
            attempt + 1,
            policy.max_retries,
            delay,
        )
        return delay

    @staticmethod
    def _has_audio(
        msg: Any, shaper: ChunkShaper, metrics: GenerationMetrics, deadline: Deadline
    ) -> bool:
        """Whether ``msg`` carries audio; if so it is counted in the deadline and the metrics."""
        nbytes = shaper.nbytes(msg)
        if not (nbytes or msg.audio):
            return False
        deadline.audio()
        metrics.chunk(nbytes)
        if metrics.ttfa_audible is None and shaper.is_audible(msg):
            metrics.audible()
        return True

    def _http_message(
        self, msg: Any, shaper: ChunkShaper, metrics: GenerationMetrics, deadline: Deadline
    ) -> Iterator[Dict[str, Any]]:
        if "error" in msg.fields:
            raise frame_error(msg.fields, None, self.api_key)
        if self._has_audio(msg, shaper, metrics, deadline):
            yield shaper.chunk(msg, None)


def _status_of(error: BaseException) -> str:
    if isinstance(error, CartesiaTimeoutError):
        return "timeout"
    return "error"


class CartesiaTTS(_ClientBase):
    """The client for Cartesia's text-to-speech API.

    Drop-in for the cartesia 0.0.5 ``CartesiaTTS``: same methods, arguments, return shapes and
    error messages. Beyond 0.0.5, the websocket stays open and is reused across generations
    (a socket the server closed is replaced before the next one starts), every call has time
    limits that raise typed timeout errors, transient failures are retried with jittered
    backoff (never after audio reached the caller), and the API key never appears in errors,
    reprs or logs.

    Examples:
        >>> client = CartesiaTTS()
        >>> voices = client.get_voices()
        >>> embedding = client.get_voice_embedding(voice_id=voices["Milo"]["id"])
        >>> audio = client.generate(transcript="Hello world!", voice=embedding)
        >>> for chunk in client.generate(transcript="Hello world!", voice=embedding, stream=True):
        ...     audio, sr = chunk["audio"], chunk["sampling_rate"]
    """

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
        max_connections: int = DEFAULT_NUM_CONNECTIONS,
    ) -> None:
        """Args:
        api_key: The API key; defaults to the ``CARTESIA_API_KEY`` environment variable.
        experimental_ws_handle_interrupts: Use the interrupt-aware websocket: every chunk is
            acknowledged, and a stream the caller stops reading is cancelled on the server.
        base_url: API host (``CARTESIA_BASE_URL``, default ``api.cartesia.ai``); a host with
            ``localhost`` uses ``http``/``ws``, and an explicit ``http://`` URL is honoured.
        api_version: Path version (``CARTESIA_API_VERSION``, default ``v0``).
        connect_timeout: Seconds to open a connection or complete the websocket handshake.
        first_audio_timeout: Seconds from sending a generation to its first audio chunk.
        chunk_gap_timeout: Longest allowed wait between two chunks of a generation.
        total_timeout: Longest allowed generation, ``None`` for no limit.
        max_retries: Attempts per call (retries happen only before any audio was delivered).
        backoff_factor: Base of the jittered exponential backoff between attempts, in seconds.
        max_connections: Size of the HTTP connection pool.
        """
        super().__init__(
            api_key=api_key,
            experimental_ws_handle_interrupts=experimental_ws_handle_interrupts,
            base_url=base_url,
            api_version=api_version,
            connect_timeout=connect_timeout,
            first_audio_timeout=first_audio_timeout,
            chunk_gap_timeout=chunk_gap_timeout,
            total_timeout=total_timeout,
            max_retries=max_retries,
            backoff_factor=backoff_factor,
            max_connections=max_connections,
        )
        self._ws: Optional[SyncWebSocket] = None

    # --- websocket ----------------------------------------------------------------------------

    def _socket(self) -> SyncWebSocket:
        if self._ws is None:
            self._ws = SyncWebSocket(self._ws_route_url(), self.api_key, make_ws_logger())
        return self._ws

    def refresh_websocket(self) -> None:
        """Open the websocket unless an open one exists (replacing one the server closed)."""
        sock = self._socket()
        conn, _ = sock.open(self.timeouts.connect)
        self.websocket = conn

    def _is_websocket_closed(self) -> bool:
        return self._ws is None or not self._ws.is_open()

    # --- generation ---------------------------------------------------------------------------

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
            ValueError: Invalid input, or the server rejected the request (``APIStatusError``).
            RuntimeError: The websocket generation failed (``GenerationError``,
                ``WebSocketClosedError``).
            cartesia.errors.CartesiaTimeoutError: A time limit ran out.
        """
        body = self._checked_body(transcript, voice, model_id, duration, chunk_time)
        if stream:
            if websocket:
                return self._generate_ws(
                    body, context_id=context_id, as_numpy=as_numpy, sink=sink, on_metrics=on_metrics
                )
            return self._stream(
                self._new_metrics("http", None),
                lambda m: self._http_chunks(body, ChunkShaper(as_numpy=as_numpy, sink=sink), m, on_metrics),
            )

        buffer, chunks = self._whole_chunks(body, websocket, context_id, sink, on_metrics)
        sampling_rate = None
        for chunk in chunks:
            if sampling_rate is None:
                sampling_rate = chunk["sampling_rate"]
        return self._audio_output(buffer, sink, as_numpy, sampling_rate)

    def _stream(
        self, metrics: GenerationMetrics, make: Callable[[GenerationMetrics], Iterator[Dict[str, Any]]]
    ) -> AudioStream:
        return AudioStream(make(metrics), metrics)

    def _generate_ws(
        self,
        body: Dict[str, Any],
        *,
        context_id: Optional[str] = None,
        as_numpy: bool = False,
        sink: Any = None,
        on_metrics: Optional[MetricsCallback] = None,
    ) -> AudioStream:
        """Stream one generation over the websocket.

        Args:
            body: The request body.
            context_id: The context id; when given, every chunk also carries ``"context_id"``.
        """
        cid = context_id or _new_context_id()
        shaper = ChunkShaper(as_numpy=as_numpy, sink=sink, context_id=context_id or None)
        metrics = self._new_metrics("websocket", cid)
        return AudioStream(self._ws_chunks(body, cid, shaper, metrics, on_metrics), metrics)

    def _ws_chunks(
        self,
        body: Dict[str, Any],
        context_id: str,
        shaper: ChunkShaper,
        metrics: GenerationMetrics,
        on_metrics: Optional[MetricsCallback],
    ) -> Iterator[Dict[str, Any]]:
        sock = self._socket()
        policy = self.retry_policy
        deadline = Deadline(self.timeouts)
        experimental = self.experimental_ws_handle_interrupts
        delivered = False  # audio reached the caller: from here on, never retry
        finished = False
        attempt = 0
        try:
            while True:
                attempt += 1
                metrics.restart()
                deadline.restart_phase()
                try:
                    conn, reused = sock.open(self.timeouts.connect)
                    self.websocket = conn
                    metrics.connection_reused = reused
                    if sock.active is not None and sock.active != context_id:
                        # An earlier stream was left unfinished: cancel it, drop its frames.
                        sock.abandon(sock.active, cancel=experimental)
                    sock.stale.discard(context_id)
                    sock.active = context_id
                    sock.send_json({"data": body, "context_id": context_id})
                    while True:
                        if sock.active != context_id:
                            # Checked before reading: the frames now belong to the newer stream.
                            raise GenerationError(
                                "Failed to generate audio. The generation was cancelled because "
                                "another generation started on the same websocket.",
                                context_id=context_id,
                            )
                        raw = sock.recv(deadline.remaining())
                        if raw is None:
                            # A socket silent for this long is suspect: replace it next time.
                            sock.discard()
                            raise deadline.expired()
                        if sock.stale and extract_context_id(raw) in sock.stale:
                            continue
                        msg = parse_message(raw, sink=shaper.sink)
                        metrics.first_byte()
                        if msg.context_id is not None and msg.context_id != context_id:
                            continue
                        if "error" in msg.fields:
                            sock.active = None
                            raise frame_error(msg.fields, context_id, self.api_key)
                        if self._has_audio(msg, shaper, metrics, deadline):
                            delivered = True
                            yield shaper.chunk(msg, msg.context_id)
                            if experimental:
                                sock.send_json({"context_id": context_id})
                        if msg.done:
                            break
                    sock.active = None
                    shaper.finish()
                    finished = True
                    self._finish(metrics, "done", None, on_metrics)
                    return
                except Exception as error:
                    delay = self._retry_delay(
                        policy, "websocket", attempt, error, delivered, metrics, on_metrics
                    )
                    if delay is None:
                        raise
                    if delay:
                        time.sleep(delay)
        finally:
            if not finished:
                if sock.active == context_id:
                    sock.abandon(context_id, cancel=experimental)
                self._finish(metrics, "cancelled", None, on_metrics)

    # --- HTTP streaming -----------------------------------------------------------------------

    def _generate_http_wrapper(self, body: Dict[str, Any]) -> AudioStream:
        """Stream one generation over HTTP (kept for code that called the 0.0.5 helper)."""
        return self._stream(
            self._new_metrics("http", None),
            lambda m: self._http_chunks(body, ChunkShaper(), m, None),
        )

    _generate_http = _generate_http_wrapper

    def _http_chunks(
        self,
        body: Dict[str, Any],
        shaper: ChunkShaper,
        metrics: GenerationMetrics,
        on_metrics: Optional[MetricsCallback],
    ) -> Iterator[Dict[str, Any]]:
        policy = self.retry_policy
        deadline = Deadline(self.timeouts)
        delivered = False
        finished = False
        attempt = 0
        url = f"{self._http_url()}/audio/stream"
        payload = json.dumps(body).encode()
        t = self.timeouts
        phase = [x for x in (t.first_audio, t.chunk_gap, t.total) if x is not None]
        timeout = httpx.Timeout(
            connect=t.connect, read=min(phase) if phase else None, write=t.connect, pool=t.total
        )
        try:
            while True:
                attempt += 1
                metrics.restart()
                deadline.restart_phase()
                error: Optional[BaseException] = None
                try:
                    with self._http_client().stream(
                        "POST", url, content=payload, headers=self._headers(), timeout=timeout
                    ) as response:
                        metrics.first_byte()
                        if not response.is_success:
                            response.read()
                            raise status_error(
                                response.status_code,
                                response.text,
                                prefix="Failed to generate audio. ",
                                headers=response.headers,
                                secret=self.api_key,
                            )
                        parser = StreamParser("auto", sink=shaper.sink)
                        for data in response.iter_bytes():
                            for msg in parser.feed(data):
                                for chunk in self._http_message(msg, shaper, metrics, deadline):
                                    delivered = True
                                    yield chunk
                            deadline.check()
                        for msg in parser.close():
                            for chunk in self._http_message(msg, shaper, metrics, deadline):
                                delivered = True
                                yield chunk
                    shaper.finish()
                    finished = True
                    self._finish(metrics, "done", None, on_metrics)
                    return
                except httpx.TimeoutException as exc:
                    error = (
                        self._map_httpx_timeout(exc)
                        if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
                        else deadline.expired()
                    )
                except httpx.TransportError as exc:
                    error = CartesiaConnectionError(
                        f"Failed to generate audio. The connection failed: {self._redact(str(exc))}"
                    )
                except Exception as exc:
                    error = exc
                delay = self._retry_delay(
                    policy, "HTTP", attempt, error, delivered, metrics, on_metrics
                )
                if delay is None:
                    raise error
                time.sleep(delay)
        finally:
            if not finished:
                self._finish(metrics, "cancelled", None, on_metrics)

    # --- other calls --------------------------------------------------------------------------

    def transcribe(self, raw_audio: Union[bytes, str]) -> str:
        """Transcribe audio (bytes of a WAV file, or its path) to text."""
        return self._transcribe_sync(raw_audio)

    def close(self) -> None:
        """Close the websocket and the HTTP connection pool (the client stays usable)."""
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.close()
        self._close_sync_http()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self) -> "CartesiaTTS":
        self.refresh_websocket()
        return self

    def __exit__(
        self,
        exc_type: Optional[type],
        exc: Optional[BaseException],
        exc_tb: Optional[TracebackType],
    ) -> None:
        self.close()


class AsyncCartesiaTTS(_ClientBase):
    """Asyncio client for Cartesia's text-to-speech API (drop-in for 0.0.5's).

    ``generate`` and ``transcribe`` are coroutines; ``get_voices`` and ``get_voice_embedding``
    stay blocking calls exactly as in 0.0.5. Many generations can run at once: they share one
    websocket (contexts routed by ``context_id``, each with a bounded queue) and one pooled
    aiohttp session. The client may be used from several event loops (e.g. two
    ``asyncio.run`` calls); each loop gets its own connections, released when that loop ends
    or on :meth:`close`.
    """

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
        max_connections: int = DEFAULT_NUM_CONNECTIONS,
        max_queued_chunks: int = DEFAULT_MAX_QUEUED_CHUNKS,
    ) -> None:
        """Args: as :class:`CartesiaTTS`, plus

        max_queued_chunks: Frames buffered per running websocket generation; when a consumer
            falls this far behind, reading from the shared socket pauses (backpressure: memory
            stays bounded, and the other generations on that socket wait for the slow one).
        """
        super().__init__(
            api_key=api_key,
            experimental_ws_handle_interrupts=experimental_ws_handle_interrupts,
            base_url=base_url,
            api_version=api_version,
            connect_timeout=connect_timeout,
            first_audio_timeout=first_audio_timeout,
            chunk_gap_timeout=chunk_gap_timeout,
            total_timeout=total_timeout,
            max_retries=max_retries,
            backoff_factor=backoff_factor,
            max_connections=max_connections,
        )
        if max_queued_chunks < 1:
            raise ValueError("`max_queued_chunks` must be at least 1")
        self.max_queued_chunks = max_queued_chunks
        self._runtimes: Dict[int, LoopRuntime] = {}

    # --- per-loop resources -------------------------------------------------------------------

    def _runtime(self) -> LoopRuntime:
        loop = asyncio.get_running_loop()
        for key in [k for k, rt in self._runtimes.items() if rt.closed]:
            del self._runtimes[key]
        runtime = self._runtimes.get(id(loop))
        if runtime is None or runtime.loop is not loop:
            runtime = LoopRuntime(loop, make_session=self._make_session, make_mux=self._make_mux)
            self._runtimes[id(loop)] = runtime
        return runtime

    def _make_session(self) -> aiohttp.ClientSession:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeouts.connect)
        connector = aiohttp.TCPConnector(limit=self.max_connections)
        return aiohttp.ClientSession(timeout=timeout, connector=connector)

    def _make_mux(self, runtime: LoopRuntime) -> AsyncMux:
        return AsyncMux(
            runtime.session,
            self._ws_route_url(),
            secret=self.api_key,
            experimental=self.experimental_ws_handle_interrupts,
            queue_size=self.max_queued_chunks,
            logger=logger,
        )

    async def _get_session(self) -> aiohttp.ClientSession:
        return await self._runtime().session()

    async def refresh_websocket(self) -> None:
        """Open the websocket of the current event loop unless it is open already."""
        mux = self._runtime().mux()
        await mux.ensure_open(self.timeouts.connect)
        self.websocket = mux.ws

    def _is_websocket_closed(self) -> bool:
        return self.websocket is None or self.websocket.closed

    @property
    def active_generations(self) -> int:
        """Websocket generations running on this event loop's socket (compare to your plan's
        concurrency limit); 0 outside an event loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return 0
        runtime = self._runtimes.get(id(loop))
        mux = runtime.current_mux if runtime is not None and runtime.loop is loop else None
        return len(mux.contexts) if mux is not None else 0

    async def close(self) -> None:
        """Close the websocket and the HTTP session(s); the client stays usable afterwards.

        It is strongly recommended to call this (or use ``async with``) when done.
        """
        try:
            current: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        runtimes, self._runtimes = self._runtimes, {}
        for runtime in runtimes.values():
            if runtime.loop is current:
                await runtime.close()
            else:
                runtime.close_soon()
        self._close_sync_http()

    def __del__(self) -> None:
        try:
            for runtime in getattr(self, "_runtimes", {}).values():
                runtime.close_soon()
            self._close_sync_http()
        except Exception:
            pass

    async def __aenter__(self) -> "AsyncCartesiaTTS":
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
        body = self._checked_body(transcript, voice, model_id, duration, chunk_time)
        if stream:
            if websocket:
                return self._generate_ws(
                    body, context_id=context_id, as_numpy=as_numpy, sink=sink, on_metrics=on_metrics
                )
            metrics = self._new_metrics("http", None)
            shaper = ChunkShaper(as_numpy=as_numpy, sink=sink)
            return AsyncAudioStream(self._http_chunks(body, shaper, metrics, on_metrics), metrics)

        buffer, chunks = self._whole_chunks(body, websocket, context_id, sink, on_metrics)
        sampling_rate = None
        try:
            async for chunk in chunks:
                if sampling_rate is None:
                    sampling_rate = chunk["sampling_rate"]
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]
        return self._audio_output(buffer, sink, as_numpy, sampling_rate)

    def _generate_ws(
        self,
        body: Dict[str, Any],
        *,
        context_id: Optional[str] = None,
        as_numpy: bool = False,
        sink: Any = None,
        on_metrics: Optional[MetricsCallback] = None,
    ) -> AsyncAudioStream:
        """Stream one generation over the shared websocket (``context_id`` echoed when given)."""
        cid = context_id or _new_context_id()
        shaper = ChunkShaper(as_numpy=as_numpy, sink=sink, context_id=context_id or None)
        metrics = self._new_metrics("websocket", cid)
        holder: Dict[str, Any] = {}

        def drop() -> None:
            ctx = holder.get("ctx")
            if ctx is not None and not ctx.released:
                ctx.mux.release(ctx, cancel=True)
                self._finish(metrics, "cancelled", None, on_metrics)

        agen = self._ws_chunks(body, cid, shaper, metrics, on_metrics, holder=holder)
        return AsyncAudioStream(agen, metrics, on_drop=drop)

    async def _ws_chunks(
        self,
        body: Dict[str, Any],
        context_id: str,
        shaper: ChunkShaper,
        metrics: GenerationMetrics,
        on_metrics: Optional[MetricsCallback],
        *,
        holder: Optional[Dict[str, Any]] = None,
    ) -> AsyncIterator[Dict[str, Any]]:
        runtime = self._runtime()
        mux = runtime.mux()
        policy = self.retry_policy
        deadline = Deadline(self.timeouts)
        experimental = self.experimental_ws_handle_interrupts
        delivered = False
        finished = False
        attempt = 0
        ctx = None
        try:
            while True:
                attempt += 1
                metrics.restart()
                deadline.restart_phase()
                try:
                    reused = await mux.ensure_open(self.timeouts.connect)
                    self.websocket = mux.ws
                    metrics.connection_reused = reused
                    ctx = mux.open_context(context_id)
                    if holder is not None:
                        holder["ctx"] = ctx
                    await mux.send({"data": body, "context_id": context_id})
                    while True:
                        waited_from = time.monotonic()
                        raw = await ctx.get(deadline.remaining())
                        if raw is None:
                            if mux.stalled_since(waited_from):
                                await mux.abort()  # nothing at all arrived: the socket is dead
                            raise deadline.expired()
                        msg = parse_message(raw, sink=shaper.sink)
                        metrics.first_byte()
                        if "error" in msg.fields:
                            mux.release(ctx, cancel=False)
                            raise frame_error(msg.fields, context_id, self.api_key)
                        if self._has_audio(msg, shaper, metrics, deadline):
                            delivered = True
                            yield shaper.chunk(msg, msg.context_id)
                            if experimental:
                                await mux.send({"context_id": context_id})
                        if msg.done:
                            break
                    mux.release(ctx, cancel=False)
                    shaper.finish()
                    finished = True
                    self._finish(metrics, "done", None, on_metrics)
                    return
                except Exception as error:
                    if ctx is not None:
                        mux.release(ctx, cancel=True)
                        ctx = None
                    delay = self._retry_delay(
                        policy, "websocket", attempt, error, delivered, metrics, on_metrics
                    )
                    if delay is None:
                        raise
                    if delay:
                        await asyncio.sleep(delay)
        finally:
            if ctx is not None and not finished:
                mux.release(ctx, cancel=True)
            if not finished:
                self._finish(metrics, "cancelled", None, on_metrics)

    async def _generate_http_wrapper(self, body: Dict[str, Any]) -> AsyncIterator[Dict[str, Any]]:
        """Stream one generation over HTTP (kept for code that called the 0.0.5 helper)."""
        chunks = self._http_chunks(body, ChunkShaper(), self._new_metrics("http", None), None)
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]

    _generate_http = _generate_http_wrapper

    async def _http_chunks(
        self,
        body: Dict[str, Any],
        shaper: ChunkShaper,
        metrics: GenerationMetrics,
        on_metrics: Optional[MetricsCallback],
    ) -> AsyncIterator[Dict[str, Any]]:
        runtime = self._runtime()
        policy = self.retry_policy
        deadline = Deadline(self.timeouts)
        delivered = False
        finished = False
        attempt = 0
        url = f"{self._http_url()}/audio/stream"
        payload = json.dumps(body).encode()
        try:
            while True:
                attempt += 1
                metrics.restart()
                deadline.restart_phase()
                error: Optional[BaseException] = None
                response: Optional[aiohttp.ClientResponse] = None
                try:
                    session = await runtime.session()
                    try:
                        response = await bounded(
                            session.post(url, data=payload, headers=self._headers()),
                            deadline.remaining(),
                        )
                    except asyncio.TimeoutError:
                        raise deadline.expired() from None
                    metrics.first_byte()
                    if response.status >= 400:
                        text = await response.text()
                        raise status_error(
                            response.status,
                            text,
                            prefix="Failed to generate audio. ",
                            headers=response.headers,
                            secret=self.api_key,
                        )
                    parser = StreamParser("auto", sink=shaper.sink)
                    while True:
                        try:
                            data = await bounded(response.content.readany(), deadline.remaining())
                        except asyncio.TimeoutError:
                            raise deadline.expired() from None
                        if not data:
                            break
                        for msg in parser.feed(data):
                            for chunk in self._http_message(msg, shaper, metrics, deadline):
                                delivered = True
                                yield chunk
                        deadline.check()
                    for msg in parser.close():
                        for chunk in self._http_message(msg, shaper, metrics, deadline):
                            delivered = True
                            yield chunk
                    shaper.finish()
                    finished = True
                    self._finish(metrics, "done", None, on_metrics)
                    return
                except CartesiaError as exc:
                    # First: our timeouts are TimeoutError, hence OSError, on Python >= 3.10.
                    error = exc
                except aiohttp.ServerTimeoutError:
                    error = ConnectTimeoutError(
                        f"Connecting to {self._http_url()} took longer than {self.timeouts.connect} s."
                    )
                except (aiohttp.ClientError, OSError) as exc:
                    error = CartesiaConnectionError(
                        f"Failed to generate audio. The connection failed: {self._redact(str(exc))}"
                    )
                except Exception as exc:
                    error = exc
                finally:
                    if response is not None:
                        response.release()
                delay = self._retry_delay(
                    policy, "HTTP", attempt, error, delivered, metrics, on_metrics
                )
                if delay is None:
                    raise error
                await asyncio.sleep(delay)
        finally:
            if not finished:
                self._finish(metrics, "cancelled", None, on_metrics)

    async def transcribe(self, raw_audio: Union[bytes, str]) -> str:
        """Transcribe audio (bytes of a WAV file, or its path) to text."""
        raw_audio_bytes, headers = self.prepare_audio_and_headers(raw_audio)
        session = await self._get_session()
        policy = self.retry_policy
        attempt = 0
        url = f"{self._http_url()}/audio/transcriptions"
        while True:
            attempt += 1
            data = aiohttp.FormData()
            data.add_field("clip", raw_audio_bytes, filename="input.wav", content_type="audio/wav")
            error: Optional[BaseException] = None
            try:
                async with session.post(url, headers=headers, data=data) as response:
                    if response.status < 400:
                        return (await response.json())["text"]
                    error = status_error(
                        response.status,
                        await response.text(),
                        prefix="Failed to transcribe audio. Error: ",
                        headers=response.headers,
                        secret=self.api_key,
                    )
            except aiohttp.ServerTimeoutError:
                error = ConnectTimeoutError(
                    f"Connecting to {self._http_url()} took longer than {self.timeouts.connect} s."
                )
            except (aiohttp.ClientError, OSError) as exc:
                error = CartesiaConnectionError(
                    f"Failed to transcribe audio. The connection failed: {self._redact(str(exc))}"
                )
            if attempt >= policy.max_retries or not policy.retryable(error):
                raise error
            await asyncio.sleep(policy.delay(attempt, error))
