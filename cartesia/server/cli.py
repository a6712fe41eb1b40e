"""Command line of the local server: ``cartesia serve`` / ``python -m cartesia.server``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import List, Optional, Sequence

from .app import create_app
from .config import PACES, ServerConfig
from .embed import bind_sockets
from .engines import ENGINE_NAMES
from .faults import Fault, parse_fault_spec
from .runner import AppServer
from .state import STATE_KEY

__all__ = ["build_parser", "main"]

DEFAULT_PORT = 8787


def build_parser(prog: str = "cartesia serve") -> argparse.ArgumentParser:
    """The argument parser (shared with ``cartesia serve``)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run a local server that speaks the Cartesia v0 API (offline speech).",
    )
    add = parser.add_argument
    add("--host", default="localhost",
        help="interface to bind (default: localhost, i.e. 127.0.0.1 and ::1)")
    add("--port", type=int, default=DEFAULT_PORT,
        help=f"TCP port; 0 picks a free one (default: {DEFAULT_PORT})")
    add("--engine", choices=ENGINE_NAMES, default=None,
        help="speech (espeak-ng) or tone (numpy only); default: speech when installed")
    add("--pace", choices=PACES, default="none",
        help="send chunks as fast as possible (none) or at the speed of audio (realtime)")
    add("--first-chunk-latency", type=float, default=0.0, metavar="SECONDS",
        help="delay before the first chunk of every generation (default: 0)")
    add("--api-key", action="append", default=[], dest="api_keys", metavar="KEY",
        help="accepted API key, repeatable (default: any non-empty key)")
    add("--voices-embedding-style", choices=("string", "list"), default="string",
        help="how GET /voices serves embeddings (default: string, as the v0 API did)")
    add("--ws-idle-timeout", type=float, default=None, metavar="SECONDS",
        help="close websockets idle this long with code 1000 (default: never)")
    add("--header-timeout", type=float, default=10.0, metavar="SECONDS",
        help="answer 408 and close when a request's headers take longer (default: 10)")
    add("--body-timeout", type=float, default=30.0, metavar="SECONDS",
        help="answer 408 and close when a request's body takes longer (default: 30)")
    add("--idle-timeout", type=float, default=60.0, metavar="SECONDS",
        help="close HTTP keep-alive connections idle this long (default: 60)")
    add("--fault", action="append", default=[], metavar="SPEC",
        help="queue a server-wide fault at start, e.g. 'drop;after_frames=2' (repeatable)")
    add("--log-level", default="warning", choices=("debug", "info", "warning", "error"),
        help="logging level (default: warning)")
    return parser


async def _serve(config: ServerConfig, host: str, port: int, faults: List[Fault]) -> None:
    app = create_app(config)
    app[STATE_KEY].faults.extend(faults)
    server = AppServer(app, config, shutdown_timeout=2.0)
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
        sockets = bind_sockets(host, port)
        bound = sockets[0].getsockname()[1]
        try:
            await server.start(sockets)
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
        shown = f"[{host}]" if ":" in host else host
        sys.stdout.write(f"listening on http://{shown}:{bound}\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await server.stop()


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
        )
        faults = [fault for spec in args.fault for fault in parse_fault_spec(spec)]
    except ValueError as exc:
        parser.error(str(exc))
    try:
        asyncio.run(_serve(config, args.host, args.port, faults))
    except OSError as exc:
        sys.stderr.write(f"cartesia serve: cannot listen on {args.host}:{args.port}: {exc}\n")
        return 2
    except (ValueError, RuntimeError) as exc:
        sys.stderr.write(f"cartesia serve: {exc}\n")
        return 2
    return 0
