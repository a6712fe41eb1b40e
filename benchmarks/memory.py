"""Peak resident memory of this process (Linux /proc), resettable so one step can be measured alone."""

from __future__ import annotations

import re
import resource
import sys
from typing import Callable, Tuple, TypeVar

T = TypeVar("T")


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        m = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M)
    if m is None:  # pragma: no cover - not Linux
        raise OSError(f"/proc/self/status has no {field}")
    return int(m.group(1))


def rss_bytes() -> int:
    """Current resident set size."""
    return _status_kib("VmRSS") * 1024


def peak_rss_bytes() -> int:
    """Peak resident set size since start or since the last ``reset_peak_rss()``."""
    try:
        return _status_kib("VmHWM") * 1024
    except OSError:  # pragma: no cover - not Linux
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:  # pragma: no cover - not Linux or no permission
        return False


def measure_peak(fn: Callable[[], T]) -> Tuple[T, int]:
    """Run ``fn`` and return its result and how far RSS rose above where it started."""
    reset_peak_rss()
    before = rss_bytes()
    result = fn()
    return result, peak_rss_bytes() - before
