"""Fault injection for the local server: a thread-safe queue of faults and the spec-string parser.

Vocabulary (the same words in the Python API, the ``X-Cartesia-Fault`` header, the websocket
``fault=`` query / message field and the ``POST /_emulator/faults`` control endpoint):

======================  =========================================================================
kind                    effect
======================  =========================================================================
``drop``                abort the TCP connection after ``after_frames`` audio frames (HTTP: the
                        chunked body never ends; websocket: no close frame, the client sees 1006)
``stall``               pause ``seconds`` after ``after_frames`` frames, then carry on
``split``               HTTP stream only: write every frame in ``piece``-byte pieces (default 1)
``coalesce``            HTTP stream only: write ``frames`` frames per write (default: all of them
                        in one single write)
``malformed``           after ``after_frames`` frames send one frame that is not valid JSON, then
                        end the generation (HTTP: end of body; websocket: no ``done`` frame)
``status``              answer the next request with HTTP ``status`` (401, 429, 500, ...) and a
                        JSON error body; it carries ``Retry-After: <retry_after>``,
                        ``retry-after-ms: <retry_after_ms>`` and ``x-should-retry:
                        true|false`` (``should_retry``) when given.
                        On websockets the upgrade is refused with that status.
``ws_close``            websocket only: close the socket with ``code`` (default 1011) after
                        ``after_frames`` frames of a generation
``ws_idle_close``       websocket only: after a generation has finished, wait ``seconds``
                        (default 0) and close the now idle socket with ``code`` (default 1000)
======================  =========================================================================

Shorthands: ``401``, ``429``, ``500``, ``503`` (= ``status`` with that status), ``close1000``,
``close1011`` (= ``ws_close`` with that code).

A fault is only taken by traffic it can act on: ``split``/``coalesce`` wait for an HTTP stream,
``ws_close``/``ws_idle_close`` for a websocket generation, whatever their ``on`` says.

Every fault has ``count`` (how many requests/generations it hits before it is used up; default 1,
``0`` or negative = forever) and ``on`` (which traffic it targets: ``any`` (default), ``http``
(every HTTP request except health and control), ``stream`` (``POST /audio/stream``,
``/tts/bytes`` and ``/tts/sse``), ``ws`` (websocket upgrades and generations, v0 and
``/tts/websocket``), ``voices``, ``transcriptions``).

Spec strings: faults separated by ``,``; each is ``kind`` followed by ``;key=value`` pairs, e.g.
``stall;after_frames=2;seconds=0.5, split`` or ``429;retry_after=2;count=3``.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from typing import Any, Dict, Iterable, List, Optional, Sequence

__all__ = [
    "FAULT_KINDS",
    "GENERATION_KINDS",
    "HTTP_STREAM_KINDS",
    "WS_KINDS",
    "Fault",
    "FaultController",
    "FaultSpecError",
    "parse_fault_spec",
]

#: Every fault kind the server understands.
FAULT_KINDS = (
    "drop",
    "stall",
    "split",
    "coalesce",
    "malformed",
    "status",
    "ws_close",
    "ws_idle_close",
)
#: Kinds that shape a running generation (as opposed to ``status``, which answers a request).
GENERATION_KINDS = frozenset(
    {"drop", "stall", "split", "coalesce", "malformed", "ws_close", "ws_idle_close"}
)
#: Generation kinds that only make sense on (and are only taken by) one transport.
HTTP_STREAM_KINDS = GENERATION_KINDS - {"ws_close", "ws_idle_close"}
WS_KINDS = GENERATION_KINDS - {"split", "coalesce"}
_TARGETS = frozenset({"any", "http", "stream", "ws", "voices", "transcriptions"})
_ALIASES: Dict[str, Dict[str, Any]] = {
    "401": {"kind": "status", "status": 401},
    "403": {"kind": "status", "status": 403},
    "429": {"kind": "status", "status": 429},
    "500": {"kind": "status", "status": 500},
    "503": {"kind": "status", "status": 503},
    "close1000": {"kind": "ws_close", "code": 1000},
    "close1001": {"kind": "ws_close", "code": 1001},
    "close1011": {"kind": "ws_close", "code": 1011},
}
_INT_FIELDS = ("count", "after_frames", "status", "code", "piece", "frames")
_FLOAT_FIELDS = ("seconds", "retry_after", "retry_after_ms")
_BOOL_FIELDS = ("should_retry",)


class FaultSpecError(ValueError):
    """A fault description could not be understood (unknown kind, bad parameter)."""


@dataclasses.dataclass
class Fault:
    """One injected fault; see the module docstring for what each kind does.

    Attributes:
        kind: One of :data:`FAULT_KINDS`.
        count: Requests/generations it still applies to; ``<= 0`` means forever.
        on: Traffic it targets (``any``, ``http``, ``stream``, ``ws``, ``voices``,
            ``transcriptions``).
        after_frames: Audio frames sent before the fault fires (drop, stall, malformed, ws_close).
        seconds: Stall length, or the delay before an idle close.
        status: HTTP status for ``status`` faults.
        retry_after: Seconds for the ``Retry-After`` header of a ``status`` fault.
        retry_after_ms: Milliseconds for its ``retry-after-ms`` header.
        should_retry: Its ``x-should-retry`` header (``true``/``false``), when not None.
        code: Websocket close code (``ws_close``, ``ws_idle_close``).
        piece: Bytes per write for ``split``.
        frames: Frames per write for ``coalesce`` (0 = everything in one write).
    """

    kind: str
    count: int = 1
    on: str = "any"
    after_frames: int = 0
    seconds: float = 0.0
    status: int = 500
    retry_after: Optional[float] = None
    code: Optional[int] = None
    piece: int = 1
    frames: int = 0
    retry_after_ms: Optional[float] = None
    should_retry: Optional[bool] = None

    def __post_init__(self) -> None:
        if self.kind in _ALIASES:
            alias = _ALIASES[self.kind]
            self.kind = alias["kind"]
            for key, value in alias.items():
                if key != "kind":
                    setattr(self, key, value)
        if self.kind not in FAULT_KINDS:
            raise FaultSpecError(
                f"unknown fault kind {self.kind[:40]!r}; known: {', '.join(FAULT_KINDS)}"
            )
        if self.on not in _TARGETS:
            raise FaultSpecError(
                f"unknown fault target on={self.on[:40]!r}; known: {sorted(_TARGETS)}"
            )
        if self.after_frames < 0 or self.seconds < 0 or self.piece < 1 or self.frames < 0:
            raise FaultSpecError(f"negative or zero fault parameter in {self}")
        if self.kind == "status" and not 400 <= self.status <= 599:
            raise FaultSpecError(f"status fault needs a 4xx/5xx status, got {self.status}")
        if self.code is None:
            self.code = 1000 if self.kind == "ws_idle_close" else 1011
        if self.kind in ("ws_close", "ws_idle_close") and not (
            1000 <= self.code <= 1014 or 3000 <= self.code <= 4999
        ):
            raise FaultSpecError(f"invalid websocket close code {self.code}")

    def matches(self, target: str) -> bool:
        """Whether this fault applies to traffic of kind ``target`` (``stream``, ``ws``, ...)."""
        if self.on == "any":
            return True
        if self.on == "http":
            return target != "ws"
        return self.on == target

    def status_headers(self) -> Dict[str, str]:
        """The retry hints a ``status`` fault's answer carries (``Retry-After``...)."""
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = f"{self.retry_after:g}"
        if self.retry_after_ms is not None:
            headers["retry-after-ms"] = f"{self.retry_after_ms:g}"
        if self.should_retry is not None:
            headers["x-should-retry"] = "true" if self.should_retry else "false"
        return headers

    def as_dict(self) -> Dict[str, Any]:
        """The fault as a JSON-serialisable dict (what the control endpoint lists)."""
        return dataclasses.asdict(self)


