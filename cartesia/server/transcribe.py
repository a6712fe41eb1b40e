"""Transcription by recognition: the server remembers what it said and recognises that audio again.

There is no speech recogniser offline, so ``POST /audio/transcriptions`` only answers for audio
this server generated recently (a bounded LRU of fingerprints). It accepts the clip as raw
float32 little-endian samples (what the v0 clients return as ``audio``) or as a WAV file (PCM
16/24/32-bit or IEEE float, any channel count, 44.1 or 22.05 kHz or any other rate), so audio
that went through a WAV writer, int16 quantisation or a stereo mix is still recognised. Anything
else gets a clear error; the server never invents text.
"""

from __future__ import annotations

import collections
import hashlib
import struct
import threading
from typing import Optional, Tuple

import numpy as np

__all__ = ["Fingerprint", "TranscriptionRegistry", "UnrecognisedAudio", "decode_clip"]

# Envelope resolution: one RMS value per 10 ms, whatever the sample rate.
_BLOCK_SECONDS = 0.01


class UnrecognisedAudio(ValueError):
    """The clip cannot be transcribed (not decodable, or not audio this server generated)."""


def _decode_wav(data: bytes) -> Tuple[np.ndarray, int]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise UnrecognisedAudio("not a RIFF/WAVE file")
    pos = 12
    fmt = None
    pcm = None
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = data[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            fmt = body
        elif cid == b"data":
            # Streaming writers leave a placeholder size; take what is there.
            pcm = data[pos + 8 :] if size in (0, 0xFFFFFFFF) or pos + 8 + size > len(data) else body
            break
        pos += 8 + size + (size & 1)
    if fmt is None or pcm is None or len(fmt) < 16:
        raise UnrecognisedAudio("WAV file without a fmt or data chunk")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == 0xFFFE and len(fmt) >= 26:  # WAVE_FORMAT_EXTENSIBLE: real tag in the sub-format
        tag = struct.unpack("<H", fmt[24:26])[0]
    if channels < 1 or rate < 1:
        raise UnrecognisedAudio("WAV header with zero channels or sample rate")
    width = bits // 8
    usable = len(pcm) - len(pcm) % (width * channels) if width else 0
    pcm = pcm[:usable]
    if tag == 3 and bits == 32:
        x = np.frombuffer(pcm, "<f4").astype(np.float64)
    elif tag == 3 and bits == 64:
        x = np.frombuffer(pcm, "<f8").astype(np.float64)
    elif tag == 1 and bits == 16:
        x = np.frombuffer(pcm, "<i2") / 32768.0
    elif tag == 1 and bits == 32:
        x = np.frombuffer(pcm, "<i4") / 2147483648.0
    elif tag == 1 and bits == 24:
        b = np.frombuffer(pcm, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = np.where(v >= 1 << 23, v - (1 << 24), v) / 8388608.0
    elif tag == 1 and bits == 8:
        x = (np.frombuffer(pcm, np.uint8).astype(np.float64) - 128.0) / 128.0
    else:
        raise UnrecognisedAudio(f"unsupported WAV encoding (format tag {tag}, {bits} bits)")
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1)
    return x, rate


def decode_clip(data: bytes, default_rate: int = 44100) -> Tuple[np.ndarray, int]:
    """Decode an uploaded clip to float64 mono samples and their rate.

    Raises:
        UnrecognisedAudio: Not a supported WAV file and not raw float32 samples.
    """
    if data[:4] == b"RIFF":
        return _decode_wav(data)
    if not data or len(data) % 4:
        raise UnrecognisedAudio(
            "the clip is neither a WAV file nor raw float32 samples (length not a multiple of 4)"
        )
    x = np.frombuffer(data, "<f4").astype(np.float64)
    if not np.all(np.isfinite(x)) or np.max(np.abs(x)) > 8.0:
        raise UnrecognisedAudio("the clip is neither a WAV file nor raw float32 samples")
    return x, default_rate


def _features(x: np.ndarray, rate: int) -> np.ndarray:
    """Per 10 ms block: RMS level and zero-crossing rate (crossings per second / 10 kHz).

    Both survive int16 quantisation, WAV round trips, gain-free channel mixing and resampling;
    the crossing rate tells apart texts whose loudness envelopes are alike.
    """
    block = max(1, int(round(rate * _BLOCK_SECONDS)))
    n = len(x) // block
    if n == 0:
        return np.zeros((2, 0))
    frames = x[: n * block].reshape(n, block)
    rms = np.sqrt(np.mean(np.square(frames), axis=1))
    signs = np.signbit(frames)
    crossings = np.count_nonzero(signs[:, 1:] != signs[:, :-1], axis=1)
    zcr = crossings * (rate / block) / 10000.0
    return np.vstack([rms, np.where(rms > 1e-3, zcr, 0.0)])


class Fingerprint:
    """What the registry remembers of one generation, built chunk by chunk as the audio streams.

    The same digest and features as computing them over the whole audio at once, without ever
    holding the whole audio.

    Args:
        rate: Sample rate of the audio.
    """

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.samples = 0
        self._hash = hashlib.sha256()
        self._block = max(1, int(round(rate * _BLOCK_SECONDS)))
        self._carry = np.zeros(0, np.float64)
        self._features: list[np.ndarray] = []

    def update(self, samples: np.ndarray) -> None:
        """Add the next piece of the audio (float32)."""
        self._hash.update(np.asarray(samples, "<f4").tobytes())
        self.samples += len(samples)
        x = np.concatenate([self._carry, np.asarray(samples, np.float64)])
        usable = len(x) - len(x) % self._block
        if usable:
            self._features.append(_features(x[:usable], self.rate).astype(np.float32))
        self._carry = x[usable:]

    @property
    def digest(self) -> bytes:
        """SHA-256 of the float32 little-endian samples."""
        return self._hash.digest()

    @property
    def features(self) -> np.ndarray:
        """Per 10 ms block features (see :func:`_features`), float32, shape ``(2, blocks)``."""
        if not self._features:
            return np.zeros((2, 0), np.float32)
        return np.concatenate(self._features, axis=1)


class TranscriptionRegistry:
    """Bounded LRU of fingerprints of generated audio, mapped to its transcript.

    Args:
        capacity: How many generations to remember.
        max_bytes: Memory budget of the stored fingerprints (about 800 bytes per second of
            audio); the oldest entries go first when either limit is reached.
    """

    def __init__(self, capacity: int = 512, max_bytes: int = 16 * 1024 * 1024) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._bytes = 0
        self._lock = threading.Lock()
        # exact hash -> (transcript, features, duration seconds)
        self._entries: collections.OrderedDict[bytes, Tuple[str, np.ndarray, float]] = (
            collections.OrderedDict()
        )

    def remember(self, samples: np.ndarray, rate: int, transcript: str) -> None:
        """Record audio the server produced, given whole."""
        fingerprint = Fingerprint(rate)
        fingerprint.update(samples)
        self.add(fingerprint, transcript)

    def add(self, fingerprint: Fingerprint, transcript: str) -> None:
        """Record audio the server produced, fingerprinted while it streamed."""
        digest, feats = fingerprint.digest, fingerprint.features
        with self._lock:
            old = self._entries.pop(digest, None)
            if old is not None:
                self._bytes -= old[1].nbytes
            self._entries[digest] = (transcript, feats, fingerprint.samples / fingerprint.rate)
            self._bytes += feats.nbytes
            while self._entries and (
                len(self._entries) > self.capacity or self._bytes > self.max_bytes
            ):
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted[1].nbytes

    def recognise(self, clip: bytes) -> str:
        """The transcript of a clip this server generated.

        Raises:
            UnrecognisedAudio: The clip cannot be decoded or matches no remembered generation.
        """
        if not clip:
            raise UnrecognisedAudio("the clip is empty")
        if clip[:4] != b"RIFF" and len(clip) % 4 == 0:
            hit = self._exact(hashlib.sha256(clip).digest())
            if hit is not None:
                return hit
        samples, rate = decode_clip(clip)
        hit = self._exact(hashlib.sha256(samples.astype("<f4").tobytes()).digest())
        if hit is not None:
            return hit
        hit = self._similar(_features(samples, rate), len(samples) / rate)
        if hit is None:
            raise UnrecognisedAudio(
                "audio not recognised: this offline server can only transcribe audio it "
                f"generated itself (it remembers the last {self.capacity} generations)"
            )
        return hit

    def _exact(self, digest: bytes) -> Optional[str]:
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            self._entries.move_to_end(digest)
            return entry[0]

    def _similar(self, feats: np.ndarray, seconds: float) -> Optional[str]:
        if feats.shape[1] < 3 or not np.any(feats[0]):
            return None
        with self._lock:
            entries = list(self._entries.values())
        best: Optional[Tuple[float, str]] = None
        for transcript, ref, ref_seconds in entries:
            # Same length within 2 % (resampling and WAV padding move it a little, not more).
            if abs(ref_seconds - seconds) > 0.02 * ref_seconds + 0.02:
                continue
            n = min(ref.shape[1], feats.shape[1])
            if n < 3:
                continue
            a, b = ref[0, :n].astype(np.float64), feats[0, :n]
            denom = float(np.linalg.norm(a) * np.linalg.norm(b))
            if denom == 0.0:
                continue
            score = float(np.dot(a, b)) / denom
            level = float(np.linalg.norm(b)) / float(np.linalg.norm(a))
            zref, zgot = ref[1, :n].astype(np.float64), feats[1, :n]
            zerr = float(np.mean(np.abs(zref - zgot))) / (float(np.mean(zref)) + 1e-9)
            # Same shape, same pitch content, about the same loudness.
            if (
                score >= 0.99
                and zerr < 0.1
                and 0.8 < level < 1.25
                and (best is None or score > best[0])
            ):
                best = (score, transcript)
        return None if best is None else best[1]
