"""Helpers of the current-API websocket tests: connections to the local server, expected audio."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List

from test_server_v1_http import VOICE, expected_audio

from cartesia.protocol import v1
from cartesia.resources.tts_websocket import (
    AsyncWebSocketConnection,
    WebSocketConnection,
    connect,
    connect_async,
)
from cartesia.server import LocalServer
from cartesia.server.audio import OutputFormat

__all__ = [
    "VOICE",
    "S16",
    "fmt",
    "sync_conn",
    "async_conn",
    "defaults",
    "audio_of",
    "expected",
]

S16 = {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 44100}


def fmt(encoding: str = "pcm_s16le", sample_rate: int = 44100) -> Dict[str, Any]:
    return {"container": "raw", "encoding": encoding, "sample_rate": sample_rate}


def _options(server: LocalServer, **options: Any) -> Dict[str, Any]:
    options.setdefault("headers", v1.headers(server.api_key, json_content=False))
    options.setdefault("secret", server.api_key)
    options.setdefault("connect_timeout", 10.0)
    return options


def sync_conn(server: LocalServer, **options: Any) -> WebSocketConnection:
    return connect(server.ws_url + v1.WS_PATH, **_options(server, **options))


def async_conn(server: LocalServer, **options: Any) -> AsyncWebSocketConnection:
    return connect_async(server.ws_url + v1.WS_PATH, **_options(server, **options))


def defaults(**extra: Any) -> Dict[str, Any]:
    """Context defaults: a catalogue voice, s16 output, a bounded wait for every frame."""
    out: Dict[str, Any] = {
        "model_id": "sonic-3",
        "voice": {"mode": "id", "id": VOICE.id},
        "output_format": S16,
        "timeout": 15.0,
    }
    out.update(extra)
    return out


def audio_of(events: Iterable[Any]) -> bytes:
    return b"".join(e.audio or b"" for e in events if e.type == "chunk")


def expected(pieces: List[str], output_format: Dict[str, Any] = S16) -> bytes:
    """What the tone engine renders for ``pieces`` (one stream encoder)."""
    return expected_audio(
        pieces, OutputFormat("raw", output_format["encoding"], output_format["sample_rate"])
    )
