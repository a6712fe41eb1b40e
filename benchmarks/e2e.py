"""End-to-end harness: local server in one process; our client, the floor and the official clients in others.

Usage::

    python -m benchmarks.e2e            # full matrix (long on 2 busy cores)
    python -m benchmarks.e2e --quick    # a subset
    python -m benchmarks.e2e --streams 1,100 --seconds 8 --transports sse,ctx   # any slice

The server (``python -m cartesia.server --engine tone --pace none``) runs in its own process so its
CPU is never counted. Each measurement is one worker process (``benchmarks/e2e_worker.py``) run by
this checkout's interpreter ("ours", and "floor": ``benchmarks/floor.py``, bare sockets feeding our
core), by a venv holding ``cartesia==0.0.5`` ("seed", v0 transports) or one holding
``cartesia==4.2.0`` ("o420", with and without permessage-deflate, current-API transports), each
driven through its own API (``benchmarks/e2e_apis.py``), against the same server, back to back.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from .machine import machine_info
from .seed import official_python, seed_python

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "e2e_worker.py"
RAW_DIR = Path(__file__).resolve().parent / "results" / "raw"
SAMPLE_RATE = 44100
API_KEY = "bench-local-key"

# Long enough that every `duration` below truncates it, so each generation's length is exact.
TEXT = (
    "The quick brown fox jumps over the lazy dog, and the five boxing wizards jump quickly. "
    "Pack my box with five dozen liquor jugs; how vexingly quick daft zebras jump! "
) * 4
# For the whole 10-minute generation: the tone engine makes ~65 ms per letter, 45 ms per space.
LONG_WORD = "speech "
IMPLS = ("ours", "floor", "seed", "o420", "o420-nodeflate")
#: Transports: v0 HTTP stream, /tts/sse, /tts/bytes, v0 websocket, /tts/websocket contexts.
TRANSPORTS = ("http", "sse", "bytes", "ws", "ctx")
#: Who speaks each transport (0.0.5 only has v0; 4.2.0 is measured on SSE and contexts).
IMPLS_OF = {
    "http": ("ours", "floor", "seed"),
    "sse": ("ours", "floor", "o420"),
    "bytes": ("ours", "floor"),
    "ws": ("ours", "floor", "seed"),
    "ctx": ("ours", "floor", "o420", "o420-nodeflate"),
}
OUR_INTERPRETER = ("ours", "floor")
RTT_MS = 20.0  # simulated network round trip of the latency-proxy TTFA cases


@dataclass
class Case:
    """One cell of the matrix (run once for ours and once for the seed)."""

    scenario: str  # stream | ttfa | memory
    mode: str  # sync | async
    transport: str  # http | ws
    concurrency: int = 1
    rounds: int = 1
    duration: Optional[float] = None
    transcript: str = TEXT
    rtt_ms: float = 0.0  # > 0: through latency_proxy with this round-trip time
    as_numpy: bool = False  # ours only: generate(..., as_numpy=True), an API 0.0.5 does not have

    @property
    def key(self) -> str:
        key = f"{self.scenario}/{self.mode}/{self.transport}/c{self.concurrency}"
        return key + (f"/rtt{self.rtt_ms:g}ms" if self.rtt_ms else "") + ("/numpy" if self.as_numpy else "")

    @property
    def impls(self) -> Tuple[str, ...]:
        if self.as_numpy:
            return ("ours",)
        if self.scenario == "memory" or self.rtt_ms:
            return ("ours", "seed")
        return IMPLS_OF[self.transport]


@dataclass
class Result:
    impl: str
    case: Dict[str, Any]
    metrics: Dict[str, Any] = field(default_factory=dict)
    problems: List[str] = field(default_factory=list)


def matrix(
    quick: bool,
    streams: Optional[Tuple[int, ...]] = None,
    seconds: Optional[float] = None,
    transports: Tuple[str, ...] = TRANSPORTS,
    ttfa_rounds: Optional[int] = None,
) -> List[Case]:
    """The cases of a full or a quick run (``streams``/``seconds`` override the stream cells,
    ``ttfa_rounds`` the generations of each ttfa case)."""
    cases: List[Case] = []
    # Enough audio per cell that CPU time is well above timer and scheduling noise.
    seconds = seconds or (8.0 if quick else 20.0)
    conc = streams or ((1, 10) if quick else (1, 10, 100))
    rounds = {1: 4, 10: 1, 100: 1} if quick else {1: 5, 10: 2, 100: 1}
    for transport in transports:
        for mode in ("sync", "async"):
            for c in conc:
                cases.append(Case("stream", mode, transport, c, rounds.get(c, 1), seconds))
    for rtt in (0.0, RTT_MS):
        for transport in (transports if not rtt else [t for t in ("ws", "http") if t in transports]):
            for mode in ("sync", "async"):
                n = ttfa_rounds or ((10 if quick else 30) if not rtt else (8 if quick else 15))
                cases.append(Case("ttfa", mode, transport, 1, n, 1.0, rtt_ms=rtt))
    minutes = 2.0 if quick else 10.0
    # Six letters and a space at 65 and 45 ms: ~0.435 s per "speech " word.
    words = int(minutes * 60 / (6 * 0.065 + 0.045)) + 1
    long_text = (LONG_WORD * words).strip()
    for transport in [t for t in ("http", "ws") if t in transports]:
        cases.append(Case("memory", "sync", transport, transcript=long_text))
        cases.append(Case("memory", "sync", transport, transcript=long_text, as_numpy=True))
    return cases


@contextmanager
def listening_process(cmd: List[str], what: str, log: Optional[Path]) -> Iterator[Tuple[str, int]]:
    """Run ``cmd`` until the block ends; yield the ``localhost:<port>`` from its first stdout line
    and the process id."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    err = open(log, "ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err)
    try:
        first: List[bytes] = []
        reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(30)
        line = first[0].decode() if first else ""
        if "listening on " not in line or "localhost:" not in line:
            raise RuntimeError(f"{what} did not start (first line {line!r}); see {log}")
        port = int(line.rsplit(":", 1)[1].strip().strip("/"))
        # Keep draining stdout so a chatty process never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
        yield f"localhost:{port}", proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        if log:
            err.close()


