"""Where ``cartesia say`` puts its audio: WAV, raw samples or MP3, in a file, a device or on stdout."""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import sys
from typing import IO, Any, Callable, Dict, Iterator, Optional

from ._cli_args import EXIT_API, EXIT_ERROR, EXIT_USAGE, CommandError

__all__ = ["WavWriter", "Output", "SAMPLE_FORMATS", "DEFAULT_SAMPLE_FORMAT"]

#: ``--format`` values: 16-bit PCM (what every WAV reader takes) and 32-bit float (lossless).
SAMPLE_FORMATS = ("s16", "f32")
DEFAULT_SAMPLE_FORMAT = "s16"
_FORMAT_NAMES = {"s16": "16-bit PCM", "f32": "32-bit float"}
#: Headerless outputs; ``.f32`` and ``.s16`` also name their sample format.
_RAW_SUFFIXES = (".raw", ".pcm", ".f32", ".s16")
MP3_EXTRA = "pip install 'cartesia[mp3]'"


class WavWriter:
    """Writes mono audio incrementally as a WAV file (16-bit PCM or 32-bit float).

    The header is written with the first samples and its size fields are patched on
    :meth:`close` when the file is seekable; on a pipe they stay at the streaming placeholder
    ``0xFFFFFFFF``, which common readers accept.

    Args:
        handle: A binary file object.
        sample_format: ``"s16"`` (PCM) or ``"f32"`` (IEEE float, the API's native samples).
    """

    _PLACEHOLDER = 0xFFFFFFFF

    def __init__(self, handle: IO[bytes], sample_format: str = DEFAULT_SAMPLE_FORMAT) -> None:
        if sample_format not in SAMPLE_FORMATS:
            raise ValueError(f"sample_format must be one of {SAMPLE_FORMATS}, got {sample_format!r}")
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


