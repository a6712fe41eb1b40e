"""Contexts of one sync ``/tts/websocket`` connection whose callers read in turns: one reads
while another does not, one reads in a thread while the connection's inbox is read in another."""

from __future__ import annotations

import threading
from typing import Any, Dict, List

from current_ws_support import S16, VOICE, audio_of, defaults, expected, sync_conn

LIMIT = 15.0


def test_a_context_read_later_gets_everything_another_read_past(local_server):
    with sync_conn(local_server) as ws:
        first = ws.context("first", **defaults())
        later = ws.context("later", **defaults())
        later.push("Read after the other one.", continue_=False)
        first.push("Read at once.", continue_=False)
        got_first = list(first.receive())  # its caller reads; the other's frames are queued
        got_later = list(later.receive())
        sock = ws.socket
        assert sock is not None and sock.conn is not None and sock.conn.turns is not None
    assert got_first[-1].type == "done" and got_later[-1].type == "done"
    assert audio_of(got_first) == expected(["Read at once."])
    assert audio_of(got_later) == expected(["Read after the other one."])


def test_a_context_read_in_a_thread_and_the_inbox_read_in_another(local_server):
    with sync_conn(local_server) as ws:
        ctx = ws.context("object", **defaults())
        results: Dict[str, List[Any]] = {}

        def read_context() -> None:
            results["object"] = list(ctx.receive())

        reader = threading.Thread(target=read_context)
        ctx.push("The context object's words.", continue_=False)
        reader.start()
        ws.send({"context_id": "raw", "model_id": "sonic-3", "transcript": "The inbox's words.",
                 "voice": {"mode": "id", "id": VOICE.id}, "output_format": S16})
        raw: List[Any] = []
        while not raw or raw[-1].type not in ("done", "error"):
            raw.append(ws.recv(timeout=LIMIT))
        reader.join(LIMIT)
        assert not reader.is_alive()
    assert {e.context_id for e in raw} == {"raw"}
    assert audio_of(raw) == expected(["The inbox's words."])
    assert audio_of(results["object"]) == expected(["The context object's words."])
