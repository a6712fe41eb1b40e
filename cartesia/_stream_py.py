"""Pure-Python streaming core: frame splitting, base64 audio decoding, PCM ring and accumulator."""

from __future__ import annotations

import binascii
import io
import json
import re
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from .errors import (
    Base64DecodeError,
    FrameTooLargeError,
    RingOverflowError,
    StreamFormatError,
    TruncatedStreamError,
)

__all__ = ["AudioBuffer", "Message", "PCMRing", "StreamParser", "b64_backend", "parse_message"]

_B64_BAD = re.compile(rb"[^A-Za-z0-9+/=]")
_NON_WS = re.compile(rb"[^ \t\r\n]")
_STRUCT = re.compile(rb'[{}\[\]",:]')
_NON_BLANK = re.compile(rb"[^ \t]")
# A run of complete top-level members `"key": <no string or a plain string>,` other than "data":
# skipping them leaves the scanner in exactly the state its byte-by-byte walk would reach (only
# the structural bytes {}[]",: matter to it), in one C-level match instead of ~5 loop turns each.
_OTHER = rb'[^"{}\[\],:]*'
_FLAT_MEMBERS = re.compile(
    rb"(?:" + _OTHER + rb'"(?!data")[^"\\]*"' + _OTHER + rb":" + _OTHER + rb'(?:"[^"\\]*"' + _OTHER + rb")?,)+"
)
# The usual frame, `{"data": "<base64>", <members as above>}`, in three C-level steps (a match up to
# the data string, a find of its closing quote, a match of the rest) instead of the scanner's loop.
# Anything else, including every frame the scanner would reject, fails to match and is scanned.
_DATA_FIRST = re.compile(_OTHER + rb'"data"' + _OTHER + rb":" + _OTHER + rb'"')
_FLAT_REST = re.compile(
    _OTHER + rb'(?:,' + _OTHER + rb'"(?!data")[^"\\]*"' + _OTHER + rb":" + _OTHER + rb'(?:"[^"\\]*"' + _OTHER
    + rb")?)*\}"
)
_BOM = b"\xef\xbb\xbf"
_MISSING = object()

_FLOAT = np.dtype("<f4")
_SAMPLE_SIZE = {"pcm_f32le": 4, "pcm_s16le": 2, "pcm_mulaw": 1, "pcm_alaw": 1}
_DEFAULT_MAX_FRAME = 16 * 1024 * 1024


# --- errors ---------------------------------------------------------------------------------


def _describe_byte(b: int) -> str:
    if 0x20 <= b < 0x7F:
        return f"byte 0x{b:02x} ({chr(b)!r})"
    return f"byte 0x{b:02x}"


def _unexpected(b: int, offset: int, expected: str) -> StreamFormatError:
    return StreamFormatError(f"unexpected {_describe_byte(b)} at offset {offset}: expected {expected}", offset)


def _b64_error_pos(s: Any) -> int:
    """Index of the first offending character of ``s`` (len(s) for a bad length), or -1 if valid."""
    n = len(s)
    if n % 4:
        return n
    s = bytes(s)
    m = _B64_BAD.search(s)
    pos = m.start() if m else n
    eq = s.find(b"=")
    if 0 <= eq < pos and not (eq == n - 1 or (eq == n - 2 and s[n - 1] == 0x3D)):
        pos = eq
    return pos if pos < n else -1


def _b64_error(s: Any, pos: int, offset: int) -> Base64DecodeError:
    n = len(s)
    if pos == n:
        return Base64DecodeError(
            f"invalid base64 at offset {offset + pos}: length {n} is not a multiple of 4", offset + pos
        )
    return Base64DecodeError(
        f"invalid base64 at offset {offset + pos}: unexpected {_describe_byte(s[pos])}", offset + pos
    )


# --- base64 by numpy: one table look-up per pair of characters, then a few whole-array ops --------
#
# binascii.a2b_base64 walks the text one character at a time in C; here numpy does the work in
# passes over whole arrays, ~2.5x faster on frames of audio (tens of kB of base64).

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_U2 = np.dtype("<u2")
_U4 = np.dtype("<u4")
_BE4 = np.dtype(">u4")
_PAIR_BAD = 0xFFFF
# Below this many characters a2b_base64 wins (the numpy passes cost ~12 us however short).
_NUMPY_B64_MIN = 4096


def _pair_table() -> np.ndarray:
    """The 12 bits of every pair of base64 characters (index: first | second << 8), _PAIR_BAD if
    either is not in the alphabet. '=' is bad too: the padded last quad is decoded apart."""
    value = np.full(256, 64, dtype=np.uint32)
    value[np.frombuffer(_B64_ALPHABET, dtype=np.uint8)] = np.arange(64, dtype=np.uint32)
    first, second = value[np.newaxis, :], value[:, np.newaxis]  # row: second character
    pairs = np.where((first < 64) & (second < 64), (first << 6) | second, _PAIR_BAD)
    table: np.ndarray = pairs.astype(_U2).ravel()
    return table


_PAIRS = _pair_table()


def _b64decode_numpy(s: Any) -> Optional[bytes]:
    """Decode valid base64 ``s`` (length a multiple of 4, at least 8), or None if it is not valid.

    Every quad but the last goes through numpy; the last one (where padding may be) through
    a2b_base64 with the exact-length check of _b64decode_at.
    """
    n = len(s)
    quads = n // 4 - 1
    body = _PAIRS.take(np.frombuffer(s, dtype=_U2, count=2 * quads))
    if body.max() > 0xFFF:
        return None
    try:
        tail = binascii.a2b_base64(s[n - 4 :])
    except binascii.Error:
        return None
    if len(tail) != 3 - (s[n - 1] == 0x3D) - (s[n - 2] == 0x3D):
        return None
    # Two 12-bit halves per little-endian uint32 -> the quad's 24 bits in the top three bytes.
    halves = body.view(_U4)
    words = halves << 20
    halves >>= 8
    halves &= 0xFFF00
    words |= halves
    # Stored big-endian 3 bytes apart: each store's spare low byte is overwritten by the next one
    # (numpy stores in index order), and the last one's by the tail.
    out = bytearray(3 * quads + 3)
    np.ndarray((quads,), dtype=_BE4, buffer=out, strides=(3,))[...] = words
    end = 3 * quads + len(tail)
    out[3 * quads : end] = tail
    with memoryview(out) as mv:
        return mv[:end].tobytes()


