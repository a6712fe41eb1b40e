"""Parse untrusted JSON input (HTTP bodies, websocket messages) into a value or one clear 400."""

from __future__ import annotations

import json
from typing import Any, Union

__all__ = ["JSONInputError", "loads"]


class JSONInputError(ValueError):
    """The input is not JSON the server can take; ``str(exc)`` says why (for a 400)."""


def loads(data: Union[str, bytes, bytearray]) -> Any:
    """``json.loads`` for input from the network.

    Raises:
        JSONInputError: Empty, not UTF-8, not JSON, or nested so deeply that the decoder gives up
            (``[`` × 100,000 raises ``RecursionError`` inside ``json``: that is the sender's fault,
            a 400, never a 500).
    """
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONInputError(f"not valid UTF-8: {exc}") from None
    if not data.strip():
        raise JSONInputError("empty body: expected a JSON object")
    try:
        return json.loads(data)
    except RecursionError:
        raise JSONInputError("JSON nested too deeply") from None
    except ValueError as exc:
        raise JSONInputError(f"not valid JSON: {exc}") from None
