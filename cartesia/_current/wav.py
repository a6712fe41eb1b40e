"""Parses a streamed RIFF/WAVE header as it arrives and passes the ``data`` chunk's payload on."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Optional, Tuple

from ..errors import StreamFormatError

__all__ = ["WavFormat", "WavStream", "wav_payload"]

#: (format tag, bits per sample) -> the API's encoding name.
_ENCODINGS = {(1, 16): "pcm_s16le", (3, 32): "pcm_f32le", (6, 8): "pcm_alaw", (7, 8): "pcm_mulaw"}
_EXTENSIBLE = 0xFFFE
# A header this long without a ``data`` chunk is not a header a TTS server sends: refuse it
# rather than buffer an unbounded body that is not audio.
MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class WavFormat:
    """What the ``fmt `` chunk says.

    Attributes:
        encoding: ``pcm_s16le``, ``pcm_f32le``, ``pcm_mulaw`` or ``pcm_alaw``.
        sample_rate: Hz.
        channels: Interleaved channels (the API sends mono).
    """

    encoding: str
    sample_rate: int
    channels: int


def _fmt_chunk(body: bytes) -> WavFormat:
    if len(body) < 16:
        raise StreamFormatError(f"WAV header: the fmt chunk has {len(body)} bytes, fewer than 16")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _EXTENSIBLE:
        # WAVE_FORMAT_EXTENSIBLE: the real tag is the first two bytes of the sub-format GUID.
        if len(body) < 40:
            raise StreamFormatError("WAV header: a WAVE_FORMAT_EXTENSIBLE fmt chunk shorter than 40 bytes")
        (tag,) = struct.unpack_from("<H", body, 24)
    encoding = _ENCODINGS.get((tag, bits))
    if encoding is None:
        raise StreamFormatError(
            f"WAV header: unsupported sample format (format tag {tag}, {bits} bits); supported: "
            "16-bit PCM, 32-bit IEEE float, 8-bit mu-law and A-law"
        )
    if channels < 1 or rate < 1:
        raise StreamFormatError(f"WAV header: {channels} channel(s) at {rate} Hz")
    if block_align != channels * bits // 8:
        raise StreamFormatError(
            f"WAV header: block align {block_align} does not match {channels} channel(s) of {bits} bits"
        )
    return WavFormat(encoding, rate, channels)


class WavStream:
    """Feed it a WAV body in pieces of any size; it returns the audio payload bytes.

    The header's size fields are not trusted (a streaming server writes ``0xFFFFFFFF`` or 0
    there): everything after the ``data`` chunk header is payload until the body ends. Other
    chunks (``fact``, ``LIST``...) before ``data`` are skipped; ``fmt `` must come before it.
    """

    __slots__ = ("format", "_buf", "_in_data")

    def __init__(self) -> None:
        self.format: Optional[WavFormat] = None
        self._buf = bytearray()
        self._in_data = False

    def feed(self, data: bytes) -> bytes:
        """The payload bytes in ``data`` (empty while the header is still coming).

        Raises:
            StreamFormatError: the header is malformed or its sample format unsupported.
        """
        if self._in_data:
            return data
        self._buf += data
        if not self._parse():
            if len(self._buf) > MAX_HEADER_BYTES:
                raise StreamFormatError(f"WAV header: no data chunk in the first {MAX_HEADER_BYTES} bytes")
            return b""
        payload = bytes(self._buf)
        self._buf = bytearray()
        return payload

    def _parse(self) -> bool:
        """Consume the header from the buffer; True once the data chunk's payload begins."""
        buf = self._buf
        if len(buf) < 12:
            if buf[:4] != b"RIFF"[: len(buf)]:
                raise StreamFormatError("not a WAV stream: it does not start with 'RIFF'")
            return False
        if buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
            raise StreamFormatError("not a WAV stream: no RIFF/WAVE header")
        pos = 12
        while len(buf) >= pos + 8:
            chunk_id = bytes(buf[pos : pos + 4])
            (size,) = struct.unpack_from("<I", buf, pos + 4)
            if chunk_id == b"data":
                if self.format is None:
                    raise StreamFormatError("WAV header: the data chunk comes before the fmt chunk")
                del buf[: pos + 8]
                self._in_data = True
                return True
            if size > MAX_HEADER_BYTES:
                raise StreamFormatError(f"WAV header: a {size}-byte chunk before the audio")
            end = pos + 8 + size + (size & 1)  # chunks are word-aligned
            if len(buf) < end:
                return False
            if chunk_id == b"fmt ":
                self.format = _fmt_chunk(bytes(buf[pos + 8 : pos + 8 + size]))
            pos = end
        return False

    def close(self) -> None:
        """The body ended: raise unless the header was complete."""
        if not self._in_data:
            raise StreamFormatError("the WAV stream ended inside its header (no data chunk)")


def wav_payload(body: bytes) -> Tuple[WavFormat, bytes]:
    """The format and audio payload of a whole WAV body."""
    stream = WavStream()
    payload = stream.feed(body)
    stream.close()
    assert stream.format is not None  # the data chunk is only accepted after fmt
    return stream.format, payload
