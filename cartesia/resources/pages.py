"""Cursor pages of ``voices.list`` (``.data``, ``has_next_page()``, ``next_page()``, iteration across pages)."""

from __future__ import annotations

from typing import Any, AsyncIterator, Awaitable, Callable, Dict, Generic, Iterator, List, Optional, Tuple, TypeVar

__all__ = ["SyncCursorIDPage", "AsyncCursorIDPage"]

T = TypeVar("T")


class _Page(Generic[T]):
    def __init__(self, data: List[T], has_more: Optional[bool], params: Dict[str, Any]) -> None:
        self.data = data
        self.has_more = has_more
        self._params = params

    def has_next_page(self) -> bool:
        """Whether another page may follow.

        Trusts the server's ``has_more`` when it sends one (4.2.0 ignores it and asks until a
        page comes back empty, one request more); an empty page always ends the walk.
        """
        if not self.data:
            return False
        return self.has_more is not False

    def next_page_params(self) -> Dict[str, Any]:
        """The query of the page after this one (raises when there is none)."""
        if not self.has_next_page():
            raise RuntimeError("No next page expected; check `.has_next_page()` first.")
        params = {k: v for k, v in self._params.items() if k != "ending_before"}
        params["starting_after"] = self.data[-1].id  # type: ignore[attr-defined]
        return params


class SyncCursorIDPage(_Page[T]):
    """One page of results; iterating it walks every later page too (as 4.2.0)."""

    def __init__(
        self, data: List[T], has_more: Optional[bool], params: Dict[str, Any], fetch: Callable[..., SyncCursorIDPage[T]]
    ) -> None:
        super().__init__(data, has_more, params)
        self._fetch = fetch

    def get_next_page(self) -> SyncCursorIDPage[T]:
        return self._fetch(**self.next_page_params())

    next_page = get_next_page

    def iter_pages(self) -> Iterator[SyncCursorIDPage[T]]:
        page = self
        while True:
            yield page
            if not page.has_next_page():
                return
            page = page.get_next_page()

    def __iter__(self) -> Iterator[T]:
        for page in self.iter_pages():
            yield from page.data


class AsyncCursorIDPage(_Page[T]):
    """As :class:`SyncCursorIDPage`; ``async for`` walks the later pages."""

    def __init__(
        self,
        data: List[T],
        has_more: Optional[bool],
        params: Dict[str, Any],
        fetch: Callable[..., Awaitable[AsyncCursorIDPage[T]]],
    ) -> None:
        super().__init__(data, has_more, params)
        self._fetch = fetch

    async def get_next_page(self) -> AsyncCursorIDPage[T]:
        return await self._fetch(**self.next_page_params())

    next_page = get_next_page

    async def iter_pages(self) -> AsyncIterator[AsyncCursorIDPage[T]]:
        page = self
        while True:
            yield page
            if not page.has_next_page():
                return
            page = await page.get_next_page()

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.iter_pages():
            for item in page.data:
                yield item


def page_parts(answer: Any) -> Tuple[List[Any], Optional[bool]]:
    """``(data, has_more)`` of a ``/voices`` answer (a bare list from old versions too)."""
    if isinstance(answer, list):
        return answer, False
    data = answer.get("data") or []
    has_more = answer.get("has_more")
    return data, has_more if isinstance(has_more, bool) else None
