"""``FramePrefilter`` against the bare websockets protocol: for any stream of frames cut into any
reads, the same messages in the same order, the same frames sent back, the same close or failure."""

from __future__ import annotations

from typing import Any, List, Tuple, Union

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import Protocol, Side, State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from cartesia._client.transport.ws_frames import FramePrefilter

pytestmark = pytest.mark.hypothesis

LIMIT = 300  # the protocols' max_size: payloads above it are oversized (close 1009)
V13 = not hasattr(Protocol(Side.CLIENT), "max_message_size")

Out = Tuple[str, bytes]  # ("message" | "ping" | "pong" | "close", payload)


def _frame(opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin).serialize(mask=False, extensions=[])


# One item of the stream: its wire bytes.
_payload = st.binary(max_size=LIMIT + 40)  # lengths on both sides of 125 and of LIMIT
_control = st.binary(max_size=125)
_oversized = st.integers(LIMIT + 1, LIMIT + 9).map(lambda n: b"o" * n)


@st.composite
def _message(draw: Any) -> bytes:
    """A whole data message: one frame, or fragments with control frames between them."""
    opcode = draw(st.sampled_from([Opcode.TEXT, Opcode.BINARY]))
    parts = draw(st.lists(st.binary(max_size=120), min_size=1, max_size=4))
    out = b""
    for i, part in enumerate(parts):
        if i and draw(st.booleans()):
            out += _frame(draw(st.sampled_from([Opcode.PING, Opcode.PONG])), draw(_control))
        out += _frame(opcode if i == 0 else Opcode.CONT, part, fin=i == len(parts) - 1)
    return out


def _flip(frame: bytes, first_byte: int) -> bytes:
    return bytes([first_byte]) + frame[1:]


_sized = st.integers(90, LIMIT + 20).map(lambda n: b"s" * n)  # around both limits below
_simple = st.builds(_frame, st.sampled_from([Opcode.TEXT, Opcode.BINARY]), st.one_of(_payload, _sized))
_bad = st.one_of(
    st.builds(lambda d: _flip(_frame(Opcode.TEXT, d), 0x81 | 0x40), _payload),  # RSV1 set
    st.builds(lambda d: _flip(_frame(Opcode.BINARY, d), 0x82 | 0x10), _payload),  # RSV3 set
    st.builds(lambda d: _flip(_frame(Opcode.TEXT, d), 0x83), _payload),  # reserved opcode 3
    st.builds(lambda d: Frame(Opcode.TEXT, d).serialize(mask=True, extensions=[]), _payload),
    st.builds(lambda d: _frame(Opcode.CONT, d), _payload),  # continuation of nothing
    st.builds(lambda d: _frame(Opcode.TEXT, d, fin=False), _payload),  # a fragment ...
    st.builds(lambda d: _frame(Opcode.BINARY, d, fin=False) + _frame(Opcode.TEXT, d), _control),  # ... cut
    st.builds(_frame, st.sampled_from([Opcode.TEXT, Opcode.BINARY]), _oversized),
    st.builds(lambda d: _flip(_frame(Opcode.PING, d), 0x09), _control),  # fragmented control
)
_item = st.one_of(
    _simple,
    _simple,
    _message(),
    st.builds(_frame, st.just(Opcode.PING), _control),
    st.builds(_frame, st.just(Opcode.PONG), _control),
    _bad,
)
_ending = st.one_of(
    st.just(("eof", b"")),
    st.builds(lambda c: ("close", _frame(Opcode.CLOSE, Close(c, "bye").serialize())),
              st.sampled_from([1000, 1001, 1011, 4000])),
    st.builds(lambda d: ("close", d), st.sampled_from([_frame(Opcode.CLOSE, b""), _frame(Opcode.CLOSE, b"\x03")])),
    st.builds(lambda n: ("truncate", n), st.integers(1, 60)),
)


def _run(proto: Protocol, stream: bytes, cuts: List[int], our_close: bool = False) -> Any:
    """Feed ``stream`` in reads ending at ``cuts``, then EOF; everything observable on the way."""
    events: List[Any] = []
    sent: List[bytes] = []
    bounds = sorted({c for c in cuts if 0 < c < len(stream)}) + [len(stream)]
    start = 0
    for i, end in enumerate(bounds):
        proto.receive_data(stream[start:end])
        start = end
        events += proto.events_received()
        sent += proto.data_to_send()
        if our_close and proto.state is State.OPEN and i == len(bounds) // 2:
            proto.send_close(1000, "ours")  # our side starts the closing handshake mid-stream
            sent += proto.data_to_send()
    proto.receive_eof()
    events += proto.events_received()
    sent += proto.data_to_send()
    return _observed(proto, events, sent)


