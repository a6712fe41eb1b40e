"""cartesia 0.0.5 compatibility: API surface, messages, return shapes, every method end to end."""

from __future__ import annotations

import asyncio
import inspect
import sys
import typing
from typing import Any

import numpy as np
import pytest
from test_client_support import (  # noqa: F401  (fixtures)
    async_client,
    expected_audio,
    expected_chunks,
    other_voice,
    run_isolated,
    sync_client,
    voice,
)

import cartesia
from cartesia import tts
from cartesia.errors import AuthenticationError, BadRequestError, GenerationError, NotFoundError
from cartesia.tts import AsyncCartesiaTTS, CartesiaTTS

TEXT = "Hello, world! Welcome to Cartesia."

# --- API surface ------------------------------------------------------------------------------


def test_constants_and_exports() -> None:
    assert tts.DEFAULT_MODEL_ID == "genial-planet-1346"
    assert tts.DEFAULT_BASE_URL == "api.cartesia.ai"
    assert tts.DEFAULT_API_VERSION == "v0"
    assert tts.DEFAULT_TIMEOUT == 30
    assert tts.DEFAULT_NUM_CONNECTIONS == 10
    assert tts.MAX_RETRIES == 3
    assert tts.BACKOFF_FACTOR == 1
    assert typing.get_type_hints(tts.AudioOutput) == {"audio": bytes, "sampling_rate": int}
    assert set(typing.get_type_hints(tts.VoiceMetadata)) == {"id", "name", "description", "embedding"}
    assert tts.Embedding == typing.List[float]
    assert cartesia.CartesiaTTS is CartesiaTTS and cartesia.AsyncCartesiaTTS is AsyncCartesiaTTS
    from cartesia.utils import retry_on_connection_error, retry_on_connection_error_async

    for deco in (retry_on_connection_error, retry_on_connection_error_async):
        params = inspect.signature(deco).parameters
        assert [(p.name, p.default) for p in params.values()] == [
            ("max_retries", 3),
            ("backoff_factor", 1),
            ("logger", None),
        ]


# name -> [(parameter, kind, default)] of cartesia 0.0.5 (inspect.Parameter.empty = required).
_E = inspect.Parameter.empty
_KW = inspect.Parameter.KEYWORD_ONLY
_POS = inspect.Parameter.POSITIONAL_OR_KEYWORD
SEED_SIGNATURES = {
    "__init__": [("api_key", _KW, None), ("experimental_ws_handle_interrupts", _KW, False)],
    "get_voices": [("skip_embeddings", _POS, True)],
    "get_voice_embedding": [("voice_id", _KW, None), ("filepath", _KW, None), ("link", _KW, None)],
    "refresh_websocket": [],
    "_check_inputs": [("transcript", _POS, _E), ("duration", _POS, _E), ("chunk_time", _POS, _E)],
    "_generate_request_body": [
        ("transcript", _KW, _E),
        ("voice", _KW, _E),
        ("model_id", _KW, _E),
        ("duration", _KW, None),
        ("chunk_time", _KW, None),
    ],
    "generate": [
        ("transcript", _KW, _E),
        ("voice", _KW, _E),
        ("model_id", _KW, "genial-planet-1346"),
        ("duration", _KW, None),
        ("chunk_time", _KW, None),
        ("stream", _KW, False),
        ("websocket", _KW, True),
    ],
    "_generate_ws": [("body", _POS, _E), ("context_id", _KW, None)],
    "transcribe": [("raw_audio", _POS, _E)],
    "prepare_audio_and_headers": [("raw_audio", _POS, _E)],
    "close": [],
    "_http_url": [],
    "_ws_url": [],
}
ASYNC_METHODS = {"refresh_websocket", "generate", "transcribe", "close"}


