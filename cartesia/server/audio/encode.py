"""Byte-exact sample encoders and the per-generation stream encoder (resample, then contain).

Sample rules (float32 samples in -1..1 in, bytes out):

* ``pcm_f32le``: the samples clipped to -1..1, as IEEE-754 float32 little-endian (in-range
  samples pass through bit for bit).
* ``pcm_s16le``: ``clip(rint(x * 32768), -32768, 32767)`` as int16 little-endian, ``rint``
  rounding half to even. It is the inverse of the client's decoding ``q / 32768``: every
  decoded sample is within 1/65536 of ``x`` except ``x >= 32767.5/32768``, which saturates.
* ``pcm_mulaw`` / ``pcm_alaw``: G.711 (ITU-T G.711 Tables 1 and 2) of that int16 value, with
  the reference (CCITT/Sun, CPython ``audioop``) mapping of 16-bit input onto G.711's 14-bit
  (mu-law) and 13-bit (A-law) scales: arithmetic shift right by 2 or 3; a negative mu-law
  value's magnitude is ``-(v >> 2)`` and a negative A-law value's ``-(v >> 3) - 1``.
  mu-law inverts all bits, A-law the even bits (``0x55``); the sign bit is 1 for positive.

WAV (``container: wav``, ``/tts/bytes`` only): a RIFF/WAVE header with one ``fmt `` chunk
(format 1 PCM for ``pcm_s16le``; 3 IEEE float, 6 A-law or 7 mu-law with ``cbSize = 0`` and a
``fact`` chunk for the others), mono, then a ``data`` chunk whose body is the encoded samples.
When the encoder is told the total source length the size fields are exact; when streaming an
unknown length, the RIFF size, ``fact`` sample count and ``data`` size are ``0xFFFFFFFF``
("as long as the stream", the usual convention for piped WAV that readers honour by reading
to the end).
"""

from __future__ import annotations

import math
import struct
from typing import TYPE_CHECKING, Dict, Optional

import numpy as np
import numpy.typing as npt

from ..engines.resample import Resampler
from .formats import MP3_HINT, FormatError, OutputFormat

if TYPE_CHECKING:
    import lameenc

__all__ = ["encode_pcm", "to_int16", "wav_header", "StreamEncoder", "UNKNOWN_SIZE"]

#: Size field written when a streamed WAV's length is not known up front.
UNKNOWN_SIZE = 0xFFFFFFFF
# WAVE format tags.
_WAVE_TAG = {"pcm_s16le": 1, "pcm_f32le": 3, "pcm_alaw": 6, "pcm_mulaw": 7}


def to_int16(samples: np.ndarray) -> np.ndarray:
    """``clip(rint(x * 32768), -32768, 32767)`` as little-endian int16 (see the module rules)."""
    x = np.asarray(samples, dtype=np.float64) * 32768.0
    np.clip(x, -32768.0, 32767.0, out=x)
    return np.rint(x).astype("<i2")


def _ulaw_table() -> npt.NDArray[np.uint8]:
    v = np.arange(-32768, 32768, dtype=np.int32) >> 2  # 14-bit scale
    neg = v < 0
    # The 14-bit magnitude clips at 8158 (the top of segment 7 once biased by 33).
    mag = np.minimum(np.where(neg, -v, v), 8158) + 33
    seg = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), mag)
    code = (seg << 4) | ((mag >> (seg + 1)) & 0xF)
    return (code ^ np.where(neg, 0x7F, 0xFF)).astype(np.uint8)


def _alaw_table() -> npt.NDArray[np.uint8]:
    v = np.arange(-32768, 32768, dtype=np.int32) >> 3  # 13-bit scale
    neg = v < 0
    mag = np.where(neg, -v - 1, v)
    seg = np.searchsorted(np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]), mag)
    # Segments 0 and 1 share a step of 2; segment s >= 2 has a step of 2**s.
    quant = (mag >> np.maximum(seg, 1)) & 0xF
    code = (seg << 4) | quant
    return (code ^ np.where(neg, 0x55, 0xD5)).astype(np.uint8)


# Indexed by int16 value + 32768: one lookup per sample.
_G711: Dict[str, npt.NDArray[np.uint8]] = {"pcm_mulaw": _ulaw_table(), "pcm_alaw": _alaw_table()}


def encode_pcm(samples: np.ndarray, encoding: str) -> bytes:
    """Encode float samples (-1..1) as ``encoding`` (rules in the module docstring).

    Args:
        samples: 1-D float array.
        encoding: ``pcm_f32le``, ``pcm_s16le``, ``pcm_mulaw`` or ``pcm_alaw``.

    Raises:
        ValueError: Unknown encoding.
    """
    if encoding == "pcm_f32le":
        x: npt.NDArray[np.float32] = np.asarray(samples, dtype="<f4")
        return np.clip(x, -1.0, 1.0).astype("<f4", copy=False).tobytes()
    if encoding == "pcm_s16le":
        return to_int16(samples).tobytes()
    table = _G711.get(encoding)
    if table is None:
        raise ValueError(f"unknown encoding {encoding!r}")
    return table[to_int16(samples).astype(np.int32) + 32768].tobytes()


