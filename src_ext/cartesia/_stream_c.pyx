# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, embedsignature=True, embedsignature.format=clinic
# NOTE: the "clinic" signature format gives functions and methods a real __text_signature__ (so
# inspect.signature works); the default format misplaces "*" in class signatures (seen with Cython 3.3.1).
# NOTE: bounds/wraparound checks are off for the whole module: every index below is derived from
# a length checked just before it (audited by the twin parity tests, which run the same inputs
# through the pure-Python twin).
"""Compiled streaming core: frame splitting, base64 audio decoding, PCM ring and accumulator."""

from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBUF_ND, PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.long cimport PyLong_FromLongLong
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeASCII
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy

import json
import sys

import numpy as np

from .errors import (
    Base64DecodeError,
    FrameTooLargeError,
    RingOverflowError,
    StreamFormatError,
    TruncatedStreamError,
)

from cpython.ref cimport Py_INCREF, Py_XDECREF, PyObject
cimport cython

cdef extern from *:
    """
    /* The AudioBuffer store: a bytes object this buffer alone may write while it holds the only
       reference. Both helpers leave a NULL slot and an exception set on failure. */
    static int cartesia_store_private(PyObject *store) {
        return store != NULL && Py_REFCNT(store) == 1;
    }
    static int cartesia_store_resize(PyObject **slot, Py_ssize_t nbytes) {
        return _PyBytes_Resize(slot, nbytes);
    }
    """
    bint cartesia_store_private(PyObject *store)
    int cartesia_store_resize(PyObject **slot, Py_ssize_t nbytes) except -1

# float32 samples are copied byte for byte: refuse big-endian hosts, so the pure twin is used there.
if sys.byteorder != "little":
    raise ImportError("cartesia._stream_c supports little-endian hosts only")

cdef extern from "Python.h":
    double PyOS_string_to_double(const char *s, char **endptr, PyObject *overflow_exception) except? -1.0

__all__ = ["AudioBuffer", "Message", "PCMRing", "StreamParser", "b64_backend", "parse_message"]

cdef enum:
    ENC_F32 = 0
    ENC_S16 = 1
    ENC_ULAW = 2
    ENC_ALAW = 3

cdef enum:
    M_START = 0
    M_DECIDE = 1
    M_JSON = 2
    M_SSE = 3

cdef enum:
    SINK_NONE = 0
    SINK_BUFFER = 1
    SINK_RING = 2
    SINK_OTHER = 3

# Byte classes, filled once at import.
cdef unsigned char STRUCT[256]   # { } [ ] " , :
cdef unsigned char WS[256]       # space tab CR LF
cdef unsigned char B64OK[256]    # base64 alphabet without '='
cdef unsigned char PLAIN[256]    # printable ASCII that needs no escape inside a JSON string
cdef float ULAW[256]
cdef float ALAW[256]

_ENCODINGS = {"pcm_f32le": (ENC_F32, 4), "pcm_s16le": (ENC_S16, 2), "pcm_mulaw": (ENC_ULAW, 1), "pcm_alaw": (ENC_ALAW, 1)}
_DEFAULT_MAX_FRAME = 16 * 1024 * 1024
cdef const char *BOM = b"\xef\xbb\xbf"


cdef void _init_tables() noexcept:
    cdef int i, u, a, t, seg
    cdef bytes alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    for i in range(256):
        STRUCT[i] = 0
        WS[i] = 0
        B64OK[i] = 0
        PLAIN[i] = 1 if 0x20 <= i < 0x7F and i != 0x22 and i != 0x5C else 0
        # G.711 decoding (ITU-T reference algorithm) to linear16, then / 32768 (exact in float32).
        u = ~i & 0xFF
        t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
        ULAW[i] = <float>((0x84 - t) if u & 0x80 else (t - 0x84)) / 32768.0
        a = i ^ 0x55
        t = (a & 0x0F) << 4
        seg = (a & 0x70) >> 4
        if seg == 0:
            t += 8
        elif seg == 1:
            t += 0x108
        else:
            t = (t + 0x108) << (seg - 1)
        ALAW[i] = <float>(t if a & 0x80 else -t) / 32768.0
    for i in b'{}[]",:':
        STRUCT[i] = 1
    for i in b" \t\r\n":
        WS[i] = 1
    for i in alphabet:
        B64OK[i] = 1


_init_tables()


# --- small C helpers ---------------------------------------------------------------------------


cdef int bytes_reserve(Bytes *b, Py_ssize_t need) except -1:
    cdef Py_ssize_t cap
    cdef unsigned char *p
    if need <= b.cap:
        return 0
    cap = b.cap * 2
    if cap < need:
        cap = need
    if cap < 256:
        cap = 256
    p = <unsigned char *>realloc(b.p, cap)
    if p == NULL:
        raise MemoryError()
    b.p = p
    b.cap = cap
    return 0


cdef inline int bytes_append(Bytes *b, const unsigned char *src, Py_ssize_t n) except -1:
    if b.len + n > b.cap:
        bytes_reserve(b, b.len + n)
    if n:
        memcpy(b.p + b.len, src, n)
    b.len += n
    return 0


cdef inline void bytes_free(Bytes *b) noexcept:
    free(b.p)
    b.p = NULL
    b.len = 0
    b.cap = 0


cdef inline Py_ssize_t skip_ws(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    while i < n and WS[p[i]]:
        i += 1
    return i


cdef Py_ssize_t b64_error_pos(const unsigned char *s, Py_ssize_t n) noexcept nogil:
    """Index of the first offending character (n for a bad length), or -1 when valid."""
    cdef Py_ssize_t i
    cdef unsigned char c
    if n % 4:
        return n
    for i in range(n):
        c = s[i]
        if c == 0x3D:
            if i == n - 1 or (i == n - 2 and s[n - 1] == 0x3D):
                continue
            return i
        if not B64OK[c]:
            return i
    return -1


cdef inline Py_ssize_t b64_len(const unsigned char *s, Py_ssize_t n) noexcept nogil:
    return <Py_ssize_t>cartesia_b64_decoded_len(<const char *>s, <size_t>n)


cdef inline bint b64_decode(const unsigned char *s, Py_ssize_t n, unsigned char *dst) noexcept nogil:
    cdef size_t err = 0
    if n % 4:
        return False
    return cartesia_b64_decode(<const char *>s, <size_t>n, dst, &err) >= 0


def _describe_byte(int b):
    if 0x20 <= b < 0x7F:
        return f"byte 0x{b:02x} ({chr(b)!r})"
    return f"byte 0x{b:02x}"


def _unexpected(int b, offset, expected):
    return StreamFormatError(f"unexpected {_describe_byte(b)} at offset {offset}: expected {expected}", offset)


cdef object b64_error(const unsigned char *s, Py_ssize_t n, Py_ssize_t offset):
    cdef Py_ssize_t pos = b64_error_pos(s, n)
    if pos < 0:  # the kernel and our rule disagree: should not happen
        pos = 0
    if pos == n:
        return Base64DecodeError(
            f"invalid base64 at offset {offset + pos}: length {n} is not a multiple of 4", offset + pos
        )
    return Base64DecodeError(f"invalid base64 at offset {offset + pos}: unexpected {_describe_byte(s[pos])}", offset + pos)


cdef bytes b64_to_bytes(const unsigned char *s, Py_ssize_t n, Py_ssize_t offset):
    """Strictly decode base64 into a new bytes object of the exact size."""
    cdef Py_ssize_t size
    cdef bytes out
    if n % 4:
        raise b64_error(s, n, offset)
    size = b64_len(s, n)
    out = PyBytes_FromStringAndSize(NULL, size)
    if not b64_decode(s, n, <unsigned char *>PyBytes_AS_STRING(out)):
        raise b64_error(s, n, offset)
    return out


def _as_b64_input(b64, offset=0):
    if isinstance(b64, str):
        try:
            return b64.encode("ascii")
        except UnicodeEncodeError as exc:
            raise Base64DecodeError(
                f"invalid base64 at offset {offset + exc.start}: non-ASCII character", offset + exc.start
            ) from None
    return b64


cdef bytes b64_object_to_bytes(obj, Py_ssize_t offset):
    cdef Py_buffer view
    obj = _as_b64_input(obj, offset)
    PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE)
    try:
        return b64_to_bytes(<const unsigned char *>view.buf, view.len, offset)
    finally:
        PyBuffer_Release(&view)