def _observed(proto: Protocol, events: List[Any], sent: List[bytes]) -> Any:
    out: List[Out] = []
    fragments: List[bytes] = []
    for event in events:
        if type(event) is bytes:  # the prefilter's: one whole message
            out.append(("message", event))
        elif not isinstance(event, Frame):
            out.append(("handshake", str(event.status_code).encode()))
        elif event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            fragments.append(bytes(event.data))
            if event.fin:
                out.append(("message", b"".join(fragments)))
                fragments = []
        else:
            out.append((event.opcode.name.lower(), bytes(event.data)))
    # What went back, unmasked (the client masks with random keys): as a server would read it.
    reader = Protocol(Side.SERVER, max_size=None)
    reader.receive_data(b"".join(s for s in sent if s))
    back = [(f.opcode, bytes(f.data), f.fin) for f in reader.events_received()]
    ends = [s for s in sent if s == b""]  # the client's TCP half-close
    exc = proto.parser_exc
    return {
        "out": out,
        "back": back,
        "eof_sent": len(ends),
        "state": proto.state,
        "close_rcvd": proto.close_rcvd,
        "close_sent": proto.close_sent,
        "parser_exc": None if exc is None else (type(exc), str(exc)),
        "close_exc": _close_exc(proto),
    }


def _close_exc(proto: Protocol) -> Any:
    if proto.state is not State.CLOSED:
        return None
    exc = proto.close_exc
    try:
        return (type(exc), str(exc))
    except AssertionError:
        # websockets 13.0's ConnectionClosed.__str__ asserts after a close frame that came
        # inside a fragmented message (its own state, the same with or without the prefilter).
        return (type(exc), "websockets asserted")


def _stream(items: List[bytes], ending: Tuple[str, Union[bytes, int]]) -> bytes:
    stream = b"".join(items)
    kind, arg = ending
    if kind == "close":
        assert isinstance(arg, bytes)
        return stream + arg
    if kind == "truncate" and items:
        assert isinstance(arg, int)
        return stream[: len(stream) - min(arg, len(items[-1]))]
    return stream


def _protocols(max_size: Any) -> Tuple[Protocol, Protocol]:
    bare = Protocol(Side.CLIENT, max_size=max_size)
    ours = Protocol(Side.CLIENT, max_size=max_size)
    FramePrefilter(ours)
    return bare, ours


_MAX_SIZES = [LIMIT, None] if V13 else [LIMIT, None, (LIMIT, 100), (None, 100), (None, LIMIT)]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(_item, max_size=12),
    ending=_ending,
    cuts=st.lists(st.integers(0, 8000), max_size=10),
    max_size=st.sampled_from(_MAX_SIZES),
    our_close=st.booleans(),
)
# A close inside a fragmented message: websockets 13.0's own assertion in ConnectionClosed.__str__.
@example(items=[b"\x01\x00"], ending=("close", b"\x88\x05\x03\xe8bye"), cuts=[], max_size=LIMIT, our_close=False)
def test_any_frames_in_any_reads_give_what_the_bare_protocol_gives(
    items: List[bytes], ending: Any, cuts: List[int], max_size: Any, our_close: bool
) -> None:
    stream = _stream(items, ending)
    bare, ours = _protocols(max_size)
    assert _run(ours, stream, cuts, our_close) == _run(bare, stream, cuts, our_close)


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.sampled_from([0, 125, 126, 65535, 65536, 70000]), min_size=1, max_size=4),
    cuts=st.lists(st.integers(0, 300000), max_size=8),
)
def test_every_length_encoding_is_cut_at_the_right_place(sizes: List[int], cuts: List[int]) -> None:
    """7-, 16- and 64-bit lengths, headers cut anywhere, messages of 0 to 70,000 bytes."""
    stream = b"".join(_frame(Opcode.BINARY, bytes([i % 251]) * n) for i, n in enumerate(sizes))
    bare, ours = _protocols(None)
    seen = _run(ours, stream, cuts)
    assert seen == _run(bare, stream, cuts)
    assert [len(p) for _, p in seen["out"]] == sizes


