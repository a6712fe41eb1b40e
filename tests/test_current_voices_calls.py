"""``client.voices`` calls are written once for both clients: the sync and async ones answer
alike, and an async call checks its arguments (and reads a clip) only when awaited."""

from __future__ import annotations

import asyncio
import io

import pytest
from test_current_voices import TESSA, server  # noqa: F401 - `server` is a fixture

from cartesia import AsyncCartesia, Cartesia, NotFoundError
from cartesia.errors import InvalidInputError


async def test_async_calls_check_and_read_when_awaited(server):  # noqa: F811
    async with AsyncCartesia(api_key=server.api_key, base_url=server.base_url) as client:
        call = client.voices.get("a/b")  # nothing checked yet: as an `async def` would
        with pytest.raises(InvalidInputError) as info:
            await call
        assert info.value.field == "id"
        clip = io.BytesIO(b"RIFF a clip read at await")
        pending = client.voices.clone(clip=clip, language="en", name="Lazy")
        assert clip.tell() == 0
        made = await asyncio.wait_for(pending, 20)
        assert clip.tell() > 0 and made.name == "Lazy"
        assert await client.voices.delete(made.id) is None


async def test_sync_and_async_answer_alike(server):  # noqa: F811
    with Cartesia(api_key=server.api_key, base_url=server.base_url) as sync_client:
        updated = sync_client.voices.update(
            sync_client.voices.clone(clip=b"RIFF s", language="en", name="S").id, name="S2"
        )
        every = [v.id for v in sync_client.voices.list(limit=4)]
        first = sync_client.voices.list(limit=4)
        tessa = sync_client.voices.get(TESSA).to_dict()
    async with AsyncCartesia(api_key=server.api_key, base_url=server.base_url) as client:
        page = await client.voices.list(limit=4)
        assert [v.id for v in page.data] == [v.id for v in first.data]
        assert [v.id async for v in page] == every  # iteration crosses pages
        assert [v.id for v in (await page.next_page()).data] == every[4:8]
        assert (await client.voices.get(TESSA)).to_dict() == tessa
        assert (await client.voices.update(updated.id, description="d")).name == "S2"
        await client.voices.delete(updated.id)
        with pytest.raises(NotFoundError):
            await client.voices.get(updated.id)
    assert len(every) > 8