# --- base64 kernel hooks -------------------------------------------------------------------------


def b64_backend():
    """Name of the base64 decoding kernel in use.

    Returns:
        ``"python"`` for the pure-Python twin; the compiled twin returns ``"avx512vbmi"``,
        ``"avx2"``, ``"ssse3"`` or ``"scalar"``.
    """
    return cartesia_b64_backend().decode("ascii")


def _b64_set_backend(name):
    """Force a base64 kernel (tests only). Returns True if ``name`` can run here."""
    cdef bytes raw = name.encode("ascii")
    return cartesia_b64_set_backend(raw) == 0


def _b64decode(data):
    """Strictly decode standard base64 (tests only). Raises Base64DecodeError."""
    return b64_object_to_bytes(data, 0)


# --- sample encodings ----------------------------------------------------------------------


def _check_encoding(encoding):
    try:
        return _ENCODINGS[encoding]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown encoding {encoding!r}: expected one of {', '.join(sorted(_ENCODINGS))}"
        ) from None


cdef void pcm_convert(int enc, const unsigned char *src, Py_ssize_t nsamp, float *dst) noexcept nogil:
    """Convert ``nsamp`` whole samples to float32 (little-endian hosts)."""
    cdef Py_ssize_t i
    cdef short v
    if enc == ENC_F32:
        memcpy(dst, src, nsamp * 4)
    elif enc == ENC_S16:
        for i in range(nsamp):
            v = <short>(src[2 * i] | (src[2 * i + 1] << 8))
            dst[i] = <float>v * (1.0 / 32768.0)
    elif enc == ENC_ULAW:
        for i in range(nsamp):
            dst[i] = ULAW[src[i]]
    else:
        for i in range(nsamp):
            dst[i] = ALAW[src[i]]


cdef float *array_data(object arr) except? NULL:
    cdef float[::1] view
    if arr.shape[0] == 0:
        return NULL
    view = arr
    return &view[0]


# --- Message ---------------------------------------------------------------------------------


cdef class Message:
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

    def __init__(self, type, *, audio=b"", samples=0, sampling_rate=None, done=False, context_id=None, fields=None):
        self.type = type
        self.audio = audio
        self.samples = samples
        self.sampling_rate = sampling_rate
        self.done = done
        self.context_id = context_id
        self.fields = {} if fields is None else fields

    def _key(self):
        return (self.type, self.audio, self.samples, self.sampling_rate, self.done, self.context_id, self.fields)

    def __eq__(self, other):
        # Duck-typed so messages of the two twins compare equal.
        if type(other).__name__ != "Message" or not hasattr(other, "fields"):
            return NotImplemented
        return self._key() == (
            other.type,
            other.audio,
            other.samples,
            other.sampling_rate,
            other.done,
            other.context_id,
            other.fields,
        )

    def __ne__(self, other):
        result = self.__eq__(other)
        if result is NotImplemented:
            return result
        return not result

    def __repr__(self):
        return (
            f"Message(type={self.type!r}, audio=<{len(self.audio)} bytes>, samples={self.samples}, "
            f"sampling_rate={self.sampling_rate!r}, done={self.done!r}, "
            f"context_id={self.context_id!r}, fields={self.fields!r})"
        )


# --- frame -> Message --------------------------------------------------------------------------


cdef dict _loads(bytes text, Py_ssize_t offset):
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise StreamFormatError(f"invalid JSON in the frame at offset {offset}: {exc}", offset) from None


cdef object flat_parse(const unsigned char *f, Py_ssize_t n, Py_ssize_t ds, Py_ssize_t de):
    """Parse the common flat frame ``{"k": "ascii" | number | true | false | null, ...}``.

    The member whose value starts at ``ds`` (the ``data`` string) is skipped. Returns None for
    anything else (nesting, escapes, non-ASCII, odd numbers), and the caller uses json.loads:
    this parser never accepts what json.loads would reject.
    """
    cdef Py_ssize_t i, ks, ke, vs, st
    cdef unsigned char c
    cdef bint isint
    cdef long long iv
    cdef char num[64]
    cdef dict d = {}
    i = skip_ws(f, 1, n)
    if i >= n:
        return None
    if f[i] == 0x7D:
        return d if i == n - 1 else None
    while True:
        if i >= n or f[i] != 0x22:
            return None
        ks = i + 1
        i = ks
        while i < n and PLAIN[f[i]]:
            i += 1
        if i >= n or f[i] != 0x22:
            return None
        ke = i
        i = skip_ws(f, i + 1, n)
        if i >= n or f[i] != 0x3A:
            return None
        i = skip_ws(f, i + 1, n)
        if i >= n:
            return None
        if ke - ks == 4 and memcmp(f + ks, b"data", 4) == 0:
            if i != ds:
                return None  # a second data member: json.loads decides
            i = de
        else:
            c = f[i]
            if c == 0x22:
                vs = i + 1
                i = vs
                while i < n and PLAIN[f[i]]:
                    i += 1
                if i >= n or f[i] != 0x22:
                    return None
                value = PyUnicode_DecodeASCII(<const char *>f + vs, i - vs, NULL)
                i += 1
            elif c == 0x74:
                if i + 4 > n or memcmp(f + i, b"true", 4) != 0:
                    return None
                value = True
                i += 4
            elif c == 0x66:
                if i + 5 > n or memcmp(f + i, b"false", 5) != 0:
                    return None
                value = False
                i += 5
            elif c == 0x6E:
                if i + 4 > n or memcmp(f + i, b"null", 4) != 0:
                    return None
                value = None
                i += 4
            elif c == 0x2D or 0x30 <= c <= 0x39:
                st = i
                if c == 0x2D:
                    i += 1
                if i < n and f[i] == 0x30:
                    i += 1
                elif i < n and 0x31 <= f[i] <= 0x39:
                    while i < n and 0x30 <= f[i] <= 0x39:
                        i += 1
                else:
                    return None
                isint = True
                if i < n and f[i] == 0x2E:
                    i += 1
                    if not (i < n and 0x30 <= f[i] <= 0x39):
                        return None
                    while i < n and 0x30 <= f[i] <= 0x39:
                        i += 1
                    isint = False
                if i < n and (f[i] == 0x65 or f[i] == 0x45):
                    i += 1
                    if i < n and (f[i] == 0x2B or f[i] == 0x2D):
                        i += 1
                    if not (i < n and 0x30 <= f[i] <= 0x39):
                        return None
                    while i < n and 0x30 <= f[i] <= 0x39:
                        i += 1
                    isint = False
                if isint:
                    if i - st > 18:
                        return None
                    iv = 0
                    for vs in range(st + (1 if c == 0x2D else 0), i):
                        iv = iv * 10 + (f[vs] - 0x30)
                    value = PyLong_FromLongLong(-iv if c == 0x2D else iv)
                else:
                    if i - st > 60:
                        return None
                    memcpy(num, f + st, i - st)
                    num[i - st] = 0
                    # Same correctly rounded conversion as float(str), which json.loads uses.
                    value = PyOS_string_to_double(num, NULL, NULL)
            else:
                return None
            d[PyUnicode_DecodeASCII(<const char *>f + ks, ke - ks, NULL)] = value
        i = skip_ws(f, i, n)
        if i >= n:
            return None
        if f[i] == 0x2C:
            i = skip_ws(f, i + 1, n)
            continue
        if f[i] == 0x7D:
            return d if i == n - 1 else None
        return None


