"""The ``cartesia`` command line: ``say`` (text to speech), ``voices`` (the catalogue) and ``serve``.

Exit codes (also in README):

====  ==========================================================================================
0     success
1     any other error (e.g. the output file cannot be written, the local server cannot start)
2     usage: bad arguments, no or empty text, unknown voice, unsupported output
3     authentication: no API key, or the server rejected it (401/403)
4     connection: the server cannot be reached, or the connection broke mid-stream
5     the server answered with an error (4xx other than auth, 5xx, an error frame, a bad stream)
6     timeout: a connect, first-audio, chunk-gap or total time limit ran out
130   interrupted (Ctrl-C)
====  ==========================================================================================

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
import signal
import struct
import sys
import time
from typing import IO, Any, Dict, Iterator, List, NoReturn, Optional, Sequence, Tuple

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
    "split_text",
    "WavWriter",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_CONNECTION = 4
EXIT_API = 5
EXIT_TIMEOUT = 6
EXIT_INTERRUPTED = 130

PROG = "cartesia"
DEFAULT_VOICE = "Milo"
DEFAULT_OUTPUT = "speech.wav"
#: Texts longer than this are sent as several requests, split at sentence ends; progress is
#: reported per request. Keeps each request well inside server body and duration limits.
SEGMENT_CHARS = 400
_RAW_SUFFIXES = (".raw", ".pcm", ".f32", ".s16")


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
    """Print ``cartesia: error: message`` on stderr and exit with ``code``."""
    print(f"{PROG}: error: {_scrub(message)}", file=sys.stderr, flush=True)
    raise SystemExit(code)


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
                    return body[key]
    return message


def _status_text(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    message = _server_text(getattr(exc, "message", None) or str(exc) or type(exc).__name__)
    return f"(HTTP {status}): {message}" if status else message


def _classify(exc: BaseException, where: str) -> Optional[Tuple[int, str]]:
    """Map an exception from the client, the server or the network to (exit code, message).

    Returns ``None`` for exceptions we did not expect (bugs), which then propagate with a
    traceback.
    """
    from . import errors

    if isinstance(exc, errors.AuthenticationError):
        return EXIT_AUTH, f"authentication failed {_status_text(exc)} - check CARTESIA_API_KEY"
    if isinstance(exc, (errors.CartesiaTimeoutError, TimeoutError)):
        return EXIT_TIMEOUT, f"timed out talking to {where}: {exc or type(exc).__name__}"
    if isinstance(exc, (errors.CartesiaConnectionError, ConnectionError)):
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


# --- output -----------------------------------------------------------------------------------


class WavWriter:
    """Writes mono float32 audio incrementally as a WAV file (32-bit float or 16-bit PCM).

    The header is written with the first samples and its size fields are patched on
    :meth:`close` when the file is seekable; on a pipe they stay at the streaming placeholder
    ``0xFFFFFFFF``, which common readers accept.

    Args:
        handle: A binary file object.
        sample_format: ``"f32"`` (IEEE float, the API's native samples) or ``"s16"`` (PCM).
    """

    _PLACEHOLDER = 0xFFFFFFFF

    def __init__(self, handle: IO[bytes], sample_format: str = "f32") -> None:
        self._handle = handle
        self._format = sample_format
        self._width = 4 if sample_format == "f32" else 2
        self._rate: Optional[int] = None
        self._data_bytes = 0
        self._offsets: Dict[str, int] = {}

    @property
    def frames(self) -> int:
        """Samples written so far."""
        return self._data_bytes // self._width

    def start(self, sample_rate: int) -> None:
        """Write the header for ``sample_rate``; called once, before the first :meth:`write`."""
        self._rate = int(sample_rate)
        width = self._width
        if self._format == "f32":
            # WAVE_FORMAT_IEEE_FLOAT needs the 18-byte fmt chunk (cbSize = 0) and a fact chunk.
            fmt = struct.pack("<HHIIHHH", 3, 1, self._rate, self._rate * width, width, 32, 0)
        else:
            fmt = struct.pack("<HHIIHH", 1, 1, self._rate, self._rate * width, width, 16)
        header = bytearray(b"RIFF" + struct.pack("<I", self._PLACEHOLDER) + b"WAVE")
        header += b"fmt " + struct.pack("<I", len(fmt)) + fmt
        if self._format == "f32":
            header += b"fact" + struct.pack("<I", 4)
            self._offsets["fact"] = len(header)
            header += struct.pack("<I", self._PLACEHOLDER)
        header += b"data"
        self._offsets["data"] = len(header)
        header += struct.pack("<I", self._PLACEHOLDER)
        self._offsets["audio"] = len(header)
        self._handle.write(bytes(header))

    def write(self, samples: bytes) -> None:
        """Append encoded samples (already in this writer's sample format, whole samples)."""
        self._handle.write(samples)
        self._data_bytes += len(samples)

    def close(self) -> None:
        """Patch the size fields (when the file is seekable) and flush. Does not close ``handle``."""
        if self._rate is None:
            return
        handle = self._handle
        try:
            seekable = handle.seekable()
        except (AttributeError, OSError):
            seekable = False
        if seekable:
            end = handle.tell()
            if self._data_bytes % 2:
                handle.write(b"\0")  # RIFF chunks are word-aligned.
                end += 1
            riff_size = min(end - 8, self._PLACEHOLDER)
            handle.seek(4)
            handle.write(struct.pack("<I", riff_size))
            if "fact" in self._offsets:
                handle.seek(self._offsets["fact"])
                handle.write(struct.pack("<I", min(self.frames, self._PLACEHOLDER)))
            handle.seek(self._offsets["data"])
            handle.write(struct.pack("<I", min(self._data_bytes, self._PLACEHOLDER)))
            handle.seek(end)
        handle.flush()


class _SampleEncoder:
    """Turns the float32 LE byte chunks of the stream into whole samples of the output format.

    Carries the 1-3 bytes of a sample split across chunks to the next chunk.
    """

    def __init__(self, sample_format: str) -> None:
        self._format = sample_format
        self._tail = b""

    def encode(self, chunk: bytes) -> bytes:
        data = self._tail + chunk if self._tail else chunk
        whole = len(data) - len(data) % 4
        self._tail = bytes(data[whole:])
        data = data[:whole]
        if self._format == "f32" or not data:
            return bytes(data)
        import numpy as np

        samples = np.frombuffer(data, dtype="<f4")
        samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
        pcm = np.rint(np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
        return pcm.tobytes()

    @property
    def leftover(self) -> int:
        return len(self._tail)


class _Output:
    """Where ``say`` puts its audio: a WAV file or raw samples on stdout / in a file."""

    def __init__(self, target: str, sample_format: str) -> None:
        self.target = target
        self.sample_format = sample_format
        self.raw = target == "-" or target.lower().endswith(_RAW_SUFFIXES)
        self._partial: Optional[str] = None
        self._handle: Optional[IO[bytes]] = None
        self._wav: Optional[WavWriter] = None
        self._encoder = _SampleEncoder(sample_format)
        self.frames = 0

    def check(self) -> None:
        """Fail fast (before any network traffic) on an output we cannot or should not write."""
        if self.target == "-":
            if sys.stdout.isatty():
                _die(
                    EXIT_USAGE,
                    "refusing to write raw audio to a terminal; pipe it (-o - | ...) or use -o FILE.wav",
                )
            return
        suffix = os.path.splitext(self.target)[1].lower()
        special = os.path.exists(self.target) and not os.path.isfile(self.target)
        if not self.raw and suffix != ".wav" and not special:
            _die(
                EXIT_USAGE,
                f"unsupported output {self.target!r}: use FILE.wav, FILE.raw/.pcm (raw samples) "
                "or - (raw samples on stdout)",
            )
        parent = os.path.dirname(os.path.abspath(self.target))
        if not os.path.isdir(parent):
            _die(EXIT_ERROR, f"cannot write {self.target}: directory {parent} does not exist")

    def open(self) -> None:
        if self.target == "-":
            self._handle = sys.stdout.buffer
            if hasattr(signal, "SIGPIPE"):
                # Die on a closed pipe (`| head`) the way Unix tools do: at once, quietly,
                # status 128+13, without waiting to close connections politely.
                signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            return
        path = self.target
        if os.path.exists(path) and not os.path.isfile(path):
            # A device or a FIFO (/dev/null, a named pipe): write to it directly.
            self._handle = self._open(path)
            return
        # A regular file is written next to its final name and renamed into place at the end, so
        # a failed run neither leaves a half-written file nor destroys an existing one.
        directory, name = os.path.split(os.path.abspath(path))
        self._partial = os.path.join(directory, f".{name}.{os.getpid()}.part")
        self._handle = self._open(self._partial)

    def _open(self, path: str) -> IO[bytes]:
        try:
            return open(path, "wb")
        except OSError as exc:
            _die(EXIT_ERROR, f"cannot write {self.target}: {exc.strerror or exc}")

    def write(self, chunk: bytes, sample_rate: int) -> None:
        assert self._handle is not None
        data = self._encoder.encode(chunk)
        try:
            if not self.raw and self._wav is None:
                self._wav = WavWriter(self._handle, self.sample_format)
                self._wav.start(sample_rate)
            if self._wav is not None:
                self._wav.write(data)
            else:
                self._handle.write(data)
                if self.target == "-":
                    # Low latency for players reading the pipe.
                    self._handle.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            _die(EXIT_ERROR, f"cannot write {self.target}: {exc.strerror or exc}")
        self.frames += len(data) // (4 if self.sample_format == "f32" else 2)

    def finish(self) -> None:
        """Complete the output: patch the WAV header, close, and move the file into place."""
        if self._handle is None:
            return
        if self._encoder.leftover:
            _die(EXIT_API, f"the audio stream ended inside a sample ({self._encoder.leftover} stray bytes)")
        try:
            if self._wav is not None:
                self._wav.close()
            if self.target == "-":
                self._handle.flush()
                return
            self._handle.close()
            if self._partial is not None:
                os.replace(self._partial, self.target)
                self._partial = None
        except OSError as exc:
            _die(EXIT_ERROR, f"cannot write {self.target}: {exc.strerror or exc}")

    def abandon(self) -> None:
        """Drop what a failed run wrote (the previous file of that name, if any, stays intact)."""
        if self._handle is None or self.target == "-":
            return
        with contextlib.suppress(OSError):
            self._handle.close()
        if self._partial is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._partial)
            self._partial = None


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
    if args.text is not None and args.text != "-":
        text = args.text
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
def _backend(args: argparse.Namespace, log) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """Yield (a description of the API for messages, the client's keyword arguments).

    Without ``--local`` the client reads ``CARTESIA_BASE_URL`` / ``CARTESIA_API_VERSION`` itself,
    as cartesia 0.0.5 did. With ``--local`` a bundled server runs in this process for the
    duration of the block.
    """
    limits: Dict[str, Any] = {}
    if args.timeout is not None:
        limits = {
            "connect_timeout": args.timeout,
            "first_audio_timeout": args.timeout,
            "chunk_gap_timeout": args.timeout,
        }
    if args.attempts is not None:
        limits["max_retries"] = args.attempts
    if not args.local:
        key = os.environ.get("CARTESIA_API_KEY", "").strip()
        if not key:
            _die(
                EXIT_AUTH,
                "CARTESIA_API_KEY is not set; export your API key, or use --local for the bundled server",
            )
        _SECRETS.append(key)
        host = os.environ.get("CARTESIA_BASE_URL") or "api.cartesia.ai"
        yield host, {"api_key": key, **limits}
        return

    engine = args.engine
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
        # A `localhost` host means plain http/ws, exactly as for cartesia 0.0.5.
        client_kwargs = {"api_key": key, "base_url": server.host_for_env, "api_version": "v0"}
        yield f"the local server ({server.base_url})", {**client_kwargs, **limits}
    finally:
        server.stop()


def _find_voice(voices: Dict[str, Any], wanted: str) -> Dict[str, Any]:
    """Pick a voice by name (case-insensitive) or by id from ``get_voices()``."""
    lowered = wanted.strip().lower()
    for name, voice in voices.items():
        if str(name).lower() == lowered or str(voice.get("id", "")).lower() == lowered:
            return voice
    names = sorted(str(name) for name in voices)
    shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
    _die(EXIT_USAGE, f"unknown voice {wanted!r}; available: {shown or 'none'} (see: cartesia voices)")


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
    output = _Output(args.output, args.format)
    output.check()
    transport = "http" if args.http else "websocket"

    with _backend(args, log) as (where, client_kwargs):
        from . import streaming
        from .tts import CartesiaTTS

        output.open()
        ok = False
        try:
            with _client_errors(where), _closing(CartesiaTTS(**client_kwargs)) as client:
                voice = _find_voice(client.get_voices(), args.voice)
                embedding = client.get_voice_embedding(voice_id=voice["id"])
                stats = _stream_segments(client, segments, embedding, output, args, transport)
            output.finish()
            ok = True
        except BrokenPipeError:
            # The reader went away (e.g. `| head`) on a system without SIGPIPE: stop quietly.
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141
        finally:
            if not ok:
                output.abandon()

    rate = stats["sample_rate"]
    duration = output.frames / rate if rate else 0.0
    elapsed = stats["elapsed"]
    rtf = elapsed / duration if duration else float("inf")
    kind = "32-bit float" if args.format == "f32" else "16-bit PCM"
    container = "raw" if output.raw else "WAV"
    dest = "stdout" if args.output == "-" else args.output
    log(f"wrote {dest}: {duration:.2f} s of audio, {rate} Hz, {kind} {container}")
    log(f"voice: {voice.get('name', args.voice)} via {transport} to {where}")
    log(f"time to first audio: {stats['first_audio']:.3f} s")
    speed = f"{1 / rtf:.1f}x faster than real time" if 0 < rtf < 1 else "slower than real time"
    log(f"real-time factor: {rtf:.3f} ({speed})")
    core = "compiled" if streaming.IMPLEMENTATION == "c" else "pure Python"
    log(f"core: {streaming.IMPLEMENTATION} ({core})")
    return EXIT_OK


def _stream_segments(client, segments, embedding, output, args, transport) -> Dict[str, Any]:
    """Generate every segment in turn, writing audio as it arrives; returns the timings."""
    progress = _Progress(
        args.progress if args.progress is not None else len(segments) > 1 and not args.quiet,
        len(segments),
    )
    sample_rate: Optional[int] = None
    first_audio: Optional[float] = None
    start = time.perf_counter()
    for index, segment in enumerate(segments, 1):
        kwargs: Dict[str, Any] = {}
        if args.model:
            kwargs["model_id"] = args.model
        chunks = client.generate(
            transcript=segment,
            voice=embedding,
            stream=True,
            websocket=transport == "websocket",
            **kwargs,
        )
        try:
            for chunk in chunks:
                audio = chunk["audio"]
                if not audio:
                    continue
                rate = int(chunk["sampling_rate"])
                if sample_rate is None:
                    sample_rate = rate
                    first_audio = time.perf_counter() - start
                elif rate != sample_rate:
                    _die(EXIT_API, f"the sample rate changed mid-stream ({sample_rate} -> {rate} Hz)")
                output.write(audio, sample_rate)
                progress.update(index, output.frames / sample_rate)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        if sample_rate:
            progress.update(index, output.frames / sample_rate, force=True)
    elapsed = time.perf_counter() - start
    progress.done()
    if sample_rate is None or first_audio is None:
        _die(EXIT_API, "the server returned no audio")
    return {"sample_rate": sample_rate, "first_audio": first_audio, "elapsed": elapsed}


@contextlib.contextmanager
def _closing(client: Any) -> Iterator[Any]:
    # Not `with client:` - like cartesia 0.0.5, entering the client opens the websocket, which
    # `voices` and `say --http` do not need.
    try:
        yield client
    finally:
        client.close()


@contextlib.contextmanager
def _client_errors(where: str) -> Iterator[None]:
    """Turn expected client, server and network errors into one-line exits."""
    try:
        yield
    except (SystemExit, KeyboardInterrupt, BrokenPipeError):
        raise
    except Exception as exc:
        mapped = _classify(exc, where)
        if mapped is None:
            raise
        _die(*mapped)


# --- voices -----------------------------------------------------------------------------------


def _cmd_voices(args: argparse.Namespace) -> int:
    log = _logger(args.quiet or args.json)
    with _backend(args, log) as (where, client_kwargs):
        from .tts import CartesiaTTS

        with _client_errors(where), _closing(CartesiaTTS(**client_kwargs)) as client:
            voices = client.get_voices()
    rows = sorted(
        (
            (str(v.get("id", "")), str(v.get("name", name)), str(v.get("description") or ""))
            for name, v in voices.items()
        ),
        key=lambda row: row[1].lower(),
    )
    if args.json:
        json.dump([dict(zip(("id", "name", "description"), row)) for row in rows], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    _print_table(("ID", "NAME", "DESCRIPTION"), rows)
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


def _logger(quiet: bool):
    def log(message: str) -> None:
        if not quiet:
            print(f"{PROG}: {message}", file=sys.stderr, flush=True)

    return log


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse's default prints the whole usage block; keep errors to one line plus a hint.
        print(f"{PROG}: error: {message} (see: {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cartesia`` command (``serve`` is parsed by the server)."""
    from .version import __version__

    parser = _Parser(
        prog=PROG,
        description="Text to speech with the Cartesia API, or with the bundled local server.",
        epilog="Exit codes: 0 ok, 1 other error, 2 usage, 3 authentication, 4 connection, "
        "5 server/API error, 6 timeout, 130 interrupted. "
        "Environment: CARTESIA_API_KEY, CARTESIA_BASE_URL, CARTESIA_API_VERSION.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    say = commands.add_parser(
        "say",
        help="speak TEXT into a WAV file or raw float32 on stdout",
        description="Stream speech for TEXT (or stdin) into a WAV file, or raw samples on stdout. "
        "Timings and the streaming core in use are printed on stderr.",
    )
    say.add_argument("text", nargs="?", metavar="TEXT", help="the text; omit it or use - to read stdin")
    say.add_argument("--voice", default=DEFAULT_VOICE, help=f"voice name (any case) or id (default: {DEFAULT_VOICE})")
    say.add_argument(
        "-o",
        "--output",
        default=DEFAULT_OUTPUT,
        metavar="PATH",
        help=f"FILE.wav, FILE.raw/.pcm (headerless samples), or - for raw samples on stdout "
        f"(default: {DEFAULT_OUTPUT})",
    )
    say.add_argument(
        "--format",
        choices=("f32", "s16"),
        default="f32",
        help="sample format: f32 = 32-bit float little-endian (default, lossless), s16 = 16-bit PCM",
    )
    say.add_argument("--model", default=None, help="model id (default: the client's default)")
    say.add_argument("--http", action="store_true", help="stream over HTTP instead of the websocket")
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

    voices = commands.add_parser("voices", help="list the available voices", description="List voices.")
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
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _add_backend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="limit for connecting, for the first audio and for each gap between chunks "
        "(default: the client's, 30 s)",
    )
    parser.add_argument(
        "--attempts",
        type=_positive_int,
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
        default="auto",
        help="engine of the --local server: speech (espeak-ng, needs cartesia[speech]), tone, "
        "or auto (speech when installed; default)",
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``cartesia`` command.

    Args:
        argv: The arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit code (see the module docstring).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "serve":
            # Everything after `serve` belongs to the server's own parser.
            return _cmd_serve(argv[1:])
        args = build_parser().parse_args(argv)
        _setup_logging(args.verbose)
        return int(args.handler(args))
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
    finally:
        _SECRETS.clear()