@pytest.mark.parametrize("cls", [CartesiaTTS, AsyncCartesiaTTS])
@pytest.mark.parametrize("name", sorted(SEED_SIGNATURES))
def test_signatures_extend_the_seed(cls: type, name: str) -> None:
    method = getattr(cls, name)
    params = list(inspect.signature(method).parameters.values())[1:]  # drop self
    seed = SEED_SIGNATURES[name]
    got = [(p.name, p.kind, p.default) for p in params[: len(seed)]]
    assert got == seed
    for extra in params[len(seed) :]:
        # New options never change what an existing call means.
        assert extra.kind is _KW and extra.default is not _E, extra
    if cls is AsyncCartesiaTTS:
        assert inspect.iscoroutinefunction(method) == (name in ASYNC_METHODS)


# --- validation (the 0.0.5 messages) ------------------------------------------------------------


@pytest.fixture
def offline_client() -> Any:
    client = CartesiaTTS(api_key="k", base_url="localhost:9")
    yield client
    client.close()


@pytest.mark.parametrize("chunk_time", [0.05, 0.6])
def test_check_inputs_invalid_chunk_time(offline_client: CartesiaTTS, chunk_time: float) -> None:
    with pytest.raises(ValueError, match="`chunk_time` must be between 0.1 and 0.5"):
        offline_client._check_inputs("Test", None, chunk_time)


@pytest.mark.parametrize("duration,chunk_time", [(0.5, 0.2), (1.0, 0.5), (2.0, 0.1), (None, 0.1), (None, 0.5)])
def test_check_inputs_valid(offline_client: CartesiaTTS, duration: Any, chunk_time: float) -> None:
    offline_client._check_inputs("Test", duration, chunk_time)


def test_check_inputs_duration_and_transcript(offline_client: CartesiaTTS) -> None:
    with pytest.raises(ValueError, match="`duration` must be greater than chunk_time"):
        offline_client._check_inputs("Test", 0.2, 0.3)
    for empty in ("", "   \n"):
        with pytest.raises(ValueError, match="`transcript` must be non empty"):
            offline_client._check_inputs(empty, None, None)
    with pytest.raises(AttributeError):  # 0.0.5 behaviour for transcript=None
        offline_client.generate(transcript=None, voice=None)  # type: ignore[arg-type]


def test_get_voice_embedding_needs_exactly_one(offline_client: CartesiaTTS) -> None:
    msg = "Exactly one of `voice_id`, `filepath` or `url` should be specified."
    for kwargs in ({}, {"voice_id": "a", "link": "b"}):
        with pytest.raises(ValueError, match=msg):
            offline_client.get_voice_embedding(**kwargs)


def test_request_body_filters_none(offline_client: CartesiaTTS) -> None:
    body = offline_client._generate_request_body(transcript="t", voice=[0.0], model_id="m")
    assert body == {"transcript": "t", "model_id": "m", "voice": [0.0]}
    body = offline_client._generate_request_body(
        transcript="t", voice=[0.0], model_id="m", duration=3, chunk_time=0.2
    )
    assert body == {"transcript": "t", "model_id": "m", "voice": [0.0], "duration": 3, "chunk_time": 0.2}


# --- URLs and environment ----------------------------------------------------------------------


def test_env_vars_and_scheme_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTESIA_API_KEY", "env-key")
    monkeypatch.setenv("CARTESIA_BASE_URL", "localhost:1234")
    monkeypatch.setenv("CARTESIA_API_VERSION", "v9")
    client = CartesiaTTS()
    assert client.api_key == "env-key"
    assert client.headers == {"X-API-Key": "env-key", "Content-Type": "application/json"}
    assert client._http_url() == "http://localhost:1234/v9"
    assert client._ws_url() == "ws://localhost:1234/v9"
    assert CartesiaTTS(api_key="explicit").api_key == "explicit"
    monkeypatch.delenv("CARTESIA_BASE_URL")
    monkeypatch.delenv("CARTESIA_API_VERSION")
    client = CartesiaTTS()
    assert client._http_url() == "https://api.cartesia.ai/v0"
    assert client._ws_url() == "wss://api.cartesia.ai/v0"
    client = CartesiaTTS(base_url="http://127.0.0.1:8000")
    assert client._http_url() == "http://127.0.0.1:8000/v0"
    assert client._ws_url() == "ws://127.0.0.1:8000/v0"
    assert CartesiaTTS(base_url="127.0.0.1:8000")._http_url() == "http://127.0.0.1:8000/v0"  # loopback: plain


