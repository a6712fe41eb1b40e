"""Speech engines of the local server: ``speech`` (espeak-ng) and ``tone`` (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional, Sequence, Tuple, Union

if TYPE_CHECKING:
    import numpy as np

    from ..voices import Voice

__all__ = [
    "Engine",
    "Rendering",
    "ENGINE_NAMES",
    "LANGUAGES",
    "emotion_shift",
    "speech_available",
    "default_engine_name",
    "create_engine",
]

#: Engine names accepted by ``--engine``.
ENGINE_NAMES = ("speech", "tone")
#: Native sample rate of every engine's output (what v0 clients expect).
OUTPUT_RATE = 44100


#: ISO 639-1 codes the engines speak, with the espeak-ng voice (in ``espeakng-loader``'s data)
#: that speaks each: every one is a real espeak-ng language, checked by the test suite.
LANGUAGES: Dict[str, str] = {
    "en": "en-us",
    "fr": "fr",
    "de": "de",
    "es": "es",
    "pt": "pt-br",
    "it": "it",
    "nl": "nl",
    "pl": "pl",
    "ru": "ru",
    "sv": "sv",
    "tr": "tr",
    "ja": "ja",
    "zh": "cmn",
    "ko": "ko",
    "hi": "hi",
    "ar": "ar",
    "bg": "bg",
    "cs": "cs",
    "da": "da",
    "el": "el",
    "fi": "fi",
    "he": "he",
    "hr": "hr",
    "hu": "hu",
    "id": "id",
    "ms": "ms",
    "no": "nb",
    "ro": "ro",
    "sk": "sk",
    "uk": "uk",
    "vi": "vi",
    "bn": "bn",
    "ta": "ta",
    "te": "te",
    "ka": "ka",
    "gu": "gu",
    "kn": "kn",
    "ml": "ml",
    "mr": "mr",
    "pa": "pa",
}

# Emotion -> (pitch shift in espeak pitch units of 0..100, pitch range shift). Small on purpose:
# the engines have no emotional prosody, so an emotion only lifts or lowers the voice a little.
_EMOTION_GROUPS: Tuple[Tuple[Tuple[int, int], str], ...] = (
    (
        (8, 20),
        "happy excited enthusiastic elated euphoric triumphant amazed surprised flirtatious "
        "curious positivity surprise curiosity",
    ),
    (
        (3, 25),
        "angry mad outraged frustrated agitated threatened disgusted contempt envious sarcastic ironic anger",
    ),
    ((10, 10), "anxious panicked alarmed scared hesitant insecure confused"),
    (
        (-8, -20),
        "sad dejected melancholic disappointed hurt guilty bored tired rejected nostalgic "
        "wistful apologetic resigned sadness",
    ),
    (
        (-3, -10),
        "content peaceful serene calm grateful affectionate trust sympathetic distant "
        "contemplative skeptical mysterious",
    ),
    ((4, 10), "proud confident determined anticipation"),
)
_EMOTIONS = {name: shift for shift, names in _EMOTION_GROUPS for name in names.split()}
# Intensity suffixes of the legacy ``"anger:high"`` form.
_INTENSITY = {"lowest": 0.25, "low": 0.5, "": 1.0, "high": 1.5, "highest": 2.0}


def emotion_shift(emotion: Union[str, Sequence[str], None]) -> Tuple[int, int]:
    """``(pitch, range)`` offsets (espeak units) for a list of emotions.

    Accepts current names (``"happy"``) and the legacy ``"name:intensity"`` form; names
    without a mapping (``"neutral"``, unknown ones) have no effect.
    """
    if isinstance(emotion, str):
        emotion = [emotion]
    pitch = rng = 0.0
    for item in emotion or ():
        name, _, level = str(item).lower().partition(":")
        p, r = _EMOTIONS.get(name.strip(), (0, 0))
        k = _INTENSITY.get(level.strip(), 1.0)
        pitch += p * k
        rng += r * k
    return int(round(max(-20.0, min(20.0, pitch)))), int(round(max(-40.0, min(40.0, rng))))


@dataclass
class Rendering:
    """One synthesis with the engine's own timing.

    Attributes:
        samples: float32 mono at the engine's rate.
        words: ``(text_index, sample_start, sample_end)`` per spoken word, where
            ``text_index`` is where the word starts in the text.
        phonemes: ``(phoneme, sample_start, sample_end)``, IPA for the speech engine.
    """

    samples: np.ndarray
    words: List[Tuple[int, int, int]] = field(default_factory=list)
    phonemes: List[Tuple[str, int, int]] = field(default_factory=list)


class Engine:
    """Base class: turns text into float32 mono samples at :data:`OUTPUT_RATE`."""

    name = "base"
    sample_rate = OUTPUT_RATE

    def synthesize(
        self,
        text: str,
        voice: Voice,
        speed: float = 1.0,
        max_seconds: Optional[float] = None,
    ) -> np.ndarray:
        """Render ``text`` in ``voice``.

        Args:
            text: The transcript (non-empty).
            voice: Catalogue or derived voice.
            speed: Speaking-speed factor (1.0 = the voice's own rate).
            max_seconds: Audio beyond this is not needed: engines may stop early (the caller
                trims the rest), so a huge transcript cannot use unbounded memory.

        Returns:
            1-D float32 array in -1..1 at :attr:`sample_rate`.
        """
        raise NotImplementedError

    def render(
        self,
        text: str,
        voice: Voice,
        *,
        language: Optional[str] = None,
        speed: float = 1.0,
        emotion: Optional[Sequence[str]] = None,
        max_seconds: Optional[float] = None,
        timestamps: bool = False,
    ) -> Rendering:
        """Render with the current API's controls (same audio as :meth:`synthesize` when the
        extra controls are left at their defaults).

        Args:
            text: The transcript (non-empty).
            voice: Catalogue or derived voice.
            language: A key of :data:`LANGUAGES` (``None`` = the voice's own language).
            speed: Speaking-speed factor.
            emotion: Emotion names (see :func:`emotion_shift`).
            max_seconds: As for :meth:`synthesize`.
            timestamps: Collect word and phoneme timing.
        """
        return Rendering(self.synthesize(text, voice, speed, max_seconds))

    def stream(
        self,
        text: str,
        voice: Voice,
        speed: float = 1.0,
        max_seconds: Optional[float] = None,
    ) -> Iterator[np.ndarray]:
        """The samples of :meth:`synthesize`, in consecutive pieces rendered as they are pulled.

        The server pulls a bounded look-ahead of a generation at a time, so an engine that
        renders incrementally keeps a long generation's memory small. This default renders
        everything at once and yields it as one piece.
        """
        yield self.synthesize(text, voice, speed, max_seconds)


def speech_available() -> bool:
    """Whether the optional espeak-ng wheel (``espeakng-loader``) can be imported."""
    try:
        import espeakng_loader  # noqa: F401
    except ImportError:
        return False
    return True


def default_engine_name() -> str:
    """``speech`` when espeak-ng is installed, else ``tone``."""
    return "speech" if speech_available() else "tone"


def create_engine(name: Optional[str] = None) -> Engine:
    """Build the engine called ``name`` (``None`` = :func:`default_engine_name`).

    Raises:
        ValueError: Unknown engine name.
        RuntimeError: ``speech`` was asked for but espeak-ng cannot be loaded.
    """
    name = name or default_engine_name()
    if name == "tone":
        from .tone import ToneEngine

        return ToneEngine()
    if name == "speech":
        if not speech_available():
            raise RuntimeError(
                "the speech engine needs espeak-ng from the espeakng-loader package: "
                "pip install 'cartesia[speech]' (or use the tone engine)"
            )
        from .speech import SpeechEngine

        return SpeechEngine()
    raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}")