# The 10-minute generation is longer than the server's default cap on one generation (the v0
# spec's 180 s). Until the server CLI takes a flag for it, the harness starts the same CLI entry
# point with the cap raised; nothing else about the server changes.
LONGEST_GENERATION_S = 660.0
_SERVER_WITH_CAP = (
    "import sys; import cartesia.server.generation as g; g.MAX_DURATION = max(g.MAX_DURATION, {cap}); "
    "from cartesia.server.cli import main; sys.exit(main(sys.argv[1:]))"
)


@contextmanager
def local_server(python: str = sys.executable, log: Optional[Path] = None) -> Iterator[str]:
    """Start the server CLI (tone engine, no pacing) in its own process; yield ``localhost:<port>``."""
    args = ["--port", "0", "--engine", "tone", "--pace", "none"]
    help_text = subprocess.run(
        [python, "-m", "cartesia.server", "--help"], cwd=ROOT, capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    ).stdout
    if "--max-duration" in help_text:
        cmd = [python, "-m", "cartesia.server", *args, "--max-duration", f"{LONGEST_GENERATION_S:g}"]
    else:
        cmd = [python, "-c", _SERVER_WITH_CAP.format(cap=LONGEST_GENERATION_S), *args]
    with listening_process(cmd, "server", log) as (url, _pid):
        yield url


class Endpoints:
    """The server, plus latency proxies in front of it started on first use (one per RTT)."""

    def __init__(self, log: Optional[Path] = None) -> None:
        self.log = log
        self._stack = ExitStack()
        self._urls: Dict[float, str] = {}

    def __enter__(self) -> Endpoints:
        self._urls[0.0] = self._stack.enter_context(local_server(log=self.log))
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()

    def url(self, rtt_ms: float = 0.0) -> str:
        if rtt_ms not in self._urls:
            port = self._urls[0.0].rsplit(":", 1)[1]
            cmd = [sys.executable, "-m", "benchmarks.latency_proxy", "--upstream", f"127.0.0.1:{port}",
                   "--rtt-ms", str(rtt_ms)]
            self._urls[rtt_ms] = self._stack.enter_context(listening_process(cmd, "proxy", self.log))[0]
        return self._urls[rtt_ms]


