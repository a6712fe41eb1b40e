"""Differential tests: both twins agree with each other and with a one-shot parse, bit for bit."""

import base64
import inspect
import json
import re

import hypothesis
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.hypothesis

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["}", "{", '"', "\\", "data", "}{", "\u00e9\u20ac\U0001f600", "a\nb"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
field_names = st.sampled_from(["step_time", "length", "status_code", "error", "meta", "flush_id", "x", "é"]) | st.text(
    max_size=5
)


@st.composite
def frames(draw):
    """One frame as JSON text, with its data member possibly escaped."""
    obj = draw(st.dictionaries(field_names.filter(lambda k: k != "data"), json_values, max_size=4))
    for key, values in [
        ("type", st.sampled_from(["chunk", "done", "timestamps"]) | json_scalars),
        ("done", st.booleans() | json_scalars),
        ("context_id", st.text(max_size=6) | json_scalars),
        ("sampling_rate", st.sampled_from([44100, 8000]) | json_scalars),
    ]:
        if draw(st.booleans()):
            obj[key] = draw(values)
    data_kind = draw(st.sampled_from(["b64", "b64", "b64", "none", "null"]))
    marker = "\x00DATA\x00"
    b64 = ""
    if data_kind == "b64":
        b64 = base64.b64encode(draw(st.binary(max_size=300))).decode()
        obj["data"] = marker
    elif data_kind == "null":
        obj["data"] = None
    items = list(obj.items())
    order = draw(st.permutations(range(len(items)))) if items else []
    obj = dict(items[i] for i in order)
    style = draw(st.sampled_from(["compact", "spaces", "indent", "ascii"]))
    if style == "compact":
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    elif style == "indent":
        text = json.dumps(obj, indent=draw(st.integers(0, 2)), ensure_ascii=False)
    else:
        text = json.dumps(obj, ensure_ascii=style == "ascii")
    if data_kind == "b64":
        escape = draw(st.sampled_from(["none", "none", "slash", "unicode"]))
        if escape == "slash":
            b64 = b64.replace("/", "\\/")
        elif escape == "unicode" and b64:
            i = draw(st.integers(0, len(b64) - 1))
            b64 = b64[:i] + f"\\u{ord(b64[i]):04x}" + b64[i + 1 :]
        text = text.replace(json.dumps(marker, ensure_ascii=style == "ascii"), '"' + b64 + '"')
    return text.encode("utf-8")


whitespace = st.text(alphabet=" \t\r\n", max_size=3)


@st.composite
def streams(draw):
    """A whole stream body: (framing given to the parser, wire bytes)."""
    items = draw(st.lists(frames(), max_size=5))
    framing = draw(st.sampled_from(["json", "sse", "auto"]))
    bom = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    kind = framing if framing != "auto" else draw(st.sampled_from(["json", "sse"]))
    if kind == "json":
        parts = [draw(whitespace).encode() + item for item in items]
        return framing, bom + b"".join(parts) + draw(whitespace).encode()
    eol = draw(st.sampled_from([b"\n", b"\r", b"\r\n"]))
    parts = []
    if kind == "sse" and framing == "auto" and draw(st.booleans()):
        parts.append(b": hello } {" + eol)
    for item in items:
        if draw(st.booleans()):
            parts.append(b":comment" + eol)
        if draw(st.booleans()):
            parts.append(b"event: chunk" + eol + b"id: 1" + eol + b"retry: 10" + eol)
        lines = item.split(b"\n")  # newlines inside indented JSON become separate data lines
        for line in lines:
            parts.append(b"data:" + (b" " if draw(st.booleans()) else b"") + line + eol)
        parts.append(eol)
        if draw(st.booleans()):
            parts.append(eol)
    return framing, bom + b"".join(parts)


EXPECTED_ERRORS = {"StreamFormatError", "TruncatedStreamError", "Base64DecodeError", "FrameTooLargeError"}


def split(wire, cuts):
    points = sorted({c % (len(wire) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points + [len(wire)]:
        pieces.append(wire[last:p])
        last = p
    return pieces


def run(mod, framing, pieces, sink_kind=None, max_frame_bytes=1 << 16):
    """Feed ``pieces``; return (messages as tuples, sink state, (error class name, call index, offset))."""
    sink = None
    if sink_kind == "buffer":
        sink = mod.AudioBuffer()
    elif sink_kind == "ring":
        sink = mod.PCMRing(1 << 16)
    parser = mod.StreamParser(framing, sink=sink, max_frame_bytes=max_frame_bytes)
    out, error = [], None
    for index, piece in enumerate(pieces + [None]):
        try:
            out += parser.close() if piece is None else parser.feed(piece)
        except Exception as exc:  # noqa: BLE001 - compared between twins
            error = (type(exc).__name__, index, getattr(exc, "offset", None))
            break
    msgs = [(m.type, m.audio, m.samples, m.sampling_rate, m.done, m.context_id, repr(m.fields)) for m in out]
    state = None
    if sink_kind == "buffer":
        state = (sink.to_bytes(), sink.pending_bytes)
    elif sink_kind == "ring":
        state = (sink.read(1 << 16).tobytes(), sink.pending_bytes)
    return msgs, state, error


@SETTINGS
@given(streams(), st.lists(st.integers(0, 10**6), max_size=20), st.sampled_from([None, "buffer", "ring"]))
def test_valid_streams_any_split(both_twins, stream, cuts, sink_kind):
    framing, wire = stream
    reference = run(both_twins[-1], framing, [wire], sink_kind)
    assert reference[2] is None, reference
    for mod in both_twins:
        assert run(mod, framing, split(wire, cuts), sink_kind) == reference
        assert run(mod, framing, [wire], sink_kind) == reference


@settings(max_examples=40, deadline=None)
@given(streams())
def test_one_byte_reads(both_twins, stream):
    framing, wire = stream
    reference = run(both_twins[-1], framing, [wire])
    for mod in both_twins:
        assert run(mod, framing, [wire[i : i + 1] for i in range(len(wire))]) == reference


@SETTINGS
@given(
    streams(),
    st.lists(st.tuples(st.integers(0, 10**6), st.binary(min_size=0, max_size=3)), min_size=1, max_size=3),
    st.lists(st.integers(0, 10**6), max_size=12),
    st.booleans(),
    st.sampled_from([1 << 16, 1 << 16, 200, 40]),
)
def test_damaged_streams_fail_the_same_way(both_twins, stream, edits, cuts, truncate, max_frame_bytes):
    """Random byte insertions/overwrites: same messages, same error class, same call, same offset."""
    framing, wire = stream
    data = bytearray(wire)
    for pos, junk in edits:
        pos %= len(data) + 1
        if junk:
            data[pos:pos] = junk
        elif data:
            del data[pos % len(data)]
    if truncate and data:
        del data[cuts[0] % len(data) if cuts else len(data) // 2 :]
    pieces = split(bytes(data), cuts)
    results = [run(mod, framing, pieces, max_frame_bytes=max_frame_bytes) for mod in both_twins]
    assert all(r == results[0] for r in results)
    error = results[0][2]
    # Only the package's own exceptions may come out (no raw JSONDecodeError/UnicodeDecodeError).
    assert error is None or error[0] in EXPECTED_ERRORS, error


@st.composite
def long_b64(draw):
    """Long enough for the SIMD loops (64+ chars), with a few characters possibly damaged."""
    text = base64.b64encode(draw(st.binary(max_size=400))).decode()
    for _ in range(draw(st.integers(0, 2))):
        if text:
            i = draw(st.integers(0, len(text) - 1))
            text = text[:i] + draw(st.sampled_from("!=-_ \n\x80A")) + text[i + 1 :]
    return text


@SETTINGS
@given(st.text(alphabet="AQBw/+=!- \n", max_size=24) | long_b64())
def test_b64_kernels_agree(both_twins, b64_backends, text):
    """Every SIMD kernel and the pure twin accept the same inputs and report the same offset."""
    results = []
    payload = '{"data": "' + text.replace("\n", "\\n") + '"}'
    for mod, backend in b64_backends:
        assert mod._b64_set_backend(backend)
        for call in (lambda m=mod: m._b64decode(text.encode()), lambda m=mod: m.parse_message(payload).audio):
            try:
                results.append(call())
            except Exception as exc:  # noqa: BLE001
                results.append((type(exc).__name__, exc.offset))
    assert results[0::2] == [results[0]] * len(results[0::2])
    assert results[1::2] == [results[1]] * len(results[1::2])


@pytest.fixture(scope="module")
def b64_backends(both_twins):
    """(twin, kernel) pairs for every kernel this CPU can run; restores each twin's default."""
    pairs, defaults = [], []
    for mod in both_twins:
        defaults.append((mod, mod.b64_backend()))
        for name in ("python", "scalar", "ssse3", "avx2", "avx512vbmi"):
            if mod._b64_set_backend(name):
                pairs.append((mod, name))
    yield pairs
    for mod, name in defaults:
        mod._b64_set_backend(name)


@settings(max_examples=150, deadline=None)
@given(
    st.binary(max_size=80),
    st.sampled_from(["pcm_f32le", "pcm_s16le", "pcm_mulaw", "pcm_alaw"]),
    st.lists(st.integers(0, 80), max_size=6),
    st.lists(st.booleans(), min_size=8, max_size=8),
    st.integers(1, 23),
)
def test_buffers_agree(both_twins, raw, encoding, cuts, use_b64, capacity):
    """Plain and base64 writes, leftovers, wraps and overflows give the same samples in both twins."""
    results = []
    for mod in both_twins:
        buf = mod.AudioBuffer(encoding=encoding)
        ring = mod.PCMRing(capacity, encoding=encoding)
        log = []
        for i, piece in enumerate(split(raw, cuts)):
            b64 = use_b64[i % len(use_b64)]
            text = base64.b64encode(piece)
            log.append(buf.append_b64(text) if b64 else buf.append(piece))
            try:
                log.append(ring.write_b64(text) if b64 else ring.write(piece))
            except Exception as exc:  # noqa: BLE001
                log.append(type(exc).__name__)
            log.append(ring.read(i % 7).tobytes())
        results.append((log, buf.to_bytes(), buf.pending_bytes, ring.pending_bytes, len(ring), ring.free))
    assert all(r == results[0] for r in results)


# --- the public surface is the same --------------------------------------------------------------


def _doc(obj):
    doc = inspect.getdoc(obj) or ""
    # Cython's embedsignature prepends "name(args)" lines: compare the prose only.
    return re.sub(r"\A(?:[\w.]+\(.*\).*\n)+", "", doc).strip()


def _params(func):
    # Names, kinds and defaults (annotations are strings in one twin and objects in the other).
    return [(p.name, p.kind, p.default) for p in inspect.signature(func).parameters.values()]


def test_same_names_signatures_and_docstrings(both_twins):
    if len(both_twins) < 2:
        pytest.skip("compiled twin deselected")
    c_mod, py_mod = both_twins
    assert c_mod.__all__ == py_mod.__all__
    for name in py_mod.__all__ + ["_b64decode", "_b64_set_backend"]:
        c_obj, py_obj = getattr(c_mod, name), getattr(py_mod, name)
        assert _doc(c_obj) == _doc(py_obj), name
        if inspect.isclass(py_obj):
            members = [m for m in vars(py_obj) if not m.startswith("_") or m == "__len__"]
            for member in members:
                assert hasattr(c_obj, member), (name, member)
                py_m, c_m = getattr(py_obj, member), getattr(c_obj, member)
                if callable(py_m) and not member.startswith("_"):
                    assert _doc(c_m) == _doc(py_m), (name, member)
                    assert _params(c_m) == _params(py_m), (name, member)
        else:
            assert _params(c_obj) == _params(py_obj), name


@pytest.mark.parametrize(
    "name, good, bad",
    [
        ("StreamParser", (("json",), {"sink": None, "max_frame_bytes": 10}), (("json", None), {})),
        ("PCMRing", ((8,), {"encoding": "pcm_s16le"}), ((8, "pcm_s16le"), {})),
        ("AudioBuffer", ((), {"encoding": "pcm_alaw", "capacity": 4}), (("pcm_alaw",), {})),
        ("Message", (("chunk",), {"audio": b"x", "fields": {}}), (("chunk", b"x"), {})),
    ],
)
def test_same_constructor_signatures(both_twins, name, good, bad):
    # inspect.signature cannot read cdef classes: check the keyword-only contract by calling.
    for mod in both_twins:
        cls = getattr(mod, name)
        cls(*good[0], **good[1])
        with pytest.raises(TypeError):
            cls(*bad[0], **bad[1])


# --- nothing before a malformed frame is lost ----------------------------------------------------

BIG_FRAME = b'{"data": "' + b"A" * 70000 + b'"}'
MALFORMED = {
    "json": [b"x", b"]", b'{"data": "AAA!"}', b'{"a": tru}', b'{"data": "AAAA", "data": ""}', b'{"data": 5}',
             b'{"a" 1}', BIG_FRAME],
    "sse": [b"date: 1\n\n", b'data: {"data": "AA=A"}\n\n', b"data: [1]\n\n", b" data: {}\n\n", b"data: {\n\n",
            b"data: " + BIG_FRAME + b"\n\n", b'data: {"data": "A"}\n\n'],
}


@st.composite
def good_then_malformed(draw):
    """(framing, the good part alone, the whole wire: good frames, a malformed part, maybe more frames)."""
    framing, good = draw(streams().filter(lambda s: s[1].strip(b" \t\r\n\xef\xbb\xbf")))
    kind = "json" if good.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{" else "sse"
    if kind == "sse" and not good.endswith((b"\n", b"\r")):
        good += b"\n"  # the bad part must start on a line of its own
    bad = draw(st.sampled_from(MALFORMED[kind]))
    after = draw(streams())[1] if draw(st.booleans()) else b""
    return framing, good, good + bad + after


@SETTINGS
@given(good_then_malformed(), st.lists(st.integers(0, 10**6), max_size=20), st.sampled_from([None, "buffer", "ring"]))
def test_good_frames_before_a_malformed_one_are_delivered_once(both_twins, case, cuts, sink_kind):
    """Any read split: every good frame before the bad one comes out once (and its audio reaches the
    sink once), then the error; both twins alike, down to the error's class, call and offset."""
    framing, good, wire = case
    expected_msgs, expected_sink, error = run(both_twins[-1], framing, [good], sink_kind)
    assert error is None
    assume(expected_msgs)  # a stream of comments only has no frame to lose
    classes = set()
    for pieces in ([wire], split(wire, cuts)):
        results = [run(mod, framing, pieces, sink_kind) for mod in both_twins]
        assert all(r == results[0] for r in results), results
        msgs, sink_state, error = results[0]
        assert msgs == expected_msgs and sink_state == expected_sink
        assert error is not None and error[0] in EXPECTED_ERRORS, error
        classes.add(error[0])
    assert len(classes) == 1, classes  # where the reads end never changes what the error is


# --- long payloads: the pure twin decodes base64 of 4,096+ characters with numpy ---------------


@st.composite
def long_damaged_b64(draw):
    """Base64 long enough for the pure twin's numpy decoder, maybe damaged anywhere (often near the
    end, where the padded last quad is decoded apart, or by an '=' inside the body)."""
    text = base64.b64encode(draw(st.binary(min_size=3060, max_size=4500))).decode()
    for _ in range(draw(st.integers(0, 2))):
        n = len(text)
        i = draw(st.integers(0, n - 1) | st.integers(max(0, n - 9), n - 1))
        text = text[:i] + draw(st.sampled_from("=!-_ \n\x80A/")) + text[i + 1 :]
    if draw(st.booleans()):
        text = text[: len(text) - draw(st.integers(0, 5))]
    return text


def _outcome(call):
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - compared between twins
        return (type(exc).__name__, str(exc), getattr(exc, "offset", None))


# Payloads of 4,096+ characters are the point of these two. Hypothesis 6.100 (the lowest pin)
# refuses them as a "large base example" and, told to go on, takes minutes per test generating
# them; 6.170 takes seconds. The lowest-versions run leaves these two to the current one.
LONG_DATA = [HealthCheck.large_base_example, HealthCheck.data_too_large, HealthCheck.too_slow]
NEWER_HYPOTHESIS = pytest.mark.skipif(
    hypothesis.version.__version_info__ < (6, 150),
    reason="hypothesis < 6.150 generates 4 KB examples too slowly (the lowest-versions run)",
)


@NEWER_HYPOTHESIS
@settings(max_examples=120, deadline=None, suppress_health_check=LONG_DATA)
@given(long_damaged_b64())
def test_long_b64_agree(both_twins, text):
    """Same bytes, or the same error (class, message, offset), for long base64 in every entry point."""
    payload = '{"data": "' + text.replace("\n", "\\n") + '", "done": false}'
    results = []
    for mod in both_twins:
        buf = mod.AudioBuffer()
        results.append(
            [
                _outcome(lambda m=mod: m._b64decode(text.encode())),
                _outcome(lambda m=mod: m._b64decode(memoryview(text.encode()))),
                _outcome(lambda m=mod: m.parse_message(payload).audio),
                _outcome(lambda m=mod, b=buf: (b.append_b64(text), b.to_bytes())),
            ]
        )
    assert all(r == results[0] for r in results)
    try:
        expected = base64.b64decode(text, validate=True)
    except ValueError:
        return
    if len(text) % 4 == 0:
        assert results[0][0] == expected


@NEWER_HYPOTHESIS
@settings(max_examples=60, deadline=None, suppress_health_check=LONG_DATA)
@given(
    st.lists(st.binary(min_size=3060, max_size=4000), min_size=1, max_size=3),
    st.sampled_from(["json", "sse"]),
    st.lists(st.integers(0, 10**6), max_size=20),
    st.sampled_from([None, "buffer", "ring"]),
)
def test_long_frames_any_split(both_twins, pcms, framing, cuts, sink_kind):
    """Frames with long base64, cut anywhere (inside a quad, inside 'data:', at the closing quote)."""
    frames = [
        json.dumps({"data": base64.b64encode(p).decode(), "done": False, "step_time": 1.5}).encode() for p in pcms
    ]
    wire = b"".join(b"data: " + f + b"\n\n" for f in frames) if framing == "sse" else b"\n".join(frames)
    reference = run(both_twins[-1], framing, [wire], sink_kind, max_frame_bytes=1 << 20)
    assert reference[2] is None, reference
    assert [m[1] for m in reference[0]] == ([b""] * len(pcms) if sink_kind else list(pcms))
    for mod in both_twins:
        assert run(mod, framing, split(wire, cuts), sink_kind, max_frame_bytes=1 << 20) == reference


# --- the usual frame shape: the pure twin matches {"data": "...", <flat members>} without its scanner ---

usual_members = st.sampled_from(
    [
        '"done": false',
        '"sampling_rate": 44100',
        '"step_time": 12.5',
        '"context_id": "ab12"',
        '"type": "chunk"',
        '"x": "a\\"b"',  # an escaped quote: not flat, scanned
        '"x": "a\\\\"',  # an escaped backslash before the closing quote
        '"meta": {"data": "AAAA"}',  # nested: scanned
        '"list": [1, "}"]',
        '"data": "AAAA"',  # a second data member: an error either way
        '"data": null',
        '"data": 5',
        '"é": "€"',
        '"a": tru',  # not JSON
        '"a" 1',
        "",  # an empty member (a stray comma)
    ]
)


@st.composite
def usual_frames(draw):
    """A frame that starts with its data member, followed by members that are mostly flat."""
    b64 = base64.b64encode(draw(st.binary(max_size=60))).decode()
    if draw(st.booleans()):
        b64 = b64.replace("/", "\\/")
    # Escapes where the closing quote is looked for: an escaped backslash, or an escaped quote.
    b64 += draw(st.sampled_from(["", "", "\\\\", "\\\"", '\\"AA==', "\\\\\\\"", "\\u0041AAA"]))
    ws = draw(st.sampled_from(["", " ", "\n  ", "\t"]))
    head = "{" + ws + '"data"' + draw(st.sampled_from([":", ": ", " :", " : "])) + '"' + b64 + '"'
    members = draw(st.lists(usual_members, max_size=4))
    tail = "".join("," + ws + m for m in members) + ws + draw(st.sampled_from(["}", "}", "]", ",}"]))
    return (head + tail).encode("utf-8")


@SETTINGS
@given(
    st.lists(usual_frames(), min_size=1, max_size=4),
    st.sampled_from(["json", "sse", "ws"]),
    st.lists(st.integers(0, 10**6), max_size=12),
    st.sampled_from([None, "buffer"]),
)
def test_usual_frames_agree(both_twins, items, framing, cuts, sink_kind):
    """Flat or not, well-formed or not, whole or cut anywhere: same messages and the same error."""
    if framing == "ws":
        results = [[_outcome(lambda m=mod, i=i: repr(m.parse_message(i))) for i in items] for mod in both_twins]
        assert all(r == results[0] for r in results)
        return
    wire = b"".join(b"data: " + i + b"\n\n" for i in items) if framing == "sse" else b" ".join(items)
    for pieces in ([wire], split(wire, cuts)):
        results = [run(mod, framing, pieces, sink_kind) for mod in both_twins]
        assert all(r == results[0] for r in results), results
