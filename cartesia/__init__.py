"""Python client for the Cartesia text-to-speech API with a compiled streaming core."""

from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:
    from .tts import AsyncCartesiaTTS, CartesiaTTS

__all__ = ["CartesiaTTS", "AsyncCartesiaTTS", "__version__"]


def __getattr__(name: str) -> Any:
    # The clients pull in aiohttp, httpx and websockets; import them only when asked for, so
    # `cartesia.streaming` and the server stay light.
    if name in ("CartesiaTTS", "AsyncCartesiaTTS"):
        from . import tts

        return getattr(tts, name)
    raise AttributeError(f"module 'cartesia' has no attribute {name!r}")
