"""AudioBuffer grows in place and hands its samples over without a copy, per twin (issue 12)."""

import base64
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def f32(values):
    return np.asarray(values, dtype="<f4").tobytes()


def test_to_bytes_hands_over_one_object(stream_mod):
    buf = stream_mod.AudioBuffer()
    buf.append(f32(range(5000)))
    first = buf.to_bytes()
    # The buffer's own block is the result: asking again gives the same object, not a copy.
    assert buf.to_bytes() is first and first == f32(range(5000))


def test_bytes_handed_over_never_change(stream_mod):
    buf = stream_mod.AudioBuffer()
    buf.append(f32([1, 2, 3]))
    out = buf.to_bytes()
    buf.append(f32([4]))
    arr = buf.to_numpy()
    arr[:] = 9.0  # the array is a fresh, writable block: the bytes keep their samples
    assert out == f32([1, 2, 3])
    assert buf.to_bytes() == f32([9, 9, 9, 9])


def test_arrays_keep_their_samples_across_growth_and_clear(stream_mod):
    buf = stream_mod.AudioBuffer()
    buf.append(f32([1, 2, 3]))
    early = buf.to_numpy()
    assert early.flags.writeable and early.dtype == np.float32
    for _ in range(200):  # many growths while the early array is alive
        buf.append(f32(range(100)))
    assert early.tolist() == [1.0, 2.0, 3.0]
    early[0] = -1.0  # writing into an old array does not reach the buffer's new block
    assert buf.to_numpy()[:3].tolist() == [1.0, 2.0, 3.0] and len(buf) == 20003
    # With an array alive, to_bytes copies (the array is writable, bytes must not change).
    view = buf.to_numpy()
    out = buf.to_bytes()
    view[1] = 42.0
    assert np.frombuffer(out, "<f4")[1] == 2.0 and buf.to_bytes() is not out
    buf.clear()
    assert view[1] == 42.0 and len(view) == 20003 and buf.to_bytes() == b""


def test_numpy_view_exports_float32_through_the_buffer_protocol(stream_mod):
    buf = stream_mod.AudioBuffer(capacity=4)
    buf.append(f32([0.5, -0.25]))
    arr = buf.to_numpy()
    mem = memoryview(arr)
    assert mem.format == "f" and mem.itemsize == 4 and mem.shape == (2,) and not mem.readonly
    assert bytes(mem) == f32([0.5, -0.25]) and not arr.flags.owndata
    assert buf.to_numpy().size == 2 and stream_mod.AudioBuffer().to_numpy().size == 0


def test_b64_decode_after_a_handover_leaves_the_bytes_alone(stream_mod):
    buf = stream_mod.AudioBuffer()
    buf.append_b64(base64.b64encode(f32([1, 2])))
    out = buf.to_bytes()
    buf.append_b64(base64.b64encode(f32([3, 4, 5])))
    assert out == f32([1, 2]) and buf.to_bytes() == f32([1, 2, 3, 4, 5])


# --- random chunk splits and hand-overs, both twins against a plain model ------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["append", "append", "b64", "bytes", "numpy", "keep", "poke", "clear"]),
        st.binary(max_size=64),
    ),
    max_size=40,
)


def _model(raw, size, pokes):
    """What the buffer must hold: the whole samples of ``raw`` as float32, with the pokes applied."""
    whole = raw[: len(raw) - len(raw) % size]
    if size == 4:
        samples = np.frombuffer(whole, "<f4").copy()
    else:
        samples = np.frombuffer(whole, "<i2").astype("<f4") / np.float32(32768)
    for index, value in pokes.items():
        samples[index] = value
    return samples.astype("<f4").tobytes()


@pytest.mark.hypothesis
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS, st.sampled_from([("pcm_f32le", 4), ("pcm_s16le", 2)]))
def test_random_splits_and_handovers_match_a_model(both_twins, ops, encoding):
    encoding, size = encoding
    results = []
    for mod in both_twins:
        buf = mod.AudioBuffer(encoding=encoding)
        raw, pokes = b"", {}
        kept = []  # [array, still the buffer's own block?]
        handed, log = [], []
        for op, data in ops:
            if op in ("append", "b64"):
                n = buf.append(data) if op == "append" else buf.append_b64(base64.b64encode(data))
                log.append(n)
                raw += data
                if n:  # new samples: the buffer moves on to a block of its own
                    for entry in kept:
                        entry[1] = False
            elif op == "bytes":
                handed.append((buf.to_bytes(), _model(raw, size, pokes)))
            elif op in ("numpy", "keep"):
                arr = buf.to_numpy()
                assert arr.dtype == np.float32 and arr.flags.writeable
                assert arr.tobytes() == _model(raw, size, pokes)
                if op == "keep":
                    kept.append([arr, True])
            elif op == "poke" and kept and kept[-1][0].size:
                arr, shared = kept[-1]
                arr[0] = 7.0
                if shared:  # a view on the buffer's current block: the buffer sees the write
                    pokes[0] = 7.0
            elif op == "clear":
                buf.clear()
                raw, pokes = b"", {}
                for entry in kept:
                    entry[1] = False
            assert buf.to_numpy().tobytes() == _model(raw, size, pokes)
            assert buf.pending_bytes == len(raw) % size
        for out, want in handed:
            assert out == want  # bytes once handed over never change
        results.append((log, buf.to_bytes(), buf.pending_bytes, [bytes(a) for a, _ in kept]))
    assert all(r == results[0] for r in results)


# --- peak memory of a whole generation (a fresh process: freed pages would hide growth) ---------

PEAK_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {bench!r})
    import importlib
    from memory import measure_peak, reset_peak_rss
    mod = importlib.import_module("cartesia._stream_" + sys.argv[1])
    chunk = bytes(range(256)) * 92  # 23.5 kB, a 0.13 s frame of float32 at 44.1 kHz
    frames = int(sys.argv[2]) * 1_000_000 // len(chunk)

    def run():
        buf = mod.AudioBuffer()
        for _ in range(frames):
            buf.append(chunk)
        return buf.to_numpy() if sys.argv[3] == "numpy" else buf.to_bytes()

    out, peak = measure_peak(run)
    size = out.nbytes if sys.argv[3] == "numpy" else len(out)
    print(json.dumps({{"reset": reset_peak_rss(), "size": size, "peak": peak}}))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS is read from /proc")
@pytest.mark.parametrize("output", ["bytes", "numpy"])
def test_whole_generation_peaks_near_the_audio_size(stream_impl, output, tmp_path):
    from pathlib import Path

    bench = str(Path(__file__).resolve().parent.parent / "benchmarks")
    script = tmp_path / "peak.py"
    script.write_text(PEAK_SCRIPT.format(bench=bench))
    proc = subprocess.run(
        # 56 MB lands just past a doubling of the old growth (48 MB): copying then held ~96 MB.
        [sys.executable, str(script), stream_impl.tag, "56", output],
        capture_output=True, text=True, timeout=120, cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    if not got["reset"]:
        pytest.skip("this kernel does not let a process reset its peak RSS")
    # Growing by copying peaked at 2x (both blocks resident), copying out for bytes again at 2x;
    # growing in place and handing the block over stays at the audio size plus a frame or so.
    assert got["size"] >= 55_000_000
    assert got["peak"] < 1.2 * got["size"], got
