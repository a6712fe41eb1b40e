"""The voices one server knows: built-in catalogue, ``--voices FILE`` entries and owned voices."""

from __future__ import annotations

import dataclasses
import datetime
import re
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, TypedDict

import numpy as np
from aiohttp import web

from .. import voices as voices_mod
from ..json_body import JSONInputError, loads
from ..voices import Voice
from .errors import ApiError
from .voice_catalogue import BUILTIN_VOICES, GENDERS, VoiceRecord, derived_engine_voice

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ..config import ServerConfig

__all__ = [
    "VOICE_STORE_KEY",
    "VoiceStore",
    "VoicePage",
    "VoicesFileError",
    "load_voices_file",
    "check_language",
    "check_gender",
    "VoiceFilters",
]

#: Longest voice id the server accepts (production ids are 36-character UUIDs).
MAX_ID_CHARS = 200
MAX_TAGLINE_CHARS = 32
#: Owned voices one server keeps (clones and localizations); more are refused, not swapped out.
MAX_OWNED = 10_000
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
# Cosine similarity above which an embedding is taken to *be* a known voice.
_SAME_VOICE = 0.995


class VoiceFilters(TypedDict, total=False):
    """The filters of a voice listing (:meth:`VoiceStore.listing`, :meth:`VoiceStore.page`)."""

    q: Optional[str]
    gender: Optional[str]
    language: Optional[str]
    is_owner: Optional[bool]


class VoicesFileError(ValueError):
    """A ``--voices`` file that cannot be used; ``str(exc)`` names the file, entry and field."""


def check_language(value: Any, field: str = "language") -> str:
    """A language code (``en``, ``fr``, ...), lower-cased; :class:`ValueError` naming ``field``."""
    if not isinstance(value, str) or not _LANGUAGE.match(value.strip().lower()):
        raise ValueError(
            f"`{field}` must be an ISO 639-1 language code such as 'en', got {value!r:.40}"
        )
    return value.strip().lower()


def check_gender(value: Any, field: str = "gender") -> Optional[str]:
    """``None`` or one of :data:`GENDERS`; :class:`ValueError` naming ``field`` otherwise."""
    if value is None or (isinstance(value, str) and value in GENDERS):
        return value
    raise ValueError(f"`{field}` must be one of {', '.join(GENDERS)} or null, got {value!r:.40}")


def _text(entry: Mapping[str, Any], key: str, default: Optional[str]) -> Optional[str]:
    value = entry.get(key, default)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"`{key}` must be a string, got {type(value).__name__}")
    return value


def _created_at(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("`created_at` must be an ISO 8601 date-time string")
    try:
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"`created_at` is not an ISO 8601 date-time: {value!r:.40}") from None
    return value


# Fields of a current-API voice object; the derived ones (access, visibility, ...) are accepted
# and ignored so that a page saved from the real service (`GET /voices`) loads as it is.
_ENTRY_FIELDS = frozenset(
    {
        "id",
        "name",
        "description",
        "language",
        "gender",
        "tagline",
        "locale",
        "locales",
        "country",
        "accent",
        "created_at",
        "is_owner",
        "engine_voice",
    }
)
_IGNORED_FIELDS = frozenset(
    {"access", "visibility", "preview_file_url", "user_id", "is_public", "embedding", "is_starred"}
)
_ENGINE_LIMITS = {
    "pitch": (0, 100, int),
    "rate": (80, 450, int),
    "f0": (40.0, 600.0, float),
    "brightness": (0.0, 1.0, float),
}


