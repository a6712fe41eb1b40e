"""The URL scheme rule, decided on the parsed host; a malformed base URL fails before any I/O.

Regression: a substring test gave ``api.localhost.example.com`` plain ``ws://`` (with the key in
the query string) and sent ``127.0.0.1:PORT`` to TLS; ``localhost:notaport`` failed late, with a
different error on each path.
"""

from __future__ import annotations

import pytest

from cartesia._client.config import Endpoints, is_loopback
from cartesia.errors import ConfigurationError
from cartesia.tts import AsyncCartesiaTTS, CartesiaTTS


@pytest.mark.parametrize(
    "base,http,ws",
    [
        ("localhost:8000", "http://localhost:8000/v0", "ws://localhost:8000/v0"),
        ("LOCALHOST", "http://LOCALHOST/v0", "ws://LOCALHOST/v0"),
        ("127.0.0.1:8000", "http://127.0.0.1:8000/v0", "ws://127.0.0.1:8000/v0"),
        ("127.45.6.7", "http://127.45.6.7/v0", "ws://127.45.6.7/v0"),
        ("[::1]:8000", "http://[::1]:8000/v0", "ws://[::1]:8000/v0"),
        (
            "api.localhost.example.com",
            "https://api.localhost.example.com/v0",
            "wss://api.localhost.example.com/v0",
        ),
        (
            "localhost.evil.com:443",
            "https://localhost.evil.com:443/v0",
            "wss://localhost.evil.com:443/v0",
        ),
        ("128.0.0.1", "https://128.0.0.1/v0", "wss://128.0.0.1/v0"),
        ("api.cartesia.ai", "https://api.cartesia.ai/v0", "wss://api.cartesia.ai/v0"),
        ("http://tts.internal:8080/", "http://tts.internal:8080/v0", "ws://tts.internal:8080/v0"),
        ("https://localhost:8443", "https://localhost:8443/v0", "wss://localhost:8443/v0"),
        ("wss://example.com", "https://example.com/v0", "wss://example.com/v0"),
    ],
)
def test_scheme_is_decided_on_the_parsed_host(base: str, http: str, ws: str) -> None:
    ep = Endpoints(base, "v0")
    assert (ep.http, ep.ws) == (http, ws)


def test_is_loopback() -> None:
    assert all(is_loopback(h) for h in ("localhost", "127.0.0.1", "127.255.0.9", "::1", "[::1]"))
    assert not any(
        is_loopback(h) for h in ("localhost.example.com", "10.0.0.1", "::2", "example.com")
    )


@pytest.mark.parametrize(
    "base",
    [
        "localhost:notaport",
        "localhost:99999",
        "http://",
        "",
        ":8000",
        "ftp://example.com",
        "user@host",
    ],
)
def test_malformed_base_url_is_one_typed_error_before_any_io(
    monkeypatch: pytest.MonkeyPatch, base: str
) -> None:
    monkeypatch.setenv("CARTESIA_BASE_URL", base)
    for cls in (CartesiaTTS, AsyncCartesiaTTS):
        with pytest.raises(ConfigurationError) as info:
            cls(api_key="secret-key-0123456789")
        assert isinstance(info.value, ValueError)
        assert "secret-key-0123456789" not in str(info.value)
    with pytest.raises(ConfigurationError):
        CartesiaTTS(api_key="k", base_url=base or "http://")
