"""The ``cartesia`` command line: ``say`` (text to speech), ``voices`` (the catalogue) and ``serve``.

``say`` and ``voices`` speak the current API by default, ``--api v0`` the legacy one
(:mod:`cartesia._cli_api`).

Exit codes: :data:`EXIT_CODES` (``cartesia --help`` prints them, the README lists them): 0 ok,
1 other, 2 usage, 3 authentication, 4 connection, 5 server/API error, 6 timeout, 130 Ctrl-C,
141 closed pipe.

Errors are one line on stderr, ``cartesia: error: ...``; the API key is never printed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import re
import shutil
import sys
import time
import traceback
from typing import Any, Callable, Dict, Iterator, List, NoReturn, Optional, Sequence, Tuple

from ._cli_api import APIS, CURRENT_MODEL, DEFAULT_API, Session, open_session
from ._cli_args import (
    EXIT_API,
    EXIT_AUTH,
    EXIT_BROKEN_PIPE,
    EXIT_CONNECTION,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    CommandError,
    OneLineParser,
    positive_int,
    positive_seconds,
)
from ._cli_output import SAMPLE_FORMATS, Output, WavWriter

__all__ = [
    "main",
    "EXIT_OK",
    "EXIT_ERROR",
    "EXIT_USAGE",
    "EXIT_AUTH",
    "EXIT_CONNECTION",
    "EXIT_API",
    "EXIT_TIMEOUT",
    "EXIT_INTERRUPTED",
    "EXIT_BROKEN_PIPE",
    "split_text",
    "WavWriter",
]

PROG = "cartesia"
DEFAULT_VOICE = "Milo"
DEFAULT_OUTPUT = "speech.wav"
#: Texts longer than this are sent as several requests, split at sentence ends; progress is
#: reported per request. Keeps each request well inside server body and duration limits.
SEGMENT_CHARS = 400


# --- errors ---------------------------------------------------------------------------------


#: Values that must never reach the terminal: the API key of this run.
_SECRETS: List[str] = []


def _scrub(text: str) -> str:
    from ._client.redact import REDACTED, redact

    for secret in _SECRETS:
        if len(secret) >= 8:
            text = text.replace(secret, REDACTED)
        else:
            # A toy key ("x") would otherwise blank every such letter of the message.
            text = re.sub(rf"(?<![\w-]){re.escape(secret)}(?![\w-])", REDACTED, text)
    # Credentials in recognised places (api_key=..., X-API-Key: ...) whatever their length.
    text = redact(text)
    # One line, always: server messages may carry newlines.
    return " ".join(text.split())


def _die(code: int, message: str) -> NoReturn:
    """Stop the command: :func:`main` prints ``cartesia: error: message`` and exits with ``code``."""
    raise CommandError(code, message)


def _report(error: CommandError) -> int:
    print(f"{PROG}: error: {_scrub(error.message)}", file=sys.stderr, flush=True)
    return error.code


def _server_text(message: str) -> str:
    """The server's own words when ``message`` ends with its JSON error body, else ``message``."""
    start = message.find("{")
    if start >= 0:
        try:
            body = json.loads(message[start:])
        except ValueError:
            return message
        if isinstance(body, dict):
            for key in ("error", "message", "detail", "title"):
                if isinstance(body.get(key), str) and body[key].strip():
                    return str(body[key])
    return message


