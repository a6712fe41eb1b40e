"""Voice routes of the current API (``/voices``...), with each version's own routes and shapes.

Auth, version resolution and the per-version error bodies (of the :class:`ApiError` these
handlers raise) come from the current API's middleware (:mod:`.middleware`).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
from typing import Any, Dict, List, Literal, Optional, Tuple, overload

import numpy as np
from aiohttp import web

from .. import voices as voices_mod
from ..json_body import loads
from .errors import ApiError
from .versions import embeddings_allowed, paged_voices, request_version
from .voice_catalogue import VoiceRecord
from .voice_store import (
    MAX_TAGLINE_CHARS,
    VOICE_STORE_KEY,
    VoiceFilters,
    VoiceStore,
    check_gender,
    check_language,
)

__all__ = ["routes", "voice_object", "DEFAULT_LIMIT", "MAX_LIMIT", "LOCAL_USER_ID"]

#: ``GET /voices`` page size when ``limit`` is not given (the real service's default).
DEFAULT_LIMIT = 10
MAX_LIMIT = 100
#: ``user_id`` of every voice created on this server (one local organisation).
LOCAL_USER_ID = "local-user"
_EXPANDABLE = ("preview_file_url", "embedding")
_MAX_MIX = 32
_MAX_TEXT = 1000


def _store(request: web.Request) -> VoiceStore:
    return request.app[VOICE_STORE_KEY]


def _bad(field: str, problem: str) -> ApiError:
    return ApiError(400, f"`{field}` {problem}")


def _field_error(exc: ValueError) -> ApiError:
    return ApiError(400, str(exc))


# --- shapes ------------------------------------------------------------------------------


def voice_object(record: VoiceRecord, version: str, expand: Tuple[str, ...] = ()) -> Dict[str, Any]:
    """The voice object of ``version``.

    2024-06-10: ``{id, user_id, is_public, name, description, created_at, embedding, language}``.
    Later: the current object (``id, name, tagline, description, language, locales, gender,
    accent, country, is_owner, access, visibility, created_at, user_id``), plus
    ``preview_file_url`` / ``embedding`` when ``expand`` asks for them.
    """
    user_id = LOCAL_USER_ID if record.is_owner else None
    if not paged_voices(version):
        return {
            "id": record.id,
            "user_id": user_id,
            "is_public": not record.is_owner,
            "name": record.name,
            "description": record.description,
            "created_at": record.created_at,
            "embedding": list(record.engine.embedding),
            "language": record.language,
        }
    locales = [{"locale": record.native_locale, "is_native": True}]
    locales += [{"locale": loc, "is_native": False} for loc in record.extra_locales]
    out: Dict[str, Any] = {
        "id": record.id,
        "name": record.name,
        "tagline": record.tagline,
        "description": record.description,
        "language": record.language,
        "locales": locales,
        "gender": record.gender,
        "accent": record.accent,
        "country": record.country,
        "is_owner": record.is_owner,
        "access": record.access,
        "visibility": record.visibility,
        "created_at": record.created_at,
        "user_id": user_id,
    }
    if "preview_file_url" in expand:
        out["preview_file_url"] = None  # no previews offline ("null if there's no preview")
    if "embedding" in expand:
        out["embedding"] = list(record.engine.embedding)
    return out


def _embedding_route(request: web.Request, what: str) -> None:
    """Embedding routes exist up to 2025-11-04 (embeddings were removed in 2026-03-01)."""
    version = request_version(request)
    if not embeddings_allowed(version):
        raise ApiError(
            404,
            f"{what} is not part of Cartesia-Version {version}: voice embeddings were removed "
            "in 2026-03-01 (send an older Cartesia-Version to use it)",
        )


# --- query and body parsing ---------------------------------------------------------------


def _expand(request: web.Request) -> Tuple[str, ...]:
    values = request.query.getall("expand[]", []) + request.query.getall("expand", [])
    out = []
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            if item not in _EXPANDABLE:
                raise _bad(
                    "expand[]", f"has unknown value {item[:40]!r}; known: {', '.join(_EXPANDABLE)}"
                )
            if item == "embedding" and not embeddings_allowed(request_version(request)):
                raise _bad(
                    "expand[]", "cannot include `embedding` from Cartesia-Version 2026-03-01"
                )
            out.append(item)
    return tuple(out)


def _bool_query(request: web.Request, name: str) -> Optional[bool]:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    low = value.lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise _bad(name, f"must be true or false, got {value[:20]!r}")


def _filters(request: web.Request) -> VoiceFilters:
    query = request.query
    try:
        gender = check_gender(query.get("gender") or None)
        language = query.get("language")
        language = check_language(language) if language else None
    except ValueError as exc:
        raise _field_error(exc) from None
    q = query.get("q")
    if q is not None and len(q) > _MAX_TEXT:
        raise _bad("q", f"must be at most {_MAX_TEXT} characters")
    return {
        "q": q or None,
        "gender": gender,
        "language": language,
        "is_owner": _bool_query(request, "is_owner"),
    }


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise _bad("limit", f"must be an integer from 1 to {MAX_LIMIT}, got {raw[:20]!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise _bad("limit", f"must be from 1 to {MAX_LIMIT}, got {limit}")
    return limit


async def _json_object(request: web.Request) -> Dict[str, Any]:
    # Bad or deeply nested JSON raises JSONInputError: the middleware answers it with a 400.
    body = loads(await request.read())
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


@overload
def _string(
    body: Dict[str, Any], key: str, *, required: Literal[True], limit: int = _MAX_TEXT
) -> str: ...
@overload
def _string(
    body: Dict[str, Any], key: str, *, required: bool = False, limit: int = _MAX_TEXT
) -> Optional[str]: ...
def _string(
    body: Dict[str, Any], key: str, *, required: bool = False, limit: int = _MAX_TEXT
) -> Optional[str]:
    value = body.get(key)
    if value is None:
        if required:
            raise _bad(key, "is required")
        return None
    if not isinstance(value, str):
        raise _bad(key, f"must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise _bad(key, "must not be empty")
    if len(value) > limit:
        raise _bad(key, f"must be at most {limit} characters")
    return value


def _only(body: Dict[str, Any], allowed: Tuple[str, ...], what: str) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ApiError(
            400, f"unknown field(s) for {what}: {', '.join(unknown)}; known: {', '.join(allowed)}"
        )


async def _form(request: web.Request, allowed: Tuple[str, ...]) -> Tuple[Dict[str, str], bytes]:
    """The text fields and the ``clip`` file of a multipart upload."""
    if not request.content_type.startswith("multipart/"):
        raise ApiError(
            400,
            f"expected a multipart/form-data upload with a `clip` file, got {request.content_type}",
        )
    try:
        form = await request.post()
    except ValueError as exc:
        raise ApiError(400, f"malformed multipart body: {exc}") from None
    fields: Dict[str, str] = {}
    clip: Optional[bytes] = None
    try:
        for key, value in form.items():
            if key not in allowed:
                raise ApiError(400, f"unknown form field `{key[:40]}`; known: {', '.join(allowed)}")
            if key == "clip":
                clip = value.file.read() if hasattr(value, "file") else str(value).encode()
            elif hasattr(value, "file"):
                raise _bad(key, "must be a text field, not a file")
            else:
                fields[key] = str(value)
    finally:
        # aiohttp spools uploads to temporary files that the handler must close.
        for value in form.values():
            if hasattr(value, "file"):
                value.file.close()
    if clip is None:
        raise _bad("clip", "is required (the audio file to clone)")
    if not clip:
        raise _bad("clip", "is empty")
    return fields, clip


def _form_bool(fields: Dict[str, str], key: str, default: bool) -> bool:
    value = fields.get(key)
    if value is None:
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise _bad(key, f"must be 'true' or 'false', got {value[:20]!r}")


def _clip_embedding(clip: bytes, enhance: bool) -> List[float]:
    # The v0 clone rule (same clip, same voice); enhancing "cleans" the clip into another voice.
    return voices_mod.embedding_from_bytes(clip, salt=b"clip+enhance" if enhance else b"clip")


def _new_owned(
    store: VoiceStore,
    engine: voices_mod.Voice,
    *,
    name: str,
    description: str,
    language: str,
    **fields: Any,
) -> VoiceRecord:
    voice_id = store.new_id()
    record = VoiceRecord(
        id=voice_id,
        name=name,
        description=description,
        language=language,
        engine=dataclasses.replace(engine, id=voice_id, name=name),
        is_owner=True,
        created_at=_now(),
        **fields,
    )
    return store.add(record)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- handlers ------------------------------------------------------------------------------


async def list_voices(request: web.Request) -> web.Response:
    """``GET /voices``: a page object (bare array for 2024-06-10), filtered and cursor-paged."""
    version = request_version(request)
    store = _store(request)
    filters = _filters(request)
    expand = _expand(request)
    if not paged_voices(version):
        return web.json_response([voice_object(r, version) for r in store.listing(**filters)])
    page = store.page(
        limit=_limit(request),
        starting_after=request.query.get("starting_after") or None,
        ending_before=request.query.get("ending_before") or None,
        **filters,
    )
    return web.json_response(
        {
            "data": [voice_object(r, version, expand) for r in page.data],
            "has_more": page.has_more,
            "next_page": page.next_page,
        }
    )


async def get_voice(request: web.Request) -> web.Response:
    """``GET /voices/{id}``: the voice, or 404 JSON."""
    record = _store(request).get(request.match_info["voice_id"])
    return web.json_response(voice_object(record, request_version(request), _expand(request)))


_UPDATABLE = ("name", "description", "gender", "accent", "tagline")


async def update_voice(request: web.Request) -> web.Response:
    """``PATCH /voices/{id}``: name, description, gender, accent, tagline of an owned voice."""
    voice_id = request.match_info["voice_id"]
    store = _store(request)
    store.get(voice_id)  # 404 before complaining about the body
    body = await _json_object(request)
    _only(body, _UPDATABLE, "PATCH /voices/{id}")
    changes: Dict[str, Any] = {}
    if "name" in body:
        changes["name"] = _string(body, "name", required=True)
    if "description" in body:
        changes["description"] = _string(body, "description") or ""
    if "tagline" in body:
        changes["tagline"] = _string(body, "tagline", limit=MAX_TAGLINE_CHARS) or ""
    if "accent" in body:
        changes["accent"] = _string(body, "accent", limit=64)
    if "gender" in body:
        try:
            changes["gender"] = check_gender(body["gender"])
        except ValueError as exc:
            raise _field_error(exc) from None
    record = store.update(voice_id, **changes)
    return web.json_response(voice_object(record, request_version(request)))


async def delete_voice(request: web.Request) -> web.Response:
    """``DELETE /voices/{id}``: 204 for an owned voice; 403 catalogue, 404 unknown."""
    _store(request).delete(request.match_info["voice_id"])
    return web.Response(status=204)


# 1.x clients name how a clone is made: `clip` (an embedding), `similarity` or `stability`.
_CLONE_MODES = ("clip", "similarity", "stability")
_CLONE_FIELDS = (
    "clip",
    "name",
    "description",
    "language",
    "base_voice_id",
    "accent",
    # 2024-06-10 clients also send these.
    "mode",
    "enhance",
    "transcript",
)


async def clone_voice(request: web.Request) -> web.Response:
    """``POST /voices/clone``: an owned voice whose engine voice is derived from the clip."""
    version = request_version(request)
    store = _store(request)
    fields, clip = await _form(request, _CLONE_FIELDS)
    name = _string(fields, "name", required=True, limit=200)
    language_raw = fields.get("language")
    if language_raw is None and paged_voices(version):
        raise _bad("language", "is required (an ISO 639-1 code such as 'en')")
    try:
        language = check_language(language_raw or "en")
    except ValueError as exc:
        raise _field_error(exc) from None
    mode = fields.get("mode")
    if mode is not None and mode not in _CLONE_MODES:
        raise _bad("mode", f"must be one of {', '.join(_CLONE_MODES)}, got {mode[:20]!r}")
    base_voice_id = fields.get("base_voice_id") or None
    if base_voice_id is not None and store.find(base_voice_id) is None:
        raise _bad("base_voice_id", f"names no known voice ({base_voice_id[:64]!r})")
    embedding = _clip_embedding(clip, _form_bool(fields, "enhance", False))
    engine = voices_mod.speaking(voices_mod.voice_for_embedding(embedding), language)
    record = _new_owned(
        store,
        engine,
        name=name,
        description=fields.get("description") or "",
        language=language,
        accent=fields.get("accent") or None,
        base_voice_id=base_voice_id,
    )
    return web.json_response(voice_object(record, version))


async def clone_clip(request: web.Request) -> web.Response:
    """``POST /voices/clone/clip`` (up to 2025-11-04): ``{"embedding": [...]}`` from the clip."""
    _embedding_route(request, "POST /voices/clone/clip")
    # 1.x clients send `mode: clip` here (and enhance=true unless told otherwise).
    fields, clip = await _form(request, ("clip", "enhance", "mode"))
    if fields.get("mode", "clip") not in _CLONE_MODES:
        raise _bad("mode", f"must be one of {', '.join(_CLONE_MODES)}, got {fields['mode'][:20]!r}")
    embedding = _clip_embedding(clip, _form_bool(fields, "enhance", True))
    return web.json_response({"embedding": embedding})


async def voice_embedding(request: web.Request) -> web.Response:
    """``GET /voices/{id}/embedding`` (up to 2025-11-04)."""
    _embedding_route(request, "GET /voices/{id}/embedding")
    record = _store(request).get(request.match_info["voice_id"])
    return web.json_response({"embedding": list(record.engine.embedding)})


_CREATE_FIELDS = ("name", "description", "embedding", "language", "base_voice_id")


async def create_voice(request: web.Request) -> web.Response:
    """``POST /voices`` (up to 2025-11-04): an owned voice from an embedding (201)."""
    _embedding_route(request, "POST /voices (create from an embedding)")
    store = _store(request)
    body = await _json_object(request)
    _only(body, _CREATE_FIELDS, "POST /voices")
    name = _string(body, "name", required=True, limit=200)
    try:
        embedding = voices_mod.check_embedding(body.get("embedding"))
        language = check_language(body.get("language") or "en")
    except ValueError as exc:
        raise _field_error(exc) from None
    base_voice_id = _string(body, "base_voice_id")
    if base_voice_id is not None and store.find(base_voice_id) is None:
        raise _bad("base_voice_id", f"names no known voice ({base_voice_id[:64]!r})")
    engine = dataclasses.replace(store.resolve_embedding(embedding), embedding=tuple(embedding))
    record = _new_owned(
        store,
        voices_mod.speaking(engine, language),
        name=name,
        description=_string(body, "description") or "",
        language=language,
        base_voice_id=base_voice_id,
    )
    return web.json_response(voice_object(record, request_version(request)), status=201)


async def mix_voices(request: web.Request) -> web.Response:
    """``POST /voices/mix`` (up to 2025-11-04): the weighted mix of ids/embeddings."""
    _embedding_route(request, "POST /voices/mix")
    store = _store(request)
    body = await _json_object(request)
    items = body.get("voices")
    if not isinstance(items, list) or not items:
        raise _bad("voices", "must be a non-empty list of {id or embedding, weight}")
    if len(items) > _MAX_MIX:
        raise _bad("voices", f"may mix at most {_MAX_MIX} voices")
    total = np.zeros(voices_mod.EMBEDDING_SIZE)
    weight_sum = 0.0
    for i, item in enumerate(items):
        where = f"voices[{i}]"
        if not isinstance(item, dict):
            raise _bad(where, "must be an object with `id` or `embedding`, and `weight`")
        weight = item.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
            raise _bad(f"{where}.weight", "must be a number from 0 to 1")
        if "embedding" in item:
            try:
                vec = voices_mod.check_embedding(item["embedding"], f"{where}.embedding")
            except ValueError as exc:
                raise _field_error(exc) from None
        elif isinstance(item.get("id"), str):
            vec = list(store.get(item["id"]).engine.embedding)
        else:
            raise _bad(where, "needs an `id` (string) or an `embedding`")
        arr = np.asarray(vec, dtype=np.float64)
        norm = float(np.linalg.norm(arr))
        if norm > 0:
            total += weight * arr / norm
        weight_sum += weight
    norm = float(np.linalg.norm(total))
    if weight_sum <= 0 or norm == 0:
        raise _bad("voices", "weights must not all be zero")
    mixed = [round(float(x), 6) for x in total / norm]
    return web.json_response({"embedding": mixed})


_LOCALIZE_FIELDS = (
    "voice_id",
    "name",
    "description",
    "language",
    "original_speaker_gender",
    "dialect",
    "accent",
    "tagline",
    "embedding",
)


async def localize_voice(request: web.Request) -> web.Response:
    """``POST /voices/localize``: a localized owned voice (an embedding for old requests)."""
    version = request_version(request)
    store = _store(request)
    body = await _json_object(request)
    _only(body, _LOCALIZE_FIELDS, "POST /voices/localize")
    gender = body.get("original_speaker_gender")
    if gender is not None and gender not in ("male", "female"):
        raise _bad(
            "original_speaker_gender", f"must be 'male' or 'female', got {str(gender)[:20]!r}"
        )
    dialect = _string(body, "dialect", limit=32)
    accent = _string(body, "accent", limit=64)
    try:
        target = check_language(body["language"]) if body.get("language") is not None else None
    except ValueError as exc:
        raise _field_error(exc) from None
    if "embedding" in body:
        _embedding_route(request, "POST /voices/localize with an `embedding`")
        try:
            embedding = voices_mod.check_embedding(body["embedding"])
        except ValueError as exc:
            raise _field_error(exc) from None
        if target is None:
            raise _bad("language", "is required (the target language)")
        seed = np.round(np.asarray(embedding, dtype="<f8"), 4).tobytes()
        seed += f"|{target}|{dialect}|{gender}".encode()
        return web.json_response(
            {"embedding": voices_mod.embedding_from_bytes(seed, salt=b"localize")}
        )
    voice_id = _string(body, "voice_id", required=True, limit=200)
    source = store.get(voice_id)
    name = _string(body, "name", required=True, limit=200)
    tagline = _string(body, "tagline", limit=MAX_TAGLINE_CHARS) or ""
    language = target or source.language
    # The source voice's character in the target language; dialect and accent shift its pitch a
    # little so that two localizations of one voice sound different too.
    digest = hashlib.sha256(f"{voice_id}|{language}|{dialect}|{accent}".encode()).digest()
    engine = voices_mod.speaking(source.engine, language)
    engine = dataclasses.replace(
        engine,
        f0=round(engine.f0 * 2.0 ** ((1 + digest[0] % 5) / 48.0), 3),
        pitch=min(100, max(0, engine.pitch + digest[1] % 7 - 3)),
        embedding=tuple(voices_mod.embedding_from_bytes(digest, salt=b"localize")),
    )
    record = _new_owned(
        store,
        engine,
        name=name,
        description=_string(body, "description") or "",
        language=language,
        gender=source.gender,
        tagline=tagline,
        accent=accent,
        base_voice_id=voice_id,
    )
    return web.json_response(voice_object(record, version))


def routes() -> List[web.RouteDef]:
    """The voice routes of the current API (beside the ``/v0`` ones)."""
    return [
        web.get("/voices", list_voices),
        web.get("/voices/", list_voices),
        web.post("/voices", create_voice),
        web.post("/voices/clone", clone_voice),
        web.post("/voices/clone/clip", clone_clip),
        web.post("/voices/mix", mix_voices),
        web.post("/voices/localize", localize_voice),
        web.get("/voices/{voice_id}", get_voice),
        web.patch("/voices/{voice_id}", update_voice),
        web.delete("/voices/{voice_id}", delete_voice),
        web.get("/voices/{voice_id}/embedding", voice_embedding),
    ]
