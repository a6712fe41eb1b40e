"""Client CPU, context switches per audio-second of sync ``/tts/websocket`` contexts over TLS.

``python -m benchmarks.sync_wss --streams 1 --reps 6``: a ``cartesia serve --tls`` subprocess
(so its work is not the client's), one connection per stream, each stream one thread running
one generation per repetition; the client's ``getrusage`` is read around the timed part. To
compare checkouts, run this file by its path with ``PYTHONPATH=<checkout>``, from outside both.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import List

_READY = re.compile(r"^listening on https://localhost:(\d+)$")
TEXT = " ".join(["A sentence long enough to make a few seconds of audio for the benchmark."] * 4)
VOICE = {"mode": "id", "id": "6ccbfb76-1fc6-48f7-b71d-91ac6298247b"}
F32 = {"container": "raw", "encoding": "pcm_f32le", "sample_rate": 44100}


def _generate(ws, name: str, sizes: List[int]) -> None:
    ctx = ws.context(name, model_id="sonic-3", voice=VOICE, output_format=F32, timeout=30)
    ctx.push(TEXT, continue_=False)
    sizes.append(sum(len(e.audio) for e in ctx.receive() if e.type == "chunk" and e.audio))


def measure(port: int, streams: int, reps: int) -> str:
    """One measurement against the server on ``port``: a line of results."""
    from cartesia.protocol import v1
    from cartesia.resources.tts_websocket import connect

    url = f"wss://localhost:{port}{v1.WS_PATH}"
    headers = v1.headers("bench-key", json_content=False)
    conns = [
        connect(url, headers=headers, secret="bench-key", connect_timeout=10).enter()
        for _ in range(streams)
    ]
    try:
        _generate(conns[0], "warm-up", [])
        sizes: List[int] = []
        before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        for rep in range(reps):
            threads = [
                threading.Thread(target=_generate, args=(conns[i], f"r{rep}s{i}", sizes))
                for i in range(streams)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - started
    finally:
        for conn in conns:
            conn.close()
    audio_s = sum(sizes) / 4 / F32["sample_rate"]
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    switches = after.ru_nvcsw + after.ru_nivcsw - before.ru_nvcsw - before.ru_nivcsw
    return (
        f"streams={streams} cpu_ms_per_audio_s={cpu * 1000 / audio_s:.3f} "
        f"switches_per_audio_s={switches / audio_s:.1f} audio_s={audio_s:.1f} wall_s={wall:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--reps", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ca = Path(tmp) / "ca.pem"
        server = subprocess.Popen(
            [sys.executable, "-m", "cartesia.server", "--tls", "--port", "0", "--engine", "tone",
             "--ca-out", str(ca), "--api-key", "bench-key"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        try:
            assert server.stdout is not None
            match = _READY.match(server.stdout.readline().strip())
            if not match:
                raise SystemExit("cartesia serve --tls did not start")
            threading.Thread(target=server.stdout.read, daemon=True).start()  # keep it drained
            os.environ["SSL_CERT_FILE"] = str(ca)
            print(measure(int(match.group(1)), args.streams, args.reps), flush=True)
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