def test_env_vars_reach_the_local_server(
    local_server: Any, monkeypatch: pytest.MonkeyPatch, voice: list
) -> None:
    monkeypatch.setenv("CARTESIA_BASE_URL", local_server.host_for_env)
    monkeypatch.setenv("CARTESIA_API_KEY", local_server.api_key)
    with CartesiaTTS() as client:
        out = client.generate(transcript="Hi", voice=voice)
    assert out["audio"] == expected_audio("Hi", voice)


# --- every method, sync -------------------------------------------------------------------------


def test_get_voices_and_embeddings(local_server: Any, tmp_path: Any) -> None:
    client = sync_client(local_server)
    try:
        voices = client.get_voices()
        assert isinstance(voices, dict) and "Graham" in voices
        assert all(name == v["name"] for name, v in voices.items())
        assert all("embedding" not in v for v in voices.values())
        ids = [v["id"] for v in voices.values()]
        assert len(ids) == len(set(ids))
        full = client.get_voices(skip_embeddings=False)
        # The server sends embeddings as JSON strings (like the v0 API); we hand out lists.
        emb = full["Graham"]["embedding"]
        assert isinstance(emb, list) and len(emb) == 192
        assert client.get_voice_embedding(voice_id=voices["Graham"]["id"]) == emb
        clip = tmp_path / "clip.wav"
        clip.write_bytes(expected_audio("clone me", emb))
        cloned = client.get_voice_embedding(filepath=str(clip))
        assert isinstance(cloned, list) and len(cloned) == 192
        linked = client.get_voice_embedding(link="https://youtu.be/g2Z7Ddd573M")
        assert isinstance(linked, list) and len(linked) == 192
        with pytest.raises(NotFoundError) as info:
            client.get_voice_embedding(voice_id="no-such-voice")
        assert isinstance(info.value, ValueError) and info.value.status_code == 404
        assert str(info.value).startswith("Failed to clone voice. Status Code: 404\nError: ")
    finally:
        client.close()


@pytest.mark.parametrize("websocket", [True, False], ids=["ws", "http"])
def test_sync_generate_whole_is_bit_exact(local_server: Any, voice: list, websocket: bool) -> None:
    client = sync_client(local_server)
    try:
        out = client.generate(transcript=TEXT, voice=voice, websocket=websocket)
        assert out.keys() == {"audio", "sampling_rate"}
        assert isinstance(out["audio"], bytes) and isinstance(out["sampling_rate"], int)
        assert out["sampling_rate"] == 44100
        assert out["audio"] == expected_audio(TEXT, voice)
        out = client.generate(
            transcript=TEXT, voice=voice, websocket=websocket, duration=1, chunk_time=0.2
        )
        assert out["audio"] == expected_audio(TEXT, voice, duration=1, chunk_time=0.2)
        assert client.last_metrics is not None and client.last_metrics.chunks == 5
    finally:
        client.close()


@pytest.mark.parametrize("websocket", [True, False], ids=["ws", "http"])
def test_sync_generate_stream_is_bit_exact(local_server: Any, voice: list, websocket: bool) -> None:
    client = sync_client(local_server)
    try:
        gen = client.generate(transcript=TEXT, voice=voice, websocket=websocket, stream=True)
        assert isinstance(gen, typing.Generator)
        chunks = list(gen)
        assert len(chunks) == expected_chunks(TEXT, voice)
        for chunk in chunks:
            assert chunk.keys() == {"audio", "sampling_rate"}
            assert isinstance(chunk["audio"], bytes) and chunk["sampling_rate"] == 44100
        assert b"".join(c["audio"] for c in chunks) == expected_audio(TEXT, voice)
        assert gen.metrics.status == "done" and gen.metrics.chunks == len(chunks)
    finally:
        client.close()


