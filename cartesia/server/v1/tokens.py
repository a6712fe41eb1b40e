"""Short-lived access tokens (``POST /access-token``): issue, look up, expire."""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from typing import Dict, FrozenSet, Optional

__all__ = ["TOKEN_PREFIX", "MAX_EXPIRES_IN", "DEFAULT_EXPIRES_IN", "GRANTS", "AccessToken", "TokenStore"]

#: Every token starts with this, so a token is never mistaken for an API key (with no keys
#: configured any non-empty key is accepted, and an expired token must still get 401).
TOKEN_PREFIX = "ctk_"
MAX_EXPIRES_IN = 3600
#: Lifetime of a token whose request names no ``expires_in`` (short-lived by design).
DEFAULT_EXPIRES_IN = 60
#: Grants a token may carry.
GRANTS = ("tts", "stt", "agent")
# Tokens remembered at most; the oldest go first (every one of them expires within an hour).
_MAX_TOKENS = 100_000


@dataclasses.dataclass(frozen=True)
class AccessToken:
    """An issued token.

    Attributes:
        grants: The granted capabilities (a subset of :data:`GRANTS`).
        expires_at: ``time.monotonic()`` deadline.
        account: Account of the API key that issued it (limits are shared with that key).
    """

    grants: FrozenSet[str]
    expires_at: float
    account: str

    def expired(self, now: Optional[float] = None) -> bool:
        return (time.monotonic() if now is None else now) >= self.expires_at


class TokenStore:
    """The tokens one server issued (thread-safe; tokens are random, never derived from keys)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: Dict[str, AccessToken] = {}

    def issue(self, grants: FrozenSet[str], expires_in: float, account: str) -> str:
        """A new token with ``grants`` valid for ``expires_in`` seconds."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            self._prune(now)
            self._tokens[token] = AccessToken(frozenset(grants), now + expires_in, account)
        return token

    def get(self, token: str) -> Optional[AccessToken]:
        """The token's record (possibly expired), or ``None`` if this server never issued it."""
        with self._lock:
            return self._tokens.get(token)

    def _prune(self, now: float) -> None:
        # Expired tokens are kept an extra minute so they still answer "expired", not "invalid".
        dead = [t for t, rec in self._tokens.items() if rec.expires_at + 60 < now]
        for t in dead:
            del self._tokens[t]
        while len(self._tokens) >= _MAX_TOKENS:
            del self._tokens[next(iter(self._tokens))]
