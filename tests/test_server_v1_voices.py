"""Voice routes of the current API over real sockets: catalogue, paging, filters, owned voices."""

from __future__ import annotations

import hashlib
import math
from typing import Iterator, List

import httpx
import numpy as np
import pytest

from cartesia.server import LocalServer
from cartesia.server.engines.tone import ToneEngine
from cartesia.server.v1.errors import ApiError
from cartesia.server.v1.versions import KNOWN_VERSIONS
from cartesia.server.v1.voice_catalogue import BUILTIN_VOICES
from cartesia.server.v1.voice_store import VoiceStore
from cartesia.server.voices import CATALOGUE, EMBEDDING_SIZE

# The voice ids the official 4.2.0 examples (Tessa) and README (Brooke) hard-code.
TESSA = "6ccbfb76-1fc6-48f7-b71d-91ac6298247b"
BROOKE = "e07c00bc-4134-4eae-9ea4-1a55fb45746b"
OLD = "2024-06-10"
CURRENT = KNOWN_VERSIONS[-1]


def client(server: LocalServer, version: str = CURRENT) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {server.api_key}", "Cartesia-Version": version},
        timeout=20,
    )


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """A read-only server for this module (tests that create voices use ``make_server``)."""
    with LocalServer(engine="tone") as srv:
        yield srv


@pytest.fixture(scope="module")
def api(server: LocalServer) -> Iterator[httpx.Client]:
    with client(server) as c:
        yield c


def walk(api: httpx.Client, **params) -> List[dict]:
    """Every page of ``GET /voices`` forwards, the way 4.2.0 pages (until an empty page)."""
    pages, after = [], None
    for _ in range(100):
        query = dict(params, **({"starting_after": after} if after else {}))
        page = api.get("/voices", params=query)
        assert page.status_code == 200, page.text
        pages.append(page.json())
        if not page.json()["data"]:
            return pages
        after = page.json()["data"][-1]["id"]
    raise AssertionError("paging never reached an empty page")


# --- catalogue -----------------------------------------------------------------------------


def test_catalogue_has_the_example_ids_in_the_current_shape(api):
    tessa = api.get(f"/voices/{TESSA}")
    assert tessa.status_code == 200
    body = tessa.json()
    assert body["id"] == TESSA and body["name"] == "Tessa"
    for field in (
        "description",
        "language",
        "gender",
        "is_owner",
        "access",
        "visibility",
        "created_at",
        "tagline",
        "locales",
        "country",
        "accent",
    ):
        assert field in body, field
    assert body["is_owner"] is False and body["access"] == "public" and body["visibility"] == "all"
    assert body["locales"] == [{"locale": "en-US", "is_native": True}]
    assert len(body["tagline"]) <= 32
    assert api.get(f"/voices/{BROOKE}").json()["name"] == "Brooke"


def test_every_builtin_voice_speaks_distinctly():
    ids = [r.id for r in BUILTIN_VOICES]
    assert len(set(ids)) == len(ids)
    speech = {(r.engine.espeak, r.engine.pitch, r.engine.rate) for r in BUILTIN_VOICES}
    assert len(speech) == len(ids)
    tone = ToneEngine()
    digests = {
        hashlib.sha256(tone.synthesize("Distinct voices.", r.engine).tobytes()).hexdigest()
        for r in BUILTIN_VOICES
    }
    assert len(digests) == len(ids)
    # The v0 voices are in the current catalogue too, with the same ids and the same sound.
    by_id = {r.id: r for r in BUILTIN_VOICES}
    assert all(by_id[v.id].engine == v for v in CATALOGUE)


