"""The current API's requests are built byte for byte as ``httpx.Client.build_request`` builds them.

The client's default headers merged with a call's are kept per header set instead of merged per
request; a request with params, files, form data or cookies is still built by httpx itself.
"""

from __future__ import annotations

import json
from typing import Iterator

import httpx
import pytest

from cartesia._client.retry import RetryPolicy
from cartesia._current.config import DEFAULT, CurrentConfig
from cartesia._current.http import AsyncHttp, SyncHttp
from cartesia.protocol.v1 import HttpRequest

BODY = json.dumps({"model_id": "sonic-3", "transcript": "hi"}).encode()


def _config(**kwargs: object) -> CurrentConfig:
    return CurrentConfig(
        api_key="sk-secret", base_url="http://127.0.0.1:9", websocket_base_url="ws://127.0.0.1:9",
        timeout=httpx.Timeout(7.0), retry=RetryPolicy(), **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def http() -> Iterator[SyncHttp]:
    h = SyncHttp(_config(default_headers={"X-App": "a1"}))
    try:
        yield h
    finally:
        h.close()


def _same(a: httpx.Request, b: httpx.Request) -> None:
    assert (a.method, a.url, a.headers.raw, a.read(), a.extensions) == (
        b.method, b.url, b.headers.raw, b.read(), b.extensions
    )


@pytest.mark.parametrize("extra", [None, {"X-Trace": "t1"}, {"cartesia-version": "2099-01-01"}, {"X-Trace": "t2"}])
def test_a_request_is_what_build_request_builds(http, extra):
    client = http.client()
    request = HttpRequest("POST", "/tts/bytes", "x", content=BODY)
    for _ in range(2):  # the second from the kept merge
        built, limit = http.build(client, request, extra, None, DEFAULT)
        cfg = http.config
        headers = {"Cartesia-Version": cfg.version, "Authorization": "Bearer sk-secret",
                   "Content-Type": "application/json", "X-App": "a1", **(extra or {})}
        if extra and "cartesia-version" in extra:
            headers.pop("Cartesia-Version")
        theirs = client.build_request("POST", "http://127.0.0.1:9/tts/bytes", content=BODY, headers=headers,
                                      timeout=limit)
        _same(built, theirs)
    assert built.headers["x-app"] == "a1" and built.headers["authorization"] == "Bearer sk-secret"


def test_params_cookies_and_a_new_client_are_built_by_httpx(http):
    client = http.client()
    request = HttpRequest("POST", "/tts/bytes", "x", content=BODY)
    built, _ = http.build(client, request, None, {"q": "1"}, DEFAULT)
    assert built.url.params["q"] == "1"
    client.cookies.set("session", "s1")
    built, _ = http.build(client, request, None, None, DEFAULT)
    assert built.headers["cookie"] == "session=s1"
    client.cookies.clear()
    client.headers["X-Later"] = "1"  # a changed client is a new client: rebuilt on close
    http.close()
    fresh = http.client()
    built, _ = http.build(fresh, request, None, None, DEFAULT)
    assert "x-later" not in built.headers and built.headers["x-app"] == "a1"


async def test_the_async_client_builds_the_same_requests():
    http = AsyncHttp(_config())
    try:
        client = http.client()
        request = HttpRequest("POST", "/tts/bytes", "x", content=BODY)
        built, limit = http.build(client, request, {"X-Trace": "t1"}, None, DEFAULT)
        theirs = client.build_request(
            "POST", "http://127.0.0.1:9/tts/bytes", content=BODY, timeout=limit,
            headers={"Cartesia-Version": http.config.version, "Authorization": "Bearer sk-secret",
                     "Content-Type": "application/json", "X-Trace": "t1"},
        )
        assert (built.url, built.headers.raw, built.extensions) == (theirs.url, theirs.headers.raw, theirs.extensions)
        assert await built.aread() == await theirs.aread()
    finally:
        await http.close()