def _status_text(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    message = _server_text(getattr(exc, "message", None) or str(exc) or type(exc).__name__)
    return f"(HTTP {status}): {message}" if status else message


def _classify(exc: BaseException, where: str) -> Optional[Tuple[int, str]]:
    """Map an exception from the client, the server or the network to (exit code, message).

    Returns ``None`` for exceptions we did not expect (bugs): they propagate to :func:`main`,
    which reports them in one line too (with the traceback under ``--verbose``).
    """
    from . import errors

    tls = _tls_failure(exc)
    if tls is not None:
        return EXIT_CONNECTION, _tls_message(tls, where)
    if _is_invalid_url(exc):
        return EXIT_USAGE, f"{where} is not a usable address: {exc}"
    if isinstance(exc, errors.AuthenticationError):
        return EXIT_AUTH, f"authentication failed {_status_text(exc)} - check CARTESIA_API_KEY"
    if isinstance(exc, (errors.APITimeoutError, TimeoutError)):
        return EXIT_TIMEOUT, f"timed out talking to {where}: {exc or type(exc).__name__}"
    if isinstance(exc, (errors.APIConnectionError, ConnectionError)):
        return EXIT_CONNECTION, f"connection to {where} failed: {exc or type(exc).__name__}"
    if isinstance(exc, errors.RateLimitError):
        wait = f" (retry after {exc.retry_after:g} s)" if exc.retry_after else ""
        return EXIT_API, f"rate limited by {where}{wait} {_status_text(exc)}"
    if isinstance(exc, (errors.APIStatusError, errors.GenerationError)):
        return EXIT_API, f"{where} returned an error {_status_text(exc)}"
    if isinstance(exc, errors.StreamFormatError):
        return EXIT_API, f"{where} sent a malformed stream: {exc}"
    if isinstance(exc, errors.CartesiaError):
        return EXIT_ERROR, str(exc)
    if isinstance(exc, OSError) and exc.errno is not None:
        # Socket-level failures the client did not wrap (DNS, refused, unreachable).
        return EXIT_CONNECTION, f"connection to {where} failed: {exc.strerror or exc}"
    if isinstance(exc, ValueError):
        # The client rejects bad input with ValueError, as cartesia 0.0.5 did.
        return EXIT_USAGE, str(exc)
    return None


_SSL_REASON = re.compile(r"\[SSL: ([A-Z0-9_]+)\]|(CERTIFICATE_VERIFY_FAILED)")


def _tls_failure(exc: BaseException) -> Optional[str]:
    """The OpenSSL reason (``WRONG_VERSION_NUMBER``...) when ``exc`` is a failed TLS handshake."""
    import ssl

    seen = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return "CERTIFICATE_VERIFY_FAILED"
        if isinstance(current, ssl.SSLError) and current.reason:
            return str(current.reason)
        # The client reports network failures as its own errors, with the cause in the text.
        match = _SSL_REASON.search(str(current))
        if match:
            return match.group(1) or match.group(2)
        current = current.__cause__ or current.__context__
    return None


def _tls_message(reason: str, where: str) -> str:
    if "CERTIFICATE_VERIFY_FAILED" in reason:
        return (
            f"the TLS certificate of {where} is not trusted ([SSL: {reason}]); for a local "
            "`cartesia serve --tls`, set SSL_CERT_FILE to the CA file it wrote"
        )
    plain = where.split("://", 1)[-1]
    return (
        f"TLS handshake with {where} failed ([SSL: {reason}]): it does not seem to speak TLS; "
        f"for a plain-HTTP server such as `cartesia serve`, set CARTESIA_BASE_URL=http://{plain}"
    )


def _is_invalid_url(exc: BaseException) -> bool:
    """Whether ``exc`` is an HTTP or websocket library refusing the URL built from CARTESIA_BASE_URL."""
    import httpx

    if isinstance(exc, (httpx.InvalidURL, httpx.UnsupportedProtocol)):
        return True
    try:
        from websockets.exceptions import InvalidURI
    except ImportError:  # pragma: no cover - websockets is a dependency
        return False
    return isinstance(exc, InvalidURI)


def _check_base_url(value: str) -> None:
    """Refuse a CARTESIA_BASE_URL that no client could connect to, before anything starts.

    Only the address syntax is checked here (a host, a numeric port); which scheme a host gets is
    the client's rule.
    """
    from urllib.parse import urlsplit

    rest = value.split("://", 1)[-1]
    hint = "expected HOST[:PORT] or http(s)://HOST[:PORT]"
    try:
        parts = urlsplit("//" + rest)
        port = parts.port
    except ValueError as exc:
        _die(EXIT_USAGE, f"CARTESIA_BASE_URL is not a usable address ({exc}); {hint}")
    if not parts.hostname or port == 0:
        _die(EXIT_USAGE, f"CARTESIA_BASE_URL is not a usable address (no host or port 0); {hint}")


# --- output -----------------------------------------------------------------------------------


# --- text -------------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?;:…。])\s+|\n\s*\n")


def split_text(text: str, limit: int = SEGMENT_CHARS) -> List[str]:
    """Split ``text`` into pieces of at most ``limit`` characters for separate requests.

    Splits at sentence ends (``.!?;:`` or a blank line) where possible, then at spaces, and only
    cuts inside a word when a single word is longer than ``limit``.

    Args:
        text: The text to speak.
        limit: The largest piece, in characters.

    Returns:
        The non-empty, whitespace-normalised pieces, in order.
    """
    pieces: List[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        sentence = " ".join(sentence.split())
        if not sentence:
            continue
        for part in _wrap(sentence, limit):
            if current and len(current) + 1 + len(part) <= limit:
                current += " " + part
            else:
                if current:
                    pieces.append(current)
                current = part
    if current:
        pieces.append(current)
    return pieces


def _wrap(sentence: str, limit: int) -> Iterator[str]:
    line = ""
    for word in sentence.split(" "):
        while len(word) > limit:
            if line:
                yield line
                line = ""
            yield word[:limit]
            word = word[limit:]
        if not word:
            continue
        if line and len(line) + 1 + len(word) > limit:
            yield line
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        yield line


def _read_text(args: argparse.Namespace) -> str:
    text: str
    if args.text is not None and args.text != "-":
        text = str(args.text)
    else:
        if sys.stdin is None or sys.stdin.isatty():
            _die(EXIT_USAGE, "no text: give TEXT or pipe it on stdin (cartesia say - < file.txt)")
        try:
            text = sys.stdin.read()
        except UnicodeDecodeError as exc:
            _die(EXIT_USAGE, f"stdin is not valid text: {exc.reason}")
    if not text.strip():
        _die(EXIT_USAGE, "the text is empty")
    return text


# --- the backend: a local server or the real API ------------------------------------------------


def _speech_available() -> bool:
    return importlib.util.find_spec("espeakng_loader") is not None


@contextlib.contextmanager
def _backend(args: argparse.Namespace, log: Callable[[str], None]) -> Iterator[Session]:
    """Yield a :class:`~cartesia._cli_api.Session` of ``--api`` with the server to use.

    Without ``--local`` the server is ``CARTESIA_BASE_URL`` (the public API by default), with the
    same address rule on both APIs. With ``--local`` a bundled server (it speaks both) runs in
    this process for the duration of the block.
    """
    limits = {"timeout": args.timeout, "attempts": args.attempts}
    if not args.local:
        key = os.environ.get("CARTESIA_API_KEY", "").strip()
        if not key:
            _die(
                EXIT_AUTH,
                "CARTESIA_API_KEY is not set; export your API key, or use --local for the bundled server",
            )
        _SECRETS.append(key)
        host = os.environ.get("CARTESIA_BASE_URL") or "api.cartesia.ai"
        _check_base_url(host)
        with _client_errors(host):
            session = open_session(args.api, host, limits, key, host, local=False)
        with _closing(session):
            yield session
        return

    engine = args.engine or "auto"
    why = ""
    if engine == "speech" and not _speech_available():
        _die(EXIT_USAGE, "the speech engine needs espeakng-loader: pip install 'cartesia[speech]'")
    if engine == "auto":
        if _speech_available():
            engine = "speech"
        else:
            engine = "tone"
            why = " (espeakng-loader is not installed: pip install 'cartesia[speech]' for real speech)"
    try:
        from .server import LocalServer
    except ImportError as exc:  # pragma: no cover - the server ships with the package
        _die(EXIT_ERROR, f"the local server is not available: {exc}")
    # A fresh key per run: the server accepts only it, so nothing else on the machine can use it.
    key = "local-" + os.urandom(8).hex()
    _SECRETS.append(key)
    # pace="none": audio as fast as the engine makes it, so the real-time factor measures the
    # engine and the client, not a simulated network.
    server = LocalServer(engine=engine, pace="none", api_keys=[key])
    try:
        server.start()
    except Exception as exc:
        _die(EXIT_ERROR, f"the local server could not start: {exc}")
    try:
        log(f"local server: {server.base_url} (engine: {engine}{why})")
        where = f"the local server ({server.base_url})"
        # A `localhost` host means plain http/ws on both APIs, exactly as for cartesia 0.0.5.
        with _client_errors(where):
            session = open_session(args.api, where, limits, key, server.host_for_env, local=True)
        with _closing(session):
            yield session
    finally:
        server.stop()


# --- say --------------------------------------------------------------------------------------


class _Progress:
    """Progress on stderr while a long text streams: live on a terminal, a line per request otherwise."""

    def __init__(self, enabled: bool, total_segments: int) -> None:
        self.enabled = enabled
        self.total = total_segments
        self.live = enabled and sys.stderr.isatty()
        self._last = 0.0

    def update(self, segment: int, audio_seconds: float, force: bool = False) -> None:
        if not self.enabled:
            return
        line = f"[{segment}/{self.total}] {audio_seconds:.1f} s of audio"
        if self.live:
            now = time.monotonic()
            if force or now - self._last >= 0.1:
                self._last = now
                print(f"\r{line}\x1b[K", end="", file=sys.stderr, flush=True)
        elif force:
            print(f"{PROG}: {line}", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.live:
            print("\r\x1b[K", end="", file=sys.stderr, flush=True)


def _cmd_say(args: argparse.Namespace) -> int:
    log = _logger(args.quiet)
    text = _read_text(args)
    segments = split_text(text)
    # Built (and so checked) while parsing; a Namespace from build_parser() alone has none.
    output: Output = getattr(args, "destination", None) or Output(args.output, args.format, no_clobber=args.no_clobber)
    output.check(warn=lambda message: log(f"warning: {message}"))
    transport = "http" if args.http else "websocket"

    with _backend(args, log) as session:
        from . import streaming

        output.open()
        ok = False
        try:
            with _client_errors(session.where):
                voice = session.find_voice(args.voice)
                stats = _stream_segments(session, segments, voice, output, args, transport)
            output.finish()
            ok = True
        except BrokenPipeError:
            return _stdout_gone()
        finally:
            if not ok:
                output.abandon()

    rate = stats["sample_rate"]
    duration = output.frames / rate if rate else 0.0
    elapsed = stats["elapsed"]
    rtf = elapsed / duration if duration else float("inf")
    dest = "stdout" if output.stdout else args.output
    log(f"wrote {dest}: {duration:.2f} s of audio, {rate} Hz, {output.description}")
    log(f"voice: {voice['name'] or args.voice} via {transport} ({_API_NAMES[args.api]}) to {session.where}")
    log(f"time to first audio: {stats['first_audio']:.3f} s")
    speed = f"{1 / rtf:.1f}x faster than real time" if 0 < rtf < 1 else "slower than real time"
    log(f"real-time factor: {rtf:.3f} ({speed})")
    core = "compiled" if streaming.IMPLEMENTATION == "c" else "pure Python"
    log(f"core: {streaming.IMPLEMENTATION} ({core})")
    return EXIT_OK


def _stdout_gone() -> int:
    """The reader of stdout went away (``| head``) and SIGPIPE did not end us: stop quietly."""
    # Python would report the failed flush of stdout at exit; point it at /dev/null first.
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_BROKEN_PIPE


def _stream_segments(
    session: Session,
    segments: List[str],
    voice: Dict[str, str],
    output: Any,
    args: argparse.Namespace,
    transport: str,
) -> Dict[str, Any]:
    """Generate every segment in turn, writing audio as it arrives; returns the timings."""
    progress = _Progress(
        args.progress if args.progress is not None else len(segments) > 1 and not args.quiet,
        len(segments),
    )
    sample_rate: Optional[int] = None
    first_audio: Optional[float] = None
    start = time.perf_counter()
    for index, segment in enumerate(segments, 1):
        chunks = session.stream(segment, voice, args.model, websocket=transport == "websocket")
        try:
            for audio, rate in chunks:
                if sample_rate is None:
                    sample_rate = rate
                    first_audio = time.perf_counter() - start
                elif rate != sample_rate:
                    _die(EXIT_API, f"the sample rate changed mid-stream ({sample_rate} -> {rate} Hz)")
                output.write(audio, sample_rate)
                progress.update(index, output.frames / sample_rate)
        finally:
            chunks.close()
        if sample_rate:
            progress.update(index, output.frames / sample_rate, force=True)
    elapsed = time.perf_counter() - start
    progress.done()
    if sample_rate is None or first_audio is None:
        _die(EXIT_API, "the server returned no audio")
    return {"sample_rate": sample_rate, "first_audio": first_audio, "elapsed": elapsed}


@contextlib.contextmanager
def _closing(session: Session) -> Iterator[Session]:
    try:
        yield session
    finally:
        with _client_errors(session.where):
            session.close()


@contextlib.contextmanager
def _client_errors(where: str) -> Iterator[None]:
    """Turn expected client, server and network errors into one-line exits."""
    try:
        yield
    except (CommandError, SystemExit, KeyboardInterrupt, BrokenPipeError):
        raise
    except Exception as exc:
        mapped = _classify(exc, where)
        if mapped is None:
            raise
        _die(*mapped)


# --- voices -----------------------------------------------------------------------------------


def _cmd_voices(args: argparse.Namespace) -> int:
    log = _logger(args.quiet or args.json)
    with _backend(args, log) as session, _client_errors(session.where):
        voices = session.voices()
    rows = sorted(((v["id"], v["name"], v["description"]) for v in voices), key=lambda row: row[1].lower())
    try:
        if args.json:
            json.dump([dict(zip(("id", "name", "description"), row)) for row in rows], sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            _print_table(("ID", "NAME", "DESCRIPTION"), rows)
        sys.stdout.flush()
    except BrokenPipeError:  # `cartesia voices | head -3`
        return _stdout_gone()
    return EXIT_OK


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max([len(header[i])] + [len(row[i]) for row in rows]) for i in range(len(header) - 1)]
    width = shutil.get_terminal_size((10_000, 24)).columns if sys.stdout.isatty() else None
    for row in [tuple(header)] + [tuple(" ".join(cell.split()) for cell in r) for r in rows]:
        line = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])) + "  " + row[-1]
        if width and len(line) > width:
            line = line[: max(width - 1, 0)] + "…"
        print(line.rstrip())


