"""The voice catalogue: named voices, deterministic embeddings, nearest and derived voices."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import uuid
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "EMBEDDING_SIZE",
    "Voice",
    "CATALOGUE",
    "VOICES_BY_ID",
    "embedding_from_bytes",
    "voice_for_embedding",
    "check_embedding",
    "speaking",
]

#: Length of a v0 voice embedding.
EMBEDDING_SIZE = 192
# Stable namespace so voice ids never change between releases.
_NAMESPACE = uuid.UUID("6c1f52f0-1f7e-4a51-9a5c-c0a7e5a1a000")
# Cosine similarity above which an embedding is taken to *be* a catalogue voice.
_SAME_VOICE = 0.995
_ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m7", "klatt4", "f1", "f2", "f3", "f4", "f5")


@dataclasses.dataclass(frozen=True)
class Voice:
    """A voice the engines can speak with.

    Attributes:
        id: Voice id (a UUID string for catalogue voices, ``derived-<hash>`` for others).
        name: Display name.
        description: One-line description.
        embedding: The 192-float embedding (a tuple, so the voice is hashable).
        espeak: espeak-ng voice spec for the speech engine (``en-us+f3``).
        pitch: espeak pitch, 0-100.
        rate: espeak speaking rate in words per minute.
        f0: Base frequency in Hz for the tone engine.
        brightness: 0..1, weight of upper harmonics in the tone engine.
    """

    id: str
    name: str
    description: str
    embedding: Tuple[float, ...]
    espeak: str
    pitch: int
    rate: int
    f0: float
    brightness: float

    @property
    def key(self) -> str:
        """A short stable key for caches and fingerprints."""
        return self.id

    def metadata(self, *, embedding_style: str = "list") -> Dict[str, Any]:
        """The voice object of ``GET /voices``.

        Args:
            embedding_style: ``list`` (a JSON array) or ``string`` (a JSON-encoded string of the
                array, the way the v0 API served it and cartesia 0.0.5 expects it).
        """
        emb: Union[List[float], str] = list(self.embedding)
        if embedding_style == "string":
            emb = "[" + ", ".join(repr(x) for x in self.embedding) + "]"
        return {
            "id": self.id,
            "user_id": None,
            "name": self.name,
            "description": self.description,
            "embedding": emb,
            "created_at": "2024-04-01T00:00:00Z",
        }


def _unit_vector(seed_bytes: bytes) -> Tuple[float, ...]:
    """A deterministic unit vector of 192 floats (rounded so JSON round-trips exactly)."""
    seed = int.from_bytes(hashlib.sha256(seed_bytes).digest()[:8], "little")
    vec = np.random.default_rng(seed).standard_normal(EMBEDDING_SIZE)
    vec /= np.linalg.norm(vec)
    return tuple(round(float(x), 6) for x in vec)


def embedding_from_bytes(data: bytes, *, salt: bytes = b"clone") -> List[float]:
    """A deterministic embedding derived from arbitrary input (a clip's bytes, a link).

    The same input always gives the same embedding; different inputs give unrelated ones.
    """
    return list(_unit_vector(salt + b"\0" + data))


def _catalogue_voice(
    name: str, description: str, espeak: str, pitch: int, rate: int, f0: float, brightness: float
) -> Voice:
    return Voice(
        id=str(uuid.uuid5(_NAMESPACE, name)),
        name=name,
        description=description,
        embedding=_unit_vector(b"voice:" + name.encode()),
        espeak=espeak,
        pitch=pitch,
        rate=rate,
        f0=f0,
        brightness=brightness,
    )


#: The named voices every server offers (order is the order of ``GET /voices``).
CATALOGUE: Tuple[Voice, ...] = tuple(
    _catalogue_voice(*row)
    for row in (
        # name, description, espeak voice, espeak pitch, rate (wpm), tone f0 (Hz), brightness
        ("Milo", "A calm American male voice.", "en-us", 45, 170, 110.0, 0.45),
        ("Graham", "A deep, measured British male voice.", "en-gb-x-rp+m3", 22, 160, 92.0, 0.35),
        ("Olivia", "A bright American female voice.", "en-us+f3", 55, 175, 210.0, 0.6),
        ("Nora", "A warm, slow female narrator.", "en-us+f2", 45, 150, 190.0, 0.4),
        ("Theo", "A brisk, energetic male announcer.", "en-us+m7", 60, 200, 130.0, 0.7),
        ("Iris", "A soft, breathy female voice.", "en-us+f4", 70, 165, 240.0, 0.3),
        ("Ezra", "A low, gravelly male voice.", "en-us+klatt4", 20, 155, 82.0, 0.55),
        ("Luna", "A high, lively female voice.", "en-us+f5", 80, 185, 260.0, 0.8),
        ("Sage", "A neutral Scottish-accented voice.", "en-gb-scotland+m2", 70, 165, 145.0, 0.5),
        ("Reed", "A whispering voice for quiet scenes.", "en-us+whisper", 50, 160, 120.0, 0.9),
    )
)
#: Catalogue voices by id.
VOICES_BY_ID: Dict[str, Voice] = {v.id: v for v in CATALOGUE}
VOICES_BY_NAME: Dict[str, Voice] = {v.name.lower(): v for v in CATALOGUE}
_MATRIX = np.array([v.embedding for v in CATALOGUE], dtype=np.float64)
_MATRIX /= np.linalg.norm(_MATRIX, axis=1, keepdims=True)


def lookup(voice_id: str) -> Optional[Voice]:
    """The catalogue voice with this id (or, as a convenience, this name), else ``None``."""
    return VOICES_BY_ID.get(voice_id) or VOICES_BY_NAME.get(voice_id.lower())


def voice_for_embedding(embedding: Sequence[float]) -> Voice:
    """The voice that speaks an embedding.

    A catalogue voice when the embedding is (nearly) one of theirs; otherwise a *derived* voice
    whose parameters come deterministically from the embedding, so cloned voices speak too.

    Args:
        embedding: 192 finite floats (validated by the caller).
    """
    vec = np.asarray(embedding, dtype=np.float64)
    norm = float(np.linalg.norm(vec))
    if norm > 0:
        sims = _MATRIX @ (vec / norm)
        best = int(np.argmax(sims))
        if sims[best] >= _SAME_VOICE:
            return CATALOGUE[best]
    # Round before hashing so float noise from JSON round trips cannot change the voice.
    digest = hashlib.sha256(np.round(vec, 4).astype("<f8").tobytes()).digest()
    pick = digest[0] % len(_ESPEAK_VARIANTS)
    variant = _ESPEAK_VARIANTS[pick]
    female = variant.startswith("f")
    return Voice(
        id="derived-" + digest[:8].hex(),
        name="Derived " + digest[:3].hex(),
        description="A voice derived from a custom embedding.",
        embedding=tuple(float(x) for x in vec),
        espeak="en-us+" + variant,
        pitch=25 + digest[1] % 55,
        rate=150 + digest[2] % 50,
        f0=(170.0 if female else 95.0) * math.pow(2.0, (digest[3] % 12) / 12.0),
        brightness=0.2 + (digest[4] % 70) / 100.0,
    )


def check_embedding(value: Any, field: str = "embedding") -> List[float]:
    """``value`` as an embedding: exactly 192 finite numbers.

    Raises:
        ValueError: Naming ``field`` and what is wrong.
    """
    if not isinstance(value, list):
        raise ValueError(f"`{field}` must be a list of {EMBEDDING_SIZE} numbers")
    if len(value) != EMBEDDING_SIZE:
        raise ValueError(f"`{field}` must have {EMBEDDING_SIZE} numbers, got {len(value)}")
    for x in value:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            raise ValueError(f"`{field}` must contain only finite numbers")
    return [float(x) for x in value]


def speaking(voice: Voice, language: str) -> Voice:
    """``voice`` speaking ``language`` by default: the same variant, pitch and rate with the
    language's espeak-ng voice (the engines' own rule, ``engines.speech.espeak_voice``).

    Unchanged for English (a voice keeps its accent) and for languages the engines do not speak.
    """
    from .engines import LANGUAGES
    from .engines.speech import espeak_voice

    if language not in LANGUAGES:
        return voice
    return dataclasses.replace(voice, espeak=espeak_voice(voice, language))
