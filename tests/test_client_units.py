"""Small pure pieces of the client: retry rules, Retry-After, URL rules, routing, decorators."""

from __future__ import annotations

import email.utils
import logging
import time
from typing import Any

import pytest

from cartesia._client.config import Endpoints
from cartesia._client.errors import frame_error, parse_retry_after, server_message, status_error
from cartesia._client.generation import Deadline, Timeouts
from cartesia._client.retry import RetryPolicy
from cartesia.errors import (
    APIError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    CartesiaConnectionError,
    ChunkGapTimeoutError,
    ConflictError,
    ConnectTimeoutError,
    FirstAudioTimeoutError,
    GenerationError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TotalTimeoutError,
    UnprocessableEntityError,
    WebSocketClosedError,
)
from cartesia.protocol.v0 import ErrorFrame
from cartesia.utils import retry_on_connection_error, retry_on_connection_error_async


def test_status_error_mapping() -> None:
    # (the exact class, 4.2.0's name for it, and the class code written for our v0 clients catches)
    cases = {400: BadRequestError, 422: UnprocessableEntityError, 401: AuthenticationError,
             403: PermissionDeniedError, 404: NotFoundError, 429: RateLimitError, 500: ServerError,
             503: ServerError, 409: ConflictError}
    caught = {422: BadRequestError, 403: AuthenticationError, 409: APIStatusError, 500: InternalServerError}
    for status, cls in cases.items():
        err = status_error(status, '{"error": "nope", "request_id": "r-1"}', prefix="P: ", headers={"Retry-After": "2"})
        assert type(err) is cls and isinstance(err, ValueError)
        assert isinstance(err, caught.get(status, cls)) and isinstance(err, APIError)
        assert err.body == {"error": "nope", "request_id": "r-1"}
        assert err.status_code == status and err.request_id == "r-1"
        assert str(err) == 'P: {"error": "nope", "request_id": "r-1"}'
    assert status_error(429, "", prefix="", headers={"retry-after": "2"}).retry_after == 2.0
    assert status_error(400, "x", prefix="", headers={"X-Request-Id": "abc"}).request_id == "abc"
    assert server_message('{"detail": [{"msg": "bad"}]}') == '[{"msg": "bad"}]'
    assert server_message("plain text") == "plain text"


def test_frame_error() -> None:
    err = frame_error(ErrorFrame("transcript empty", 400, None, None), "ctx", "key")
    assert isinstance(err, GenerationError) and isinstance(err, RuntimeError)
    assert err.status_code == 400 and err.context_id == "ctx"
    assert str(err) == "Failed to generate audio. transcript empty"


def test_parse_retry_after() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after({}) is None
    assert parse_retry_after({"Retry-After": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"Retry-After": "-3"}) == 0.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < parse_retry_after({"Retry-After": when}) <= 30


def test_retry_policy_rules() -> None:
    policy = RetryPolicy(max_retries=3, backoff_factor=1.0)
    retryable = [
        RateLimitError("x", retry_after=1), RateLimitError("x"), ServerError("x"), ConnectionResetError(),
        CartesiaConnectionError("x"), WebSocketClosedError("x", code=1011), ConnectTimeoutError("x"),
        GenerationError("x", status_code=429), GenerationError("x", status_code=503),
    ]
    never = [
        BadRequestError("x"), AuthenticationError("x"), NotFoundError("x"), APIStatusError("x", status_code=409),
        GenerationError("x", status_code=400), GenerationError("x"), FirstAudioTimeoutError("x"),
        ChunkGapTimeoutError("x"), ValueError("x"), RateLimitError("x", retry_after=3600),
    ]
    assert all(policy.retryable(e) for e in retryable)
    assert not any(policy.retryable(e) for e in never)


def test_backoff_is_jittered_exponential_and_honours_retry_after() -> None:
    policy = RetryPolicy(backoff_factor=1.0, jitter=0.5, max_backoff=30)
    for attempt, base in ((1, 1.0), (2, 2.0), (3, 4.0), (10, 30.0)):
        delays = {policy.delay(attempt) for _ in range(50)}
        assert all(base * 0.5 <= d <= base for d in delays)
        assert len(delays) > 1  # jitter spreads clients apart
    assert policy.delay(1, RateLimitError("x", retry_after=5)) == 5
    assert RetryPolicy(backoff_factor=1, jitter=0).delay(2) == 2


