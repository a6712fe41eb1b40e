"""The synthetic 60-second workload of docs/perf-baseline.md: frames, framings and network reads."""

from __future__ import annotations

import base64
import functools
import json
import math
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

SAMPLE_RATE = 44100
BYTES_PER_SAMPLE = 4  # pcm_f32le, the v0 default
SECONDS = 60.0
FRAME_TIMES = (0.1, 0.5)
READ_SIZES = (1024, 8 * 1024, 64 * 1024)
FRAMINGS = ("bare", "sse")


@dataclass(frozen=True)
class Workload:
    """One framing of the workload, already cut into network reads.

    Attributes:
        framing: ``"bare"`` (JSON objects back to back) or ``"sse"`` (``data: {...}\\n\\n``).
        frame_time: Seconds of audio per frame.
        read_size: Bytes per network read (the last read is shorter).
        reads: The wire bytes, cut into reads.
        wire_bytes: Total bytes on the wire.
        pcm_bytes: Total decoded audio bytes expected.
        audio_seconds: Seconds of audio carried.
        frames: Number of frames.
    """

    framing: str
    frame_time: float
    read_size: int
    reads: Tuple[bytes, ...]
    wire_bytes: int
    pcm_bytes: int
    audio_seconds: float
    frames: int

    @property
    def name(self) -> str:
        return f"{self.framing} {self.frame_time:g}s frames, {self.read_size // 1024} KiB reads"


def tone(n_samples: int, start: int = 0) -> np.ndarray:
    """A 440 Hz sine at half scale: real-looking float32 samples, deterministic."""
    t = np.arange(start, start + n_samples, dtype=np.float64) / SAMPLE_RATE
    return (0.5 * np.sin(2 * math.pi * 440.0 * t)).astype("<f4")


@functools.lru_cache(maxsize=4)
def frame_objects(frame_time: float, seconds: float = SECONDS) -> Tuple[bytes, ...]:
    """The JSON frames (as UTF-8 bytes) of ``seconds`` of audio, ``frame_time`` seconds each.

    Fields and order follow the v0 ``/audio/stream`` objects: ``data``, ``sampling_rate``, ``done``,
    ``step_time``, ``length``. About 23.6 kB per 0.1 s frame.
    """
    per_frame = round(frame_time * SAMPLE_RATE)
    n_frames = round(seconds / frame_time)
    out = []
    for i in range(n_frames):
        pcm = tone(per_frame, i * per_frame).tobytes()
        obj = {
            "data": base64.b64encode(pcm).decode("ascii"),
            "sampling_rate": SAMPLE_RATE,
            "done": False,
            "step_time": round(12.5 + (i % 7) * 0.731, 3),
            "length": per_frame,
        }
        out.append(json.dumps(obj, separators=(", ", ": ")).encode("ascii"))
    return tuple(out)


def payloads(frame_time: float, seconds: float = SECONDS) -> List[bytes]:
    """The base64 text of every frame, pre-extracted (what the ceiling decodes)."""
    return [json.loads(f)["data"].encode("ascii") for f in frame_objects(frame_time, seconds)]


def pcm_bytes(frame_time: float, seconds: float = SECONDS) -> int:
    """Decoded audio bytes in the workload."""
    return round(frame_time * SAMPLE_RATE) * round(seconds / frame_time) * BYTES_PER_SAMPLE


def wire(framing: str, frame_time: float, seconds: float = SECONDS) -> bytes:
    """The whole HTTP body for ``framing``."""
    frames = frame_objects(frame_time, seconds)
    if framing == "bare":
        return b"".join(frames)
    if framing == "sse":
        return b"".join(b"data: " + f + b"\n\n" for f in frames)
    raise ValueError(f"unknown framing {framing!r}")


@functools.lru_cache(maxsize=3)
def workload(framing: str, frame_time: float, read_size: int, seconds: float = SECONDS) -> Workload:
    """The workload cut into reads of ``read_size`` bytes (cached: building one takes ~0.1 s)."""
    body = wire(framing, frame_time, seconds)
    reads = tuple(body[i : i + read_size] for i in range(0, len(body), read_size))
    return Workload(
        framing=framing,
        frame_time=frame_time,
        read_size=read_size,
        reads=reads,
        wire_bytes=len(body),
        pcm_bytes=pcm_bytes(frame_time, seconds),
        audio_seconds=seconds,
        frames=round(seconds / frame_time),
    )


def ws_messages(frame_time: float, seconds: float = SECONDS) -> List[bytes]:
    """One websocket text message per frame, as the v0 websocket sends them (with a context id)."""
    ctx = "0123456789abcdef0123456789abcdef"
    out = []
    for f in frame_objects(frame_time, seconds):
        obj = json.loads(f)
        obj["context_id"] = ctx
        out.append(json.dumps(obj, separators=(", ", ": ")).encode("ascii"))
    return out
