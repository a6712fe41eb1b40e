"""The header of one websocket frame in a read (RFC 6455 section 5.2), for the frame prefilters."""

from __future__ import annotations

from typing import Optional, Tuple

__all__ = ["FIN_BINARY", "FIN_TEXT", "frame_head"]

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
