"""``tts.generate(...).read()`` / ``to_numpy()`` hold one copy of the audio, and stay exact (issue 12)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from test_current_http import MODEL, RAW, TEXT, _id, _want
from test_server_v1_http import VOICE

from cartesia import AsyncCartesia, Cartesia
from cartesia.streaming import AudioBuffer

F32 = {"container": "raw", "encoding": "pcm_f32le", "sample_rate": 44100}
LONG_TEXT = "Hello there. How are you? This takes a while to say. " * 3


def _args(fmt, text=TEXT):
    return dict(model_id=MODEL, transcript=text, voice=VOICE.id, output_format=fmt)


def _samples(fmt, body):
    buf = AudioBuffer(encoding=fmt["encoding"])
    buf.append(body)
    return buf.to_numpy()


@pytest.mark.parametrize("fmt", RAW, ids=_id)
def test_to_numpy_then_read_gives_the_exact_body(local_server, fmt):
    want = _want(fmt, LONG_TEXT)
    with Cartesia(api_key=local_server.api_key, base_url=local_server.base_url, timeout=20) as client:
        response = client.tts.generate(**_args(fmt, LONG_TEXT))
        arr = response.to_numpy()
        assert arr.dtype == np.float32 and np.array_equal(arr, _samples(fmt, want))
        assert response.to_numpy().tobytes() == arr.tobytes()
        if fmt["encoding"] == "pcm_f32le":
            # A view on the body, which is immutable bytes: writing needs a copy.
            assert not arr.flags.writeable and np.shares_memory(arr, np.frombuffer(response.read(), "u1"))
            with pytest.raises(ValueError):
                arr[0] = 1.0
        else:
            assert arr.flags.writeable
            arr[:] = 0.0  # a new array: the body is untouched
        assert response.read() == want and response.content == want
        assert b"".join(response.iter_bytes()) == want
        # read() first, then to_numpy(): the same samples.
        again = client.tts.generate(**_args(fmt, LONG_TEXT))
        assert again.read() == want and np.array_equal(again.to_numpy(), _samples(fmt, want))


async def test_async_to_numpy_then_read_gives_the_exact_body(local_server):
    want = _want(F32, LONG_TEXT)
    async with AsyncCartesia(api_key=local_server.api_key, base_url=local_server.base_url, timeout=20) as client:
        response = await client.tts.generate(**_args(F32, LONG_TEXT))
        arr = await response.to_numpy()
        assert arr.tobytes() == want and arr.dtype == np.float32
        assert await response.read() == want
        response = await client.tts.generate(**_args(F32, LONG_TEXT))
        assert await response.read() == want and (await response.to_numpy()).tobytes() == want


# --- peak memory, measured in a client process of its own ---------------------------------------

PEAK_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {bench!r})
    from memory import measure_peak, reset_peak_rss
    from cartesia import Cartesia

    client = Cartesia(api_key=sys.argv[1], base_url=sys.argv[2], timeout=120)
    kw = dict(model_id={model!r}, voice={voice!r}, transcript=" ".join(["speech"] * 400),
              output_format={fmt!r})
    client.tts.generate(**dict(kw, transcript="Warm up.")).read()

    def run():
        response = client.tts.generate(**kw)
        return response.to_numpy() if sys.argv[3] == "numpy" else response.read()

    out, peak = measure_peak(run)
    size = out.nbytes if sys.argv[3] == "numpy" else len(out)
    client.close()
    print(json.dumps({{"reset": reset_peak_rss(), "size": size, "peak": peak}}))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS is read from /proc")
@pytest.mark.parametrize("output", ["bytes", "numpy"])
def test_whole_generation_peaks_near_the_audio_size(local_server, output, tmp_path):
    bench = str(Path(__file__).resolve().parent.parent / "benchmarks")
    script = tmp_path / "peak.py"
    script.write_text(PEAK_SCRIPT.format(bench=bench, model=MODEL, voice=VOICE.id, fmt=F32))
    proc = subprocess.run(
        [sys.executable, str(script), local_server.api_key, local_server.base_url, output],
        capture_output=True, text=True, timeout=240, cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout)
    if not got["reset"]:
        pytest.skip("this kernel does not let a process reset its peak RSS")
    # b"".join held every chunk next to the joined body (2x); to_numpy then also copied it into
    # float32 samples (2.7x). One copy plus a read or two is the floor.
    assert got["size"] > 20_000_000, got
    assert got["peak"] < 1.25 * got["size"], got
