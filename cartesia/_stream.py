"""The one place that picks the compiled or the pure-Python streaming core."""

from typing import TYPE_CHECKING

from ._compat import NO_EXTENSIONS, REQUIRE_EXTENSIONS

if TYPE_CHECKING or NO_EXTENSIONS:
    # NOTE: type checkers always see the pure twin, so it is the typed API.
    from ._stream_py import AudioBuffer, Message, PCMRing, StreamParser, parse_message

    IMPLEMENTATION = "py"
else:
    try:
        from ._stream_c import AudioBuffer, Message, PCMRing, StreamParser, parse_message

        IMPLEMENTATION = "c"
    except ImportError:  # pragma: no cover - depends on how the package was built
        if REQUIRE_EXTENSIONS:
            raise
        from ._stream_py import AudioBuffer, Message, PCMRing, StreamParser, parse_message

        IMPLEMENTATION = "py"

if REQUIRE_EXTENSIONS and IMPLEMENTATION != "c":
    raise ImportError(
        "CARTESIA_REQUIRE_EXTENSIONS is set but the compiled core cannot be used "
        "(CARTESIA_NO_EXTENSIONS is set or this is not CPython)"
    )

__all__ = ["IMPLEMENTATION", "AudioBuffer", "Message", "PCMRing", "StreamParser", "parse_message"]
