"""What the numbers ran on: CPU, cores, Python, numpy, base64 kernels, which streaming core."""

from __future__ import annotations

import os
import platform
from typing import Dict


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover - not Linux
        pass
    return platform.processor() or platform.machine()


def machine_info() -> Dict[str, str]:
    """A flat description of this machine and of the libraries the benchmarks depend on."""
    import numpy

    info = {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": numpy.__version__,
    }
    try:
        import pybase64

        info["pybase64"] = pybase64.get_version()
    except ImportError:
        info["pybase64"] = "not installed"
    try:
        from cartesia import _stream_c

        backend = getattr(_stream_c, "b64_backend", None)
        info["cartesia_b64_backend"] = backend() if callable(backend) else "unknown"
    except ImportError as exc:
        info["cartesia_b64_backend"] = f"compiled core missing ({exc})"
    try:
        from cartesia import streaming

        info["cartesia_implementation"] = streaming.IMPLEMENTATION
    except ImportError as exc:  # pragma: no cover - broken checkout
        info["cartesia_implementation"] = f"unavailable ({exc})"
    return info