cdef tuple deliver(bytes audio, object sink, int sink_kind):
    if sink_kind == SINK_NONE:
        return audio, 0
    if sink_kind == SINK_BUFFER:
        return b"", (<AudioBuffer>sink)._append_raw(<const unsigned char *>PyBytes_AS_STRING(audio), len(audio))
    if sink_kind == SINK_RING:
        return b"", (<PCMRing>sink)._write_raw(<const unsigned char *>PyBytes_AS_STRING(audio), len(audio))
    if hasattr(sink, "append"):
        return b"", int(sink.append(audio))
    return b"", int(sink.write(audio))


cdef bytes unescape_b64(const unsigned char *f, Py_ssize_t ds, Py_ssize_t de, Py_ssize_t fbase):
    # Slow path: JSON escapes (e.g. "\/") inside the base64 text.
    try:
        text = json.loads(PyBytes_FromStringAndSize(<const char *>f + ds, de - ds))
    except ValueError as exc:
        raise StreamFormatError(
            f"invalid JSON string in 'data' at offset {fbase + ds}: {exc}", fbase + ds
        ) from None
    return b64_object_to_bytes(text, fbase + ds + 1)


cdef Message build_message(const unsigned char *f, Py_ssize_t flen, Py_ssize_t ds, Py_ssize_t de,
                           Py_ssize_t fbase, object sink, int sink_kind):
    """Turn the JSON object ``f[0:flen]`` into a Message; ``ds``/``de`` bracket the data string."""
    cdef object audio = b""
    cdef object samples = 0
    cdef object fields
    cdef bytes rest, decoded
    cdef bint has_data
    cdef const unsigned char *src
    cdef Py_ssize_t srclen, got
    cdef Message msg
    if ds < 0:
        fields = _loads(PyBytes_FromStringAndSize(<const char *>f, flen), fbase)
        data = fields.pop("data", None)
        has_data = data is not None
        if has_data:
            # Only reached when the key itself was escaped ("d\u0061ta"): decode the str value.
            if not isinstance(data, str):
                raise StreamFormatError(
                    f"'data' in the frame at offset {fbase} must be a base64 string or null", fbase
                )
            audio, samples = deliver(b64_object_to_bytes(data, fbase), sink, sink_kind)
    else:
        fields = flat_parse(f, flen, ds, de)
        if fields is None:
            rest = PyBytes_FromStringAndSize(NULL, ds + 4 + flen - de)
            memcpy(PyBytes_AS_STRING(rest), f, ds)
            memcpy(PyBytes_AS_STRING(rest) + ds, b"null", 4)
            memcpy(PyBytes_AS_STRING(rest) + ds + 4, f + de, flen - de)
            fields = _loads(rest, fbase)
            if fields.pop("data", None) is not None:
                raise StreamFormatError(f"duplicate 'data' member in the frame at offset {fbase}", fbase)
        has_data = True
        src = f + ds + 1
        srclen = de - ds - 2
        if sink_kind == SINK_BUFFER or sink_kind == SINK_RING:
            # Fast path: decode straight into the sink's memory.
            if sink_kind == SINK_BUFFER:
                got = (<AudioBuffer>sink)._b64_raw(src, srclen)
            else:
                got = (<PCMRing>sink)._b64_raw(src, srclen)
            if got >= 0:
                samples = got
            elif memchr(src, 0x5C, srclen) != NULL:
                audio, samples = deliver(unescape_b64(f, ds, de, fbase), sink, sink_kind)
            else:
                raise b64_error(src, srclen, fbase + ds + 1)
        else:
            if srclen % 4 == 0:
                decoded = PyBytes_FromStringAndSize(NULL, b64_len(src, srclen))
                if not b64_decode(src, srclen, <unsigned char *>PyBytes_AS_STRING(decoded)):
                    decoded = None
            else:
                decoded = None
            if decoded is None:
                if memchr(src, 0x5C, srclen) == NULL:
                    raise b64_error(src, srclen, fbase + ds + 1)
                decoded = unescape_b64(f, ds, de, fbase)
            audio, samples = deliver(decoded, sink, sink_kind)
    msg = Message.__new__(Message)
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
    msg.type = kind
    msg.audio = audio
    msg.samples = samples
    msg.sampling_rate = rate
    msg.done = done
    msg.context_id = context_id
    msg.fields = fields
    return msg


cdef inline unsigned char byte_at(const unsigned char *pend, const unsigned char *cur, Py_ssize_t rel0,
                                  Py_ssize_t rel) noexcept nogil:
    return cur[rel - rel0] if rel >= rel0 else pend[rel]


cdef inline void scan_init(Scan *st) noexcept nogil:
    st.depth = 1
    st.in_str = 0
    st.kind = 0
    st.expect_key = 1
    st.key_data = 0
    st.armed = 0
    st.sstart = 0
    st.dstart = -1
    st.dend = -1


