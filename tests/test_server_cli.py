"""``python -m cartesia.server`` in a subprocess: ready line, serving, clean exit on signals."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import httpx
import pytest
from server_fixtures import WS_TIMEOUT

# A server bug must fail a test, never hang it.
TIMEOUT = aiohttp.ClientTimeout(total=30)

ROOT = Path(__file__).resolve().parents[1]
READY = re.compile(r"^listening on http://localhost:(\d+)$")


def start(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "cartesia.server", *args],
        cwd=str(ROOT),
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


@pytest.mark.parametrize(
    "args, words",
    [(["--pace", "warp"], "--pace"), (["--fault", "explode"], "explode"), (["--api-key", ""], "non-empty")],
)
def test_bad_arguments_exit_2(args, words):
    proc = subprocess.run(
        [sys.executable, "-m", "cartesia.server", "--port", "0", *args],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and words in proc.stderr and proc.stdout == ""


def test_port_in_use_exits_2(local_server):
    proc = subprocess.run(
        [sys.executable, "-m", "cartesia.server", "--port", str(local_server.port), "--engine", "tone"],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and "cannot listen" in proc.stderr and proc.stdout == ""
