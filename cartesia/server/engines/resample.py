"""Band-limited rational resampling (polyphase Kaiser-windowed sinc FIR) written with numpy only."""

from __future__ import annotations

import functools
import math
from typing import Iterator

import numpy as np

__all__ = ["design_lowpass", "iter_upsample", "resample_poly", "Resampler"]


@functools.lru_cache(maxsize=16)
def design_lowpass(up: int, down: int, half_taps: int = 24, beta: float = 8.0) -> np.ndarray:
    """FIR taps for resampling by ``up/down``: a windowed sinc cut at the lower Nyquist rate.

    Args:
        up: Interpolation factor.
        down: Decimation factor.
        half_taps: Zero crossings of the sinc kept on each side (per input sample at the
            interpolated rate): more = sharper cut-off.
        beta: Kaiser window shape (8.0 gives about 80 dB stop-band attenuation).

    Returns:
        Taps of length ``2 * half_taps * max(up, down) + 1``, scaled by ``up`` so the passband
        gain after zero-stuffing is 1.
    """
    ratio = max(up, down)
    n = 2 * half_taps * ratio + 1
    # Cut-off (as a fraction of the interpolated Nyquist rate) just below the lower Nyquist rate.
    cutoff = 0.95 / ratio
    t = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    h = cutoff * np.sinc(cutoff * t) * np.kaiser(n, beta)
    h *= up / h.sum()
    return h


#: Input samples per block when upsampling long signals (bounds the float64 temporaries).
BLOCK = 1 << 16


def resample_poly(x: np.ndarray, up: int, down: int = 1) -> np.ndarray:
    """Resample ``x`` by the rational factor ``up/down`` without aliasing or imaging.

    Equivalent to zero-stuffing by ``up``, low-pass filtering and keeping every ``down``-th
    sample, but computed per polyphase branch, so no multiplication ever touches a stuffed zero.
    The output is aligned with the input (the filter delay is removed) and has
    ``ceil(len(x) * up / down)`` samples.

    Args:
        x: 1-D signal.
        up: Interpolation factor (>= 1).
        down: Decimation factor (>= 1).

    Returns:
        float64 array.
    """
    if up < 1 or down < 1:
        raise ValueError("up and down must be positive integers")
    g = math.gcd(up, down)
    up, down = up // g, down // g
    x = np.asarray(x, dtype=np.float64)
    if up == down == 1 or len(x) == 0:
        # np.copy, not x.copy(): numpy's stubs type the method's result as Any for Python 3.10.
        return np.copy(x, order="C")
    h = design_lowpass(up, down)
    if down == 1 and len(x) > BLOCK:
        return _upsample_blocks(x, up, h)
    return _resample_full(x, up, down, h)


def _upsample_blocks(x: np.ndarray, up: int, h: np.ndarray) -> np.ndarray:
    """Integer upsampling block by block: the same numbers as in one go, less memory."""
    out = np.empty(len(x) * up, dtype=np.float64)
    pos = 0
    for piece in _iter_blocks(x, up, h, 1.0):
        out[pos : pos + len(piece)] = piece
        pos += len(piece)
    return out


def iter_upsample(x: np.ndarray, up: int, divisor: float = 1.0) -> Iterator[np.ndarray]:
    """``resample_poly(x / divisor, up)`` in consecutive float64 pieces, computed as pulled.

    The same numbers as :func:`resample_poly`, but only one block of input (converted to float64
    on its own, so ``x`` may stay int16) is worked on at a time.
    """
    if up < 1:
        raise ValueError("up must be a positive integer")
    if up == 1 or len(x) == 0:
        yield np.asarray(x, dtype=np.float64) / divisor
        return
    h = design_lowpass(up, 1)
    if len(x) <= BLOCK:
        yield _resample_full(np.asarray(x, dtype=np.float64) / divisor, up, 1, h)
        return
    yield from _iter_blocks(x, up, h, divisor)


def _iter_blocks(x: np.ndarray, up: int, h: np.ndarray, divisor: float) -> Iterator[np.ndarray]:
    # Input samples on each side that reach an output sample through the filter.
    pad = (len(h) - 1) // (2 * up) + 2
    for a in range(0, len(x), BLOCK):
        b = min(a + BLOCK, len(x))
        lo, hi = max(0, a - pad), min(len(x), b + pad)
        seg = _resample_full(np.asarray(x[lo:hi], dtype=np.float64) / divisor, up, 1, h)
        yield seg[(a - lo) * up : (b - lo) * up]


