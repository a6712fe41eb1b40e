"""The official cartesia 0.0.5 client from PyPI, unchanged, against the local server.

It runs in a subprocess with ``python -S`` and ``PYTHONPATH`` set to its own install directory
and a working directory outside the checkout, so neither our package nor the dev environment
can stand in for it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from cartesia.server.engines.tone import ToneEngine
from cartesia.server.voices import VOICES_BY_NAME, voice_for_embedding

SCRIPT = r'''
import asyncio, hashlib, json, os, sys
import cartesia.tts
assert cartesia.tts.__file__.startswith(os.environ["SEED_DIR"]), cartesia.tts.__file__
from cartesia.tts import AsyncCartesiaTTS, CartesiaTTS

out = {}
h = lambda b: hashlib.sha256(b).hexdigest()
client = CartesiaTTS(api_key="seed-key")
voices = client.get_voices()
out["names"] = sorted(voices)
out["listed_fields"] = sorted(voices["Milo"])
full = client.get_voices(skip_embeddings=False)
milo = client.get_voice_embedding(voice_id=voices["Milo"]["id"])
assert milo == full["Milo"]["embedding"] and len(milo) == 192
out["milo"] = milo
clone_link = client.get_voice_embedding(link="https://www.youtube.com/watch?v=seed")
with open("clip.wav", "wb") as f:
    f.write(b"RIFF not really a wav, but a clip")
clone_clip = client.get_voice_embedding(filepath="clip.wav")
out["clone_link"], out["clone_clip"] = clone_link, clone_clip

text = "Compatibility check."
a = client.generate(transcript=text, voice=milo, websocket=False)
b = client.generate(transcript=text, voice=milo, websocket=True)
assert a["sampling_rate"] == b["sampling_rate"] == 44100
out["http"], out["ws"] = h(a["audio"]), h(b["audio"])
chunks = list(client.generate(transcript=text, voice=milo, stream=True, websocket=False, chunk_time=0.2))
out["http_stream"] = h(b"".join(c["audio"] for c in chunks))
out["http_stream_chunks"] = len(chunks)
chunks = list(
    client.generate(transcript=text, voice=clone_link, stream=True, websocket=True, chunk_time=0.5, duration=1)
)
out["ws_stream_clone"] = h(b"".join(c["audio"] for c in chunks))
out["transcribe"] = client.transcribe(a["audio"])

interrupting = CartesiaTTS(api_key="seed-key", experimental_ws_handle_interrupts=True)
body = interrupting._generate_request_body(
    transcript="A long sentence that the listener interrupts after three chunks.",
    voice=milo, model_id="genial-planet-1346")
gen = interrupting._generate_ws(body, context_id="test-interrupt")
first = [next(gen) for _ in range(3)]
assert all(c["context_id"] == "test-interrupt" for c in first)
gen.close()
c = interrupting.generate(transcript=text, voice=milo)
out["experimental"] = h(c["audio"])

async def run_async():
    res = {}
    client = AsyncCartesiaTTS(api_key="seed-key")
    x = await client.generate(transcript=text, voice=milo, websocket=False)
    res["async_http"] = h(x["audio"])
    x = await client.generate(transcript=text, voice=milo, websocket=True)
    res["async_ws"] = h(x["audio"])
    parts = [p["audio"] async for p in await client.generate(transcript=text, voice=milo, stream=True, websocket=False)]
    res["async_http_stream"] = h(b"".join(parts))
    parts = [p["audio"] async for p in await client.generate(transcript=text, voice=milo, stream=True, websocket=True)]
    res["async_ws_stream"] = h(b"".join(parts))
    res["async_transcribe"] = await client.transcribe(x["audio"])
    await client.close()
    inter = AsyncCartesiaTTS(api_key="seed-key", experimental_ws_handle_interrupts=True)
    gen = inter._generate_ws(body, context_id="test-async-interrupt")
    got = [await gen.__anext__() for _ in range(2)]
    await gen.aclose()
    x = await inter.generate(transcript=text, voice=milo)
    res["async_experimental"] = h(x["audio"])
    await inter.close()
    return res

out.update(asyncio.run(run_async()))
print(json.dumps(out))
'''


@pytest.mark.slow
def test_official_client_against_local_server(make_server, seed_client_path, tmp_path):
    server = make_server(engine="tone", pace="none")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "CARTESIA_"))
    }
    env.update(
        CARTESIA_BASE_URL=server.host_for_env,
        PYTHONPATH=str(seed_client_path),
        SEED_DIR=str(seed_client_path),
    )
    script = tmp_path / "seed_check.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, "-S", str(script)],
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"official client failed:\n{proc.stdout}\n{proc.stderr}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    assert {"Milo", "Graham"} <= set(out["names"]) and len(out["names"]) >= 8
    assert out["listed_fields"] == ["description", "id", "name"]
    assert tuple(out["milo"]) == VOICES_BY_NAME["milo"].embedding
    assert out["clone_link"] != out["clone_clip"]

    def sha(text: str, voice, duration: float = None) -> str:
        samples = ToneEngine().synthesize(text, voice)
        if duration is not None:
            samples = samples[: int(duration * 44100)]
        return hashlib.sha256(samples.astype("<f4").tobytes()).hexdigest()

    expected = sha("Compatibility check.", VOICES_BY_NAME["milo"])
    for key in ("http", "ws", "http_stream", "experimental", "async_http", "async_ws",
                "async_http_stream", "async_ws_stream", "async_experimental"):
        assert out[key] == expected, key
    assert out["http_stream_chunks"] > 2
    assert out["ws_stream_clone"] == sha("Compatibility check.", voice_for_embedding(out["clone_link"]), 1)
    assert out["transcribe"] == out["async_transcribe"] == "Compatibility check."
    # The interrupts reached the server as acks and cancels.
    assert server.stats["generations_cancelled"] == 2
    assert server.stats["acks"] >= 3
    assert server.stats["auth_failures"] == 0