cdef Py_ssize_t scan(Scan *st, const unsigned char *pend, const unsigned char *cur, Py_ssize_t rel0,
                     Py_ssize_t rel, Py_ssize_t end, Py_ssize_t fbase) except -2:
    """Scan object bytes [rel, end) (relative to its '{'); bytes before ``rel0`` live in ``pend``,
    the others at ``cur[rel - rel0]``. Returns the index after the closing brace, or -1."""
    cdef const unsigned char *q
    cdef Py_ssize_t qi, k
    cdef unsigned char c
    cdef Py_ssize_t depth
    while rel < end:
        if st.in_str:
            # memchr for the quote, then count the backslashes before it: no per-byte loop.
            q = <const unsigned char *>memchr(cur + (rel - rel0), 0x22, end - rel)
            if q == NULL:
                return -1
            qi = (q - cur) + rel0
            k = qi - 1
            while byte_at(pend, cur, rel0, k) == 0x5C:  # stops at the opening quote
                k -= 1
            rel = qi + 1
            if (qi - 1 - k) & 1:
                continue
            st.in_str = 0
            if st.kind == 1:
                st.key_data = (
                    qi - st.sstart - 1 == 4
                    and byte_at(pend, cur, rel0, st.sstart + 1) == 0x64
                    and byte_at(pend, cur, rel0, st.sstart + 2) == 0x61
                    and byte_at(pend, cur, rel0, st.sstart + 3) == 0x74
                    and byte_at(pend, cur, rel0, st.sstart + 4) == 0x61
                )
            elif st.kind == 2:
                if st.dstart >= 0:
                    raise StreamFormatError(f"duplicate 'data' member in the frame at offset {fbase}", fbase)
                st.dstart = st.sstart
                st.dend = qi + 1
            continue
        while rel < end and not STRUCT[cur[rel - rel0]]:
            rel += 1
        if rel >= end:
            return -1
        c = cur[rel - rel0]
        depth = st.depth
        if depth == 1 and st.expect_key and c != 0x22 and c != 0x7D:
            raise _unexpected(c, fbase + rel, "'\"' or '}'")
        if c == 0x22:
            st.in_str = 1
            st.sstart = rel
            if depth == 1 and st.expect_key:
                st.kind = 1
                st.expect_key = 0
            elif depth == 1 and st.armed:
                st.kind = 2
            else:
                st.kind = 0
            st.key_data = 0
            st.armed = 0
        elif c == 0x7B or c == 0x5B:
            st.depth = depth + 1
            st.armed = 0
        elif c == 0x7D or c == 0x5D:
            st.depth = depth - 1
            if depth == 1:
                return rel + 1
        elif depth == 1:
            if c == 0x2C:
                st.expect_key = 1
                st.armed = 0
                st.key_data = 0
            elif st.key_data:
                st.armed = 1
                st.key_data = 0
        rel += 1
    return -1


cdef Message parse_text(const unsigned char *t, Py_ssize_t n, Py_ssize_t base, object sink, int sink_kind):
    """Parse one complete JSON text (optional surrounding whitespace) into a Message."""
    cdef Scan st
    cdef Py_ssize_t p, stop, q
    p = skip_ws(t, 0, n)
    if p >= n:
        raise StreamFormatError(f"empty message at offset {base}: expected a JSON object", base)
    if t[p] != 0x7B:
        raise _unexpected(t[p], base + p, "'{' or whitespace")
    scan_init(&st)
    stop = scan(&st, NULL, t + p, 0, 1, n - p, base + p)
    if stop < 0:
        raise StreamFormatError(
            f"incomplete JSON object at offset {base + p}: the message ends inside it", base + p
        )
    q = skip_ws(t, p + stop, n)
    if q < n:
        raise _unexpected(t[q], base + q, "end of message")
    return build_message(t + p, stop, st.dstart, st.dend, base + p, sink, sink_kind)


cdef int sink_kind_of(object sink):
    if sink is None:
        return SINK_NONE
    if type(sink) is AudioBuffer:
        return SINK_BUFFER
    if type(sink) is PCMRing:
        return SINK_RING
    return SINK_OTHER


def parse_message(payload, *, sink=None):
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
    cdef Py_buffer view
    cdef const char *utf8
    cdef Py_ssize_t size
    if isinstance(payload, str):
        # The str's own UTF-8 (no copy at all for ASCII text); lone surrogates take the slow way.
        try:
            utf8 = PyUnicode_AsUTF8AndSize(payload, &size)
        except UnicodeEncodeError:
            payload = (<str>payload).encode("utf-8", "surrogatepass")
        else:
            return parse_text(<const unsigned char *>utf8, size, 0, sink, sink_kind_of(sink))
    elif not isinstance(payload, (bytes, bytearray, memoryview)):
        raise TypeError(f"payload must be str or bytes-like, not {type(payload).__name__}")
    PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
    try:
        return parse_text(<const unsigned char *>view.buf, view.len, 0, sink, sink_kind_of(sink))
    finally:
        PyBuffer_Release(&view)


# --- StreamParser --------------------------------------------------------------------------


