"""1,000 concurrent async streams on one client process against the local server paced in real time.

Usage::

    python -m benchmarks.many_streams                       # 1,000 streams of ~5 s on every path
    python -m benchmarks.many_streams --streams 200 --seconds 3 --paths bytes,v0-ws
    python -m benchmarks.many_streams --engine speech       # espeak-ng instead of the tone engine
    MANY_STREAMS_PROFILE=/tmp/ms python -m benchmarks.many_streams --paths sse   # cProfile: /tmp/ms.sse

The server (``python -m cartesia.server --engine tone --pace realtime``) runs in its own process.
Each path is one fresh client process (this module with ``--worker``) that makes one client with
its default settings, runs one warm-up generation, then starts all ``--streams`` generations at
once and consumes them as they arrive. The current-API paths ask for raw ``--encoding`` at
``--rate`` (default ``pcm_s16le`` at 44.1 kHz: no resampling, which costs this server ~20 ms of CPU
per audio-second); v0 is always ``pcm_f32le`` at 44.1 kHz. Paths:

    bytes    ``AsyncCartesia().tts.bytes``, one client, its connection pool
    sse      ``AsyncCartesia().tts.generate_sse``, one client
    ctx      ``/tts/websocket`` contexts: ``--ctx-sockets`` connections (``websocket_connect()``),
             the streams spread evenly over them (250 contexts each at 1,000 over 4)
    ctx-own  ``/tts/websocket``, one ``websocket_connect()`` (one socket) per stream
    v0-http  ``AsyncCartesiaTTS().generate(stream=True)`` (v0 ``/audio/stream``), one client
    v0-ws    ``AsyncCartesiaTTS().generate(stream=True, websocket=True)``, one client (its own
             websocket pool: contexts multiplexed, a new socket per 512 of them)

Every stream's audio is checked against the engine's own rendering of the request (length and
CRC-32; the tone engine is bit-exact), so a "completed" stream lost nothing. Measured per path:
client CPU (user + system of the whole client process, ``getrusage``) per second of audio received,
RSS per stream (peak RSS during the run minus the RSS after the warm-up, over the streams), the
real-time margin, time to first audio and the wall time; also the server's CPU per audio-second
(``/proc/<pid>/stat``) and the cores client and server together would need for real time. The
margin of one stream is the worst lateness of its chunks against a player that starts at its
first chunk and never pauses:
``max_i (arrival_i - arrival_0) - audio_before_i``, i.e. the start buffer that player would need
to never run dry (about 0 when every chunk arrives on time; the server sends chunk *i* when the
audio before it has played).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import subprocess
import sys
import time
import zlib
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Dict, Iterator, List, Optional, Tuple

from .e2e import listening_process

ROOT = Path(__file__).resolve().parent.parent
RAW_DIR = Path(__file__).resolve().parent / "results" / "raw"
API_KEY = "bench-local-key"
V0_RATE = 44100  # the v0 API's only format: pcm_f32le at 44.1 kHz
PATHS = ("bytes", "sse", "ctx", "ctx-own", "v0-http", "v0-ws")
SAMPLE_BYTES = {"pcm_f32le": 4, "pcm_s16le": 2}
MODEL_V1 = "sonic-3"
MODEL_V0 = "genial-planet-1346"
WORD = "speech "  # the tone engine: ~65 ms per letter, 45 ms per space


# --- the orchestrator's side: text, expected audio, file descriptors ----------------------------------


def transcript_for(seconds: float) -> str:
    """Whole words of ``WORD`` making at least ``seconds`` of tone-engine audio (~0.435 s each)."""
    return (WORD * max(1, int(seconds / 0.435 + 0.999))).strip()


def expected_audio(engine_name: str, transcript: str, fmt: Dict[str, Any]) -> Dict[str, Tuple[int, int]]:
    """``{"v0": (length, crc32), "v1": ...}`` of what the engine renders for the request
    (``fmt``: the current API's raw ``output_format``).

    Computed here from the engine (not from the server), as ``benchmarks/test_floor.py`` checks it.
    """
    from cartesia.server.audio import OutputFormat, StreamEncoder, synthesize
    from cartesia.server.engines import create_engine
    from cartesia.server.generation import Renderer, parse_generation
    from cartesia.server.voices import CATALOGUE

    engine = create_engine(engine_name)
    voice = CATALOGUE[0]
    v0_body = {"transcript": transcript, "model_id": MODEL_V0, "voice": list(voice.embedding)}
    v0 = Renderer(engine).render_sync(parse_generation(v0_body)).samples.astype("<f4").tobytes()
    encoder = StreamEncoder(OutputFormat("raw", fmt["encoding"], fmt["sample_rate"]), engine.sample_rate)
    v1 = encoder.header() + encoder.feed(synthesize(engine, transcript, voice).samples) + encoder.finish()
    return {name: (len(b), zlib.crc32(b)) for name, b in (("v0", v0), ("v1", v1))}


def raise_fd_limit(need: int) -> Tuple[int, int]:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit if ``need`` descriptors would not fit.

    One stream holds one client socket (``ctx-own``: a websocket each) and, in the server, one
    more; a default soft limit of 1,024 would fail ``ctx-own`` at 1,000 streams. Returns
    (before, after). Children (server, workers) inherit it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        new = hard if hard == resource.RLIM_INFINITY else max(soft, min(hard, max(need, 4096)))
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        return soft, new
    return soft, soft


def proc_cpu_s(pid: int) -> Optional[float]:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the worker: one client, N streams ----------------------------------------------------------------


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Stream:
    """What one stream received and when: length, CRC-32, first audio, worst lateness and gap."""

    __slots__ = ("bytes_per_s", "started", "ttfa", "audio", "crc", "late", "gap", "error", "check_s")

    def __init__(self, bytes_per_s: int) -> None:
        self.bytes_per_s = bytes_per_s
        self.started = 0.0
        self.ttfa: Optional[float] = None
        self.audio = 0
        self.crc = 0
        self.late = 0.0
        self.gap = 0.0
        self.error: Optional[str] = None
        self.check_s = 0.0  # perf_counter time spent in the CRC (subtracted from the client CPU)

    async def consume(self, chunks: AsyncIterator[Any]) -> None:
        perf = time.perf_counter
        first = last = 0.0
        async for data in chunks:
            now = perf()
            if not data:
                continue
            if self.ttfa is None:
                self.ttfa = now - self.started
                first = now
            else:
                late = (now - first) - self.audio / self.bytes_per_s
                if late > self.late:
                    self.late = late
                if now - last > self.gap:
                    self.gap = now - last
            last = now
            self.crc = zlib.crc32(data, self.crc)
            self.audio += len(data)
            self.check_s += perf() - now


class Path_:
    """One path: how to make its client(s) and the chunks of one stream."""

    def __init__(self, cfg: Dict[str, Any]) -> None:
        self.cfg = cfg
        self.name = cfg["path"]
        self.transcript = cfg["transcript"]
        self.voice_id = cfg["voice_id"]
        self.embedding = cfg["embedding"]
        self.format = cfg["format"]
        self.client: Any = None
        self.sockets: List[Any] = []

    async def open(self) -> None:
        import cartesia
        from cartesia.tts import AsyncCartesiaTTS

        root = self.cfg["base_url"]
        if self.name.startswith("v0"):
            self.client = AsyncCartesiaTTS(api_key=API_KEY, base_url=root)
        else:
            self.client = cartesia.AsyncCartesia(api_key=API_KEY, base_url=root)

    async def open_sockets(self, n: int) -> None:
        """The websocket connections of ``ctx`` (``ctx-own`` opens one per stream instead)."""
        if self.name == "ctx":
            for _ in range(n):
                self.sockets.append(await self.client.tts.websocket_connect().enter())

    def chunks(self, i: int) -> AsyncIterator[Any]:
        return getattr(self, "_" + self.name.replace("-", "_"))(i)

    async def close(self) -> None:
        for conn in self.sockets:
            await conn.close()
        await self.client.close()

    # --- one stream per path ---
    def _kw(self) -> Dict[str, Any]:
        return dict(model_id=MODEL_V1, transcript=self.transcript, voice={"mode": "id", "id": self.voice_id},
                    output_format=self.format)

    async def _bytes(self, i: int) -> AsyncIterator[Any]:
        async for data in await self.client.tts.bytes(**self._kw()):
            yield data

    async def _sse(self, i: int) -> AsyncIterator[Any]:
        async for event in await self.client.tts.generate_sse(**self._kw()):
            if event.type == "chunk" and event.audio:
                yield event.audio
            elif event.type == "error":
                raise RuntimeError(f"error event: {event}")

    async def _ctx_on(self, conn: Any) -> AsyncIterator[Any]:
        kw = self._kw()
        ctx = conn.context(model_id=MODEL_V1, voice=kw["voice"], output_format=self.format)
        await ctx.send(transcript=self.transcript, voice=kw["voice"], continue_=False)
        async for event in ctx.receive():
            if event.type == "chunk" and event.audio:
                yield event.audio
            elif event.type == "error":
                raise RuntimeError(f"error event: {event}")

    def _ctx(self, i: int) -> AsyncIterator[Any]:
        return self._ctx_on(self.sockets[i % len(self.sockets)])

    async def _ctx_own(self, i: int) -> AsyncIterator[Any]:
        async with self.client.tts.websocket_connect() as conn:
            async for data in self._ctx_on(conn):
                yield data

    async def _v0(self, websocket: bool) -> AsyncIterator[Any]:
        stream = await self.client.generate(transcript=self.transcript, voice=self.embedding, model_id=MODEL_V0,
                                            stream=True, websocket=websocket)
        async for chunk in stream:
            yield chunk["audio"]

    def _v0_http(self, i: int) -> AsyncIterator[Any]:
        return self._v0(False)

    def _v0_ws(self, i: int) -> AsyncIterator[Any]:
        return self._v0(True)


def _error_name(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:120] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _run(cfg: Dict[str, Any]) -> Dict[str, Any]:
    n = cfg["streams"]
    want_len, want_crc = cfg["expected"]
    path = Path_(cfg)
    await path.open()
    # One warm-up generation (lazy imports, the pool's first connection), checked like the rest.
    bps = cfg["bytes_per_s"]
    warm = Stream(bps)
    warm.started = time.perf_counter()
    if path.name == "ctx":
        await path.open_sockets(cfg["ctx_sockets"])
    await asyncio.wait_for(warm.consume(path.chunks(0)), cfg["seconds"] * 4 + 60)
    warm_ok = (warm.audio, warm.crc) == (want_len, want_crc)
    gc.collect()
    base_rss = _rss_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:  # reset the peak-RSS mark (VmHWM)
        f.write("5")
    streams = [Stream(bps) for _ in range(n)]

    async def one(i: int) -> None:
        s = streams[i]
        s.started = time.perf_counter()
        try:
            await s.consume(path.chunks(i))
        except Exception as exc:  # noqa: BLE001 - counted by type
            s.error = _error_name(exc)

    cpu0, t0 = _cpu_s(), time.perf_counter()
    tasks = [asyncio.ensure_future(one(i)) for i in range(n)]
    # A bound on the whole run, so a stuck stream fails the run instead of hanging it.
    done, pending = await asyncio.wait(tasks, timeout=cfg["bound_s"])
    wall = time.perf_counter() - t0
    cpu = _cpu_s() - cpu0
    peak_rss = _rss_kib("VmHWM")
    for t in pending:
        t.cancel()
    for i, t in enumerate(tasks):
        if t in pending:
            streams[i].error = f"not done after the benchmark's bound of {cfg['bound_s']:g} s"
    await asyncio.gather(*pending, return_exceptions=True)
    await path.close()
    errors: Counter = Counter()
    ok = 0
    for s in streams:
        if s.error is None and (s.audio, s.crc) != (want_len, want_crc):
            s.error = "incomplete audio" if s.audio < want_len else "wrong audio"
        if s.error is None:
            ok += 1
        else:
            errors[s.error] += 1
    good = [s for s in streams if s.error is None]
    return {
        "path": path.name,
        "streams": n,
        "completed": ok,
        "failed": n - ok,
        "errors": dict(errors.most_common(8)),
        "warmup_ok": warm_ok,
        "audio_s": sum(s.audio for s in streams) / bps,
        "cpu_s": cpu,
        "check_s": sum(s.check_s for s in streams),
        "wall_s": wall,
        "base_rss_kib": base_rss,
        "peak_rss_kib": peak_rss,
        "ttfa_s": sorted(s.ttfa for s in good if s.ttfa is not None),
        "late_s": sorted(s.late for s in good),
        "gap_s": sorted(s.gap for s in good),
        "sockets": len(path.sockets) if path.name == "ctx" else None,
    }


def worker_main(cfg: Dict[str, Any]) -> int:
    raise_fd_limit(cfg["streams"] * 2 + 256)
    result = _run_in_loop(cfg)
    import cartesia

    result["cartesia_file"] = cartesia.__file__
    from cartesia import _stream

    result["streaming_core"] = getattr(_stream, "IMPLEMENTATION", None)
    print(json.dumps(result))
    return 0


def _run_in_loop(cfg: Dict[str, Any]) -> Dict[str, Any]:
    out = os.environ.get("MANY_STREAMS_PROFILE")  # a file: the worker's cProfile stats go there
    if not out:
        return asyncio.run(_run(cfg))
    import cProfile

    prof = cProfile.Profile()
    try:
        return prof.runcall(asyncio.run, _run(cfg))
    finally:
        prof.dump_stats(f"{out}.{cfg['path']}")


# --- summarising --------------------------------------------------------------------------------------


def pct(values: List[float], q: float) -> Optional[float]:
    """The ``q`` quantile of sorted ``values`` (nearest rank), or None."""
    if not values:
        return None
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def summarise(r: Dict[str, Any], server_cpu_s: Optional[float]) -> Dict[str, Any]:
    """The reported numbers of one path (the long per-stream lists dropped)."""
    audio = r["audio_s"]
    client_cpu = max(0.0, r["cpu_s"] - r["check_s"])
    out = {k: r[k] for k in ("path", "streams", "completed", "failed", "errors", "warmup_ok", "wall_s", "sockets",
                             "streaming_core")}
    out.update(
        audio_s=audio,
        cpu_ms_per_audio_s=1000 * client_cpu / audio if audio else None,
        check_ms_per_audio_s=1000 * r["check_s"] / audio if audio else None,
        server_cpu_ms_per_audio_s=1000 * server_cpu_s / audio if audio and server_cpu_s is not None else None,
        rss_per_stream_kib=(r["peak_rss_kib"] - r["base_rss_kib"]) / r["streams"],
        # Cores the client and the server together would need to keep all streams in real time.
        cores_for_realtime=(client_cpu + server_cpu_s) / audio * r["streams"]
        if audio and server_cpu_s is not None else None,
        base_rss_mb=r["base_rss_kib"] / 1024,
        peak_rss_mb=r["peak_rss_kib"] / 1024,
    )
    for key in ("ttfa", "late", "gap"):
        vals = r[key + "_s"]
        for q, name in ((0.5, "p50"), (0.99, "p99"), (1.0, "max")):
            v = pct(vals, q)
            out[f"{key}_{name}_ms"] = None if v is None else 1000 * v
    return out


def _f(x: Optional[float], spec: str) -> str:
    return "-" if x is None else format(x, spec)


def line(s: Dict[str, Any]) -> str:
    """One printed line per path."""
    head = f"{s['path']:8} {s['completed']:5}/{s['streams']:<5} ok"
    parts = [
        head,
        f"audio {s['audio_s']:7.1f} s",
        f"cpu {_f(s['cpu_ms_per_audio_s'], '5.2f')} ms/audio-s (+crc {_f(s['check_ms_per_audio_s'], '.2f')})",
        f"server {_f(s['server_cpu_ms_per_audio_s'], '5.2f')}",
        f"rss {s['rss_per_stream_kib']:6.1f} KiB/stream",
        f"real time needs {_f(s['cores_for_realtime'], '.1f')} cores",
        "late p50/p99/max " + "/".join(_f(s[f"late_{q}_ms"], ".0f") for q in ("p50", "p99", "max")) + " ms",
        f"gap p99 {_f(s['gap_p99_ms'], '.0f')} ms",
        f"ttfa p50/p99 {_f(s['ttfa_p50_ms'], '.0f')}/{_f(s['ttfa_p99_ms'], '.0f')} ms",
        f"wall {s['wall_s']:5.1f} s",
    ]
    if s["errors"]:
        parts.append("ERRORS: " + "; ".join(f"{n}x {e}" for e, n in s["errors"].items()))
    if not s["warmup_ok"]:
        parts.append("WARM-UP AUDIO WRONG")
    return "  ".join(parts)


# --- the orchestrator ---------------------------------------------------------------------------------


def run_path(cfg: Dict[str, Any], server_pid: int, timeout: float) -> Dict[str, Any]:
    """One path in a fresh worker process; its summary (or the failure)."""
    cpu0 = proc_cpu_s(server_pid)
    cmd = [sys.executable, "-m", "benchmarks.many_streams", "--worker", json.dumps(cfg)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"path": cfg["path"], "streams": cfg["streams"], "problem": f"worker timed out after {timeout:g} s"}
    cpu1 = proc_cpu_s(server_pid)
    lines = [ln for ln in proc.stdout.decode().splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = " | ".join(proc.stderr.decode(errors="replace").strip().splitlines()[-4:])
        return {"path": cfg["path"], "streams": cfg["streams"], "problem": f"worker exit {proc.returncode}: {tail}"}
    raw = json.loads(lines[-1])
    server = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
    return summarise(raw, server)


@contextmanager
def serve(engine: str, log: Path) -> Iterator[Tuple[str, int]]:
    """The server CLI (``--pace realtime``) in its own process: yields its base URL and pid."""
    cmd = [sys.executable, "-m", "cartesia.server", "--port", "0", "--engine", engine, "--pace", "realtime",
           "--api-key", API_KEY]
    with listening_process(cmd, "the server", log) as (address, pid):
        yield "http://" + address, pid


def run_all(
    streams: int = 1000,
    seconds: float = 5.0,
    paths: Tuple[str, ...] = PATHS,
    engine: str = "tone",
    ctx_sockets: int = 4,
    encoding: str = "pcm_s16le",
    rate: int = 44100,
    log=print,
) -> Dict[str, Any]:
    """Start the server, run every path in turn; the JSON-able results."""
    from cartesia.server.voices import CATALOGUE

    from .machine import machine_info

    fd_before, fd_after = raise_fd_limit(streams * 2 + 256)
    transcript = transcript_for(seconds)
    fmt = {"container": "raw", "encoding": encoding, "sample_rate": rate}
    expected = expected_audio(engine, transcript, fmt)
    bytes_per_s = {"v0": V0_RATE * 4, "v1": rate * SAMPLE_BYTES[encoding]}
    audio_s = {k: v[0] / bytes_per_s[k] for k, v in expected.items()}
    RAW_DIR.mkdir(parents=True, exist_ok=True)
    voice_id, embedding = CATALOGUE[0].id, list(CATALOGUE[0].embedding)
    results: List[Dict[str, Any]] = []
    t0 = time.perf_counter()
    log(f"{streams} streams of {audio_s['v1']:.2f} s per path (engine {engine}, pace realtime; current API "
        f"{encoding} at {rate} Hz, v0 pcm_f32le at {V0_RATE} Hz); "
        f"fd soft limit {fd_before}" + (f" -> {fd_after}" if fd_after != fd_before else ""))
    with serve(engine, RAW_DIR / "many-streams-server.log") as (base_url, server_pid):
        for name in paths:
            api = "v0" if name.startswith("v0") else "v1"
            cfg = dict(path=name, streams=streams, seconds=audio_s[api], transcript=transcript, base_url=base_url,
                       voice_id=voice_id, embedding=embedding, ctx_sockets=ctx_sockets, format=fmt,
                       expected=expected[api], bytes_per_s=bytes_per_s[api],
                       bound_s=max(120.0, 10 * audio_s["v1"] + 60))
            s = run_path(cfg, server_pid, timeout=cfg["bound_s"] + 120)
            results.append(s)
            log(line(s) if "problem" not in s else f"{name:8} FAILED: {s['problem']}")
    return {
        "streams": streams,
        "seconds_per_stream": audio_s,
        "engine": engine,
        "ctx_sockets": ctx_sockets,
        "format": fmt,
        "fd_soft_limit": [fd_before, fd_after],
        "machine": machine_info(),
        "load_avg": os.getloadavg(),
        "elapsed_s": time.perf_counter() - t0,
        "results": results,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=1000, help="concurrent streams per path (default 1000)")
    ap.add_argument("--seconds", type=float, default=5.0, help="audio seconds per stream, about (default 5)")
    ap.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated subset of {','.join(PATHS)}")
    ap.add_argument("--engine", choices=("tone", "speech"), default="tone")
    ap.add_argument("--ctx-sockets", type=int, default=4, help="websockets the `ctx` path spreads its streams over")
    ap.add_argument("--encoding", choices=sorted(SAMPLE_BYTES), default="pcm_s16le",
                    help="raw encoding of the current-API paths (v0 is always pcm_f32le)")
    ap.add_argument("--rate", type=int, default=44100, help="sample rate of the current-API paths (default 44100)")
    ap.add_argument("--out", type=Path, help="JSON output (default results/raw/many-streams-<time>.json)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main(json.loads(args.worker))
    paths = tuple(p for p in args.paths.split(",") if p)
    unknown = [p for p in paths if p not in PATHS]
    if unknown:
        ap.error(f"unknown path(s) {', '.join(unknown)}; choose from {', '.join(PATHS)}")
    data = run_all(args.streams, args.seconds, paths, args.engine, args.ctx_sockets, args.encoding, args.rate)
    out = args.out or RAW_DIR / time.strftime("many-streams-%Y%m%dT%H%M%S.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1))
    failed = [r for r in data["results"] if "problem" in r or r["failed"]]
    print(f"\n{len(data['results'])} paths in {data['elapsed_s']:.0f} s -> {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
