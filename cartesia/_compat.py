"""Decides, once, whether the compiled core may or must be used (no twin imports here)."""

import os
import platform

_TRUE_VALUES = frozenset({"1", "true", "yes", "on"})


def env_flag(name: str) -> bool:
    """Return True when the environment variable ``name`` is set to 1/true/yes/on.

    Empty, ``0`` and any other value count as unset, so ``VAR=0`` never switches a feature on.
    """
    return os.environ.get(name, "").strip().lower() in _TRUE_VALUES


IS_CPYTHON = platform.python_implementation() == "CPython"
#: Use the pure-Python twin even where the compiled core is available.
NO_EXTENSIONS = env_flag("CARTESIA_NO_EXTENSIONS") or not IS_CPYTHON
#: Treat a missing compiled core as an import error instead of falling back.
REQUIRE_EXTENSIONS = env_flag("CARTESIA_REQUIRE_EXTENSIONS")