def run_worker(
    impl: str, case: Case, base_url: str, timeout: float = 300, profile_dir: Optional[Path] = None
) -> Result:
    """Run one case with one client in a fresh process and check what it received.

    With ``profile_dir``, the worker runs under ``py-spy record`` and its collapsed stacks land
    there (the timings of a profiled run are inflated; use them for where, not how much).
    """
    cfg = dict(asdict(case), base_url=base_url, api_key=API_KEY, impl=impl)
    if impl in OUR_INTERPRETER:
        python = sys.executable
        cfg["sys_path"] = [str(ROOT)]
    else:
        python = seed_python() if impl == "seed" else official_python()
        cfg["sys_path"] = []
    res = Result(impl, asdict(case))
    res.case.pop("transcript")
    cmd = [python, "-I", str(WORKER), json.dumps(cfg)]
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        out = profile_dir / f"{case.key.replace('/', '-')}-{impl}.txt"
        spy = str(Path(sys.executable).with_name("py-spy"))
        cmd = [spy, "record", "--rate", "500", "--gil", "--format", "raw", "--nonblocking", "-o", str(out), "--"] + cmd
    try:
        proc = subprocess.run(
            cmd,
            cwd="/",
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        res.problems.append(f"timed out after {timeout:g} s")
        return res
    if proc.returncode != 0 or not proc.stdout.strip():
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-5:]
        res.problems.append(f"worker exit {proc.returncode}: " + " | ".join(tail))
        return res
    # The JSON line is the worker's last; py-spy may print after it.
    m = json.loads([ln for ln in proc.stdout.decode().splitlines() if ln.startswith("{")][-1])
    res.metrics = m
    _check(impl, case, m, res.problems)
    _summarise(case, m)
    return res


def _check(impl: str, case: Case, m: Dict[str, Any], problems: List[str]) -> None:
    file = m.get("cartesia_file", "")
    if (impl in OUR_INTERPRETER) != file.startswith(str(ROOT / "cartesia")):
        problems.append(f"{impl} imported the wrong cartesia: {file}")
    want_version = {"seed": "0.0.5", "o420": "4.2.0", "o420-nodeflate": "4.2.0"}.get(impl)
    if want_version and m.get("cartesia_version") != want_version:
        problems.append(f"{impl} ran cartesia {m.get('cartesia_version')}, not {want_version}")
    if impl in OUR_INTERPRETER and m.get("streaming_core") != "c" and os.environ.get("CARTESIA_NO_EXTENSIONS") != "1":
        problems.append(f"ours ran the {m.get('streaming_core')!r} streaming core, not the compiled one")
    problems.extend(m.get("errors", [])[:3])
    sizes = m.get("audio_bytes", [])
    want_n = case.concurrency * case.rounds if case.scenario != "memory" else 1
    if len(sizes) != want_n:
        problems.append(f"{len(sizes)} of {want_n} generations completed")
    if case.duration is not None:
        want = int(round(case.duration * SAMPLE_RATE)) * 4
        bad = [n for n in sizes if n != want]
        if bad:
            problems.append(f"{len(bad)} generations with wrong audio length (e.g. {bad[0]} != {want})")
    elif sizes and (sizes[0] == 0 or sizes[0] % 4):
        problems.append(f"bad audio length {sizes[0]}")


def _pct(values: List[float], q: float) -> Optional[float]:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def _summarise(case: Case, m: Dict[str, Any]) -> None:
    audio_s = sum(m.get("audio_bytes", [])) / 4 / SAMPLE_RATE
    m["audio_s"] = audio_s
    if audio_s:
        m["cpu_ms_per_audio_s"] = 1000 * m["cpu_s"] / audio_s
    added = m.pop("added_s", None) or []
    m["added_median_us"] = 1e6 * statistics.median(added) if added else None
    m["added_p95_us"] = 1e6 * _pct(added, 0.95) if added else None
    last = m.pop("after_last_read_s", None) or []
    m["after_last_read_median_us"] = 1e6 * statistics.median(last) if last else None
    cpu = m.pop("added_cpu_s", None) or []
    m["added_cpu_median_us"] = 1e6 * statistics.median(cpu) if cpu else None
    m["added_cpu_p95_us"] = 1e6 * _pct(cpu, 0.95) if cpu else None
    reads = m.pop("reads_before_audio", None) or []
    m["reads_before_audio_median"] = statistics.median(reads) if reads else None
    t = m.get("ttfa_s") or []
    m["ttfa_median_ms"] = 1000 * statistics.median(t) if t else None
    m["ttfa_p95_ms"] = 1000 * _pct(t, 0.95) if t else None
    if case.scenario == "memory" and m.get("audio_bytes"):
        m["audio_mb"] = m["audio_bytes"][0] / 1e6
        m["peak_over_audio"] = m["peak_growth_mb"] / m["audio_mb"]
    # The per-generation lists are long and already checked.
    m["generations"] = len(m.get("audio_bytes", []))
    m.pop("audio_bytes", None)
    m["ttfa_s"] = t[:50]