def test_resolve_known_unknown_and_any_voice():
    store = VoiceStore()
    assert store.resolve(TESSA).espeak == "en-us+f1"
    with pytest.raises(ApiError) as info:
        store.resolve("no-such-voice")
    assert info.value.status == 404 and "no-such-voice" in info.value.message
    with pytest.raises(ApiError) as info:
        store.resolve("")
    assert info.value.status == 400
    lenient, other = VoiceStore(any_voice=True), VoiceStore(any_voice=True)
    a = lenient.resolve("prod-voice-a")
    assert a == other.resolve("prod-voice-a")  # derived deterministically from the id
    assert a != lenient.resolve("prod-voice-b")
    assert lenient.resolve(TESSA) == store.resolve(TESSA)  # known ids keep their voice
    # Made-up voices are not listed and stay read-only.
    assert "prod-voice-a" not in [r.id for r in lenient.listing()]
    with pytest.raises(ApiError) as info:
        lenient.delete("prod-voice-a")
    assert info.value.status == 403


def test_embedding_of_a_known_voice_speaks_as_that_voice():
    store = VoiceStore()
    tessa = store.get(TESSA)
    assert store.resolve_embedding(list(tessa.engine.embedding)) == tessa.engine
    noisy = np.asarray(tessa.engine.embedding) + 1e-4
    assert store.resolve_embedding(noisy.tolist()) == tessa.engine
    other = store.resolve_embedding([1.0] + [0.0] * (EMBEDDING_SIZE - 1))
    assert other.id.startswith("derived-")


# --- paging --------------------------------------------------------------------------------


def test_tts_with_a_known_voices_embedding_speaks_as_that_voice(server):
    # Regression: TTS requests resolved embeddings without the store, so the embedding that
    # GET /voices/{id}/embedding serves spoke with a derived voice instead of that voice.
    fmt = {"container": "raw", "encoding": "pcm_f32le", "sample_rate": 44100}

    def speak(old: httpx.Client, voice: dict) -> bytes:
        body = {"model_id": "sonic-2", "transcript": "Hello there.", "voice": voice, "output_format": fmt}
        response = old.post("/tts/bytes", json=body)
        assert response.status_code == 200, response.text
        return response.content

    with client(server, "2024-11-13") as old:
        embedding = old.get(f"/voices/{TESSA}/embedding").json()["embedding"]
        by_id = speak(old, {"mode": "id", "id": TESSA})
        assert speak(old, {"mode": "embedding", "embedding": embedding}) == by_id
        assert speak(old, {"mode": "embedding", "embedding": [0.1] * EMBEDDING_SIZE}) != by_id
        short = old.post(
            "/tts/bytes",
            json={"model_id": "sonic-2", "transcript": "Hi.", "output_format": fmt,
                  "voice": {"mode": "embedding", "embedding": [0.1] * 3}},
        )
        assert short.status_code == 400 and "voice.embedding" in short.json()["error"]


def test_default_page_and_exact_forward_walk(api):
    first = api.get("/voices").json()
    assert set(first) == {"data", "has_more", "next_page"}
    assert len(first["data"]) == 10 and first["has_more"] is True
    assert first["next_page"] == first["data"][-1]["id"]
    assert first["data"][0]["id"] == TESSA

    pages = walk(api, limit=7)
    ids = [v["id"] for p in pages for v in p["data"]]
    assert ids == [r.id for r in BUILTIN_VOICES]  # every voice once, in listing order
    assert pages[-1] == {"data": [], "has_more": False, "next_page": None}
    for page in pages[:-2]:
        assert page["has_more"] is True and page["next_page"] == page["data"][-1]["id"]
    last_full = pages[-2]
    assert last_full["has_more"] is False and last_full["next_page"] is None
    assert len(last_full["data"]) == len(BUILTIN_VOICES) - 7 * (len(pages) - 2)


def test_backward_walk_with_ending_before(api):
    ids = [r.id for r in BUILTIN_VOICES]
    page = api.get("/voices", params={"ending_before": ids[-1], "limit": 5}).json()
    assert [v["id"] for v in page["data"]] == ids[-6:-1]
    assert page["has_more"] is True and page["next_page"] == ids[-6]
    seen, cursor = [], ids[-1]
    while True:
        page = api.get("/voices", params={"ending_before": cursor, "limit": 4}).json()
        if not page["data"]:
            break
        seen = [v["id"] for v in page["data"]] + seen
        assert page["has_more"] == (len(seen) < len(ids) - 1)
        cursor = page["data"][0]["id"]
    assert seen == ids[:-1]
    assert api.get("/voices", params={"ending_before": ids[0]}).json()["data"] == []


