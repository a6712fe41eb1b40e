"""Bad input is refused before any I/O, with one error class per mistake on every transport.

Regression: the server found these, so the same mistake was a ``GenerationError`` over the
websocket, a ``BadRequestError`` embedding the raw JSON body over HTTP, and an oversized
websocket message was retried twice before surfacing as a bare "code 1009".
"""

from __future__ import annotations

import math
import time
from typing import Any, Dict

import pytest
from raw_server import RawServer
from test_client_support import run_isolated

from cartesia.errors import InvalidInputError, TranscriptTypeError
from cartesia.tts import AsyncCartesiaTTS, CartesiaTTS

GOOD = [0.1] * 192
MISTAKES: Dict[str, Dict[str, Any]] = {
    "voice None": dict(voice=None),
    "embedding too short": dict(voice=[0.1] * 10),
    "embedding with NaN": dict(voice=[math.nan] + GOOD[1:]),
    "NaN duration": dict(duration=math.nan),
    "negative duration": dict(duration=-2),
    "transcript not a string": dict(transcript=12345),
    "1 MB transcript": dict(transcript="x" * 1_000_000),
}
FIELDS = {
    "voice None": "voice",
    "embedding too short": "voice",
    "embedding with NaN": "voice",
    "NaN duration": "duration",
    "negative duration": "duration",
    "transcript not a string": "transcript",
    "1 MB transcript": "transcript",
}


def _kwargs(mistake: str) -> Dict[str, Any]:
    return {"transcript": "Hello", "voice": GOOD, **MISTAKES[mistake]}


@pytest.fixture(scope="module")
def counting_server() -> Any:
    """Counts connections: a refused input must never open one."""
    with RawServer("silent") as server:
        yield server


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_each_mistake_is_one_error_class_on_every_transport(
    counting_server: Any, mistake: str
) -> None:
    sync = CartesiaTTS(api_key="k" * 12, base_url=counting_server.host_for_env, max_retries=3)
    aio = AsyncCartesiaTTS(api_key="k" * 12, base_url=counting_server.host_for_env, max_retries=3)
    errors = []
    start = time.monotonic()
    try:
        for websocket in (True, False):
            for stream in (False, True):
                with pytest.raises(InvalidInputError) as info:
                    sync.generate(**_kwargs(mistake), websocket=websocket, stream=stream)
                errors.append(info.value)

                # Defaults bind this iteration's values (call() runs at once, but keep it obviously safe).
                async def call(websocket: bool = websocket, stream: bool = stream) -> None:
                    await aio.generate(**_kwargs(mistake), websocket=websocket, stream=stream)

                with pytest.raises(InvalidInputError) as info:
                    run_isolated(call())
                errors.append(info.value)
    finally:
        sync.close()
        run_isolated(aio.close())
    assert {type(e) for e in errors} == {type(errors[0])}, errors
    assert {e.field for e in errors} == {FIELDS[mistake]}
    assert {str(e) for e in errors} == {str(errors[0])}
    assert counting_server.connections == 0  # before any I/O: never sent, never retried
    assert time.monotonic() - start < 5
    if mistake == "transcript not a string":
        assert isinstance(errors[0], TranscriptTypeError) and isinstance(errors[0], AttributeError)
    assert "{" not in str(errors[0])  # a message for people, not a JSON body