def _engine_voice(
    spec: Any, voice_id: str, name: str, language: str, known: Mapping[str, VoiceRecord]
) -> Voice:
    """The engine voice an entry names (a known voice id or name, or parameters), else derived."""
    derived = derived_engine_voice(voice_id, voice_id=voice_id, name=name, language=language)
    if spec is None:
        return derived
    if isinstance(spec, str):
        record = known.get(spec)
        voice = record.engine if record is not None else voices_mod.lookup(spec)
        if voice is None:
            raise ValueError(
                f"`engine_voice` {spec!r:.60} is neither a built-in voice id nor a v0 voice name"
            )
        return dataclasses.replace(voice, id=voice_id, name=name)
    if not isinstance(spec, dict):
        raise ValueError("`engine_voice` must be a voice id/name or an object of parameters")
    unknown = sorted(set(spec) - {"espeak", *_ENGINE_LIMITS})
    if unknown:
        raise ValueError(
            f"unknown `engine_voice` field(s) {', '.join(unknown)}; "
            f"known: espeak, {', '.join(_ENGINE_LIMITS)}"
        )
    changes: Dict[str, Any] = {}
    if "espeak" in spec:
        if not isinstance(spec["espeak"], str) or not spec["espeak"].strip():
            raise ValueError(
                "`engine_voice.espeak` must be an espeak-ng voice name like 'en-us+f3'"
            )
        changes["espeak"] = spec["espeak"].strip()
    for key, (low, high, kind) in _ENGINE_LIMITS.items():
        if key not in spec:
            continue
        value = spec[key]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not (low <= value <= high) or (kind is int and value != int(value)):
            raise ValueError(
                f"`engine_voice.{key}` must be a number in {low}..{high}, got {value!r:.40}"
            )
        changes[key] = kind(value)
    return dataclasses.replace(derived, **changes)


def record_from_entry(entry: Any, known: Mapping[str, VoiceRecord]) -> VoiceRecord:
    """One voice object of a ``--voices`` file as a :class:`VoiceRecord`.

    Raises:
        ValueError: Naming the offending field.
    """
    if not isinstance(entry, dict):
        raise ValueError(f"expected a voice object, got {type(entry).__name__}")
    unknown = sorted(set(entry) - _ENTRY_FIELDS - _IGNORED_FIELDS)
    if unknown:
        raise ValueError(
            f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(_ENTRY_FIELDS))}"
        )
    voice_id = entry.get("id")
    if not isinstance(voice_id, str) or not voice_id.strip() or len(voice_id) > MAX_ID_CHARS:
        raise ValueError(f"`id` must be a non-empty string of at most {MAX_ID_CHARS} characters")
    voice_id = voice_id.strip()
    name = _text(entry, "name", None) or f"Voice {voice_id[:8]}"
    tagline = _text(entry, "tagline", "") or ""
    if len(tagline) > MAX_TAGLINE_CHARS:
        raise ValueError(f"`tagline` must be at most {MAX_TAGLINE_CHARS} characters")
    locale = _text(entry, "locale", None)
    native, extra = _locales(entry.get("locales"))
    locale = locale or native
    if locale is not None and not _LOCALE.match(locale):
        raise ValueError(f"`locale` must be a BCP-47 tag such as 'en-US', got {locale!r:.40}")
    language = check_language(entry.get("language", (locale or "en").split("-")[0]))
    is_owner = entry.get("is_owner", False)
    if not isinstance(is_owner, bool):
        raise ValueError("`is_owner` must be true or false")
    return VoiceRecord(
        id=voice_id,
        name=name,
        description=_text(entry, "description", "") or "",
        language=language,
        engine=_engine_voice(entry.get("engine_voice"), voice_id, name, language, known),
        gender=check_gender(entry.get("gender")),
        tagline=tagline,
        locale=locale,
        country=_text(entry, "country", None),
        accent=_text(entry, "accent", None),
        created_at=_created_at(entry.get("created_at", "2025-06-02T00:00:00Z")),
        is_owner=is_owner,
        extra_locales=extra,
    )