@pytest.mark.parametrize(
    "params, field",
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"starting_after": "nope"}, "starting_after"),
        ({"ending_before": "nope"}, "ending_before"),
        ({"starting_after": TESSA, "ending_before": BROOKE}, "ending_before"),
        ({"gender": "male"}, "gender"),
        ({"is_owner": "maybe"}, "is_owner"),
        ({"language": "english"}, "language"),
        ({"expand[]": "everything"}, "expand[]"),
        ({"expand[]": "embedding"}, "expand[]"),
    ],
)
def test_bad_list_parameters_are_400_naming_the_field(api, params, field):
    resp = api.get("/voices", params=params)
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert f"`{field}`" in body["message"] and body["error_code"] and body["request_id"]
    assert resp.headers["x-should-retry"] == "false"


def test_limit_bounds_are_inclusive(api):
    assert len(api.get("/voices", params={"limit": 1}).json()["data"]) == 1
    everything = api.get("/voices", params={"limit": 100}).json()
    assert len(everything["data"]) == len(BUILTIN_VOICES) and everything["has_more"] is False


def test_filters(api):
    def ids(**params):
        return [v["id"] for p in walk(api, **params) for v in p["data"]]

    assert ids(q="tESSa") == [TESSA]
    assert ids(q="6ccbfb76") == [TESSA]  # ids are searched too
    assert ids(q="southern lilt") == ["f9836c6e-a0bd-460e-9d3c-f7299fa60f94"]
    feminine = ids(gender="feminine")
    assert TESSA in feminine and "a167e0f3-df7e-4d52-a9c3-f949145efdab" not in feminine
    assert all(r.gender == "feminine" for r in BUILTIN_VOICES if r.id in feminine)
    assert [api.get(f"/voices/{i}").json()["name"] for i in ids(language="fr")] == ["Camille"]
    assert ids(is_owner="true") == []
    assert len(ids(is_owner="false")) == len(BUILTIN_VOICES)
    # Filters and cursors combine: paging through masculine voices two at a time.
    masculine = [r.id for r in BUILTIN_VOICES if r.gender == "masculine"]
    assert ids(gender="masculine", limit=2) == masculine


def test_expand_preview_and_embedding_by_version(server, api):
    page = api.get("/voices", params={"expand[]": "preview_file_url", "limit": 2}).json()
    assert all("preview_file_url" in v and "embedding" not in v for v in page["data"])
    with client(server, "2025-11-04") as old:
        voice = old.get(f"/voices/{TESSA}", params={"expand[]": "embedding"}).json()
    assert len(voice["embedding"]) == EMBEDDING_SIZE
    assert "embedding" not in api.get(f"/voices/{TESSA}").json()


def test_unknown_voice_is_404_in_each_versions_shape(server, api):
    resp = api.get("/voices/no-such-voice")
    assert resp.status_code == 404 and resp.headers["x-should-retry"] == "false"
    body = resp.json()
    assert set(body) == {"error_code", "title", "message", "request_id", "doc_url"}
    assert "no-such-voice" in body["message"]
    with client(server, "2024-11-13") as old:
        resp = old.get("/voices/no-such-voice")
    assert resp.status_code == 404
    assert resp.json() == {"error": resp.json()["error"], "status_code": 404}


def test_unknown_version_is_400_naming_the_accepted_ones(server):
    with client(server, "2023-01-01") as bad:
        resp = bad.get("/voices")
    assert resp.status_code == 400
    assert all(v in resp.json()["message"] for v in KNOWN_VERSIONS)


def test_voice_routes_need_a_key(server):
    assert httpx.get(server.base_url + "/voices", timeout=10).status_code == 401


