"""Current-API websocket, sync: contexts bit-exact against the tone engine, continuations,
flushes, timestamps, cancel, errors, duplicate ids, sinks, timeouts, backpressure, threads."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from current_ws_support import S16, audio_of, defaults, expected, fmt, sync_conn
from server_fixtures import LOAD_SLACK

from cartesia.errors import (
    BadRequestError,
    FirstAudioTimeoutError,
    InvalidInputError,
    NotFoundError,
)
from cartesia.streaming import AudioBuffer


@pytest.mark.parametrize("encoding", ["pcm_f32le", "pcm_s16le", "pcm_mulaw", "pcm_alaw"])
def test_one_context_is_bit_exact(local_server, encoding):
    with sync_conn(local_server) as ws:
        ctx = ws.context(**defaults(output_format=fmt(encoding), language="en"))
        ctx.push("Hello, world!")
        ctx.no_more_inputs()
        events = list(ctx.receive())
    assert events[-1].type == "done" and events[-1].status_code == 200
    assert {e.context_id for e in events} == {ctx.context_id}
    chunks = [e for e in events if e.type == "chunk"]
    assert chunks and all(c.status_code == 206 and c.step_time >= 0 for c in chunks)
    assert audio_of(events) == expected(["Hello, world!"], fmt(encoding))


def test_push_with_continue_false_ends_the_context(local_server):
    with sync_conn(local_server) as ws:
        ctx = ws.context(**defaults())
        ctx.push("Hello, world!", continue_=False)
        events = list(ctx.receive())
        with pytest.raises(InvalidInputError) as info:
            ctx.push("more")
    assert info.value.field == "context_id"
    assert audio_of(events) == expected(["Hello, world!"])


def test_continuations_are_one_utterance(local_server):
    with sync_conn(local_server) as ws:
        # A long buffer delay: only the sentence end (or the end of input) releases text.
        ctx = ws.context(**defaults(max_buffer_delay_ms=5000))
        for part in ["The road ", "goes ever ", "on and ", "on."]:
            ctx.push(part)
        ctx.no_more_inputs()
        events = list(ctx.receive())
    assert audio_of(events) == expected(["The road goes ever on and on."])


def test_flush_ids_and_flush_done(local_server):
    with sync_conn(local_server) as ws:
        ctx = ws.context(**defaults())
        ctx.push("Stay hungry, ")
        assert ctx.flush() == 1
        ctx.push("stay foolish.")
        assert ctx.flush() == 2
        ctx.no_more_inputs()
        events = list(ctx.receive())
    kinds = [(e.type, e.flush_id) for e in events if e.type != "timestamps"]
    first_done = kinds.index(("flush_done", 1))
    assert all(fid == 1 for kind, fid in kinds[:first_done] if kind == "chunk")
    assert ("flush_done", 2) in kinds
    by_flush = {
        fid: audio_of(e for e in events if e.flush_id == fid) for fid in (1, 2)
    }
    assert by_flush[1] + by_flush[2] == expected(["Stay hungry, ", "stay foolish."])
    assert by_flush[1] and by_flush[2]
    flush_done = next(e for e in events if e.type == "flush_done")
    assert flush_done.flush_done is True and flush_done.done is False


def test_word_and_phoneme_timestamps(local_server):
    with sync_conn(local_server) as ws:
        ctx = ws.context(**defaults(add_timestamps=True, add_phoneme_timestamps=True))
        ctx.push("Timestamps for these words.", continue_=False)
        events = list(ctx.receive())
    words = [w for e in events if e.type == "timestamps" for w in e.word_timestamps.words]
    assert words == ["Timestamps", "for", "these", "words."]
    stamps = next(e.word_timestamps for e in events if e.type == "timestamps")
    assert len(stamps.start) == len(stamps.end) == len(stamps.words)
    assert all(s <= t for s, t in zip(stamps.start, stamps.end))
    phonemes = [e for e in events if e.type == "phoneme_timestamps"]
    assert phonemes and phonemes[0].phoneme_timestamps.phonemes
    assert phonemes[0].to_dict()["phoneme_timestamps"]["phonemes"]
    assert audio_of(events) == expected(["Timestamps for these words."])


def test_cancelled_context_never_leaks_into_another(local_server):
    long_text = " ".join(["This long sentence keeps the first context busy."] * 20)
    with sync_conn(local_server, queue_size=8) as ws:
        a = ws.context("ctx-a", **defaults())
        a.push(long_text, continue_=False)
        first = next(iter(a.receive()))
        assert first.type == "chunk" and first.context_id == "ctx-a"
        a.cancel()
        assert list(a.receive()) == []  # a cancelled context ends at once
        b = ws.context("ctx-b", **defaults())
        b.push("Only mine.", continue_=False)
        events = list(b.receive())
        assert ws.connections_opened == 1
        # a's frames that were in flight arrived after its cancel, and were dropped.
        assert ws.socket.router.dropped_frames > 0
    assert {e.context_id for e in events} == {"ctx-b"}
    assert audio_of(events) == expected(["Only mine."])


def test_duplicate_context_id_is_a_clear_error(local_server):
    with sync_conn(local_server) as ws:
        ws.context("same", **defaults())
        with pytest.raises(InvalidInputError) as info:
            ws.context("same", **defaults())
        assert info.value.field == "context_id" and "same" in str(info.value)
        assert isinstance(info.value, ValueError)  # what 4.2.0 raises


def test_error_frame_is_yielded_then_ends_the_context(local_server):
    with sync_conn(local_server) as ws:
        ctx = ws.context(**defaults(voice={"mode": "id", "id": "no-such-voice"}))
        ctx.push("Hello", continue_=False)
        events = list(ctx.receive())
        assert [e.type for e in events] == ["error"]
        err = events[0]
        assert err.status_code == 404 and err.title and err.message and err.done is True
        assert err.error == f"{err.title}: {err.message}"
        assert isinstance(err.to_exception(), NotFoundError)
        # The socket still serves the next context.
        ok = ws.context(**defaults())
        ok.push("Fine.", continue_=False)
        assert audio_of(ok.receive()) == expected(["Fine."])


def test_error_frame_raises_the_http_status_class_on_request(local_server):
    with sync_conn(local_server) as ws:
        ctx = ws.context(**defaults(raise_errors=True, output_format=fmt(sample_rate=12345)))
        ctx.push("Hello", continue_=False)
        with pytest.raises(BadRequestError) as info:
            list(ctx.receive())
    assert info.value.status_code == 400 and local_server.api_key not in str(info.value)


def test_sink_receives_the_audio(local_server):
    sink = AudioBuffer(encoding="pcm_f32le")
    with sync_conn(local_server) as ws:
        ctx = ws.context(**defaults(output_format=fmt("pcm_f32le"), sink=sink))
        ctx.push("Into the sink.", continue_=False)
        events = list(ctx.receive())
    chunks = [e for e in events if e.type == "chunk"]
    assert all(c.audio is None for c in chunks) and sum(c.samples for c in chunks) == len(sink)
    assert sink.to_bytes() == expected(["Into the sink."], fmt("pcm_f32le"))


def test_receive_timeout_is_typed_and_bounded(local_server):
    with sync_conn(local_server) as ws:
        ctx = ws.context(**defaults(max_buffer_delay_ms=5000, timeout=0.3))
        ctx.push("No sentence end yet")  # buffered by the server: nothing comes back
        t0 = time.monotonic()
        with pytest.raises(FirstAudioTimeoutError):
            next(iter(ctx.receive()))
        assert 0.25 <= time.monotonic() - t0 < 3 + LOAD_SLACK  # the server holds the text 5 s


def test_receive_before_send_is_a_clear_error(local_server):
    with sync_conn(local_server) as ws:
        ctx = ws.context(**defaults())
        with pytest.raises(InvalidInputError, match="push"):
            next(iter(ctx.receive()))


def test_slow_consumer_gets_backpressure_not_memory(local_server):
    text = " ".join(["This sentence is spoken again and again."] * 30)
    with sync_conn(local_server, queue_size=4) as ws:
        ctx = ws.context(**defaults())
        ctx.push(text, continue_=False)
        it = iter(ctx.receive())
        next(it)
        sock = ws.socket
        assert sock is not None
        deadline = time.monotonic() + 10
        while not sock.router.waiting_on_consumer and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sock.router.waiting_on_consumer  # the reader waits: the queue does not grow
        assert ctx._slot is not None and ctx._slot.queue.qsize() <= 4
        events = list(it)
    assert events[-1].type == "done"


def test_eight_threads_share_one_connection(local_server):
    texts = {f"t{i}-{j}": f"Thread {i} context {j} speaks." for i in range(8) for j in range(3)}
    with sync_conn(local_server) as ws:

        def run(i: int) -> dict:
            out = {}
            for j in range(3):
                cid = f"t{i}-{j}"
                ctx = ws.context(cid, **defaults())
                ctx.push(texts[cid], continue_=False)
                out[cid] = list(ctx.receive())
            return out

        with ThreadPoolExecutor(8) as pool:
            results = [f.result(timeout=60) for f in [pool.submit(run, i) for i in range(8)]]
        assert ws.connections_opened == 1
    for out in results:
        for cid, events in out.items():
            assert {e.context_id for e in events} == {cid}
            assert audio_of(events) == expected([texts[cid]])


def test_threads_interleave_contexts_at_once(local_server):
    """Contexts started together from 8 threads stream at the same time on one socket."""
    barrier = threading.Barrier(8, timeout=10)
    with sync_conn(local_server) as ws:

        def run(i: int) -> bytes:
            ctx = ws.context(**defaults())
            barrier.wait()
            ctx.push(f"Concurrent thread {i} talks a while.", continue_=False)
            return audio_of(ctx.receive())

        with ThreadPoolExecutor(8) as pool:
            audios = list(pool.map(run, range(8), timeout=60))
    assert audios == [expected([f"Concurrent thread {i} talks a while."]) for i in range(8)]


def test_key_never_in_repr_or_errors(local_server):
    conn = sync_conn(local_server)
    assert local_server.api_key not in repr(conn)
    conn.close()
    with pytest.raises(Exception) as info:
        conn.context(**defaults())
    assert local_server.api_key not in str(info.value)


def test_default_output_format_is_4_2_0s(local_server):
    with sync_conn(local_server) as ws:
        ctx = ws.context(model_id="sonic-3", voice=defaults()["voice"], timeout=15)
        ctx.push("Default format.", continue_=False)
        audio = audio_of(ctx.receive())
    assert audio == expected(["Default format."], fmt("pcm_f32le"))
    assert S16["encoding"] == "pcm_s16le"