def _numpy_b64_works() -> bool:
    """Whether numpy here stores the overlapping words in order (checked once, on 4,096 characters)."""
    sample = bytes(range(256)) * 12
    return _b64decode_numpy(binascii.b2a_base64(sample, newline=False)) == sample


if not _numpy_b64_works():  # pragma: no cover - a numpy that stores out of order: a2b_base64 only
    _NUMPY_B64_MIN = 1 << 62


def _b64decode_at(s: Any, offset: int) -> bytes:
    """Strictly decode base64 ``s``; errors report ``offset`` + the index of the offending character."""
    n = len(s)
    if n >= _NUMPY_B64_MIN and n % 4 == 0:
        fast = _b64decode_numpy(s)
        if fast is not None:
            return fast
    elif n % 4 == 0:
        # NOTE: the lenient decoder is ~15% faster than strict_mode=True (3.11+ only) and, with the
        # exact-length check, accepts the same inputs: a skipped byte, early stop at padding or
        # surplus '=' always makes the output shorter than n/4*3 minus the padding.
        try:
            out = binascii.a2b_base64(s)
        except binascii.Error:
            pass
        else:
            if n == 0 or len(out) == n // 4 * 3 - (s[n - 1] == 0x3D) - (s[n - 2] == 0x3D):
                return out
    pos = _b64_error_pos(s)
    if pos < 0:  # pragma: no cover - a2b_base64 and our rule disagree
        pos = 0
    raise _b64_error(s, pos, offset)


def _as_b64_input(b64: Any, offset: int = 0) -> Any:
    if isinstance(b64, str):
        try:
            return b64.encode("ascii")
        except UnicodeEncodeError as exc:
            raise Base64DecodeError(
                f"invalid base64 at offset {offset + exc.start}: non-ASCII character", offset + exc.start
            ) from None
    return _contiguous(b64)


def _contiguous(data: Any) -> memoryview:
    mv = memoryview(data)
    if not mv.contiguous:
        raise BufferError("the buffer must be contiguous")
    return mv.cast("B") if mv.format != "B" or mv.ndim != 1 else mv


# --- base64 kernel hooks (the compiled twin has real SIMD kernels) -------------------------------


def b64_backend() -> str:
    """Name of the base64 decoding kernel in use.

    Returns:
        ``"python"`` for the pure-Python twin; the compiled twin returns ``"avx512vbmi"``,
        ``"avx2"``, ``"ssse3"`` or ``"scalar"``.
    """
    return "python"


def _b64_set_backend(name: str) -> bool:
    """Force a base64 kernel (tests only). Returns True if ``name`` can run here."""
    return name == "python"


def _b64decode(data: Any) -> bytes:
    """Strictly decode standard base64 (tests only). Raises Base64DecodeError."""
    return _b64decode_at(_as_b64_input(data), 0)


# --- sample encodings ----------------------------------------------------------------------


def _ulaw_to_linear(u: int) -> int:
    u = ~u & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return (0x84 - t) if u & 0x80 else (t - 0x84)


def _alaw_to_linear(a: int) -> int:
    a ^= 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


# Exact: every linear16 value divided by 2**15 is representable in float32.
_ULAW = (np.array([_ulaw_to_linear(i) for i in range(256)], dtype=np.float32) / np.float32(32768.0)).astype(
    np.float32
)
_ALAW = (np.array([_alaw_to_linear(i) for i in range(256)], dtype=np.float32) / np.float32(32768.0)).astype(
    np.float32
)


def _check_encoding(encoding: str) -> int:
    try:
        return _SAMPLE_SIZE[encoding]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown encoding {encoding!r}: expected one of {', '.join(sorted(_SAMPLE_SIZE))}"
        ) from None


def _to_float32(encoding: str, raw: Any) -> np.ndarray:
    """Whole samples of ``raw`` (bytes-like, length a multiple of the sample size) as float32."""
    if encoding == "pcm_f32le":
        return np.frombuffer(raw, dtype=_FLOAT)
    if encoding == "pcm_s16le":
        scaled: np.ndarray = np.frombuffer(raw, dtype="<i2").astype(np.float32) * np.float32(1.0 / 32768.0)
        return scaled
    table = _ULAW if encoding == "pcm_mulaw" else _ALAW
    samples: np.ndarray = table[np.frombuffer(raw, dtype=np.uint8)]
    return samples


class _Tail:
    """Split incoming PCM bytes into whole samples, keeping a partial sample for the next call."""

    __slots__ = ("size", "pending")

    def __init__(self, size: int) -> None:
        self.size = size
        self.pending = b""

    def split(self, pcm: Any) -> Tuple[Any, bytes]:
        mv = _contiguous(pcm)
        if self.pending:
            data: Any = self.pending + mv.tobytes()
        else:
            data = mv
        whole = len(data) - len(data) % self.size
        return data[:whole], bytes(data[whole:])


# --- Message ---------------------------------------------------------------------------------


