"""One end-to-end client run in its own process: ours, the official 0.0.5 or 4.2.0, or the floor.

Run by ``benchmarks.e2e`` as ``python -I e2e_worker.py '<json config>'`` with the interpreter of the
client under test, so it uses only the standard library plus whatever ``cartesia`` that interpreter
imports; ``e2e_apis.py`` (next to this file) drives each client through its own API. It prints one
JSON object on stdout and nothing else.

Scenarios:
    stream: ``concurrency`` streams at once (threads for sync, tasks for async), each with its own
        client, each running ``rounds`` generations one after another, after one untimed warm-up
        generation per client.
    ttfa: one client, ``rounds`` sequential short streamed generations after one warm-up; also the
        time the client adds between the first bytes of the answer on its socket and the first audio
        it hands over (``socket.socket.recv``/``recv_into`` are timed for that, in this scenario only).
    memory: one client, one non-streamed generation (``stream=False``, v0) after a warm-up; peak RSS.
"""

import asyncio
import gc
import hashlib
import json
import os
import re
import resource
import socket
import sys
import threading
import time

CONFIG = json.loads(sys.argv[1])
for _p in reversed(CONFIG.get("sys_path", [])):
    sys.path.insert(0, _p)
# Last, so nothing in benchmarks/ can shadow a module the client imports.
sys.path.append(os.path.dirname(os.path.abspath(__file__)))
os.environ["CARTESIA_BASE_URL"] = CONFIG["base_url"]
os.environ["CARTESIA_API_KEY"] = CONFIG["api_key"]

from importlib.metadata import version as installed_version  # noqa: E402

from e2e_apis import Adapter  # noqa: E402
from e2e_apis import fetch_voice as fetch_voice_of  # noqa: E402

import cartesia  # noqa: E402  (after the path and the environment are set)

perf = time.perf_counter
# Every client first runs one untimed generation this long: the timed phase is the steady state
# (lazy imports done, connection pools and reusable sockets open), as in a long-running service.
WARMUP_SECONDS = 1.0


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def status_kib(field):
    with open("/proc/self/status") as f:
        m = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1)) if m else 0


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def gen_kwargs(transcript, duration, voice, websocket, stream):
    kw = dict(transcript=transcript, voice=voice, stream=stream, websocket=websocket)
    if duration is not None:
        kw["duration"] = duration
    return kw


# --- the socket clock (ttfa only) ----------------------------------------------------------------

FIRST_BYTE = [None]  # perf_counter of the first non-empty read since the last reset
LAST_BYTE = [None]  # ... and of the latest one
FIRST_CPU = [None]  # process CPU time (all threads) at that first read
READS = [0]  # non-empty network reads since the last reset
cpu_now = time.process_time


def install_socket_clock():
    """Time every network read of this process (all clients read through ``socket.socket``).

    Only TCP sockets count: an asyncio loop also reads its self-pipe (a ``socketpair``) each time
    another thread wakes it (aiohttp's proxy and netrc look-ups, anyio's worker threads), and those
    one-byte reads, often before the request is even sent, are no answer of the server.
    """
    cls = socket.socket
    recv, recv_into = cls.recv, cls.recv_into
    tcp = (socket.AF_INET, socket.AF_INET6)

    def mark():
        LAST_BYTE[0] = perf()
        READS[0] += 1
        if FIRST_BYTE[0] is None:
            FIRST_BYTE[0] = LAST_BYTE[0]
            FIRST_CPU[0] = cpu_now()

    def timed_recv(self, *args):
        data = recv(self, *args)
        if data and self.family in tcp:
            mark()
        return data

    def timed_recv_into(self, *args):
        n = recv_into(self, *args)
        if n and self.family in tcp:
            mark()
        return n

    cls.recv, cls.recv_into = timed_recv, timed_recv_into


# --- one generation ------------------------------------------------------------------------------