cdef class StreamParser:
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

    def __init__(self, framing="auto", *, sink=None, max_frame_bytes=_DEFAULT_MAX_FRAME):
        if framing not in ("auto", "json", "sse"):
            raise ValueError(f"unknown framing {framing!r}: expected 'auto', 'json' or 'sse'")
        if max_frame_bytes < 1:
            raise ValueError("max_frame_bytes must be positive")
        self._framing = framing
        self._mode = M_START
        self._sink = sink
        self._sink_kind = sink_kind_of(sink)
        self._max = int(max_frame_bytes)
        self._fed = 0
        self._count = 0
        self._error = None
        self._deferred = None
        self._closed = False
        self._pend.len = 0
        self._pbase = 0
        self._in_frame = False
        self._lead = -1
        self._skip_lf = False
        self._dbuf.len = 0
        self._dstart = 0
        self._dref = NULL
        self._dlines = 0
        self._dsize = 0
        self._doff = 0

    def __dealloc__(self):
        bytes_free(&self._pend)
        bytes_free(&self._dbuf)

    @property
    def framing(self):
        """The framing in use: ``"json"`` or ``"sse"``, or ``"auto"`` while still undecided."""
        return self._framing

    @property
    def bytes_fed(self):
        """Total bytes passed to ``feed`` so far."""
        return self._fed

    @property
    def messages(self):
        """Total messages returned so far."""
        return self._count

    def feed(self, data):
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
        cdef Py_buffer view
        cdef list out = []
        if self._error is not None or self._closed:
            self._raise_deferred()
            self._check_usable()
            raise StreamFormatError("feed() after close()", self._fed)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"feed() takes bytes, bytearray or memoryview, not {type(data).__name__}")
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            self._run(<const unsigned char *>view.buf, view.len, out)
        except Exception as exc:
            self._error = exc
            if not out:
                raise
            self._deferred = exc
        finally:
            PyBuffer_Release(&view)
        self._count += len(out)
        return out

    def close(self):
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

    def _raise_deferred(self):
        exc = self._deferred
        if exc is not None:
            self._deferred = None
            raise exc

    def _check_usable(self):
        exc = self._error
        if exc is not None:
            cls = type(exc)
            text = f"the parser failed earlier: {exc}"
            if isinstance(exc, StreamFormatError):
                raise cls(text, exc.offset)
            try:
                raise cls(text)
            except TypeError:
                raise StreamFormatError(text) from exc

    def _finish(self):
        cdef Py_ssize_t i
        if self._mode == M_START:
            if self._pend.len:
                raise TruncatedStreamError("stream ended inside a byte-order mark at offset 0", 0)
        elif self._mode == M_JSON:
            if self._in_frame:
                off = self._pbase
                raise TruncatedStreamError(f"stream ended inside the frame that starts at offset {off}", off)
        elif self._mode == M_SSE:
            if self._pend.len and self._pend.p[0] != 0x3A:
                for i in range(self._pend.len):
                    if self._pend.p[i] != 0x20 and self._pend.p[i] != 0x09:
                        off = self._pbase
                        raise TruncatedStreamError(f"stream ended inside the SSE line at offset {off}", off)
            if self._dlines:
                raise TruncatedStreamError(
                    f"stream ended before the blank line that ends the SSE event at offset {self._doff}",
                    self._doff,
                )

    cdef int _run(self, const unsigned char *p, Py_ssize_t n, list out) except -1:
        # ``out`` is the caller's list, so the frames completed before an error are not lost.
        cdef Py_ssize_t base = self._fed
        cdef Py_ssize_t pos = 0
        cdef bytes head
        self._fed += n
        if self._mode == M_START:
            while self._pend.len < 3 and pos < n and p[pos] == <unsigned char>BOM[self._pend.len]:
                bytes_append(&self._pend, p + pos, 1)
                pos += 1
            if self._pend.len < 3 and pos == n:
                return 0  # still a possible byte-order mark
            head = None
            if 0 < self._pend.len < 3:
                # Not a byte-order mark after all: those bytes are data.
                head = PyBytes_FromStringAndSize(<const char *>self._pend.p, self._pend.len)
            self._pend.len = 0
            self._mode = {"auto": M_DECIDE, "json": M_JSON, "sse": M_SSE}[self._framing]
            if head is not None:
                self._process(<const unsigned char *>PyBytes_AS_STRING(head), len(head), 0, out)
        self._process(p + pos, n - pos, base + pos, out)
        return 0

    cdef int _process(self, const unsigned char *p, Py_ssize_t n, Py_ssize_t base, list out) except -1:
        cdef Py_ssize_t pos = 0
        cdef Py_ssize_t pending
        if self._mode == M_DECIDE:
            pos = self._decide(p, n, base)
        if self._mode == M_JSON:
            self._run_json(p + pos, n - pos, base + pos, out)
            pending = self._pend.len if self._in_frame else 0
        elif self._mode == M_SSE:
            self._run_sse(p + pos, n - pos, base + pos, out)
            pending = self._pend.len + self._dsize
        else:
            pending = 0
        if pending > self._max:
            raise FrameTooLargeError(
                f"frame at offset {self._pbase} exceeds max_frame_bytes ({pending} > {self._max})", self._pbase
            )
        return 0

    cdef Py_ssize_t _decide(self, const unsigned char *p, Py_ssize_t n, Py_ssize_t base) except -1:
        cdef Py_ssize_t i = 0
        cdef unsigned char c
        while i < n and WS[p[i]]:
            if p[i] == 0x0A or p[i] == 0x0D:
                self._lead = -1
            elif self._lead < 0:
                self._lead = base + i
            i += 1
        if i == n:
            return n
        c = p[i]
        if c == 0x7B:
            self._mode = M_JSON
            self._framing = "json"
            return i
        if c != 0x3A and not (0x61 <= c <= 0x7A or 0x41 <= c <= 0x5A):
            raise _unexpected(c, base + i, "'{', ':' or an SSE field name")
        self._mode = M_SSE
        self._framing = "sse"
        if self._lead >= 0:
            raise StreamFormatError(
                f"SSE line at offset {self._lead} starts with whitespace: expected a field name or ':'", self._lead
            )
        return i

    cdef int _run_json(self, const unsigned char *p, Py_ssize_t n, Py_ssize_t base, list out) except -1:
        cdef Py_ssize_t pos = 0, rel0, stop, flen
        cdef const unsigned char *cur
        cdef const unsigned char *frame
        while True:
            if not self._in_frame:
                pos = skip_ws(p, pos, n)
                if pos >= n:
                    break
                if p[pos] != 0x7B:
                    raise _unexpected(p[pos], base + pos, "'{' or whitespace")
                self._in_frame = True
                scan_init(&self._st)
                self._pend.len = 0
                self._pbase = base + pos
                cur = p + pos
                rel0 = 0
                stop = scan(&self._st, self._pend.p, cur, 0, 1, n - pos, self._pbase)
            else:
                # The frame started in an earlier read: its first bytes are in _pend.
                cur = p + pos
                rel0 = self._pend.len
                stop = scan(&self._st, self._pend.p, cur, rel0, rel0, rel0 + n - pos, self._pbase)
            if stop < 0:
                bytes_append(&self._pend, cur, n - pos)
                break
            flen = stop
            if flen > self._max:
                raise FrameTooLargeError(
                    f"frame at offset {self._pbase} exceeds max_frame_bytes ({flen} > {self._max})", self._pbase
                )
            if rel0 == 0:
                frame = cur  # entirely inside this read: no copy
            else:
                bytes_append(&self._pend, cur, stop - rel0)
                frame = self._pend.p
            self._in_frame = False
            out.append(build_message(frame, flen, self._st.dstart, self._st.dend, self._pbase, self._sink,
                                     self._sink_kind))
            self._pend.len = 0
            pos += stop - rel0
        return 0

    cdef int _run_sse(self, const unsigned char *p, Py_ssize_t n, Py_ssize_t base, list out) except -1:
        cdef Py_ssize_t pos = 0, eol, nxt
        cdef Py_ssize_t nl = -1, cr = -1
        cdef const unsigned char *q
        while pos < n:
            if self._skip_lf:
                self._skip_lf = False
                if p[pos] == 0x0A:
                    pos += 1
                    continue
            # Remember where the next LF / CR are so no byte is searched twice.
            if nl < pos:
                q = <const unsigned char *>memchr(p + pos, 0x0A, n - pos)
                nl = (q - p) if q != NULL else n
            if cr < pos:
                q = <const unsigned char *>memchr(p + pos, 0x0D, nl - pos)
                cr = (q - p) if q != NULL else nl
            if cr < nl:
                eol = cr
            elif nl < n:
                eol = nl
            else:
                if self._pend.len == 0:
                    self._pbase = base + pos
                bytes_append(&self._pend, p + pos, n - pos)
                pos = n
                break
            nxt = eol + 1
            if eol == cr and cr < nl:
                if nxt < n:
                    if p[nxt] == 0x0A:
                        nxt += 1
                else:
                    self._skip_lf = True
            if self._pend.len:
                bytes_append(&self._pend, p + pos, eol - pos)
                self._line(self._pend.p, self._pend.len, self._pbase, True, out)
                self._pend.len = 0
            else:
                self._line(p + pos, eol - pos, base + pos, False, out)
            pos = nxt
        if self._dref != NULL:
            # The event's only data line is in the caller's buffer: keep a copy past this read.
            self._dbuf.len = 0
            self._dstart = 0
            bytes_append(&self._dbuf, self._dref, self._dref_len)
            self._dref = NULL
        return 0

    cdef int _line(self, const unsigned char *line, Py_ssize_t n, Py_ssize_t off, bint in_pend, list out) except -1:
        cdef unsigned char c
        cdef Py_ssize_t i, colon, vs
        cdef const unsigned char *cp
        cdef Bytes spare
        if n == 0:
            return self._dispatch(out)
        c = line[0]
        if c == 0x3A:
            return 0
        if c == 0x20 or c == 0x09:
            for i in range(n):
                if line[i] != 0x20 and line[i] != 0x09:
                    raise StreamFormatError(
                        f"SSE line at offset {off} starts with whitespace: expected a field name or ':'", off
                    )
            return 0
        cp = <const unsigned char *>memchr(line, 0x3A, n)
        if cp == NULL:
            colon = n
            vs = n
        else:
            colon = cp - line
            vs = colon + 1
            if vs < n and line[vs] == 0x20:
                vs += 1
        if colon == 4 and memcmp(line, b"data", 4) == 0:
            if self._dlines == 0:
                self._doff = off + vs
            if self._dlines == 0 and not in_pend:
                self._dref = line + vs
                self._dref_len = n - vs
            elif self._dlines == 0:
                # The line was assembled in _pend: adopt that buffer instead of copying it.
                spare = self._dbuf
                self._dbuf = self._pend
                self._pend = spare
                self._pend.len = 0
                self._dstart = vs
            else:
                if self._dref != NULL:
                    self._dbuf.len = 0
                    self._dstart = 0
                    bytes_append(&self._dbuf, self._dref, self._dref_len)
                    self._dref = NULL
                if self._dlines > 0:
                    bytes_append(&self._dbuf, b"\n", 1)
                bytes_append(&self._dbuf, line + vs, n - vs)
            self._dlines += 1
            self._dsize += n - vs + 1
            if self._dsize > self._max:
                raise FrameTooLargeError(
                    f"SSE event at offset {self._doff} exceeds max_frame_bytes ({self._dsize} > {self._max})",
                    self._doff,
                )
            return 0
        if (colon == 5 and memcmp(line, b"event", 5) == 0) or (colon == 2 and memcmp(line, b"id", 2) == 0) or (
            colon == 5 and memcmp(line, b"retry", 5) == 0
        ):
            return 0
        name = PyBytes_FromStringAndSize(<const char *>line, colon)
        shown = name.decode("utf-8", "backslashreplace")
        raise StreamFormatError(f"unknown SSE field {shown!r} at offset {off}", off)

    cdef int _dispatch(self, list out) except -1:
        cdef const unsigned char *text
        cdef Py_ssize_t n
        if self._dlines == 0:
            return 0
        if self._dref != NULL:
            text = self._dref
            n = self._dref_len
        else:
            text = self._dbuf.p + self._dstart
            n = self._dbuf.len - self._dstart
        self._dlines = 0
        self._dsize = 0
        self._dref = NULL
        self._dbuf.len = 0
        self._dstart = 0
        if n:
            out.append(parse_text(text, n, self._doff, self._sink, self._sink_kind))
        return 0


