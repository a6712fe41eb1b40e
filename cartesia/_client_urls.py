"""Endpoint URLs for the v0 API and scrubbing of the API key out of text, reprs and logs."""

import logging
import re
from typing import Optional, Tuple

__all__ = ["Endpoints", "redact", "RedactingFilter", "REDACTED"]

REDACTED = "***"

# Query parameters that carry credentials (the v0 websocket puts the key in `api_key`).
_SECRET_QUERY = re.compile(r"((?:api_key|access_token)=)[^&\s'\"#]+", re.IGNORECASE)
# Header dumps such as "X-API-Key: abc" or "{'X-API-Key': 'abc'}".
_SECRET_HEADER = re.compile(
    r"((?:x-api-key|authorization)['\"]?\s*[:=]\s*['\"]?(?:bearer\s+)?)[^'\"\s,}]+", re.IGNORECASE
)


def redact(text: str, secret: Optional[str] = None) -> str:
    """Return ``text`` with the API key and any credential-looking fields replaced by ``***``.

    Args:
        text: Any text that may end up in an exception message, a repr or a log line.
        secret: The key to remove wherever it appears, even outside a recognised field.
    """
    if not text:
        return text
    if secret:
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


def _split_base(base_url: str) -> Tuple[Optional[str], str]:
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)$", base_url)
    if match:
        return match.group(1).lower(), match.group(2).rstrip("/")
    return None, base_url.rstrip("/")


class Endpoints:
    """The HTTP and websocket roots of one API host and version.

    A bare host (the 0.0.5 form, e.g. ``api.cartesia.ai``) gets ``https``/``wss`` unless it
    contains ``localhost``, which gets plain ``http``/``ws`` exactly like 0.0.5. A base URL with an
    explicit scheme (``http://127.0.0.1:8000``) is honoured as given, so a local server can be
    reached on any loopback address.
    """

    def __init__(self, base_url: str, api_version: str) -> None:
        scheme, host = _split_base(base_url)
        if scheme is None:
            secure = "localhost" not in host
            http_scheme, ws_scheme = ("https", "wss") if secure else ("http", "ws")
        elif scheme in ("http", "ws"):
            http_scheme, ws_scheme = "http", "ws"
        elif scheme in ("https", "wss"):
            http_scheme, ws_scheme = "https", "wss"
        else:
            raise ValueError(f"Unsupported URL scheme in base URL: {scheme!r}")
        suffix = f"/{api_version}" if api_version else ""
        self.http = f"{http_scheme}://{host}{suffix}"
        self.ws = f"{ws_scheme}://{host}{suffix}"

    def websocket(self, experimental: bool) -> str:
        """URL of the generation websocket (without credentials)."""
        route = "experimental/audio/websocket" if experimental else "audio/websocket"
        return f"{self.ws}/{route}"

    def __repr__(self) -> str:
        return f"Endpoints(http={self.http!r}, ws={self.ws!r})"
