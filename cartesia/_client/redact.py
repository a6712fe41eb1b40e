"""Scrubbing of the API key out of text, reprs and log records (only where a key is a key)."""

from __future__ import annotations

import logging
import re
from typing import Optional

__all__ = ["redact", "RedactingFilter", "REDACTED", "MIN_SECRET_CHARS"]

REDACTED = "***"
#: A string shorter than this is not treated as a key outside a recognised field: replacing
#: every "any" or "man" of a message would garble it, and a key that short is no secret.
MIN_SECRET_CHARS = 8

# Query parameters that carry credentials (the v0 websocket puts the key in `api_key`).
_SECRET_QUERY = re.compile(r"((?:api_key|access_token)=)[^&\s'\"#]+", re.IGNORECASE)
# Header dumps such as "X-API-Key: abc" or "{'X-API-Key': 'abc'}".
_SECRET_HEADER = re.compile(
    r"((?:x-api-key|authorization)['\"]?\s*[:=]\s*['\"]?(?:bearer\s+)?)[^'\"\s,}]+", re.IGNORECASE
)


def redact(text: str, secret: Optional[str] = None) -> str:
    """Return ``text`` with credentials replaced by ``***``.

    Args:
        text: Any text that may end up in an exception message, a repr or a log line.
        secret: The key; replaced wherever it appears when it is long enough to be a key
            (``MIN_SECRET_CHARS``); in URL queries and header dumps it is replaced whatever it is.
    """
    if not text:
        return text
    if secret and len(secret) >= MIN_SECRET_CHARS:
        text = text.replace(secret, REDACTED)
    text = _SECRET_QUERY.sub(r"\1" + REDACTED, text)
    return _SECRET_HEADER.sub(r"\1" + REDACTED, text)


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs credentials from records before any handler sees them.

    Attached to the loggers we hand to websockets, whose debug output prints the request line
    (and therefore the ``?api_key=`` query of the v0 websocket URL).
    """

    def __init__(self, secret: Optional[str] = None) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not ours to fix
            return True
        cleaned = redact(message, self.secret)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
