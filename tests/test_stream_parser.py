"""StreamParser and parse_message behaviour, run against each twin of the streaming core."""

import base64
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from cartesia.errors import (
    Base64DecodeError,
    FrameTooLargeError,
    RingOverflowError,
    StreamFormatError,
    TruncatedStreamError,
)

PCM = np.linspace(-1.0, 1.0, 441, dtype="<f4").tobytes()
B64 = base64.b64encode(PCM).decode()


def frame(**fields):
    return json.dumps(fields).encode()


def chunk(i=0, **extra):
    return frame(data=B64, sampling_rate=44100, done=False, step_time=1.5 + i, **extra)


def feed_all(mod, wire, size, framing="auto", **kwargs):
    parser = mod.StreamParser(framing, **kwargs)
    out = []
    for i in range(0, len(wire), size):
        out += parser.feed(wire[i : i + size])
    out += parser.close()
    return out


@pytest.mark.parametrize("size", [1, 3, 1024, 1 << 20])
@pytest.mark.parametrize("framing", ["json", "auto"])
def test_bare_frames_any_read_size(stream_mod, size, framing):
    wire = b"".join(chunk(i) for i in range(3)) + b'\n  {"done": true}\r\n'
    out = feed_all(stream_mod, wire, size, framing)
    assert [m.type for m in out] == ["chunk", "chunk", "chunk", "done"]
    assert out[0].audio == PCM and out[0].sampling_rate == 44100 and out[0].done is False
    assert out[1].fields == {"step_time": 2.5}
    assert out[3].done is True and out[3].audio == b""


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"])
@pytest.mark.parametrize("size", [1, 2, 5, 100000])
def test_sse_line_endings(stream_mod, eol, size):
    events = [
        b": keep-alive with a } inside" + eol,
        b"event: chunk" + eol + b"id: 7" + eol + b"retry: 100" + eol + b"data: " + chunk(context_id="c1") + eol + eol,
        b"event: ping" + eol + eol,  # an event name without data is ignored
        b"data:" + frame(type="done", done=True, context_id="c1") + eol + eol,
    ]
    wire = b"".join(events)
    out = feed_all(stream_mod, wire, size, "sse")
    assert [(m.type, m.context_id) for m in out] == [("chunk", "c1"), ("done", "c1")]
    assert out[0].audio == PCM
    assert feed_all(stream_mod, wire, size, "auto") == out


def test_sse_multiline_data_is_joined_with_newlines(stream_mod):
    wire = b'data: {"data": "' + B64.encode() + b'",\ndata: "n": [1,\ndata: 2]}\n\n'
    (msg,) = feed_all(stream_mod, wire, 7, "sse")
    assert msg.audio == PCM and msg.fields == {"n": [1, 2]}


def test_sse_empty_data_event_yields_nothing(stream_mod):
    assert feed_all(stream_mod, b"data\n\ndata:\n\n: c\n\n   \n\n", 1, "sse") == []


def test_leading_bom_is_skipped(stream_mod):
    for framing in ("auto", "json"):
        assert len(feed_all(stream_mod, b"\xef\xbb\xbf" + chunk(), 1, framing)) == 1
    assert len(feed_all(stream_mod, b"\xef\xbb\xbfdata: " + chunk() + b"\n\n", 1, "auto")) == 1


def test_framing_property_is_resolved(stream_mod):
    parser = stream_mod.StreamParser()
    assert parser.framing == "auto"
    parser.feed(b" \r\n ")
    assert parser.framing == "auto"
    parser.feed(b'{"done": true}')
    assert parser.framing == "json"
    assert parser.bytes_fed == 18 and parser.messages == 1
    parser = stream_mod.StreamParser()
    parser.feed(b"\n: hi\n")
    assert parser.framing == "sse"


