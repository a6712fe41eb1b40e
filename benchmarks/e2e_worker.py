"""One end-to-end client run in its own process; works with our client and with the official 0.0.5.

Run by ``benchmarks.e2e`` as ``python -I e2e_worker.py '<json config>'`` with either interpreter, so
it only uses the standard library plus whatever ``cartesia`` that interpreter imports; it drives
both clients through the API they share (``CartesiaTTS`` / ``AsyncCartesiaTTS``, ``generate``).
It prints one JSON object on stdout and nothing else.

Scenarios:
    stream: ``concurrency`` streams at once (threads for sync, tasks for async), each with its own
        client, each running ``rounds`` generations one after another (``stream=True``), after
        one untimed warm-up generation per client.
    ttfa: one client, ``rounds`` sequential short streamed generations after one warm-up.
    memory: one client, one non-streamed generation (``stream=False``) after a warm-up; peak RSS.
"""

import asyncio
import gc
import hashlib
import json
import os
import re
import resource
import sys
import threading
import time

CONFIG = json.loads(sys.argv[1])
for _p in reversed(CONFIG.get("sys_path", [])):
    sys.path.insert(0, _p)
os.environ["CARTESIA_BASE_URL"] = CONFIG["base_url"]
os.environ["CARTESIA_API_KEY"] = CONFIG["api_key"]

import cartesia  # noqa: E402  (after the path and the environment are set)
from cartesia.tts import AsyncCartesiaTTS, CartesiaTTS  # noqa: E402

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


def fetch_voice():
    client = CartesiaTTS()
    voices = client.get_voices()
    voice_id = sorted(v["id"] for v in voices.values())[0]
    embedding = client.get_voice_embedding(voice_id=voice_id)
    client.close()
    return embedding


# --- sync ----------------------------------------------------------------------------------------


def sync_stream(client, kw):
    t0 = perf()
    first = None
    n = 0
    for chunk in client.generate(**kw):
        audio = chunk["audio"]
        if first is None and audio:
            first = perf() - t0
        n += len(audio)
    return n, first


def run_sync(cfg, voice, rounds, concurrency, transcript, duration):
    websocket = cfg["transport"] == "ws"
    kw = gen_kwargs(transcript, duration, voice, websocket, True)
    warm = gen_kwargs(transcript, WARMUP_SECONDS, voice, websocket, True)
    results = []
    errors = []
    lock = threading.Lock()
    barrier = threading.Barrier(concurrency + 1)
    clients = [CartesiaTTS() for _ in range(concurrency)]

    def worker(client):
        try:
            sync_stream(client, warm)
        except Exception as exc:
            with lock:
                errors.append(f"warm-up {type(exc).__name__}: {str(exc)[:200]}")
        barrier.wait()
        for _ in range(rounds):
            try:
                r = sync_stream(client, kw)
            except Exception as exc:  # recorded, the harness reports it
                with lock:
                    errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                continue
            with lock:
                results.append(r)

    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    gc.collect()
    c0, w0 = cpu_seconds(), perf()
    barrier.wait()
    for t in threads:
        t.join()
    c1, w1 = cpu_seconds(), perf()
    for c in clients:
        c.close()
    return results, errors, c1 - c0, w1 - w0


# --- async ---------------------------------------------------------------------------------------


async def async_stream(client, kw):
    t0 = perf()
    first = None
    n = 0
    gen = await client.generate(**kw)
    async for chunk in gen:
        audio = chunk["audio"]
        if first is None and audio:
            first = perf() - t0
        n += len(audio)
    return n, first


async def run_async_main(cfg, voice, rounds, concurrency, transcript, duration):
    websocket = cfg["transport"] == "ws"
    kw = gen_kwargs(transcript, duration, voice, websocket, True)
    warm = gen_kwargs(transcript, WARMUP_SECONDS, voice, websocket, True)
    results = []
    errors = []
    clients = [AsyncCartesiaTTS() for _ in range(concurrency)]
    for r in await asyncio.gather(*(async_stream(c, warm) for c in clients), return_exceptions=True):
        if isinstance(r, BaseException):
            errors.append(f"warm-up {type(r).__name__}: {str(r)[:200]}")

    async def worker(client):
        for _ in range(rounds):
            try:
                results.append(await async_stream(client, kw))
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")

    gc.collect()
    c0, w0 = cpu_seconds(), perf()
    await asyncio.gather(*(worker(c) for c in clients))
    c1, w1 = cpu_seconds(), perf()
    for c in clients:
        await c.close()
    return results, errors, c1 - c0, w1 - w0


def run_async(cfg, voice, rounds, concurrency, transcript, duration):
    return asyncio.run(run_async_main(cfg, voice, rounds, concurrency, transcript, duration))


# --- scenarios -----------------------------------------------------------------------------------


def scenario_stream(cfg, voice):
    run = run_sync if cfg["mode"] == "sync" else run_async
    rss_before = status_kib("VmRSS") * 1024
    results, errors, cpu, wall = run(
        cfg, voice, cfg["rounds"], cfg["concurrency"], cfg["transcript"], cfg["duration"]
    )
    return {
        "cpu_s": cpu,
        "wall_s": wall,
        "audio_bytes": [n for n, _ in results],
        "ttfa_s": [t for _, t in results if t is not None],
        "errors": errors,
        "rss_before_mb": rss_before / 1e6,
    }


def scenario_ttfa(cfg, voice):
    websocket = cfg["transport"] == "ws"
    kw = gen_kwargs(cfg["transcript"], cfg["duration"], voice, websocket, True)
    ttfa, sizes, errors = [], [], []
    if cfg["mode"] == "sync":
        client = CartesiaTTS()
        sync_stream(client, kw)  # warm-up: ours opens its websocket here and keeps it
        c0 = cpu_seconds()
        for _ in range(cfg["rounds"]):
            try:
                n, first = sync_stream(client, kw)
                sizes.append(n)
                ttfa.append(first)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
        cpu = cpu_seconds() - c0
        client.close()
    else:

        async def main():
            client = AsyncCartesiaTTS()
            await async_stream(client, kw)
            c0 = cpu_seconds()
            for _ in range(cfg["rounds"]):
                try:
                    n, first = await async_stream(client, kw)
                    sizes.append(n)
                    ttfa.append(first)
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            cpu = cpu_seconds() - c0
            await client.close()
            return cpu

        cpu = asyncio.run(main())
    return {"cpu_s": cpu, "audio_bytes": sizes, "ttfa_s": ttfa, "errors": errors}


def scenario_memory(cfg, voice):
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
    voice = fetch_voice()
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
        cartesia_version=getattr(cartesia, "__version__", "?"),
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
