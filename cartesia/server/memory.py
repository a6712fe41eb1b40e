"""Give memory freed by finished generations back to the system (glibc ``malloc_trim``)."""

from __future__ import annotations

import ctypes
import sys
from typing import Any, Optional

__all__ = ["release_freed_memory"]


def _load() -> Optional[Any]:
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library this process already uses
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _load()


def release_freed_memory() -> bool:
    """Return free heap pages to the system; ``False`` where the C library cannot.

    Frames are small allocations made in executor threads, each with its own malloc arena: once
    a burst of generations ends, glibc keeps the freed pages mapped (the resident size stays at
    its peak) until asked to trim them.
    """
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
