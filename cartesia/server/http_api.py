"""HTTP handlers: voices, cloning, the audio stream, transcriptions, health and fault control."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from aiohttp import web

from . import json_body
from . import voices as voices_mod
from .faults import (
    HTTP_STREAM_KINDS,
    Fault,
    FaultSpecError,
    fault_from_dict,
    json_type,
    parse_fault_spec,
)
from .generation import RenderError, RequestError, parse_generation
from .pacing import Pacer
from .state import REQUEST_FAULTS_KEY, STATE_KEY, ServerState
from .streaming import write_http_generation
from .transcribe import UnrecognisedAudio

__all__ = ["json_error", "routes"]

log = logging.getLogger("cartesia.server")

_VOICE_FIELDS = ("id", "user_id", "name", "description", "embedding", "created_at")


def json_error(status: int, message: str, headers: Optional[Dict[str, str]] = None) -> web.Response:
    """A JSON error response ``{"error": message, "status_code": status}``."""
    return web.json_response(
        {"error": message, "status_code": status}, status=status, headers=headers
    )


def _state(request: web.Request) -> ServerState:
    return request.app[STATE_KEY]


async def read_json(request: web.Request) -> Any:
    """The request body parsed as JSON; 400 naming the problem when it is not."""
    raw = await request.read()
    try:
        return json_body.loads(raw)
    except json_body.JSONInputError as exc:
        raise RequestError(400, f"request body: {exc}") from None


async def read_clip(request: web.Request) -> bytes:
    """The ``clip`` file of a multipart upload."""
    if not request.content_type.startswith("multipart/"):
        raise RequestError(
            400,
            "expected a multipart/form-data upload with a `clip` file, "
            f"got {request.content_type}",
        )
    try:
        form = await request.post()
    except ValueError as exc:
        raise RequestError(400, f"malformed multipart body: {exc}") from None
    try:
        field = form.get("clip")
        if field is None:
            raise RequestError(400, "missing multipart field `clip`")
        data = field.file.read() if hasattr(field, "file") else str(field).encode()
    finally:
        # aiohttp spools uploaded files to temporary files that the handler must close.
        for value in form.values():
            if hasattr(value, "file"):
                value.file.close()
    if not data:
        raise RequestError(400, "the `clip` upload is empty")
    return data


async def health(request: web.Request) -> web.Response:
    """``GET /``: liveness, engine and pace (no auth)."""
    state = _state(request)
    return web.json_response(
        {
            "ok": True,
            "version": "v0",
            "engine": state.engine.name,
            "pace": state.config.pace,
        }
    )


async def list_voices(request: web.Request) -> web.Response:
    """``GET /v0/voices[?select=...][&embedding_style=string|list]``."""
    style = request.query.get("embedding_style", _state(request).config.voices_embedding_style)
    if style not in ("string", "list"):
        raise RequestError(400, "embedding_style must be `string` or `list`")
    fields: Tuple[str, ...] = _VOICE_FIELDS
    select = request.query.get("select")
    if select is not None:
        fields = tuple(f.strip() for f in select.split(",") if f.strip())
        unknown = [f for f in fields if f not in _VOICE_FIELDS]
        if unknown or not fields:
            raise RequestError(
                400,
                f"unknown field(s) in `select`: {', '.join(unknown) or '(none given)'}; "
                f"known: {', '.join(_VOICE_FIELDS)}",
            )
    out = []
    for voice in voices_mod.CATALOGUE:
        meta = voice.metadata(embedding_style=style)
        out.append({f: meta[f] for f in fields})
    return web.json_response(out)


async def voice_embedding(request: web.Request) -> web.Response:
    """``GET /v0/voices/embedding/{voice_id}``: ``{"embedding": [...]}`` or 404."""
    voice_id = request.match_info["voice_id"]
    voice = voices_mod.lookup(voice_id)
    if voice is None:
        return json_error(404, f"voice {voice_id[:64]!r} not found")
    return web.json_response({"embedding": list(voice.embedding)})


async def clone_clip(request: web.Request) -> web.Response:
    """``POST /v0/voices/clone/clip``: an embedding derived from the uploaded ``clip``."""
    clip = await read_clip(request)
    return web.json_response({"embedding": voices_mod.embedding_from_bytes(clip, salt=b"clip")})


async def clone_url(request: web.Request) -> web.Response:
    """``POST /v0/voices/clone/url?link=``: an embedding derived from the link (not fetched)."""
    link = request.query.get("link", "").strip()
    if not link:
        raise RequestError(400, "missing `link` query parameter")
    parts = urlsplit(link)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RequestError(400, "`link` must be an http(s) URL")
    # Offline: the link is never fetched; the embedding is derived from the URL itself.
    embedding = voices_mod.embedding_from_bytes(link.encode("utf-8"), salt=b"link")
    return web.json_response({"embedding": embedding})


async def transcriptions(request: web.Request) -> web.Response:
    """``POST /v0/audio/transcriptions``: the text of audio this server generated, else 422."""
    clip = await read_clip(request)
    try:
        text = _state(request).transcripts.recognise(clip)
    except UnrecognisedAudio as exc:
        raise RequestError(422, str(exc)) from None
    return web.json_response({"text": text})


def take_generation_faults(request: web.Request, target: str) -> List[Fault]:
    """Generation faults for this request: the per-request ones, then server-wide ones."""
    local = request.get(REQUEST_FAULTS_KEY)
    taken = local.take(HTTP_STREAM_KINDS, target) if local is not None else []
    return taken + _state(request).faults.take(HTTP_STREAM_KINDS, target)


async def audio_stream(request: web.Request) -> web.StreamResponse:
    """``POST /v0/audio/stream``: JSON objects back to back, one per chunk, then ``done``."""
    state = _state(request)
    req = parse_generation(await read_json(request))
    faults = take_generation_faults(request, "stream")
    state.stats["generations_started"] += 1
    pacer = Pacer(state.config.pace, state.config.first_chunk_latency)
    # The first batch is rendered before the response starts: an engine failure is still a 500.
    generation = await state.renderer.open(req)
    task = asyncio.current_task()
    assert task is not None  # a request handler always runs in a task
    state.streams.add(task)
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    try:
        try:
            await resp.prepare(request)
            finished = await write_http_generation(
                request, resp, generation, faults, pacer, state.stats
            )
            if finished:
                await resp.write_eof()
                state.stats["generations_completed"] += 1
        except RenderError:
            # Too late for an error status: cut the body short so the client cannot take it
            # for a complete one (it lacks the final `done` object).
            log.exception("generation failed mid-stream")
            state.stats["generations_aborted"] += 1
            if request.transport is not None:
                request.transport.abort()
        except (ConnectionError, RuntimeError):
            # The client went away mid-stream; nothing left to tell it.
            state.stats["generations_aborted"] += 1
    finally:
        generation.close()
        state.streams.discard(task)
    return resp


async def faults_get(request: web.Request) -> web.Response:
    """``GET /_emulator/faults``: the pending server-wide faults."""
    return web.json_response([f.as_dict() for f in _state(request).faults.pending()])


async def faults_post(request: web.Request) -> web.Response:
    """Queue faults: a JSON object, a list of objects, or ``{"spec": "<spec string>"}``."""
    body = await read_json(request)
    try:
        if isinstance(body, dict) and "spec" in body and len(body) == 1:
            if not isinstance(body["spec"], str):
                raise FaultSpecError(f"`spec` must be a string, got {json_type(body['spec'])}")
            faults = parse_fault_spec(body["spec"])
        elif isinstance(body, list):
            faults = [fault_from_dict(item) for item in body]
        else:
            faults = [fault_from_dict(body)]
    except FaultSpecError as exc:
        raise RequestError(400, str(exc)) from None
    _state(request).faults.extend(faults)
    return web.json_response({"added": [f.as_dict() for f in faults]})


async def faults_delete(request: web.Request) -> web.Response:
    """``DELETE /_emulator/faults``: forget every pending fault."""
    _state(request).faults.clear()
    return web.json_response({"cleared": True})


async def stats_get(request: web.Request) -> web.Response:
    """``GET /_emulator/stats``: the server's counters, and the renderer's memory gauges.

    ``buffered_bytes`` is the frame bytes rendered and not sent yet over every live generation;
    ``buffered_peak_bytes`` the most one generation ever held; ``lookahead_bytes`` the bound
    it aims at; ``generations_open`` the generations running.
    """
    state = _state(request)
    renderer = state.renderer
    return web.json_response(
        {
            **state.stats,
            "buffered_bytes": renderer.buffered_bytes,
            "buffered_peak_bytes": renderer.peak_buffered_bytes,
            "generations_open": renderer.open_generations,
            "lookahead_bytes": renderer.lookahead_bytes,
        }
    )


def routes(prefix: str = "/v0") -> List[web.RouteDef]:
    """The HTTP route table (websocket routes are added by :mod:`.ws_api`)."""
    return [
        web.get("/", health),
        web.get("/status", health),
        web.get(f"{prefix}/voices", list_voices),
        web.get(f"{prefix}/voices/", list_voices),
        web.get(f"{prefix}/voices/embedding/{{voice_id}}", voice_embedding),
        web.post(f"{prefix}/voices/clone/clip", clone_clip),
        web.post(f"{prefix}/voices/clone/url", clone_url),
        web.post(f"{prefix}/audio/stream", audio_stream),
        web.post(f"{prefix}/audio/transcriptions", transcriptions),
        web.get("/_emulator/faults", faults_get),
        web.post("/_emulator/faults", faults_post),
        web.delete("/_emulator/faults", faults_delete),
        web.get("/_emulator/stats", stats_get),
    ]