def _added(t):
    """The client's share of the first audio at ``t``: (wall time since the first read of the
    answer, wall time since the last read, process CPU time since the first read, reads taken),
    or None before any read (the socket clock is off outside the ttfa scenario)."""
    if FIRST_BYTE[0] is None:
        return None
    return t - FIRST_BYTE[0], t - LAST_BYTE[0], cpu_now() - FIRST_CPU[0], READS[0]


def _reset_clock():
    FIRST_BYTE[0] = None
    READS[0] = 0


def sync_stream(api, client, duration):
    """Audio bytes, time to first audio, and the client's own share of it (see ``_added``)."""
    _reset_clock()
    t0 = perf()
    first = added = None
    n = 0
    for audio in api.stream(client, duration):
        if first is None and audio:
            t = perf()
            first = t - t0
            added = _added(t)
        n += len(audio)
    return n, first, added


async def async_stream(api, client, duration):
    _reset_clock()
    t0 = perf()
    first = added = None
    n = 0
    async for audio in api.astream(client, duration):
        if first is None and audio:
            t = perf()
            first = t - t0
            added = _added(t)
        n += len(audio)
    return n, first, added


def _err(exc, what=""):
    return f"{what}{type(exc).__name__}: {str(exc)[:200]}"


# --- sync ----------------------------------------------------------------------------------------


def run_sync(api, rounds, concurrency, duration):
    results = []
    errors = []
    lock = threading.Lock()
    clock = {}

    def start_clock():
        # Run by the barrier once every worker finished its warm-up and before any is released:
        # the timed phase never includes a warm-up (a first call's lazy imports, TLS context and
        # connection cost ours ~50 ms of CPU, which taking the clock before the workers got here
        # counted against one stream's 100 audio-seconds).
        gc.collect()
        clock["c0"], clock["w0"] = cpu_seconds(), perf()

    barrier = threading.Barrier(concurrency + 1, action=start_clock)
    clients = [api.new(False) for _ in range(concurrency)]

    def worker(client):
        try:
            sync_stream(api, client, WARMUP_SECONDS)
        except Exception as exc:
            with lock:
                errors.append(_err(exc, "warm-up "))
        barrier.wait()
        for _ in range(rounds):
            try:
                r = sync_stream(api, client, duration)
            except Exception as exc:  # recorded, the harness reports it
                with lock:
                    errors.append(_err(exc))
                continue
            with lock:
                results.append(r)

    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    barrier.wait()
    for t in threads:
        t.join()
    c1, w1 = cpu_seconds(), perf()
    for c in clients:
        api.close(c)
    return results, errors, c1 - clock["c0"], w1 - clock["w0"]


# --- async ---------------------------------------------------------------------------------------


async def run_async_main(api, rounds, concurrency, duration):
    results = []
    errors = []
    clients = [api.new(True) for _ in range(concurrency)]
    warm = [async_stream(api, c, WARMUP_SECONDS) for c in clients]
    for r in await asyncio.gather(*warm, return_exceptions=True):
        if isinstance(r, BaseException):
            errors.append(_err(r, "warm-up "))

    async def worker(client):
        for _ in range(rounds):
            try:
                results.append(await async_stream(api, client, duration))
            except Exception as exc:
                errors.append(_err(exc))

    gc.collect()
    c0, w0 = cpu_seconds(), perf()
    await asyncio.gather(*(worker(c) for c in clients))
    c1, w1 = cpu_seconds(), perf()
    for c in clients:
        await api.aclose(c)
    return results, errors, c1 - c0, w1 - w0


def run_async(api, rounds, concurrency, duration):
    return asyncio.run(run_async_main(api, rounds, concurrency, duration))


# --- scenarios -----------------------------------------------------------------------------------


def scenario_stream(cfg, voice):
    run = run_sync if cfg["mode"] == "sync" else run_async
    api = Adapter(cfg, voice)
    rss_before = status_kib("VmRSS") * 1024
    results, errors, cpu, wall = run(api, cfg["rounds"], cfg["concurrency"], cfg["duration"])
    return {
        "cpu_s": cpu,
        "wall_s": wall,
        "audio_bytes": [n for n, _, _ in results],
        "ttfa_s": [t for _, t, _ in results if t is not None],
        "errors": errors,
        "rss_before_mb": rss_before / 1e6,
        "ws_extensions": api.extensions,
    }


