"""A script that never closes its client still exits, promptly (sync and async, ws and HTTP).

Regression: the 0.0.5 README creates a sync client at module level and exits without
``close()``; ``__del__`` then closed the websocket during interpreter shutdown, which joined the
library's receive thread and never returned.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

SYNC = """
from cartesia.tts import CartesiaTTS
client = CartesiaTTS()
voice = client.get_voice_embedding(voice_id=client.get_voices()["Milo"]["id"])
stream = client.generate(transcript="Hello there, a few chunks of audio.", voice=voice, websocket={ws}, stream=True)
next(stream)  # a generation left running, too
out = client.generate(transcript="Hello", voice=voice, websocket={ws})
assert out["audio"]
print("generated")
"""

ASYNC = """
import asyncio
from cartesia.tts import AsyncCartesiaTTS
client = AsyncCartesiaTTS()
voice = client.get_voice_embedding(voice_id=client.get_voices()["Milo"]["id"])

async def main():
    stream = await client.generate(
        transcript="Hello there, a few chunks of audio.", voice=voice, websocket={ws}, stream=True
    )
    await stream.__anext__()
    out = await client.generate(transcript="Hello", voice=voice, websocket={ws})
    assert out["audio"]
    print("generated")

asyncio.run(main())
"""


@pytest.mark.parametrize("websocket", [True, False], ids=["ws", "http"])
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_script_without_close_exits(local_server: Any, kind: str, websocket: bool) -> None:
    source = textwrap.dedent(SYNC if kind == "sync" else ASYNC).format(ws=websocket)
    env = {
        **os.environ,
        "CARTESIA_BASE_URL": local_server.host_for_env,
        "CARTESIA_API_KEY": local_server.api_key,
        "PYTHONWARNINGS": "ignore",
    }
    start = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", source], env=env, capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired as exc:  # the hang: fail, with what the script printed
        pytest.fail(f"the script did not exit within 60 s: {exc.stdout!r} {exc.stderr!r}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "generated"
    assert time.monotonic() - start < 30
