"""The JSON events of ``/tts/sse`` and ``/tts/websocket`` (one builder per event type)."""

from __future__ import annotations

import base64
import json
from typing import Any, Dict, List, Optional

from .pipeline import Timed, Timestamps

__all__ = ["encode", "chunk", "timestamps", "done", "flush_done", "MALFORMED"]

#: What the ``malformed`` fault sends: looks like a chunk event, is not JSON (``nope``).
MALFORMED = b'{"type":"chunk","data":"AAAA","done":nope,"status_code":206}'


def encode(event: Dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON of one event."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _tail(event: Dict[str, Any], context_id: Optional[str], flush_id: Optional[int]) -> Dict[str, Any]:
    if context_id is not None:
        event["context_id"] = context_id
    if flush_id is not None:
        event["flush_id"] = flush_id
    return event


def chunk(
    audio: bytes, step_ms: float, context_id: Optional[str], flush_id: Optional[int] = None
) -> Dict[str, Any]:
    """``{"type": "chunk", "data": <base64>, "done": false, "status_code": 206, "step_time"}``."""
    event = {
        "type": "chunk",
        "data": base64.b64encode(audio).decode("ascii"),
        "done": False,
        "status_code": 206,
        "step_time": step_ms,
    }
    return _tail(event, context_id, flush_id)


def timestamps(
    stamps: Timestamps, context_id: Optional[str], flush_id: Optional[int] = None
) -> Dict[str, Any]:
    """A ``timestamps`` (``word_timestamps {words, start, end}``) or ``phoneme_timestamps``
    (``phoneme_timestamps {phonemes, start, end}``) event."""
    items: List[Timed] = stamps.items
    if stamps.kind == "words":
        kind, key, names = "timestamps", "word_timestamps", "words"
    else:
        kind, key, names = "phoneme_timestamps", "phoneme_timestamps", "phonemes"
    event = {
        "type": kind,
        "done": False,
        "status_code": 206,
        key: {
            names: [name for name, _, _ in items],
            "start": [start for _, start, _ in items],
            "end": [end for _, _, end in items],
        },
    }
    return _tail(event, context_id, flush_id)


def done(context_id: Optional[str]) -> Dict[str, Any]:
    """``{"type": "done", "done": true, "status_code": 200}``."""
    return _tail({"type": "done", "done": True, "status_code": 200}, context_id, None)


def flush_done(context_id: str, flush_id: int) -> Dict[str, Any]:
    """The end of flush segment ``flush_id``."""
    event = {"type": "flush_done", "done": False, "flush_done": True, "status_code": 206}
    return _tail(event, context_id, flush_id)