def test_feed_accepts_bytes_like(stream_mod):
    wire = chunk()
    parser = stream_mod.StreamParser()
    out = parser.feed(bytearray(wire[:10])) + parser.feed(memoryview(wire)[10:20])
    out += parser.feed(memoryview(np.frombuffer(wire[20:], dtype=np.uint8)))
    assert out[0].audio == PCM
    with pytest.raises(TypeError):
        parser.feed("text")


def test_message_fields_and_type_inference(stream_mod):
    pm = stream_mod.parse_message
    msg = pm('{"type": "timestamps", "word_timestamps": {"words": ["h\\u00e9"]}, "done": false}')
    assert msg.type == "timestamps" and msg.fields == {"word_timestamps": {"words": ["hé"]}}
    assert pm('{"error": "boom", "status_code": 400, "done": true}').type == "error"
    assert pm('{"done": true}').type == "done"
    assert pm("{}").type == "unknown"
    assert pm('{"data": ""}').type == "chunk"
    # Fields of the wrong type stay in `fields` and the attribute keeps its default.
    odd = pm('{"type": 5, "sampling_rate": 44100.0, "done": 1, "context_id": null, "data": null}')
    assert odd.type == "unknown" and odd.sampling_rate is None and odd.done is False
    assert odd.context_id is None and odd.audio == b""
    assert odd.fields == {"type": 5, "sampling_rate": 44100.0, "done": 1, "context_id": None}


def test_message_repr_eq(stream_mod):
    msg = stream_mod.parse_message(chunk())
    text = repr(msg)
    assert f"<{len(PCM)} bytes>" in text and B64[:20] not in text
    assert msg == stream_mod.parse_message(chunk())
    assert msg != stream_mod.parse_message(chunk(1))
    made = stream_mod.Message("chunk", audio=PCM, sampling_rate=44100, fields={"step_time": 1.5})
    assert made == msg


@pytest.mark.parametrize(
    "b64",
    [B64.replace("/", "\\/"), B64[:8] + f"\\u{ord(B64[8]):04x}" + B64[9:], B64.replace("A", "\\u0041", 3)],
)
def test_escapes_inside_data_decode_right(stream_mod, b64):
    text = '{"data": "' + b64 + '", "sampling_rate": 1}'
    assert stream_mod.parse_message(text).audio == PCM
    assert feed_all(stream_mod, text.encode(), 1)[0].audio == PCM


def test_escaped_data_key_still_decodes(stream_mod):
    msg = stream_mod.parse_message('{"d\\u0061ta": "' + B64 + '"}')
    assert msg.audio == PCM and msg.type == "chunk"


@pytest.mark.parametrize(
    "payload, offset",
    [
        ('{"data": "AAA!"}', 13),
        ('{"data": "AAAAA"}', 15),
        ('{"data": "A===" }', 11),
        ('{"data": "AA==AAAA"}', 12),
        ('{"data": "AAAA AAA"}', 14),
    ],
)
def test_invalid_base64_raises_with_offset(stream_mod, payload, offset):
    with pytest.raises(Base64DecodeError) as info:
        stream_mod.parse_message(payload)
    assert info.value.offset == offset
    assert f"offset {offset}" in str(info.value)


@pytest.mark.parametrize(
    "payload, error",
    [
        ('{"data": 5}', StreamFormatError),
        ('{"data": ["AAAA"]}', StreamFormatError),
        ('{"data": "AAAA", "data": "AAAA"}', StreamFormatError),
        ('{"data": "AAAA",}', StreamFormatError),
        ('{"data": "AAA\\q"}', StreamFormatError),
        ('{"data": "AAA\\u00e9"}', Base64DecodeError),
        ("[1]", StreamFormatError),
        ('{"a": 1} x', StreamFormatError),
        ('{"a": ', StreamFormatError),
        ("", StreamFormatError),
    ],
)
def test_parse_message_rejects(stream_mod, payload, error):
    with pytest.raises(error) as info:
        stream_mod.parse_message(payload)
    assert type(info.value) is error


def test_data_null_means_no_audio(stream_mod):
    msg = stream_mod.parse_message('{"data": null, "done": true}')
    assert msg.audio == b"" and msg.type == "done" and "data" not in msg.fields


