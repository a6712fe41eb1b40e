"""Peak memory of accumulating a whole generation, measured alone in a fresh process.

``python -m benchmarks.buffer_peak <c|py|list+join> <pcm|b64> [seconds] [numpy|bytes]`` prints one
JSON object; the last argument picks ``to_numpy()`` (the default) or ``to_bytes()`` as the result.
A fresh process matters: freed heap pages left resident by earlier work would hide growth.
"""

from __future__ import annotations

import base64
import gc
import importlib
import json
import sys
from typing import Callable, List, Union

import numpy as np
import pybase64

from . import workload as W
from .memory import measure_peak


def accumulate(
    impl: str, source: str, frames: List[bytes], output: str = "numpy"
) -> Callable[[], Union[np.ndarray, bytes]]:
    """The accumulation under test, as a callable returning float32 samples (or their bytes)."""
    if impl == "list+join":
        b64decode = base64.b64decode  # the seed decodes each chunk with the stdlib

        def run() -> Union[np.ndarray, bytes]:
            # What 0.0.5's generate(stream=False) does: keep every chunk, then join them.
            chunks = []
            for f in frames:
                chunks.append(f if source == "pcm" else b64decode(f))
            joined = b"".join(chunks)
            return joined if output == "bytes" else np.frombuffer(joined, dtype="<f4")

        return run
    mod = importlib.import_module(f"cartesia._stream_{impl}")

    def run() -> Union[np.ndarray, bytes]:
        buf = mod.AudioBuffer()
        append = buf.append if source == "pcm" else buf.append_b64
        for f in frames:
            append(f)
        return buf.to_bytes() if output == "bytes" else buf.to_numpy()

    return run


def frames_for(source: str, seconds: float) -> List[bytes]:
    """``seconds`` of 0.1 s frames (the 60 s workload repeated), as PCM or as base64."""
    reps = int(seconds / W.SECONDS)
    payloads = W.payloads(0.1)
    if source == "pcm":
        return [pybase64.b64decode(p) for p in payloads] * reps
    return payloads * reps


def main(argv: List[str]) -> int:
    impl, source = argv[0], argv[1]
    seconds = float(argv[2]) if len(argv) > 2 else 600.0
    output = argv[3] if len(argv) > 3 else "numpy"
    frames = frames_for(source, seconds)
    run = accumulate(impl, source, frames, output)
    gc.collect()
    result, peak = measure_peak(run)
    audio = W.pcm_bytes(0.1) * int(seconds / W.SECONDS)
    if isinstance(result, bytes):
        ok = len(result) == audio
    else:
        ok = result.dtype == np.float32 and result.nbytes == audio
    print(json.dumps({"impl": impl, "source": source, "output": output, "audio_bytes": audio,
                      "peak_bytes": peak, "peak_over_audio": round(peak / audio, 3), "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
