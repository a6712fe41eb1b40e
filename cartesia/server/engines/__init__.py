"""Speech engines of the local server: ``speech`` (espeak-ng) and ``tone`` (numpy only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Optional

if TYPE_CHECKING:
    import numpy as np

    from ..voices import Voice

__all__ = ["Engine", "ENGINE_NAMES", "speech_available", "default_engine_name", "create_engine"]

#: Engine names accepted by ``--engine``.
ENGINE_NAMES = ("speech", "tone")
#: Native sample rate of every engine's output (what v0 clients expect).
OUTPUT_RATE = 44100


class Engine:
    """Base class: turns text into float32 mono samples at :data:`OUTPUT_RATE`."""

    name = "base"
    sample_rate = OUTPUT_RATE

    def synthesize(
        self,
        text: str,
        voice: "Voice",
        speed: float = 1.0,
        max_seconds: Optional[float] = None,
    ) -> "np.ndarray":
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

    def stream(
        self,
        text: str,
        voice: "Voice",
        speed: float = 1.0,
        max_seconds: Optional[float] = None,
    ) -> Iterator["np.ndarray"]:
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