# --- serve ------------------------------------------------------------------------------------


def _cmd_serve(argv: Sequence[str]) -> int:
    from .server.cli import main as serve_main

    return int(serve_main(list(argv)) or 0)


# --- entry point ------------------------------------------------------------------------------


class _ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = _scrub(record.getMessage()), None
        return True


def _setup_logging(verbose: bool) -> None:
    """Library log records (retries, reconnects) go to stderr only with ``--verbose``.

    By default they are dropped: the outcome is reported by the command itself, and an error is
    one line.
    """
    logger = logging.getLogger("cartesia")
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    if not verbose:
        logger.addHandler(logging.NullHandler())
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(name)s: %(message)s"))
    handler.addFilter(_ScrubFilter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _logger(quiet: bool) -> Callable[[str], None]:
    def log(message: str) -> None:
        if not quiet:
            print(f"{PROG}: {message}", file=sys.stderr, flush=True)

    return log


class _Parser(OneLineParser):
    """The parser of ``cartesia`` and its subcommands: errors start ``cartesia: error:``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("error_prefix", PROG)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)


#: Every exit code with its meaning, for ``--help`` (the module docstring and README say the same).
EXIT_CODES = (
    (EXIT_OK, "success"),
    (EXIT_ERROR, "any other error (the output cannot be written, the local server cannot start)"),
    (EXIT_USAGE, "usage: bad arguments, no or empty text, unknown voice, unsupported output"),
    (EXIT_AUTH, "authentication: no API key, or the server rejected it"),
    (EXIT_CONNECTION, "connection: the server cannot be reached, TLS failed, or the connection broke"),
    (EXIT_API, "the server answered with an error (4xx, 5xx, an error frame, a bad stream)"),
    (EXIT_TIMEOUT, "timeout: connecting, first audio, or a gap between chunks took too long"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
    (EXIT_BROKEN_PIPE, "the reader of stdout went away (cartesia say -o - | head)"),
)

_EPILOG = "\n".join(
    ["exit codes:"]
    + [f"  {code:<5}{meaning}" for code, meaning in EXIT_CODES]
    + [
        "",
        "environment (without --local):",
        "  CARTESIA_API_KEY      your API key (never printed)",
        "  CARTESIA_BASE_URL     the API host, e.g. api.cartesia.ai or http://localhost:8787",
        "                        (a bare host means https, a loopback one http, on both APIs)",
        "  CARTESIA_API_VERSION  --api current: the Cartesia-Version date (default: the client's);",
        "                        --api v0: the path version (default: v0)",
    ]
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cartesia`` command (``serve`` is parsed by the server)."""
    return _build_parsers()[0]


def _build_parsers() -> Tuple[argparse.ArgumentParser, Dict[str, argparse.ArgumentParser]]:
    """The top-level parser and the parser of each subcommand, by name."""
    from .version import __version__

    parser = _Parser(
        prog=PROG,
        description="Text to speech with the Cartesia API, or with the bundled local server.",
        epilog=_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    say = commands.add_parser(
        "say",
        help="speak TEXT into a WAV or MP3 file, or raw samples on stdout",
        description="Stream speech for TEXT (or stdin) into a WAV or MP3 file, or raw samples on stdout.\n"
        "Speaks the current Cartesia API (/tts/websocket, or /tts/bytes with --http) unless --api v0.\n"
        "Timings and the streaming core in use are printed on stderr.",
        epilog=_EPILOG,
    )
    say.add_argument("text", nargs="?", metavar="TEXT", help="the text; omit it or use - to read stdin")
    say.add_argument("--voice", default=DEFAULT_VOICE, help=f"voice name (any case) or id (default: {DEFAULT_VOICE})")
    say.add_argument(
        "-o",
        "--output",
        default=DEFAULT_OUTPUT,
        metavar="PATH",
        help="FILE.wav, FILE.mp3 (needs cartesia[mp3]), FILE.raw/.pcm/.s16/.f32 (headerless samples), "
        f"or - for raw samples on stdout (default: {DEFAULT_OUTPUT})",
    )
    say.add_argument(
        "--format",
        choices=SAMPLE_FORMATS,
        default=None,
        help="samples of WAV and raw output: s16 = 16-bit PCM (default, read by every tool), "
        "f32 = 32-bit float little-endian (lossless)",
    )
    say.add_argument(
        "-n",
        "--no-clobber",
        action="store_true",
        help="refuse to replace an existing file (by default it is replaced, with a warning, "
        "once the new audio is complete)",
    )
    say.add_argument(
        "--model",
        default=None,
        help=f"model id (default: {CURRENT_MODEL} on the current API, the client's default on v0)",
    )
    say.add_argument(
        "--http",
        action="store_true",
        help="stream over HTTP (/tts/bytes; v0: /audio/stream) instead of the websocket",
    )
    _add_backend_options(say)
    say.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"report progress on stderr (default: on for texts over {SEGMENT_CHARS} characters)",
    )
    say.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    say.add_argument("-v", "--verbose", action="store_true", help="also show the client's log (retries, reconnects)")
    say.set_defaults(handler=_cmd_say)

    voices = commands.add_parser(
        "voices",
        help="list the available voices",
        description="List voices (GET /voices of the current API, every page; --api v0: the v0 list).",
        epilog=_EPILOG,
    )
    _add_backend_options(voices)
    voices.add_argument("--json", action="store_true", help="print JSON instead of a table")
    voices.add_argument("-q", "--quiet", action="store_true", help="print nothing on stderr but errors")
    voices.add_argument("-v", "--verbose", action="store_true", help="also show the client's log (retries, reconnects)")
    voices.set_defaults(handler=_cmd_voices)

    commands.add_parser(
        "serve",
        help="run the local Cartesia-compatible server (cartesia serve --help)",
        add_help=False,
    )
    return parser, {"say": say, "voices": voices}


#: How ``say`` names each ``--api`` value in its report.
_API_NAMES = {"current": "current API", "v0": "legacy v0 API"}


def _add_backend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api",
        choices=APIS,
        default=DEFAULT_API,
        help="current: the Cartesia API of today (/tts/bytes, /tts/websocket, /voices; default); "
        "v0: the legacy protocol of cartesia 0.0.5, which the real service no longer serves "
        "(the --local server speaks both)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=None,
        metavar="SECONDS",
        help="limit for connecting, for the first audio and for each gap between chunks "
        "(default: the client's)",
    )
    parser.add_argument(
        "--attempts",
        type=positive_int,
        default=None,
        metavar="N",
        help="tries per request on connection errors, 429 and 5xx, with backoff (default: 3); "
        "never repeated once audio has arrived",
    )
    parser.add_argument(
        "--local",
        action="store_true",
        help="start the bundled server in this process instead of calling the API",
    )
    parser.add_argument(
        "--engine",
        choices=("auto", "speech", "tone"),
        default=None,
        help="engine of the --local server (only with --local): speech (espeak-ng, needs "
        "cartesia[speech]), tone, or auto (speech when installed; default)",
    )


