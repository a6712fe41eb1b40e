"""Turn benchmark results into ``benchmarks/results/report.md``, ``summary.json`` and PNG plots.

Usage::

    python -m benchmarks.report                 # from the newest results in results/raw/
    python -m benchmarks.report --run           # run the core and e2e benchmarks first (~3-5 min)
    python -m benchmarks.report --run --quick   # shorter core rounds, quick e2e matrix (~1-2 min)

Core results are pytest-benchmark JSON (``--benchmark-json``); e2e results come from
``python -m benchmarks.e2e`` or, if there is none, from the e2e tests inside the pytest JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
RAW = RESULTS / "raw"
IMPLS = ("c", "py", "seed", "ceiling")

# Targets of issues 2 and 5 (reported, never asserted).
T_C_VS_SEED = 10.0
T_C_VS_CEILING = 3.0
T_C_VS_CEILING_STRETCH = 1.5
T_WS_VS_SEED = 5.0
T_E2E_HTTP = 5.0
T_E2E_WS = 3.0
T_MEMORY = 1.2
T_TTFA = 2.0


# --- loading -------------------------------------------------------------------------------------


def _newest(pattern: str) -> Optional[Path]:
    files = sorted(RAW.glob(pattern), key=lambda p: p.stat().st_mtime)
    return files[-1] if files else None


def load_core(path: Optional[Path]) -> Tuple[Optional[Path], Dict[str, Any]]:
    path = path or _newest("bench-*.json")
    if path is None:
        return None, {}
    return path, json.loads(path.read_text())


def load_e2e(
    path: Optional[Path], core: Dict[str, Any], core_path: Optional[Path]
) -> Tuple[Optional[str], Dict[str, Any]]:
    """The e2e results: ``path``, else the newer of results/raw/e2e-*.json and the pytest JSON's."""
    if path is not None:
        return str(path), json.loads(path.read_text())
    rows = [b["extra_info"]["e2e"] for b in core.get("benchmarks", []) if b["extra_info"].get("kind") == "e2e"]
    newest = _newest("e2e-*.json")
    if rows and (newest is None or (core_path and core_path.stat().st_mtime > newest.stat().st_mtime)):
        info = core.get("machine_info", {}).get("cartesia", {})
        problems = [f"{r['impl']} {r['case']}: {p}" for r in rows for p in r.get("problems", [])]
        return f"{core_path.name} (pytest)", {"results": rows, "machine": info, "problems": problems}
    if newest is not None:
        return str(newest), json.loads(newest.read_text())
    return None, {}


# --- formatting ----------------------------------------------------------------------------------


def f(x: Optional[float], spec: str = ".1f") -> str:
    return "–" if x is None else format(x, spec)


def fx(x: Optional[float], spec: str = ".1f") -> str:
    """A ratio with its × sign, or a dash."""
    return "–" if x is None else format(x, spec) + "×"


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None or b == 0:
        return None
    return a / b


def table(header: List[str], rows: Iterable[List[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def verdict(ok: Optional[bool]) -> str:
    return "–" if ok is None else ("**met**" if ok else "**missed**")


# --- core ----------------------------------------------------------------------------------------


def core_cells(core: Dict[str, Any]) -> Dict[Tuple, Dict[str, Dict[str, float]]]:
    """{(kind, framing, frame_time, read_size): {impl: {"median_s", "wire_mb", "audio_s"}}}."""
    cells: Dict[Tuple, Dict[str, Dict[str, float]]] = defaultdict(dict)
    for b in core.get("benchmarks", []):
        e = b["extra_info"]
        if e.get("kind") not in ("body", "ws"):
            continue
        key = (e["kind"], e["framing"], e["frame_time"], e.get("read_size", 0))
        cells[key][e["impl"]] = {
            "median_s": b["stats"]["median"],
            "wire_mb": e["wire_mb"],
            "audio_s": e["audio_s"],
        }
    return dict(sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], kv[0][3])))