def test_generate_ws_echoes_context_id(local_server: Any, voice: list) -> None:
    client = sync_client(local_server)
    try:
        body = client._generate_request_body(transcript="Hi there", voice=voice, model_id=tts.DEFAULT_MODEL_ID)
        chunks = list(client._generate_ws(body, context_id="test-abc123"))
        assert chunks and all(c.keys() == {"audio", "sampling_rate", "context_id"} for c in chunks)
        assert {c["context_id"] for c in chunks} == {"test-abc123"}
        assert all("context_id" not in c for c in client._generate_ws(body))
    finally:
        client.close()


def test_transcribe_sync(local_server: Any, voice: list, tmp_path: Any) -> None:
    client = sync_client(local_server)
    try:
        audio = client.generate(transcript="Read me back", voice=voice)["audio"]
        assert client.transcribe(audio) == "Read me back"
        path = tmp_path / "input.raw"
        path.write_bytes(audio)
        assert client.transcribe(str(path)) == "Read me back"
        with pytest.raises(BadRequestError) as info:
            client.transcribe(b"\x00\x01not audio")
        assert str(info.value).startswith("Failed to transcribe audio. Error: ")
    finally:
        client.close()


def test_sync_context_manager_and_refresh(local_server: Any, voice: list) -> None:
    with sync_client(local_server) as client:
        ws = client.websocket
        assert ws.socket.fileno() != -1 and not client._is_websocket_closed()
        client.refresh_websocket()
        assert client.websocket is ws  # an open socket is kept
        client.generate(transcript="one", voice=voice)
        client.generate(transcript="two", voice=voice)
        assert client.websocket is ws  # and reused across generations
    assert ws.socket.fileno() == -1
    client.close()  # idempotent


def test_sync_context_manager_with_error_closes_socket(local_server: Any) -> None:
    # The 0.0.5 test: an AttributeError inside `with` still closes the websocket.
    with pytest.raises(AttributeError):
        with sync_client(local_server) as client:
            client.refresh_websocket()
            websocket = client.websocket
            assert websocket.socket.fileno() != -1
            client.generate(transcript=None, voice=None, websocket=True)  # type: ignore[arg-type]
    assert websocket.socket.fileno() == -1


def test_server_errors_keep_the_seed_exception_families(local_server: Any, voice: list) -> None:
    client = sync_client(local_server)
    try:
        with pytest.raises(ValueError) as info:
            client.generate(transcript="x", voice=voice, model_id="no-such-model", websocket=False)
        assert isinstance(info.value, BadRequestError) and info.value.status_code == 400
        assert str(info.value).startswith("Failed to generate audio. ")
        assert "unknown model_id" in str(info.value)
        # 0.0.5 raised RuntimeError for websocket generation failures.
        with pytest.raises(RuntimeError) as ws_info:
            client.generate(transcript="x", voice=voice, model_id="no-such-model")
        assert isinstance(ws_info.value, GenerationError) and ws_info.value.status_code == 400
        assert "unknown model_id" in str(ws_info.value)
        # The socket survives a rejected request.
        assert client.generate(transcript="ok", voice=voice)["audio"] == expected_audio("ok", voice)
        assert client.last_metrics.connection_reused is True
    finally:
        client.close()


# --- every method, async -------------------------------------------------------------------------


@pytest.mark.parametrize("websocket", [True, False], ids=["ws", "http"])
async def test_async_generate_whole_and_stream_bit_exact(local_server: Any, voice: list, websocket: bool) -> None:
    async with async_client(local_server) as client:
        out = await client.generate(transcript=TEXT, voice=voice, websocket=websocket)
        assert out.keys() == {"audio", "sampling_rate"}
        assert out["audio"] == expected_audio(TEXT, voice) and out["sampling_rate"] == 44100
        gen = await client.generate(transcript=TEXT, voice=voice, websocket=websocket, stream=True)
        assert isinstance(gen, typing.AsyncGenerator)
        chunks = [c async for c in gen]
        assert all(c.keys() == {"audio", "sampling_rate"} for c in chunks)
        assert len(chunks) == expected_chunks(TEXT, voice)
        assert b"".join(c["audio"] for c in chunks) == expected_audio(TEXT, voice)