def test_junk_error_says_where_and_parser_stays_dead(stream_mod):
    parser = stream_mod.StreamParser("json")
    parser.feed(chunk() + b"  ")
    with pytest.raises(StreamFormatError) as info:
        parser.feed(b"x{}")
    offset = len(chunk()) + 2
    assert info.value.offset == offset
    assert str(info.value) == f"unexpected byte 0x78 ('x') at offset {offset}: expected '{{' or whitespace"
    with pytest.raises(StreamFormatError):
        parser.feed(chunk())
    with pytest.raises(StreamFormatError):
        parser.close()


def test_sse_unknown_field_and_indented_line_raise(stream_mod):
    with pytest.raises(StreamFormatError, match="unknown SSE field 'date' at offset 0"):
        feed_all(stream_mod, b"date: {}\n\n", 4, "sse")
    with pytest.raises(StreamFormatError, match="starts with whitespace"):
        feed_all(stream_mod, b"  data: {}\n\n", 4, "sse")
    with pytest.raises(StreamFormatError, match="starts with whitespace"):
        feed_all(stream_mod, b"\n  data: {}\n\n", 4, "auto")


def test_frame_too_large_raises_while_partial(stream_mod):
    parser = stream_mod.StreamParser("json", max_frame_bytes=100)
    parser.feed(b'{"data": "' + b"A" * 80)
    with pytest.raises(FrameTooLargeError):
        parser.feed(b"A" * 40)
    with pytest.raises(FrameTooLargeError):
        feed_all(stream_mod, b'{"data": "' + b"A" * 200 + b'"}', 1 << 20, max_frame_bytes=100)
    with pytest.raises(FrameTooLargeError):
        feed_all(stream_mod, b"data: " + b"x" * 200, 50, "sse", max_frame_bytes=100)
    with pytest.raises(FrameTooLargeError):
        feed_all(stream_mod, b": " + b"x" * 200, 50, "sse", max_frame_bytes=100)
    assert len(feed_all(stream_mod, chunk(), 7, max_frame_bytes=len(chunk()))) == 1


@pytest.mark.parametrize(
    "wire, framing",
    [
        (b'{"data": "AAAA"', "json"),
        (b'{"a": "}', "json"),
        (b"data: {}\n", "sse"),
        (b"data: {}", "sse"),
        (b"\xef\xbb", "auto"),
    ],
)
def test_close_inside_a_frame_raises(stream_mod, wire, framing):
    parser = stream_mod.StreamParser(framing)
    parser.feed(wire)
    with pytest.raises(TruncatedStreamError):
        parser.close()


def test_close_after_clean_end(stream_mod):
    parser = stream_mod.StreamParser("sse")
    parser.feed(b"data: {}\n\n: bye")
    assert parser.close() == []
    assert parser.close() == []
    with pytest.raises(StreamFormatError):
        parser.feed(b"data: {}\n\n")


def test_bad_arguments(stream_mod):
    with pytest.raises(ValueError):
        stream_mod.StreamParser("xml")
    with pytest.raises(ValueError):
        stream_mod.StreamParser(max_frame_bytes=0)


def test_parse_message_str_and_bytes(stream_mod):
    text = '{"data": "' + B64 + '", "context_id": "ctx-é", "done": true}'
    for payload in (text, text.encode(), bytearray(text.encode()), memoryview(text.encode())):
        msg = stream_mod.parse_message(payload)
        assert msg.audio == PCM and msg.context_id == "ctx-é" and msg.done is True
        assert msg.type == "chunk"  # done frame that also carries audio keeps it
    with pytest.raises(TypeError):
        stream_mod.parse_message(5)


# --- the awkward inputs of perf-baseline.md, each run under a timeout ---------------------------