# --- 2024-06-10 shapes and routes -----------------------------------------------------------


def test_2024_06_10_lists_a_bare_array_with_embeddings(server):
    with client(server, OLD) as old:
        voices = old.get("/voices").json()
        tessa = old.get(f"/voices/{TESSA}").json()
        embedding = old.get(f"/voices/{TESSA}/embedding").json()["embedding"]
    assert isinstance(voices, list) and len(voices) == len(BUILTIN_VOICES)
    assert set(tessa) == {
        "id",
        "user_id",
        "is_public",
        "name",
        "description",
        "created_at",
        "embedding",
        "language",
    }
    assert tessa["is_public"] is True and tessa["embedding"] == embedding
    assert len(embedding) == EMBEDDING_SIZE and math.isclose(
        np.linalg.norm(embedding), 1, rel_tol=1e-4
    )


def test_create_from_embedding_and_mix(make_server):
    server = make_server()
    store = server.voice_store
    tessa = list(store.get(TESSA).engine.embedding)
    with client(server, OLD) as old:
        made = old.post("/voices", json={"name": "Mine", "description": "d", "embedding": tessa})
        assert made.status_code == 201, made.text
        created = made.json()
        assert created["user_id"] and created["is_public"] is False
        # A voice made from Tessa's embedding speaks like Tessa.
        engine = store.resolve(created["id"])
        assert (engine.f0, engine.espeak) == (store.resolve(TESSA).f0, store.resolve(TESSA).espeak)
        bad = old.post("/voices", json={"name": "x", "embedding": [1.0] * 3})
        assert bad.status_code == 400 and "192" in bad.json()["error"]

        solo = old.post("/voices/mix", json={"voices": [{"id": TESSA, "weight": 1}]}).json()
        assert np.allclose(solo["embedding"], tessa, atol=1e-5)
        mixed = old.post(
            "/voices/mix",
            json={
                "voices": [{"id": TESSA, "weight": 0.5}, {"embedding": tessa[::-1], "weight": 0.5}]
            },
        ).json()["embedding"]
        assert len(mixed) == EMBEDDING_SIZE and math.isclose(np.linalg.norm(mixed), 1, rel_tol=1e-4)
        for body, field in [
            ({"voices": []}, "voices"),
            ({"voices": [{"id": TESSA, "weight": 2}]}, "weight"),
            ({"voices": [{"weight": 1}]}, "voices[0]"),
        ]:
            resp = old.post("/voices/mix", json=body)
            assert resp.status_code == 400 and field in resp.json()["error"], resp.text
        assert old.post("/voices/mix", json={"voices": [{"id": "nope"}]}).status_code == 404


def test_clone_clip_returns_an_embedding_like_v0(server):
    clip = b"RIFF a clip for the old clone route"
    with client(server, OLD) as old:
        plain = old.post(
            "/voices/clone/clip", files={"clip": ("c.wav", clip)}, data={"enhance": "false"}
        )
        enhanced = old.post(
            "/voices/clone/clip", files={"clip": ("c.wav", clip)}, data={"enhance": "true"}
        )
        bad = old.post(
            "/voices/clone/clip", files={"clip": ("c.wav", clip)}, data={"enhance": "yes"}
        )
    v0 = httpx.post(
        server.base_url + "/v0/voices/clone/clip",
        files={"clip": ("c.wav", clip)},
        headers={"X-API-Key": server.api_key},
        timeout=10,
    )
    assert plain.json()["embedding"] == v0.json()["embedding"]
    assert enhanced.json()["embedding"] != plain.json()["embedding"]
    assert bad.status_code == 400 and "enhance" in bad.json()["error"]


@pytest.mark.parametrize(
    "method, path, kwargs",
    [
        ("POST", "/voices", {"json": {"name": "x", "embedding": [0.0] * EMBEDDING_SIZE}}),
        ("POST", "/voices/mix", {"json": {"voices": [{"id": TESSA}]}}),
        ("POST", "/voices/clone/clip", {"files": {"clip": ("c.wav", b"x")}}),
        ("GET", f"/voices/{TESSA}/embedding", {}),
    ],
)
def test_embedding_routes_are_gone_from_2026_03_01(api, method, path, kwargs):
    resp = api.request(method, path, **kwargs)
    assert resp.status_code == 404 and "2026-03-01" in resp.json()["message"], resp.text


