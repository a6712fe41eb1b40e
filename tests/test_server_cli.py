"""``python -m cartesia.server`` in a subprocess: ready line, serving, clean exit on signals."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys

import aiohttp
import httpx
import pytest
from server_fixtures import OUTSIDE_CHECKOUT, WS_TIMEOUT

# A server bug must fail a test, never hang it.
TIMEOUT = aiohttp.ClientTimeout(total=30)

READY = re.compile(r"^listening on http://localhost:(\d+)$")


def start(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "cartesia.server", *args],
        cwd=OUTSIDE_CHECKOUT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def ws_round_trip(port: int, key: str) -> None:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        url = f"ws://localhost:{port}/v0/audio/websocket?api_key={key}"
        async with session.ws_connect(url, **WS_TIMEOUT) as ws:
            await ws.send_json({"context_id": "c", "data": {"transcript": "Hi", "voice": "Milo"}})
            while not (await ws.receive_json())["done"]:
                pass


def ready_port(proc: subprocess.Popen) -> int:
    import select

    ready, _, _ = select.select([proc.stdout], [], [], 30)
    assert ready, "the server printed nothing within 30 s"
    line = proc.stdout.readline().rstrip("\n")
    match = READY.match(line)
    assert match, f"first stdout line was {line!r}; stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
    return int(match.group(1))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_ready_line_serve_and_clean_exit(sig):
    proc = start("--port", "0", "--engine", "tone", "--api-key", "cli-key", "--log-level", "debug")
    try:
        port = ready_port(proc)
        base = f"http://localhost:{port}"
        assert httpx.get(base + "/").json()["engine"] == "tone"
        assert httpx.get(base + "/v0/voices", headers={"X-API-Key": "nope"}).status_code == 401
        resp = httpx.post(
            base + "/v0/audio/stream",
            json={"transcript": "From the command line", "voice": "Milo"},
            headers={"X-API-Key": "cli-key"},
        )
        assert resp.status_code == 200 and resp.content.endswith(b'"done":true,"step_time":0.0,"length":0}')
        # Both loopback families answer on the same port.
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
        # Keys in websocket URLs (right and wrong) must not reach the debug log either.
        asyncio.run(ws_round_trip(port, "cli-key"))
        with pytest.raises(aiohttp.WSServerHandshakeError):
            asyncio.run(ws_round_trip(port, "wrong-key-123"))
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
        out, err = proc.communicate(timeout=5)
        assert "cli-key" not in out + err and "wrong-key-123" not in out + err
        assert "401" in err  # the refusal itself is logged, without the key
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_startup_faults_and_control_from_another_process():
    proc = start("--port", "0", "--engine", "tone", "--fault", "503;on=voices;count=1")
    try:
        base = f"http://localhost:{ready_port(proc)}"
        h = {"X-API-Key": "k"}
        assert httpx.get(base + "/v0/voices", headers=h).status_code == 503
        assert httpx.get(base + "/v0/voices", headers=h).status_code == 200
        httpx.post(base + "/_emulator/faults", json={"kind": "429", "retry_after": 1}, headers=h)
        assert httpx.get(base + "/v0/voices", headers=h).status_code == 429
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def read_lines(proc: subprocess.Popen, count: int, within: float = 30) -> list:
    """The first ``count`` stdout lines, read from the pipe itself (no buffer hides them from select)."""
    import select
    import time

    data = b""
    deadline = time.monotonic() + within
    fd = proc.stdout.fileno()
    while data.count(b"\n") < count:
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        assert ready, f"the server printed {data!r} and then nothing within {within} s"
        chunk = os.read(fd, 65536)
        assert chunk, f"stdout closed after {data!r}; stderr: {proc.stderr.read()}"
        data += chunk
    return data.decode().splitlines()[:count]


def run_cartesia(args, env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CARTESIA_") or "EXTENSIONS" in k}
    return subprocess.run(
        [sys.executable, "-m", "cartesia", *args], cwd=OUTSIDE_CHECKOUT, env={**clean, **env},
        capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_after_the_address_it_says_how_to_point_clients_here_and_that_works(host):
    proc = start("--host", host, "--port", "0", "--engine", "tone", "--api-key", "serve-secret-123")
    try:
        first, *hints = read_lines(proc, 5)
        assert re.match(rf"^listening on http://{re.escape(host)}:\d+$", first), first
        port = int(first.rsplit(":", 1)[1])
        text = "\n".join(hints)
        assert hints[0] == "point a client at it (CARTESIA_API_KEY=<one of the --api-key keys>):"
        assert "serve-secret-123" not in text
        import cartesia

        current = "from cartesia import Cartesia:" if hasattr(cartesia, "Cartesia") else "current API (coming):"
        assert "0.0.5" in hints[1] and current in hints[2] and "4.2.0" in hints[3]
        assert f"CARTESIA_BASE_URL=http://{host}:{port}" in hints[2] and "--tls" in hints[3]
        # Follow the 0.0.5 hint literally: the first CARTESIA_BASE_URL=... of its line.
        base_url = re.search(r"CARTESIA_BASE_URL=(\S+)", hints[1]).group(1)
        assert base_url == (f"localhost:{port}" if host == "localhost" else f"http://{host}:{port}")
        voices = run_cartesia(
            ["voices", "--attempts", "1"], {"CARTESIA_BASE_URL": base_url, "CARTESIA_API_KEY": "serve-secret-123"}
        )
        assert voices.returncode == 0 and "Milo" in voices.stdout, voices.stderr
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_client_hints_for_tls_name_the_ca_file():
    from cartesia.server.hints import client_hints

    tls = client_hints(scheme="https", host="localhost", port=8443, ca_file="/tmp/ca.pem")
    assert tls[0] == "point a client at it (CARTESIA_API_KEY=<any non-empty value>):"
    for line in tls[1:]:
        assert "CARTESIA_BASE_URL=https://localhost:8443 SSL_CERT_FILE=/tmp/ca.pem" in line
    plain = client_hints(scheme="http", host="0.0.0.0", port=8787)
    assert "SSL_CERT_FILE" not in "".join(plain) and "https" not in "".join(plain)
    assert "CARTESIA_BASE_URL=localhost:8787 " in plain[1]  # a wildcard bind is called at localhost


@pytest.mark.parametrize(
    "args, message",
    [
        (["--pace", "warp"], "argument --pace: invalid choice: 'warp'"),
        (["--fault", "explode"], "explode"),
        (["--api-key", ""], "non-empty"),
        (["--port", "70000"], "argument --port: must be 0 (any free port) to 65535"),
        (["--ws-idle-timeout", "0"], "argument --ws-idle-timeout: must be more than 0 seconds"),
        (["--first-chunk-latency", "-1"], "argument --first-chunk-latency: must be 0 seconds or more"),
    ],
)
@pytest.mark.parametrize("command", [["-m", "cartesia.server"], ["-m", "cartesia", "serve"]])
def test_bad_arguments_are_one_line_and_exit_2(command, args, message):
    proc = subprocess.run(
        [sys.executable, *command, "--port", "0", *args],
        cwd=OUTSIDE_CHECKOUT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cartesia serve: error: "), proc.stderr
    assert message in lines[0]
    if message.startswith("argument"):
        assert lines[0].endswith(" (see: cartesia serve --help)")


def test_port_in_use_exits_2(local_server):
    proc = subprocess.run(
        [sys.executable, "-m", "cartesia.server", "--port", str(local_server.port), "--engine", "tone"],
        cwd=OUTSIDE_CHECKOUT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert proc.stderr.startswith("cartesia serve: error: cannot listen") and proc.stderr.count("\n") == 1


def test_subprocesses_import_the_package_under_test():
    # Regression: started from the checkout, `python -m cartesia.server` imported the checkout's
    # copy (without the compiled core when CI tests an installed one) and died on its first request.
    import cartesia

    proc = subprocess.run(
        [sys.executable, "-c", "import cartesia; print(cartesia.__file__)"],
        cwd=OUTSIDE_CHECKOUT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert os.path.realpath(proc.stdout.strip()) == os.path.realpath(cartesia.__file__)
