"""``POST /tts/bytes`` and ``POST /tts/sse``: one generation per request, streamed as rendered."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Dict, Optional

from aiohttp import web

from .. import json_body
from ..faults import Fault
from ..http_api import take_generation_faults
from ..pacing import Pacer
from ..state import STATE_KEY, ServerState
from . import frames
from .errors import ApiError, error_frame
from .fault_plan import FaultPlan, HttpWriter
from .middleware import principal
from .pipeline import Chunk, Generation, SynthesisError, Timestamps
from .request import TTSRequest, parse_tts
from .versions import request_version
from .voice_lookup import voice_lookup

__all__ = ["tts_bytes", "tts_sse", "HOLD_BACK"]

log = logging.getLogger("cartesia.server")
#: ``/tts/bytes`` holds this many bytes of each chunk back for the next write, so write
#: boundaries fall inside samples (as the real service's do): clients must re-frame.
HOLD_BACK = 3
#: What the ``malformed`` fault ends an SSE stream with.
_MALFORMED_SSE = b"data: " + frames.MALFORMED + b"\n\n"


def _sse(event: Dict[str, Any]) -> bytes:
    return b"data: " + frames.encode(event) + b"\n\n"


class _HttpGeneration:
    """Runs one generation onto an HTTP response; subclasses shape the body."""

    route = "bytes"

    def __init__(self, request: web.Request, req: TTSRequest) -> None:
        self.request = request
        self.req = req
        self.state: ServerState = request.app[STATE_KEY]
        self.version = request_version(request)
        self.plan = FaultPlan(take_generation_faults(request, "stream"), self.state.stats)
        self.gen = Generation(self.state.engine, req)
        self.resp: Optional[web.StreamResponse] = None
        self.writer: Optional[HttpWriter] = None

    def headers(self) -> Dict[str, str]:
        raise NotImplementedError

    async def start(self) -> HttpWriter:
        """Send the status line and headers (at the first output, so early failures are a
        proper error response)."""
        if self.writer is None:
            self.resp = web.StreamResponse(headers=self.headers())
            await self.resp.prepare(self.request)
            self.writer = HttpWriter(self.resp, self.plan)
        return self.writer

    async def chunk(self, event: Chunk) -> None:
        raise NotImplementedError

    async def other(self, event: Timestamps) -> None:
        """Non-audio events (timestamps); ignored by ``/tts/bytes``."""

    async def close(self, tail: bytes) -> None:
        raise NotImplementedError

    async def fail(self, err: ApiError) -> None:
        """An error after the response started (the default: cut the body short)."""
        self.drop()

    async def malformed(self) -> None:
        raise NotImplementedError

    def drop(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def _terminal(self, fault: Fault) -> None:
        writer = await self.start()
        if fault.kind == "malformed":
            await self.malformed()
            await writer.flush()
            assert self.resp is not None
            await self.resp.write_eof()
        else:  # drop (ws_close never reaches an HTTP stream)
            await writer.flush()
            self.drop()

    def _response(self) -> web.StreamResponse:
        # Set by start(), which every path that gets here has called, except a client gone (or
        # a RuntimeError) before the first output; that fails as before (a 500 by aiohttp).
        assert self.resp is not None
        return self.resp

    async def run(self) -> web.StreamResponse:
        stats = self.state.stats
        current = self.state.current
        assert current is not None
        account = principal(self.request).account
        current.generations.acquire(account)
        task = asyncio.current_task()
        assert task is not None  # a request handler always runs in a task
        self.state.streams.add(task)
        stats["generations_started"] += 1
        pacer = Pacer(self.state.config.pace, self.state.config.first_chunk_latency)
        index = 0
        try:
            try:
                async for event in self.gen.render(self.req.transcript):
                    if not isinstance(event, Chunk):
                        await self.other(event)
                        continue
                    if not event.audio:
                        continue
                    fault = await self.plan.before_frame()
                    if fault is not None:
                        await self._terminal(fault)
                        return self._response()
                    await pacer.before_chunk(index)
                    await self.start()
                    await self.chunk(event)
                    pacer.sent(event.seconds)
                    self.plan.sent_frame()
                    index += 1
                    await asyncio.sleep(0)  # let other streams interleave
                tail = self.gen.finish()
            except SynthesisError as exc:  # an engine failure: an answer, never a hang
                log.exception("generation failed on %s", self.request.path)
                err = ApiError(500, f"generation failed: {exc.__cause__.__class__.__name__}")
                if self.writer is None:
                    raise err from None
                await self.fail(err)
                return self._response()
            fault = await self.plan.before_frame(final=True)
            if fault is not None:
                await self._terminal(fault)
                return self._response()
            await self.start()
            await self.close(tail)
            assert self.writer is not None and self.resp is not None
            await self.writer.flush()
            await self.resp.write_eof()
            stats["generations_completed"] += 1
        except (ConnectionError, RuntimeError):
            # The client went away mid-stream; nothing left to tell it.
            stats["generations_aborted"] += 1
        finally:
            current.generations.release(account)
            self.state.streams.discard(task)
        return self._response()


class _Bytes(_HttpGeneration):
    route = "bytes"

    def __init__(self, request: web.Request, req: TTSRequest) -> None:
        super().__init__(request, req)
        self.carry = self.gen.header()

    def headers(self) -> Dict[str, str]:
        headers = {"Content-Type": self.req.output_format.content_type()}
        if self.req.save:
            headers["Cartesia-File-ID"] = f"file_{uuid.uuid4().hex}"
        return headers

    async def chunk(self, event: Chunk) -> None:
        data = self.carry + event.audio
        self.carry = data[-HOLD_BACK:]
        if len(data) > HOLD_BACK:
            assert self.writer is not None
            await self.writer.write(data[:-HOLD_BACK])

    async def close(self, tail: bytes) -> None:
        data = self.carry + tail
        self.carry = b""
        if data:
            assert self.writer is not None
            await self.writer.write(data)

    async def malformed(self) -> None:
        # A torn last sample: the body ends one byte short of what was held back.
        assert self.writer is not None
        await self.writer.write(self.carry[:-1] or b"\x00")


class _Sse(_HttpGeneration):
    route = "sse"

    def headers(self) -> Dict[str, str]:
        return {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}

    async def _send(self, event: Dict[str, Any]) -> None:
        assert self.writer is not None
        await self.writer.write(_sse(event))

    async def chunk(self, event: Chunk) -> None:
        await self._send(frames.chunk(event.audio, event.step_ms, self.req.context_id))

    async def other(self, event: Timestamps) -> None:
        await self.start()
        await self._send(frames.timestamps(event, self.req.context_id))

    async def close(self, tail: bytes) -> None:
        if tail:
            await self._send(frames.chunk(tail, 0.0, self.req.context_id))
        await self._send(frames.done(self.req.context_id))

    async def fail(self, err: ApiError) -> None:
        # Inside the 200: an error event that ends the stream.
        await self._send(error_frame(err, self.version, self.req.context_id))
        assert self.writer is not None and self.resp is not None
        await self.writer.flush()
        await self.resp.write_eof()

    async def malformed(self) -> None:
        assert self.writer is not None
        await self.writer.write(_MALFORMED_SSE)


async def _parse(request: web.Request, route: str) -> TTSRequest:
    body = json_body.loads(await request.read())
    return parse_tts(body, version=request_version(request), route=route, lookup=voice_lookup(request))


async def tts_bytes(request: web.Request) -> web.StreamResponse:
    """``POST /tts/bytes``: the audio in the requested container, streamed."""
    return await _Bytes(request, await _parse(request, "bytes")).run()


async def tts_sse(request: web.Request) -> web.StreamResponse:
    """``POST /tts/sse``: ``data: {json}`` events: chunks, timestamps, then ``done``."""
    return await _Sse(request, await _parse(request, "sse")).run()