# --- owned voices ----------------------------------------------------------------------------


def test_clone_update_delete_lifecycle(make_server):
    server = make_server()
    store = server.voice_store
    with client(server) as api:
        files = {"clip": ("me.wav", b"RIFF my voice")}
        made = api.post(
            "/voices/clone",
            files=files,
            data={"name": "Me", "language": "en", "description": "mine", "base_voice_id": TESSA},
        )
        assert made.status_code == 200, made.text
        voice = made.json()
        assert voice["is_owner"] is True and voice["access"] == "private"
        assert voice["visibility"] == "owner" and voice["user_id"] and voice["name"] == "Me"
        twin = api.post(
            "/voices/clone", files=files, data={"name": "Twin", "language": "en"}
        ).json()
        other = api.post(
            "/voices/clone",
            files={"clip": ("x.wav", b"another clip")},
            data={"name": "Other", "language": "en"},
        ).json()
        # Same clip, same sound (different ids); another clip, another sound; none is a built-in.
        a, b, c = (store.resolve(v["id"]) for v in (voice, twin, other))
        assert (a.f0, a.espeak, a.pitch) == (b.f0, b.espeak, b.pitch) and a.id != b.id
        assert (a.f0, a.espeak, a.pitch) != (c.f0, c.espeak, c.pitch)
        assert all(a.f0 != r.engine.f0 for r in BUILTIN_VOICES)

        owned = api.get("/voices", params={"is_owner": "true"}).json()["data"]
        assert [v["id"] for v in owned] == [voice["id"], twin["id"], other["id"]]
        assert api.get("/voices", params={"limit": 100}).json()["data"][-1]["id"] == other["id"]

        patched = api.patch(
            f"/voices/{voice['id']}", json={"name": "Renamed", "gender": "feminine"}
        )
        assert patched.status_code == 200 and patched.json()["name"] == "Renamed"
        assert api.get(f"/voices/{voice['id']}").json()["gender"] == "feminine"
        assert api.patch(f"/voices/{voice['id']}", json={"gender": None}).json()["gender"] is None
        for body, field in [
            ({"name": ""}, "name"),
            ({"gender": "male"}, "gender"),
            ({"colour": "red"}, "colour"),
            ({"tagline": "x" * 33}, "tagline"),
        ]:
            resp = api.patch(f"/voices/{voice['id']}", json=body)
            assert resp.status_code == 400 and field in resp.json()["message"], resp.text
        deep = api.patch(
            f"/voices/{voice['id']}",
            content=b"[" * 100_000,
            headers={"Content-Type": "application/json"},
        )
        assert deep.status_code == 400 and "nested" in deep.json()["message"]

        assert api.patch(f"/voices/{TESSA}", json={"name": "Mine now"}).status_code == 403
        assert api.delete(f"/voices/{TESSA}").status_code == 403
        assert api.patch("/voices/nope", json={"name": "x"}).status_code == 404
        assert api.delete("/voices/nope").status_code == 404

        gone = api.delete(f"/voices/{voice['id']}")
        assert gone.status_code == 204 and gone.content == b""
        assert api.get(f"/voices/{voice['id']}").status_code == 404
        assert api.delete(f"/voices/{voice['id']}").status_code == 404
        with pytest.raises(ApiError):
            store.resolve(voice["id"])
        assert api.get(f"/voices/{TESSA}").json()["name"] == "Tessa"


