"""Strict base64 decoding of the compiled core, every SIMD kernel checked against binascii."""

from __future__ import annotations

import base64
import binascii
import ctypes
import importlib
import mmap
import random
import re
import sys
from types import ModuleType
from typing import Iterator, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartesia.errors import Base64DecodeError

pytestmark = pytest.mark.c_extension

# Fastest last: the default kernel must be the last one this CPU accepts.
BACKENDS = ["scalar", "ssse3", "avx2", "avx512vbmi"]
ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
NOT_ALPHABET = bytes(sorted(set(range(256)) - set(ALPHABET)))
# Around every byte class boundary of the nibble lookup, plus whitespace, NUL and high bytes.
BAD_SAMPLES = b"=\n\r \t\x00\x80\xff*,-.:@[\\`{~_\x7f"


@pytest.fixture(scope="module")
def c_mod() -> ModuleType:
    # No try/except: a missing compiled core must error, not skip.
    return importlib.import_module("cartesia._stream_c")


@pytest.fixture(scope="module", params=BACKENDS)
def kernel(request: pytest.FixtureRequest, c_mod: ModuleType) -> Iterator[str]:
    """Forces one kernel for the module's tests and restores the default afterwards."""
    default = c_mod.b64_backend()
    if not c_mod._b64_set_backend(request.param):
        assert request.param != "scalar", "the scalar kernel must always be available"
        pytest.skip(f"this CPU or build cannot run the {request.param} kernel")
    assert c_mod.b64_backend() == request.param
    yield request.param
    assert c_mod._b64_set_backend(default)


def first_bad(text: bytes) -> Optional[int]:
    """Where decoding must fail (the documented rule), or None when the input is valid."""
    n = len(text)
    if n % 4:
        return n
    for k, ch in enumerate(text):
        if ch in ALPHABET:
            continue
        # '=' is padding only as the last character, or the one before a final '='.
        if ch == 0x3D and (k == n - 1 or (k == n - 2 and text[-1] == 0x3D)):
            continue
        return k
    return None


def reference(text: bytes) -> Optional[bytes]:
    """What the standard library decodes under strict rules, or None where it refuses.

    Spelled out so it is the same on every Python: binascii's ``strict_mode`` does not exist
    before 3.11, and on 3.11 and 3.12 it accepts excess padding (``b"QUJD="``, ``b"QUJD===="``)
    that 3.13 refuses. The rules are 3.13's strict mode: whole groups of 4 (RFC 4648, section 3.2),
    alphabet characters only, then at most two '='. binascii does the decoding.
    """
    if len(text) % 4 or not re.fullmatch(rb"[A-Za-z0-9+/]*={0,2}", text):
        return None
    try:
        return binascii.a2b_base64(text)
    except binascii.Error:
        return None


def check(c_mod: ModuleType, text: bytes) -> None:
    """Decodes with the compiled core and compares with the standard library and first_bad()."""
    expected_offset = first_bad(text)
    expected = reference(text)
    if expected_offset is None:
        assert expected is not None, "first_bad() accepts what binascii rejects"
        got = c_mod._b64decode(text)
        assert type(got) is bytes
        assert got == expected
    else:
        assert expected is None, "first_bad() rejects what binascii accepts"
        with pytest.raises(Base64DecodeError) as info:
            c_mod._b64decode(text)
        assert info.value.offset == expected_offset, text[:120]


def test_default_is_fastest_available(c_mod: ModuleType) -> None:
    default = c_mod.b64_backend()
    assert default in BACKENDS
    try:
        usable = [name for name in BACKENDS if c_mod._b64_set_backend(name)]
    finally:
        assert c_mod._b64_set_backend(default)
    assert usable[0] == "scalar"
    assert default == usable[-1]
    assert c_mod.b64_backend() == default


def test_unknown_backend_is_refused(c_mod: ModuleType) -> None:
    before = c_mod.b64_backend()
    assert c_mod._b64_set_backend("neon") is False
    assert c_mod._b64_set_backend("") is False
    assert c_mod.b64_backend() == before


def test_every_length_round_trips(c_mod: ModuleType, kernel: str) -> None:
    rng = random.Random(7)
    for size in range(226):  # every encoded length 0..300
        raw = rng.randbytes(size)
        text = base64.b64encode(raw)
        assert c_mod._b64decode(text) == raw, size


def test_large_input(c_mod: ModuleType, kernel: str) -> None:
    rng = random.Random(11)
    for size in (1 << 20, (1 << 20) - 1, 786_431):
        raw = rng.randbytes(size)
        assert c_mod._b64decode(base64.b64encode(raw)) == raw
    text = bytearray(base64.b64encode(rng.randbytes(1 << 20)))
    text[len(text) - 1000] = ord("\n")
    with pytest.raises(Base64DecodeError) as info:
        c_mod._b64decode(bytes(text))
    assert info.value.offset == len(text) - 1000


