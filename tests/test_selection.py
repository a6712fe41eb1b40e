"""Which twin cartesia._stream picks, driven by environment variables, checked in fresh interpreters."""

import os
import subprocess
import sys

import pytest

PROBE = "import cartesia._stream as s, cartesia.streaming as p; print(s.IMPLEMENTATION, p.StreamParser.__module__)"


def probe(**env_vars):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTESIA_")}
    env.update(env_vars)
    return subprocess.run(
        [sys.executable, "-I", "-W", "error", "-c", PROBE],
        capture_output=True,
        text=True,
        env=env,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        timeout=60,
    )


@pytest.mark.c_extension
def test_default_picks_c():
    proc = probe()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["c", "cartesia._stream_c"]


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_no_extensions_picks_py(value):
    proc = probe(CARTESIA_NO_EXTENSIONS=value)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["py", "cartesia._stream_py"]


@pytest.mark.c_extension
@pytest.mark.parametrize("value", ["0", "", "no", "false"])
def test_zero_and_empty_mean_unset(value):
    proc = probe(CARTESIA_NO_EXTENSIONS=value)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["c", "cartesia._stream_c"]


def test_require_with_no_extensions_is_an_import_error():
    proc = probe(CARTESIA_NO_EXTENSIONS="1", CARTESIA_REQUIRE_EXTENSIONS="1")
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr and "CARTESIA_REQUIRE_EXTENSIONS" in proc.stderr


@pytest.mark.c_extension
def test_require_alone_is_fine():
    proc = probe(CARTESIA_REQUIRE_EXTENSIONS="1", CARTESIA_NO_EXTENSIONS="0")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == "c"


def test_reimport_follows_the_flag(monkeypatch):
    import importlib

    import cartesia._compat
    import cartesia._stream

    try:
        monkeypatch.setenv("CARTESIA_NO_EXTENSIONS", "1")
        monkeypatch.delenv("CARTESIA_REQUIRE_EXTENSIONS", raising=False)  # CI sets it
        importlib.reload(cartesia._compat)
        importlib.reload(cartesia._stream)
        assert cartesia._stream.IMPLEMENTATION == "py"
    finally:
        monkeypatch.undo()
        importlib.reload(cartesia._compat)
        importlib.reload(cartesia._stream)
