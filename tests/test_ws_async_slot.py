"""The pooled async generation's slot: one timer per slot for its waits, every wait still bounded."""

from __future__ import annotations

import asyncio

import pytest

from cartesia._client.transport.ws_async import PoolSlot
from cartesia.errors import WebSocketClosedError

LIMIT = 5.0  # every wait below is bounded by this


async def test_waits_share_one_timer_and_each_still_times_out() -> None:
    slot = PoolSlot("c", 4)
    waiting = asyncio.ensure_future(slot.get(LIMIT))
    await asyncio.sleep(0)
    timer = slot._timer
    assert timer is not None
    assert slot.put_nowait(b"1")
    assert await asyncio.wait_for(waiting, LIMIT) == b"1"
    assert slot._timer is timer and not timer.cancelled()  # left armed for the next wait

    waiting = asyncio.ensure_future(slot.get(LIMIT))
    await asyncio.sleep(0)
    assert slot._timer is timer  # a wait no shorter than the armed one reuses its timer
    assert slot.put_nowait(b"2")
    assert await asyncio.wait_for(waiting, LIMIT) == b"2"

    # A shorter wait replaces the timer and ends on time, with nothing queued.
    assert await asyncio.wait_for(slot.get(0.02), LIMIT) is None
    assert timer.cancelled() and slot._waiter is None


async def test_a_timer_armed_by_an_earlier_wait_re_arms_for_the_current_one() -> None:
    slot = PoolSlot("c", 4)
    first = asyncio.ensure_future(slot.get(0.02))
    await asyncio.sleep(0)
    assert slot.put_nowait(b"1")
    assert await asyncio.wait_for(first, LIMIT) == b"1"
    timer = slot._timer
    waiting = asyncio.ensure_future(slot.get(0.4))
    await asyncio.sleep(0)
    assert slot._timer is timer  # armed by the first wait, due before this one

    async def fired() -> None:
        while slot._timer is timer:
            await asyncio.sleep(0.005)

    await asyncio.wait_for(fired(), LIMIT)
    assert not waiting.done() and slot._timer is not None  # not due yet: re-armed
    assert await asyncio.wait_for(waiting, LIMIT) is None  # then it times out
    assert slot._waiter is None and slot._timer is None


async def test_release_cancels_the_timer_and_failure_still_wakes_a_waiter() -> None:
    slot = PoolSlot("c", 2)
    waiting = asyncio.ensure_future(slot.get(LIMIT))
    await asyncio.sleep(0)
    timer = slot._timer
    slot.fail(WebSocketClosedError("gone", code=1011))
    with pytest.raises(WebSocketClosedError):
        await asyncio.wait_for(waiting, LIMIT)
    slot.drain()  # what the router does on release
    assert timer is not None and timer.cancelled() and slot._timer is None
