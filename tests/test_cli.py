"""The ``cartesia`` command, run as a real subprocess against real local servers."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pytest

from cartesia import cli, streaming
from cartesia.cli import SEGMENT_CHARS, WavWriter, split_text

TEXT = "Hello! Welcome to Cartesia."
LONG_TEXT = " ".join(f"Sentence number {i} of a long text that needs several requests." for i in range(12))
TIMEOUT = 60


ROOT = Path(__file__).resolve().parents[1]
#: Runs the command with the `mp3` extra hidden, as if `lameenc` were not installed.
WITHOUT_MP3 = "import sys; sys.modules['lameenc'] = None; from cartesia.cli import main; sys.exit(main())"


def run_cli(
    args: List[str],
    cwd: Path,
    env: Optional[Dict[str, str]] = None,
    stdin: Optional[bytes] = None,
    python: Optional[List[str]] = None,
) -> subprocess.CompletedProcess:
    """Run ``python -m cartesia ARGS`` with a clean Cartesia environment plus ``env``."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CARTESIA_") or "EXTENSIONS" in k}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, *(python or ["-m", "cartesia"]), *args],
        cwd=str(cwd),
        env=full_env,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=TIMEOUT,
    )


def read_wav(path: Path) -> Dict:
    """Parse a mono WAV by hand (the stdlib `wave` module cannot read IEEE-float files)."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8, "RIFF size not patched"
    chunks = {}
    pos = 12
    while pos < len(data):
        cid, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        chunks[cid] = data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size % 2)
    fmt_tag, channels, rate, byte_rate, align, bits = struct.unpack_from("<HHIIHH", chunks[b"fmt "])
    assert channels == 1 and byte_rate == rate * align and align == bits // 8
    dtype = {(3, 32): "<f4", (1, 16): "<i2"}[(fmt_tag, bits)]
    samples = np.frombuffer(chunks[b"data"], dtype=dtype)
    if fmt_tag == 3:
        assert struct.unpack("<I", chunks[b"fact"])[0] == len(samples), "fact chunk not patched"
    return {"format": fmt_tag, "rate": rate, "samples": samples, "data": chunks[b"data"]}


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The error line; it must be the only one (after at most the --local server notice)."""
    err = result.stderr.decode()
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert lines and lines[-1].startswith("cartesia: error: "), err
    assert all(line.startswith(("cartesia: local server: ", "cartesia: warning: ")) for line in lines[:-1]), err
    return lines[-1]


def free_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def as_pcm16(floats: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(floats, -1, 1) * 32767).astype("<i2")


@pytest.fixture(scope="module")
def say_tone(tmp_path_factory) -> Dict:
    """`say --local` runs over the websocket (default format and f32), shared by the tests that only inspect them."""
    cwd = tmp_path_factory.mktemp("say")
    result = run_cli(["say", TEXT, "--local", "--engine", "tone", "-o", "hello.wav"], cwd)
    assert result.returncode == 0, result.stderr.decode()
    floats = run_cli(["say", TEXT, "--local", "--engine", "tone", "--format", "f32", "-o", "f32.wav", "-q"], cwd)
    assert floats.returncode == 0, floats.stderr.decode()
    return {
        "result": result,
        "path": cwd / "hello.wav",
        "wav": read_wav(cwd / "hello.wav"),
        "f32": read_wav(cwd / "f32.wav"),
    }


def test_say_local_writes_pcm16_wav_and_reports_metrics(say_tone):
    wav, err = say_tone["wav"], say_tone["result"].stderr.decode()
    assert wav["format"] == 1 and wav["rate"] == 44100
    samples = wav["samples"]
    seconds = len(samples) / wav["rate"]
    assert 0.5 < seconds < 20, seconds  # a short sentence
    assert np.abs(samples).max() > 300
    assert "engine: tone" in err
    assert f"{seconds:.2f} s of audio, 44100 Hz, 16-bit PCM WAV" in err
    assert "time to first audio: " in err and "real-time factor: " in err
    assert f"core: {streaming.IMPLEMENTATION} " in err
    assert say_tone["result"].stdout == b""
    # The default file is 16-bit PCM of exactly the float samples of --format f32.
    floats = say_tone["f32"]
    assert floats["format"] == 3 and np.all(np.isfinite(floats["samples"]))
    assert np.array_equal(samples, as_pcm16(floats["samples"]))