class Message:
    """One decoded frame of a Cartesia stream.

    Attributes:
        type: The frame's ``type`` field if it is a string, else inferred: ``"chunk"`` when it
            carries ``data``, ``"error"`` when it has an ``error`` field, ``"done"`` when ``done``
            is true, otherwise ``"unknown"``.
        audio: The decoded ``data`` bytes; ``b""`` when there was none or a sink took them.
        samples: Samples written to the sink (0 without a sink).
        sampling_rate: The ``sampling_rate`` field when it is an int, else None.
        done: The ``done`` field when it is a bool, else False.
        context_id: The ``context_id`` field when it is a string, else None.
        fields: Every other top-level field, JSON-decoded.
    """

    __slots__ = ("type", "audio", "samples", "sampling_rate", "done", "context_id", "fields")

    def __init__(
        self,
        type: str,
        *,
        audio: bytes = b"",
        samples: int = 0,
        sampling_rate: Optional[int] = None,
        done: bool = False,
        context_id: Optional[str] = None,
        fields: Optional[Dict[str, Any]] = None,
    ) -> None:
        self.type = type
        self.audio = audio
        self.samples = samples
        self.sampling_rate = sampling_rate
        self.done = done
        self.context_id = context_id
        self.fields = {} if fields is None else fields

    def _key(self) -> Tuple[Any, ...]:
        return (
            self.type,
            self.audio,
            self.samples,
            self.sampling_rate,
            self.done,
            self.context_id,
            self.fields,
        )

    def __eq__(self, other: object) -> bool:
        # Duck-typed so messages of the two twins compare equal.
        if type(other).__name__ != "Message" or not hasattr(other, "fields"):
            return NotImplemented
        return self._key() == (
            other.type,  # type: ignore[attr-defined]
            other.audio,  # type: ignore[attr-defined]
            other.samples,  # type: ignore[attr-defined]
            other.sampling_rate,  # type: ignore[attr-defined]
            other.done,  # type: ignore[attr-defined]
            other.context_id,  # type: ignore[attr-defined]
            other.fields,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Message(type={self.type!r}, audio=<{len(self.audio)} bytes>, samples={self.samples}, "
            f"sampling_rate={self.sampling_rate!r}, done={self.done!r}, "
            f"context_id={self.context_id!r}, fields={self.fields!r})"
        )


# --- frame -> Message --------------------------------------------------------------------------


_JSON_DECODE = json.JSONDecoder().decode


def _loads(text: bytes, offset: int) -> Dict[str, Any]:
    try:
        # What json.loads(text) does, minus its encoding sniffing: text starts with '{', so that
        # picks UTF-8 unless the next byte is NUL.
        if text[1]:
            fields: Dict[str, Any] = _JSON_DECODE(text.decode("utf-8", "surrogatepass"))
        else:
            fields = json.loads(text)  # always an object: the scanner matched its braces
    except (ValueError, RecursionError) as exc:
        raise StreamFormatError(f"invalid JSON in the frame at offset {offset}: {exc}", offset) from None
    return fields


def _deliver(audio: bytes, sink: Any) -> Tuple[bytes, int]:
    if sink is None:
        return audio, 0
    if hasattr(sink, "append"):
        return b"", int(sink.append(audio))
    return b"", int(sink.write(audio))


def _build_message(buf: Any, start: int, end: int, dspan: Optional[Tuple[int, int]], base: int, sink: Any) -> Message:
    """Turn the JSON object ``buf[start:end]`` into a Message.

    ``dspan`` is (index of the opening quote, index after the closing quote) of the top-level
    ``data`` string in ``buf``, found by the scanner; ``base`` is the stream offset of ``buf[0]``.
    """
    audio = b""
    samples = 0
    if dspan is None:
        fields = _loads(bytes(buf[start:end]), base + start)
        data = fields.pop("data", None)
        has_data = data is not None
        if has_data:
            # Only reached when the key itself was escaped ("d\u0061ta"): decode the str value.
            if not isinstance(data, str):
                raise StreamFormatError(
                    f"'data' in the frame at offset {base + start} must be a base64 string or null",
                    base + start,
                )
            audio, samples = _deliver(_b64decode_at(_as_b64_input(data, base + start), base + start), sink)
    else:
        vs, ve = dspan
        with memoryview(buf) as mv:
            fields = _loads(mv[start:vs].tobytes() + b"null" + mv[ve:end].tobytes(), base + start)
            if fields.pop("data", None) is not None:
                raise StreamFormatError(f"duplicate 'data' member in the frame at offset {base + start}", base + start)
            has_data = True
            raw = mv[vs + 1 : ve - 1]
            try:
                decoded = _b64decode_at(raw, base + vs + 1)
            except Base64DecodeError:
                if raw.tobytes().find(b"\\") < 0:
                    raise
                # Slow path: JSON escapes (e.g. "\/") inside the base64 text.
                try:
                    text = json.loads(mv[vs:ve].tobytes())
                except ValueError as exc:
                    raise StreamFormatError(
                        f"invalid JSON string in 'data' at offset {base + vs}: {exc}", base + vs
                    ) from None
                decoded = _b64decode_at(_as_b64_input(text, base + vs + 1), base + vs + 1)
            finally:
                raw.release()
        audio, samples = _deliver(decoded, sink)
    kind = fields.get("type")
    if type(kind) is str:
        del fields["type"]
    else:
        kind = None
    rate = fields.get("sampling_rate")
    if type(rate) is int:
        del fields["sampling_rate"]
    else:
        rate = None
    done = fields.get("done")
    if type(done) is bool:
        del fields["done"]
    else:
        done = False
    context_id = fields.get("context_id")
    if type(context_id) is str:
        del fields["context_id"]
    else:
        context_id = None
    if kind is None:
        if has_data:
            kind = "chunk"
        elif "error" in fields:
            kind = "error"
        elif done:
            kind = "done"
        else:
            kind = "unknown"
    return Message(
        kind,
        audio=audio,
        samples=samples,
        sampling_rate=rate,
        done=done,
        context_id=context_id,
        fields=fields,
    )


class _Scanner:
    """Resumable scan of one JSON object: brace matching, strings, and the top-level ``data`` string.

    Positions are absolute indexes into the buffer the caller passes; ``shift`` moves them when
    the caller drops consumed bytes from the front of its buffer.
    """

    __slots__ = ("start", "depth", "in_str", "str_kind", "expect_key", "key_data", "armed", "key_start", "dspan")

    def __init__(self, start: int) -> None:
        self.start = start
        self.depth = 1
        self.in_str = False
        self.str_kind = 0  # 0 other, 1 key, 2 data value
        self.expect_key = True
        self.key_data = False
        self.armed = False
        self.key_start = 0
        self.dspan: Optional[Tuple[int, int]] = None

    def shift(self, n: int) -> None:
        self.start -= n
        self.key_start -= n
        if self.dspan is not None:
            self.dspan = (self.dspan[0] - n, self.dspan[1] - n)

    def scan(self, buf: Any, pos: int, end: int, base: int) -> int:
        """Scan ``buf[pos:end]``; return the index after the closing brace, or -1 (need more)."""
        find = buf.find
        search = _STRUCT.search
        while pos < end:
            if self.in_str:
                q = find(b'"', pos, end)
                if q < 0:
                    return -1
                k = q - 1
                while buf[k] == 0x5C:  # stops at the opening quote at the latest
                    k -= 1
                pos = q + 1
                if (q - 1 - k) & 1:
                    continue  # escaped quote
                self.in_str = False
                if self.str_kind == 1:
                    self.key_data = buf[self.key_start + 1 : q] == b"data"
                elif self.str_kind == 2:
                    if self.dspan is not None:
                        raise StreamFormatError(
                            f"duplicate 'data' member in the frame at offset {base + self.start}",
                            base + self.start,
                        )
                    self.dspan = (self.key_start, q + 1)
                    # The usual rest of a frame, flat members and the closing brace, in one match.
                    m = _FLAT_REST.match(buf, pos, end)
                    if m is not None:
                        self.depth = 0
                        return m.end()
                continue
            if self.expect_key and self.depth == 1:
                if pos == self.start + 1:
                    # The usual first member, "data": straight into its string.
                    m = _DATA_FIRST.match(buf, pos, end)
                    if m is not None:
                        pos = m.end()
                        self.in_str = True
                        self.str_kind = 2
                        self.key_start = pos - 1
                        self.expect_key = False
                        continue
                m = _FLAT_MEMBERS.match(buf, pos, end)
                if m is not None:
                    pos = m.end()
            m = search(buf, pos, end)
            if m is None:
                return -1
            p = m.start()
            c = buf[p]
            pos = p + 1
            depth = self.depth
            if depth == 1 and self.expect_key and c != 0x22 and c != 0x7D:
                raise _unexpected(c, base + p, "'\"' or '}'")
            if c == 0x22:
                self.in_str = True
                self.key_start = p
                if depth == 1 and self.expect_key:
                    self.str_kind = 1
                    self.expect_key = False
                elif depth == 1 and self.armed:
                    self.str_kind = 2
                else:
                    self.str_kind = 0
                self.key_data = False
                self.armed = False
            elif c == 0x7B or c == 0x5B:
                self.depth = depth + 1
                self.armed = False
            elif c == 0x7D or c == 0x5D:
                self.depth = depth - 1
                if depth == 1:
                    return pos
            elif depth == 1:
                if c == 0x2C:
                    self.expect_key = True
                    self.armed = False
                    self.key_data = False
                elif self.key_data:  # ':' after the "data" key
                    self.armed = True
                    self.key_data = False
        return -1


def _quick_frame(buf: Any, p: int, end: int) -> Optional[Tuple[int, Tuple[int, int]]]:
    """(index after the closing brace, data span) of the usual frame that opens at ``buf[p]``, as
    the scanner would find them, or None when ``buf[p:end]`` is not one whole usual frame."""
    m = _DATA_FIRST.match(buf, p + 1, end)
    if m is None:
        return None
    vs = m.end() - 1
    find = buf.find
    q = find(b'"', vs + 1, end)
    while q >= 0 and buf[q - 1] == 0x5C:
        k = q - 2
        while buf[k] == 0x5C:  # stops at the opening quote at the latest
            k -= 1
        if (q - 1 - k) & 1 == 0:
            break  # an even run of backslashes: the quote is not escaped
        q = find(b'"', q + 1, end)
    if q < 0:
        return None
    m = _FLAT_REST.match(buf, q + 1, end)
    if m is None:
        return None
    return m.end(), (vs, q + 1)


def _parse_text(text: Any, base: int, sink: Any, start: int = 0, end: int = -1) -> Message:
    """Parse the complete JSON text ``text[start:end]`` (optional surrounding whitespace).

    ``base`` is the stream offset of ``text[0]``.
    """
    if end < 0:
        end = len(text)
    m = _NON_WS.search(text, start, end)
    if m is None:
        raise StreamFormatError(f"empty message at offset {base + start}: expected a JSON object", base + start)
    p = m.start()
    if text[p] != 0x7B:
        raise _unexpected(text[p], base + p, "'{' or whitespace")
    quick = _quick_frame(text, p, end)
    dspan: Optional[Tuple[int, int]]
    if quick is not None:
        stop, dspan = quick
    else:
        scanner = _Scanner(p)
        stop = scanner.scan(text, p + 1, end, base)
        dspan = scanner.dspan
    if stop < 0:
        raise StreamFormatError(
            f"incomplete JSON object at offset {base + p}: the message ends inside it", base + p
        )
    m = _NON_WS.search(text, stop, end)
    if m is not None:
        q = m.start()
        raise _unexpected(text[q], base + q, "end of message")
    return _build_message(text, p, stop, dspan, base, sink)


def parse_message(payload: Union[str, bytes, bytearray, memoryview], *, sink: Any = None) -> Message:
    """Parse one complete JSON message (e.g. a websocket text frame) through the fast path.

    Args:
        payload: The JSON text, as ``str`` or UTF-8 bytes.
        sink: Optional ``PCMRing`` or ``AudioBuffer`` that receives the decoded audio.

    Returns:
        The decoded Message.

    Raises:
        StreamFormatError: The payload is not one JSON object.
        Base64DecodeError: Its ``data`` is not valid base64.
    """
    if isinstance(payload, str):
        text: Any = payload.encode("utf-8", "surrogatepass")
    elif isinstance(payload, (bytes, bytearray)):
        text = payload
    elif isinstance(payload, memoryview):
        text = _contiguous(payload).tobytes()
    else:
        raise TypeError(f"payload must be str or bytes-like, not {type(payload).__name__}")
    return _parse_text(text, 0, sink)


# --- StreamParser --------------------------------------------------------------------------

_START, _DECIDE, _JSON, _SSE = 0, 1, 2, 3


class StreamParser:
    """Incremental parser for a Cartesia audio stream body.

    Feed it the bytes of the response as they arrive (reads may end anywhere) and get back the
    complete messages. After any error the parser is unusable: every later call raises the same
    exception class.

    Nothing before an error is lost: when a read completes good frames and then hits a malformed
    one, ``feed`` returns the good frames (their audio already in the sink, exactly once) and
    the error itself (same class, same offset) is raised by the next ``feed`` or ``close``
    call, as a short ``read()`` reports an error on the next call. So always call ``close`` at
    the end of the stream: it also reports a stream cut short.

    Framings:
        ``"json"``: JSON objects back to back, whitespace allowed between them.
        ``"sse"``: Server-Sent Events; each event's joined ``data`` is one JSON object. Comment
        lines, ``event:``, ``id:`` and ``retry:`` are ignored; an event without data, or with empty
        data, yields nothing. Unlike browsers, unknown field names and lines that start with
        whitespace are errors (they mean the stream is not what we expect).
        ``"auto"``: ``json`` if the first non-whitespace byte is ``{``, ``sse`` if it is ``:`` or
        an ASCII letter; anything else is an error.
        A leading UTF-8 byte-order mark is skipped in every framing.

    A ``data`` member that is ``null`` (or missing) means no audio; any other non-string value
    raises StreamFormatError.

    Args:
        framing: ``"auto"``, ``"json"`` or ``"sse"``.
        sink: Optional ``PCMRing`` or ``AudioBuffer`` (of either implementation) that receives
            the decoded audio instead of ``Message.audio``.
        max_frame_bytes: Largest frame (or SSE event) accepted; a partial frame that grows past
            it raises FrameTooLargeError.
    """

    __slots__ = ("_mode", "_framing", "_sink", "_max", "_buf", "_base", "_pos", "_fed", "_count", "_error",
                 "_deferred", "_closed", "_scanner", "_lead", "_skip_lf", "_eol_from", "_parts", "_dspan", "_dlines",
                 "_dsize", "_doff", "_fast_until", "_fast_sse")

    def __init__(self, framing: str = "auto", *, sink: Any = None, max_frame_bytes: int = _DEFAULT_MAX_FRAME) -> None:
        if framing not in ("auto", "json", "sse"):
            raise ValueError(f"unknown framing {framing!r}: expected 'auto', 'json' or 'sse'")
        if max_frame_bytes < 1:
            raise ValueError("max_frame_bytes must be positive")
        self._framing = framing
        self._mode = _START
        self._sink = sink
        self._max = int(max_frame_bytes)
        self._buf = bytearray()
        self._base = 0  # stream offset of self._buf[0]
        self._pos = 0
        self._fed = 0
        self._count = 0
        self._error: Optional[BaseException] = None
        self._deferred: Optional[BaseException] = None  # error found after good frames, raised next call
        self._closed = False
        self._scanner: Optional[_Scanner] = None
        self._lead: Optional[int] = None  # stream offset of blanks that start the current line (auto)
        self._skip_lf = False
        self._eol_from = 0
        # Set by _run: while the buffer stays within _fast_until bytes, a read without a '"' (inside
        # a frame's string) or without an end of line (SSE, _fast_sse) cannot complete anything.
        self._fast_until = -1
        self._fast_sse = False
        self._parts: List[bytes] = []
        self._dspan: Optional[Tuple[int, int]] = None  # the event's only data line, still in _buf
        self._dlines = 0
        self._dsize = 0
        self._doff = 0

    @property
    def framing(self) -> str:
        """The framing in use: ``"json"`` or ``"sse"``, or ``"auto"`` while still undecided."""
        return self._framing

    @property
    def bytes_fed(self) -> int:
        """Total bytes passed to ``feed`` so far."""
        return self._fed

    @property
    def messages(self) -> int:
        """Total messages returned so far."""
        return self._count

    def feed(self, data: Union[bytes, bytearray, memoryview]) -> List[Message]:
        """Parse the next piece of the stream.

        Args:
            data: The bytes that just arrived (any length, including 0).

        Returns:
            The messages completed by these bytes, in order. If the bytes also hold a malformed
            frame after good ones, the good ones are returned and the error is raised by the next
            call.

        Raises:
            StreamFormatError: Junk in the stream (the message says where), or a bad frame.
            FrameTooLargeError: A frame grew past ``max_frame_bytes``.
            Base64DecodeError: A frame's ``data`` is not valid base64.
            RingOverflowError: The sink ring had no room for a frame's audio.
        """
        if self._error is not None or self._closed:
            self._raise_deferred()
            self._check_usable()
            raise StreamFormatError("feed() after close()", self._fed)
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"feed() takes bytes, bytearray or memoryview, not {type(data).__name__}")
            data = _contiguous(data)
        buf = self._buf
        old = len(buf)
        buf += data
        new = len(buf)
        self._fed += new - old
        # Fast paths for the common read that only extends a long base64 string or SSE line:
        # one C-level find over the new bytes and no other work (the next _run searches them
        # once more, from where it stopped).
        if new <= self._fast_until:
            if self._fast_sse:
                if buf.find(b"\n", old) < 0 and buf.find(b"\r", old) < 0:
                    return []
            elif buf.find(b'"', old) < 0:
                return []
        out: List[Message] = []
        try:
            self._run(out)
        except Exception as exc:
            self._error = exc
            if not out:
                raise
            self._deferred = exc
        self._count += len(out)
        return out

    def close(self) -> List[Message]:
        """Signal the end of the stream.

        Returns:
            Messages completed by the end of the stream (always empty for the supported framings).

        Raises:
            TruncatedStreamError: The stream ended inside a frame or an event.
            StreamFormatError: (or the other ``feed`` errors) A malformed frame that the last
                ``feed`` found after the good frames it returned.
        """
        self._raise_deferred()
        self._check_usable()
        if self._closed:
            return []
        self._closed = True
        try:
            self._finish()
        except Exception as exc:
            self._error = exc
            raise
        return []

    def _raise_deferred(self) -> None:
        exc = self._deferred
        if exc is not None:
            self._deferred = None
            raise exc

    def _check_usable(self) -> None:
        exc = self._error
        if exc is not None:
            cls = type(exc)
            text = f"the parser failed earlier: {exc}"
            if isinstance(exc, StreamFormatError):
                raise cls(text, exc.offset)
            try:
                raise cls(text)
            except TypeError:  # pragma: no cover - an exception class with another signature
                raise StreamFormatError(text) from exc

    # -- driver --

    def _run(self, out: List[Message]) -> None:
        # ``out`` is the caller's list, so the frames completed before an error are not lost.
        mode = self._mode
        if mode == _JSON:
            self._run_json(out)
        elif mode == _SSE:
            self._run_sse(out)
        else:
            buf = self._buf
            if mode == _START:
                if len(buf) < 3 and _BOM.startswith(bytes(buf)):
                    return
                if buf.startswith(_BOM):
                    self._pos = 3
                mode = self._mode = {"auto": _DECIDE, "json": _JSON, "sse": _SSE}[self._framing]
            if mode == _DECIDE:
                self._decide()
            if self._mode == _JSON:
                self._run_json(out)
            elif self._mode == _SSE:
                self._run_sse(out)
        self._compact()
        scanner = self._scanner
        if scanner is not None:
            self._fast_sse = False
            self._fast_until = scanner.start + self._max if scanner.in_str else -1
        else:
            self._fast_sse = True
            self._fast_until = self._pos - self._dsize + self._max if self._mode == _SSE and not self._skip_lf else -1

    def _compact(self) -> None:
        scanner = self._scanner
        keep = self._pos if scanner is None else scanner.start
        dspan = self._dspan
        if dspan is not None and dspan[0] < keep:
            keep = dspan[0]
        if keep:
            del self._buf[:keep]
            self._base += keep
            self._pos -= keep
            self._eol_from -= keep
            if scanner is not None:
                scanner.shift(keep)
            if dspan is not None:
                self._dspan = (dspan[0] - keep, dspan[1] - keep)
        pending = len(self._buf) + self._dsize - (self._pos if scanner is None else 0)
        if pending > self._max:
            # Where the partial frame (json) or the partial line (sse) starts, as the compiled twin
            # reports it; _buf may still begin earlier, at the event's first data line.
            off = self._base + (0 if scanner is not None else self._pos)
            raise FrameTooLargeError(f"frame at offset {off} exceeds max_frame_bytes ({pending} > {self._max})", off)

    def _decide(self) -> None:
        buf, pos, base = self._buf, self._pos, self._base
        m = _NON_WS.search(buf, pos)
        stop = len(buf) if m is None else m.start()
        last = max(buf.rfind(b"\n", pos, stop), buf.rfind(b"\r", pos, stop))
        if last >= 0:
            self._lead = base + last + 1 if last + 1 < stop else None
        elif self._lead is None and stop > pos:
            self._lead = base + pos
        self._pos = stop
        if m is None:
            return
        c = buf[stop]
        if c == 0x7B:
            self._mode = _JSON
            self._framing = "json"
            return
        if c != 0x3A and not (0x61 <= c <= 0x7A or 0x41 <= c <= 0x5A):
            raise _unexpected(c, base + stop, "'{', ':' or an SSE field name")
        self._mode = _SSE
        self._framing = "sse"
        if self._lead is not None:
            raise StreamFormatError(
                f"SSE line at offset {self._lead} starts with whitespace: expected a field name or ':'", self._lead
            )

    def _run_json(self, out: List[Message]) -> None:
        buf = self._buf
        end = len(buf)
        pos = self._pos
        base = self._base
        limit = self._max
        while True:
            scanner = self._scanner
            if scanner is None:
                m = _NON_WS.search(buf, pos)
                if m is None:
                    pos = end
                    break
                p = m.start()
                if buf[p] != 0x7B:
                    raise _unexpected(buf[p], base + p, "'{' or whitespace")
                quick = _quick_frame(buf, p, end)
                if quick is not None:
                    stop, dspan = quick
                    if stop - p > limit:
                        raise FrameTooLargeError(
                            f"frame at offset {base + p} exceeds max_frame_bytes ({stop - p} > {limit})", base + p
                        )
                    out.append(_build_message(buf, p, stop, dspan, base, self._sink))
                    pos = stop
                    continue
                scanner = self._scanner = _Scanner(p)
                pos = p + 1
            stop = scanner.scan(buf, pos, end, base)
            if stop < 0:
                pos = end
                break
            start = scanner.start
            if stop - start > limit:
                raise FrameTooLargeError(
                    f"frame at offset {base + start} exceeds max_frame_bytes ({stop - start} > {limit})",
                    base + start,
                )
            self._scanner = None
            out.append(_build_message(buf, start, stop, scanner.dspan, base, self._sink))
            pos = stop
        self._pos = pos

    def _run_sse(self, out: List[Message]) -> None:
        buf = self._buf
        end = len(buf)
        pos = self._pos
        base = self._base
        find = buf.find
        nl = cr = -1
        while pos < end:
            if self._skip_lf:
                self._skip_lf = False
                if buf[pos] == 0x0A:
                    pos += 1
                    continue
            # NOTE: resume the end-of-line search where the last read stopped, and remember where
            # the next LF / CR are, so no byte is searched twice (a CR-only stream of short lines
            # would otherwise rescan to the end of the buffer for every line).
            frm = self._eol_from if self._eol_from > pos else pos
            if nl < frm:
                nl = find(b"\n", frm)
                if nl < 0:
                    nl = end
            if cr < frm:
                cr = find(b"\r", frm, nl)
                if cr < 0:
                    cr = nl  # no CR before the next LF
            if cr < nl:
                eol = cr
            elif nl < end:
                eol = nl
            else:
                self._eol_from = end
                break
            nxt = eol + 1
            if eol == cr and cr < nl:
                if nxt < end:
                    if buf[nxt] == 0x0A:
                        nxt += 1
                else:
                    self._skip_lf = True
            self._line(buf, pos, eol, base, out)
            pos = nxt
        self._pos = pos

    def _line(self, buf: bytearray, pos: int, eol: int, base: int, out: List[Message]) -> None:
        if pos == eol:
            self._dispatch(out)
            return
        c = buf[pos]
        if c == 0x3A:  # comment
            return
        if c == 0x20 or c == 0x09:
            if _NON_BLANK.search(buf, pos, eol) is None:
                return  # a blank-only line is whitespace, not a field
            raise StreamFormatError(
                f"SSE line at offset {base + pos} starts with whitespace: expected a field name or ':'", base + pos
            )
        colon = buf.find(b":", pos, eol)
        if colon < 0:
            name = bytes(buf[pos:eol])
            vs = eol
        else:
            name = bytes(buf[pos:colon])
            vs = colon + 1
            if vs < eol and buf[vs] == 0x20:
                vs += 1
        if name == b"data":
            # One data line (the usual case) stays in the buffer and is parsed from there.
            if not self._dlines:
                self._doff = base + vs
                self._dspan = (vs, eol)
            else:
                if self._dspan is not None:
                    first, last = self._dspan
                    self._parts = [bytes(buf[first:last])]
                    self._dspan = None
                self._parts.append(bytes(buf[vs:eol]))
            self._dlines += 1
            self._dsize += eol - vs + 1
            if self._dsize > self._max:
                raise FrameTooLargeError(
                    f"SSE event at offset {self._doff} exceeds max_frame_bytes ({self._dsize} > {self._max})",
                    self._doff,
                )
        elif name not in (b"event", b"id", b"retry"):
            shown = name.decode("utf-8", "backslashreplace")
            raise StreamFormatError(f"unknown SSE field {shown!r} at offset {base + pos}", base + pos)

    def _dispatch(self, out: List[Message]) -> None:
        if not self._dlines:
            return
        dspan = self._dspan
        self._dlines = 0
        self._dsize = 0
        self._dspan = None
        if dspan is not None:
            if dspan[1] > dspan[0]:
                out.append(_parse_text(self._buf, self._base, self._sink, dspan[0], dspan[1]))
            return
        text = b"\n".join(self._parts)
        self._parts = []
        if text:
            out.append(_parse_text(text, self._doff, self._sink))

    def _finish(self) -> None:
        mode = self._mode
        buf = self._buf
        if mode == _START:
            if buf:
                raise TruncatedStreamError("stream ended inside a byte-order mark at offset 0", 0)
        elif mode == _JSON:
            if self._scanner is not None:
                off = self._base + self._scanner.start
                raise TruncatedStreamError(f"stream ended inside the frame that starts at offset {off}", off)
        elif mode == _SSE:
            pos, end = self._pos, len(buf)
            if pos < end and buf[pos] != 0x3A and _NON_BLANK.search(buf, pos, end) is not None:
                off = self._base + pos
                raise TruncatedStreamError(f"stream ended inside the SSE line at offset {off}", off)
            if self._dlines:
                raise TruncatedStreamError(
                    f"stream ended before the blank line that ends the SSE event at offset {self._doff}",
                    self._doff,
                )


