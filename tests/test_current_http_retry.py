"""Retries of the current-API clients over HTTP, as 4.2.0 does them, against the real local server:
which statuses, ``x-should-retry`` both ways, ``retry-after-ms``/``retry-after``, backoff,
``max_retries``, connection errors and timeouts, and never a retry once audio was delivered.
Also the server's fault kinds that make those answers (``should_retry``, ``retry_after_ms``)."""

from __future__ import annotations

import logging
import socket
import time

import httpx
import pytest
from raw_server import RawServer
from test_current_http import RAW, _args, _want
from test_server_v1_http import headers

from cartesia import (
    APIConnectionError,
    APITimeoutError,
    AsyncCartesia,
    BadRequestError,
    Cartesia,
    InternalServerError,
    NotFoundError,
    RateLimitError,
)
from cartesia._client.errors import should_retry_header, status_error
from cartesia._current.config import current_retry_policy
from cartesia.errors import (
    ChunkGapTimeoutError,
    ConflictError,
    ConnectTimeoutError,
    FirstAudioTimeoutError,
    TotalTimeoutError,
    UnprocessableEntityError,
)
from cartesia.server.faults import FaultSpecError, parse_fault_spec

FMT = RAW[1]  # pcm_s16le 24 kHz: small bodies


def _client(server, **kwargs) -> Cartesia:
    return Cartesia(api_key=server.api_key, base_url=server.base_url, timeout=20, **kwargs)


def _requests(server) -> int:
    return server.stats["http_requests"]


# --- which answers are retried -----------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503])
def test_retried_statuses(local_server, server_faults, status):
    server_faults.add("status", status=status, retry_after_ms=1, on="stream")
    before = _requests(local_server)
    with _client(local_server) as c:
        assert c.tts.generate(**_args(FMT)).read() == _want(FMT)
    assert _requests(local_server) - before == 2


@pytest.mark.parametrize(
    "status, cls", [(400, BadRequestError), (404, NotFoundError), (422, UnprocessableEntityError)]
)
def test_final_statuses_are_not_retried(local_server, server_faults, status, cls):
    server_faults.add("status", status=status, count=0, on="stream")  # forever
    before = _requests(local_server)
    with _client(local_server) as c, pytest.raises(cls) as info:
        c.tts.generate(**_args(FMT))
    assert info.value.status_code == status and _requests(local_server) - before == 1


def test_should_retry_false_stops_a_retryable_status(local_server, server_faults):
    server_faults.add("status", status=503, should_retry=False, count=0, on="stream")
    before = _requests(local_server)
    with _client(local_server) as c, pytest.raises(InternalServerError):
        c.tts.generate(**_args(FMT))
    assert _requests(local_server) - before == 1


def test_should_retry_true_retries_a_final_status(local_server, server_faults):
    # 4.2.0 obeys the header even on a 400 (seen against a capture server).
    server_faults.add("status", status=400, should_retry=True, retry_after_ms=1, on="stream")
    before = _requests(local_server)
    with _client(local_server) as c:
        assert c.tts.generate(**_args(FMT)).read() == _want(FMT)
    assert _requests(local_server) - before == 2


def _delays(caplog) -> list:
    """The waits the retry log announced ("... in 0.03 s")."""
    return [float(r.getMessage().rsplit(" in ", 1)[1].split()[0]) for r in caplog.records if r.name == "cartesia.retry"]


def test_retry_after_ms_is_waited_exactly(local_server, server_faults, caplog):
    # 30 ms, where the backoff alone would wait at least 375 ms (the log's delays, not wall
    # time: a loaded machine must not fail this).
    server_faults.add("status", status=503, retry_after_ms=30, count=2, on="stream")
    with _client(local_server) as c, caplog.at_level(logging.INFO, logger="cartesia.retry"):
        assert c.tts.generate(**_args(FMT)).read() == _want(FMT)
    assert _delays(caplog) == [0.03, 0.03]


def test_retry_after_seconds_is_waited(local_server, server_faults):
    server_faults.add("429", retry_after=1, on="stream")
    with _client(local_server) as c:
        t0 = time.monotonic()
        assert c.tts.generate(**_args(FMT)).read() == _want(FMT)
        assert time.monotonic() - t0 >= 0.95


def test_retry_after_over_a_minute_is_not_waited_for(local_server, server_faults, caplog):
    server_faults.add("429", retry_after=120, count=0, on="stream")
    before = _requests(local_server)
    with _client(local_server) as c, pytest.raises(RateLimitError) as info:
        with caplog.at_level(logging.INFO, logger="cartesia.retry"):
            c.tts.generate(**_args(FMT))
    assert _delays(caplog) == [] and _requests(local_server) - before == 1
    assert info.value.retry_after == 120