def test_default_output_is_read_by_the_stdlib_wave_module(say_tone):
    # Python's own reader refuses IEEE-float WAV ("unknown format: 3"): the default must not be that.
    with wave.open(str(say_tone["path"]), "rb") as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, 44100)
        frames = reader.readframes(reader.getnframes())
    assert np.array_equal(np.frombuffer(frames, "<i2"), say_tone["wav"]["samples"])


def client_audio(api: str, server, text: str) -> bytes:
    """What our client receives for ``text`` with Milo from ``server``, as float32 LE at 44.1 kHz."""
    if api == "v0":
        from cartesia.tts import CartesiaTTS

        with CartesiaTTS(api_key=server.api_key, base_url=server.host_for_env, api_version="v0") as client:
            voice = client.get_voices()["Milo"]
            embedding = client.get_voice_embedding(voice_id=voice["id"])
            return client.generate(transcript=text, voice=embedding, websocket=False)["audio"]
    from cartesia import Cartesia

    with Cartesia(api_key=server.api_key, base_url=server.base_url) as client:
        (milo,) = [v for v in client.voices.list() if v.name == "Milo"]
        return client.tts.generate(
            model_id="sonic-latest",
            transcript=text,
            voice={"mode": "id", "id": milo.id},
            output_format={"container": "raw", "encoding": "pcm_f32le", "sample_rate": 44100},
        ).read()


@pytest.fixture(scope="module")
def say_v0(tmp_path_factory) -> Dict:
    """`say --local --api v0` over the websocket in f32: the legacy protocol's audio."""
    cwd = tmp_path_factory.mktemp("say_v0")
    args = ["say", TEXT, "--local", "--engine", "tone", "--api", "v0", "--format", "f32", "-o", "v0.wav"]
    result = run_cli(args, cwd)
    assert result.returncode == 0, result.stderr.decode()
    return {"result": result, "f32": read_wav(cwd / "v0.wav")}


def test_say_speaks_the_current_api_by_default_and_v0_on_request(say_tone, say_v0, local_server):
    # The tone engine is deterministic: the CLI's f32 file holds exactly what the client of the
    # chosen API receives. The two APIs split this text differently (the current one speaks each
    # sentence on its own), so the audio also tells which API the CLI spoke.
    current, legacy = say_tone["f32"]["data"], say_v0["f32"]["data"]
    assert current == client_audio("current", local_server, TEXT)
    assert legacy == client_audio("v0", local_server, TEXT)
    assert current != legacy
    assert "via websocket (current API) to the local server" in say_tone["result"].stderr.decode()
    assert "via websocket (legacy v0 API) to the local server" in say_v0["result"].stderr.decode()


def test_v0_keeps_every_output_behaviour(say_v0, tmp_path):
    # The legacy protocol feeds the same writer: s16 WAV by default, raw stdout, mp3, --no-clobber.
    floats = say_v0["f32"]["samples"]
    base = ["--local", "--engine", "tone", "--api", "v0"]
    default = run_cli(["say", TEXT, *base, "--http", "-o", "take.wav"], tmp_path)
    assert default.returncode == 0, default.stderr.decode()
    assert "16-bit PCM WAV" in default.stderr.decode() and "via http (legacy v0 API)" in default.stderr.decode()
    wav = read_wav(tmp_path / "take.wav")
    assert wav["format"] == 1 and np.array_equal(wav["samples"], as_pcm16(floats))
    piped = run_cli(["say", *base, "-o", "-", "--format", "f32", "-q"], tmp_path, stdin=TEXT.encode())
    assert piped.returncode == 0 and piped.stdout == say_v0["f32"]["data"], piped.stderr.decode()
    kept = run_cli(["say", TEXT, *base, "-o", "take.wav", "-n"], tmp_path)
    assert kept.returncode == 1 and "(--no-clobber)" in one_error_line(kept)
    assert "local server" not in kept.stderr.decode()  # refused before the server started
    if importlib.util.find_spec("lameenc") is not None:
        from cartesia.server.audio.encode import StreamEncoder
        from cartesia.server.audio.formats import parse_output_format

        mp3 = run_cli(["say", TEXT, *base, "-o", "take.mp3", "-q"], tmp_path)
        assert mp3.returncode == 0, mp3.stderr.decode()
        fmt = parse_output_format({"container": "mp3", "sample_rate": 44100}, route="bytes")
        encoder = StreamEncoder(fmt, 44100)
        expected = encoder.header() + encoder.feed(floats) + encoder.finish()
        assert (tmp_path / "take.mp3").read_bytes() == expected


