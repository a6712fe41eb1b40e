"""The built-in voice catalogue of the current API: voice records and how each one speaks."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Optional, Tuple

from .. import voices as voices_mod
from ..voices import Voice

__all__ = [
    "GENDERS",
    "VoiceRecord",
    "BUILTIN_VOICES",
    "derived_engine_voice",
    "gender_from_text",
]

#: ``gender`` values of the current API (``GenderPresentation`` in 4.2.0).
GENDERS: Tuple[str, ...] = ("masculine", "feminine", "gender_neutral")
# The same namespace as the v0 catalogue, so local voice ids are stable across releases.
_NAMESPACE = uuid.UUID("6c1f52f0-1f7e-4a51-9a5c-c0a7e5a1a000")
_CATALOGUE_CREATED = "2025-06-02T00:00:00Z"


@dataclasses.dataclass(frozen=True)
class VoiceRecord:
    """One voice of the current API: its metadata and the engine voice that speaks it.

    Attributes:
        id: Voice id (a UUID string for built-in and cloned voices; any string for ``--voices``).
        name: Display name (without the tagline).
        description: One-line description.
        language: ISO 639-1 code of the voice's native language (``en``).
        engine: The engine voice (:class:`cartesia.server.voices.Voice`) that speaks it.
        gender: ``masculine``, ``feminine``, ``gender_neutral`` or ``None``.
        tagline: A few words (at most 32 characters); ``""`` when unset.
        locale: BCP-47 tag of the native locale (``en-US``).
        country: ISO 3166-1 alpha-2 country code, if known.
        accent: Accent id such as ``general-american``, if known.
        created_at: ISO 8601 creation time.
        is_owner: Owned voices (cloned, localized, ``POST /voices``) may be edited and deleted;
            catalogue voices may not.
        base_voice_id: The voice a clone or localization was derived from.
        extra_locales: Cross-lingual locales after the native one.
    """

    id: str
    name: str
    description: str
    language: str
    engine: Voice
    gender: Optional[str] = None
    tagline: str = ""
    locale: Optional[str] = None
    country: Optional[str] = None
    accent: Optional[str] = None
    created_at: str = _CATALOGUE_CREATED
    is_owner: bool = False
    base_voice_id: Optional[str] = None
    extra_locales: Tuple[str, ...] = ()

    @property
    def access(self) -> str:
        """``private`` for owned voices, ``public`` for the catalogue."""
        return "private" if self.is_owner else "public"

    @property
    def visibility(self) -> str:
        """``owner`` for owned voices, ``all`` for the catalogue."""
        return "owner" if self.is_owner else "all"

    @property
    def native_locale(self) -> str:
        """The native locale: :attr:`locale`, else built from language and country."""
        if self.locale:
            return self.locale
        return f"{self.language}-{self.country}" if self.country else self.language


def derived_engine_voice(
    seed: str, *, voice_id: Optional[str] = None, name: str = "", language: str = "en"
) -> Voice:
    """An engine voice derived deterministically from ``seed`` (a voice id or a clip digest).

    The same seed always speaks the same way; different seeds give unrelated voices (the v0
    rule for custom embeddings, applied to an embedding made from the seed).

    Args:
        seed: What the voice is derived from.
        voice_id: Id to give the engine voice (its cache key); default: the derived one.
        name: Display name for the engine voice.
        language: The voice's language: the speech engine speaks it with an espeak-ng voice of
            that language (same variant and pitch).
    """
    embedding = voices_mod.embedding_from_bytes(seed.encode("utf-8"), salt=b"voice-id")
    voice = voices_mod.speaking(voices_mod.voice_for_embedding(embedding), language)
    if voice_id is not None:
        voice = dataclasses.replace(voice, id=voice_id)
    if name:
        voice = dataclasses.replace(voice, name=name)
    return voice


def gender_from_text(text: str) -> Optional[str]:
    """``masculine``/``feminine`` when a description says male/female, else ``None``."""
    words = set(text.lower().replace(",", " ").replace(".", " ").split())
    if "female" in words:
        return "feminine"
    if "male" in words:
        return "masculine"
    return None


def _engine(
    voice_id: str, name: str, espeak: str, pitch: int, rate: int, f0: float, bright: float
) -> Voice:
    return Voice(
        id=voice_id,
        name=name,
        description="",
        # An embedding derived from the id, so old versions can list and mix these voices too.
        embedding=tuple(voices_mod.embedding_from_bytes(voice_id.encode(), salt=b"catalogue")),
        espeak=espeak,
        pitch=pitch,
        rate=rate,
        f0=f0,
        brightness=bright,
    )


def _record(
    voice_id: Optional[str],
    name: str,
    tagline: str,
    description: str,
    gender: str,
    locale: str,
    accent: Optional[str],
    engine: Tuple[str, int, int, float, float],
) -> VoiceRecord:
    voice_id = voice_id or str(uuid.uuid5(_NAMESPACE, "current:" + name))
    language, _, country = locale.partition("-")
    return VoiceRecord(
        id=voice_id,
        name=name,
        description=description,
        language=language,
        engine=_engine(voice_id, name, *engine),
        gender=gender,
        tagline=tagline,
        locale=locale,
        country=country or None,
        accent=accent,
    )


def _from_v0(voice: Voice) -> VoiceRecord:
    """A v0 catalogue voice as a current voice record (same id, same sound)."""
    scottish = "scotland" in voice.espeak
    british = voice.espeak.startswith("en-gb")
    return VoiceRecord(
        id=voice.id,
        name=voice.name,
        description=voice.description,
        language="en",
        engine=voice,
        gender=gender_from_text(voice.description) or "gender_neutral",
        tagline=voice.description.rstrip(".")[:32],
        locale="en-GB" if british else "en-US",
        country="GB" if british else "US",
        accent=None if scottish else ("british" if british else "general-american"),
        created_at="2024-04-01T00:00:00Z",
    )


# Ids of production voices that official examples and apps hard-code (4.2.0's examples use
# Tessa; its README uses Brooke), so those apps run unchanged. Each speaks with its own
# engine parameters: espeak voice, pitch, rate (speech engine); f0 and brightness (tone).
# fmt: off
_PRODUCTION = (
    # id, name, tagline, description, gender, locale, accent, (espeak, pitch, rate, f0, bright)
    ("6ccbfb76-1fc6-48f7-b71d-91ac6298247b", "Tessa", "Warm, emotive",
     "A warm, emotive female voice for conversations.",
     "feminine", "en-US", "general-american", ("en-us+f1", 58, 172, 200.0, 0.55)),
    ("e07c00bc-4134-4eae-9ea4-1a55fb45746b", "Brooke", "Big sister",
     "A friendly, confident female voice.",
     "feminine", "en-US", "general-american", ("en-us+f3", 66, 180, 226.0, 0.66)),
    ("a167e0f3-df7e-4d52-a9c3-f949145efdab", "Blake", "Helpful agent",
     "An even, helpful male voice for support lines.",
     "masculine", "en-US", "general-american", ("en-us+m1", 40, 175, 118.0, 0.5)),
    ("f9836c6e-a0bd-460e-9d3c-f7299fa60f94", "Caroline", "Southern guide",
     "A gentle female voice with a Southern lilt.",
     "feminine", "en-US", "southern-us", ("en-us+f4", 52, 158, 196.0, 0.46)),
    ("e8e5fffb-252c-436d-b842-8879b84445b6", "Cathy", "Coworker",
     "A casual, upbeat female voice.",
     "feminine", "en-US", "general-american", ("en-us+f5", 60, 178, 216.0, 0.52)),
    ("9626c31c-bec5-4cca-baa8-f8ba9e84c8bc", "Jacqueline", "Reassuring agent",
     "A calm, reassuring female voice.",
     "feminine", "en-US", "general-american", ("en-us+f2", 50, 162, 186.0, 0.36)),
    ("f786b574-daa5-4673-aa0c-cbe3e8534c02", "Katie", "Friendly fixer",
     "A bright, quick female voice.",
     "feminine", "en-US", "general-american", ("en-us+f1", 74, 186, 236.0, 0.72)),
    ("5ee9feff-1265-424a-9d7f-8e4d431a12c7", "Ronald", "Thinker",
     "A thoughtful, low male voice.",
     "masculine", "en-US", "general-american", ("en-us+m3", 30, 150, 100.0, 0.42)),
    ("79f8b5fb-2cc8-479a-80df-29f7a7cf1a3e", "Theo", "Modern narrator",
     "A modern male narrator.",
     "masculine", "en-US", "general-american", ("en-us+m2", 46, 166, 126.0, 0.62)),
    ("cbaf8084-f009-4838-a096-07ee2e6612b1", "Maya", "Easygoing, emotive",
     "An easygoing, emotive female voice.",
     "feminine", "en-US", "general-american", ("en-us+f3", 48, 168, 206.0, 0.43)),
    ("829ccd10-f8b3-43cd-b8a0-4aeaa81f3b30", "Linda", "Conversational guide",
     "A clear, conversational female voice.",
     "feminine", "en-US", "general-american", ("en-us+f4", 63, 176, 221.0, 0.58)),
    # Local voices in other languages (ids from the local namespace): real multilingual speech.
    (None, "Camille", "Parisian storyteller",
     "A soft French female voice.",
     "feminine", "fr-FR", "parisian", ("fr+f2", 55, 165, 192.0, 0.48)),
    (None, "Lukas", "Steady explainer",
     "A steady German male voice.",
     "masculine", "de-DE", "high-german", ("de+m3", 38, 160, 112.0, 0.44)),
    (None, "Lucia", "Lively host",
     "A lively Spanish female voice.",
     "feminine", "es-ES", "castilian", ("es+f3", 64, 178, 212.0, 0.6)),
    (None, "Marco", "Warm baritone",
     "A warm Italian male voice.",
     "masculine", "it-IT", "italian", ("it+m2", 34, 158, 104.0, 0.5)),
    (None, "Beatriz", "Clear presenter",
     "A clear Brazilian Portuguese female voice.",
     "feminine", "pt-BR", "brazilian-portuguese", ("pt-br+f1", 60, 170, 202.0, 0.54)),
)
# fmt: on

#: Every built-in voice, in listing order: production ids first, then the v0 catalogue.
BUILTIN_VOICES: Tuple[VoiceRecord, ...] = tuple(_record(*row) for row in _PRODUCTION) + tuple(
    _from_v0(v) for v in voices_mod.CATALOGUE
)