def _coerce(key: str, value: str) -> Any:
    if key in _INT_FIELDS:
        return int(value)
    if key in _FLOAT_FIELDS:
        return float(value)
    if key in _BOOL_FIELDS:
        if value.lower() not in ("true", "false"):
            raise FaultSpecError(f"fault parameter {key!r} must be true or false")
        return value.lower() == "true"
    if key in ("kind", "on"):
        return value
    raise FaultSpecError(f"unknown fault parameter {key!r}")


def parse_fault_spec(spec: str) -> List[Fault]:
    """Parse a spec string such as ``"stall;after_frames=2;seconds=0.5, split"``.

    Args:
        spec: Comma-separated faults, each a kind followed by ``;key=value`` pairs.

    Returns:
        The faults, in order.

    Raises:
        FaultSpecError: The spec names an unknown kind or parameter, or a value is malformed.
    """
    faults = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        kind, *params = [p.strip() for p in part.split(";")]
        kwargs: Dict[str, Any] = {}
        for param in params:
            if not param:
                continue
            key, sep, value = param.partition("=")
            if not sep:
                raise FaultSpecError(f"fault parameter {param!r} is not key=value")
            try:
                kwargs[key.strip()] = _coerce(key.strip(), value.strip())
            except ValueError as exc:
                if isinstance(exc, FaultSpecError):
                    raise
                raise FaultSpecError(f"bad value for fault parameter {key!r}: {value!r}") from None
        faults.append(Fault(kind, **kwargs))
    return faults