def run_all(
    quick: bool,
    only: Optional[str] = None,
    log=print,
    profile_dir: Optional[Path] = None,
    impls: Optional[Tuple[str, ...]] = None,
    **matrix_options: Any,
) -> Dict[str, Any]:
    """Run the matrix; returns the JSON-able results (also the machine and the timings)."""
    # Install the official clients (those this run uses) before the clock starts.
    if not impls or "seed" in impls:
        seed_python()
    if not impls or any(i.startswith("o420") for i in impls):
        official_python()
    RAW_DIR.mkdir(parents=True, exist_ok=True)
    cases = [c for c in matrix(quick, **matrix_options) if not only or only in c.key]
    results: List[Result] = []
    t0 = time.perf_counter()
    with Endpoints(log=RAW_DIR / "server.log") as endpoints:
        for case in cases:
            pair = []
            for impl in case.impls:
                if impls and impl not in impls:
                    continue
                r = run_worker(impl, case, endpoints.url(case.rtt_ms), profile_dir=profile_dir)
                pair.append(r)
                results.append(r)
                log(_line(r))
            # Memory cases: both clients must have received the same audio.
            if case.scenario == "memory" and len(pair) > 1:
                digests = {r.metrics.get("sha256") for r in pair}
                if len(digests) != 1:
                    for r in pair:
                        r.problems.append("ours and the seed received different audio")
    problems = [f"{r.impl} {r.case}: {p}" for r in results for p in r.problems]
    return {
        "quick": quick,
        "matrix": {k: v for k, v in matrix_options.items() if v is not None},
        "machine": machine_info(),
        "elapsed_s": time.perf_counter() - t0,
        "results": [asdict(r) for r in results],
        "problems": problems,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _fmt(x: Optional[float], spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def _line(r: Result) -> str:
    c, m = r.case, r.metrics
    key = f"{c['scenario']:6} {c['mode']:5} {c['transport']:5} c={c['concurrency']:<3} rtt={c.get('rtt_ms', 0):<3g}"
    if not m:
        return f"{key} {r.impl:14}  FAILED: {'; '.join(r.problems)}"
    parts = [
        f"{key} {r.impl:14}",
        f"audio {m['audio_s']:7.1f} s",
        f"cpu {_fmt(m.get('cpu_ms_per_audio_s'), '6.3f')} ms/audio-s",
        f"ttfa p50 {_fmt(m.get('ttfa_median_ms'), '6.1f')} p95 {_fmt(m.get('ttfa_p95_ms'), '6.1f')} ms",
        f"added p50 {_fmt(m.get('added_median_us'), '6.0f')} us",
        f"rss {m['process_peak_rss_mb']:6.1f} MB",
    ]
    if c["scenario"] == "ttfa":
        parts[-1:-1] = [
            f"p95 {_fmt(m.get('added_p95_us'), '6.0f')} us",
            f"cpu {_fmt(m.get('added_cpu_median_us'), '5.0f')} us",
            f"after last read {_fmt(m.get('after_last_read_median_us'), '5.0f')} us",
            f"reads {_fmt(m.get('reads_before_audio_median'), '.0f')}",
        ]
    if c["scenario"] == "memory":
        parts.append(f"peak growth {m['peak_growth_mb']:.1f} MB = {m['peak_over_audio']:.2f}x audio")
    if r.problems:
        parts.append("PROBLEMS: " + "; ".join(r.problems))
    return "  ".join(parts)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small matrix, under two minutes")
    ap.add_argument("--only", help="run only cases whose key contains this (e.g. stream/async/ws)")
    ap.add_argument("--out", type=Path, help="JSON output (default results/raw/e2e-<time>.json)")
    ap.add_argument("--profile", type=Path, metavar="DIR", help="run workers under py-spy, stacks into DIR")
    ap.add_argument("--streams", help="comma-separated concurrencies of the stream cells (e.g. 1,10,100)")
    ap.add_argument("--seconds", type=float, help="audio seconds per streamed generation")
    ap.add_argument("--transports", help=f"comma-separated subset of {','.join(TRANSPORTS)}")
    ap.add_argument("--impls", help=f"comma-separated subset of {','.join(IMPLS)}")
    ap.add_argument("--ttfa-rounds", type=int, help="generations per ttfa case (default 30, 10 in --quick)")
    args = ap.parse_args(argv)
    data = run_all(
        args.quick,
        args.only,
        profile_dir=args.profile,
        impls=tuple(args.impls.split(",")) if args.impls else None,
        streams=tuple(int(x) for x in args.streams.split(",")) if args.streams else None,
        seconds=args.seconds,
        transports=tuple(args.transports.split(",")) if args.transports else TRANSPORTS,
        ttfa_rounds=args.ttfa_rounds,
    )
    out = args.out or RAW_DIR / time.strftime("e2e-%Y%m%dT%H%M%S.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1))
    print(f"\n{len(data['results'])} runs in {data['elapsed_s']:.0f} s -> {out}")
    for p in data["problems"]:
        print("PROBLEM:", p)
    return 1 if data["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
