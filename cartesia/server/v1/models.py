"""The model catalogue of the current API: family names, aliases and dated snapshots."""

from __future__ import annotations

import datetime
import re
from typing import Dict, FrozenSet, Optional

from .errors import ApiError

__all__ = ["MODELS", "DEFAULT_MODEL", "check_model", "model_languages"]

#: Model families the local server speaks with, and the languages each takes (``None`` = all).
MODELS: Dict[str, Optional[FrozenSet[str]]] = {
    "sonic-3.5": None,
    "sonic-3": None,
    "sonic-2": None,
    "sonic-turbo": None,
    "sonic": None,
    "sonic-latest": None,
    "sonic-multilingual": None,
    "sonic-english": frozenset({"en"}),
}
#: What 4.2.0 sends when an app names no model.
DEFAULT_MODEL = "sonic-latest"
# ``<family>-YYYY-MM-DD`` (``sonic-2-2025-03-07``, ``sonic-3-2026-01-12``).
_SNAPSHOT = re.compile(r"^(?P<family>sonic(?:-[a-z0-9.]+)?)-(?P<date>\d{4}-\d{2}-\d{2})$")


def _family(model_id: str) -> Optional[str]:
    if model_id in MODELS:
        return model_id
    match = _SNAPSHOT.match(model_id)
    if match is None or match["family"] not in MODELS or match["family"] == "sonic-latest":
        return None
    try:
        datetime.date.fromisoformat(match["date"])
    except ValueError:
        return None
    return match["family"]


def check_model(model_id: object) -> str:
    """Validate ``model_id`` and return its family.

    Raises:
        ApiError: 400 (``model_not_found``) for a non-string or unknown model.
    """
    if not isinstance(model_id, str) or not model_id:
        raise ApiError(400, "`model_id` must be a non-empty string", error_code="model_not_found")
    family = _family(model_id)
    if family is None:
        raise ApiError(
            400,
            f"invalid model_id {model_id[:64]!r}: known models are {', '.join(MODELS)} "
            "and their dated snapshots such as sonic-2-2025-03-07",
            title="Invalid model",
            error_code="model_not_found",
        )
    return family


def model_languages(family: str) -> Optional[FrozenSet[str]]:
    """Languages ``family`` speaks (``None`` = every supported language)."""
    return MODELS[family]
