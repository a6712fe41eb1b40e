"""The audio of a ``/tts/bytes`` body as samples: into a sink as it arrives, or as one numpy array.

Raw PCM goes to the core as is, WAV after its streamed header (:mod:`.wav`); a sample split
across two body chunks is carried over by the core. mp3 is a file, never decoded here.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np

from ..errors import InvalidInputError, StreamFormatError
from ..streaming import AudioBuffer
from .wav import WavFormat, WavStream, wav_payload

__all__ = ["check_sink", "SinkFeeder", "body_to_numpy"]

#: Containers whose audio the core decodes.
PCM_CONTAINERS = ("raw", "wav")


def _container(output_format: Mapping[str, Any], what: str, field: str) -> str:
    container = str(output_format.get("container"))
    if container not in PCM_CONTAINERS:
        raise InvalidInputError(
            f"{what} needs `output_format` container 'raw' or 'wav', not {container[:20]!r} "
            "(mp3 is passed through untouched: use read() or iter_bytes())",
            field=field,
        )
    return container


def check_sink(sink: Any, output_format: Mapping[str, Any]) -> None:
    """Refuse, before any request, a sink that cannot take this format's audio."""
    if sink is None:
        return
    _container(output_format, "`sink`", "sink")
    have, want = getattr(sink, "encoding", None), output_format.get("encoding")
    if have is not None and have != want:
        raise InvalidInputError(
            f"the sink decodes {have!r} but `output_format` asks for {str(want)[:20]!r}", field="sink"
        )


def _check_wav(found: WavFormat, want: Optional[str]) -> None:
    if want is not None and found.encoding != want:
        raise StreamFormatError(f"the server's WAV holds {found.encoding}, not the {want} that was asked for")


def _check_whole(pending: int) -> None:
    if pending:
        raise StreamFormatError(f"The audio stream ended with {pending} byte(s) that do not form a whole sample.")


class SinkFeeder:
    """Puts one body, chunk by chunk, into a ``PCMRing``/``AudioBuffer``.

    Args:
        sink: The sink (checked with :func:`check_sink`).
        output_format: The request's ``output_format`` (``raw`` or ``wav``).
    """

    __slots__ = ("samples", "_sink", "_put", "_wav", "_want")

    def __init__(self, sink: Any, output_format: Mapping[str, Any]) -> None:
        self._sink = sink
        self._put = sink.append if hasattr(sink, "append") else sink.write
        self._wav = WavStream() if _container(output_format, "`sink`", "sink") == "wav" else None
        self._want = output_format.get("encoding")
        #: Samples written so far.
        self.samples = 0

    def feed(self, data: bytes) -> None:
        wav = self._wav
        if wav is not None:
            payload = wav.feed(data)
            if not payload:
                return
            if wav.format is not None and self._want is not None:
                _check_wav(wav.format, str(self._want))
                self._want = None  # checked once
            data = payload
        self.samples += int(self._put(data))

    def close(self) -> None:
        """The body ended: raise if its header never completed or it ended inside a sample."""
        if self._wav is not None:
            self._wav.close()
        _check_whole(int(getattr(self._sink, "pending_bytes", 0)))


def body_to_numpy(body: bytes, output_format: Mapping[str, Any]) -> np.ndarray:
    """A whole ``raw`` or ``wav`` body as float32 samples in [-1, 1] (decoded by the core)."""
    encoding = output_format.get("encoding", "pcm_f32le")
    if _container(output_format, "numpy output", "output_format") == "wav":
        found, body = wav_payload(body)
        _check_wav(found, encoding)
    buf = AudioBuffer(encoding=str(encoding))
    buf.append(body)
    _check_whole(buf.pending_bytes)
    return buf.to_numpy()