@pytest.mark.parametrize("encoded_len", [4, 8, 12, 16, 28, 32, 44, 64, 76, 88, 128, 200, 256])
def test_first_offending_character_everywhere(c_mod: ModuleType, kernel: str, encoded_len: int) -> None:
    rng = random.Random(encoded_len)
    text = base64.b64encode(rng.randbytes(encoded_len // 4 * 3))
    assert len(text) == encoded_len
    for pos in range(encoded_len):
        for bad in BAD_SAMPLES:
            check(c_mod, text[:pos] + bytes([bad]) + text[pos + 1 :])
        # A second bad character later on must not change the reported offset.
        if pos + 5 < encoded_len:
            check(c_mod, text[:pos] + b"#" + text[pos + 1 : pos + 5] + b"\x80" + text[pos + 6 :])


def test_every_byte_value(c_mod: ModuleType, kernel: str) -> None:
    text = base64.b64encode(bytes(range(256)) * 3)  # 1024 characters
    for pos in (0, 13, 31, 32, 63, 64, 500, 1000, 1019):
        for value in range(256):
            check(c_mod, text[:pos] + bytes([value]) + text[pos + 1 :])


@pytest.mark.parametrize(
    "text, result",
    [
        (b"", b""),
        (b"QQ==", b"A"),
        (b"QUI=", b"AB"),
        (b"QUJD", b"ABC"),
        # Unused low bits before the padding are ignored, as binascii's strict mode does.
        (b"QR==", b"A"),
        (b"QUJ=", b"AB"),
        (b"QUJD" * 20 + b"//8=", b"ABC" * 20 + b"\xff\xff"),
        (b"Q===", 1),
        (b"====", 0),
        (b"QQ=A", 2),
        (b"QU=D", 2),
        (b"=QQQ", 0),
        (b"Q=Q=", 1),
        (b"QQ==QQ==", 2),
        (b"QUJD" * 9 + b"QQ==QUJD", 38),
        (b"QUJDQ", 5),
        (b"QQ=", 3),
        # Excess padding after a whole group: binascii's strict mode accepts these on 3.11 and 3.12.
        (b"QUJD=", 5),
        (b"QUJD==", 6),
        (b"QUJD====", 4),
        (b"=", 1),
        (b"QUJD\n", 5),
        (b"QUJD QUJD", 9),
        (b"QUJD-_-_", 4),
        (b"QUJD\x00", 5),
    ],
)
def test_padding_and_lengths(c_mod: ModuleType, kernel: str, text: bytes, result) -> None:
    if isinstance(result, bytes):
        assert c_mod._b64decode(text) == result
    else:
        with pytest.raises(Base64DecodeError) as info:
            c_mod._b64decode(text)
        assert info.value.offset == result
    check(c_mod, text)


def test_error_is_a_value_error(c_mod: ModuleType) -> None:
    with pytest.raises(ValueError):
        c_mod._b64decode(b"QU*D")


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=3000))
def test_random_valid(c_mod: ModuleType, kernel: str, raw: bytes) -> None:
    assert c_mod._b64decode(base64.b64encode(raw)) == raw


@settings(max_examples=120, deadline=None)
@given(
    raw=st.binary(min_size=1, max_size=600),
    edits=st.lists(
        st.tuples(st.floats(min_value=0, max_value=1, exclude_max=True), st.sampled_from(NOT_ALPHABET)),
        min_size=1,
        max_size=3,
    ),
    cut=st.integers(min_value=0, max_value=3),
)
def test_random_corruption(c_mod: ModuleType, kernel: str, raw: bytes, edits: list, cut: int) -> None:
    text = bytearray(base64.b64encode(raw))
    for where, value in edits:
        text[int(where * len(text))] = value
    check(c_mod, bytes(text[: len(text) - cut]))


class GuardedBuffer:
    """A buffer whose last byte sits just before an inaccessible page, so touching past it crashes."""

    def __init__(self, libc: ctypes.CDLL, size: int) -> None:
        self.size = size
        self.map = mmap.mmap(-1, size + mmap.PAGESIZE)
        self.base = ctypes.addressof(ctypes.c_char.from_buffer(self.map))
        assert libc.mprotect(ctypes.c_void_p(self.base + size), mmap.PAGESIZE, 0) == 0

    def tail(self, n: int) -> int:
        """Address of the last n bytes."""
        return self.base + self.size - n


@pytest.mark.skipif(sys.platform != "linux", reason="needs mprotect and the C symbols exported by the module")
def test_never_touches_memory_past_either_end(c_mod: ModuleType, kernel: str) -> None:
    # Calls the C API of the loaded module directly: through bytes objects an overrun would hit
    # allocator slack and go unnoticed, here it faults.
    lib = ctypes.CDLL(c_mod.__file__)
    decode = lib.cartesia_b64_decode
    decode.restype = ctypes.c_ssize_t
    decode.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    src = GuardedBuffer(libc, 4 * mmap.PAGESIZE)
    dst = GuardedBuffer(libc, 3 * mmap.PAGESIZE)
    rng = random.Random(5)
    err = ctypes.c_size_t()
    for size in list(range(300)) + [rng.randrange(300, 3 * mmap.PAGESIZE) for _ in range(100)]:
        raw = rng.randbytes(size)
        text = base64.b64encode(raw)
        src.map[src.size - len(text) : src.size] = text
        assert decode(src.tail(len(text)), len(text), dst.tail(size), ctypes.byref(err)) == size
        assert dst.map[dst.size - size : dst.size] == raw
        if text:
            pos = rng.randrange(len(text))
            src.map[src.size - len(text) + pos] = ord("*")
            assert decode(src.tail(len(text)), len(text), dst.tail(size), ctypes.byref(err)) == -1
            assert err.value == first_bad(text[:pos] + b"*" + text[pos + 1 :])