AWKWARD_SCRIPT = textwrap.dedent(
    r"""
    import base64, json, sys, importlib
    mod = importlib.import_module(sys.argv[1])
    B64 = base64.b64encode(bytes(range(256)) * 4).decode()
    FRAME = json.dumps({"data": B64, "sampling_rate": 44100, "done": False}).encode()

    def run(wire, size, framing="auto", ws=False):
        try:
            if ws:
                m = mod.parse_message(wire)
                return ["ok", [[m.type, len(m.audio), m.done]]]
            p = mod.StreamParser(framing)
            out = []
            for i in range(0, len(wire), size):
                out += p.feed(wire[i:i + size])
            out += p.close()
            return ["ok", [[m.type, len(m.audio), m.done] for m in out]]
        except Exception as exc:
            return [type(exc).__name__, str(exc)]

    cases = {
        "stray_close_brace": run(b"}" + FRAME + FRAME, 3, "json"),
        "stray_close_brace_auto": run(b"}" + FRAME + FRAME, 3),
        "sse_comment_with_brace": run(b": }{ }\n" + b"data: " + FRAME + b"\n\n", 5),
        "brace_inside_string": run(json.dumps({"text": "a}b{", "data": B64}).encode() + FRAME, 4),
        "nested_object": run(json.dumps({"meta": {"a": {"b": [1, {"c": "}"}]}}, "data": B64}).encode() * 2, 6),
        "stray_open_brace": run(b"{" + FRAME + FRAME, 7),
        "utf8_split": run(json.dumps({"data": B64, "text": "h\u00e9\u20ac\U0001f600"}, ensure_ascii=False).encode(), 1),
        "done_without_data": run(FRAME + b'{"done": true}', 64),
        "sse_crlf": run((b"data: " + FRAME + b"\r\n\r\n") * 2, 1),
        "bad_base64_chars": run(FRAME.replace(B64[100:104].encode(), b"*&^%"), 64),
        "ws_done_with_audio": run(json.dumps({"data": B64, "done": True}), 0, ws=True),
        # Not in perf-baseline.md, but the same family: pathological sizes must stay linear.
        "cr_only_short_lines": run(b":\r" * 100000 + b"data: " + FRAME + b"\r\r", 1 << 20),
        "many_tiny_frames": run(b"{}" * 100000, 1 << 20),
        "deep_nesting": run(b'{"a": ' + b"[" * 100000 + b"]" * 100000 + b"}", 1 << 16),
        "endless_whitespace": run(b" \r\n\t" * 500000, 1 << 16),
    }
    print(json.dumps(cases))
    """
)

PCM_LEN = 1024
EXPECTED = {
    "stray_close_brace": ["StreamFormatError", "unexpected byte 0x7d ('}') at offset 0: expected '{' or whitespace"],
    "stray_close_brace_auto": [
        "StreamFormatError",
        "unexpected byte 0x7d ('}') at offset 0: expected '{', ':' or an SSE field name",
    ],
    "sse_comment_with_brace": ["ok", [["chunk", PCM_LEN, False]]],
    "brace_inside_string": ["ok", [["chunk", PCM_LEN, False]] * 2],
    "nested_object": ["ok", [["chunk", PCM_LEN, False]] * 2],
    "stray_open_brace": ["StreamFormatError", "unexpected byte 0x7b ('{') at offset 1: expected '\"' or '}'"],
    "utf8_split": ["ok", [["chunk", PCM_LEN, False]]],
    "done_without_data": ["ok", [["chunk", PCM_LEN, False], ["done", 0, True]]],
    "sse_crlf": ["ok", [["chunk", PCM_LEN, False]] * 2],
    "ws_done_with_audio": ["ok", [["chunk", PCM_LEN, True]]],
    "cr_only_short_lines": ["ok", [["chunk", PCM_LEN, False]]],
    "many_tiny_frames": ["ok", [["unknown", 0, False]] * 100000],
    "endless_whitespace": ["ok", []],
}


