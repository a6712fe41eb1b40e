"""Python client for the Cartesia text-to-speech API with a compiled streaming core."""

import logging
from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:
    from .tts import AsyncCartesiaTTS, CartesiaTTS

__all__ = ["CartesiaTTS", "AsyncCartesiaTTS", "__version__"]

# A library logs, the application decides where it goes: without this, retry lines would reach
# stderr through Python's last-resort handler.
logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    # The clients pull in aiohttp, httpx and websockets; import them only when asked for, so
    # `cartesia.streaming` and the server stay light.
    if name in ("CartesiaTTS", "AsyncCartesiaTTS"):
        from . import tts

        return getattr(tts, name)
    raise AttributeError(f"module 'cartesia' has no attribute {name!r}")
