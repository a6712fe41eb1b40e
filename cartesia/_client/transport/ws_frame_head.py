"""The header of one websocket frame in a read (RFC 6455 section 5.2), for the frame prefilters."""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

__all__ = ["FIN_BINARY", "FIN_TEXT", "FrameCut", "frame_head"]

FIN_TEXT, FIN_BINARY = 0x81, 0x82  # first header byte: FIN=1, RSV=0, text / binary


def frame_head(data: bytes, pos: int) -> Optional[Tuple[int, int, int, int]]:
    """The first two bytes, the payload length and the header length of the frame at ``pos``.

    None when the read ends inside the header (the caller keeps ``data[pos:]`` for the next
    read). The mask key, if any, is not counted in the header length.
    """
    n = len(data)
    if n - pos < 2:
        return None
    b0, b1 = data[pos], data[pos + 1]
    size, hdr = b1 & 0x7F, 2
    if size > 125:
        hdr = 4 if size == 126 else 10
        if n - pos < hdr:
            return None
        size = int.from_bytes(data[pos + 2 : pos + hdr], "big")
    return b0, b1, size, hdr


class FrameCut:
    """Where a frame prefilter stands between two reads (the state both prefilters keep)."""

    def __init__(self) -> None:
        self._head = b""  # an incomplete frame header (fewer bytes than its length field needs)
        self._part_head = b""  # the header of the simple frame being completed ...
        self._pieces: List[Any] = []  # ... its payload so far (views of the reads) ...
        self._need = 0  # ... and how many bytes of it are still missing
        self._slow_left = 0  # bytes of the library's current frame still to hand it

    def _pending(self) -> bytes:
        """What was read but not yet handed on: an incomplete header or simple frame."""
        if self._need:
            data = self._part_head + b"".join(self._pieces)
            self._part_head, self._pieces, self._need = b"", [], 0
            return data
        data, self._head = self._head, b""
        return data
