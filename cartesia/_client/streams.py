"""The objects ``generate(stream=True)`` returns: generators with metrics and cancel-on-exit."""

from types import TracebackType
from typing import Any, AsyncIterator, Callable, Dict, Iterator, Optional, Type

from .metrics import GenerationMetrics

__all__ = ["AudioStream", "AsyncAudioStream"]

Chunk = Dict[str, Any]


class AudioStream:
    """The chunks of one generation, yielded as they arrive.

    Behaves like the generator cartesia 0.0.5 returned (``isinstance(s, typing.Generator)``
    holds) and adds: ``metrics`` (a :class:`GenerationMetrics`), ``cancel()``, and use as a
    context manager. Leaving the ``with`` block, calling ``close()``/``cancel()`` or breaking out
    of the loop (once the stream is no longer referenced) cancels the generation; frames that
    still arrive for it never reach a later generation.
    """

    def __init__(self, gen: Iterator[Chunk], metrics: GenerationMetrics) -> None:
        self._gen = gen
        self.metrics = metrics

    def __iter__(self) -> "AudioStream":
        return self

    def __next__(self) -> Chunk:
        return next(self._gen)

    def send(self, value: Any) -> Chunk:
        return self._gen.send(value)  # type: ignore[attr-defined,no-any-return]

    def throw(self, *args: Any) -> Chunk:
        return self._gen.throw(*args)  # type: ignore[attr-defined,no-any-return]

    def close(self) -> None:
        """Stop the generation (sends the cancel in interrupt mode); idempotent."""
        self._gen.close()  # type: ignore[attr-defined]

    cancel = close

    def __enter__(self) -> "AudioStream":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<AudioStream {self.metrics.transport} status={self.metrics.status}>"


class AsyncAudioStream:
    """Async twin of :class:`AudioStream` (``isinstance(s, typing.AsyncGenerator)`` holds).

    ``async with`` / ``aclose()`` / ``cancel()`` cancel the generation at once. When a loop is
    left with ``break`` the stream is cancelled as soon as it is garbage collected (immediately
    in CPython when nothing else references it).
    """

    def __init__(
        self,
        agen: AsyncIterator[Chunk],
        metrics: GenerationMetrics,
        on_drop: Optional[Callable[[], None]] = None,
    ) -> None:
        self._agen = agen
        self.metrics = metrics
        self._on_drop = on_drop

    def __aiter__(self) -> "AsyncAudioStream":
        return self

    async def __anext__(self) -> Chunk:
        return await self._agen.__anext__()

    async def asend(self, value: Any) -> Chunk:
        return await self._agen.asend(value)  # type: ignore[attr-defined,no-any-return]

    async def athrow(self, *args: Any) -> Chunk:
        return await self._agen.athrow(*args)  # type: ignore[attr-defined,no-any-return]

    async def aclose(self) -> None:
        """Stop the generation (sends the cancel in interrupt mode); idempotent."""
        await self._agen.aclose()  # type: ignore[attr-defined]

    cancel = aclose

    async def __aenter__(self) -> "AsyncAudioStream":
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        # Release the context synchronously: the async generator's own clean-up only runs
        # later (via the loop's asyncgen finalizer), and the next generation must not wait.
        drop = self._on_drop
        if drop is not None:
            self._on_drop = None
            try:
                drop()
            except Exception:  # never raise from __del__
                pass

    def __repr__(self) -> str:
        return f"<AsyncAudioStream {self.metrics.transport} status={self.metrics.status}>"
