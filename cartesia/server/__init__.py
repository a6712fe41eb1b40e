"""Local Cartesia v0 API server (aiohttp): real protocol, offline speech, fault injection.

Quick guide
===========

Embedding (tests, ``cartesia say --local``)::

    from cartesia.server import LocalServer

    with LocalServer(engine="tone", pace="none") as server:
        server.base_url        # "http://localhost:<port>"   (no /v0)
        server.ws_url          # "ws://localhost:<port>"
        server.host_for_env    # "localhost:<port>"  -> CARTESIA_BASE_URL
        server.api_key         # a key it accepts ("local-test-key" unless api_keys=[...] given)
        server.faults.add("drop", after_frames=2)   # next generation loses its connection
        server.stats["generations_cancelled"]       # counters of what the server saw:
        # http_requests (incl. websocket upgrades), ws_connections, generations_started,
        # generations_completed, generations_cancelled, generations_aborted, acks,
        # faults_fired, auth_failures

``LocalServer(host="localhost", port=0, engine=None|"speech"|"tone", pace="none"|"realtime",
api_keys=None, first_chunk_latency=0.0, voices_embedding_style="string"|"list",
max_body_bytes=..., ws_idle_timeout=None)``. ``localhost`` binds 127.0.0.1 and ::1 on one port.

Command line: ``python -m cartesia.server --port 0 --engine tone`` (or ``cartesia serve``) prints
``listening on http://localhost:<port>`` as its first stdout line and exits 0 on SIGINT/SIGTERM.

Wire protocol (all under ``/v0``, auth ``X-API-Key`` or websocket ``?api_key=``)
-----------------------------------------------------------------------------
* ``GET /voices[?select=id, name, description]``: list of voices. Embeddings are served as a
  JSON-encoded *string* by default (the v0 API did; cartesia 0.0.5 ``json.loads`` them), a list
  with ``?embedding_style=list`` or ``voices_embedding_style="list"``.
* ``GET /voices/embedding/{id}``, ``POST /voices/clone/clip`` (multipart ``clip``),
  ``POST /voices/clone/url?link=``: ``{"embedding": [192 floats]}`` (always a list).
* ``POST /audio/stream``: body ``{"transcript", "voice" (embedding list or voice id), "model_id",
  "duration"?, "chunk_time"? (default 0.1)}``. Response: JSON objects back to back, no separator,
  one per ``chunk_time`` of audio: ``{"data": b64 float32 LE, "sampling_rate": 44100, "done":
  false, "step_time": ms, "length": samples}``; the stream ends with one final object
  ``{"data": "", "sampling_rate": 44100, "done": true, "step_time": 0.0, "length": 0}``.
  A body without that final ``done: true`` object was cut short. ``step_time`` is the
  synthesis time of the chunk in ms, ``length`` its number of samples. Audio is capped at
  ``duration`` (default 180 s).
* ``WS /audio/websocket`` and ``/experimental/audio/websocket``: send ``{"context_id": id,
  "data": {body}}``; receive ``{"data", "sampling_rate", "done": false, "context_id",
  "step_time", "length"}`` frames then ``{"done": true, "context_id": id}``. Many generations
  per socket, sequential or concurrent (frames of different contexts interleave, each context in
  order). ``{"context_id": id, "action": "cancel"}`` stops a context (a ``done`` frame follows).
  Experimental route: chunk *i* is only sent after *i* acks ``{"context_id": id}``.
  Errors inside a socket:
  ``{"context_id": id|null, "done": true, "error": msg, "status_code": 400}``.
* ``POST /audio/transcriptions`` (multipart ``clip``): ``{"text": ...}`` for audio this server
  generated (raw float32 bytes or a WAV); 422 otherwise.
* ``GET /`` health (no auth). Errors: JSON ``{"error": msg, "status_code": n}`` with 400 (bad
  JSON, missing/empty transcript, unknown voice id/model, bad chunk_time/duration), 422 (wrong
  types, embedding not 192 finite numbers), 413 (body too large), 401 (missing/wrong key; on
  websockets the upgrade is refused with 401), 404 (unknown voice / route).

Faults (see :mod:`cartesia.server.faults` for the full table)
-------------------------------------------------------------
Kinds: ``drop`` (abort TCP after ``after_frames`` frames; websocket client sees 1006),
``stall`` (sleep ``seconds`` after ``after_frames``), ``split`` (HTTP: ``piece``-byte writes),
``coalesce`` (HTTP: ``frames`` frames per write, 0 = all), ``malformed`` (one non-JSON frame
after ``after_frames``, then the generation ends without ``done``), ``status`` (answer with
``status``, 429 with ``Retry-After: retry_after``; ``retry_after_ms`` and ``should_retry``
add ``retry-after-ms`` and ``x-should-retry``; websockets: refused upgrade; shorthands
``401``/``403``/``429``/``500``/``503``), ``ws_close`` (close with ``code`` after
``after_frames``; ``close1000``/``close1001``/``close1011``), ``ws_idle_close`` (after a
finished generation wait ``seconds`` and close the idle socket with ``code``, default 1000).
``after_frames`` larger than the audio fires just before the final ``done``. split/coalesce are
only taken by HTTP streams, ws_close/ws_idle_close only by websocket generations.
Parameters: ``count`` (default 1, <= 0 forever), ``on`` (any/http/stream/ws/voices/
transcriptions), ``after_frames``, ``seconds``, ``status``, ``retry_after``, ``retry_after_ms``,
``should_retry``, ``code``, ``piece``, ``frames``.

* Python: ``server.faults.add("stall", after_frames=1, seconds=0.5)``,
  ``server.faults.add("429", retry_after=2, count=3, on="stream")``, ``server.faults.clear()``.
* Per request: header ``X-Cartesia-Fault: stall;after_frames=1;seconds=0.5, split``; websocket
  query ``?fault=close1011;after_frames=2`` (applies to the socket's generations, ``count`` each)
  or a ``"fault": "<spec>"`` key next to ``data`` in one generation message.
* Another process: ``POST /_emulator/faults`` with ``{"kind": "drop", "after_frames": 2}``, a list
  of those, or ``{"spec": "..."}``; ``GET``/``DELETE`` list/clear; ``GET /_emulator/stats``.
  These need the API key too.

Pytest fixtures (``tests/server_fixtures.py``)
----------------------------------------------
``local_server`` (session, tone engine, pace none), ``server_faults`` (its ``faults``, cleared
after the test), ``make_server(**LocalServer kwargs)`` (extra servers, stopped at teardown),
``speech_server`` (session, speech engine; skips only if espeakng-loader is missing),
``seed_client_path`` (session: a directory holding the official cartesia 0.0.5 for PYTHONPATH).
"""

from typing import TYPE_CHECKING, Any

from .config import DEFAULT_API_KEY, ServerConfig
from .faults import FAULT_KINDS, Fault, FaultController, FaultSpecError, parse_fault_spec

if TYPE_CHECKING:
    from .embed import LocalServer


def __getattr__(name: str) -> Any:
    # LocalServer brings the whole application (aiohttp, numpy, the engines); `python -m
    # cartesia.server` imports this package first and must answer a usage error without it.
    if name == "LocalServer":
        from .embed import LocalServer

        return LocalServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "LocalServer",
    "ServerConfig",
    "DEFAULT_API_KEY",
    "FAULT_KINDS",
    "Fault",
    "FaultController",
    "FaultSpecError",
    "parse_fault_spec",
]