@pytest.mark.parametrize("api", ["current", "v0"])
def test_voice_by_id_resolves_on_either_api(api, tmp_path):
    listed = run_cli(["voices", "--local", "--engine", "tone", "--api", api, "--json"], tmp_path)
    assert listed.returncode == 0, listed.stderr.decode()
    graham = next(v for v in json.loads(listed.stdout) if v["name"] == "Graham")
    base = ["--local", "--engine", "tone", "--api", api]
    ok = run_cli(["say", "Hi there.", *base, "--voice", graham["id"].upper(), "-o", "g.wav"], tmp_path)
    assert ok.returncode == 0 and "voice: Graham via" in ok.stderr.decode(), ok.stderr.decode()
    # A well-formed id nobody has is an unknown voice too (the current API answers it with a 404).
    missing = "00000000-0000-4000-8000-000000000000"
    bad = run_cli(["say", "Hi there.", *base, "--voice", missing, "-o", "n.wav"], tmp_path)
    assert bad.returncode == 2, bad.stderr.decode()
    line = one_error_line(bad)
    assert f"unknown voice {missing!r}" in line and "Graham" in line
    assert not (tmp_path / "n.wav").exists()


def test_say_http_stdin_and_raw_stdout_give_the_same_audio(say_tone, tmp_path):
    expected = say_tone["wav"]["data"]
    http = run_cli(["say", TEXT, "--local", "--engine", "tone", "--http", "-o", "http.wav"], tmp_path)
    assert http.returncode == 0, http.stderr.decode()
    assert "via http" in http.stderr.decode()
    assert read_wav(tmp_path / "http.wav")["data"] == expected

    piped = run_cli(["say", "--local", "--engine", "tone", "-o", "-"], tmp_path, stdin=TEXT.encode())
    assert piped.returncode == 0, piped.stderr.decode()
    assert piped.stdout == expected  # raw 16-bit PCM LE, no header
    assert "16-bit PCM raw" in piped.stderr.decode()

    floats = run_cli(
        ["say", "--local", "--engine", "tone", "-o", "-", "--format", "f32", "-q"], tmp_path, stdin=TEXT.encode()
    )
    assert floats.returncode == 0 and floats.stdout == say_tone["f32"]["data"], floats.stderr.decode()


