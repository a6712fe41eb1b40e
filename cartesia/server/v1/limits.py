"""Per-account counters: concurrent generations and open websockets (429 above the limit)."""

from __future__ import annotations

import collections
import threading
from typing import Optional

from .errors import ApiError

__all__ = ["Slots"]


class Slots:
    """Counts what each account holds at once and refuses more than ``limit``.

    Args:
        limit: Most held at once per account; ``None`` = unlimited (still counted).
        what: Name used in the refusal message (``concurrent generations``, ``open websockets``).
        error_code: ``error_code`` of the 429 (2026-03-01 bodies, websocket error frames).
    """

    def __init__(self, limit: Optional[int], what: str, error_code: str) -> None:
        self.limit = limit
        self.what = what
        self.error_code = error_code
        self._lock = threading.Lock()
        self._held: collections.Counter[str] = collections.Counter()

    def acquire(self, account: str) -> None:
        """Take one slot for ``account``.

        Raises:
            ApiError: 429 when the account already holds ``limit`` slots.
        """
        with self._lock:
            if self.limit is not None and self._held[account] >= self.limit:
                raise ApiError(
                    429,
                    f"too many {self.what} for this API key (limit {self.limit}); "
                    "wait for one to finish",
                    title="Concurrency limit reached",
                    error_code=self.error_code,
                )
            self._held[account] += 1

    def release(self, account: str) -> None:
        """Give one slot of ``account`` back."""
        with self._lock:
            if self._held[account] <= 1:
                self._held.pop(account, None)
            else:
                self._held[account] -= 1

    def held(self, account: str) -> int:
        """How many slots ``account`` holds now."""
        with self._lock:
            return self._held[account]