def wav_header(encoding: str, sample_rate: int, frames: Optional[int] = None) -> bytes:
    """A mono RIFF/WAVE header for ``encoding`` at ``sample_rate`` (layout in the module docstring).

    Args:
        encoding: One of the PCM encodings.
        sample_rate: Hz.
        frames: Samples in the data chunk, or ``None`` when streaming an unknown length.
    """
    tag = _WAVE_TAG[encoding]
    width = {1: 2, 3: 4, 6: 1, 7: 1}[tag]
    fmt = struct.pack("<HHIIHH", tag, 1, sample_rate, sample_rate * width, width, 8 * width)
    extra = b""
    if tag != 1:
        # Non-PCM formats carry cbSize and a fact chunk (the sample count).
        fmt += struct.pack("<H", 0)
        count = UNKNOWN_SIZE if frames is None else frames
        extra = b"fact" + struct.pack("<II", 4, count)
    data_size = UNKNOWN_SIZE if frames is None else frames * width
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra
    riff_size = UNKNOWN_SIZE if frames is None else 4 + len(chunks) + 8 + data_size
    if riff_size != UNKNOWN_SIZE and riff_size > 0xFFFFFFFE:
        raise ValueError("audio too long for a WAV file")
    return b"RIFF" + struct.pack("<I", riff_size) + b"WAVE" + chunks + b"data" + struct.pack("<I", data_size)


class StreamEncoder:
    """Turns one generation's samples into container bytes, block by block.

    The output does not depend on how the input is split into :meth:`feed` calls: the
    resampler is stateful (:class:`~cartesia.server.engines.resample.Resampler`) and the PCM
    encoders work sample by sample (MP3 frames are cut by LAME from its own buffer).

    Args:
        fmt: The validated output format.
        source_rate: Rate of the samples given to :meth:`feed` (the engine's 44100).
        total_source_samples: When known (the generation is rendered before it is sent), WAV
            size fields are exact; otherwise they say "unknown" (``0xFFFFFFFF``).
    """

    def __init__(
        self, fmt: OutputFormat, source_rate: int, *, total_source_samples: Optional[int] = None
    ) -> None:
        self.fmt = fmt
        self.source_rate = source_rate
        g = math.gcd(fmt.sample_rate, source_rate)
        self._resampler: Optional[Resampler] = None
        if fmt.sample_rate != source_rate:
            self._resampler = Resampler(fmt.sample_rate // g, source_rate // g)
        self._total = total_source_samples
        self._mp3 = _mp3_encoder(fmt) if fmt.container == "mp3" else None
        self._finished = False

    def output_samples(self, source_samples: int) -> int:
        """Samples at the output rate that ``source_samples`` input samples become."""
        if self._resampler is None:
            return source_samples
        return self._resampler.output_length(source_samples)

    def header(self) -> bytes:
        """Bytes before the first audio: a WAV header, or ``b""`` for ``raw`` and ``mp3``."""
        if self.fmt.container != "wav":
            return b""
        frames = None if self._total is None else self.output_samples(self._total)
        assert self.fmt.encoding is not None
        return wav_header(self.fmt.encoding, self.fmt.sample_rate, frames)

    def feed(self, samples: np.ndarray) -> bytes:
        """Encode the next block of float32 mono samples at ``source_rate``.

        Raises:
            RuntimeError: After :meth:`finish`.
        """
        if self._finished:
            raise RuntimeError("StreamEncoder.feed() after finish()")
        x = samples if self._resampler is None else self._resampler.feed(samples)
        return self._encode(x)

    def finish(self) -> bytes:
        """The resampler's tail and, for MP3, the last frames (``b""`` when called again)."""
        if self._finished:
            return b""
        self._finished = True
        out = b""
        if self._resampler is not None:
            out = self._encode(self._resampler.finish())
        if self._mp3 is not None:
            out += bytes(self._mp3.flush())
        return out

    def _encode(self, x: np.ndarray) -> bytes:
        if len(x) == 0:
            return b""
        if self._mp3 is not None:
            return bytes(self._mp3.encode(to_int16(x).tobytes()))
        assert self.fmt.encoding is not None
        return encode_pcm(x, self.fmt.encoding)


def _mp3_encoder(fmt: OutputFormat) -> lameenc.Encoder:
    try:
        import lameenc
    except ImportError as exc:  # parse_output_format checks first; this is the backstop
        raise FormatError(f"output_format.container 'mp3' needs the MP3 encoder: {MP3_HINT}") from exc
    enc = lameenc.Encoder()
    enc.set_channels(1)
    enc.set_in_sample_rate(fmt.sample_rate)
    # Without this LAME picks a lower output rate for low bit rates.
    enc.set_out_sample_rate(fmt.sample_rate)
    enc.set_bit_rate((fmt.bit_rate or 128000) // 1000)
    enc.set_quality(2)
    return enc