def _locales(value: Any) -> Tuple[Optional[str], Tuple[str, ...]]:
    """``locales`` of a saved production object: the native locale and the others."""
    if value is None:
        return None, ()
    items = value if isinstance(value, list) else None
    if items is None or not all(
        isinstance(i, dict) and isinstance(i.get("locale"), str) and _LOCALE.match(i["locale"])
        for i in items
    ):
        raise ValueError('`locales` must be a list of {"locale": "en-US", "is_native": true}')
    native = [i["locale"] for i in items if i.get("is_native")]
    others = tuple(i["locale"] for i in items if not i.get("is_native"))
    return (native[0] if native else None), others


def load_voices_file(
    path: str | Path, known: Iterable[VoiceRecord] = BUILTIN_VOICES
) -> List[VoiceRecord]:
    """Read a ``--voices`` file: a JSON array of voice objects, or a saved ``{"data": [...]}`` page.

    Omitted fields get defaults; ``engine_voice`` (a built-in voice id, a v0 voice name, or
    ``{"espeak", "pitch", "rate", "f0", "brightness"}``) says how the voice speaks, else the engine
    voice is derived from the id.

    Raises:
        VoicesFileError: One message naming the file, the entry and the field.
    """
    where = f"--voices {path}"
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise VoicesFileError(f"{where}: cannot read the file: {exc.strerror or exc}") from None
    try:
        doc = loads(raw)
    except JSONInputError as exc:
        raise VoicesFileError(f"{where}: {exc}") from None
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        doc = doc["data"]
    if not isinstance(doc, list):
        raise VoicesFileError(f"{where}: expected a JSON array of voice objects")
    by_id = {r.id: r for r in known}
    out: List[VoiceRecord] = []
    seen: Dict[str, int] = {}
    for index, entry in enumerate(doc):
        label = f"entry {index}"
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            label += f" (id {entry['id'][:60]!r})"
        try:
            record = record_from_entry(entry, by_id)
        except ValueError as exc:
            raise VoicesFileError(f"{where}: {label}: {exc}") from None
        if record.id in seen:
            raise VoicesFileError(f"{where}: {label}: duplicate id (also entry {seen[record.id]})")
        seen[record.id] = index
        out.append(record)
    return out


@dataclasses.dataclass(frozen=True)
class VoicePage:
    """One page of ``GET /voices``.

    Attributes:
        data: The voices of the page, in listing order.
        has_more: Whether more voices follow in the paging direction.
        next_page: The cursor for the next page (last id forwards, first id backwards) when
            ``has_more``, else ``None``.
    """

    data: Tuple[VoiceRecord, ...]
    has_more: bool
    next_page: Optional[str]