def test_raw_suffix_names_the_sample_format(say_tone, tmp_path):
    result = run_cli(["say", TEXT, "--local", "--engine", "tone", "-o", "out.f32", "-q"], tmp_path)
    assert result.returncode == 0 and result.stderr == b"", result.stderr.decode()
    assert (tmp_path / "out.f32").read_bytes() == say_tone["f32"]["data"]
    result = run_cli(["say", TEXT, "--local", "--engine", "tone", "-o", "out.s16", "--format", "s16", "-q"], tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert (tmp_path / "out.s16").read_bytes() == say_tone["wav"]["data"]


def test_existing_output_is_replaced_with_a_warning_or_kept_with_no_clobber(say_tone, tmp_path):
    target = tmp_path / "take.wav"
    target.write_bytes(b"previous take")
    # --no-clobber refuses before anything starts: no API key is needed to find that out.
    kept = run_cli(["say", TEXT, "-o", "take.wav", "--no-clobber"], tmp_path)
    assert kept.returncode == 1, kept.stderr.decode()
    assert "take.wav exists; not replacing it (--no-clobber)" in one_error_line(kept)
    assert target.read_bytes() == b"previous take"

    replaced = run_cli(["say", TEXT, "--local", "--engine", "tone", "-o", "take.wav"], tmp_path)
    assert replaced.returncode == 0, replaced.stderr.decode()
    warnings = [line for line in replaced.stderr.decode().splitlines() if "warning" in line]
    assert warnings == [
        "cartesia: warning: take.wav exists; it will be replaced once the new audio is complete"
        " (--no-clobber keeps it)"
    ]
    assert read_wav(target)["data"] == say_tone["wav"]["data"]

    quiet = run_cli(["say", TEXT, "--local", "--engine", "tone", "-o", "take.wav", "-q"], tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == b""
    # A fresh name gets no warning.
    fresh = run_cli(["say", TEXT, "--local", "--engine", "tone", "-o", "new.wav", "-n"], tmp_path)
    assert fresh.returncode == 0 and "warning" not in fresh.stderr.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.wav", "take.wav"]


def test_mp3_is_the_server_encoders_output(say_tone, tmp_path):
    pytest.importorskip("lameenc", reason="lameenc (the `mp3` extra) is in the test extra")
    from test_server_audio_formats import mp3_frames

    from cartesia.server.audio.encode import StreamEncoder
    from cartesia.server.audio.formats import parse_output_format

    result = run_cli(["say", TEXT, "--local", "--engine", "tone", "-o", "take.mp3"], tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert ", 44100 Hz, MP3 128 kbit/s" in result.stderr.decode()
    data = (tmp_path / "take.mp3").read_bytes()
    frames = mp3_frames(data)
    assert {(bit_rate, rate) for bit_rate, rate, _ in frames} == {(128000, 44100)}
    seconds = len(say_tone["f32"]["samples"]) / 44100
    assert len(frames) * 1152 / 44100 == pytest.approx(seconds, abs=3 * 1152 / 44100)
    # Bit for bit what the server's encoder makes of the same (deterministic) samples.
    encoder = StreamEncoder(parse_output_format({"container": "mp3", "sample_rate": 44100}, route="bytes"), 44100)
    assert data == encoder.header() + encoder.feed(say_tone["f32"]["samples"]) + encoder.finish()


def test_mp3_without_the_extra_names_it(tmp_path):
    result = run_cli(["say", TEXT, "--local", "--engine", "tone", "-o", "x.mp3"], tmp_path, python=["-c", WITHOUT_MP3])
    assert result.returncode == 2
    line = one_error_line(result)
    assert "pip install 'cartesia[mp3]'" in line
    assert "local server" not in result.stderr.decode()  # refused before anything started
    assert not (tmp_path / "x.mp3").exists()


def test_long_text_is_split_with_progress(tmp_path):
    result = run_cli(["say", LONG_TEXT, "--local", "--engine", "tone", "-o", "long.wav"], tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    err = result.stderr.decode()
    total = len(split_text(LONG_TEXT))
    assert total > 1
    for index in range(1, total + 1):
        assert f"[{index}/{total}] " in err
    samples = read_wav(tmp_path / "long.wav")["samples"]
    assert len(samples) / 44100 > 5  # twelve sentences


@pytest.mark.parametrize("api", [[], ["--api", "v0"]], ids=["current", "v0"])
def test_voices_table_and_json(tmp_path, api):
    table = run_cli(["voices", "--local", "--engine", "tone", *api], tmp_path)
    assert table.returncode == 0, table.stderr.decode()
    lines = table.stdout.decode().splitlines()
    assert lines[0].split() == ["ID", "NAME", "DESCRIPTION"]
    names = {line.split()[1] for line in lines[1:]}
    assert {"Milo", "Graham"} <= names and len(lines) - 1 >= 8

    as_json = run_cli(["voices", "--local", "--engine", "tone", "--json", *api], tmp_path)

    voices = json.loads(as_json.stdout)
    assert {v["name"] for v in voices} == names
    assert len({v["id"] for v in voices}) == len(voices)
    for v in voices:  # every id from the table is in the JSON, on the same row as its name
        assert any(line.split()[:2] == [v["id"], v["name"]] for line in lines[1:])


def test_voice_by_name_is_case_insensitive_and_unknown_is_usage(tmp_path):
    ok = run_cli(["say", "Hi there.", "--local", "--engine", "tone", "--voice", "gRaHaM", "-o", "g.wav"], tmp_path)
    assert ok.returncode == 0 and "voice: Graham" in ok.stderr.decode(), ok.stderr.decode()
    (tmp_path / "n.wav").write_bytes(b"previous take")
    bad = run_cli(["say", "Hi there.", "--local", "--engine", "tone", "--voice", "Nobody", "-o", "n.wav"], tmp_path)
    assert bad.returncode == 2
    line = one_error_line(bad)
    assert "unknown voice 'Nobody'" in line and "Milo" in line
    # A failed run leaves no half-written file and keeps the one that was there.
    assert (tmp_path / "n.wav").read_bytes() == b"previous take"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.wav", "n.wav"]


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="POSIX device")
def test_say_into_a_device_or_a_missing_directory(tmp_path):
    # A device is written in place (no temporary file next to it): handy to measure only.
    result = run_cli(["say", "Hi there.", "--local", "--engine", "tone", "-o", "/dev/null"], tmp_path)
    assert result.returncode == 0 and "wrote /dev/null: " in result.stderr.decode(), result.stderr.decode()
    missing = tmp_path / "no-such-dir" / "x.wav"
    result = run_cli(["say", "Hi there.", "--local", "--engine", "tone", "-o", str(missing)], tmp_path)
    assert result.returncode == 1 and "does not exist" in one_error_line(result)


@pytest.mark.parametrize("api", ["current", "v0"])
@pytest.mark.parametrize("command", [["say", TEXT, "-o", "x.wav"], ["voices"]])
def test_bad_key_is_an_auth_error_without_the_key(make_server, tmp_path, command, api):
    server = make_server(api_keys=["the-right-key"])
    secret = "sk-wrong-9f8e7d6c5b4a"
    env = {"CARTESIA_API_KEY": secret, "CARTESIA_BASE_URL": server.host_for_env}
    result = run_cli([*command, "--api", api], tmp_path, env)
    assert result.returncode == 3, result.stderr.decode()
    line = one_error_line(result)
    assert "authentication failed" in line
    assert secret not in result.stderr.decode() + result.stdout.decode()
    assert not (tmp_path / "x.wav").exists()


def test_missing_key_without_local(tmp_path):
    result = run_cli(["say", TEXT, "-o", "x.wav"], tmp_path)
    assert result.returncode == 3
    assert "CARTESIA_API_KEY is not set" in one_error_line(result)


@pytest.mark.parametrize("api", ["current", "v0"])
@pytest.mark.parametrize("transport", [["--http"], []], ids=["http", "websocket"])
def test_server_error_exit_code(local_server, tmp_path, api, transport):
    env = {"CARTESIA_API_KEY": local_server.api_key, "CARTESIA_BASE_URL": local_server.host_for_env}
    result = run_cli(["say", TEXT, "--model", "no-such-model", *transport, "--api", api, "-o", "x.wav"], tmp_path, env)
    assert result.returncode == 5, result.stderr.decode()
    line = one_error_line(result)
    assert "400" in line and "no-such-model" in line, line
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize("api", ["current", "v0"])
def test_unreachable_server_is_a_connection_error(tmp_path, api):
    secret = "sk-unreachable-0a1b2c3d"
    env = {"CARTESIA_API_KEY": secret, "CARTESIA_BASE_URL": f"localhost:{free_port()}"}
    result = run_cli(["voices", "--attempts", "1", "--api", api], tmp_path, env)
    assert result.returncode == 4, result.stderr.decode()
    assert "connection" in one_error_line(result)
    assert secret not in result.stderr.decode()
    # --verbose shows the client's retries on the way (still without the key).
    verbose = run_cli(["voices", "-v", "--attempts", "2", "--api", api], tmp_path, env)
    assert verbose.returncode == 4
    err = verbose.stderr.decode()
    assert err.count("Retrying") == 1 and secret not in err, err


@pytest.mark.parametrize(
    "args, stdin, message",
    [
        (["say", "-o", "x.wav", "--local"], b"   \n", "the text is empty"),
        (["say", TEXT, "-o", "x.ogg", "--local"], None, "unsupported output 'x.ogg'"),
        (["voices", "--attempts", "0"], None, "argument --attempts: must be at least 1 (see: cartesia voices --help)"),
    ],
)
def test_usage_errors(tmp_path, args, stdin, message):
    result = run_cli(args, tmp_path, stdin=stdin)
    assert result.returncode == 2
    assert message in one_error_line(result)


@pytest.mark.parametrize(
    "args, message",
    [
        (["say", TEXT, "--no-such-flag", "--local"], "unrecognized arguments: --no-such-flag"),
        (["say", TEXT, "extra words", "--local"], "unrecognized arguments: extra words"),
        (["say", TEXT, "--timeout", "0", "--local"], "argument --timeout: must be more than 0 seconds"),
        (["say", TEXT, "--timeout", "nan", "--local"], "argument --timeout: 'nan' is not a finite number of seconds"),
        (
            ["say", TEXT, "--format", "f32", "-o", "x.mp3", "--local"],
            "--format applies to WAV and raw output, not to MP3",
        ),
        (
            ["say", TEXT, "--format", "s16", "-o", "x.f32", "--local"],
            "--format s16 contradicts the .f32 suffix of x.f32",
        ),
        (
            ["say", TEXT, "--format", "f64", "--local"],
            "argument --format: invalid choice: 'f64' (choose from 's16', 'f32')",
        ),
        # Without --local and without an API key: a usage error (2), not the missing key (3).
        (["say", TEXT, "--engine", "tone"], "--engine picks the engine of the bundled server: use it with --local"),
        (["say", TEXT, "--api", "v1"], "argument --api: invalid choice: 'v1' (choose from 'current', 'v0')"),
        (
            ["say", TEXT, "--api", "v0", "--format", "f32", "-o", "x.mp3", "--local"],
            "--format applies to WAV and raw output, not to MP3",
        ),
    ],
)
def test_option_errors_point_at_the_subcommand_help_before_anything_starts(tmp_path, args, message):
    result = run_cli(args, tmp_path)
    assert result.returncode == 2, result.stderr.decode()
    line = one_error_line(result)
    assert line == f"cartesia: error: {message} (see: cartesia say --help)", line
    # Nothing started: no local server, no file.
    assert "local server" not in result.stderr.decode() and list(tmp_path.iterdir()) == []


def test_unknown_command_points_at_the_main_help(tmp_path):
    result = run_cli(["sya", TEXT], tmp_path)
    assert result.returncode == 2
    line = one_error_line(result)
    assert "invalid choice: 'sya'" in line and line.endswith("(see: cartesia --help)")


def test_bare_command_prints_help_with_every_exit_code(tmp_path):
    result = run_cli([], tmp_path)
    assert result.returncode == 0 and result.stderr == b"", result.stderr.decode()
    out = result.stdout.decode()
    assert "usage: cartesia" in out and "say" in out and "voices" in out and "serve" in out
    codes = {value for name, value in vars(cli).items() if name.startswith("EXIT_") and isinstance(value, int)}
    assert {0, 1, 2, 3, 4, 5, 6, 130, 141} <= codes
    listed = {int(code) for code in re.findall(r"^  (\d+) ", out, re.M)}
    assert listed == codes
    # The subcommands' help carries the same table.
    say_help = run_cli(["say", "--help"], tmp_path).stdout.decode()
    assert {int(code) for code in re.findall(r"^  (\d+) ", say_help, re.M)} == codes
    assert "--no-clobber" in say_help and "FILE.mp3" in say_help
    # Which API is spoken, and how to pick the other one.
    flat = " ".join(say_help.split())
    assert "--api {current,v0}" in flat and "/tts/websocket" in flat and "no longer serves" in flat
    voices_help = " ".join(run_cli(["voices", "--help"], tmp_path).stdout.decode().split())
    assert "--api {current,v0}" in voices_help and "GET /voices" in voices_help


@pytest.mark.parametrize("value", ["localhost:notaport", "localhost:99999", "http://:8080"])
def test_unusable_base_url_is_one_line_usage_error(tmp_path, value):
    env = {"CARTESIA_API_KEY": "sk-test-12345678", "CARTESIA_BASE_URL": value}
    for command in (["voices"], ["say", TEXT, "-o", "x.wav"]):
        result = run_cli(command, tmp_path, env)
        assert result.returncode == 2, result.stderr.decode()
        assert "CARTESIA_BASE_URL is not a usable address" in one_error_line(result)
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["voices"],
        ["say", TEXT, "-o", "x.wav"],
        ["say", TEXT, "--http", "-o", "x.wav"],
        ["voices", "--api", "v0"],
        ["say", TEXT, "--api", "v0", "-o", "x.wav"],
    ],
)
def test_tls_to_a_plain_server_says_so_and_hints_http(local_server, tmp_path, command):
    # https:// (or, under the 0.0.5 scheme rule, a bare host not named localhost) means TLS; the
    # server speaks plain HTTP.
    address = f"127.0.0.1:{local_server.port}"
    env = {"CARTESIA_API_KEY": local_server.api_key, "CARTESIA_BASE_URL": f"https://{address}"}
    result = run_cli([*command, "--attempts", "1"], tmp_path, env)
    assert result.returncode == 4, result.stderr.decode()
    line = one_error_line(result)
    assert "TLS handshake with" in line and "does not seem to speak TLS" in line, line
    assert f"CARTESIA_BASE_URL=http://{address}" in line
    assert local_server.api_key not in result.stderr.decode()
    # ... and the hint works.
    fixed = run_cli([*command, "--attempts", "1"], tmp_path, {**env, "CARTESIA_BASE_URL": f"http://{address}"})
    assert fixed.returncode == 0, fixed.stderr.decode()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes")
@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_voices_into_a_closed_pipe_stops_quietly(tmp_path, json_flag):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTESIA_") or "EXTENSIONS" in k}
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head -0`: nobody will read
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "cartesia", "voices", "--local", "--engine", "tone", *json_flag],
            cwd=str(tmp_path), env=env, stdin=subprocess.DEVNULL, stdout=write_end,
            stderr=subprocess.PIPE, timeout=TIMEOUT,
        )
    finally:
        os.close(write_end)
    err = proc.stderr.decode()
    assert proc.returncode == 141 and "Traceback" not in err and "Error" not in err, (proc.returncode, err)


def test_a_bug_is_one_line_too_and_verbose_shows_the_traceback(tmp_path):
    # A bug cannot be provoked through real components, so one is planted for this test.
    planted = (
        "import sys; from cartesia import cli\n"
        "def broken(args): return 1 // 0\n"
        "cli._cmd_voices = broken\n"
        "sys.exit(cli.main())"
    )
    result = run_cli(["voices", "--local"], tmp_path, python=["-c", planted])
    assert result.returncode == 1
    assert one_error_line(result) == (
        "cartesia: error: unexpected ZeroDivisionError: integer division or modulo by zero"
        " (--verbose shows the details)"
    )
    verbose = run_cli(["voices", "--local", "-v"], tmp_path, python=["-c", planted])
    assert verbose.returncode == 1
    assert "Traceback" in verbose.stderr.decode() and ", in broken" in verbose.stderr.decode()


def test_say_outputs_are_ignored_by_git():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for name in ("hello.wav", "speech.wav", "take.mp3"):  # the Quickstart's file, the default, an mp3
        check = subprocess.run(["git", "check-ignore", "-q", name], cwd=str(ROOT), timeout=30)
        assert check.returncode == 0, f"{name} is not ignored by git"
    # Only at the top: a WAV committed as test data elsewhere stays visible.
    check = subprocess.run(["git", "check-ignore", "-q", "tests/data/x.wav"], cwd=str(ROOT), timeout=30)
    assert check.returncode == 1


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM")
def test_serve_prints_its_address_first_and_stops_on_sigterm(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTESIA_") or "EXTENSIONS" in k}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cartesia", "serve", "--port", "0", "--engine", "tone"],
        cwd=str(tmp_path),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        first = proc.stdout.readline().decode().strip()
        assert first.startswith("listening on http://localhost:"), first
        port = int(first.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # it really listens there
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGPIPE semantics")
def test_closed_pipe_stops_quietly(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTESIA_") or "EXTENSIONS" in k}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cartesia", "say", LONG_TEXT, "--local", "--engine", "tone", "-o", "-", "-q"],
        cwd=str(tmp_path),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    head = proc.stdout.read(4096)  # like `| head -c 4096`
    proc.stdout.close()
    start = time.monotonic()
    code = proc.wait(timeout=TIMEOUT)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert len(head) == 4096
    assert code in (141, -signal.SIGPIPE) and err == "", (code, err)
    assert time.monotonic() - start < TIMEOUT


def test_split_text_keeps_every_word_in_order():
    text = "First sentence. " + "word " * 300 + "x" * (SEGMENT_CHARS + 7) + "\n\nLast one!"
    pieces = split_text(text)
    assert all(0 < len(p) <= SEGMENT_CHARS for p in pieces)
    assert "".join("".join(pieces).split()) == "".join(text.split())
    assert pieces[0].startswith("First sentence.")
    assert split_text("  \n ") == []


def test_wav_writer_on_a_pipe_keeps_streaming_sizes():
    class Pipe:
        def __init__(self):
            self.data = bytearray()

        def write(self, b):
            self.data += b

        def seekable(self):
            return False

        def flush(self):
            pass

    pipe = Pipe()
    writer = WavWriter(pipe, "f32")
    writer.start(22050)
    writer.write(np.ones(10, "<f4").tobytes())
    writer.close()
    assert bytes(pipe.data[4:8]) == b"\xff\xff\xff\xff"
    assert pipe.data.endswith(np.ones(10, "<f4").tobytes())
    assert writer.frames == 10


@pytest.mark.parametrize("api", ["current", "v0"])
@pytest.mark.parametrize("transport", [["--http"], []], ids=["http", "websocket"])
def test_stalled_stream_is_a_timeout(local_server, server_faults, tmp_path, api, transport):
    # A long stall, so that "returned before it ended" holds on a loaded machine too (the CLI's
    # own start-up takes a second or more there).
    server_faults.add("stall", after_frames=1, seconds=30)
    env = {"CARTESIA_API_KEY": local_server.api_key, "CARTESIA_BASE_URL": local_server.host_for_env}
    start = time.monotonic()
    result = run_cli(["say", TEXT, "--timeout", "0.5", "--api", api, *transport, "-o", "x.wav"], tmp_path, env)
    assert result.returncode == 6, result.stderr.decode()
    assert "timed out" in one_error_line(result)
    assert time.monotonic() - start < 20
    assert not (tmp_path / "x.wav").exists()


def test_error_text_hides_keys_without_garbling_words(monkeypatch):
    from cartesia import cli

    monkeypatch.setattr(cli, "_SECRETS", ["x", "sk-long-secret-123"])
    text = cli._scrub("Expecting x\nin wss://h/v0?api_key=abc and sk-long-secret-123!")
    assert text == "Expecting *** in wss://h/v0?api_key=*** and ***!"


def test_api_version_is_the_current_apis_date_and_v0s_path(local_server, tmp_path):
    env = {"CARTESIA_API_KEY": local_server.api_key, "CARTESIA_BASE_URL": local_server.host_for_env}
    # 0.0.5's setting means nothing to the current API: left out, so a migrated shell still works.
    for api in ("current", "v0"):
        ok = run_cli(["voices", "--api", api], tmp_path, {**env, "CARTESIA_API_VERSION": "v0"})
        assert ok.returncode == 0 and "Milo" in ok.stdout.decode(), ok.stderr.decode()
    # A date is the Cartesia-Version header: the server refuses one it does not know.
    dated = run_cli(["voices"], tmp_path, {**env, "CARTESIA_API_VERSION": "1999-01-01"})
    assert dated.returncode == 5, dated.stderr.decode()
    assert "1999-01-01" in one_error_line(dated)
