"""``LocalServer``: the local API server running in a background thread, for tests and embedding."""

from __future__ import annotations

import asyncio
import collections
import ssl
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Iterable, Optional, Type, TypedDict

from .app import create_app
from .config import DEFAULT_API_KEY, ServerConfig
from .faults import FaultController
from .runner import AppServer, bind_sockets
from .state import STATE_KEY, ServerState
from .tls import TLSMaterial, server_tls
from .v1.voice_store import VOICE_STORE_KEY, VoiceStore

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["LocalServer", "ServerOptions", "bind_sockets"]


class ServerOptions(TypedDict, total=False):
    """The :class:`~cartesia.server.config.ServerConfig` fields ``LocalServer`` takes as
    ``**options`` (the others are its named arguments); same names, types and meaning."""

    voices_embedding_style: str
    max_body_bytes: int
    ws_max_message_bytes: int
    ws_idle_timeout: Optional[float]
    cache_bytes: int
    transcription_memory: int
    lookahead_bytes: int
    header_timeout: float
    body_timeout: float
    idle_timeout: float
    concurrency_limit: Optional[int]
    max_sockets: Optional[int]
    tts_ws_idle_timeout: Optional[float]
    max_buffer_delay_ms: int
    context_expiry: float
    voices_file: Optional[str]
    any_voice: bool


