"""The official cartesia 1.4.0 (``Cartesia-Version: 2024-06-10``) voices API, unchanged, against the
local server: bare-array list, get, clone from a clip (an embedding), create from it, mix, delete.

It runs in a subprocess with ``python -S``, ``PYTHONPATH`` set to its own install directory and a
working directory outside the checkout, so nothing of this checkout can stand in for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from server_fixtures import cache_dir, install_once, pip_install_target

from cartesia.server.v1.voice_catalogue import BUILTIN_VOICES
from cartesia.server.voices import EMBEDDING_SIZE, embedding_from_bytes

VERSION = "1.4.0"
TESSA = "6ccbfb76-1fc6-48f7-b71d-91ac6298247b"

SCRIPT = r"""
import json, os, sys
import cartesia
assert cartesia.__file__.startswith(os.environ["CLIENT_DIR"]), cartesia.__file__
from cartesia import Cartesia

client = Cartesia(api_key="any-key")  # CARTESIA_BASE_URL=localhost:<port>: plain http
out = {}
voices = client.voices.list()
out["listed"] = [v["id"] for v in voices]
out["fields"] = sorted(voices[0])
tessa = client.voices.get(id=sys.argv[1])
out["tessa_name"] = tessa["name"]
with open("clip.wav", "wb") as f:
    f.write(b"RIFF a clip for 1.4.0")
out["clip_embedding"] = client.voices.clone(filepath="clip.wav", enhance=False)
made = client.voices.create(name="Mine", description="from a clip", embedding=out["clip_embedding"])
out["made"] = made
halves = [{"id": sys.argv[1], "weight": 0.5}, {"id": made["id"], "weight": 0.5}]
out["mixed"] = client.voices.mix(halves)
clone = client.voices.clone(filepath="clip.wav", mode="stability", name="Direct", description="d")
out["clone"] = clone
client.voices.delete(id=made["id"])
try:
    client.voices.get(id=made["id"])
    out["deleted"] = False
except ValueError as exc:
    out["deleted"] = "404" in str(exc)
try:
    client.voices.delete(id=sys.argv[1])
    out["catalogue_delete"] = "allowed"
except ValueError as exc:
    out["catalogue_delete"] = str(exc)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def client_dir() -> Path:
    def build(scratch: Path) -> None:
        pip_install_target(scratch, [f"cartesia=={VERSION}"], f"the official cartesia=={VERSION}")

    return install_once(cache_dir(f"official-{VERSION}"), build)


@pytest.mark.slow
def test_official_140_voices(make_server, client_dir, tmp_path):
    server = make_server()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CARTESIA_"))}
    env.update(
        CARTESIA_BASE_URL=server.host_for_env,
        PYTHONPATH=str(client_dir),
        CLIENT_DIR=str(client_dir),
    )
    script = tmp_path / "voices_140.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, "-S", str(script), TESSA],
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"official 1.4.0 client failed:\n{proc.stdout}\n{proc.stderr}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    assert out["listed"] == [r.id for r in BUILTIN_VOICES]
    assert out["fields"] == sorted(
        ["id", "user_id", "is_public", "name", "description", "created_at", "embedding", "language"]
    )
    assert out["tessa_name"] == "Tessa"
    # enhance=False: the v0 clone rule for the same bytes.
    assert out["clip_embedding"] == embedding_from_bytes(b"RIFF a clip for 1.4.0", salt=b"clip")
    made = out["made"]
    assert made["name"] == "Mine" and made["is_public"] is False
    assert made["embedding"] == out["clip_embedding"]
    assert len(out["mixed"]) == EMBEDDING_SIZE and out["mixed"] != out["clip_embedding"]
    assert out["clone"]["name"] == "Direct" and len(out["clone"]["embedding"]) == EMBEDDING_SIZE
    assert out["deleted"] is True
    assert "is a catalogue voice" in out["catalogue_delete"]  # 1.x shows only the body
    assert server.voice_store.find(out["clone"]["id"]) is not None