class VoiceStore:
    """Every voice of one server, safe to use from several threads.

    Listing order is stable: the built-in catalogue, then ``--voices`` entries (an entry with a
    built-in id replaces that voice in place), then owned voices in creation order.

    Args:
        extra: Voices from a ``--voices`` file.
        any_voice: Unknown ids speak with a voice derived from the id instead of a 404.
    """

    def __init__(
        self,
        extra: Sequence[VoiceRecord] = (),
        *,
        any_voice: bool = False,
        max_owned: int = MAX_OWNED,
    ) -> None:
        self.any_voice = any_voice
        self.max_owned = max_owned
        self._added: Set[str] = set()  # ids of voices made on this server (what max_owned counts)
        self._lock = threading.Lock()
        self._voices: Dict[str, VoiceRecord] = {r.id: r for r in BUILTIN_VOICES}
        for record in extra:
            self._voices[record.id] = record
        self._embeddings: Optional[Tuple[Tuple[str, ...], np.ndarray]] = None

    @classmethod
    def from_config(cls, config: ServerConfig) -> VoiceStore:
        """The store for a server's settings (reads ``config.voices_file``).

        Raises:
            VoicesFileError: The file cannot be used.
        """
        extra = load_voices_file(config.voices_file) if config.voices_file else []
        return cls(extra, any_voice=config.any_voice)

    # --- lookups ---------------------------------------------------------------------------

    def find(self, voice_id: str) -> Optional[VoiceRecord]:
        """The voice with this id, or ``None`` (``--any-voice`` does not apply)."""
        with self._lock:
            return self._voices.get(voice_id)

    def get(self, voice_id: str) -> VoiceRecord:
        """The voice with this id; with ``any_voice`` an unknown id gets a derived public voice.

        Raises:
            ApiError: 404 for an unknown id (400 for an empty or over-long one).
        """
        _check_id(voice_id)
        record = self.find(voice_id)
        if record is not None:
            return record
        if self.any_voice:
            return _adhoc(voice_id)
        raise _not_found(voice_id)

    def resolve(self, voice_id: str) -> Voice:
        """The engine voice that speaks ``voice_id`` (every TTS voice goes through here).

        Raises:
            ApiError: 404 for an unknown id unless ``any_voice``; 400 for an empty id.
        """
        return self.get(voice_id).engine

    def resolve_embedding(self, embedding: Sequence[float]) -> Voice:
        """The engine voice for an embedding (versions up to 2025-11-04).

        The embedding of any known voice (as ``GET /voices/{id}/embedding`` served it) speaks
        with that voice; any other embedding with the voice derived from it.
        """
        vec = np.asarray(embedding, dtype=np.float64)
        norm = float(np.linalg.norm(vec))
        with self._lock:
            if self._embeddings is None:
                ids = tuple(self._voices)
                matrix = np.array([self._voices[i].engine.embedding for i in ids], dtype=np.float64)
                matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
                self._embeddings = (ids, matrix)
            ids, matrix = self._embeddings
            if norm > 0 and len(ids):
                sims = matrix @ (vec / norm)
                best = int(np.argmax(sims))
                if sims[best] >= _SAME_VOICE and ids[best] in self._voices:
                    return self._voices[ids[best]].engine
        return voices_mod.voice_for_embedding(embedding)

    # --- listing ---------------------------------------------------------------------------

    def listing(
        self,
        *,
        q: Optional[str] = None,
        gender: Optional[str] = None,
        language: Optional[str] = None,
        is_owner: Optional[bool] = None,
    ) -> List[VoiceRecord]:
        """Every voice matching all the given filters, in listing order.

        ``q`` matches name, description or id (case-insensitive substring); ``language`` the
        voice's language or any of its locales' languages.
        """
        with self._lock:
            records = list(self._voices.values())
        return [r for r in records if _matches(r, q, gender, language, is_owner)]

    def page(
        self,
        *,
        limit: int,
        starting_after: Optional[str] = None,
        ending_before: Optional[str] = None,
        **filters: Unpack[VoiceFilters],
    ) -> VoicePage:
        """One page of the filtered listing, with exact cursor semantics.

        ``starting_after=X``: the first ``limit`` matching voices after ``X``; ``ending_before=X``:
        the last ``limit`` matching voices before ``X`` (still in listing order). The cursor must
        be a known voice id (it need not match the filters). The page after the last is empty.

        Raises:
            ApiError: 400 for both cursors at once or an unknown cursor id.
        """
        if starting_after is not None and ending_before is not None:
            raise ApiError(400, "give at most one of `starting_after` and `ending_before`")
        with self._lock:
            order = list(self._voices)
            records = dict(self._voices)
        cursor = starting_after if starting_after is not None else ending_before
        if cursor is not None and cursor not in records:
            name = "starting_after" if starting_after is not None else "ending_before"
            raise ApiError(400, f"`{name}`: no voice with id {cursor[:64]!r}")
        if cursor is None:
            window = order
        elif starting_after is not None:
            window = order[order.index(cursor) + 1 :]
        else:
            window = order[: order.index(cursor)]
        matching = [records[i] for i in window if _matches(records[i], **filters)]
        if ending_before is not None:
            data, has_more = matching[-limit:], len(matching) > limit
            next_page = data[0].id if has_more else None
        else:
            data, has_more = matching[:limit], len(matching) > limit
            next_page = data[-1].id if has_more else None
        return VoicePage(tuple(data), has_more, next_page)

    # --- owned voices ----------------------------------------------------------------------

    def add(self, record: VoiceRecord) -> VoiceRecord:
        """Store a new owned voice (its id must be new).

        Raises:
            ApiError: 403 ``voice_limit_reached`` when :attr:`max_owned` voices are stored.
        """
        with self._lock:
            if record.id in self._voices:
                raise ApiError(409, f"a voice with id {record.id!r} already exists")
            if len(self._added) >= self.max_owned:
                # A client looping over clone must not grow the server without bound.
                raise ApiError(
                    403,
                    f"this server keeps at most {self.max_owned} voices of your own: delete some",
                    error_code="voice_limit_reached",
                )
            self._voices[record.id] = record
            self._added.add(record.id)
            self._embeddings = None
        return record

    def new_id(self) -> str:
        """A fresh voice id (a random UUID, like the real service's)."""
        return str(uuid.uuid4())

    def update(self, voice_id: str, **changes: Any) -> VoiceRecord:
        """Change fields of an owned voice.

        Raises:
            ApiError: 404 unknown id, 403 for a catalogue voice.
        """
        with self._lock:
            record = self._owned(voice_id, "update")
            record = dataclasses.replace(record, **changes)
            self._voices[voice_id] = record
        return record

    def delete(self, voice_id: str) -> None:
        """Delete an owned voice.

        Raises:
            ApiError: 404 unknown id, 403 for a catalogue voice.
        """
        with self._lock:
            self._owned(voice_id, "delete")
            del self._voices[voice_id]
            self._added.discard(voice_id)
            self._embeddings = None

    def _owned(self, voice_id: str, action: str) -> VoiceRecord:
        _check_id(voice_id)
        record = self._voices.get(voice_id)
        if record is None and self.any_voice:
            record = _adhoc(voice_id)  # a made-up public voice: as read-only as the catalogue
        if record is None:
            raise _not_found(voice_id)
        if not record.is_owner:
            raise ApiError(
                403,
                f"voice {voice_id[:64]!r} is a catalogue voice: only voices you own "
                f"(cloned or localized) can be changed; cannot {action} it",
            )
        return record


