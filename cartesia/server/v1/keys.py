"""Typed request-storage keys (aiohttp >= 3.13 warns about plain string keys; older ones only
know strings)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

__all__ = ["request_key"]

_RequestKey = getattr(web, "RequestKey", None)


def request_key(name: str, kind: type) -> Any:
    """A ``web.RequestKey`` when aiohttp has them, else the plain name."""
    return _RequestKey(name, kind) if _RequestKey else name