def core_section(core: Dict[str, Any], summary: Dict[str, Any]) -> List[str]:
    cells = core_cells(core)
    if not cells:
        return ["_No core results (run `pytest benchmarks/test_bench_core.py --benchmark-only`)._"]
    lines = [
        "Throughput = wire MB of the 60 s workload / median time per pass (the ceiling decodes only the "
        "pre-extracted base64 but is divided by the same wire bytes, so every column compares the same "
        "job). Speed-ups are time ratios. c→AudioBuffer: the compiled parser decoding into an `AudioBuffer` "
        "sink (what a non-streamed generation does) instead of returning bytes per message.",
        "",
    ]
    rows = []
    summ = []
    for (kind, framing, ft, rs), impls in cells.items():
        mbps = {i: impls[i]["wire_mb"] / impls[i]["median_s"] for i in impls}
        t = {i: impls[i]["median_s"] for i in impls}
        per_audio = {i: 1000 * t[i] / impls[i]["audio_s"] for i in impls}
        name = "websocket msgs" if kind == "ws" else framing
        read = "–" if kind == "ws" else f"{rs // 1024} KiB"
        row = {
            "kind": kind,
            "framing": framing,
            "frame_s": ft,
            "read_kib": rs // 1024,
            "mb_per_s": mbps,
            "ms_per_audio_s": per_audio,
            "c_vs_seed": ratio(t.get("seed"), t.get("c")),
            "py_vs_seed": ratio(t.get("seed"), t.get("py")),
            "c_over_ceiling": ratio(t.get("c"), t.get("ceiling")),
            "seed_over_ceiling": ratio(t.get("seed"), t.get("ceiling")),
        }
        summ.append(row)
        rows.append(
            [name, f"{ft:g} s", read]
            + [f(mbps.get(i), ".0f") for i in IMPLS + ("c+sink",)]
            + [
                fx(row["c_vs_seed"]),
                fx(row["py_vs_seed"], ".2f"),
                fx(row["c_over_ceiling"], ".2f"),
                f(per_audio.get("c"), ".3f"),
                f(per_audio.get("seed"), ".3f"),
            ]
        )
    lines.append(
        table(
            [
                "framing", "frame", "read", "c MB/s", "py MB/s", "seed MB/s", "ceiling MB/s", "c→AudioBuffer MB/s",
                "c vs seed", "py vs seed", "c / ceiling (time)", "c ms per audio-s", "seed ms per audio-s",
            ],
            rows,
        )
    )
    summary["core"] = summ

    # Targets of issue 2.
    body = [r for r in summ if r["kind"] == "body"]
    ws = [r for r in summ if r["kind"] == "ws"]
    c_seed = [r["c_vs_seed"] for r in body + ws if r["c_vs_seed"] is not None]
    c_ceiling64 = [r["c_over_ceiling"] for r in body if r["read_kib"] == 64 and r["c_over_ceiling"]]
    ws_seed = [r["c_vs_seed"] for r in ws if r["c_vs_seed"] is not None]
    py_seed = [r["py_vs_seed"] for r in body + ws if r["py_vs_seed"] is not None]
    targets = [
        ("compiled ≥ 10× seed in every cell", f"min {fx(min(c_seed, default=None))}",
         verdict(min(c_seed) >= T_C_VS_SEED) if c_seed else "–"),
        ("compiled within 3× of the ceiling at 64 KiB reads", f"worst {fx(max(c_ceiling64, default=None), '.2f')}",
         verdict(max(c_ceiling64) <= T_C_VS_CEILING) if c_ceiling64 else "–"),
        ("stretch: within 1.5× of the ceiling at 64 KiB", f"worst {fx(max(c_ceiling64, default=None), '.2f')}",
         verdict(max(c_ceiling64) <= T_C_VS_CEILING_STRETCH) if c_ceiling64 else "–"),
        ("parse_message ≥ 5× the seed's websocket path", f"min {fx(min(ws_seed, default=None))}",
         verdict(min(ws_seed) >= T_WS_VS_SEED) if ws_seed else "–"),
        ("pure twin never slower than the seed", f"min {fx(min(py_seed, default=None), '.2f')}",
         verdict(min(py_seed) >= 1.0) if py_seed else "–"),
    ]
    summary["core_targets"] = [list(t) for t in targets]
    lines += ["", "Targets (issue 2):", "", table(["target", "measured", "verdict"], [list(t) for t in targets])]

    # Ring and AudioBuffer.
    other = [b for b in core.get("benchmarks", []) if b["extra_info"].get("kind") in ("ring", "buffer")]
    ring = [b for b in other if b["extra_info"]["kind"] == "ring"]
    if ring:
        rows = []
        for b in sorted(ring, key=lambda b: (b["extra_info"]["source"], b["extra_info"]["impl"])):
            e = b["extra_info"]
            rows.append([e["impl"], "write_b64" if e["source"] == "b64" else "write",
                         f(1000 * b["stats"]["median"], ".2f"),
                         f(1e6 * b["stats"]["median"] / e["audio_s"], ".1f")])
        lines += ["", "### PCMRing: 60 s of 0.1 s frames through a 1 s ring, drained in 10 ms `readinto` blocks", "",
                  table(["impl", "producer", "ms per 60 s", "µs per audio-s"], rows)]
    buf = [b for b in other if b["extra_info"]["kind"] == "buffer"]
    if buf:
        rows = []
        summ_buf = []
        for b in sorted(buf, key=lambda b: (b["extra_info"]["source"], b["extra_info"]["impl"])):
            e = b["extra_info"]
            rows.append([e["impl"], "base64 chunks" if e["source"] == "b64" else "PCM chunks",
                         f(1000 * b["stats"]["median"], ".1f"), f(e["audio_mb"], ".1f"),
                         f(e["peak_rss_mb"], ".1f"), fx(e["peak_over_audio"], ".2f")])
            summ_buf.append({k: e[k] for k in ("impl", "source", "audio_mb", "peak_rss_mb", "peak_over_audio")}
                            | {"median_ms": 1000 * b["stats"]["median"]})
        summary["audio_buffer"] = summ_buf
        lines += ["", "### Whole 10-minute generation in memory: `AudioBuffer` vs 0.0.5's list + `b\"\".join`",
                  "", "Peak = RSS growth during one accumulation (input chunks excluded, result included).", "",
                  table(["impl", "input", "ms", "audio MB", "peak MB", "peak / audio"], rows)]
    return lines


