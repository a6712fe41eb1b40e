"""Pytest plugin: the real local server on ephemeral loopback ports, and the official 0.0.5 client.

Fixtures:
    local_server: session-wide ``LocalServer`` (tone engine, pace none).
    server_faults: ``local_server.faults``, cleared after the test.
    make_server: factory ``make_server(**LocalServer kwargs)``; servers stop at teardown.
    speech_server: session-wide ``LocalServer`` with the espeak-ng speech engine.
    seed_client_path: directory holding the official ``cartesia==0.0.5`` and its dependencies,
        to put on ``PYTHONPATH`` of a subprocess (installed once from PyPI, then cached).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator, List

import pytest

from cartesia.server import LocalServer

#: The working directory of every test subprocess that runs ``python -m`` or ``-c``: never the
#: checkout. Those put the working directory first on ``sys.path``, so the checkout's ``cartesia/``
#: (without the compiled core when CI tests an installed copy) would shadow the package under test.
OUTSIDE_CHECKOUT = tempfile.gettempdir()
#: Seconds a loaded CI machine may add to a "raised within" bound. Such a bound only says that the
#: call did not hang: which limit fired is told by the exception's type. A limit that never fired
#: still fails the test: the stall it injects outlasts bound + slack, or the call would end without
#: the exception.
LOAD_SLACK = 3.0

SEED_VERSION = "0.0.5"
# pip resolves the official client's own requirements (aiohttp, httpx, requests, websockets,
# pytest-asyncio) from its metadata.
SEED_REQUIREMENTS = [f"cartesia=={SEED_VERSION}"]


@pytest.fixture(scope="session")
def local_server() -> Iterator[LocalServer]:
    """The shared local server: tone engine (bit-exact audio), no pacing."""
    with LocalServer(engine="tone", pace="none") as server:
        yield server


@pytest.fixture
def server_faults(local_server: LocalServer) -> Iterator:
    """The shared server's fault controller; every fault left over is cleared after the test."""
    local_server.faults.clear()
    yield local_server.faults
    local_server.faults.clear()


@pytest.fixture(autouse=True)
def _local_server_faults_never_leak(request: pytest.FixtureRequest) -> Iterator[None]:
    """Faults a test queued on the shared server (with or without ``server_faults``) end with it."""
    yield
    if "local_server" in request.fixturenames:
        request.getfixturevalue("local_server").faults.clear()


@pytest.fixture
def make_server() -> Iterator[Callable[..., LocalServer]]:
    """Start extra servers with any ``LocalServer`` options; all are stopped at teardown."""
    started: List[LocalServer] = []

    def factory(**options) -> LocalServer:
        options.setdefault("engine", "tone")
        server = LocalServer(**options).start()
        started.append(server)
        return server

    yield factory
    for server in reversed(started):
        server.stop()


@pytest.fixture(scope="session")
def speech_server() -> Iterator[LocalServer]:
    """A server with the real espeak-ng speech engine (skipped only if it is not installed)."""
    pytest.importorskip(
        "espeakng_loader", reason="espeakng-loader (the `speech` extra) is not installed"
    )
    with LocalServer(engine="speech", pace="none") as server:
        yield server


def cache_dir(name: str) -> Path:
    """``~/.cache/cartesia-tests/<name>-pyXY`` (``$CARTESIA_TEST_CACHE`` overrides the base)."""
    base = os.environ.get("CARTESIA_TEST_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "cartesia-tests"
    )
    tag = f"py{sys.version_info[0]}{sys.version_info[1]}"
    return Path(base) / f"{name}-{tag}"


def install_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Build a cached directory once, atomically.

    ``build(scratch)`` fills a scratch directory next to ``target`` (it fails the test on
    error); the scratch directory is marked complete and renamed into place, so concurrent or
    interrupted runs never see half an install. Later calls return ``target`` at once.
    """
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=str(target.parent)))
    try:
        build(scratch)
        (scratch / ".complete").write_text(target.name)
        try:
            scratch.rename(target)
        except OSError:
            # Another run finished first (or a stale partial directory is in the way).
            if not (target / ".complete").exists():
                shutil.rmtree(target, ignore_errors=True)
                scratch.rename(target)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return target


def pip_install_target(target: Path, requirements: List[str], what: str) -> None:
    """``pip install --target`` from PyPI; a failure fails the test (the check must not vanish)."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        "--target",
        str(target),
        *requirements,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(
            f"could not install {what} from PyPI (needed for the compatibility test):\n"
            f"{proc.stdout}\n{proc.stderr}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def seed_client_path() -> Path:
    """A directory with the official cartesia 0.0.5 client, for ``PYTHONPATH`` of subprocesses.

    Installed once with ``pip install --target`` (from PyPI) and reused afterwards; the install
    goes to a scratch directory that is renamed into place, so concurrent or interrupted runs
    never see half an install. A failed install fails the test: the compatibility check must not
    silently disappear.
    """

    def build(scratch: Path) -> None:
        pip_install_target(scratch, SEED_REQUIREMENTS, f"the official cartesia=={SEED_VERSION} client")
        check = subprocess.run(
            [sys.executable, "-S", "-c", "import cartesia.tts, cartesia.version as v; print(v.__version__)"],
            capture_output=True,
            text=True,
            cwd=str(scratch.parent),
            env={**os.environ, "PYTHONPATH": str(scratch)},
        )
        if check.returncode != 0 or check.stdout.strip() != SEED_VERSION:
            pytest.fail(
                f"the freshly installed seed client does not import as cartesia {SEED_VERSION}: "
                f"{check.stdout}{check.stderr}",
                pytrace=False,
            )

    return install_once(cache_dir(f"seed-{SEED_VERSION}"), build)


def split_json_objects(body: bytes) -> list:
    """Parse a v0 ``/audio/stream`` body (JSON objects back to back) into dicts; strict."""
    import json

    text = body.decode("utf-8")
    decoder = json.JSONDecoder()
    out, pos = [], 0
    while pos < len(text):
        obj, pos = decoder.raw_decode(text, pos)
        out.append(obj)
    return out


def audio_of(frames: list) -> bytes:
    """Concatenated decoded audio of v0 frames (HTTP objects or websocket messages)."""
    import base64

    return b"".join(base64.b64decode(f["data"]) for f in frames if f.get("data"))


def _ws_timeout_kwargs() -> dict:
    import aiohttp

    # aiohttp >= 3.11 takes a ClientWSTimeout (and deprecates receive_timeout); older ones don't.
    if hasattr(aiohttp, "ClientWSTimeout"):
        return {"timeout": aiohttp.ClientWSTimeout(ws_receive=10, ws_close=10)}
    return {"receive_timeout": 10}


#: ``session.ws_connect(url, **WS_TIMEOUT)``: a silent server fails a test instead of hanging it.
WS_TIMEOUT = _ws_timeout_kwargs()