def test_backoff_without_hints_doubles_from_half_a_second(local_server, server_faults, caplog):
    server_faults.add("503", count=2, on="stream")
    with _client(local_server) as c, caplog.at_level(logging.INFO, logger="cartesia.retry"):
        t0 = time.monotonic()
        assert c.tts.generate(**_args(FMT)).read() == _want(FMT)
        elapsed = time.monotonic() - t0
    # 0.5 s then 1 s, each jittered down by at most 25 % (and really slept).
    first, second = _delays(caplog)
    assert 0.37 <= first <= 0.5 and 0.74 <= second <= 1.0 and elapsed >= first + second - 0.02
    lines = [r.getMessage() for r in caplog.records if r.name == "cartesia.retry"]
    assert "attempt 2/3" in lines[0] and "attempt 3/3" in lines[1]


@pytest.mark.parametrize("max_retries, faults, ok", [(0, 1, False), (1, 1, True), (1, 2, False), (3, 3, True)])
def test_max_retries_counts_retries(local_server, server_faults, max_retries, faults, ok):
    server_faults.add("status", status=500, retry_after_ms=1, count=faults, on="stream")
    before = _requests(local_server)
    with _client(local_server, max_retries=max_retries) as c:
        if ok:
            assert c.tts.generate(**_args(FMT)).read() == _want(FMT)
        else:
            with pytest.raises(InternalServerError):
                c.tts.generate(**_args(FMT))
    assert _requests(local_server) - before == min(faults + 1, max_retries + 1)


def test_sse_and_voices_are_retried_too(local_server, server_faults):
    server_faults.add("status", status=503, retry_after_ms=1, on="stream")
    server_faults.add("status", status=503, retry_after_ms=1, on="voices")
    with _client(local_server) as c:
        assert [e.type for e in c.tts.generate_sse(**_args(FMT))][-1] == "done"
        assert c.voices.list().data
    assert not server_faults.pending()


async def test_async_retries(local_server, server_faults):
    server_faults.add("status", status=409, retry_after_ms=1, on="stream")
    before = _requests(local_server)
    async with AsyncCartesia(api_key=local_server.api_key, base_url=local_server.base_url) as c:
        assert await (await c.tts.generate(**_args(FMT))).read() == _want(FMT)
        assert _requests(local_server) - before == 2
        server_faults.add("status", status=503, should_retry=False, on="stream")
        with pytest.raises(InternalServerError):
            await c.tts.generate(**_args(FMT))
        assert _requests(local_server) - before == 3


# --- connection errors and timeouts ----------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: nothing listens there


def test_refused_connections_are_retried(caplog):
    with Cartesia(api_key="k", base_url=f"http://127.0.0.1:{_closed_port()}") as c:
        with caplog.at_level(logging.INFO, logger="cartesia.retry"), pytest.raises(APIConnectionError) as info:
            c.tts.generate(**_args(FMT))
    assert not isinstance(info.value, APITimeoutError)
    assert len([r for r in caplog.records if r.name == "cartesia.retry"]) == 2


def test_a_timeout_before_the_answer_is_retried():
    with RawServer("silent") as raw:
        with Cartesia(api_key="k", base_url=raw.host_for_env, timeout=0.3, max_retries=1) as c:
            with pytest.raises(APITimeoutError):
                c.tts.generate(**_args(FMT))
        deadline = time.monotonic() + 5
        while raw.connections < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert raw.connections == 2


async def test_async_timeout_before_the_answer_is_retried():
    with RawServer("silent") as raw:
        async with AsyncCartesia(api_key="k", base_url=raw.host_for_env, timeout=0.3, max_retries=2) as c:
            with pytest.raises(APITimeoutError):
                await c.tts.generate(**_args(FMT))
        assert raw.connections == 3


# --- never after audio was delivered ---------------------------------------------------------------


def test_no_retry_once_audio_was_delivered(local_server):
    fault = {"X-Cartesia-Fault": "drop;after_frames=2"}
    before = _requests(local_server)
    with _client(local_server) as c:
        chunks = c.tts.generate(**_args(FMT), extra_headers=fault).iter_bytes()
        got = next(chunks)
        assert got and _want(FMT).startswith(got)
        with pytest.raises(APIConnectionError):
            for _ in chunks:
                pass
    assert _requests(local_server) - before == 1


async def test_async_no_retry_once_audio_was_delivered(local_server):
    fault = {"X-Cartesia-Fault": "drop;after_frames=2"}
    before = _requests(local_server)
    async with AsyncCartesia(api_key=local_server.api_key, base_url=local_server.base_url) as c:
        response = await c.tts.generate(**_args(FMT), extra_headers=fault)
        with pytest.raises(APIConnectionError):
            async for _ in response.iter_bytes():
                pass
    assert _requests(local_server) - before == 1


# --- the shared rule -------------------------------------------------------------------------------