@pytest.fixture(scope="module")
def awkward_results(stream_mod):
    # A subprocess with a timeout: an infinite loop holding the GIL fails the test instead of hanging it.
    proc = subprocess.run(
        [sys.executable, "-c", AWKWARD_SCRIPT, stream_mod.__name__],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("case", sorted(EXPECTED) + ["bad_base64_chars", "deep_nesting"])
def test_awkward_inputs(awkward_results, case):
    result = awkward_results[case]
    if case == "bad_base64_chars":
        assert result[0] == "Base64DecodeError"
        assert "unexpected byte 0x2a ('*')" in result[1]
    elif case == "deep_nesting":
        assert result[0] == "StreamFormatError" and "invalid JSON in the frame at offset 0" in result[1]
    else:
        assert result == EXPECTED[case]


# --- nothing before an error is lost (issue 9, defect 9) ------------------------------------------

GOOD = [chunk(0), chunk(1, context_id="c1"), frame(type="done", done=True)]
BIG = b'{"data": "' + b"A" * 6000 + b'"}'


def framed(framing, frames):
    if framing == "sse":
        return b"".join(b"data: " + f + b"\n\n" for f in frames)
    return b"\n".join(frames) + b"\n"


# (framing, malformed part, error class, offset of the error within that part)
MALFORMED_AFTER_GOOD = [
    ("json", b"x{}", StreamFormatError, 0),
    ("json", b'{"data": "AAA!"}', Base64DecodeError, 13),
    ("json", b'{"data": "AAAA", "n": tru}', StreamFormatError, 0),
    ("json", b'{"data": "AAAA", "data": "AAAA"}', StreamFormatError, 0),
    ("json", b'  {"a": 1 "b"}', StreamFormatError, 2),
    ("json", BIG, FrameTooLargeError, 0),
    ("sse", b"date: {}\n\n", StreamFormatError, 0),
    ("sse", b'data: {"data": "AAA!"}\n\n', Base64DecodeError, 19),
    ("sse", b"data: [1]\n\n", StreamFormatError, 6),
    ("sse", b"data: " + BIG + b"\n\n", FrameTooLargeError, 6),
]


@pytest.mark.parametrize("then", ["feed", "close"])
@pytest.mark.parametrize("framing, bad, error, rel", MALFORMED_AFTER_GOOD)
def test_good_frames_before_a_malformed_one_come_first(stream_mod, framing, bad, error, rel, then):
    """One read holds good frames and then a bad one: feed returns the good ones, the next call raises."""
    prefix = framed(framing, GOOD)
    parser = stream_mod.StreamParser("auto", max_frame_bytes=4096)
    out = parser.feed(prefix + bad)
    assert out == [stream_mod.parse_message(f) for f in GOOD]
    assert parser.messages == 3 and parser.bytes_fed == len(prefix + bad)
    with pytest.raises(error) as info:
        parser.feed(chunk()) if then == "feed" else parser.close()
    # The original error, unchanged: same class, same offset, same message as without good frames.
    assert type(info.value) is error and info.value.offset == len(prefix) + rel
    assert f"offset {len(prefix) + rel}" in str(info.value) and "failed earlier" not in str(info.value)
    # From then on the parser is dead, as after any error.
    for call in (lambda: parser.feed(b""), parser.close):
        with pytest.raises(error, match="the parser failed earlier") as again:
            call()
        assert again.value.offset == len(prefix) + rel
    assert parser.messages == 3


@pytest.mark.parametrize("framing, bad, error, rel", MALFORMED_AFTER_GOOD[:2] + MALFORMED_AFTER_GOOD[6:8])
def test_malformed_frame_without_good_ones_still_raises_at_once(stream_mod, framing, bad, error, rel):
    prefix = framed(framing, GOOD)
    parser = stream_mod.StreamParser("auto", max_frame_bytes=4096)
    assert len(parser.feed(prefix)) == 3
    with pytest.raises(error) as info:
        parser.feed(bad)
    assert info.value.offset == len(prefix) + rel and "failed earlier" not in str(info.value)


@pytest.mark.parametrize("size", [1, 5, 333, 1 << 20])
@pytest.mark.parametrize("sink_kind", ["buffer", "ring"])
@pytest.mark.parametrize("framing", ["json", "sse"])
def test_sink_gets_the_audio_of_good_frames_exactly_once(stream_mod, both_twins, framing, sink_kind, size):
    bad = b'{"data": "AAAA", "data": "AAAA"}'
    wire = framed(framing, GOOD) + (b"data: " + bad + b"\n\n" if framing == "sse" else bad)
    for sink_mod in both_twins:
        sink = sink_mod.AudioBuffer() if sink_kind == "buffer" else sink_mod.PCMRing(10_000)
        parser = stream_mod.StreamParser(framing, sink=sink)
        out = []
        with pytest.raises(StreamFormatError, match="duplicate 'data'"):
            for i in range(0, len(wire), size):
                out += parser.feed(wire[i : i + size])
            parser.close()
        assert [(m.type, m.audio, m.samples) for m in out] == [("chunk", b"", 441)] * 2 + [("done", b"", 0)]
        stored = sink.to_bytes() if sink_kind == "buffer" else sink.read(20_000).tobytes()
        assert stored == PCM * 2 and sink.pending_bytes == 0


def test_ring_overflow_after_good_frames_delivers_them_first(stream_mod):
    ring = stream_mod.PCMRing(441 * 2 + 100)
    parser = stream_mod.StreamParser(sink=ring)
    out = parser.feed(chunk(0) + chunk(1) + chunk(2))
    assert [m.samples for m in out] == [441, 441]
    with pytest.raises(RingOverflowError, match="441 samples do not fit in 100 free samples"):
        parser.close()
    assert len(ring) == 882 and ring.read(2000).tobytes() == PCM * 2


@pytest.mark.parametrize(
    "bad",
    [
        '{"data": "AAA!"}',
        '{"data": "AAAA", "n": tru}',
        '{"data": "AAAA", "data": "AAAA"}',
        '{"data": "AAAA"} x',
        '{"data": "AA\\/A\\q"}',
        '{"data": "AAAA=AAA"}',
    ],
)
@pytest.mark.parametrize("sink_kind", ["buffer", "ring"])
def test_parse_message_bad_frame_leaves_the_sink_untouched(stream_mod, both_twins, sink_kind, bad):
    """Between good messages, a bad one writes nothing, not even into a pending partial sample."""
    odd = base64.b64encode(bytes([1, 2, 3])).decode()  # one s16 sample and one byte left over
    last = base64.b64encode(bytes([4])).decode()
    for sink_mod in both_twins:
        sink = (
            sink_mod.AudioBuffer(encoding="pcm_s16le")
            if sink_kind == "buffer"
            else sink_mod.PCMRing(64, encoding="pcm_s16le")
        )
        assert stream_mod.parse_message('{"data": "' + odd + '"}', sink=sink).samples == 1
        assert sink.pending_bytes == 1
        with pytest.raises((StreamFormatError, Base64DecodeError)):
            stream_mod.parse_message(bad, sink=sink)
        assert len(sink) == 1 and sink.pending_bytes == 1
        assert stream_mod.parse_message('{"data": "' + last + '"}', sink=sink).samples == 1
        stored = sink.to_bytes() if sink_kind == "buffer" else sink.read(10).tobytes()
        expected = (np.array([0x0201, 0x0403], dtype="<i2") / np.float32(32768)).astype("<f4")
        assert stored == expected.tobytes() and sink.pending_bytes == 0


@pytest.mark.parametrize("eol", [b"\n", b"\r"])
def test_sse_partial_line_too_large_reports_where_the_line_starts(stream_mod, eol):
    # Found by hypothesis: the event's first data line is still buffered when the next line grows
    # too large; both twins name the start of the partial line (the pure one said the event's).
    parser = stream_mod.StreamParser("sse", max_frame_bytes=40)
    with pytest.raises(FrameTooLargeError, match="at offset 15 ") as info:
        parser.feed(b'data: {"a": 1}' + eol + b"x" * 50)
    assert info.value.offset == 15