# --- e2e -----------------------------------------------------------------------------------------


def _e2e_index(e2e: Dict[str, Any]) -> Dict[Tuple, Dict[str, Dict[str, Any]]]:
    idx: Dict[Tuple, Dict[str, Dict[str, Any]]] = defaultdict(dict)
    for r in e2e.get("results", []):
        c = r["case"]
        impl = r["impl"] + ("+numpy" if c.get("as_numpy") else "")
        idx[(c["scenario"], c["mode"], c["transport"], c["concurrency"], c.get("rtt_ms", 0.0))][impl] = r
    return idx


def e2e_section(e2e: Dict[str, Any], summary: Dict[str, Any]) -> List[str]:
    idx = _e2e_index(e2e)
    if not idx:
        return ["_No end-to-end results (run `python -m benchmarks.e2e`)._"]
    lines: List[str] = []
    m = lambda r, k: (r or {}).get("metrics", {}).get(k)  # noqa: E731

    rows, summ = [], []
    for (sc, mode, tr, conc, _), pair in sorted(idx.items(), key=lambda kv: (kv[0][2], kv[0][1], kv[0][3])):
        if sc != "stream":
            continue
        o, s = pair.get("ours"), pair.get("seed")
        cpu_o, cpu_s = m(o, "cpu_ms_per_audio_s"), m(s, "cpu_ms_per_audio_s")
        row = {
            "mode": mode, "transport": tr, "concurrency": conc,
            "ours_cpu_ms_per_audio_s": cpu_o, "seed_cpu_ms_per_audio_s": cpu_s,
            "cpu_ratio": ratio(cpu_s, cpu_o),
            "ours_ttfa_p50_ms": m(o, "ttfa_median_ms"), "seed_ttfa_p50_ms": m(s, "ttfa_median_ms"),
            "ours_ttfa_p95_ms": m(o, "ttfa_p95_ms"), "seed_ttfa_p95_ms": m(s, "ttfa_p95_ms"),
            "ours_peak_rss_mb": m(o, "process_peak_rss_mb"), "seed_peak_rss_mb": m(s, "process_peak_rss_mb"),
            "audio_s": m(o, "audio_s"),
            "problems": (o or {}).get("problems", []) + (s or {}).get("problems", []),
        }
        summ.append(row)
        rows.append([
            mode, tr, str(conc), f(row["audio_s"], ".0f"),
            f(cpu_o, ".3f"), f(cpu_s, ".3f"), fx(row["cpu_ratio"]),
            f"{f(row['ours_ttfa_p50_ms'])} / {f(row['ours_ttfa_p95_ms'])}",
            f"{f(row['seed_ttfa_p50_ms'])} / {f(row['seed_ttfa_p95_ms'])}",
            f(row["ours_peak_rss_mb"], ".0f"), f(row["seed_peak_rss_mb"], ".0f"),
            "⚠ " + "; ".join(row["problems"])[:120] if row["problems"] else "",
        ])
    summary["e2e_streams"] = summ
    lines += [
        "### Concurrent streamed generations (`stream=True`), one client per stream",
        "",
        "CPU = user+system seconds of the client process during the timed phase / seconds of audio "
        "received (ms per audio-second; lower is better; ratio = seed / ours). TTFA = from `generate()` "
        "to the first chunk with audio, median / p95 over all streams. RSS = the worker process's peak.",
        "",
        table(["mode", "transport", "streams", "audio s", "ours CPU", "seed CPU", "seed / ours",
               "ours TTFA ms", "seed TTFA ms", "ours RSS MB", "seed RSS MB", "notes"], rows),
    ]

    rows, summ_t = [], []
    for (sc, mode, tr, _conc, rtt), pair in sorted(idx.items(), key=lambda kv: (kv[0][4], kv[0][2] != "ws", kv[0][1])):
        if sc != "ttfa":
            continue
        o, s = pair.get("ours"), pair.get("seed")
        r = {"mode": mode, "transport": tr, "rtt_ms": rtt,
             "ours_p50_ms": m(o, "ttfa_median_ms"), "ours_p95_ms": m(o, "ttfa_p95_ms"),
             "seed_p50_ms": m(s, "ttfa_median_ms"), "seed_p95_ms": m(s, "ttfa_p95_ms")}
        r["ratio_p50"] = ratio(r["seed_p50_ms"], r["ours_p50_ms"])
        summ_t.append(r)
        rows.append([mode, tr, f"{rtt:g}", f(r["ours_p50_ms"], ".2f"), f(r["ours_p95_ms"], ".2f"),
                     f(r["seed_p50_ms"], ".2f"), f(r["seed_p95_ms"], ".2f"), fx(r["ratio_p50"])])
    summary["e2e_ttfa"] = summ_t
    if rows:
        lines += ["", "### Time to first audio, sequential generations on one client", "",
                  "One client, one warm-up generation, then 1 s generations one after another. Ours keeps its "
                  "websocket (and HTTP connections) open; 0.0.5 closes its websocket after every generation and "
                  "reconnects, and its sync HTTP path opens a new connection per request. Added RTT > 0: "
                  "through `latency_proxy.py`, which delays every byte by RTT/2 each way and the first bytes of "
                  "a new connection by one more RTT (the TCP handshake; TLS not simulated). Plain loopback "
                  "(RTT 0) makes connections almost free and hides what reuse saves.", "",
                  table(["mode", "transport", "added RTT ms", "ours p50 ms", "ours p95 ms", "seed p50 ms",
                         "seed p95 ms", "seed / ours (p50)"], rows)]

    rows, summ_m = [], []
    for (sc, mode, tr, _conc, _), pair in sorted(idx.items()):
        if sc != "memory":
            continue
        o, s, on = pair.get("ours"), pair.get("seed"), pair.get("ours+numpy")
        r = {"mode": mode, "transport": tr, "audio_mb": m(o, "audio_mb") or m(s, "audio_mb"),
             "ours_numpy_growth_mb": m(on, "peak_growth_mb"), "ours_numpy_ratio": m(on, "peak_over_audio"),
             "ours_growth_mb": m(o, "peak_growth_mb"), "seed_growth_mb": m(s, "peak_growth_mb"),
             "ours_ratio": m(o, "peak_over_audio"), "seed_ratio": m(s, "peak_over_audio"),
             "ours_cpu_ms_per_audio_s": m(o, "cpu_ms_per_audio_s"),
             "seed_cpu_ms_per_audio_s": m(s, "cpu_ms_per_audio_s")}
        summ_m.append(r)
        rows.append([mode, tr, f(r["audio_mb"], ".1f"), f(r["ours_growth_mb"], ".1f"),
                     fx(r["ours_ratio"], ".2f"), f(r["ours_numpy_growth_mb"], ".1f"),
                     fx(r["ours_numpy_ratio"], ".2f"), f(r["seed_growth_mb"], ".1f"),
                     fx(r["seed_ratio"], ".2f"), f(r["ours_cpu_ms_per_audio_s"], ".3f"),
                     f(r["seed_cpu_ms_per_audio_s"], ".3f")])
    summary["e2e_memory"] = summ_m
    if rows:
        minutes = (summ_m[0]["audio_mb"] or 0) / (44100 * 4 / 1e6) / 60
        lines += ["", f"### Whole {minutes:.0f}-minute generation, `stream=False`", "",
                  "Peak = growth of the client process's peak RSS over its RSS just before `generate()`; "
                  "both clients received byte-identical audio (sha256 checked). `as_numpy=True` is our "
                  "client's option to get float32 samples instead of bytes (not in 0.0.5).", "",
                  table(["mode", "transport", "audio MB", "ours peak MB", "ours / audio",
                         "ours as_numpy peak MB", "as_numpy / audio", "seed peak MB",
                         "seed / audio", "ours CPU ms/audio-s", "seed CPU ms/audio-s"], rows)]

    # Targets of issue 5.
    t_rows = []
    for tr, target in (("http", T_E2E_HTTP), ("ws", T_E2E_WS)):
        for mode in ("sync", "async"):
            r = next((x for x in summ if x["transport"] == tr and x["mode"] == mode and x["concurrency"] == 100), None)
            val = r and r["cpu_ratio"]
            t_rows.append([f"100 streams, {tr}, {mode}: client CPU per audio-s ≥ {target:g}× lower",
                           fx(val) if val else "not run", verdict(val >= target) if val else "–"])
    for r in summ_m:
        val = r["ours_ratio"]
        mins = (r["audio_mb"] or 0) / (44100 * 4 / 1e6) / 60
        t_rows.append([f"{mins:.0f}-min generation ({r['transport']}): peak ≤ {T_MEMORY}× audio",
                       fx(val, ".2f") if val is not None else "–",
                       verdict(val <= T_MEMORY) if val is not None else "–"])
        val = r["ours_numpy_ratio"]
        if val is not None:
            t_rows.append(["... same with `as_numpy=True` (not the 0.0.5 API)", fx(val, ".2f"),
                           verdict(val <= T_MEMORY)])
    for r in summ_t:
        if r["transport"] != "ws":
            continue
        val = r["ratio_p50"]
        t_rows.append([f"TTFA with a reused websocket ({r['mode']}, +{r['rtt_ms']:g} ms RTT) ≥ {T_TTFA:g}× lower",
                       fx(val) if val else "–", verdict(val >= T_TTFA) if val else "–"])
    summary["e2e_targets"] = t_rows
    lines += ["", "Targets (issue 5):", "", table(["target", "measured (seed / ours)", "verdict"], t_rows)]
    if e2e.get("problems"):
        lines += ["", "Problems seen during the run:", ""] + [f"- {p}" for p in e2e["problems"]]
    return lines