def test_the_current_api_policy():
    policy = current_retry_policy(2)
    assert policy.max_retries == 3  # attempts
    err = lambda status, **h: status_error(status, "", prefix="", headers=h)  # noqa: E731
    assert [policy.retryable(err(s)) for s in (408, 409, 429, 500, 599)] == [True] * 5
    assert [policy.retryable(err(s)) for s in (400, 401, 403, 404, 422)] == [False] * 5
    assert isinstance(err(409), ConflictError)
    assert not policy.retryable(err(503, **{"x-should-retry": "false"}))
    assert policy.retryable(err(400, **{"X-Should-Retry": "true"}))
    assert policy.retryable(err(400, **{"x-should-retry": "maybe"})) is False  # not a hint
    assert not policy.retryable(err(503, **{"retry-after": "61"}))
    assert policy.delay(1, err(503, **{"retry-after-ms": "250"})) == 0.25
    assert policy.delay(1, err(503, **{"retry-after": "2", "retry-after-ms": "5"})) == 0.005
    assert 0.375 <= policy.delay(1, err(503, **{"retry-after": "0"})) <= 0.5  # 0: the backoff
    assert 6.0 <= policy.delay(10) <= 8.0  # capped at 8 s
    timeouts = [ConnectTimeoutError("x"), FirstAudioTimeoutError("x")]
    assert all(policy.retryable(e) for e in timeouts)
    assert not any(policy.retryable(e) for e in (TotalTimeoutError("x"), ChunkGapTimeoutError("x")))
    assert should_retry_header({"x-should-retry": " TRUE "}) is True and should_retry_header(None) is None


# --- the server's fault kinds ----------------------------------------------------------------------


def test_status_fault_headers(local_server):
    fault = {"X-Cartesia-Fault": "status;status=503;should_retry=false;retry_after_ms=250;retry_after=2"}
    body = dict(_args(FMT), voice={"mode": "id", "id": _args(FMT)["voice"]})
    resp = httpx.post(
        local_server.base_url + "/tts/bytes", json=body, headers={**headers(local_server), **fault}, timeout=20
    )
    assert resp.status_code == 503
    assert resp.headers["x-should-retry"] == "false" and resp.headers["retry-after-ms"] == "250"
    assert resp.headers["retry-after"] == "2"
    # Through the control endpoint, as JSON: a 400 that says "retry me".
    control = local_server.base_url + "/_emulator/faults"
    spec = {"kind": "status", "status": 400, "should_retry": True, "on": "stream"}
    assert httpx.post(control, json=spec, headers=headers(local_server)).is_success
    resp = httpx.post(local_server.base_url + "/tts/bytes", json=body, headers=headers(local_server), timeout=20)
    assert resp.status_code == 400 and resp.headers["x-should-retry"] == "true"
    assert "retry-after-ms" not in resp.headers
    bad = httpx.post(control, json={"kind": "status", "should_retry": "yes"}, headers=headers(local_server))
    assert bad.status_code == 400 and "should_retry" in bad.text


def test_status_fault_spec_parsing():
    (fault,) = parse_fault_spec("status;status=400;should_retry=TRUE;retry_after_ms=5")
    assert fault.should_retry is True and fault.retry_after_ms == 5
    assert fault.status_headers() == {"retry-after-ms": "5", "x-should-retry": "true"}
    with pytest.raises(FaultSpecError, match="should_retry"):
        parse_fault_spec("503;should_retry=perhaps")


# --- a body that fails before anything was delivered ---------------------------------------------


def test_body_failing_before_any_audio_is_sent_again(local_server, server_faults):
    # The headers came (generate() returned), then the connection dropped before the first frame:
    # nothing reached the caller, so the call's next attempt runs (4.2.0 retries it too: it
    # reads the whole body inside its retry loop).
    for read in (lambda r: r.read(), lambda r: b"".join(r.iter_bytes())):
        server_faults.add("drop", after_frames=0, on="stream")
        before = _requests(local_server)
        with _client(local_server) as c:
            assert read(c.tts.generate(**_args(FMT))) == _want(FMT)
        assert _requests(local_server) - before == 2 and not server_faults.pending()
    server_faults.add("drop", after_frames=0, on="stream")
    with _client(local_server) as c:
        events = list(c.tts.generate_sse(**_args(FMT)))
    assert events[-1].type == "done" and b"".join(e.audio for e in events if e.type == "chunk") == _want(FMT)


def test_body_failures_use_up_the_same_retries(local_server, server_faults):
    # One status retry and one body retry: max_retries=1 allows only one of them.
    server_faults.add("status", status=503, retry_after_ms=1, on="stream")
    server_faults.add("drop", after_frames=0, on="stream")
    before = _requests(local_server)
    with _client(local_server, max_retries=1) as c, pytest.raises(APIConnectionError):
        c.tts.generate(**_args(FMT)).read()
    assert _requests(local_server) - before == 2
    server_faults.add("drop", after_frames=0, on="stream")
    with _client(local_server, max_retries=0) as c, pytest.raises(APIConnectionError):
        c.tts.generate(**_args(FMT)).read()


async def test_async_body_failing_before_any_audio_is_sent_again(local_server, server_faults):
    async with AsyncCartesia(api_key=local_server.api_key, base_url=local_server.base_url) as c:
        server_faults.add("drop", after_frames=0, on="stream")
        assert await (await c.tts.generate(**_args(FMT))).read() == _want(FMT)
        server_faults.add("drop", after_frames=0, on="stream")
        stream = await c.tts.generate_sse(**_args(FMT))
        assert [e.type async for e in stream][-1] == "done"
    assert not server_faults.pending()