def fault_from_dict(obj: Dict[str, Any]) -> Fault:
    """Build a fault from a JSON object (the control endpoint's body)."""
    if not isinstance(obj, dict) or "kind" not in obj:
        raise FaultSpecError("a fault must be a JSON object with a 'kind'")
    fields = {f.name for f in dataclasses.fields(Fault)}
    unknown = set(obj) - fields
    if unknown:
        # Names only (truncated): a key is a string, but it can be megabytes long.
        names = ", ".join(sorted(k[:40] for k in unknown))
        raise FaultSpecError(f"unknown fault parameter(s): {names}")
    for key, value in obj.items():
        _check_type(key, value)
    return Fault(**obj)


def _check_type(key: str, value: Any) -> None:
    """Refuse a JSON value of the wrong type for fault field ``key``.

    The message names the field and the JSON type only: echoing (or even formatting) an arbitrary
    value could be huge or nested deeply enough to exhaust the recursion limit.
    """
    if key in ("kind", "on"):
        ok = isinstance(value, str)
        want = "a string"
    elif key in _INT_FIELDS:
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            key == "code" and value is None
        )
        want = "an integer"
    elif key in _BOOL_FIELDS:
        ok = value is None or isinstance(value, bool)
        want = "a boolean"
    else:  # _FLOAT_FIELDS
        ok = (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value)
        ) or (key in ("retry_after", "retry_after_ms") and value is None)
        want = "a finite number"
    if not ok:
        raise FaultSpecError(f"fault parameter {key!r} must be {want}, got {json_type(value)}")


def json_type(value: Any) -> str:
    """The JSON type of a decoded value, for error messages that must not echo the value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class FaultController:
    """Thread-safe queue of pending faults, shared by the server loop and the test thread.

    A request or generation *takes* the faults that match it; each take uses up one ``count``.

    Example:
        >>> server.faults.add("drop", after_frames=2)          # next generation loses its socket
        >>> server.faults.add("429", retry_after=1, count=3)   # next 3 requests get 429
        >>> server.faults.clear()
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: List[Fault] = []

    def add(self, kind: str, *, count: int = 1, on: str = "any", **params: Any) -> Fault:
        """Queue one fault; see :class:`Fault` for the parameters. Returns the fault."""
        fault = Fault(kind, count=count, on=on, **params)
        with self._lock:
            self._faults.append(fault)
        return fault

    def add_spec(self, spec: str) -> List[Fault]:
        """Queue every fault of a spec string (the ``X-Cartesia-Fault`` syntax)."""
        faults = parse_fault_spec(spec)
        self.extend(faults)
        return faults

    def extend(self, faults: Iterable[Fault]) -> None:
        """Queue already-built faults."""
        with self._lock:
            self._faults.extend(faults)

    def clear(self) -> None:
        """Forget every pending fault."""
        with self._lock:
            self._faults.clear()

    def pending(self) -> List[Fault]:
        """A snapshot of the faults not used up yet."""
        with self._lock:
            return [dataclasses.replace(f) for f in self._faults]

    def __len__(self) -> int:
        with self._lock:
            return len(self._faults)

    def take(self, kinds: Sequence[str] | frozenset[str], target: str) -> List[Fault]:
        """Remove one use of every pending fault of ``kinds`` that matches ``target``.

        Returns copies of the faults taken (each with ``count`` of the remaining uses).
        """
        taken = []
        with self._lock:
            keep = []
            for fault in self._faults:
                if fault.kind in kinds and fault.matches(target):
                    taken.append(dataclasses.replace(fault))
                    if fault.count > 0:
                        fault.count -= 1
                        if fault.count == 0:
                            continue
                keep.append(fault)
            self._faults = keep
        return taken

    def take_status(self, target: str) -> Optional[Fault]:
        """Take the first pending ``status`` fault matching ``target``, if any."""
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.kind == "status" and fault.matches(target):
                    if fault.count > 0:
                        fault.count -= 1
                        if fault.count == 0:
                            del self._faults[i]
                    return dataclasses.replace(fault)
        return None