class LocalServer:
    """The local Cartesia v0 API server, running in a background thread with its own event loop.

    Use it as a context manager (or call :meth:`start` / :meth:`stop`)::

        with LocalServer(engine="tone") as server:
            os.environ["CARTESIA_BASE_URL"] = server.host_for_env
            ...

    Args:
        host: Interface to bind; ``localhost`` binds 127.0.0.1 and ::1.
        port: TCP port; 0 picks a free one.
        engine: ``speech``, ``tone`` or ``None`` (speech when espeak-ng is installed).
        pace: ``none`` or ``realtime``.
        api_keys: Accepted API keys; ``None``/empty accepts any non-empty key.
        first_chunk_latency: Seconds before the first chunk of each generation.
        tls: Serve https/wss. Without ``cert``/``key`` a throwaway CA and a certificate for
            localhost are made (needs the ``tls`` extra); clients trust it through
            :attr:`ca_path` or :meth:`client_ssl_context`.
        cert: PEM certificate (chain) file to serve with (with ``key``).
        key: PEM private key file of ``cert``.
        ca_out: Where to write the generated CA's PEM (default: a temporary file removed at
            :meth:`stop`).
        **options: Further :class:`~cartesia.server.config.ServerConfig` fields
            (``voices_file``, ``any_voice``, ``voices_embedding_style``, ``max_body_bytes``,
            ``ws_idle_timeout``, ...).

    Attributes:
        faults: The server-wide :class:`~cartesia.server.faults.FaultController`.
    """

    def __init__(
        self,
        *,
        host: str = "localhost",
        port: int = 0,
        engine: Optional[str] = None,
        pace: str = "none",
        api_keys: Optional[Iterable[str]] = None,
        first_chunk_latency: float = 0.0,
        tls: bool = False,
        cert: Optional[str] = None,
        key: Optional[str] = None,
        ca_out: Optional[str] = None,
        **options: Unpack[ServerOptions],
    ) -> None:
        self.config = ServerConfig(
            engine=engine,
            pace=pace,
            first_chunk_latency=first_chunk_latency,
            api_keys=tuple(api_keys or ()),
            **options,
        )
        self.host = host
        self._requested_port = port
        self.faults = FaultController()
        self._port: Optional[int] = None
        self._thread: Optional[threading.Thread] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._state: Optional[ServerState] = None
        self._voice_store: Optional[VoiceStore] = None
        self._stopped: Optional[asyncio.Event] = None
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None
        self._tls_wanted = tls or cert is not None or key is not None
        self._tls_files = (cert, key, ca_out)
        self._tls: Optional[TLSMaterial] = None
        self._tls_dir: Optional[tempfile.TemporaryDirectory[str]] = None

    # --- addresses -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("the server is not running")
        return self._port

    @property
    def host_for_env(self) -> str:
        """``host:port``, the value ``CARTESIA_BASE_URL`` expects (no scheme)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://host:port`` (``https://`` with TLS; no ``/v0``)."""
        return f"{'https' if self._tls_wanted else 'http'}://{self.host_for_env}"

    @property
    def ws_url(self) -> str:
        """``ws://host:port`` (``wss://`` with TLS; no ``/v0``)."""
        return f"{'wss' if self._tls_wanted else 'ws'}://{self.host_for_env}"

    @property
    def ca_path(self) -> Optional[Path]:
        """The PEM file of the generated CA (for ``SSL_CERT_FILE``), while running with TLS."""
        return self._tls.ca_path if self._tls is not None else None

    def client_ssl_context(self) -> ssl.SSLContext:
        """An ``ssl.SSLContext`` that trusts this server's generated certificate.

        Raises:
            RuntimeError: The server is not running with a generated certificate.
        """
        if self._tls is None or self._tls.ca_pem is None:
            raise RuntimeError("the server is not running with a generated TLS certificate")
        return self._tls.client_context()

    @property
    def api_key(self) -> str:
        """A key this server accepts (the first configured one, else ``local-test-key``)."""
        return self.config.api_keys[0] if self.config.api_keys else DEFAULT_API_KEY

    @property
    def engine(self) -> str:
        """Name of the engine in use."""
        return self.state.engine.name

    @property
    def state(self) -> ServerState:
        """The live server state (renderer, transcription memory, counters)."""
        if self._state is None:
            raise RuntimeError("the server is not running")
        return self._state

    @property
    def voice_store(self) -> VoiceStore:
        """The voices of the current API (built-in, ``voices_file`` and owned ones)."""
        if self._voice_store is None:
            raise RuntimeError("the server is not running")
        return self._voice_store

    @property
    def stats(self) -> collections.Counter[str]:
        """Counters of what the server saw (see :class:`~cartesia.server.state.ServerState`)."""
        return self.state.stats

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> LocalServer:
        """Start serving; returns once the port accepts connections.

        Raises:
            OSError: The address could not be bound.
            RuntimeError: Already started.
        """
        if self._thread is not None:
            raise RuntimeError("LocalServer already started")
        if self._tls_wanted and self._tls is None:
            self._tls = self._make_tls()
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="cartesia-local-server", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            self._thread = None
            self._drop_tls()
            raise self._error
        return self

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if self._stopped is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._stopped.set)
            except RuntimeError:  # the loop already finished
                pass
        thread.join()
        self._thread = None
        self._port = None
        self._drop_tls()

    def _drop_tls(self) -> None:
        # A generated CA lives as long as one run: the next start() makes a fresh one.
        if self._tls_dir is not None:
            self._tls_dir.cleanup()
            self._tls_dir = None
            self._tls = None

    def _make_tls(self) -> TLSMaterial:
        cert, key, ca_out = self._tls_files
        if cert is None and key is None and ca_out is None:
            self._tls_dir = tempfile.TemporaryDirectory(prefix="cartesia-tls-")
            ca_out = str(Path(self._tls_dir.name) / "ca.pem")
        return server_tls(cert, key, ca_out)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "stopped"
        engine = self.config.engine or "auto"
        return f"<LocalServer {where} engine={engine} pace={self.config.pace}>"

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start() if it happened before ready
            if not self._ready.is_set():
                self._error = exc
            else:  # pragma: no cover - only on internal failures
                raise
        finally:
            self._ready.set()
            try:
                # Like asyncio.run: nothing may outlive the loop ("Task was destroyed" noise).
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        app = create_app(self.config, self.faults)
        self._state = app[STATE_KEY]
        self._voice_store = app[VOICE_STORE_KEY]
        ssl_context = self._tls.server_context if self._tls is not None else None
        server = AppServer(app, self.config, shutdown_timeout=1.0, ssl_context=ssl_context)
        try:
            self._port = await server.listen(self.host, self._requested_port)
            self._ready.set()
            await self._stopped.wait()
        finally:
            await server.stop()
