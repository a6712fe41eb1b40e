"""Current-API routes with the real espeak-ng speech engine: languages, timestamps, websocket."""

from __future__ import annotations

import asyncio
import base64

import aiohttp
import httpx
import numpy as np
from server_fixtures import WS_TIMEOUT
from test_server_v1_http import headers, raw_format, sse_events, tts_body


def test_sse_speech_with_timestamps_in_two_languages(speech_server):
    for language, text in (("en", "Good morning everyone. How are you?"),
                           ("fr", "Bonjour tout le monde. Comment allez-vous?")):
        resp = httpx.post(
            speech_server.base_url + "/tts/sse",
            json=tts_body(text, language=language, add_timestamps=True, add_phoneme_timestamps=True,
                          output_format=raw_format("pcm_s16le", 16000)),
            headers=headers(speech_server),
            timeout=60,
        )
        assert resp.status_code == 200, resp.text
        events = sse_events(resp.content)
        assert events[-1]["type"] == "done"
        pcm = b"".join(base64.b64decode(e["data"]) for e in events if e["type"] == "chunk")
        samples = np.frombuffer(pcm, "<i2").astype(np.float64) / 32768
        seconds = len(samples) / 16000
        assert seconds > 1.0 and np.sqrt(np.mean(samples ** 2)) > 0.01  # real, audible speech
        for kind, key in (("timestamps", "word_timestamps"), ("phoneme_timestamps", "phoneme_timestamps")):
            stamps = [e[key] for e in events if e["type"] == kind]
            assert len(stamps) == 2  # one per sentence
            starts = [s for ts in stamps for s in ts["start"]]
            ends = [s for ts in stamps for s in ts["end"]]
            assert starts and starts == sorted(starts) and ends == sorted(ends)
            assert all(0 <= s <= t <= seconds + 1e-6 for s, t in zip(starts, ends))
        words = [w for e in events if e["type"] == "timestamps" for w in e["word_timestamps"]["words"]]
        assert words[0] == text.split()[0]


async def test_websocket_speech_context(speech_server):
    url = f"{speech_server.ws_url}/tts/websocket?api_key=k"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        async with session.ws_connect(url, **WS_TIMEOUT) as ws:
            await ws.send_json(tts_body("Hello from ", context_id="s1", **{"continue": True}))
            await ws.send_json(tts_body("the speech engine.", context_id="s1", **{"continue": False}))
            frames = []
            while not frames or not frames[-1]["done"]:
                frames.append(await asyncio.wait_for(ws.receive_json(), 30))
    assert frames[-1]["type"] == "done"
    audio = b"".join(base64.b64decode(f["data"]) for f in frames if f["type"] == "chunk")
    assert len(audio) / 4 / 44100 > 1.0
