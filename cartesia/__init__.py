"""Python client for the Cartesia text-to-speech API with a compiled streaming core."""

import logging
from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:
    from ._current.client import AsyncCartesia, Cartesia
    from .tts import AsyncCartesiaTTS, CartesiaTTS

__all__ = ["CartesiaTTS", "AsyncCartesiaTTS", "Cartesia", "AsyncCartesia", "__version__"]
# The official 4.2.0 client's exception names, importable from the package root as there.
_ERRORS = (
    "APIError", "APIStatusError", "APIConnectionError", "APITimeoutError", "BadRequestError",
    "AuthenticationError", "PermissionDeniedError", "NotFoundError", "ConflictError",
    "UnprocessableEntityError", "RateLimitError", "InternalServerError", "CartesiaError",
)
__all__ += list(_ERRORS)

# A library logs, the application decides where it goes: without this, retry lines would reach
# stderr through Python's last-resort handler.
logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    # The clients pull in aiohttp, httpx and websockets; import them only when asked for, so
    # `cartesia.streaming` and the server stay light.
    if name in ("CartesiaTTS", "AsyncCartesiaTTS"):
        from . import tts

        return getattr(tts, name)
    if name in ("Cartesia", "AsyncCartesia"):
        from ._current import client

        return getattr(client, name)
    if name in _ERRORS:
        from . import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'cartesia' has no attribute {name!r}")
