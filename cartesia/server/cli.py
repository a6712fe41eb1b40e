"""Command line of the local server: ``cartesia serve`` / ``python -m cartesia.server``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import TYPE_CHECKING, List, Optional, Sequence

from .._cli_args import (
    EXIT_USAGE,
    OneLineParser,
    non_negative_seconds,
    port_number,
    positive_int,
    positive_seconds,
)
from .config import PACES, ServerConfig
from .engines import ENGINE_NAMES
from .faults import Fault, parse_fault_spec
from .hints import client_hints

if TYPE_CHECKING:
    from .tls import TLSMaterial

# The application (aiohttp, numpy, the engines) is imported only once the arguments are valid, so a
# usage error answers at once instead of after a second of imports.

__all__ = ["build_parser", "main"]

DEFAULT_PORT = 8787


def build_parser(prog: str = "cartesia serve") -> argparse.ArgumentParser:
    """The argument parser (shared with ``cartesia serve``)."""
    parser = OneLineParser(
        prog=prog,
        description="Run a local server that speaks the Cartesia API, current and v0 (offline speech).",
        epilog="exit codes: 0 after SIGINT/SIGTERM, 2 bad arguments or an address it cannot listen on",
    )
    add = parser.add_argument
    add("--host", default="localhost",
        help="interface to bind (default: localhost, i.e. 127.0.0.1 and ::1)")
    add("--port", type=port_number, default=DEFAULT_PORT,
        help=f"TCP port; 0 picks a free one (default: {DEFAULT_PORT})")
    add("--engine", choices=ENGINE_NAMES, default=None,
        help="speech (espeak-ng) or tone (numpy only); default: speech when installed")
    add("--pace", choices=PACES, default="none",
        help="send chunks as fast as possible (none) or at the speed of audio (realtime)")
    add("--first-chunk-latency", type=non_negative_seconds, default=0.0, metavar="SECONDS",
        help="delay before the first chunk of every generation (default: 0)")
    add("--api-key", action="append", default=[], dest="api_keys", metavar="KEY",
        help="accepted API key, repeatable (default: any non-empty key)")
    add("--voices-embedding-style", choices=("string", "list"), default="string",
        help="how GET /voices serves embeddings (default: string, as the v0 API did)")
    add("--ws-idle-timeout", type=positive_seconds, default=None, metavar="SECONDS",
        help="close websockets idle this long with code 1000 (default: never)")
    add("--header-timeout", type=positive_seconds, default=10.0, metavar="SECONDS",
        help="answer 408 and close when a request's headers take longer (default: 10)")
    add("--body-timeout", type=positive_seconds, default=30.0, metavar="SECONDS",
        help="answer 408 and close when a request's body takes longer (default: 30)")
    add("--idle-timeout", type=positive_seconds, default=60.0, metavar="SECONDS",
        help="close HTTP keep-alive connections idle this long (default: 60)")
    add("--concurrency-limit", type=positive_int, default=None, metavar="N",
        help="current API: concurrent generations per API key, 429 above (default: unlimited)")
    add("--max-sockets", type=positive_int, default=None, metavar="N",
        help="current API: open /tts/websocket sockets per API key (default: 10 x the "
             "concurrency limit, else unlimited)")
    add("--tts-ws-idle-timeout", type=positive_seconds, default=300.0, metavar="SECONDS",
        help="current API: close an idle /tts/websocket with 1000 after this long (default: 300)")
    add("--max-buffer-delay-ms", type=int, default=3000, metavar="MS",
        help="current API: default text buffering of websocket contexts (default: 3000)")
    add("--context-expiry", type=positive_seconds, default=1.0, metavar="SECONDS",
        help="current API: a websocket context waiting for input ends this long after its "
             "last output (default: 1)")
    add("--fault", action="append", default=[], metavar="SPEC",
        help="queue a server-wide fault at start, e.g. 'drop;after_frames=2' (repeatable)")
    add("--voices", default=None, metavar="FILE", dest="voices_file",
        help="JSON array of voice objects added to the catalogue of the current API "
             "(your production voice ids; omitted fields get defaults)")
    add("--any-voice", action="store_true",
        help="an unknown voice id speaks with a voice derived from the id instead of 404")
    add("--tls", action="store_true",
        help="serve https/wss; without --cert/--key a throwaway CA and a localhost "
             "certificate are made (needs the `tls` extra: pip install 'cartesia[tls]')")
    add("--cert", default=None, metavar="PEM", help="certificate (chain) to serve with --tls")
    add("--key", default=None, metavar="PEM", help="private key of --cert")
    add("--ca-out", default=None, metavar="PATH",
        help="with --tls and no --cert: write the generated CA certificate here "
             "(for clients: SSL_CERT_FILE=PATH)")
    add("--log-level", default="warning", choices=("debug", "info", "warning", "error"),
        help="logging level (default: warning)")
    return parser


async def _serve(
    config: ServerConfig,
    host: str,
    port: int,
    faults: List[Fault],
    tls: Optional[TLSMaterial] = None,
) -> None:
    from .app import create_app
    from .runner import AppServer
    from .state import STATE_KEY

    app = create_app(config)
    app[STATE_KEY].faults.extend(faults)
    ssl_context = tls.server_context if tls is not None else None
    server = AppServer(app, config, shutdown_timeout=2.0, ssl_context=ssl_context)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-POSIX or thread
            try:
                signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
            except ValueError:  # not the main thread: the embedding program handles signals
                pass
    try:
        bound = await server.listen(host, port)
        shown = f"[{host}]" if ":" in host else host
        scheme = "https" if tls is not None else "http"
        sys.stdout.write(f"listening on {scheme}://{shown}:{bound}\n")
        sys.stdout.flush()
        ca_path = tls.ca_path if tls is not None else None
        _print_hints(
            client_hints(
                scheme=scheme,
                host=shown,
                port=bound,
                ca_file=str(ca_path) if ca_path is not None else None,
                keys_required=bool(config.api_keys),
            )
        )
        await stop.wait()
    finally:
        await server.stop()


def _print_hints(lines: Sequence[str]) -> None:
    # After the first line, which scripts parse: how to point each client here.
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    sys.stdout.flush()


def _fail(message: str) -> int:
    """One line on stderr, like the usage errors; the exit status of an unusable setup."""
    sys.stderr.write(f"cartesia serve: error: {' '.join(message.split())}\n")
    return EXIT_USAGE


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the server until SIGINT/SIGTERM.

    Args:
        argv: Arguments without the program name (``None``: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 after a clean shutdown, 2 for bad arguments or an unusable address.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        config = ServerConfig(
            engine=args.engine,
            pace=args.pace,
            first_chunk_latency=args.first_chunk_latency,
            api_keys=tuple(args.api_keys),
            voices_embedding_style=args.voices_embedding_style,
            ws_idle_timeout=args.ws_idle_timeout,
            header_timeout=args.header_timeout,
            body_timeout=args.body_timeout,
            idle_timeout=args.idle_timeout,
            concurrency_limit=args.concurrency_limit,
            max_sockets=args.max_sockets,
            tts_ws_idle_timeout=args.tts_ws_idle_timeout,
            max_buffer_delay_ms=args.max_buffer_delay_ms,
            context_expiry=args.context_expiry,
            voices_file=args.voices_file,
            any_voice=args.any_voice,
        )
        faults = [fault for spec in args.fault for fault in parse_fault_spec(spec)]
    except ValueError as exc:
        parser.error(str(exc))
    if not args.tls and (args.cert or args.key or args.ca_out):
        parser.error("--cert, --key and --ca-out need --tls")
    tls = None
    if args.tls:
        from .tls import TLSError, server_tls

        try:
            tls = server_tls(args.cert, args.key, args.ca_out)
        except TLSError as exc:
            return _fail(str(exc))
    try:
        asyncio.run(_serve(config, args.host, args.port, faults, tls))
    except OSError as exc:
        return _fail(f"cannot listen on {args.host}:{args.port}: {exc}")
    except (ValueError, RuntimeError) as exc:
        return _fail(str(exc))
    return 0