def test_endpoints() -> None:
    assert Endpoints("localhost:80", "v0").http == "http://localhost:80/v0"
    assert Endpoints("api.cartesia.ai", "v0").ws == "wss://api.cartesia.ai/v0"
    assert Endpoints("https://example.com/", "v0").ws == "wss://example.com/v0"
    assert Endpoints("ws://127.0.0.1:5", "v0").http == "http://127.0.0.1:5/v0"
    with pytest.raises(ValueError):
        Endpoints("ftp://x", "v0")


def test_deadline_picks_the_right_timeout() -> None:
    d = Deadline(Timeouts(connect=1, first_audio=0.05, chunk_gap=0.5, total=None))
    assert 0 < d.remaining() <= 0.05
    assert isinstance(d.expired(), FirstAudioTimeoutError)
    d.audio()
    assert 0.05 < d.remaining() <= 0.5
    assert isinstance(d.expired(), ChunkGapTimeoutError)
    d = Deadline(Timeouts(first_audio=None, chunk_gap=None, total=0.01))
    time.sleep(0.02)
    assert d.remaining() == 0 and isinstance(d.expired(), TotalTimeoutError)
    with pytest.raises(TotalTimeoutError):
        d.check()
    assert Deadline(Timeouts(first_audio=None, chunk_gap=None)).remaining() is None
    with pytest.raises(ValueError):
        Timeouts(connect=0)


def test_sync_decorator(caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    @retry_on_connection_error(max_retries=3, backoff_factor=0.001)
    def flaky(n: int) -> str:
        calls.append(n)
        if len(calls) < 3:
            raise ConnectionResetError("reset")
        return "ok"

    assert flaky(1) == "ok" and calls == [1, 1, 1]
    assert flaky.__name__ == "flaky"

    @retry_on_connection_error(max_retries=2, backoff_factor=0.001, logger=logging.getLogger("t"))
    def always() -> None:
        raise ConnectionRefusedError("no")

    with pytest.raises(CartesiaConnectionError, match="Exception occurred after 2 tries.") as info:
        always()
    assert isinstance(info.value.__cause__, ConnectionRefusedError)

    @retry_on_connection_error(max_retries=5, backoff_factor=0.001)
    def bad_input() -> None:
        calls.append("bad")
        raise BadRequestError("no", status_code=400)

    calls.clear()
    with pytest.raises(BadRequestError):
        bad_input()
    assert calls == ["bad"]  # 4xx: never retried


def test_sync_decorator_on_generators_never_replays() -> None:
    attempts = []

    @retry_on_connection_error(max_retries=3, backoff_factor=0.001)
    def gen(fail_after: int) -> Any:
        attempts.append(1)
        for i in range(3):
            if len(attempts) < 2 and i == fail_after:
                raise ConnectionResetError()
            yield i

    assert list(gen(0)) == [0, 1, 2] and len(attempts) == 2  # failed before yielding: retried
    attempts.clear()
    out = []
    with pytest.raises(ConnectionResetError):
        for x in gen(1):
            out.append(x)
    assert out == [0] and len(attempts) == 1  # failed after yielding: raised, not replayed


async def test_async_decorators() -> None:
    attempts = []

    @retry_on_connection_error_async(max_retries=3, backoff_factor=0.001)
    async def agen() -> Any:
        attempts.append(1)
        if len(attempts) < 3:
            raise ServerError("boom", status_code=500)
        yield "a"
        yield "b"

    assert [x async for x in agen()] == ["a", "b"] and len(attempts) == 3

    @retry_on_connection_error_async(max_retries=2, backoff_factor=0.001)
    async def coro() -> str:
        attempts.append(2)
        raise RateLimitError("slow down", status_code=429, retry_after=0.01)

    attempts.clear()
    with pytest.raises(RateLimitError):
        await coro()
    assert attempts == [2, 2]