# --- plots ---------------------------------------------------------------------------------------


def plots(summary: Dict[str, Any]) -> List[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter
    except ImportError:
        return []
    made = []
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    # Minor ticks of a log axis: label only 2, 3 and 5 of each decade.
    sparse = FuncFormatter(lambda v, _: f"{v:g}" if v > 0 and f"{v:.0e}"[0] in "235" else "")
    core = [r for r in summary.get("core", []) if r["kind"] == "body"]
    if core:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
        for ax, framing in zip(axes, ("bare", "sse")):
            for impl, color in zip(IMPLS, ("tab:blue", "tab:green", "tab:red", "tab:gray")):
                for ft, style in ((0.1, "-o"), (0.5, "--s")):
                    pts = sorted((r["read_kib"], r["mb_per_s"].get(impl)) for r in core
                                 if r["framing"] == framing and r["frame_s"] == ft and r["mb_per_s"].get(impl))
                    if pts:
                        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=color,
                                label=f"{impl}, {ft:g} s frames")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xticks([1, 8, 64], ["1", "8", "64"])
            ax.set_xlabel("network read size (KiB)")
            ax.set_title(f"{framing} framing, 60 s of audio")
            ax.grid(True, which="both", alpha=0.3)
            ax.yaxis.set_major_formatter(plain)
        axes[0].set_ylabel("wire MB/s (log scale, higher is better)")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0.12, 1, 1))
        fig.savefig(RESULTS / "throughput_vs_read_size.png", dpi=110)
        plt.close(fig)
        made.append("throughput_vs_read_size.png")
    streams = summary.get("e2e_streams", [])
    if streams:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
        for ax, tr in zip(axes, ("http", "ws")):
            for impl, color in (("ours", "tab:blue"), ("seed", "tab:red")):
                for mode, style in (("sync", "-o"), ("async", "--s")):
                    pts = sorted((r["concurrency"], r[f"{impl}_cpu_ms_per_audio_s"]) for r in streams
                                 if r["transport"] == tr and r["mode"] == mode and r[f"{impl}_cpu_ms_per_audio_s"])
                    if pts:
                        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=color,
                                label=f"{'cartesia (this)' if impl == 'ours' else 'cartesia 0.0.5'}, {mode}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("concurrent generations")
            ax.set_title("HTTP stream" if tr == "http" else "websocket")
            ax.grid(True, which="both", alpha=0.3)
            ax.xaxis.set_major_formatter(plain)
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(sparse)
        axes[0].set_ylabel("client CPU ms per audio-second (lower is better)")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        fig.savefig(RESULTS / "cpu_vs_concurrency.png", dpi=110)
        plt.close(fig)
        made.append("cpu_vs_concurrency.png")
    return made


