"""Voice objects under 4.2.0's names (``Voice``, ``VoiceMetadata``, ``VoiceLocale``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Type

from ._model import Model, ModelT

__all__ = ["VoiceLocale", "Voice", "VoiceMetadata"]


def _when(value: Any) -> Any:
    # 4.2.0 parses created_at into a datetime; keep the text when it is not ISO 8601.
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value


class VoiceLocale(Model):
    """One locale a voice speaks (``is_native`` for its own)."""

    __slots__ = ("locale", "is_native")
    FIELDS = ("locale", "is_native")


class _VoiceBase(Model):
    __slots__ = ()

    @classmethod
    def from_dict(cls: Type[ModelT], data: Mapping[str, Any]) -> ModelT:
        voice = super().from_dict(data)
        object.__setattr__(voice, "created_at", _when(voice.created_at))
        return voice

    def to_dict(self) -> Any:
        out = super().to_dict()
        if isinstance(out.get("created_at"), datetime):
            out["created_at"] = out["created_at"].isoformat()
        return out


class Voice(_VoiceBase):
    """A voice (``GET /voices``, ``GET /voices/{id}``, update, localize)."""

    __slots__ = (
        "id", "access", "created_at", "description", "is_owner", "language", "locales", "name",
        "tagline", "visibility", "accent", "country", "gender", "preview_file_url",
    )
    FIELDS = __slots__
    NESTED = {"locales": VoiceLocale}


class VoiceMetadata(_VoiceBase):
    """What ``clone`` returns."""

    __slots__ = (
        "id", "access", "created_at", "description", "language", "name", "tagline", "user_id",
        "visibility", "accent", "country", "gender",
    )
    FIELDS = __slots__
