"""``client.voices`` of the current-API clients against the local server's voice routes: paging
walks, get, clone/update/delete, localize, errors; sync and async."""

from __future__ import annotations

import datetime
import json
from typing import Iterator

import httpx
import pytest

from cartesia import AsyncCartesia, Cartesia, NotFoundError
from cartesia.errors import BadRequestError, InvalidInputError
from cartesia.protocol import v1
from cartesia.server import LocalServer
from cartesia.types import Voice, VoiceMetadata

# The voice id the official 4.2.0 examples hard-code.
TESSA = "6ccbfb76-1fc6-48f7-b71d-91ac6298247b"


def _has_voice_routes(server: LocalServer) -> bool:
    resp = httpx.get(
        server.base_url + "/voices",
        headers={"Authorization": f"Bearer {server.api_key}", "Cartesia-Version": v1.API_VERSION},
        timeout=10,
    )
    return not (resp.status_code == 404 and "no route" in resp.text)


@pytest.fixture
def server(make_server) -> Iterator[LocalServer]:
    """A fresh server per test (clones change its store)."""
    srv = make_server()
    if not _has_voice_routes(srv):
        # The current-API voice routes come with the server's voices work (branch srvvoices);
        # until it is merged these tests have nothing to talk to.
        pytest.skip("this local server has no current-API /voices routes")
    yield srv


def _raw_walk(server: LocalServer, limit: int) -> list:
    """Every voice id, paging by hand over plain httpx (the oracle)."""
    ids, after = [], None
    with httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {server.api_key}", "Cartesia-Version": v1.API_VERSION},
        timeout=20,
    ) as http:
        for _ in range(200):
            params = {"limit": limit, **({"starting_after": after} if after else {})}
            page = http.get("/voices", params=params).json()
            if not page["data"]:
                return ids
            ids += [v["id"] for v in page["data"]]
            after = ids[-1]
    raise AssertionError("paging never ended")


def test_list_pages_and_walk(server):
    with Cartesia(api_key=server.api_key, base_url=server.base_url) as client:
        every = _raw_walk(server, 7)
        page = client.voices.list(limit=7)
        assert len(page.data) == 7 and all(isinstance(v, Voice) for v in page.data)
        assert page.data[0].id == TESSA
        walked = [v.id for v in page.data]
        pages = 1
        while page.has_next_page():
            page = page.get_next_page()
            walked += [v.id for v in page.data]
            pages += 1
        assert walked == every
        # has_more ends the walk without 4.2.0's extra request for an empty page.
        assert pages == -(-len(every) // 7)
        assert [v.id for v in client.voices.list(limit=5)] == every  # iteration crosses pages
        assert client.voices.list(limit=3).next_page().data[0].id == every[3]


async def test_async_list_walk_and_get(server):
    async with AsyncCartesia(api_key=server.api_key, base_url=server.base_url) as client:
        page = await client.voices.list(limit=4)
        assert [v.id async for v in page] == _raw_walk(server, 9)
        second = await page.get_next_page()
        assert second.data[0].id == _raw_walk(server, 4)[4]
        voice = await client.voices.get(TESSA)
        assert voice.id == TESSA and voice.name == "Tessa"
        with pytest.raises(NotFoundError):
            await client.voices.get("no-such-voice")


def test_get_has_the_4_2_0_attributes(server):
    with Cartesia(api_key=server.api_key, base_url=server.base_url) as client:
        voice = client.voices.get(TESSA)
    raw = httpx.get(
        f"{server.base_url}/voices/{TESSA}",
        headers={"Authorization": f"Bearer {server.api_key}", "Cartesia-Version": v1.API_VERSION},
        timeout=10,
    ).json()
    assert voice.name == "Tessa" and voice.is_owner is False
    assert isinstance(voice.created_at, datetime.datetime)
    assert voice.locales and voice.locales[0].locale == raw["locales"][0]["locale"]
    for field in ("access", "visibility", "language", "tagline", "description", "gender"):
        assert getattr(voice, field) == raw[field]
    assert json.loads(json.dumps(voice.to_dict()))["id"] == TESSA
    assert voice == Voice.from_dict(raw) and "Tessa" in repr(voice)


def test_unknown_voice_is_not_found_with_the_servers_message(server):
    with Cartesia(api_key=server.api_key, base_url=server.base_url) as client:
        with pytest.raises(NotFoundError) as info:
            client.voices.get("no-such-voice")
    err = info.value
    assert err.status_code == 404 and err.request_id and err.body["message"] in err.message
    with pytest.raises(InvalidInputError):
        Cartesia(api_key="k").voices.get("a/b")  # refused before any I/O


def test_clone_update_delete_lifecycle(server, tmp_path):
    clip = tmp_path / "me.wav"
    clip.write_bytes(b"RIFF my voice")
    with Cartesia(api_key=server.api_key, base_url=server.base_url) as client:
        with open(clip, "rb") as f:
            made = client.voices.clone(clip=f, language="en", name="Me", description="mine")
        assert isinstance(made, VoiceMetadata) and made.name == "Me" and made.user_id
        twin = client.voices.clone(clip=("twin.wav", clip.read_bytes()), language="en", name="Twin")
        owned = client.voices.list(is_owner=True)
        assert [v.id for v in owned.data] == [made.id, twin.id]
        renamed = client.voices.update(made.id, name="Renamed", gender="feminine")
        assert renamed.name == "Renamed" and client.voices.get(made.id).gender == "feminine"
        assert client.voices.update(made.id, gender=None).gender is None  # null clears it
        assert client.voices.update(made.id, description="kept").name == "Renamed"
        with pytest.raises(BadRequestError) as info:
            client.voices.update(made.id, name="")
        assert "name" in info.value.message
        assert client.voices.delete(made.id) is None
        with pytest.raises(NotFoundError):
            client.voices.get(made.id)
        # The clone speaks through tts.generate.
        audio = client.tts.generate(
            model_id="sonic-3", transcript="Hi there.", voice=twin.id,
            output_format={"container": "raw", "encoding": "pcm_s16le", "sample_rate": 8000},
        ).read()
        assert len(audio) > 0


async def test_async_clone_localize_delete(server):
    async with AsyncCartesia(api_key=server.api_key, base_url=server.base_url) as client:
        made = await client.voices.clone(clip=b"RIFF async clip", language="en", name="A")
        assert (await client.voices.get(made.id)).name == "A"
        fr = await client.voices.localize(
            voice_id=TESSA, name="Tessa FR", language="fr", accent="parisian",
            original_speaker_gender="female",
        )
        assert fr.language == "fr" and fr.is_owner is True and fr.name == "Tessa FR"
        await client.voices.delete(made.id)
        with pytest.raises(NotFoundError):
            await client.voices.get(made.id)
        with pytest.raises(NotFoundError):
            await client.voices.localize(voice_id="nope", name="x", language="fr", accent="parisian",
                                         original_speaker_gender="female")


def test_localize_sync(server):
    with Cartesia(api_key=server.api_key, base_url=server.base_url) as client:
        fr = client.voices.localize(
            voice_id=TESSA, name="Tessa FR", language="fr", accent="parisian",
            original_speaker_gender="female",
        )
        assert client.voices.get(fr.id).language == "fr"