# --- driver --------------------------------------------------------------------------------------


def machine_lines(core: Dict[str, Any], e2e: Dict[str, Any]) -> List[str]:
    info = dict(core.get("machine_info", {}).get("cartesia", {}) or e2e.get("machine", {}))
    if not info:
        from .machine import machine_info

        info = machine_info()
    keys = ("cpu", "cores", "python", "numpy", "pybase64", "cartesia_b64_backend", "cartesia_implementation",
            "platform")
    lines = [f"- {k.replace('_', ' ')}: {info[k]}" for k in keys if k in info]
    cores = sorted({r["metrics"].get("streaming_core", "?") for r in e2e.get("results", [])
                    if r["impl"] == "ours" and r.get("metrics")})
    if cores:
        lines.append(f"- streaming core used by our client in the e2e runs: {', '.join(cores)}")
    return lines


def run_benchmarks(quick: bool) -> Tuple[Path, Path]:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    RAW.mkdir(parents=True, exist_ok=True)
    core_json = RAW / f"bench-{stamp}.json"
    e2e_json = RAW / f"e2e-{stamp}.json"
    subprocess.run([sys.executable, "-m", "benchmarks.seed"], cwd=ROOT, check=True)
    # Quick: fewer, shorter rounds. Full: at least 10 rounds per cell, so the median means something.
    rounds = ["--benchmark-max-time=0.25", "--benchmark-min-rounds=3"] if quick else ["--benchmark-min-rounds=10"]
    subprocess.run([sys.executable, "-m", "pytest", "benchmarks/test_bench_core.py", "--benchmark-only",
                    f"--benchmark-json={core_json}", "-q", "-p", "no:cacheprovider", *rounds], cwd=ROOT, check=False)
    cmd = [sys.executable, "-m", "benchmarks.e2e", "--out", str(e2e_json)] + (["--quick"] if quick else [])
    subprocess.run(cmd, cwd=ROOT, check=False)
    return core_json, e2e_json


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="store_true", help="run the benchmarks first")
    ap.add_argument("--quick", action="store_true", help="with --run: the quick e2e matrix")
    ap.add_argument("--core", type=Path, help="pytest-benchmark JSON (default: newest results/raw/bench-*.json)")
    ap.add_argument("--e2e", type=Path, help="e2e JSON (default: newest results/raw/e2e-*.json)")
    args = ap.parse_args(argv)
    if args.run:
        args.core, args.e2e = run_benchmarks(args.quick)
    core_path, core = load_core(args.core)
    e2e_src, e2e = load_e2e(args.e2e, core, core_path)
    summary: Dict[str, Any] = {}
    core_lines = core_section(core, summary)
    e2e_lines = e2e_section(e2e, summary)
    images = plots(summary)
    created = core.get("datetime") or e2e.get("created") or time.strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [
        "# Benchmark report",
        "",
        f"Generated by `python -m benchmarks.report{' --run' if args.run else ''}"
        f"{' --quick' if args.quick else ''}` from core results "
        f"`{core_path.name if core_path else 'none'}` and e2e results `{Path(e2e_src).name if e2e_src else 'none'}` "
        f"({created}). One run on a shared, noisy machine: read the ratios, not the absolute numbers.",
        "",
        "## Machine",
        "",
        *machine_lines(core, e2e),
        "",
        "## Streaming core (60 s of 44.1 kHz float32 audio, docs/perf-baseline.md workload)",
        "",
        *core_lines,
        "",
        "## End to end (local server `--engine tone --pace none` in its own process)",
        "",
        *e2e_lines,
        "",
    ]
    if images:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in images] + [""]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "report.md").write_text("\n".join(lines))
    summary["machine"] = machine_lines(core, e2e)
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"wrote {RESULTS / 'report.md'}" + "".join(f", {p}" for p in images))
    return 0


if __name__ == "__main__":
    sys.exit(main())
