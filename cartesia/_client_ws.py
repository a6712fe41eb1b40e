"""The sync client's long-lived websocket: open, reuse, detect a dead socket, map its errors."""

import inspect
import json
import logging
from collections import OrderedDict
from typing import Any, Optional, Tuple, Union

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.protocol import State
from websockets.sync.client import ClientConnection, connect

from ._client_http import status_error
from ._client_urls import RedactingFilter, redact
from .errors import CartesiaConnectionError, ConnectTimeoutError, WebSocketClosedError

__all__ = ["SyncWebSocket", "extract_context_id", "StaleContexts", "MAX_MESSAGE_BYTES"]

#: Largest websocket message accepted (a 0.5 s chunk of 48 kHz float32 is ~130 kB of base64).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_KEY = '"context_id"'
# websockets >= 17.1 wants `legacy=True` to return a connection outside a `with` block; older
# versions do not know the argument.
_CONNECT_EXTRA = {"legacy": True} if "legacy" in inspect.signature(connect).parameters else {}


def extract_context_id(payload: Union[str, bytes]) -> Optional[str]:
    """Read the ``context_id`` of a JSON frame without decoding its audio.

    Routing needs the id before the frame is parsed (so that audio of a live context can be decoded
    straight into that context's sink and audio of a dead one is never decoded). Returns ``None``
    when the frame has no string ``context_id``; falls back to a full JSON parse for ids with
    escapes.
    """
    if isinstance(payload, (bytes, bytearray, memoryview)):
        payload = bytes(payload).decode("utf-8", "replace")
    # From the end: frames carry the id after the audio, and the key cannot occur inside base64 or
    # inside a JSON string (its quotes would be escaped), so this skips the 23 kB payload scan.
    at = payload.rfind(_KEY)
    if at < 0:
        return None
    i = at + len(_KEY)
    n = len(payload)
    while i < n and payload[i] in " \t\r\n":
        i += 1
    if i >= n or payload[i] != ":":
        return None
    i += 1
    while i < n and payload[i] in " \t\r\n":
        i += 1
    if i >= n or payload[i] != '"':
        return None
    end = payload.find('"', i + 1)
    if end < 0:
        return None
    value = payload[i + 1 : end]
    if "\\" in value:
        try:
            obj = json.loads(payload)
        except ValueError:
            return None
        found = obj.get("context_id") if isinstance(obj, dict) else None
        return found if isinstance(found, str) else None
    return value


class StaleContexts:
    """Ids of contexts abandoned on one connection whose late frames must be dropped (bounded)."""

    def __init__(self, limit: int = 256) -> None:
        self._ids: "OrderedDict[str, None]" = OrderedDict()
        self._limit = limit

    def add(self, context_id: str) -> None:
        self._ids[context_id] = None
        while len(self._ids) > self._limit:
            self._ids.popitem(last=False)

    def discard(self, context_id: str) -> None:
        self._ids.pop(context_id, None)

    def clear(self) -> None:
        self._ids.clear()

    def __contains__(self, context_id: object) -> bool:
        return context_id in self._ids

    def __bool__(self) -> bool:
        return bool(self._ids)


def closed_error(code: Optional[int], reason: str, secret: Optional[str]) -> WebSocketClosedError:
    """The error for a websocket that closed under a running generation."""
    reason = redact(reason or "", secret)
    detail = f" ({reason})" if reason else ""
    return WebSocketClosedError(
        f"Failed to generate audio. The websocket closed with code {code}{detail}.",
        code=code,
        reason=reason,
    )


