"""The official cartesia 4.2.0 client from PyPI (a cached venv plus its sdist's examples), and a
``cartesia serve --tls`` subprocess for it to talk to."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import select
import signal
import subprocess
import sys
import tarfile
import threading
import venv
from collections import deque
from pathlib import Path
from typing import IO, Deque, Dict, Iterator, List, Optional

import pytest
from server_fixtures import OUTSIDE_CHECKOUT, cache_dir, install_once

OFFICIAL_VERSION = "4.2.0"
# The websocket helper needs the `websockets` extra; the examples need nothing else.
REQUIREMENT = f"cartesia[websockets]=={OFFICIAL_VERSION}"
EXAMPLE_FILES = ("examples.py", "async_examples.py")
API_KEY = "official-420-key"
_READY = re.compile(r"^listening on https://localhost:(\d+)$")


@dataclasses.dataclass(frozen=True)
class OfficialClient:
    """An installed official client: its interpreter and the sdist's example scripts."""

    root: Path

    @property
    def python(self) -> Path:
        return self.root / "venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")

    def example(self, name: str) -> Path:
        return self.root / "examples" / name


def _run(cmd: List[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kwargs)
    if proc.returncode != 0:
        pytest.fail(f"{what} failed:\n{proc.stdout}\n{proc.stderr}", pytrace=False)
    return proc


def _build(scratch: Path) -> None:
    """A venv with the official client from PyPI, and the examples from its sdist."""
    venv.EnvBuilder(with_pip=True, clear=True).create(str(scratch / "venv"))
    client = OfficialClient(scratch)
    pip = [str(client.python), "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run([*pip, "install", "--quiet", REQUIREMENT], f"installing {REQUIREMENT} from PyPI")
    sdist = scratch / "sdist"
    _run(
        [
            *pip,
            "download",
            "--quiet",
            "--no-binary",
            ":all:",
            "--no-deps",
            "-d",
            str(sdist),
            f"cartesia=={OFFICIAL_VERSION}",
        ],
        f"downloading the cartesia {OFFICIAL_VERSION} sdist",
    )
    (archive,) = sdist.glob("cartesia-*.tar.gz")
    (scratch / "examples").mkdir()
    with tarfile.open(archive) as tar:
        for name in EXAMPLE_FILES:
            # Read the two files by name only: nothing else of the archive touches the disk.
            member = tar.getmember(f"cartesia-{OFFICIAL_VERSION}/examples/{name}")
            data = tar.extractfile(member)
            assert data is not None, name
            client.example(name).write_bytes(data.read())
    check = _run(
        [str(client.python), "-c", "import cartesia, websockets; print(cartesia.__version__)"],
        "importing the installed official client",
        cwd=str(scratch.parent),
        env=clean_env(),
    )
    if check.stdout.strip() != OFFICIAL_VERSION:
        pytest.fail(f"installed client reports {check.stdout.strip()!r}", pytrace=False)


def official_client() -> OfficialClient:
    """The cached official client (installed from PyPI on first use)."""
    return OfficialClient(install_once(cache_dir(f"official-{OFFICIAL_VERSION}"), _build))


def clean_env(**extra: str) -> Dict[str, str]:
    """The environment without our Python or Cartesia settings, plus ``extra``."""
    drop = ("PYTHON", "CARTESIA_", "SSL_CERT_", "REQUESTS_CA_BUNDLE", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    return env


class PipeDrain:
    """Reads a subprocess pipe to its end in a thread, keeping the last lines.

    A pipe nobody reads fills after 64 KiB, and then the server blocks in its next log write:
    every client after that times out (a websocket handshake, a response)."""

    def __init__(self, name: str, pipe: IO[str], keep: int = 200) -> None:
        self.name = name
        self.lines: Deque[str] = deque(maxlen=keep)
        self.chars = 0
        self._thread = threading.Thread(target=self._drain, args=(pipe,), daemon=True)
        self._thread.start()

    def _drain(self, pipe: IO[str]) -> None:
        for line in pipe:
            self.chars += len(line)
            self.lines.append(line)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def tail(self) -> str:
        return "".join(list(self.lines))


@dataclasses.dataclass
class TLSServer:
    """A ``cartesia serve --tls`` subprocess."""

    proc: subprocess.Popen
    port: int
    ca: Path
    logs: List[PipeDrain] = dataclasses.field(default_factory=list)

    def log_tail(self) -> str:
        """The last lines the server wrote (stdout, then stderr), for a failure's message."""
        return "".join(f"\n--- cartesia serve --tls, {d.name}, last lines ---\n{d.tail()}" for d in self.logs)

    @property
    def base_url(self) -> str:
        return f"https://localhost:{self.port}"

    def env(self) -> Dict[str, str]:
        """What an unchanged 4.2.0 app needs to reach this server."""
        return clean_env(
            CARTESIA_BASE_URL=self.base_url,
            SSL_CERT_FILE=str(self.ca),
            CARTESIA_API_KEY=API_KEY,
        )


@contextlib.contextmanager
def serve_tls(ca: Path, *args: str) -> Iterator[TLSServer]:
    """Run ``cartesia serve --tls --engine tone`` on an ephemeral port until the generator ends."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cartesia.server",
            "--tls",
            "--port",
            "0",
            "--engine",
            "tone",
            "--ca-out",
            str(ca),
            "--api-key",
            API_KEY,
            *args,
        ],
        cwd=OUTSIDE_CHECKOUT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    drains: List[PipeDrain] = []
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        line = proc.stdout.readline().rstrip("\n") if ready else ""
        match = _READY.match(line)
        if not match:
            proc.kill()
            _, err = proc.communicate(timeout=10)
            pytest.fail(f"cartesia serve --tls did not start: {line!r}\n{err}", pytrace=False)
        drains = [PipeDrain("stdout", proc.stdout), PipeDrain("stderr", proc.stderr)]
        yield TLSServer(proc, int(match.group(1)), ca, drains)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if drains:
            proc.wait(timeout=10)
            for drain in drains:
                drain.join(10)
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
        else:
            proc.communicate(timeout=10)


@dataclasses.dataclass
class ExampleRun:
    """One ``python <file> <function> [args]`` run of an official example."""

    returncode: int
    stdout: str
    stderr: str
    cwd: Path

    def outputs(self, pattern: str) -> List[Path]:
        return sorted(self.cwd.glob(pattern))


def run_example(
    client: OfficialClient,
    server: TLSServer,
    file: str,
    function: str,
    *args: str,
    cwd: Path,
    timeout: float = 90,
    env: Optional[Dict[str, str]] = None,
) -> ExampleRun:
    """Run one example function in ``cwd`` (its output files land there), bounded by ``timeout``."""
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [str(client.python), str(client.example(file)), function, *args],
        cwd=str(cwd),
        env=server.env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    stderr = proc.stderr if proc.returncode == 0 else proc.stderr + server.log_tail()
    return ExampleRun(proc.returncode, proc.stdout, stderr, cwd)


def example_functions(path: Path) -> List[str]:
    """The example functions a file offers (what its own ``__main__`` lists)."""
    import ast

    tree = ast.parse(path.read_text())
    names = [
        node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    # examples.py leaves its client factory out of its own listing; so do we.
    return [n for n in names if n != "create_client"]


def first_match(pattern: str, text: str) -> Optional[str]:
    match = re.search(pattern, text)
    return match.group(1) if match else None


RUNNER = Path(__file__).with_name("official_420_runner.py")
#: The timestamp the examples put in their file names (``%Y%m%d_%H%M%S``).
_STAMP = re.compile(r"_\d{8}_\d{6}(?=\.)")


@dataclasses.dataclass
class BatchRun:
    """Many example functions run in one process (``official_420_runner.py``), each in its own directory."""

    out: Path
    #: Per function: None when it returned, else the exception's text.
    results: Dict[str, Optional[str]]
    #: The ``__init__.py`` of the ``cartesia`` package that ran.
    package: Path

    def files(self, function: str) -> Dict[str, bytes]:
        """What ``function`` wrote, by file name without the examples' timestamp."""
        return {
            _STAMP.sub("", path.name): path.read_bytes()
            for path in sorted((self.out / function).iterdir())
            if path.is_file()
        }

    def stdout(self, function: str) -> str:
        return (self.out / f"{function}.out").read_text()


def run_examples_batch(
    python: Path,
    client: OfficialClient,
    server: TLSServer,
    file: str,
    functions: List[str],
    out: Path,
    timeout: float = 600,
) -> BatchRun:
    """Run ``functions`` of example ``file`` with the interpreter ``python`` (the official client's,
    or ours), all in one subprocess; each function's files land in ``out/FUNCTION``."""
    out.mkdir(parents=True)
    proc = subprocess.run(
        [str(python), str(RUNNER), str(client.example(file)), str(out), *functions],
        cwd=str(out),
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    results = out / "results.json"
    if proc.returncode != 0 or not results.exists():
        pytest.fail(
            f"{python} {file}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}\n{server.log_tail()}",
            pytrace=False,
        )
    import json

    answer = json.loads(results.read_text())
    return BatchRun(out, answer["functions"], Path(answer["cartesia"]))
