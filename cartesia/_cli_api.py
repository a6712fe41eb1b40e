"""The two APIs ``cartesia say`` and ``cartesia voices`` speak: the current one and the legacy v0."""

from __future__ import annotations

import re
from typing import Any, Dict, Generator, List, NoReturn, Optional, Tuple

from ._cli_args import EXIT_USAGE, CommandError

#: Audio as it arrives: float32 LE chunks with their sample rate (closed when abandoned).
Chunks = Generator[Tuple[bytes, int], None, None]

__all__ = ["APIS", "DEFAULT_API", "CURRENT_MODEL", "CURRENT_SAMPLE_RATE", "Session", "open_session"]

#: ``--api`` values: the current API (``/tts/bytes``, ``/tts/websocket``, ``/voices``) and the
#: legacy v0 protocol of cartesia 0.0.5.
APIS = ("current", "v0")
DEFAULT_API = "current"
#: The model the current API is asked for when ``--model`` is not given (the 4.2.0 examples' choice).
CURRENT_MODEL = "sonic-latest"
#: The current API makes whatever rate it is asked for; this is the local engines' native rate,
#: so nothing is resampled there.
CURRENT_SAMPLE_RATE = 44100
#: Raw float32 LE: what :class:`~cartesia._cli_output.Output` takes, so both APIs feed it alike.
_RAW_F32 = {"container": "raw", "encoding": "pcm_f32le", "sample_rate": CURRENT_SAMPLE_RATE}
_VOICE_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_API_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: Voices shown in an "unknown voice" message.
_SHOWN = 20


class Session:
    """One API client for the length of a command.

    Args:
        where: How messages name the server (``api.cartesia.ai``, ``the local server (...)``).
        limits: ``timeout`` (seconds, or None) and ``attempts`` (tries per request, or None).
    """

    def __init__(self, where: str, limits: Dict[str, Any]) -> None:
        self.where = where
        self.timeout: Optional[float] = limits.get("timeout")
        self.attempts: Optional[int] = limits.get("attempts")

    def voices(self) -> List[Dict[str, str]]:
        """Every voice as ``{"id", "name", "description"}``."""
        raise NotImplementedError

    def find_voice(self, wanted: str) -> Dict[str, str]:
        """The voice named ``wanted`` (any case) or with that id.

        Raises:
            CommandError: No such voice (exit 2), listing some that exist.
        """
        return _pick(self.voices(), wanted)

    def stream(
        self, text: str, voice: Dict[str, str], model: Optional[str], websocket: bool
    ) -> Chunks:
        """The audio of ``text`` as float32 LE chunks with their sample rate, as it arrives."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the client and its connections."""
        raise NotImplementedError


def _pick(voices: List[Dict[str, str]], wanted: str) -> Dict[str, str]:
    lowered = wanted.strip().lower()
    for voice in voices:
        if voice["name"].lower() == lowered or voice["id"].lower() == lowered:
            return voice
    _unknown(wanted, [v["name"] for v in voices])


def _unknown(wanted: str, names: List[str]) -> NoReturn:
    names = sorted(set(names), key=str.lower)
    shown = ", ".join(names[:_SHOWN]) + (", ..." if len(names) > _SHOWN else "")
    raise CommandError(EXIT_USAGE, f"unknown voice {wanted!r}; available: {shown or 'none'} (see: cartesia voices)")


def _row(voice_id: Any, name: Any, description: Any) -> Dict[str, str]:
    return {"id": str(voice_id or ""), "name": str(name or ""), "description": str(description or "")}


class V0Session(Session):
    """The legacy v0 protocol through :class:`cartesia.tts.CartesiaTTS` (as cartesia 0.0.5)."""

    def __init__(self, where: str, limits: Dict[str, Any], client_kwargs: Dict[str, Any]) -> None:
        super().__init__(where, limits)
        from .tts import CartesiaTTS

        kwargs = dict(client_kwargs)
        if self.timeout is not None:
            kwargs.update(
                connect_timeout=self.timeout, first_audio_timeout=self.timeout, chunk_gap_timeout=self.timeout
            )
        if self.attempts is not None:
            kwargs["max_retries"] = self.attempts
        self._client = CartesiaTTS(**kwargs)
        self._embeddings: Dict[str, Any] = {}

    def voices(self) -> List[Dict[str, str]]:
        return [
            _row(v.get("id"), v.get("name", name), v.get("description"))
            for name, v in self._client.get_voices().items()
        ]

    def stream(
        self, text: str, voice: Dict[str, str], model: Optional[str], websocket: bool
    ) -> Chunks:
        if voice["id"] not in self._embeddings:
            self._embeddings[voice["id"]] = self._client.get_voice_embedding(voice_id=voice["id"])
        kwargs: Dict[str, Any] = {"model_id": model} if model else {}
        chunks = self._client.generate(
            transcript=text, voice=self._embeddings[voice["id"]], stream=True, websocket=websocket, **kwargs
        )
        try:
            for chunk in chunks:
                if chunk["audio"]:
                    yield chunk["audio"], int(chunk["sampling_rate"])
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def close(self) -> None:
        # Not `with client:` - like cartesia 0.0.5, entering the client opens the websocket, which
        # `voices` and `say --http` do not need.
        self._client.close()