async def test_async_other_methods(local_server: Any, server_faults: Any, voice: list) -> None:
    client = async_client(local_server)
    try:
        # As in 0.0.5, the voice calls of the async client are plain blocking calls.
        voices = client.get_voices()
        emb = client.get_voice_embedding(voice_id=voices["Milo"]["id"])
        assert emb == voice
        audio = (await client.generate(transcript="Async text", voice=voice))["audio"]
        assert await client.transcribe(audio) == "Async text"
        await client.refresh_websocket()
        assert not client.websocket.closed
        body = client._generate_request_body(transcript="ctx", voice=voice, model_id=tts.DEFAULT_MODEL_ID)
        chunks = [c async for c in client._generate_ws(body, context_id="ctx-1")]
        assert {c["context_id"] for c in chunks} == {"ctx-1"}
        server_faults.add("401", on="transcriptions")
        with pytest.raises(AuthenticationError) as info:
            await client.transcribe(audio)
        assert str(info.value).startswith("Failed to transcribe audio. Error: ")
    finally:
        await client.close()
    assert client.websocket.closed


async def test_async_context_manager_with_error_closes_socket(local_server: Any) -> None:
    with pytest.raises(AttributeError):
        async with async_client(local_server) as client:
            await client.refresh_websocket()
            websocket = client.websocket
            assert not websocket.closed
            await client.generate(transcript=None, voice=None, websocket=True)  # type: ignore[arg-type]
    assert websocket.closed


# --- output options ---------------------------------------------------------------------------


@pytest.mark.parametrize("websocket", [True, False], ids=["ws", "http"])
def test_numpy_and_ring_outputs(local_server: Any, voice: list, websocket: bool) -> None:
    from cartesia.streaming import PCMRing

    expected = np.frombuffer(expected_audio(TEXT, voice), dtype=np.float32)
    client = sync_client(local_server)
    try:
        out = client.generate(transcript=TEXT, voice=voice, websocket=websocket, as_numpy=True)
        assert out["audio"].dtype == np.float32
        np.testing.assert_array_equal(out["audio"], expected)
        arrays = [c["audio"] for c in client.generate(
            transcript=TEXT, voice=voice, websocket=websocket, stream=True, as_numpy=True
        )]
        assert all(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in arrays)
        np.testing.assert_array_equal(np.concatenate(arrays), expected)
        ring = PCMRing(len(expected) + 10)
        chunks = list(client.generate(transcript=TEXT, voice=voice, websocket=websocket, stream=True, sink=ring))
        assert all(c["audio"] == b"" for c in chunks)
        assert sum(c["samples"] for c in chunks) == len(expected) == len(ring)
        np.testing.assert_array_equal(ring.read(len(expected)), expected)
        seen = []
        client.generate(transcript=TEXT, voice=voice, websocket=websocket, on_metrics=seen.append)
        (m,) = seen
        assert m.status == "done" and m.bytes == expected.nbytes and m.ttfa is not None
        assert m.ttfb is not None and m.ttfb <= m.ttfa <= m.ttfa_audible <= m.duration
        assert m.transport == ("websocket" if websocket else "http")
    finally:
        client.close()


async def test_async_numpy_output(local_server: Any, voice: list) -> None:
    expected = np.frombuffer(expected_audio(TEXT, voice), dtype=np.float32)
    async with async_client(local_server) as client:
        out = await client.generate(transcript=TEXT, voice=voice, as_numpy=True)
        np.testing.assert_array_equal(out["audio"], expected)
        stream = await client.generate(transcript=TEXT, voice=voice, stream=True, as_numpy=True)
        arrays = [c["audio"] async for c in stream]
        np.testing.assert_array_equal(np.concatenate(arrays), expected)
        assert stream.metrics.connection_reused is True


# --- the seed README examples, run as written ------------------------------------------------------