@pytest.mark.parametrize("max_size", _MAX_SIZES)
def test_a_message_at_or_over_each_size_limit_is_judged_as_by_the_library(max_size: Any) -> None:
    for size in (99, 100, 101, LIMIT - 1, LIMIT, LIMIT + 1):
        stream = _frame(Opcode.BINARY, b"m" * size) + _frame(Opcode.TEXT, b"after")
        bare, ours = _protocols(max_size)
        assert _run(ours, stream, [7]) == _run(bare, stream, [7]), size


@pytest.mark.parametrize("read", [1, 3, 1000])
def test_a_stream_cut_anywhere_fails_exactly_as_without_the_prefilter(read: int) -> None:
    """Truncated inside a header, an extended length, a payload, a control frame: same error."""
    whole = _frame(Opcode.TEXT, b"t" * 5) + _frame(Opcode.PING, b"p") + _frame(Opcode.BINARY, b"b" * 200)
    for cut in range(len(whole) + 1):
        stream = whole[:cut]
        bare, ours = _protocols(LIMIT)
        reads = list(range(read, len(stream), read))
        assert _run(ours, stream, reads) == _run(bare, stream, reads), cut


def _handshake_pair() -> Tuple[ClientProtocol, ClientProtocol, bytes]:
    """Two clients that sent the same opening request, and the server's real 101 answer to it."""
    uri = parse_uri("ws://localhost/")
    bare, ours = ClientProtocol(uri, max_size=LIMIT), ClientProtocol(uri, max_size=LIMIT)
    ours.key = bare.key
    request = bare.connect()
    ours.send_request(ours.connect())
    bare.send_request(request)
    ours.data_to_send(), bare.data_to_send()
    server = ServerProtocol()
    server.receive_data(request.serialize())
    [seen] = server.events_received()
    answer = server.accept(seen)
    server.send_response(answer)
    return bare, ours, b"".join(server.data_to_send())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(_item, max_size=8), ending=_ending, cuts=st.lists(st.integers(0, 3000), max_size=8))
def test_frames_right_after_the_handshake_answer_in_the_same_read(
    items: List[bytes], ending: Any, cuts: List[int]
) -> None:
    bare, ours, answer = _handshake_pair()
    FramePrefilter(ours)
    stream = answer + _stream(items, ending)
    seen = _run(ours, stream, cuts)
    assert seen == _run(bare, stream, cuts)
    assert seen["out"][0] == ("handshake", b"101")


def test_a_refused_handshake_leaves_everything_to_the_library() -> None:
    bare, ours, _ = _handshake_pair()
    FramePrefilter(ours)
    refused = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope" + _frame(Opcode.TEXT, b"x")
    seen = _run(ours, refused, [20, 50])
    assert seen == _run(bare, refused, [20, 50])
    assert ours.handshake_exc is not None and seen["out"] == [("handshake", b"403")]  # no message


def test_simple_frames_skip_the_library_parser_and_others_reach_it_whole() -> None:
    """The fast path is taken (a prefilter that passed everything on would pass the tests above)."""
    proto = Protocol(Side.CLIENT, max_size=LIMIT)
    prefilter = FramePrefilter(proto)
    given_to_library: List[bytes] = []
    library = prefilter._receive_data
    prefilter._receive_data = lambda data: (given_to_library.append(bytes(data)), library(data))[1]
    ping = _frame(Opcode.PING, b"hi")
    stream = _frame(Opcode.TEXT, b"a" * 200) + ping + _frame(Opcode.BINARY, b"b" * 5)
    for i in range(0, len(stream), 7):
        proto.receive_data(stream[i : i + 7])
    events = proto.events_received()
    assert events[0] == b"a" * 200 and events[2] == b"b" * 5
    assert isinstance(events[1], Frame) and events[1].opcode is Opcode.PING
    assert b"".join(given_to_library) == ping  # the ping alone, in order, and answered:
    assert [f[0] for f in _observed(proto, [], proto.data_to_send())["back"]] == [Opcode.PONG]


def test_a_debug_logger_keeps_the_library_parsing_every_frame() -> None:
    import logging

    logger = logging.getLogger("cartesia.tests.ws_frames")
    logger.setLevel(logging.DEBUG)
    proto = Protocol(Side.CLIENT, max_size=LIMIT, logger=logger)
    FramePrefilter(proto)
    proto.receive_data(_frame(Opcode.TEXT, b"x"))
    [event] = proto.events_received()
    assert isinstance(event, Frame)  # the library's, with its "< TEXT" debug line