def scenario_ttfa(cfg, voice):
    install_socket_clock()
    api = Adapter(cfg, voice)
    ttfa, added, after_last, added_cpu, reads, sizes, errors = [], [], [], [], [], [], []

    def record(r):
        n, first, add = r
        sizes.append(n)
        ttfa.append(first)
        if add is not None:
            added.append(add[0])
            after_last.append(add[1])
            added_cpu.append(add[2])
            reads.append(add[3])

    if cfg["mode"] == "sync":
        client = api.new(False)
        sync_stream(api, client, cfg["duration"])  # warm-up: ours opens its websocket here and keeps it
        c0 = cpu_seconds()
        for _ in range(cfg["rounds"]):
            try:
                record(sync_stream(api, client, cfg["duration"]))
            except Exception as exc:
                errors.append(_err(exc))
        cpu = cpu_seconds() - c0
        api.close(client)
    else:

        async def main():
            client = api.new(True)
            await async_stream(api, client, cfg["duration"])
            c0 = cpu_seconds()
            for _ in range(cfg["rounds"]):
                try:
                    record(await async_stream(api, client, cfg["duration"]))
                except Exception as exc:
                    errors.append(_err(exc))
            cpu = cpu_seconds() - c0
            await api.aclose(client)
            return cpu

        cpu = asyncio.run(main())
    return {"cpu_s": cpu, "audio_bytes": sizes, "ttfa_s": ttfa, "added_s": added,
            "after_last_read_s": after_last, "added_cpu_s": added_cpu, "reads_before_audio": reads,
            "errors": errors,
            "ws_extensions": api.extensions}


def scenario_memory(cfg, voice):
    from cartesia.tts import CartesiaTTS

    websocket = cfg["transport"] == "ws"
    client = CartesiaTTS()
    client.generate(**gen_kwargs("Warm up.", None, voice, websocket, False))
    gc.collect()
    reset_ok = reset_peak_rss()
    rss0 = status_kib("VmRSS") * 1024
    c0, w0 = cpu_seconds(), perf()
    kw = gen_kwargs(cfg["transcript"], None, voice, websocket, False)
    if cfg.get("as_numpy"):
        kw["as_numpy"] = True  # ours only
    out = client.generate(**kw)
    c1, w1 = cpu_seconds(), perf()
    peak = status_kib("VmHWM") * 1024
    audio = out["audio"]
    if not isinstance(audio, bytes):  # numpy float32 samples
        audio = audio.tobytes()
    n = len(audio)
    digest = hashlib.sha256(audio).hexdigest()
    client.close()
    return {
        "cpu_s": c1 - c0,
        "wall_s": w1 - w0,
        "audio_bytes": [n],
        "sha256": digest,
        "audio_type": type(out["audio"]).__name__,
        "rss_before_mb": rss0 / 1e6,
        "peak_rss_mb": peak / 1e6,
        "peak_growth_mb": (peak - rss0) / 1e6,
        "peak_reset": reset_ok,
        "errors": [],
    }


def main():
    t_start = perf()
    voice = fetch_voice_of(CONFIG)
    scenario = {"stream": scenario_stream, "ttfa": scenario_ttfa, "memory": scenario_memory}[
        CONFIG["scenario"]
    ]
    result = scenario(CONFIG, voice)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    try:
        from cartesia.streaming import IMPLEMENTATION as core  # ours only
    except ImportError:
        core = "n/a"
    result.update(
        streaming_core=core,
        cartesia_file=cartesia.__file__,
        cartesia_version=getattr(cartesia, "__version__", None) or installed_version("cartesia"),
        python=sys.version.split()[0],
        process_peak_rss_mb=maxrss / 1e6,
        total_wall_s=perf() - t_start,
    )
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    # Skip interpreter teardown: 0.0.5's __del__ methods log noise about closed loops there.
    os._exit(0)


if __name__ == "__main__":
    main()
