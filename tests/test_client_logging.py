"""Logging and environment: a silent library by default, one retry line per retry everywhere,
and the aiohttp session honours proxy variables like httpx and websockets do."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from raw_server import RawServer
from test_client_support import async_client, run_isolated, sync_client, voice  # noqa: F401

from cartesia.errors import CartesiaTimeoutError
from cartesia.tts import AsyncCartesiaTTS
from cartesia.utils import retry_on_connection_error

RETRY_LINE = re.compile(r"^Retrying (.+) after (\w+) \(attempt (\d)/(\d) in \d+\.\d\d s\)$")


def test_the_cartesia_logger_has_a_null_handler() -> None:
    import cartesia

    assert any(
        isinstance(h, logging.NullHandler) for h in logging.getLogger(cartesia.__name__).handlers
    )


def test_retries_print_nothing_without_logging_configured(local_server: Any) -> None:
    script = textwrap.dedent(
        """
        from cartesia.tts import CartesiaTTS
        client = CartesiaTTS(backoff_factor=0.01)
        client.get_voices()
        client.close()
        """
    )
    local_server.faults.add("500", on="voices")
    env = {
        **os.environ,
        "CARTESIA_BASE_URL": local_server.host_for_env,
        "CARTESIA_API_KEY": local_server.api_key,
    }
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert local_server.stats["faults_fired"] >= 1


def _retry_records(caplog: pytest.LogCaptureFixture) -> list:
    return [r for r in caplog.records if r.getMessage().startswith("Retrying ")]


@pytest.mark.parametrize(
    "path", ["ws", "http", "voices", "async_ws", "async_http", "async_transcribe", "decorator"]
)
def test_every_retry_is_logged_once_at_one_level(
    local_server: Any, server_faults: Any, voice: list, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    caplog.set_level(logging.DEBUG)
    on = {
        "ws": "ws",
        "async_ws": "ws",
        "http": "stream",
        "async_http": "stream",
        "voices": "voices",
        "async_transcribe": "transcriptions",
    }.get(path, "any")
    if path != "decorator":
        server_faults.add("500", on=on, count=2)
    if path in ("ws", "http", "voices"):
        client = sync_client(local_server)
        try:
            if path == "voices":
                client.get_voices()
            else:
                client.generate(transcript="x", voice=voice, websocket=path == "ws")
        finally:
            client.close()
    elif path == "decorator":
        calls = []

        @retry_on_connection_error(max_retries=3, backoff_factor=0.001)
        def flaky() -> None:
            calls.append(1)
            if len(calls) < 3:
                raise ConnectionResetError("reset")

        flaky()
    else:

        async def main() -> None:
            client = async_client(local_server)
            try:
                if path == "async_transcribe":
                    audio = (
                        await client.generate(transcript="read", voice=voice, websocket=False)
                    )["audio"]
                    assert await client.transcribe(audio) == "read"
                else:
                    await client.generate(transcript="x", voice=voice, websocket=path == "async_ws")
            finally:
                await client.close()

        run_isolated(main())
    records = _retry_records(caplog)
    assert len(records) == 2, [r.getMessage() for r in records]
    assert {r.levelno for r in records} == {logging.INFO}
    assert {r.name for r in records} == {"cartesia.retry"}
    for n, record in enumerate(records, start=2):
        match = RETRY_LINE.match(record.getMessage())
        assert match, record.getMessage()
        assert int(match.group(3)) == n and match.group(4) == "3"


def test_async_http_honours_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    with RawServer("silent") as proxy:
        for name in (
            "NO_PROXY",
            "no_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        client = AsyncCartesiaTTS(
            api_key="k" * 12,
            base_url="http://tts.example.invalid",
            max_retries=1,
            connect_timeout=1,
            first_audio_timeout=1,
            total_timeout=3,
        )

        async def main() -> None:
            try:
                with pytest.raises(CartesiaTimeoutError):
                    await client.generate(transcript="x", voice=[0.1] * 192, websocket=False)
            finally:
                await client.close()

        run_isolated(main())
        assert proxy.connections == 1  # the request went to the proxy, not to the host
