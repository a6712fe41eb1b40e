"""``--voices FILE`` and ``--any-voice``: your own voice ids on the local server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from server_fixtures import OUTSIDE_CHECKOUT

from cartesia.server import LocalServer
from cartesia.server.v1.voice_catalogue import BUILTIN_VOICES
from cartesia.server.v1.voice_store import VoicesFileError, VoiceStore, load_voices_file
from cartesia.server.voices import VOICES_BY_NAME

TESSA = "6ccbfb76-1fc6-48f7-b71d-91ac6298247b"
PROD = "a0000000-1111-4222-8333-944445555666"


def write(tmp_path: Path, doc) -> str:
    path = tmp_path / "voices.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


def get(server: LocalServer, path: str, **params) -> httpx.Response:
    return httpx.get(
        server.base_url + path,
        params=params,
        headers={"Authorization": f"Bearer {server.api_key}"},
        timeout=10,
    )


def test_file_voices_are_listed_after_the_catalogue_with_defaults(make_server, tmp_path):
    path = write(
        tmp_path,
        [
            {
                "id": PROD,
                "name": "Support Bot",
                "description": "Our production voice.",
                "language": "de",
                "gender": "masculine",
                "tagline": "Calm helper",
                "locale": "de-AT",
                "country": "AT",
            },
            {"id": "minimal"},
        ],
    )
    server = make_server(voices_file=path)
    page = get(server, "/voices", limit=100).json()["data"]
    assert [v["id"] for v in page] == [r.id for r in BUILTIN_VOICES] + [PROD, "minimal"]
    prod = get(server, f"/voices/{PROD}").json()
    assert prod["name"] == "Support Bot" and prod["language"] == "de"
    assert prod["gender"] == "masculine" and prod["tagline"] == "Calm helper"
    assert prod["locales"] == [{"locale": "de-AT", "is_native": True}] and prod["country"] == "AT"
    assert prod["is_owner"] is False and prod["access"] == "public"
    minimal = get(server, "/voices/minimal").json()
    assert minimal["name"] == "Voice minimal" and minimal["language"] == "en"
    assert minimal["description"] == "" and minimal["gender"] is None
    # Its engine voice is derived from the id: the same one --any-voice would make for that id.
    assert server.voice_store.resolve("minimal") == VoiceStore(any_voice=True).resolve("minimal")
    # A German entry speaks German on the speech engine.
    assert server.voice_store.resolve(PROD).espeak.startswith("de+")
    german = [v["name"] for v in get(server, "/voices", language="de").json()["data"]]
    assert german == ["Lukas", "Support Bot"]


def test_engine_voice_by_name_id_or_parameters(tmp_path):
    records = load_voices_file(
        write(
            tmp_path,
            [
                {"id": "like-milo", "engine_voice": "Milo"},
                {"id": "like-tessa", "engine_voice": TESSA},
                {"id": "tuned", "engine_voice": {"espeak": "en-us+f4", "pitch": 70, "f0": 250}},
            ],
        )
    )
    milo, tessa, tuned = (r.engine for r in records)
    reference = VOICES_BY_NAME["milo"]
    assert (milo.espeak, milo.pitch, milo.f0, milo.id) == (
        reference.espeak,
        reference.pitch,
        reference.f0,
        "like-milo",
    )
    assert tessa.f0 == next(r for r in BUILTIN_VOICES if r.id == TESSA).engine.f0
    assert (tuned.espeak, tuned.pitch, tuned.f0) == ("en-us+f4", 70, 250.0)


def test_an_entry_can_replace_a_builtin_voice_in_place(make_server, tmp_path):
    server = make_server(voices_file=write(tmp_path, [{"id": TESSA, "name": "Our Tessa"}]))
    first = get(server, "/voices", limit=1).json()["data"][0]
    assert first["id"] == TESSA and first["name"] == "Our Tessa"
    assert len(get(server, "/voices", limit=100).json()["data"]) == len(BUILTIN_VOICES)


def test_a_saved_production_page_loads_as_it_is(make_server, tmp_path):
    page = {
        "data": [
            {
                "id": PROD,
                "name": "Prod",
                "description": "",
                "language": "en",
                "is_owner": True,
                "access": "private",
                "visibility": "owner",
                "created_at": "2025-01-02T03:04:05.123Z",
                "tagline": "",
                "locales": [
                    {"locale": "en-GB", "is_native": True},
                    {"locale": "fr-FR", "is_native": False},
                ],
                "gender": "feminine",
                "accent": "british",
                "country": "GB",
                "preview_file_url": None,
            }
        ],
        "has_more": False,
        "next_page": None,
    }
    (record,) = load_voices_file(write(tmp_path, page))
    assert record.is_owner and record.native_locale == "en-GB" and record.accent == "british"
    assert record.extra_locales == ("fr-FR",)
    server = make_server(voices_file=write(tmp_path, page))
    served = get(server, f"/voices/{PROD}", **{"expand[]": "preview_file_url"}).json()
    assert {k: served[k] for k in page["data"][0]} == page["data"][0]  # round trip
    french = [v["id"] for v in get(server, "/voices", language="fr", limit=100).json()["data"]]
    assert PROD in french  # speaks French as a cross-lingual locale


def test_any_voice_lets_unknown_ids_speak(make_server):
    strict = make_server()
    assert get(strict, "/voices/some-prod-id").status_code == 404
    lenient = make_server(any_voice=True)
    resp = get(lenient, "/voices/some-prod-id")
    assert resp.status_code == 200 and resp.json()["id"] == "some-prod-id"
    assert lenient.voice_store.resolve("some-prod-id") != lenient.voice_store.resolve("other-id")
    # Made-up voices are not part of the listing.
    assert "some-prod-id" not in [
        v["id"] for v in get(lenient, "/voices", limit=100).json()["data"]
    ]


@pytest.mark.parametrize(
    "doc, words",
    [
        ("[1, 2", ["not valid JSON"]),
        ("[" * 100_000, ["nested too deeply"]),
        ('{"voices": []}', ["expected a JSON array"]),
        ([{"name": "no id"}], ["entry 0", "`id`"]),
        ([{"id": "a"}, {"id": "a"}], ["entry 1", "duplicate id"]),
        ([{"id": "a", "langauge": "en"}], ["entry 0", "langauge"]),
        ([{"id": "a", "language": "English"}], ["`language`"]),
        ([{"id": "a", "gender": "male"}], ["`gender`", "masculine"]),
        ([{"id": "a", "tagline": "x" * 40}], ["`tagline`"]),
        ([{"id": "a", "created_at": "yesterday"}], ["`created_at`"]),
        ([{"id": "a", "engine_voice": "Nobody"}], ["`engine_voice`"]),
        ([{"id": "a", "locales": ["en-US"]}], ["`locales`"]),
        ([{"id": "a", "engine_voice": {"pitch": 500}}], ["engine_voice.pitch"]),
        ([{"id": "a", "engine_voice": {"volume": 1}}], ["engine_voice", "volume"]),
        (["just a string"], ["entry 0", "voice object"]),
    ],
)
def test_bad_files_give_one_clear_error(tmp_path, doc, words):
    path = write(tmp_path, doc)
    with pytest.raises(VoicesFileError) as info:
        load_voices_file(path)
    message = str(info.value)
    assert message.startswith(f"--voices {path}: ")
    assert all(w in message for w in words), message


def test_missing_file_fails_at_start(tmp_path):
    server = LocalServer(engine="tone", voices_file=str(tmp_path / "absent.json"))
    with pytest.raises(VoicesFileError, match="cannot read the file"):
        server.start()
    server.stop()


def test_cli_bad_file_is_one_line_and_exit_2(tmp_path):
    path = write(tmp_path, [{"id": "a", "gender": "robot"}])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cartesia.server",
            "--port",
            "0",
            "--engine",
            "tone",
            "--voices",
            path,
        ],
        cwd=OUTSIDE_CHECKOUT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"cartesia serve: error: --voices {path}: entry 0"), (
        proc.stderr
    )
    assert "Traceback" not in proc.stderr