@pytest.mark.parametrize(
    "data, files, field",
    [
        ({"name": "x", "language": "en"}, None, "clip"),
        ({"name": "x", "language": "en"}, {"clip": ("c.wav", b"")}, "clip"),
        ({"language": "en"}, {"clip": ("c.wav", b"x")}, "name"),
        ({"name": "x"}, {"clip": ("c.wav", b"x")}, "language"),
        ({"name": "x", "language": "English"}, {"clip": ("c.wav", b"x")}, "language"),
        (
            {"name": "x", "language": "en", "base_voice_id": "nope"},
            {"clip": ("c.wav", b"x")},
            "base_voice_id",
        ),
        ({"name": "x", "language": "en", "colour": "red"}, {"clip": ("c.wav", b"x")}, "colour"),
    ],
)
def test_clone_errors_name_the_field(server, api, data, files, field):
    parts = {key: (None, value) for key, value in data.items()}  # always multipart
    parts.update(files or {})
    resp = api.post("/voices/clone", files=parts)
    assert resp.status_code == 400, resp.text
    assert field in resp.json()["message"]


def test_clone_needs_multipart(api):
    resp = api.post("/voices/clone", json={"name": "x"})
    assert resp.status_code == 400 and "multipart" in resp.json()["message"]


def test_localize_creates_an_owned_voice_in_the_target_language(make_server):
    server = make_server()
    with client(server) as api:
        body = {
            "voice_id": TESSA,
            "name": "Tessa FR",
            "language": "fr",
            "accent": "parisian",
            "original_speaker_gender": "female",
        }
        made = api.post("/voices/localize", json=body)
        assert made.status_code == 200, made.text
        voice = made.json()
        assert (
            voice["language"] == "fr" and voice["is_owner"] is True and voice["name"] == "Tessa FR"
        )
        engine = server.voice_store.resolve(voice["id"])
        tessa = server.voice_store.resolve(TESSA)
        assert engine.espeak == "fr+f1" and engine.f0 != tessa.f0
        assert api.post("/voices/localize", json=dict(body, voice_id="nope")).status_code == 404
        bad = api.post("/voices/localize", json=dict(body, original_speaker_gender="x"))
        assert bad.status_code == 400 and "original_speaker_gender" in bad.json()["message"]
        assert "name" in api.post("/voices/localize", json={"voice_id": TESSA}).json()["message"]
    with client(server, OLD) as old:
        emb = {
            "embedding": [0.1] * EMBEDDING_SIZE,
            "language": "es",
            "original_speaker_gender": "male",
        }
        first, again = (old.post("/voices/localize", json=emb).json() for _ in range(2))
        assert len(first["embedding"]) == EMBEDDING_SIZE and first == again


def test_v0_voice_routes_are_unchanged(server):
    v0 = httpx.get(
        server.base_url + "/v0/voices", headers={"X-API-Key": server.api_key}, timeout=10
    )
    assert [v["id"] for v in v0.json()] == [v.id for v in CATALOGUE]


@pytest.mark.speech
def test_every_builtin_voice_speaks_distinctly_on_the_speech_engine():
    pytest.importorskip(
        "espeakng_loader", reason="espeakng-loader (the `speech` extra) is not installed"
    )
    from cartesia.server.engines.speech import SpeechEngine

    engine = SpeechEngine()
    digests = set()
    for record in BUILTIN_VOICES:
        samples = engine.synthesize("One, two.", record.engine)  # an unknown espeak name raises
        assert len(samples) > 0.2 * 44100 and float(np.abs(samples).max()) > 0.05, record.name
        digests.add(hashlib.sha256(samples.tobytes()).hexdigest())
    assert len(digests) == len(BUILTIN_VOICES)