class CurrentSession(Session):
    """The current API through :class:`cartesia.Cartesia` (``/tts/bytes``, ``/tts/websocket``, ``/voices``)."""

    def __init__(self, where: str, limits: Dict[str, Any], client_kwargs: Dict[str, Any]) -> None:
        super().__init__(where, limits)
        from ._current.client import Cartesia

        kwargs = dict(client_kwargs)
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        if self.attempts is not None:
            kwargs["max_retries"] = self.attempts - 1
        self._client = Cartesia(**kwargs)
        self._socket: Any = None

    def voices(self) -> List[Dict[str, str]]:
        # Iterating the first page walks every page.
        return [_row(v.id, v.name, v.description) for v in self._client.voices.list(limit=100)]

    def find_voice(self, wanted: str) -> Dict[str, str]:
        if _VOICE_ID.match(wanted.strip()):
            # An id: one request, not the whole catalogue (the real one is long).
            from .errors import NotFoundError

            try:
                found = self._client.voices.get(wanted.strip())
            except NotFoundError:
                pass  # perhaps an id in other letter case: the catalogue decides
            else:
                return _row(found.id, found.name, found.description)
        return _pick(self.voices(), wanted)

    def _phase_limits(self) -> Dict[str, float]:
        if self.timeout is None:
            return {}
        return {"first_audio_timeout": self.timeout, "chunk_timeout": self.timeout}

    def stream(
        self, text: str, voice: Dict[str, str], model: Optional[str], websocket: bool
    ) -> Chunks:
        request: Dict[str, Any] = {
            "model_id": model or CURRENT_MODEL,
            "transcript": text,
            "voice": {"mode": "id", "id": voice["id"]},
            "output_format": dict(_RAW_F32),
        }
        if websocket:
            yield from self._websocket(request)
            return
        limits: Dict[str, Any] = {}
        if self.timeout is not None:
            limits = {
                "connect_timeout": self.timeout,
                "first_audio_timeout": self.timeout,
                "chunk_gap_timeout": self.timeout,
            }
        response = self._client.tts.generate(**request, **limits)
        try:
            for chunk in response.iter_bytes():
                if chunk:
                    yield chunk, CURRENT_SAMPLE_RATE
        finally:
            response.close()

    def _websocket(self, request: Dict[str, Any]) -> Chunks:
        if self._socket is None:
            # One socket for every segment of the text; the client reconnects it if it drops.
            self._socket = self._client.tts.websocket_connect()
        context = self._socket.context(raise_errors=True, **self._phase_limits())
        finished = False
        try:
            context.send(continue_=False, **request)
            for event in context.receive():
                if event.type == "chunk" and event.audio:
                    yield event.audio, CURRENT_SAMPLE_RATE
                elif event.type == "done":
                    finished = True
        finally:
            if not finished:
                context.cancel()
        if not finished:
            from .errors import TruncatedStreamError

            raise TruncatedStreamError("the stream ended without its done message")

    def close(self) -> None:
        try:
            if self._socket is not None:
                self._socket.close()
        finally:
            self._client.close()


def current_client_kwargs(
    api_key: str, host: str, api_version: Optional[str], websocket_url: Optional[str] = None
) -> Dict[str, Any]:
    """The :class:`cartesia.Cartesia` arguments for ``host`` (cartesia 0.0.5's address rule).

    A bare host gets https/wss, a loopback one (``localhost``, ``127.0.0.1``) plain http/ws, and
    an explicit scheme wins, as for the v0 client, so one ``CARTESIA_BASE_URL`` serves both APIs.
    ``CARTESIA_API_VERSION`` is the ``Cartesia-Version`` header when it is a date; other values
    (the 0.0.5 path version ``v0``) mean nothing to the current API and are left out.
    ``websocket_url`` (``CARTESIA_WEBSOCKET_BASE_URL``) replaces the websocket root derived from ``host``.
    """
    from ._client.config import Endpoints

    endpoints = Endpoints(host, "")
    kwargs: Dict[str, Any] = {
        "api_key": api_key,
        "base_url": endpoints.http,
        "websocket_base_url": websocket_url or endpoints.ws,
    }
    if api_version and _API_DATE.match(api_version.strip()):
        kwargs["default_headers"] = {"Cartesia-Version": api_version.strip()}
    return kwargs


def open_session(api: str, where: str, limits: Dict[str, Any], api_key: str, host: str, local: bool) -> Session:
    """A session of ``api`` with the server at ``host``.

    Args:
        api: ``current`` or ``v0``.
        where: How messages name the server.
        limits: ``timeout`` and ``attempts`` from the command line (None: the client's).
        api_key: The key.
        host: ``CARTESIA_BASE_URL``'s form: ``HOST[:PORT]`` or ``http(s)://HOST[:PORT]``.
        local: The bundled server: its own address, whatever the environment says.
    """
    import os

    if api == "v0":
        kwargs: Dict[str, Any] = {"api_key": api_key}
        if local:
            kwargs.update(base_url=host, api_version="v0")
        return V0Session(where, limits, kwargs)
    if local:
        return CurrentSession(where, limits, current_client_kwargs(api_key, host, None))
    version = os.environ.get("CARTESIA_API_VERSION")
    websocket_url = os.environ.get("CARTESIA_WEBSOCKET_BASE_URL") or None
    return CurrentSession(where, limits, current_client_kwargs(api_key, host, version, websocket_url))
