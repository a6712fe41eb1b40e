"""Reading an aiohttp response body cheaply: everything buffered per read, one lazy timer for its waits."""

from __future__ import annotations

import asyncio
from typing import Callable, Optional

import aiohttp

__all__ = ["BodyReader", "own_read_timer"]

# Seconds early a due timer may fire and still count as due (the loop's clock resolution).
_SLACK = 1e-3


def own_read_timer(response: aiohttp.ClientResponse) -> None:
    """Switch off aiohttp's read timer of ``response``'s connection (the body keeps its own).

    aiohttp re-arms that timer on every piece that arrives (a timer cancelled and scheduled
    per socket read: ~10 % of the client's CPU on a streamed body). Without these attributes
    (another aiohttp) its timer stays: the same limit, at aiohttp's cost.
    """
    connection = response.connection
    protocol = connection.protocol if connection is not None else None
    if protocol is not None and hasattr(protocol, "_read_timeout") and hasattr(protocol, "_reschedule_timeout"):
        protocol._read_timeout = None  # noqa: SLF001
        protocol._reschedule_timeout()  # noqa: SLF001 - cancels the armed one


class BodyReader:
    """The body of an aiohttp response, read as it arrives.

    ``read`` returns what arrived without a wait when there is some (no timer, no task switch).
    Only a wait on an empty buffer is bounded, by the limit ``wait_limit()`` gives when that
    wait begins (None: no limit), and one lazy timer checks it instead of a timer per wait: a
    wait notes when it must end, and the timer, when due, fails the body with
    ``aiohttp.ServerTimeoutError`` only if a wait has passed its end (else it is set again for
    that wait's end). A timer set for later than a new wait's end is set earlier.

    Args:
        response: The response whose body is read.
        wait_limit: Seconds the wait starting now may last, asked only when a read must wait.
    """

    __slots__ = ("_content", "_response", "_wait_limit", "_loop", "_end", "_timer", "_timer_at")

    def __init__(
        self, response: aiohttp.ClientResponse, wait_limit: Callable[[], Optional[float]]
    ) -> None:
        self._response = response
        self._content = response.content
        self._wait_limit = wait_limit
        self._loop = asyncio.get_running_loop()
        self._end: Optional[float] = None  # loop time the running wait must end by, None: no wait
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timer_at = 0.0

    @property
    def response(self) -> aiohttp.ClientResponse:
        return self._response

    async def read(self) -> bytes:
        """The next bytes of the body, ``b""`` at its end (aiohttp's exceptions as they are)."""
        content = self._content
        data = content.read_nowait()
        if data or content.at_eof():
            return data
        limit = self._wait_limit()
        if limit is None:
            return await content.readany()
        loop = self._loop
        self._end = end = loop.time() + limit
        timer = self._timer
        if timer is None or self._timer_at > end + _SLACK:
            if timer is not None:
                timer.cancel()
            self._timer = loop.call_at(end, self._due)
            self._timer_at = end
        try:
            return await content.readany()
        finally:
            self._end = None

    def _due(self) -> None:
        self._timer = None
        end = self._end
        if end is None:
            return  # no wait now: the next one sets the timer again
        if self._loop.time() >= end - _SLACK:
            self._content.set_exception(aiohttp.ServerTimeoutError("Timeout on reading data from socket"))
        else:
            self._timer = self._loop.call_at(end, self._due)
            self._timer_at = end

    def fail(self, error: BaseException) -> None:
        """End a wait on this body (now or later) with ``error``."""
        self._content.set_exception(error)

    def close(self) -> None:
        """Stop the timer and close the response (a body read to its end kept its connection)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._response.close()

    def release(self) -> None:
        """Stop the timer and give the connection back (aiohttp closes it if the body is unread)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._response.release()