def _parse(argv: Sequence[str]) -> Optional[argparse.Namespace]:
    """Parse and check the arguments; ``None`` when there is no command (help was printed)."""
    parser, subcommands = _build_parsers()
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return None
    sub = subcommands[args.command]
    if extra:
        # argparse reports these on the top-level parser; the subcommand's help is the useful one.
        sub.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.engine is not None and not args.local:
        sub.error("--engine picks the engine of the bundled server: use it with --local")
    if args.command == "say":
        try:
            args.destination = Output(args.output, args.format, no_clobber=args.no_clobber)
        except CommandError as exc:
            sub.error(exc.message)
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``cartesia`` command.

    Args:
        argv: The arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit code (see the module docstring).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = False
    try:
        if argv and argv[0] == "serve":
            # Everything after `serve` belongs to the server's own parser.
            return _cmd_serve(argv[1:])
        args = _parse(argv)
        if args is None:
            return EXIT_OK
        verbose = args.verbose
        _setup_logging(verbose)
        return int(args.handler(args))
    except CommandError as exc:
        return _report(exc)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return EXIT_OK
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        # A bug, or a failure nobody classified: still one line (the traceback with --verbose).
        if verbose:
            traceback.print_exc()
        name = type(exc).__name__
        return _report(CommandError(EXIT_ERROR, f"unexpected {name}: {exc} (--verbose shows the details)"))
    finally:
        _SECRETS.clear()