class SyncWebSocket:
    """One reusable websocket of the sync client.

    It keeps the connection open between generations, reports whether ``open()`` reused it, and
    remembers which generation is active so an abandoned one can be cancelled and its late frames
    dropped.
    """

    def __init__(self, url: str, secret: Optional[str], logger: logging.Logger) -> None:
        self._url = url
        self._secret = secret
        self._logger = logger
        self.connection: Optional[ClientConnection] = None
        self.active: Optional[str] = None
        self.stale = StaleContexts()

    @property
    def redacted_url(self) -> str:
        return redact(self._url, self._secret)

    def is_open(self) -> bool:
        conn = self.connection
        if conn is None:
            return False
        try:
            return conn.protocol.state is State.OPEN and conn.socket.fileno() != -1
        except (AttributeError, OSError):
            return False

    def open(self, connect_timeout: Optional[float]) -> Tuple[ClientConnection, bool]:
        """Return an open connection and whether it was reused; replace a closed one first."""
        if self.is_open():
            assert self.connection is not None
            return self.connection, True
        self.discard()
        error: Optional[BaseException] = None
        try:
            conn = connect(
                self._url,
                open_timeout=connect_timeout,
                # Closing must stay quick even when the peer is gone (a stalled socket).
                close_timeout=1.0,
                max_size=MAX_MESSAGE_BYTES,
                compression=None,
                logger=self._logger,
                **_CONNECT_EXTRA,
            )
        except InvalidStatus as exc:
            response = exc.response
            body = response.body.decode("utf-8", "replace") if response.body else ""
            error = status_error(
                response.status_code,
                body or (response.reason_phrase or ""),
                prefix="Failed to connect to the websocket. Error: ",
                headers=dict(response.headers.raw_items()),
                secret=self._secret,
            )
        except TimeoutError:
            error = ConnectTimeoutError(
                f"Opening the websocket to {self.redacted_url} took longer than "
                f"{connect_timeout} s."
            )
        except (OSError, InvalidHandshake) as exc:
            error = CartesiaConnectionError(
                f"Failed to connect to the websocket {self.redacted_url}: "
                f"{redact(str(exc), self._secret)}"
            )
        if error is not None:
            # Raised outside the except block so the transport's exception (whose text may
            # hold the URL and so the key) is not chained onto ours.
            raise error
        self.connection = conn
        self.active = None
        self.stale.clear()
        return conn, False

    def send_json(self, obj: Any) -> None:
        conn = self.connection
        if conn is None:
            raise closed_error(None, "not connected", self._secret)
        error: Optional[BaseException] = None
        try:
            conn.send(json.dumps(obj))
        except ConnectionClosed as exc:
            error = self._closed(exc)
        except OSError as exc:
            error = CartesiaConnectionError(f"Failed to send on the websocket: {exc}")
        if error is not None:
            raise error

    def recv(self, timeout: Optional[float]) -> Optional[Union[str, bytes]]:
        """Next message, or ``None`` when ``timeout`` seconds passed without one."""
        conn = self.connection
        if conn is None:
            raise closed_error(None, "not connected", self._secret)
        error: Optional[BaseException] = None
        try:
            return conn.recv(timeout=timeout)
        except TimeoutError:
            return None
        except ConnectionClosed as exc:
            error = self._closed(exc)
        except OSError as exc:
            error = CartesiaConnectionError(f"The websocket failed: {exc}")
        raise error

    def _closed(self, exc: ConnectionClosed) -> WebSocketClosedError:
        rcvd = exc.rcvd
        code = rcvd.code if rcvd is not None else 1006
        reason = rcvd.reason if rcvd is not None else ""
        self.discard()
        return closed_error(code, reason, self._secret)

    def abandon(self, context_id: str, *, cancel: bool) -> None:
        """Forget a generation that did not finish; late frames of it will be dropped."""
        self.stale.add(context_id)
        if self.active == context_id:
            self.active = None
        if cancel and self.is_open():
            try:
                self.send_json({"context_id": context_id, "action": "cancel"})
            except Exception:  # the socket died; the next generation replaces it
                self._logger.debug("could not send the cancel for context %s", context_id)

    def discard(self) -> None:
        """Close the current connection (if any) without waiting for the server."""
        conn, self.connection = self.connection, None
        self.active = None
        self.stale.clear()
        if conn is not None:
            try:
                conn.close()
            except Exception:  # closing a broken socket can fail; it is gone either way
                pass

    def close(self) -> None:
        self.discard()


def make_ws_logger() -> logging.Logger:
    """The logger handed to the websockets library; its records never carry a credential."""
    logger = logging.getLogger("cartesia.websocket")
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    return logger