class _Samples:
    """Cuts the float32 LE byte chunks of the stream into whole samples.

    Carries the 1-3 bytes of a sample split across chunks to the next chunk.
    """

    def __init__(self) -> None:
        self._tail = b""

    def take(self, chunk: bytes) -> Any:
        """The whole samples of ``tail + chunk``, as a float32 array with no NaN or infinity."""
        import numpy as np

        data = self._tail + chunk if self._tail else chunk
        whole = len(data) - len(data) % 4
        self._tail = bytes(data[whole:])
        samples = np.frombuffer(data, dtype="<f4", count=whole // 4)
        if not np.all(np.isfinite(samples)):
            samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
        return samples

    @property
    def leftover(self) -> int:
        return len(self._tail)


def _encode_pcm(samples: Any, sample_format: str) -> bytes:
    if sample_format == "f32":
        return bytes(samples.astype("<f4", copy=False).tobytes())
    import numpy as np

    return bytes(np.rint(np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes())


def _mp3_encoder_factory() -> Optional[Callable[[int], Any]]:
    """A ``rate -> encoder`` factory for MP3 (the server's encoder), or ``None`` when not installed."""
    try:
        from .server.audio.encode import StreamEncoder
        from .server.audio.formats import FormatError, mp3_available, parse_output_format
    except ImportError:
        return None
    if not mp3_available():  # the optional `mp3` extra (lameenc)
        return None

    def make(rate: int) -> Any:
        try:
            fmt = parse_output_format({"container": "mp3", "sample_rate": rate}, route="bytes")
        except FormatError as exc:
            raise CommandError(EXIT_API, f"cannot write the server's {rate} Hz audio as MP3: {exc}") from None
        return StreamEncoder(fmt, rate)

    return make


class Output:
    """One output of ``say``: ``FILE.wav``, ``FILE.mp3``, raw ``FILE.raw/.pcm/.f32/.s16``, a device or ``-``.

    A regular file is written next to its final name and moved into place only when the audio is
    complete, so a failed run neither leaves a half-written file nor destroys an existing one.

    Args:
        target: The ``-o`` value.
        sample_format: The ``--format`` value, or ``None`` when it was not given.
        no_clobber: Refuse to replace an existing file.

    Raises:
        CommandError: The target and the format do not fit together (exit 2).
    """

    def __init__(self, target: str, sample_format: Optional[str] = None, no_clobber: bool = False) -> None:
        self.target = target
        self.no_clobber = no_clobber
        suffix = os.path.splitext(target)[1].lower()
        self.stdout = target == "-"
        self.kind = "raw" if self.stdout or suffix in _RAW_SUFFIXES else "mp3" if suffix == ".mp3" else "wav"
        named = suffix[1:] if suffix in (".f32", ".s16") else None
        if self.kind == "mp3" and sample_format is not None:
            raise CommandError(EXIT_USAGE, "--format applies to WAV and raw output, not to MP3")
        if named and sample_format not in (None, named):
            raise CommandError(EXIT_USAGE, f"--format {sample_format} contradicts the {suffix} suffix of {target}")
        self.sample_format = None if self.kind == "mp3" else named or sample_format or DEFAULT_SAMPLE_FORMAT
        self.frames = 0
        self._samples = _Samples()
        self._partial: Optional[str] = None
        self._handle: Optional[IO[bytes]] = None
        self._wav: Optional[WavWriter] = None
        self._mp3: Any = None
        self._mp3_factory: Optional[Callable[[int], Any]] = None

    @property
    def description(self) -> str:
        """What is written, e.g. ``16-bit PCM WAV``."""
        if self.kind == "mp3":
            bit_rate = getattr(getattr(self._mp3, "fmt", None), "bit_rate", None)
            return f"MP3 {bit_rate // 1000} kbit/s" if bit_rate else "MP3"
        assert self.sample_format is not None
        return f"{_FORMAT_NAMES[self.sample_format]} {'raw' if self.kind == 'raw' else 'WAV'}"

    def check(self, warn: Callable[[str], None]) -> None:
        """Fail fast (before any network traffic) on an output we cannot or should not write.

        Args:
            warn: Prints a warning (an existing file will be replaced).

        Raises:
            CommandError: Unsupported, unavailable or unwritable output, or ``--no-clobber`` and
                the file exists.
        """
        if self.stdout:
            if sys.stdout.isatty():
                raise CommandError(
                    EXIT_USAGE,
                    "refusing to write raw audio to a terminal; pipe it (-o - | ...) or use -o FILE.wav",
                )
            return
        exists = os.path.exists(self.target)
        special = exists and not os.path.isfile(self.target)
        suffix = os.path.splitext(self.target)[1].lower()
        if self.kind == "wav" and suffix != ".wav" and not special:
            raise CommandError(
                EXIT_USAGE,
                f"unsupported output {self.target!r}: use FILE.wav, FILE.mp3, FILE.raw/.pcm (raw samples) "
                "or - (raw samples on stdout)",
            )
        if self.kind == "mp3":
            self._mp3_factory = _mp3_encoder_factory()
            if self._mp3_factory is None:
                raise CommandError(EXIT_USAGE, f"MP3 output needs the mp3 extra: {MP3_EXTRA}")
        parent = os.path.dirname(os.path.abspath(self.target))
        if not os.path.isdir(parent):
            raise CommandError(EXIT_ERROR, f"cannot write {self.target}: directory {parent} does not exist")
        if exists and not special:
            if self.no_clobber:
                raise CommandError(EXIT_ERROR, f"{self.target} exists; not replacing it (--no-clobber)")
            warn(f"{self.target} exists; it will be replaced once the new audio is complete (--no-clobber keeps it)")

    def open(self) -> None:
        """Open the target (stdout, the device, or a temporary file next to the final name)."""
        if self.stdout:
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
        directory, name = os.path.split(os.path.abspath(path))
        self._partial = os.path.join(directory, f".{name}.{os.getpid()}.part")
        self._handle = self._open(self._partial)

    def _open(self, path: str) -> IO[bytes]:
        try:
            return open(path, "wb")
        except OSError as exc:
            raise CommandError(EXIT_ERROR, f"cannot write {self.target}: {exc.strerror or exc}") from None

    def write(self, chunk: bytes, sample_rate: int) -> None:
        """Append a float32 LE chunk of the stream at ``sample_rate``.

        Raises:
            BrokenPipeError: The reader of stdout went away.
            CommandError: The target cannot be written.
        """
        assert self._handle is not None
        samples = self._samples.take(chunk)
        with self._writing():
            if self.kind == "mp3":
                if self._mp3 is None:
                    factory = self._mp3_factory or _mp3_encoder_factory()
                    if factory is None:
                        raise CommandError(EXIT_USAGE, f"MP3 output needs the mp3 extra: {MP3_EXTRA}")
                    self._mp3 = factory(sample_rate)
                    self._handle.write(self._mp3.header())
                self._handle.write(self._mp3.feed(samples))
            else:
                assert self.sample_format is not None
                data = _encode_pcm(samples, self.sample_format)
                if self.kind == "wav":
                    if self._wav is None:
                        self._wav = WavWriter(self._handle, self.sample_format)
                        self._wav.start(sample_rate)
                    self._wav.write(data)
                else:
                    self._handle.write(data)
                    if self.stdout:
                        # Low latency for players reading the pipe.
                        self._handle.flush()
        self.frames += len(samples)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            yield
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise CommandError(EXIT_ERROR, f"cannot write {self.target}: {exc.strerror or exc}") from None

    def finish(self) -> None:
        """Complete the output: flush the encoder, patch the WAV header, move the file into place.

        Raises:
            CommandError: The stream ended inside a sample, or the target cannot be written.
        """
        if self._handle is None:
            return
        if self._samples.leftover:
            raise CommandError(
                EXIT_API, f"the audio stream ended inside a sample ({self._samples.leftover} stray bytes)"
            )
        with self._writing():
            if self._mp3 is not None:
                self._handle.write(self._mp3.finish())
            if self._wav is not None:
                self._wav.close()
            if self.stdout:
                self._handle.flush()
                return
            self._handle.close()
            if self._partial is not None:
                self._move_into_place(self._partial)
                self._partial = None

    def _move_into_place(self, partial: str) -> None:
        if not self.no_clobber:
            os.replace(partial, self.target)
            return
        # A hard link fails if the name was taken meanwhile; os.replace would silently clobber.
        try:
            os.link(partial, self.target)
        except FileExistsError:
            raise CommandError(EXIT_ERROR, f"{self.target} exists; not replacing it (--no-clobber)") from None
        except OSError:
            # No hard links on this file system: check once more, then rename.
            if os.path.exists(self.target):
                raise CommandError(EXIT_ERROR, f"{self.target} exists; not replacing it (--no-clobber)") from None
            os.replace(partial, self.target)
            return
        os.unlink(partial)

    def abandon(self) -> None:
        """Drop what a failed run wrote (the previous file of that name, if any, stays intact)."""
        if self._handle is None or self.stdout:
            return
        with contextlib.suppress(OSError):
            self._handle.close()
        if self._partial is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._partial)
            self._partial = None
