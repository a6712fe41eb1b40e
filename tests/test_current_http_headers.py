"""``CARTESIA_CUSTOM_HEADERS`` (newline-separated ``Name: value`` lines, as 4.2.0 reads it) against
the real local server: sent with every request, under ``default_headers``; malformed lines are a
``ConfigurationError`` that names the variable and never echoes the line."""

from __future__ import annotations

import pytest
from test_current_http import RAW, _args, _want

from cartesia import BadRequestError, Cartesia, InternalServerError
from cartesia._current.config import custom_headers_from_env
from cartesia.errors import ConfigurationError

FMT = RAW[1]
ENV = "CARTESIA_CUSTOM_HEADERS"


def test_env_headers_reach_the_server(local_server, monkeypatch):
    # The server obeys a request's own X-Cartesia-Fault header: proof that the header was sent.
    monkeypatch.setenv(ENV, "X-Cartesia-Fault: 503;should_retry=false\r\n\nX-Other :  spaced  \n")
    with Cartesia(api_key=local_server.api_key, base_url=local_server.base_url, max_retries=0) as c:
        assert c.config.default_headers == {"X-Cartesia-Fault": "503;should_retry=false", "X-Other": "spaced"}
        with pytest.raises(InternalServerError):
            c.tts.generate(**_args(FMT))


def test_default_headers_override_env_headers_whatever_their_case(local_server, monkeypatch):
    monkeypatch.setenv(ENV, "X-Cartesia-Fault: 503;count=0")
    # An empty fault spec is no fault: the call succeeds only if ours replaced the env's.
    with Cartesia(
        api_key=local_server.api_key, base_url=local_server.base_url, default_headers={"x-cartesia-fault": ""}
    ) as c:
        assert c.config.default_headers == {"x-cartesia-fault": ""}
        assert c.tts.generate(**_args(FMT)).read() == _want(FMT)
        # A call's extra_headers override both, again case-insensitively.
        with pytest.raises(InternalServerError):
            c.tts.generate(**_args(FMT), extra_headers={"X-CARTESIA-FAULT": "503;should_retry=false"})


def test_env_can_set_the_version(local_server, monkeypatch):
    monkeypatch.setenv(ENV, "Cartesia-Version: 2024-11-13")
    with Cartesia(api_key=local_server.api_key, base_url=local_server.base_url) as c:
        assert c.config.version == "2024-11-13"
        with pytest.raises(BadRequestError) as info:
            c.tts.generate(**_args(FMT, ""))
    assert set(info.value.body) == {"error", "status_code"}  # the old error shape of that version


@pytest.mark.parametrize(
    "value, line",
    [
        ("X-Ok: 1\nsk_live_secretkey123", 2),  # no colon: maybe a pasted key
        (": sk_live_secretkey123", 1),  # no name
        ("Bad Name: sk_live_secretkey123", 1),  # a space in the name
        ("X-Key: sk_live_\x01secretkey123", 1),  # a control character in the value
    ],
)
def test_malformed_lines(monkeypatch, value, line):
    monkeypatch.setenv(ENV, value)
    with pytest.raises(ConfigurationError) as info:
        Cartesia(api_key="k")
    message = str(info.value)
    assert ENV in message and f"line {line}" in message
    assert "secretkey123" not in message


def test_unset_or_blank_is_no_headers(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert custom_headers_from_env() == {}
    monkeypatch.setenv(ENV, "\n  \n")
    assert custom_headers_from_env() == {}
    monkeypatch.setenv(ENV, "A: b: c")  # the first colon splits, as 4.2.0
    assert custom_headers_from_env() == {"A": "b: c"}