class _FakeOutputStream:
    def __init__(self, sink: list, **params: Any) -> None:
        self.sink, self.params = sink, params

    def write(self, data: bytes) -> None:
        self.sink.append(bytes(data))

    def stop_stream(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def fake_audio_device(monkeypatch: pytest.MonkeyPatch) -> list:
    """Stand-ins for pyaudio and IPython.display (an audio device and a notebook are not here)."""
    import types

    written: list = []
    pyaudio = types.ModuleType("pyaudio")
    pyaudio.paFloat32 = 1  # type: ignore[attr-defined]

    class PyAudio:
        def open(self, **params: Any) -> _FakeOutputStream:
            assert params["format"] == 1 and params["channels"] == 1 and params["rate"] == 44100
            return _FakeOutputStream(written, **params)

        def terminate(self) -> None:
            pass

    pyaudio.PyAudio = PyAudio  # type: ignore[attr-defined]
    ipython = types.ModuleType("IPython")
    display_mod = types.ModuleType("IPython.display")

    class Audio:
        def __init__(self, data: Any, rate: int) -> None:
            written.append(np.asarray(data, dtype=np.float32).tobytes())
            assert rate == 44100

    display_mod.Audio = Audio  # type: ignore[attr-defined]
    display_mod.display = lambda obj: None  # type: ignore[attr-defined]
    ipython.display = display_mod  # type: ignore[attr-defined]
    monkeypatch.setitem(__import__("sys").modules, "pyaudio", pyaudio)
    monkeypatch.setitem(__import__("sys").modules, "IPython", ipython)
    monkeypatch.setitem(__import__("sys").modules, "IPython.display", display_mod)
    return written


README_SYNC = '''
from cartesia.tts import CartesiaTTS
import pyaudio
import os

client = CartesiaTTS(api_key=os.environ.get("CARTESIA_API_KEY"))
voices = client.get_voices()
voice = client.get_voice_embedding(voice_id=voices["Graham"]["id"])
transcript = "Hello! Welcome to Cartesia"
model_id = "genial-planet-1346" # (Optional) We'll specify a default if you don't have a specific model in mind

p = pyaudio.PyAudio()

stream = None

# Generate and stream audio
for output in client.generate(transcript=transcript, voice=voice, model_id=model_id, stream=True):
    buffer = output["audio"]
    rate = output["sampling_rate"]

    if not stream:
        stream = p.open(format=pyaudio.paFloat32,
                        channels=1,
                        rate=rate,
                        output=True)

    # Write the audio data to the stream
    stream.write(buffer)

stream.stop_stream()
stream.close()
p.terminate()
'''

README_ASYNC = '''
from cartesia.tts import AsyncCartesiaTTS
import asyncio
import pyaudio
import os

async def write_stream():
    client = AsyncCartesiaTTS(api_key=os.environ.get("CARTESIA_API_KEY"))
    voices = client.get_voices()
    voice = client.get_voice_embedding(voice_id=voices["Graham"]["id"])
    transcript = "Hello! Welcome to Cartesia"
    model_id = "genial-planet-1346" # (Optional) We'll specify a default if you don't have a specific model in mind

    p = pyaudio.PyAudio()

    stream = None

    # Generate and stream audio
    async for output in await client.generate(transcript=transcript, voice=voice, model_id=model_id, stream=True):
        buffer = output["audio"]
        rate = output["sampling_rate"]

        if not stream:
            stream = p.open(format=pyaudio.paFloat32,
                            channels=1,
                            rate=rate,
                            output=True)

        # Write the audio data to the stream
        stream.write(buffer)

    stream.stop_stream()
    stream.close()
    p.terminate()

asyncio.run(write_stream())
'''

README_NOTEBOOK = '''
from IPython.display import Audio
import io
import os
import numpy as np

from cartesia.tts import CartesiaTTS

with CartesiaTTS(api_key=os.environ.get("CARTESIA_API_KEY")) as client:
    voices = client.get_voices()
    voice = client.get_voice_embedding(voice_id=voices["Graham"]["id"])
    transcript = "Hello! Welcome to Cartesia"

    # Create a BytesIO object to store the audio data
    audio_data = io.BytesIO()

    # Generate and stream audio
    for output in client.generate(transcript=transcript, voice=voice, stream=True):
        buffer = output["audio"]
        audio_data.write(buffer)

# Set the cursor position to the beginning of the BytesIO object
audio_data.seek(0)

# Create an Audio object from the BytesIO data
audio = Audio(np.frombuffer(audio_data.read(), dtype=np.float32), rate=output["sampling_rate"])

# Display the Audio object
display(audio)
'''

# A notebook runs top-level `async with`; outside one, the same cell body runs in a coroutine.
README_NOTEBOOK_ASYNC = '''
from IPython.display import Audio
import io
import os
import numpy as np

from cartesia.tts import AsyncCartesiaTTS

async with AsyncCartesiaTTS(api_key=os.environ.get("CARTESIA_API_KEY")) as client:
    voices = client.get_voices()
    voice = client.get_voice_embedding(voice_id=voices["Graham"]["id"])
    transcript = "Hello! Welcome to Cartesia"

    # Create a BytesIO object to store the audio data
    audio_data = io.BytesIO()

    # Generate and stream audio
    async for output in await client.generate(transcript=transcript, voice=voice, stream=True):
        buffer = output["audio"]
        audio_data.write(buffer)

# Set the cursor position to the beginning of the BytesIO object
audio_data.seek(0)

# Create an Audio object from the BytesIO data
audio = Audio(np.frombuffer(audio_data.read(), dtype=np.float32), rate=output["sampling_rate"])

# Display the Audio object
display(audio)
'''


def _graham(local_server: Any) -> list:
    client = sync_client(local_server)
    try:
        return client.get_voice_embedding(voice_id=client.get_voices()["Graham"]["id"])
    finally:
        client.close()


@pytest.mark.parametrize("example", ["sync", "async", "notebook", "notebook_async"])
def test_seed_readme_examples_run_as_written(
    local_server: Any, monkeypatch: pytest.MonkeyPatch, fake_audio_device: list, example: str
) -> None:
    import ast

    monkeypatch.setenv("CARTESIA_BASE_URL", local_server.host_for_env)
    monkeypatch.setenv("CARTESIA_API_KEY", local_server.api_key)
    source = {
        "sync": README_SYNC,
        "async": README_ASYNC,
        "notebook": README_NOTEBOOK,
        "notebook_async": README_NOTEBOOK_ASYNC,
    }[example]
    namespace: dict = {"display": lambda obj: None}
    if sys.version_info < (3, 10):
        # See run_isolated: works around a pytest-asyncio quirk on 3.9, not a client issue.
        monkeypatch.setattr(asyncio, "run", run_isolated)
    if example == "notebook_async":
        code = compile(source, f"<README {example}>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        coro = eval(code, namespace)
        run_isolated(coro)
    else:
        exec(compile(source, f"<README {example}>", "exec"), namespace)
    client = namespace.get("client")
    if isinstance(client, CartesiaTTS):
        client.close()  # the first example never closes its client; we do
    assert b"".join(fake_audio_device) == expected_audio("Hello! Welcome to Cartesia", _graham(local_server))


def test_first_audible_chunk_skips_leading_silence(local_server: Any, voice: list) -> None:
    # The tone engine starts with 20 ms of silence: with 10 ms chunks (a body the public
    # `generate` would refuse, hence `_generate_ws`) the first two chunks are silent.
    client = sync_client(local_server)
    try:
        body = client._generate_request_body(transcript="Hi", voice=voice, model_id=tts.DEFAULT_MODEL_ID)
        body["chunk_time"] = 0.01
        stream = client._generate_ws(body)
        peaks = [float(np.abs(np.frombuffer(c["audio"], "<f4")).max()) for c in stream]
        assert peaks[0] <= 1e-3 and peaks[1] <= 1e-3 and max(peaks) > 1e-3
        m = stream.metrics
        assert m.ttfa is not None and m.ttfa_audible is not None and m.ttfa < m.ttfa_audible
        whole = client.generate(transcript="Hi", voice=voice)  # through the AudioBuffer sink
        assert whole["audio"] and client.last_metrics.ttfa_audible is not None
    finally:
        client.close()