# --- PCMRing ---------------------------------------------------------------------------------


cdef Py_ssize_t b64_input(obj, Py_buffer *view) except -1:
    obj = _as_b64_input(obj, 0)
    PyObject_GetBuffer(obj, view, PyBUF_SIMPLE)
    return 0


cdef inline unsigned char *b64_decode_copy(const unsigned char *src, Py_ssize_t n, Py_ssize_t dlen) except? NULL:
    """Decode base64 into a new malloc'd buffer of ``dlen`` bytes that the caller frees.

    NULL (nothing allocated) if ``src`` is not valid base64.
    """
    cdef bint ok
    # A private buffer per call: nothing shared is touched while the GIL is released.
    cdef unsigned char *tmp = <unsigned char *>malloc(dlen + 1)
    if tmp == NULL:
        raise MemoryError()
    with nogil:
        ok = b64_decode(src, n, tmp)
    if not ok:
        free(tmp)
        return NULL
    return tmp


cdef class PCMRing:
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

    def __init__(self, capacity, *, encoding="pcm_f32le"):
        enc, size = _check_encoding(encoding)
        capacity = int(capacity)
        if capacity < 1:
            raise ValueError("capacity must be at least 1 sample")
        self._arr = np.zeros(capacity, dtype=np.float32)
        self._data = array_data(self._arr)
        self._cap = capacity
        self._r = 0  # total samples read (published by the consumer, under the GIL)
        self._w = 0  # total samples written (published by the producer, under the GIL)
        self._enc = enc
        self._size = size
        self._tlen = 0
        self._encname = encoding

    @property
    def capacity(self):
        """Size of the ring in samples."""
        return self._cap

    @property
    def free(self):
        """Samples that can be written now."""
        return self._cap - (self._w - self._r)

    @property
    def encoding(self):
        """Encoding of the bytes given to ``write``/``write_b64``."""
        return self._encname

    @property
    def pending_bytes(self):
        """Bytes of an incomplete sample kept from the last write."""
        return self._tlen

    def __len__(self):
        return self._w - self._r

    cdef Py_ssize_t _write_raw(self, const unsigned char *src, Py_ssize_t n) except -1:
        cdef Py_ssize_t size = self._size, total, free_, head = 0, body, wpos, first, k = 0, left
        cdef unsigned char one[4]
        cdef float *data = self._data
        cdef Py_ssize_t cap = self._cap
        cdef int enc = self._enc
        total = (self._tlen + n) // size
        free_ = cap - (self._w - self._r)
        if total > free_:
            raise RingOverflowError(f"ring overflow: {total} samples do not fit in {free_} free samples")
        if total == 0:
            memcpy(self._tail + self._tlen, src, n)
            self._tlen += <int>n
            return 0
        wpos = self._w % cap
        if self._tlen:
            head = size - self._tlen
            memcpy(one, self._tail, self._tlen)
            memcpy(one + self._tlen, src, head)
            pcm_convert(enc, one, 1, data + wpos)
            k = 1
            wpos = (wpos + 1) % cap
        body = total - k
        src = src + head
        # The copy/convert runs without the GIL; the index is published under it afterwards.
        with nogil:
            first = cap - wpos
            if first > body:
                first = body
            pcm_convert(enc, src, first, data + wpos)
            if first < body:
                pcm_convert(enc, src + first * size, body - first, data)
        left = n - head - body * size
        memcpy(self._tail, src + body * size, left)
        self._tlen = <int>left
        self._w += total
        return total

    cdef Py_ssize_t _b64_raw(self, const unsigned char *src, Py_ssize_t n) except -2:
        """Decode base64 into the ring; -1 (nothing written) if ``src`` is not valid base64."""
        cdef Py_ssize_t dlen, total, free_, wpos, room, chars, cut, got, split
        cdef unsigned char block[12]
        cdef bint ok = True
        cdef unsigned char *tmp
        cdef unsigned char *ring = <unsigned char *>self._data
        if n % 4:
            return -1
        dlen = b64_len(src, n)
        total = (self._tlen + dlen) // self._size
        free_ = self._cap - (self._w - self._r)
        if total > free_:
            if b64_error_pos(src, n) >= 0:
                return -1
            raise RingOverflowError(f"ring overflow: {total} samples do not fit in {free_} free samples")
        if self._enc == ENC_F32 and self._tlen == 0 and dlen % 4 == 0:
            # Decode straight into the ring, splitting at the wrap point on 16-char/12-byte blocks.
            wpos = self._w % self._cap
            room = (self._cap - wpos) * 4
            with nogil:
                if dlen <= room:
                    ok = b64_decode(src, n, ring + wpos * 4)
                else:
                    cut = room // 12 * 16
                    # '=' is only legal at the very end: the first part must not end in padding.
                    ok = cut == 0 or (src[cut - 1] != 0x3D and b64_decode(src, cut, ring + wpos * 4))
                    if ok:
                        chars = n - cut
                        if chars > 16:
                            chars = 16
                        ok = (cut + chars == n or src[cut + chars - 1] != 0x3D) and b64_decode(src + cut, chars, block)
                        if ok:
                            got = b64_len(src + cut, chars)
                            split = room - room // 12 * 12
                            memcpy(ring + wpos * 4 + room // 12 * 12, block, split)
                            memcpy(ring, block + split, got - split)
                            if cut + chars < n:
                                ok = b64_decode(src + cut + chars, n - cut - chars, ring + got - split)
            if not ok:
                return -1
            self._w += total
            return total
        tmp = b64_decode_copy(src, n, dlen)
        if tmp == NULL:
            return -1
        try:
            return self._write_raw(tmp, dlen)
        finally:
            free(tmp)

    def write(self, pcm):
        """Append PCM bytes in the ring's encoding.

        Args:
            pcm: The bytes; a trailing partial sample is kept for the next write.

        Returns:
            Number of samples written.

        Raises:
            RingOverflowError: Not enough free space; nothing was written.
        """
        cdef Py_buffer view
        PyObject_GetBuffer(pcm, &view, PyBUF_SIMPLE)
        try:
            return self._write_raw(<const unsigned char *>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    def write_b64(self, b64):
        """Decode base64 PCM (in the ring's encoding) and append it.

        Args:
            b64: Standard-alphabet, padded base64 text.

        Returns:
            Number of samples written.

        Raises:
            Base64DecodeError: ``b64`` is not valid base64 (nothing written).
            RingOverflowError: Not enough free space; nothing was written.
        """
        cdef Py_buffer view
        cdef Py_ssize_t got
        b64_input(b64, &view)
        try:
            got = self._b64_raw(<const unsigned char *>view.buf, view.len)
            if got < 0:
                raise b64_error(<const unsigned char *>view.buf, view.len, 0)
            return got
        finally:
            PyBuffer_Release(&view)

    cdef Py_ssize_t _copy_out(self, float *dst, Py_ssize_t n) except -1:
        cdef Py_ssize_t avail = self._w - self._r, rpos, first
        cdef Py_ssize_t cap = self._cap
        cdef float *data = self._data
        if n > avail:
            n = avail
        if n <= 0:
            return 0
        rpos = self._r % cap
        with nogil:
            first = cap - rpos
            if first > n:
                first = n
            memcpy(dst, data + rpos, first * 4)
            if first < n:
                memcpy(dst + first, data, (n - first) * 4)
        self._r += n  # publish after the copy
        return n

    def read(self, n):
        """Take up to ``n`` samples out of the ring.

        Returns:
            A new float32 array of ``min(n, len(self))`` samples.
        """
        cdef Py_ssize_t k = self._w - self._r
        n = int(n)
        if n < k:
            k = n
        if k < 0:
            k = 0
        out = np.empty(k, dtype=np.float32)
        if k:
            self._copy_out(array_data(out), k)
        return out

    def readinto(self, out):
        """Move up to ``len(out)`` samples into ``out``.

        Args:
            out: A writable, contiguous float32 buffer (e.g. a numpy array).

        Returns:
            Number of samples written to ``out``.
        """
        cdef Py_buffer view
        cdef bytes fmt
        PyObject_GetBuffer(out, &view, PyBUF_WRITABLE | PyBUF_FORMAT | PyBUF_C_CONTIGUOUS)
        try:
            fmt = view.format if view.format != NULL else b"B"
            if fmt not in (b"f", b"<f", b"=f") or view.itemsize != 4:
                raise TypeError(f"readinto() needs a float32 buffer, got format {fmt.decode()!r}")
            return self._copy_out(<float *>view.buf, view.len // 4)
        finally:
            PyBuffer_Release(&view)

    def clear(self):
        """Drop every buffered sample and any leftover partial sample (call while the producer is idle)."""
        self._r = self._w
        self._tlen = 0

    def __repr__(self):
        return f"PCMRing(capacity={self._cap}, encoding={self._encname!r}, len={self._w - self._r})"


# --- AudioBuffer -----------------------------------------------------------------------------


@cython.final
cdef class _Samples:
    """Exports the samples of one AudioBuffer store as a writable float32 buffer (for numpy)."""

    def __getbuffer__(self, Py_buffer *view, int flags):
        # The buffer protocol's rules: without FORMAT the consumer sees unsigned bytes, and shape
        # is only given when ND is asked for (in items of that size).
        cdef bint typed = (flags & PyBUF_FORMAT) == PyBUF_FORMAT
        view.buf = self._buf
        view.obj = self
        view.len = self._nbytes
        view.readonly = 0
        view.itemsize = 4 if typed else 1
        view.format = NULL
        if typed:
            view.format = <char *>b"f"
        view.ndim = 1
        view.shape = NULL
        if (flags & PyBUF_ND) == PyBUF_ND:
            view.shape = &self._count if typed else &self._nbytes
        view.strides = NULL
        view.suboffsets = NULL
        view.internal = NULL

    def __releasebuffer__(self, Py_buffer *view):
        pass


cdef class AudioBuffer:
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

    def __init__(self, *, encoding="pcm_f32le", capacity=0):
        enc, size = _check_encoding(encoding)
        capacity = int(capacity)
        if capacity < 0:
            raise ValueError("capacity must not be negative")
        Py_XDECREF(self._store)
        self._store = NULL
        self._shared = False
        self._data = NULL
        self._cap = 0
        self._n = 0
        self._enc = enc
        self._size = size
        self._tlen = 0
        self._encname = encoding
        if capacity:
            self._grow(capacity)

    @property
    def encoding(self):
        """Encoding of the bytes given to ``append``/``append_b64``."""
        return self._encname

    @property
    def pending_bytes(self):
        """Bytes of an incomplete sample kept from the last append (non-zero = truncated audio)."""
        return self._tlen

    def __len__(self):
        return self._n

    def __dealloc__(self):
        Py_XDECREF(self._store)
        self._store = NULL

    cdef int _grow(self, Py_ssize_t need) except -1:
        # NOTE: the samples live in a bytes object of this buffer's own. While nothing else refers
        # to it (no array from to_numpy, no bytes from to_bytes), _PyBytes_Resize reallocs it in
        # place (glibc mremaps a large block), so growing never holds two copies. Otherwise the
        # holders keep the old block and the samples are copied into a new one.
        cdef Py_ssize_t cap
        cdef PyObject *fresh
        cdef bint private = cartesia_store_private(self._store) and not self._shared
        if need <= self._cap and private:
            return 0
        cap = self._cap
        if need > cap:
            cap = cap * 2
            if cap < need:
                cap = need
            if cap < 1024:
                cap = 1024
        if private:
            try:
                cartesia_store_resize(&self._store, cap * 4)
            except MemoryError:
                # The failed resize freed the block: the buffer is empty now, as after clear().
                self._data = NULL
                self._cap = self._n = self._tlen = 0
                raise
        else:
            store = PyBytes_FromStringAndSize(NULL, cap * 4)
            if self._n:
                memcpy(PyBytes_AS_STRING(store), self._data, self._n * 4)
            fresh = <PyObject *>store
            Py_INCREF(store)
            Py_XDECREF(self._store)
            self._store = fresh
        self._shared = False
        self._data = <float *>PyBytes_AS_STRING(<object>self._store)
        self._cap = cap
        return 0

    cdef Py_ssize_t _append_raw(self, const unsigned char *src, Py_ssize_t n) except -1:
        cdef Py_ssize_t size = self._size, total, head = 0, k = 0, body, left
        cdef unsigned char one[4]
        total = (self._tlen + n) // size
        if total == 0:
            memcpy(self._tail + self._tlen, src, n)
            self._tlen += <int>n
            return 0
        self._grow(self._n + total)
        if self._tlen:
            head = size - self._tlen
            memcpy(one, self._tail, self._tlen)
            memcpy(one + self._tlen, src, head)
            pcm_convert(self._enc, one, 1, self._data + self._n)
            k = 1
        body = total - k
        pcm_convert(self._enc, src + head, body, self._data + self._n + k)
        left = n - head - body * size
        memcpy(self._tail, src + head + body * size, left)
        self._tlen = <int>left
        self._n += total
        return total

    cdef Py_ssize_t _b64_raw(self, const unsigned char *src, Py_ssize_t n) except -2:
        """Decode base64 into the buffer; -1 (nothing appended) if ``src`` is not valid base64."""
        cdef Py_ssize_t dlen, whole
        cdef bint ok
        cdef unsigned char *tmp
        cdef unsigned char *dst
        if n % 4:
            return -1
        dlen = b64_len(src, n)
        if self._enc == ENC_F32 and self._tlen == 0 and dlen >= 4:
            # Decode straight into the array; a trailing partial sample becomes the tail. (Less
            # than one sample goes the slow way: it must not touch the block, as in the twin.)
            self._grow(self._n + (dlen + 3) // 4)
            keep = <object>self._store  # keeps the memory alive while the GIL is released
            dst = <unsigned char *>(self._data + self._n) if self._cap else NULL
            if dst == NULL:
                return 0 if dlen == 0 and n == 0 else -1
            with nogil:
                ok = b64_decode(src, n, dst)
            if not ok:
                return -1
            whole = dlen // 4
            memcpy(self._tail, dst + whole * 4, dlen - whole * 4)
            self._tlen = <int>(dlen - whole * 4)
            self._n += whole
            return whole
        tmp = b64_decode_copy(src, n, dlen)
        if tmp == NULL:
            return -1
        try:
            return self._append_raw(tmp, dlen)
        finally:
            free(tmp)

    def append(self, pcm):
        """Append PCM bytes in the buffer's encoding.

        Args:
            pcm: The bytes; a trailing partial sample is kept for the next append.

        Returns:
            Number of samples appended.
        """
        cdef Py_buffer view
        PyObject_GetBuffer(pcm, &view, PyBUF_SIMPLE)
        try:
            return self._append_raw(<const unsigned char *>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    def append_b64(self, b64):
        """Decode base64 PCM (in the buffer's encoding) and append it.

        Args:
            b64: Standard-alphabet, padded base64 text.

        Returns:
            Number of samples appended.

        Raises:
            Base64DecodeError: ``b64`` is not valid base64 (nothing appended).
        """
        cdef Py_buffer view
        cdef Py_ssize_t got
        b64_input(b64, &view)
        try:
            got = self._b64_raw(<const unsigned char *>view.buf, view.len)
            if got < 0:
                raise b64_error(<const unsigned char *>view.buf, view.len, 0)
            return got
        finally:
            PyBuffer_Release(&view)

    def to_bytes(self):
        """The samples as float32 little-endian bytes.

        The buffer's own block is handed over without a copy when nothing else holds it (it is
        trimmed to the samples in place); otherwise, and for a later append, the samples are copied.
        """
        if self._n == 0:
            return b""
        if not self._shared:
            if not cartesia_store_private(self._store):
                return PyBytes_FromStringAndSize(<const char *>self._data, self._n * 4)  # arrays hold it
            if self._cap != self._n:
                try:
                    cartesia_store_resize(&self._store, self._n * 4)
                except MemoryError:
                    self._data = NULL
                    self._cap = self._n = self._tlen = 0
                    raise
                self._data = <float *>PyBytes_AS_STRING(<object>self._store)
                self._cap = self._n
            self._shared = True
        return <object>self._store

    def to_numpy(self):
        """The samples as a float32 array view (no copy; later appends may not show in it)."""
        cdef _Samples samples
        if self._n == 0:
            return np.empty(0, dtype=np.float32)
        if self._shared:
            self._grow(self._n)  # bytes were handed out: the array gets a writable copy
        samples = _Samples.__new__(_Samples)
        samples._store = <object>self._store
        samples._buf = <char *>self._data
        samples._count = self._n
        samples._nbytes = self._n * 4
        return np.frombuffer(samples, dtype=np.float32)

    def clear(self):
        """Drop all samples and any leftover partial sample (arrays returned earlier stay intact)."""
        Py_XDECREF(self._store)
        self._store = NULL
        self._shared = False
        self._data = NULL
        self._cap = 0
        self._n = 0
        self._tlen = 0

    def __repr__(self):
        return f"AudioBuffer(encoding={self._encname!r}, len={self._n})"