def _not_found(voice_id: str) -> ApiError:
    return ApiError(
        404,
        f"voice {voice_id[:64]!r} not found (start the server with --voices FILE to add your "
        "own voice ids, or --any-voice)",
        title="Voice not found",
        error_code="voice_not_found",
    )


def _check_id(voice_id: Any) -> None:
    if not isinstance(voice_id, str) or not voice_id or len(voice_id) > MAX_ID_CHARS:
        raise ApiError(
            400, f"voice id must be a non-empty string of at most {MAX_ID_CHARS} characters"
        )


def _matches(
    record: VoiceRecord,
    q: Optional[str] = None,
    gender: Optional[str] = None,
    language: Optional[str] = None,
    is_owner: Optional[bool] = None,
) -> bool:
    if is_owner is not None and record.is_owner != is_owner:
        return False
    if gender is not None and record.gender != gender:
        return False
    if language is not None:
        languages = {record.language, record.native_locale.split("-")[0].lower()}
        languages.update(loc.split("-")[0].lower() for loc in record.extra_locales)
        if language not in languages:
            return False
    if q:
        needle = q.lower()
        if not any(needle in text.lower() for text in (record.name, record.description, record.id)):
            return False
    return True


def _adhoc(voice_id: str) -> VoiceRecord:
    """The public voice ``--any-voice`` makes up for an unknown id (not listed)."""
    name = f"Voice {voice_id[:8]}"
    return VoiceRecord(
        id=voice_id,
        name=name,
        description="A voice derived from its id (the server runs with --any-voice).",
        language="en",
        engine=derived_engine_voice(voice_id, voice_id=voice_id, name=name),
    )


#: Application key of the server's :class:`VoiceStore`.
VOICE_STORE_KEY: web.AppKey[VoiceStore] = web.AppKey("cartesia_voice_store", VoiceStore)
