"""Build script: compiles the Cython streaming core unless told not to, degrading to pure Python."""

import os
import platform
import sys

from setuptools import Extension, setup

_TRUE_VALUES = {"1", "true", "yes", "on"}


def _flag(name):
    # Same truthiness rule as cartesia/_compat.py: only 1/true/yes/on count as set.
    return os.environ.get(name, "").strip().lower() in _TRUE_VALUES


NO_EXTENSIONS = _flag("CARTESIA_NO_EXTENSIONS")
# Release builds carry no debug info (2.6 MB -> ~0.4 MB on Linux); CARTESIA_DEBUG_BUILD=1 keeps it.
DEBUG_BUILD = _flag("CARTESIA_DEBUG_BUILD")
REQUIRE = _flag("CARTESIA_REQUIRE_EXTENSIONS") or os.environ.get("CIBUILDWHEEL") == "1"
if NO_EXTENSIONS and REQUIRE:
    raise RuntimeError("CARTESIA_NO_EXTENSIONS and CARTESIA_REQUIRE_EXTENSIONS cannot both be set")


def _compile_args():
    if sys.platform == "win32":
        return []  # MSVC keeps debug info in a separate .pdb, never in the .pyd
    # Later flags win: -g0 overrides the -g that Python's own CFLAGS carry.
    return ["-O3", "-g"] if DEBUG_BUILD else ["-O3", "-g0"]


def _extensions():
    if NO_EXTENSIONS:
        return []
    reasons = []
    if platform.python_implementation() != "CPython":
        reasons.append("not CPython")
    try:
        from Cython.Build import cythonize
    except ImportError:
        reasons.append("Cython is not installed")
    if reasons:
        if REQUIRE:
            raise RuntimeError("compiled core required but cannot be built: " + "; ".join(reasons))
        return []
    ext = Extension(
        "cartesia._stream_c",
        sources=["src_ext/cartesia/_stream_c.pyx", "src_ext/cartesia/b64simd.c"],
        include_dirs=["src_ext/cartesia"],
        extra_compile_args=_compile_args(),
        # Linux: also drop the static symbol table (the exported PyInit_ symbol stays in .dynsym).
        extra_link_args=["-Wl,-s"] if sys.platform.startswith("linux") and not DEBUG_BUILD else [],
    )
    modules = cythonize(
        [ext],
        include_path=["src_ext"],
        compiler_directives={"language_level": 3, "embedsignature": True, "binding": True},
    )
    # cythonize() rebuilds the Extension objects and drops `optional`; set it on what it returns.
    for module in modules:
        module.optional = not REQUIRE
    return modules


ext_modules = _extensions()
print(
    "*** cartesia: " + ("Accelerated build" if ext_modules else "Pure Python build") + " ***",
    file=sys.stderr,
)
setup(ext_modules=ext_modules)
