"""Prints one `name==version` line per runtime and test requirement of the installed cartesia, at its lower bound."""

from __future__ import annotations

import importlib.metadata
import sys

from packaging.requirements import Requirement
from packaging.version import Version

# The extras whose lower bounds CI tests besides the runtime dependencies.
EXTRAS = ("", "test")


def lowest_pins(dist: str = "cartesia") -> list[str]:
    """Return the pins, or exit with the requirements that declare no lower bound."""
    pins, unbounded = [], []
    for text in importlib.metadata.requires(dist) or []:
        req = Requirement(text)
        if req.marker is not None and not any(req.marker.evaluate({"extra": extra}) for extra in EXTRAS):
            continue  # another extra (speech, mp3, lint, ...) or another platform
        lows = [Version(spec.version) for spec in req.specifier if spec.operator in (">=", "~=", "==")]
        if not lows:
            unbounded.append(text)
            continue
        pins.append(f"{req.name}=={max(lows)}")
    if unbounded:
        sys.exit("requirements without a lower bound (CI cannot test them): " + ", ".join(unbounded))
    return pins


if __name__ == "__main__":
    print("\n".join(lowest_pins()))
