"""Typed request-storage keys (aiohttp >= 3.13 warns about plain string keys; older ones only
know strings)."""

from __future__ import annotations

from typing import Type, TypeVar, cast

from aiohttp import web

__all__ = ["request_key"]

_T = TypeVar("_T")


def request_key(name: str, kind: Type[_T]) -> web.RequestKey[_T]:
    """A ``web.RequestKey`` when aiohttp has them, else the plain name."""
    if hasattr(web, "RequestKey"):
        return web.RequestKey(name, kind)
    # aiohttp < 3.13: a request stores and returns values under the plain name just the same, so
    # it stands in for the key (the type checker sees a newer aiohttp).
    return cast("web.RequestKey[_T]", name)
