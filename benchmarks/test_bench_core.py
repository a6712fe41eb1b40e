"""Streaming core: compiled twin vs pure twin vs the official 0.0.5 parser vs pybase64 alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Callable, List

import numpy as np
import pybase64
import pytest

from . import buffer_peak
from . import workload as W
from .conftest import IMPLEMENTATIONS

MB = 1e6


def _frame_id(t: float) -> str:
    return f"{t:g}s"


def _read_id(n: int) -> str:
    return f"{n // 1024}KiB"


def _info(benchmark, **kw) -> None:
    benchmark.extra_info.update(kw)


def _ceiling_runner(frame_time: float) -> Callable[[], int]:
    """The physical limit: pybase64 (validate=True) over the pre-extracted payloads only."""
    payloads = W.payloads(frame_time)
    b64decode = pybase64.b64decode

    def run() -> int:
        n = 0
        for p in payloads:
            n += len(b64decode(p, validate=True))
        return n

    return run


def _body_runner(impl: str, wl: W.Workload, twin_loader, seed_tts) -> Callable[[], int]:
    """A callable that consumes the whole workload once and returns the decoded audio bytes."""
    reads = wl.reads
    if impl in ("c+sink", "py+sink"):
        mod = twin_loader(impl.split("+")[0])
        framing = "json" if wl.framing == "bare" else "sse"

        # The client's non-streamed path: audio decoded straight into an AudioBuffer.
        def run() -> int:
            buf = mod.AudioBuffer()
            parser = mod.StreamParser(framing, sink=buf)
            for read in reads:
                parser.feed(read)
            parser.close()
            return len(buf) * 4

        return run
    if impl in ("c", "py"):
        mod = twin_loader(impl)
        framing = "json" if wl.framing == "bare" else "sse"

        def run() -> int:
            parser = mod.StreamParser(framing)
            n = 0
            for read in reads:
                for msg in parser.feed(read):
                    n += len(msg.audio)
            for msg in parser.close():
                n += len(msg.audio)
            return n

        return run
    if impl == "seed":
        update_buffer = seed_tts.update_buffer

        # What 0.0.5's _generate_http does per network read (the consumer only keeps the bytes).
        def run() -> int:
            buffer = ""
            n = 0
            for read in reads:
                buffer, outputs = update_buffer(buffer, read)
                for out in outputs:
                    n += len(out["audio"])
            return n

        return run
    if impl == "ceiling":
        return _ceiling_runner(wl.frame_time)
    raise AssertionError(impl)


def _bench_body(benchmark, impl, framing, read_size, frame_time, twin_loader, seed_tts) -> None:
    """Benchmark one implementation on one HTTP-body cell; every decoded byte must come out."""
    wl = W.workload(framing, frame_time, read_size)
    run = _body_runner(impl, wl, twin_loader, seed_tts)
    benchmark.group = f"body {framing} frame={_frame_id(frame_time)} read={_read_id(read_size)}"
    _info(
        benchmark,
        kind="body",
        impl=impl,
        framing=framing,
        read_size=read_size,
        frame_time=frame_time,
        wire_mb=wl.wire_bytes / MB,
        audio_s=wl.audio_seconds,
        frames=wl.frames,
    )
    assert benchmark(run) == wl.pcm_bytes


@pytest.mark.parametrize("frame_time", W.FRAME_TIMES, ids=_frame_id)
@pytest.mark.parametrize("read_size", W.READ_SIZES, ids=_read_id)
@pytest.mark.parametrize("framing", W.FRAMINGS)
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_http_body(benchmark, impl, framing, read_size, frame_time, twin_loader, seed_tts):
    """60 s of audio as one HTTP body, fed in network reads; decoded audio bytes out."""
    _bench_body(benchmark, impl, framing, read_size, frame_time, twin_loader, seed_tts)


@pytest.mark.parametrize("read_size", W.READ_SIZES, ids=_read_id)
@pytest.mark.parametrize("framing", W.FRAMINGS)
@pytest.mark.parametrize("impl", ["c+sink", "py+sink"])
def test_http_body_into_buffer(benchmark, impl, framing, read_size, twin_loader, seed_tts):
    """As test_http_body (0.1 s frames), decoding into an AudioBuffer sink instead of bytes."""
    frame_time = 0.1
    _bench_body(benchmark, impl, framing, read_size, frame_time, twin_loader, seed_tts)


def _ws_runner(impl: str, frame_time: float, twin_loader, seed_tts) -> Callable[[], int]:
    messages = W.ws_messages(frame_time)
    if impl in ("c", "py"):
        parse_message = twin_loader(impl).parse_message

        def run() -> int:
            n = 0
            for m in messages:
                n += len(parse_message(m).audio)
            return n

        return run
    if impl == "seed":
        # websockets' recv() hands 0.0.5 a str for a text frame; it then does this per message.
        texts = [m.decode("utf-8") for m in messages]
        convert_response = seed_tts.convert_response
        loads = json.loads

        def run() -> int:
            n = 0
            for t in texts:
                response = loads(t)
                if response["done"]:
                    break
                n += len(convert_response(response, False)["audio"])
            return n

        return run
    if impl == "ceiling":
        return _ceiling_runner(frame_time)
    raise AssertionError(impl)


@pytest.mark.parametrize("frame_time", W.FRAME_TIMES, ids=_frame_id)
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_ws_messages(benchmark, impl, frame_time, twin_loader, seed_tts):
    """60 s of audio as websocket text messages, one parse per message."""
    messages = W.ws_messages(frame_time)
    run = _ws_runner(impl, frame_time, twin_loader, seed_tts)
    benchmark.group = f"ws frame={_frame_id(frame_time)}"
    _info(
        benchmark,
        kind="ws",
        impl=impl,
        framing="ws",
        frame_time=frame_time,
        wire_mb=sum(map(len, messages)) / MB,
        audio_s=W.SECONDS,
        frames=len(messages),
    )
    assert benchmark(run) == W.pcm_bytes(frame_time)


# --- PCMRing: producer writes frames, consumer reads 10 ms blocks --------------------------------

RING_BLOCK = 441  # 10 ms at 44.1 kHz, a typical audio-callback size


@pytest.mark.parametrize("source", ["pcm", "b64"])
@pytest.mark.parametrize("impl", ["c", "py"])
def test_pcm_ring(benchmark, impl, source, twin_loader):
    """60 s of 0.1 s frames written to a 1 s PCMRing and drained in 10 ms blocks."""
    mod = twin_loader(impl)
    if source == "pcm":
        frames: List[bytes] = [pybase64.b64decode(p) for p in W.payloads(0.1)]
    else:
        frames = W.payloads(0.1)
    out = np.empty(RING_BLOCK, dtype=np.float32)

    def run() -> int:
        ring = mod.PCMRing(W.SAMPLE_RATE)
        write = ring.write if source == "pcm" else ring.write_b64
        readinto = ring.readinto
        n = 0
        for f in frames:
            write(f)
            while len(ring) >= RING_BLOCK:
                n += readinto(out)
        rest = len(ring)
        if rest:
            n += len(ring.read(rest))
        return n

    benchmark.group = f"ring write_{source if source == 'b64' else ''}".rstrip("_") + " + readinto 10ms"
    _info(benchmark, kind="ring", impl=impl, source=source, audio_s=W.SECONDS, frames=len(frames))
    assert benchmark(run) == W.pcm_bytes(0.1) // 4


# --- Whole 10-minute generation: AudioBuffer vs the seed's list + b"".join -------------------------

TEN_MINUTES = 600.0


def _peak_in_fresh_process(impl: str, source: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.buffer_peak", impl, source, str(TEN_MINUTES)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


@pytest.mark.parametrize("source", ["pcm", "b64"])
@pytest.mark.parametrize("impl", ["c", "py", "list+join"])
def test_audio_buffer(benchmark, impl, source, twin_loader):
    """Accumulate a 10-minute generation (6,000 frames of 0.1 s) and get it as float32 numpy."""
    if impl != "list+join":
        twin_loader(impl)  # fail (or skip) here, not in the subprocess, if the twin is missing
    frames = buffer_peak.frames_for(source, TEN_MINUTES)
    audio_bytes = W.pcm_bytes(0.1) * int(TEN_MINUTES / W.SECONDS)
    run = buffer_peak.accumulate(impl, source, frames)
    peak = _peak_in_fresh_process(impl, source)
    assert peak["ok"], peak
    benchmark.group = f"10-min generation, append {source}"
    _info(
        benchmark,
        kind="buffer",
        impl=impl,
        source=source,
        audio_s=TEN_MINUTES,
        audio_mb=audio_bytes / MB,
        peak_rss_mb=peak["peak_bytes"] / MB,
        peak_over_audio=peak["peak_bytes"] / audio_bytes,
    )
    result = benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    assert result.nbytes == audio_bytes
