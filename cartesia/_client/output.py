"""Shapes parsed messages into the chunks a caller asked for: bytes, float32 arrays or a sink."""

import sys
from typing import Any, Dict, Optional

from ..errors import StreamFormatError

__all__ = ["ChunkShaper", "FLOAT32_BYTES"]

FLOAT32_BYTES = 4  # the v0 API streams little-endian float32 mono PCM
AUDIBLE = 1e-3  # -60 dBFS: quieter than this counts as silence for the first-audible metric
_PREFIX_BYTES = 64 * FLOAT32_BYTES  # samples looked at one by one before numpy sees the rest
_NATIVE_F4 = sys.byteorder == "little"  # memoryview's "f" is native: the wire's little-endian


class ChunkShaper:
    """Builds the chunk dicts of one generation.

    Args:
        as_numpy: Yield ``numpy.float32`` arrays (views on the decoded bytes, no copy) instead of
            ``bytes``. A chunk that does not end on a whole sample keeps its 1-3 trailing bytes
            for the next chunk, so every array holds whole samples.
        sink: A ``PCMRing``/``AudioBuffer`` the parser decodes into; chunks then carry
            ``"audio": b""`` and ``"samples"``, the number of samples written.
        context_id: When set, every chunk carries it as ``"context_id"`` (0.0.5 ``_generate_ws``).
    """

    def __init__(
        self, *, as_numpy: bool = False, sink: Any = None, context_id: Optional[str] = None
    ) -> None:
        self.as_numpy = as_numpy
        self.sink = sink
        self.context_id = context_id
        #: Chunks are ``{"audio": bytes, "sampling_rate": ...}`` and nothing else (the common
        #: case, which ``Generation.handle`` builds inline).
        self.plain = not as_numpy and sink is None and context_id is None
        self._carry = b""
        if as_numpy:
            import numpy  # numpy is a dependency, but only this option needs it at run time

            self._np = numpy

    def nbytes(self, message: Any) -> int:
        """Decoded audio bytes carried by ``message`` (also when a sink took them)."""
        audio = message.audio
        if audio:
            return len(audio)
        samples = getattr(message, "samples", 0) or 0
        return samples * FLOAT32_BYTES if self.sink is not None else 0

    def is_audible(self, message: Any) -> bool:
        """Whether ``message`` carries a sample louder than -60 dBFS (False for a PCMRing sink)."""
        audio = message.audio
        whole = len(audio) - len(audio) % FLOAT32_BYTES
        if whole and _NATIVE_F4:
            # It runs on the path to the first audio: speech is audible within its first
            # samples, and a loop over a few of them costs less than numpy's call overhead
            # (~4 µs for one array and two reductions, whatever the chunk's size).
            head = min(whole, _PREFIX_BYTES)
            for sample in memoryview(audio)[:head].cast("f"):
                if sample > AUDIBLE or sample < -AUDIBLE:  # a NaN is neither, as below
                    return True
            if head == whole:
                return False
        import numpy as np

        if whole:
            samples = np.frombuffer(audio, dtype="<f4", count=whole // FLOAT32_BYTES)
        else:
            # Decoded into an AudioBuffer: look at its newest samples (a view, no copy).
            to_numpy = getattr(self.sink, "to_numpy", None)
            count = getattr(message, "samples", 0)
            if to_numpy is None or not count:
                return False
            samples = to_numpy()[-count:]
        if not samples.size:
            return False
        # Two reductions without temporaries (abs, compare) on the path to the first audio: about
        # half the time. fmax/fmin skip NaN, as the comparison of a NaN does.
        return bool(np.fmax.reduce(samples) > AUDIBLE or np.fmin.reduce(samples) < -AUDIBLE)

    def chunk(self, message: Any, echoed_context_id: Optional[str]) -> Dict[str, Any]:
        """The dict yielded to the caller for one audio message."""
        if self.sink is not None:
            out: Dict[str, Any] = {
                "audio": b"",
                "sampling_rate": message.sampling_rate,
                "samples": message.samples,
            }
        elif self.as_numpy:
            out = {"audio": self._array(message.audio), "sampling_rate": message.sampling_rate}
        else:
            out = {"audio": message.audio, "sampling_rate": message.sampling_rate}
        if self.context_id is not None:
            out["context_id"] = (
                echoed_context_id if echoed_context_id is not None else self.context_id
            )
        return out

    def _array(self, audio: bytes) -> Any:
        np = self._np
        if self._carry:
            audio = self._carry + audio
            self._carry = b""
        whole = len(audio) - len(audio) % FLOAT32_BYTES
        if whole != len(audio):
            self._carry = bytes(audio[whole:])
            audio = audio[:whole]
        return np.frombuffer(audio, dtype=np.float32)

    def finish(self) -> None:
        """Raise if the stream ended inside a sample (bytes that can never form one)."""
        pending = getattr(self.sink, "pending_bytes", 0) if self.sink is not None else 0
        if pending:
            raise StreamFormatError(
                f"The audio stream ended with {pending} byte(s) that do not form a whole sample."
            )
        if self._carry:
            carry, self._carry = self._carry, b""
            raise StreamFormatError(
                f"The audio stream ended with {len(carry)} byte(s) that do not form a whole "
                "float32 sample."
            )
