"""The official clients as baselines (0.0.5 and 4.2.0): installed by pip, loaded without shadowing ours."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import types
import venv
from pathlib import Path
from typing import Optional

SEED_VERSION = "0.0.5"
SEED_DIR = Path(__file__).resolve().parent / ".seed"
WHEEL_DIR = SEED_DIR / f"cartesia-{SEED_VERSION}"
VENV_DIR = SEED_DIR / "venv"
OFFICIAL_VERSION = "4.2.0"
OFFICIAL_VENV_DIR = SEED_DIR / f"venv-{OFFICIAL_VERSION}"

# Only these names are taken from the official tts.py; everything else in it (requests, aiohttp,
# httpx, websockets, the retry decorators) is never executed, so the core benchmark needs none of it.
_SEED_FUNCTIONS = ("update_buffer", "convert_response")
_STDLIB_IMPORTS = {"base64", "json", "typing"}


def _pip(python: str, *args: str) -> None:
    subprocess.run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q", *args], check=True)


def seed_source_dir() -> Path:
    """Directory holding the official ``cartesia`` package (installs ``cartesia==0.0.5`` once, cached).

    ``CARTESIA_BENCH_SEED_DIR`` overrides it (a directory that contains ``cartesia/tts.py``).
    """
    override = os.environ.get("CARTESIA_BENCH_SEED_DIR")
    if override:
        return Path(override)
    if not (WHEEL_DIR / "cartesia" / "tts.py").exists():
        _pip(sys.executable, "--no-deps", "--target", str(WHEEL_DIR), f"cartesia=={SEED_VERSION}")
    return WHEEL_DIR


def load_seed_functions() -> types.ModuleType:
    """``update_buffer`` and ``convert_response`` of the official 0.0.5 ``tts.py``, run unmodified.

    The module is compiled from the installed file itself; only its stdlib imports and the two
    function definitions are executed, in a module named ``cartesia_seed_005`` so our ``cartesia``
    is never shadowed.
    """
    path = seed_source_dir() / "cartesia" / "tts.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    keep = []
    for node in tree.body:
        if isinstance(node, ast.Import) and all(a.name in _STDLIB_IMPORTS for a in node.names):
            keep.append(node)
        elif isinstance(node, ast.ImportFrom) and node.module in _STDLIB_IMPORTS:
            keep.append(node)
        elif isinstance(node, ast.FunctionDef) and node.name in _SEED_FUNCTIONS:
            keep.append(node)
    found = {n.name for n in keep if isinstance(n, ast.FunctionDef)}
    if found != set(_SEED_FUNCTIONS):
        raise RuntimeError(f"{path} lacks {set(_SEED_FUNCTIONS) - found}: not the 0.0.5 client?")
    mod = types.ModuleType("cartesia_seed_005")
    mod.__file__ = str(path)
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(path), "exec"), mod.__dict__)
    return mod


def cached_venv(directory: Path, requirement: str, override_var: str) -> str:
    """Python of a venv at ``directory`` holding ``requirement`` and its dependencies (created once).

    The environment variable ``override_var`` names an interpreter to use instead.
    """
    override = os.environ.get(override_var)
    if override:
        return override
    python = directory / "bin" / "python"
    if not (directory / ".cartesia-seed-ok").exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(directory)
        _pip(str(python), requirement)
        (directory / ".cartesia-seed-ok").write_text(requirement)
    return str(python)


def seed_python() -> str:
    """Python of a venv holding the official client and its dependencies (created once, cached).

    ``CARTESIA_BENCH_SEED_PYTHON`` overrides it (any interpreter where ``import cartesia`` gives 0.0.5).
    """
    return cached_venv(VENV_DIR, f"cartesia=={SEED_VERSION}", "CARTESIA_BENCH_SEED_PYTHON")


def official_python() -> str:
    """Python of a venv holding the official ``cartesia[websockets]==4.2.0`` (created once, cached).

    ``CARTESIA_BENCH_OFFICIAL_PYTHON`` overrides it; the test suite's cached copy
    (``tests/official_420.py``) is reused when it is complete.
    """
    if not os.environ.get("CARTESIA_BENCH_OFFICIAL_PYTHON"):
        home_cache = os.path.join(os.path.expanduser("~"), ".cache", "cartesia-tests")
        base = os.environ.get("CARTESIA_TEST_CACHE") or home_cache
        tests_copy = Path(base) / f"official-{OFFICIAL_VERSION}-py{sys.version_info[0]}{sys.version_info[1]}"
        if (tests_copy / ".complete").exists():
            return str(tests_copy / "venv" / "bin" / "python")
    return cached_venv(OFFICIAL_VENV_DIR, f"cartesia[websockets]=={OFFICIAL_VERSION}", "CARTESIA_BENCH_OFFICIAL_PYTHON")


def ensure_all(verbose: Optional[bool] = True) -> None:
    """Install both forms of the seed up front (used by the report's ``--run``)."""
    d = seed_source_dir()
    p = seed_python()
    o = official_python()
    if verbose:
        print(f"seed 0.0.5 sources: {d}\nseed 0.0.5 python:  {p}\nofficial 4.2.0 python: {o}", file=sys.stderr)


if __name__ == "__main__":
    ensure_all()