# --- PCMRing ---------------------------------------------------------------------------------


class PCMRing:
    """Preallocated float32 ring of audio samples for one producer and one consumer thread.

    The producer (the stream) calls ``write``/``write_b64``; the consumer (e.g. an audio
    callback) calls ``read``/``readinto``. Input bytes in ``encoding`` are converted to float32 on
    the way in; a write that ends mid-sample keeps the leftover bytes for the next write.

    Overflow policy: a write that does not fit raises RingOverflowError and writes NOTHING (not
    even the leftover bytes are consumed), so the producer can wait until ``free`` is large
    enough and retry the same write. Audio is never dropped silently.

    Args:
        capacity: Size of the ring in samples.
        encoding: ``"pcm_f32le"``, ``"pcm_s16le"``, ``"pcm_mulaw"`` or ``"pcm_alaw"``.
    """

    __slots__ = ("_arr", "_cap", "_r", "_w", "_enc", "_tail", "__weakref__")

    def __init__(self, capacity: int, *, encoding: str = "pcm_f32le") -> None:
        size = _check_encoding(encoding)
        capacity = int(capacity)
        if capacity < 1:
            raise ValueError("capacity must be at least 1 sample")
        self._arr = np.zeros(capacity, dtype=np.float32)
        self._cap = capacity
        self._r = 0  # total samples read (published by the consumer)
        self._w = 0  # total samples written (published by the producer)
        self._enc = encoding
        self._tail = _Tail(size)

    @property
    def capacity(self) -> int:
        """Size of the ring in samples."""
        return self._cap

    @property
    def free(self) -> int:
        """Samples that can be written now."""
        return self._cap - (self._w - self._r)

    @property
    def encoding(self) -> str:
        """Encoding of the bytes given to ``write``/``write_b64``."""
        return self._enc

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete sample kept from the last write."""
        return len(self._tail.pending)

    def __len__(self) -> int:
        return self._w - self._r

    def write(self, pcm: Union[bytes, bytearray, memoryview]) -> int:
        """Append PCM bytes in the ring's encoding.

        Args:
            pcm: The bytes; a trailing partial sample is kept for the next write.

        Returns:
            Number of samples written.

        Raises:
            RingOverflowError: Not enough free space; nothing was written.
        """
        whole, rest = self._tail.split(pcm)
        n = len(whole) // self._tail.size
        if n > self.free:
            raise RingOverflowError(f"ring overflow: {n} samples do not fit in {self.free} free samples")
        if n:
            samples = _to_float32(self._enc, whole)
            cap = self._cap
            w = self._w % cap
            first = min(n, cap - w)
            self._arr[w : w + first] = samples[:first]
            if first < n:
                self._arr[: n - first] = samples[first:]
        self._tail.pending = rest
        self._w += n  # publish after the copy
        return n

    def write_b64(self, b64: Union[str, bytes, bytearray, memoryview]) -> int:
        """Decode base64 PCM (in the ring's encoding) and append it.

        Args:
            b64: Standard-alphabet, padded base64 text.

        Returns:
            Number of samples written.

        Raises:
            Base64DecodeError: ``b64`` is not valid base64 (nothing written).
            RingOverflowError: Not enough free space; nothing was written.
        """
        return self.write(_b64decode_at(_as_b64_input(b64), 0))

    def read(self, n: int) -> np.ndarray:
        """Take up to ``n`` samples out of the ring.

        Returns:
            A new float32 array of ``min(n, len(self))`` samples.
        """
        avail = self._w - self._r
        n = max(0, min(int(n), avail))
        out = np.empty(n, dtype=np.float32)
        self._copy_out(out, n)
        return out

    def readinto(self, out: Any) -> int:
        """Move up to ``len(out)`` samples into ``out``.

        Args:
            out: A writable, contiguous float32 buffer (e.g. a numpy array).

        Returns:
            Number of samples written to ``out``.
        """
        view = np.frombuffer(_writable_f32(out), dtype=np.float32)
        n: int = min(view.shape[0], self._w - self._r)
        self._copy_out(view, n)
        return n

    def _copy_out(self, out: np.ndarray, n: int) -> None:
        if n:
            cap = self._cap
            r = self._r % cap
            first = min(n, cap - r)
            out[:first] = self._arr[r : r + first]
            if first < n:
                out[first:n] = self._arr[: n - first]
        self._r += n  # publish after the copy

    def clear(self) -> None:
        """Drop every buffered sample and any leftover partial sample (call while the producer is idle)."""
        self._r = self._w
        self._tail.pending = b""

    def __repr__(self) -> str:
        return f"PCMRing(capacity={self._cap}, encoding={self._enc!r}, len={len(self)})"


def _writable_f32(out: Any) -> memoryview:
    mv = memoryview(out)
    if mv.readonly:
        raise TypeError("readinto() needs a writable buffer")
    if not mv.c_contiguous:
        raise BufferError("readinto() needs a contiguous buffer")
    if mv.format not in ("f", "<f", "=f") or mv.itemsize != 4:
        raise TypeError(f"readinto() needs a float32 buffer, got format {mv.format!r}")
    return mv.cast("B")


# --- AudioBuffer -----------------------------------------------------------------------------


class AudioBuffer:
    """Growable float32 accumulator for a whole generation (amortised O(n) appends).

    Input bytes in ``encoding`` are converted to float32 on the way in. An append that ends
    mid-sample keeps the leftover bytes for the next one; ``to_bytes``/``to_numpy`` ignore them,
    and ``pending_bytes`` tells whether the stream ended inside a sample.

    The samples grow in place (the allocator extends the block, so a large buffer is not copied)
    while nothing else holds them: an array from ``to_numpy`` or the bytes from ``to_bytes``
    keeps its samples, and the next append then starts a new block with a copy.

    Args:
        encoding: ``"pcm_f32le"``, ``"pcm_s16le"``, ``"pcm_mulaw"`` or ``"pcm_alaw"``.
        capacity: Initial capacity in samples (it grows as needed).
    """

    # NOTE: io.BytesIO is the store because it does what the compiled twin does by hand: write()
    # reallocs its bytes object in place, getvalue() hands that object over without a copy when no
    # view is exported, and a write after that (or while arrays are exported) copies. ``capacity``
    # is only a hint here: BytesIO cannot reserve space without writing it.
    __slots__ = ("_store", "_n", "_enc", "_tail", "__weakref__")

    def __init__(self, *, encoding: str = "pcm_f32le", capacity: int = 0) -> None:
        size = _check_encoding(encoding)
        capacity = int(capacity)
        if capacity < 0:
            raise ValueError("capacity must not be negative")
        self._store = io.BytesIO()
        self._n = 0
        self._enc = encoding
        self._tail = _Tail(size)

    @property
    def encoding(self) -> str:
        """Encoding of the bytes given to ``append``/``append_b64``."""
        return self._enc

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete sample kept from the last append (non-zero = truncated audio)."""
        return len(self._tail.pending)

    def __len__(self) -> int:
        return self._n

    def append(self, pcm: Union[bytes, bytearray, memoryview]) -> int:
        """Append PCM bytes in the buffer's encoding.

        Args:
            pcm: The bytes; a trailing partial sample is kept for the next append.

        Returns:
            Number of samples appended.
        """
        whole, rest = self._tail.split(pcm)
        n = len(whole) // self._tail.size
        if n:
            # Any: numpy's stubs declare the buffer protocol of arrays only on Python 3.12+.
            samples: Any = whole
            if self._enc != "pcm_f32le":
                samples = _to_float32(self._enc, whole).astype(_FLOAT, copy=False)
            try:
                self._store.write(samples)
            except BufferError:
                # Arrays from to_numpy hold this block: they keep it, the samples move to a copy.
                with self._store.getbuffer() as held:
                    self._store = io.BytesIO(held)
                self._store.seek(0, io.SEEK_END)
                self._store.write(samples)
            self._n += n
        self._tail.pending = rest
        return n

    def append_b64(self, b64: Union[str, bytes, bytearray, memoryview]) -> int:
        """Decode base64 PCM (in the buffer's encoding) and append it.

        Args:
            b64: Standard-alphabet, padded base64 text.

        Returns:
            Number of samples appended.

        Raises:
            Base64DecodeError: ``b64`` is not valid base64 (nothing appended).
        """
        return self.append(_b64decode_at(_as_b64_input(b64), 0))

    def to_bytes(self) -> bytes:
        """The samples as float32 little-endian bytes.

        The buffer's own block is handed over without a copy when nothing else holds it (it is
        trimmed to the samples in place); otherwise, and for a later append, the samples are copied.
        """
        return self._store.getvalue() if self._n else b""

    def to_numpy(self) -> np.ndarray:
        """The samples as a float32 array view (no copy; later appends may not show in it)."""
        if not self._n:
            return np.empty(0, dtype=np.float32)
        return np.frombuffer(self._store.getbuffer(), dtype=_FLOAT)

    def clear(self) -> None:
        """Drop all samples and any leftover partial sample (arrays returned earlier stay intact)."""
        self._store = io.BytesIO()
        self._n = 0
        self._tail.pending = b""

    def __repr__(self) -> str:
        return f"AudioBuffer(encoding={self._enc!r}, len={self._n})"
