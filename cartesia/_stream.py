"""The one place that picks the compiled or the pure-Python streaming core."""

from typing import TYPE_CHECKING

from ._compat import NO_EXTENSIONS, REQUIRE_EXTENSIONS

if TYPE_CHECKING or NO_EXTENSIONS:
    # NOTE: type checkers always take this branch, so they see the pure twin as the typed API.
    from . import _stream_py as _twin

    IMPLEMENTATION = "py"
else:
    try:
        from . import _stream_c as _twin

        IMPLEMENTATION = "c"
    except ImportError:  # pragma: no cover - depends on how the package was built
        if REQUIRE_EXTENSIONS:
            raise
        from . import _stream_py as _twin

        IMPLEMENTATION = "py"

if REQUIRE_EXTENSIONS and IMPLEMENTATION != "c":
    raise ImportError(
        "CARTESIA_REQUIRE_EXTENSIONS is set but the compiled core cannot be used "
        "(CARTESIA_NO_EXTENSIONS is set or this is not CPython)"
    )

AudioBuffer = _twin.AudioBuffer
Message = _twin.Message
PCMRing = _twin.PCMRing
StreamParser = _twin.StreamParser
b64_backend = _twin.b64_backend
parse_message = _twin.parse_message

__all__ = [
    "IMPLEMENTATION",
    "AudioBuffer",
    "Message",
    "PCMRing",
    "StreamParser",
    "b64_backend",
    "parse_message",
]
