"""How the e2e worker drives each client: one adapter per (implementation, transport), sync and async.

Imported by ``e2e_worker.py`` under whatever interpreter runs it (ours, the 0.0.5 venv, the 4.2.0 venv),
so it uses only the standard library and imports ``cartesia`` (or ``benchmarks.floor``) lazily.
Every adapter has the same shape: ``new()`` makes one client, ``stream(client, duration)`` yields the
audio bytes of one generation (an async iterator for async), ``close(client)``.

Implementations:
    ours, seed: ``CartesiaTTS``/``AsyncCartesiaTTS.generate(stream=True)`` on v0 (``http``, ``ws``);
        ours also speaks the current API as 4.2.0 does (``sse``, ``bytes``, ``ctx``).
    o420, o420-nodeflate: the official 4.2.0 (``Cartesia``/``AsyncCartesia``) on ``sse`` and ``ctx``;
        ``-nodeflate`` passes ``websocket_connection_options={"compression": None}``.
    floor: ``benchmarks.floor`` (bare sockets feeding our compiled core), every transport.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any, Dict, Optional

MODEL_V1 = "sonic-3"
FORMAT_V1 = {"container": "raw", "encoding": "pcm_f32le", "sample_rate": 44100}
V1_VERSION = "2026-08-14"
V0_MODEL = "genial-planet-1346"  # the v0 default model of both ours and 0.0.5
CURRENT = ("sse", "bytes", "ctx")


def _http_root(base_url: str) -> str:
    return base_url if "://" in base_url else "http://" + base_url


def fetch_voice(cfg: Dict[str, Any]) -> Any:
    """The voice every client of a run uses: a v0 embedding, or a ``{"mode": "id"}`` specifier."""
    root = _http_root(cfg["base_url"]).rstrip("/")
    if cfg["transport"] in CURRENT:
        req = urllib.request.Request(
            root + "/voices?limit=100",
            headers={"Authorization": f"Bearer {cfg['api_key']}", "Cartesia-Version": V1_VERSION},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            ids = sorted(v["id"] for v in json.load(resp)["data"])
        return {"mode": "id", "id": ids[0]}
    headers = {"X-API-Key": cfg["api_key"]}
    with urllib.request.urlopen(urllib.request.Request(root + "/v0/voices/", headers=headers), timeout=30) as resp:
        voices = json.load(resp)
    voice_id = sorted(v["id"] for v in voices)[0]
    url = f"{root}/v0/voices/embedding/{voice_id}"
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as resp:
        return json.load(resp)["embedding"]


class Adapter:
    """One client kind on one transport (see the module docstring)."""

    def __init__(self, cfg: Dict[str, Any], voice: Any) -> None:
        self.cfg = cfg
        self.voice = voice
        self.impl = cfg["impl"]
        self.transport = cfg["transport"]
        self.transcript = cfg["transcript"]
        #: The Sec-WebSocket-Extensions the server answered (websocket transports, when known).
        self.extensions: Optional[str] = None

    # --- bodies ---
    def v1_body(self, duration: Optional[float]) -> Dict[str, Any]:
        body = {"model_id": MODEL_V1, "transcript": self.transcript, "voice": self.voice, "output_format": FORMAT_V1}
        if duration is not None:
            body["duration"] = duration
        return body

    def v0_body(self, duration: Optional[float]) -> Dict[str, Any]:
        body = {"transcript": self.transcript, "model_id": V0_MODEL, "voice": self.voice}
        if duration is not None:
            body["duration"] = duration
        return body

    # --- construction ---
    def new(self, asynchronous: bool) -> Any:
        base, key = self.cfg["base_url"], self.cfg["api_key"]
        if self.impl == "floor":
            from benchmarks.floor import AsyncFloorClient, FloorClient

            return (AsyncFloorClient if asynchronous else FloorClient)(_http_root(base), key)
        if self.transport in CURRENT:
            import cartesia

            cls = cartesia.AsyncCartesia if asynchronous else cartesia.Cartesia
            root = _http_root(base)
            return cls(api_key=key, base_url=root, websocket_base_url="ws" + root[4:])
        from cartesia.tts import AsyncCartesiaTTS, CartesiaTTS

        return AsyncCartesiaTTS() if asynchronous else CartesiaTTS()

    def _ws_options(self) -> Dict[str, Any]:
        return {"compression": None} if self.impl == "o420-nodeflate" else {}

    def _note_extensions(self, conn: Any) -> None:
        # 4.2.0 wraps a `websockets` connection; ours never offers compression.
        inner = getattr(conn, "_connection", None)
        response = getattr(inner, "response", None)
        if response is not None:
            self.extensions = response.headers.get("Sec-WebSocket-Extensions") or ""

    # --- sync ---
    def stream(self, client: Any, duration: Optional[float]) -> Any:
        tr = self.transport
        if self.impl == "floor":
            return client.stream(tr, self.v1_body(duration) if tr in CURRENT else self.v0_body(duration))
        if tr == "sse":
            return self._sse(client, duration)
        if tr == "bytes":
            return client.tts.bytes(**self._v1_kwargs(), duration=duration)
        if tr == "ctx":
            return self._ctx(client, duration)
        return self._v0(client, duration)

    def _v1_kwargs(self) -> Dict[str, Any]:
        return dict(model_id=MODEL_V1, transcript=self.transcript, voice=self.voice, output_format=FORMAT_V1)

    def _v0(self, client: Any, duration: Optional[float]) -> Any:
        kw = dict(transcript=self.transcript, voice=self.voice, stream=True, websocket=self.transport == "ws")
        if duration is not None:
            kw["duration"] = duration
        for chunk in client.generate(**kw):
            yield chunk["audio"]

    def _sse(self, client: Any, duration: Optional[float]) -> Any:
        extra = {"duration": duration} if duration is not None else None
        for event in client.tts.generate_sse(**self._v1_kwargs(), extra_body=extra):
            if event.type == "chunk" and event.audio:
                yield event.audio
            elif event.type == "error":
                raise RuntimeError(f"error event: {event}")

    def _conn(self, client: Any) -> Any:
        conn = getattr(client, "_bench_ws", None)
        if conn is None:
            conn = client.tts.websocket_connect(websocket_connection_options=self._ws_options()).enter()
            client._bench_ws = conn
            self._note_extensions(conn)
        return conn

    def _ctx(self, client: Any, duration: Optional[float]) -> Any:
        conn = self._conn(client)
        ctx = conn.context(model_id=MODEL_V1, voice=self.voice, output_format=FORMAT_V1)
        extra = {"duration": duration} if duration is not None else {}
        ctx.send(transcript=self.transcript, voice=self.voice, continue_=False, **extra)
        for event in ctx.receive():
            if event.type == "chunk" and event.audio:
                yield event.audio
            elif event.type == "error":
                raise RuntimeError(f"error event: {event}")

    def close(self, client: Any) -> None:
        conn = getattr(client, "_bench_ws", None)
        if conn is not None:
            conn.close()
        client.close()

    # --- async ---
    def astream(self, client: Any, duration: Optional[float]) -> Any:
        tr = self.transport
        if self.impl == "floor":
            return client.stream(tr, self.v1_body(duration) if tr in CURRENT else self.v0_body(duration))
        return {"sse": self._asse, "bytes": self._abytes, "ctx": self._actx}.get(tr, self._av0)(client, duration)

    async def _av0(self, client: Any, duration: Optional[float]) -> Any:
        kw = dict(transcript=self.transcript, voice=self.voice, stream=True, websocket=self.transport == "ws")
        if duration is not None:
            kw["duration"] = duration
        async for chunk in await client.generate(**kw):
            yield chunk["audio"]

    async def _asse(self, client: Any, duration: Optional[float]) -> Any:
        extra = {"duration": duration} if duration is not None else None
        async for event in await client.tts.generate_sse(**self._v1_kwargs(), extra_body=extra):
            if event.type == "chunk" and event.audio:
                yield event.audio
            elif event.type == "error":
                raise RuntimeError(f"error event: {event}")

    async def _abytes(self, client: Any, duration: Optional[float]) -> Any:
        async for data in await client.tts.bytes(**self._v1_kwargs(), duration=duration):
            yield data

    async def _actx(self, client: Any, duration: Optional[float]) -> Any:
        conn = getattr(client, "_bench_ws", None)
        if conn is None:
            conn = await client.tts.websocket_connect(websocket_connection_options=self._ws_options()).enter()
            client._bench_ws = conn
            self._note_extensions(conn)
        ctx = conn.context(model_id=MODEL_V1, voice=self.voice, output_format=FORMAT_V1)
        extra = {"duration": duration} if duration is not None else {}
        await ctx.send(transcript=self.transcript, voice=self.voice, continue_=False, **extra)
        async for event in ctx.receive():
            if event.type == "chunk" and event.audio:
                yield event.audio
            elif event.type == "error":
                raise RuntimeError(f"error event: {event}")

    async def aclose(self, client: Any) -> None:
        conn = getattr(client, "_bench_ws", None)
        if conn is not None:
            await conn.close()
        await client.close()
