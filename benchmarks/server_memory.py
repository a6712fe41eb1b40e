"""Server RSS under many concurrent long generations, with clients that read and clients that don't.

Runs ``python -m cartesia.server`` as a subprocess (tone engine) and, from this process, opens
``--clients`` concurrent generations of ``--seconds`` of audio each, over ``POST /v0/audio/stream``
or the v0 websocket (one context per socket), either reading everything or never reading after
the request. It samples the server's resident memory (``/proc/<pid>/status``) throughout and
reports the baseline, the peak, and the RSS after every client has closed its socket.

Usage::

    python -m benchmarks.server_memory                      # all four cells, 100 x 60 s
    python -m benchmarks.server_memory --transport ws --mode nonreading --clients 1 --contexts 130
    python -m benchmarks.server_memory --server-path /tmp/old-checkout   # another version

Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-key"
TRANSCRIPT = "Every word counts, and this text goes on and on. " * 60
MODES = ("reading", "nonreading")
TRANSPORTS = ("http", "ws")


def proc_kib(pid: int, field: str) -> int:
    """``VmRSS``/``VmHWM`` of a process, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        match = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M)
    if match is None:
        raise OSError(f"/proc/{pid}/status has no {field}")
    return int(match.group(1))


def start_server(
    server_path: Optional[str], pace: str, engine: str
) -> tuple[subprocess.Popen, int]:
    env = dict(os.environ)
    if server_path:
        env["PYTHONPATH"] = server_path + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cartesia.server", "--port", "0", "--engine", engine,
         "--pace", pace, "--api-key", KEY],
        cwd=server_path or str(ROOT),
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.match(r"listening on http://\S+:(\d+)", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return proc, int(match.group(1))


def body(seconds: float, client: int) -> Dict:
    # A distinct text per client: identical requests would share one rendering.
    return {"transcript": f"Client {client}. {TRANSCRIPT}", "voice": "Milo", "duration": seconds}


async def http_reader(
    session: aiohttp.ClientSession, port: int, seconds: float, client: int
) -> int:
    url = f"http://127.0.0.1:{port}/v0/audio/stream"
    async with session.post(url, json=body(seconds, client), headers={"X-API-Key": KEY}) as resp:
        n = 0
        async for piece in resp.content.iter_chunked(1 << 16):
            n += len(piece)
        return n


async def ws_reader(
    session: aiohttp.ClientSession, port: int, seconds: float, client: int
) -> int:
    url = f"ws://127.0.0.1:{port}/v0/audio/websocket?api_key={KEY}"
    async with session.ws_connect(url, max_msg_size=0) as ws:
        await ws.send_json({"context_id": "c", "data": body(seconds, client)})
        n = 0
        while True:
            msg = json.loads((await ws.receive()).data)
            n += len(msg.get("data") or "")
            if msg.get("done"):
                return n


async def raw_nonreader(
    port: int, transport: str, seconds: float, client: int, contexts: int
) -> asyncio.StreamWriter:
    """Send generation requests on a raw socket and never read the answer.

    HTTP: one request; websocket: ``contexts`` contexts multiplexed on the socket.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sock = writer.get_extra_info("socket")
    import socket

    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    payload = json.dumps(body(seconds, client)).encode()
    if transport == "http":
        writer.write(
            b"POST /v0/audio/stream HTTP/1.1\r\nHost: localhost\r\n"
            + f"X-API-Key: {KEY}\r\nContent-Type: application/json\r\n".encode()
            + f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
    else:
        writer.write(
            f"GET /v0/audio/websocket?api_key={KEY} HTTP/1.1\r\nHost: localhost\r\n".encode()
            + b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            + b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await reader.readuntil(b"\r\n\r\n")  # the 101; nothing is read after it
        for k in range(contexts):
            message = {"context_id": f"c{k}", "data": body(seconds, client * contexts + k)}
            text = json.dumps(message).encode()
            mask = os.urandom(4)
            head = bytes([0x81, 0x80 | 126]) + len(text).to_bytes(2, "big")
            writer.write(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(text)))
    await writer.drain()
    return writer


async def stats(session: aiohttp.ClientSession, port: int) -> Dict:
    url = f"http://127.0.0.1:{port}/_emulator/stats"
    async with session.get(url, headers={"X-API-Key": KEY}) as resp:
        return await resp.json()


async def settle(session: aiohttp.ClientSession, port: int, timeout: float = 60.0) -> None:
    """Wait until the server runs no generation (servers without that gauge: a fixed pause)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = await stats(session, port)
        if "generations_open" not in current:
            await asyncio.sleep(5.0)
            return
        if current["generations_open"] == 0:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("generations still running long after every client closed")


async def run_cell(port: int, pid: int, transport: str, mode: str, clients: int,
                   seconds: float, hold: float, contexts: int) -> Dict:
    peak = 0
    done = asyncio.Event()
    generations = clients * (contexts if transport == "ws" and mode == "nonreading" else 1)

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc_kib(pid, "VmRSS"))
            await asyncio.sleep(0.05)

    timeout = aiohttp.ClientTimeout(total=600)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await http_reader(session, port, 1.0, -1)  # warm-up: imports and engine tables are not load
        before = proc_kib(pid, "VmRSS")
        sampler = asyncio.ensure_future(sample())
        t0 = time.monotonic()
        received = 0
        if mode == "reading":
            one = http_reader if transport == "http" else ws_reader
            runs = (one(session, port, seconds, i) for i in range(clients))
            results = await asyncio.gather(*runs)
            received = sum(results)
        else:
            writers: List[asyncio.StreamWriter] = await asyncio.gather(
                *(raw_nonreader(port, transport, seconds, i, contexts) for i in range(clients))
            )
            await asyncio.sleep(hold)  # the server renders and sends until every socket is full
            for writer in writers:
                writer.transport.abort()
        elapsed = time.monotonic() - t0
        await settle(session, port)
        await asyncio.sleep(1.0)
        done.set()
        await sampler
        after = proc_kib(pid, "VmRSS")
        gauges = await stats(session, port)
    return {
        "transport": transport,
        "mode": mode,
        "clients": clients,
        "seconds": seconds,
        "baseline_mib": round(before / 1024, 1),
        "peak_mib": round(peak / 1024, 1),
        "after_close_mib": round(after / 1024, 1),
        "generations": generations,
        "per_generation_mib": round((peak - before) / 1024 / generations, 2),
        "elapsed_s": round(elapsed, 1),
        "received_mb": round(received / 1e6, 1),
        "buffered_peak_bytes": gauges.get("buffered_peak_bytes"),
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0, help="audio per generation")
    parser.add_argument("--transport", choices=TRANSPORTS + ("all",), default="all")
    parser.add_argument("--mode", choices=MODES + ("all",), default="all")
    parser.add_argument("--pace", choices=("none", "realtime"), default="none")
    parser.add_argument("--engine", choices=("tone", "speech"), default="tone")
    parser.add_argument("--contexts", type=int, default=1,
                        help="contexts per socket of the non-reading websocket clients")
    parser.add_argument("--hold", type=float, default=10.0,
                        help="seconds the non-reading clients stay connected")
    parser.add_argument("--server-path", default=None,
                        help="run the server from this source tree instead (PYTHONPATH)")
    args = parser.parse_args(argv)
    transports = TRANSPORTS if args.transport == "all" else (args.transport,)
    modes = MODES if args.mode == "all" else (args.mode,)
    for transport in transports:
        for mode in modes:
            # A fresh server per cell: one cell's leftovers must not count for the next.
            proc, port = start_server(args.server_path, args.pace, args.engine)
            try:
                row = asyncio.run(run_cell(port, proc.pid, transport, mode, args.clients,
                                           args.seconds, args.hold, args.contexts))
                row["engine"], row["pace"] = args.engine, args.pace
                row["server_peak_hwm_mib"] = round(proc_kib(proc.pid, "VmHWM") / 1024, 1)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
