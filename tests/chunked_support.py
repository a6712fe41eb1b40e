"""Helpers of the chunked-body tests: a whole body read through ``ChunkedBody``'s reads."""

from __future__ import annotations

from typing import Any


def read_all(body: Any, timeout: float = 5.0) -> bytes:
    """Every byte of ``body`` (a ``ChunkedBody`` or one with its ``read``), each read bounded."""
    out = []
    while True:
        pieces = body.read(timeout)
        if not pieces:
            return b"".join(out)
        out.extend(bytes(p) for p in pieces)