def _resample_full(x: np.ndarray, up: int, down: int, h: np.ndarray) -> np.ndarray:
    delay = (len(h) - 1) // 2
    n_out = -(-len(x) * up // down)
    # Branch p produces interpolated samples m = k*up + p; it uses taps h[p::up].
    full_len = len(x) * up + len(h) - 1
    y_full = np.zeros(full_len, dtype=np.float64)
    for p in range(up):
        branch = np.convolve(x, h[p::up])
        y_full[p : p + up * len(branch) : up] = branch[: len(y_full[p::up])]
    return y_full[delay : delay + n_out * down : down][:n_out]


class Resampler:
    """Streaming form of :func:`resample_poly`: feed blocks, get the resampled signal as it becomes
    computable.

    Every output sample is computed from the same inputs with the same operations in the same
    order whatever the block sizes, so the concatenated output is *bitwise* independent of how
    the input is split; it equals :func:`resample_poly` of the whole signal (same filter, same
    alignment, same length ``ceil(n * up / down)``) up to float64 rounding.

    Args:
        up: Interpolation factor (>= 1).
        down: Decimation factor (>= 1).
    """

    #: Output samples computed per vectorised pass (bounds the temporaries).
    _PASS = 8192

    def __init__(self, up: int, down: int = 1) -> None:
        if up < 1 or down < 1:
            raise ValueError("up and down must be positive integers")
        g = math.gcd(up, down)
        self.up, self.down = up // g, down // g
        self._identity = self.up == self.down == 1
        h = design_lowpass(self.up, self.down) if not self._identity else np.ones(1)
        self._delay = (len(h) - 1) // 2
        taps = -(-len(h) // self.up)
        padded = np.zeros(taps * self.up, dtype=np.float64)
        padded[: len(h)] = h
        # _phase_taps[t][r] = h[r + up * t]: output j with m = delay + j*down, q = m // up,
        # r = m % up is sum_t h[r + up*t] * x[q - t].
        self._phase_taps = padded.reshape(taps, self.up)
        self._taps = taps
        # Samples before the signal start are zeros, as in a full convolution.
        self._buf = np.zeros(taps - 1, dtype=np.float64)
        self._base = -(taps - 1)  # absolute index of self._buf[0]
        self._received = 0
        self._next = 0  # next output index
        self._finished = False

    def output_length(self, n_input: int) -> int:
        """Samples :meth:`feed` + :meth:`finish` produce in total for ``n_input`` input samples."""
        return -(-n_input * self.up // self.down)

    def feed(self, x: np.ndarray) -> np.ndarray:
        """Add input samples; return the output samples that no later input can change (float64)."""
        if self._finished:
            raise RuntimeError("feed() after finish()")
        x = np.asarray(x, dtype=np.float64).ravel()
        if self._identity:
            self._received += len(x)
            return np.copy(x, order="C")
        self._buf = np.concatenate((self._buf, x))
        self._received += len(x)
        # Output j is final once its newest input q_j = (delay + j*down) // up has arrived.
        top = self._received * self.up - 1 - self._delay
        end = top // self.down + 1 if top >= 0 else 0
        return self._produce(end)

    def finish(self) -> np.ndarray:
        """The remaining output (the filter tail over the zeros after the signal's end)."""
        if self._finished:
            return np.zeros(0, dtype=np.float64)
        self._finished = True
        if self._identity:
            return np.zeros(0, dtype=np.float64)
        end = self.output_length(self._received)
        if end > self._next:
            last_q = (self._delay + (end - 1) * self.down) // self.up
            need = last_q + 1 - (self._base + len(self._buf))
            if need > 0:
                self._buf = np.concatenate((self._buf, np.zeros(need, dtype=np.float64)))
        return self._produce(end)

    def _produce(self, end: int) -> np.ndarray:
        start = self._next
        if end <= start:
            return np.zeros(0, dtype=np.float64)
        out = np.empty(end - start, dtype=np.float64)
        for a in range(start, end, self._PASS):
            b = min(a + self._PASS, end)
            m = self._delay + np.arange(a, b, dtype=np.int64) * self.down
            q = m // self.up - self._base
            r = m % self.up
            acc = np.zeros(b - a, dtype=np.float64)
            buf, taps = self._buf, self._phase_taps
            for t in range(self._taps):
                acc += taps[t][r] * buf[q - t]
            out[a - start : b - start] = acc
        self._next = end
        # Drop the inputs no future output reaches.
        first_q = (self._delay + end * self.down) // self.up
        keep_from = first_q - (self._taps - 1) - self._base
        if keep_from > 0:
            self._buf = self._buf[keep_from:].copy()
            self._base += keep_from
        return out
