"""Peak memory of one whole generation through each client, each case in a fresh process.

``python -m benchmarks.generation_peak [minutes] [--only KEY]`` starts the local server (tone engine,
no pacing) and prints one JSON line per case: the v0 client (``CartesiaTTS.generate(stream=False)``,
HTTP and websocket, ``bytes`` and ``as_numpy=True``) and the current one (``Cartesia().tts.generate``
then ``read()`` or ``to_numpy()``). *peak/audio* = (peak RSS during the call - RSS before it) / audio
bytes; the returned audio is part of the peak, so 1.0 is the floor.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from typing import Any, Dict, List

from .memory import measure_peak

CASES = ("v0/http/bytes", "v0/http/numpy", "v0/ws/bytes", "v0/ws/numpy", "current/bytes", "current/numpy")
API_KEY = "bench-local-key"
WORD = "speech "  # ~0.435 s of tone audio per word (see e2e.py)


def _transcript(minutes: float) -> str:
    return (WORD * (int(minutes * 60 / 0.435) + 1)).strip()


def worker(case: str, base_url: str, minutes: float) -> Dict[str, Any]:
    """Run ``case`` once after a warm-up; return its audio size and peak growth."""
    os.environ["CARTESIA_BASE_URL"] = base_url
    os.environ["CARTESIA_API_KEY"] = API_KEY
    api, transport, out = case.split("/") if case.startswith("v0") else ("current", "http", case.split("/")[1])
    text = _transcript(minutes)
    if api == "v0":
        from cartesia.tts import CartesiaTTS

        client = CartesiaTTS()
        voice = client.get_voice_embedding(voice_id=sorted(client.get_voices())[0])
        kw = dict(voice=voice, stream=False, websocket=transport == "ws", as_numpy=out == "numpy")
        client.generate(transcript="Warm up.", **kw)
        gc.collect()
        result, peak = measure_peak(lambda: client.generate(transcript=text, **kw)["audio"])
    else:
        from cartesia import Cartesia

        client = Cartesia(api_key=API_KEY, base_url=base_url)
        from cartesia.server.voices import CATALOGUE  # the local server's voices

        voice_id = CATALOGUE[0].id
        kw = dict(
            model_id="sonic-3",
            voice={"mode": "id", "id": voice_id},
            output_format={"container": "raw", "encoding": "pcm_f32le", "sample_rate": 44100},
        )
        client.tts.generate(transcript="Warm up.", **kw).read()
        gc.collect()

        def run() -> Any:
            response = client.tts.generate(transcript=text, **kw)
            return response.to_numpy() if out == "numpy" else response.read()

        result, peak = measure_peak(run)
    size = result.nbytes if hasattr(result, "nbytes") else len(result)
    client.close()
    return {"case": case, "type": type(result).__name__, "audio_bytes": size, "peak_bytes": peak,
            "peak_over_audio": round(peak / size, 3)}


def main(argv: List[str]) -> int:
    if argv and argv[0] == "--worker":
        print(json.dumps(worker(argv[1], argv[2], float(argv[3]))))
        return 0
    minutes = float(argv[0]) if argv and not argv[0].startswith("-") else 10.0
    only = argv[argv.index("--only") + 1] if "--only" in argv else ""
    from .e2e import ROOT, local_server

    with local_server() as url:
        for case in CASES:
            if only not in case:
                continue
            cmd = [sys.executable, "-m", "benchmarks.generation_peak", "--worker", case, f"http://{url}", str(minutes)]
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
            print(proc.stdout.strip() or json.dumps({"case": case, "error": proc.stderr[-2000:]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