def test_oversized_and_malformed_uploads_are_4xx_in_the_versions_shape(make_server):
    server = make_server(max_body_bytes=4096)
    with client(server) as api:
        big = api.post(
            "/voices/clone",
            files={"clip": ("c.wav", b"x" * 10_000)},
            data={"name": "Big", "language": "en"},
        )
        assert big.status_code == 413 and big.json()["error_code"], big.text
        broken = api.post(
            "/voices/clone",
            content=b"--nope\r\ngarbage",
            headers={"Content-Type": "multipart/form-data; boundary=zzz"},
        )
        assert broken.status_code == 400, broken.text
    with client(server, OLD) as old:
        big = old.post(
            "/voices/clone", files={"clip": ("c.wav", b"x" * 10_000)}, data={"name": "B"}
        )
        assert big.status_code == 413 and big.json()["status_code"] == 413
        made = old.post("/voices/clone", files={"clip": ("c.wav", b"RIFF")}, data={"name": "Old"})
        assert made.status_code == 200, made.text
        assert set(made.json()) == {
            "id",
            "user_id",
            "is_public",
            "name",
            "description",
            "created_at",
            "embedding",
            "language",
        }
        assert made.json()["language"] == "en"  # 2024-06-10 clients may leave it out


def test_injected_faults_and_token_grants_apply_to_the_voice_routes(server, api):
    busy = api.get("/voices", headers={"X-Cartesia-Fault": "429;retry_after=2"})
    assert busy.status_code == 429 and busy.headers["Retry-After"] == "2"
    assert busy.json()["error_code"] and busy.headers["x-should-retry"] == "true"
    assert api.get("/voices").status_code == 200  # the fault was for that request only
    stt_only = api.post("/access-token", json={"grants": {"stt": True}, "expires_in": 60})
    tts = api.post("/access-token", json={"grants": {"tts": True}, "expires_in": 60})
    assert stt_only.status_code == tts.status_code == 200
    for token, status in ((stt_only.json()["token"], 403), (tts.json()["token"], 200)):
        resp = httpx.get(
            server.base_url + f"/voices/{TESSA}",
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert resp.status_code == status, resp.text


def test_owned_voices_are_capped():
    from cartesia.server.v1.voice_catalogue import VoiceRecord

    store = VoiceStore(max_owned=2)
    engine = store.resolve(TESSA)

    def record(i: int) -> VoiceRecord:
        return VoiceRecord(
            id=f"mine-{i}", name="m", description="", language="en", engine=engine, is_owner=True
        )

    store.add(record(1))
    store.add(record(2))
    with pytest.raises(ApiError) as info:
        store.add(record(3))
    assert info.value.status == 403 and info.value.error_code == "voice_limit_reached"
    store.delete("mine-1")
    store.add(record(3))  # deleting makes room again
    assert [r.id for r in store.listing(is_owner=True)] == ["mine-2", "mine-3"]


def tts_pcm(api: httpx.Client, voice_id: str, text: str = "Owned voices speak.") -> httpx.Response:
    body = {
        "model_id": "sonic-3",
        "transcript": text,
        "voice": {"mode": "id", "id": voice_id},
        "output_format": {"container": "raw", "encoding": "pcm_f32le", "sample_rate": 44100},
        "language": "en",
    }
    return api.post("/tts/bytes", json=body)


def test_cloned_and_any_voice_ids_speak_through_tts(make_server):
    from cartesia.server.audio import synthesize

    server = make_server(any_voice=False)
    with client(server) as api:
        made = api.post(
            "/voices/clone",
            files={"clip": ("me.wav", b"RIFF speak")},
            data={"name": "Me", "language": "en"},
        ).json()
        resp = tts_pcm(api, made["id"])
        assert resp.status_code == 200, resp.text
        engine = server.voice_store.resolve(made["id"])
        expected = synthesize(ToneEngine(), "Owned voices speak.", engine, language="en").samples
        assert resp.content == expected.astype("<f4").tobytes()
        assert resp.content != tts_pcm(api, TESSA).content
        api.delete(f"/voices/{made['id']}")
        assert tts_pcm(api, made["id"]).status_code == 404
        assert tts_pcm(api, "prod-id-not-here").status_code == 404
    lenient = make_server(any_voice=True)
    with client(lenient) as api:
        first, again = tts_pcm(api, "prod-id-not-here"), tts_pcm(api, "prod-id-not-here")
        assert first.status_code == 200 and first.content == again.content
        assert first.content != tts_pcm(api, "another-prod-id").content
