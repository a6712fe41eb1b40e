"""Every exception the package raises, shared by both streaming twins and both clients."""

from typing import Any, Optional

__all__ = [
    "CartesiaError",
    "StreamFormatError",
    "FrameTooLargeError",
    "TruncatedStreamError",
    "Base64DecodeError",
    "RingOverflowError",
    "APIError",
    "APIStatusError",
    "APIConnectionError",
    "APITimeoutError",
    "BadRequestError",
    "PermissionDeniedError",
    "ConflictError",
    "UnprocessableEntityError",
    "InternalServerError",
    "AuthenticationError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "GenerationError",
    "CartesiaConnectionError",
    "WebSocketClosedError",
    "CartesiaTimeoutError",
    "ConnectTimeoutError",
    "FirstAudioTimeoutError",
    "ChunkGapTimeoutError",
    "TotalTimeoutError",
    "InvalidInputError",
    "TranscriptTypeError",
    "ConfigurationError",
]


class CartesiaError(Exception):
    """Root of every error raised by this package."""


# --- streaming core -------------------------------------------------------------------------


class StreamFormatError(CartesiaError, ValueError):
    """The byte stream or a message is malformed.

    Attributes:
        offset: Byte offset in the whole stream (or message) where the problem was found, or
            ``None`` when it does not apply.
    """

    def __init__(self, message: str, offset: Optional[int] = None) -> None:
        super().__init__(message)
        self.offset = offset


class FrameTooLargeError(StreamFormatError):
    """A single frame grew past the parser's ``max_frame_bytes`` before it was complete."""


class TruncatedStreamError(StreamFormatError):
    """The stream ended (``close()``) in the middle of a frame."""


class Base64DecodeError(StreamFormatError):
    """An audio payload is not valid base64 (bad character, bad padding or bad length)."""


class RingOverflowError(CartesiaError, BufferError):
    """A write does not fit in a ``PCMRing``; nothing was written."""


# --- caught before any I/O --------------------------------------------------------------------


class InvalidInputError(CartesiaError, ValueError):
    """An argument of a call is wrong; found before anything was sent, never retried.

    Attributes:
        field: The name of the offending argument (``"voice"``, ``"duration"``, ...).
    """

    def __init__(self, message: str, *, field: Optional[str] = None) -> None:
        super().__init__(message)
        self.field = field


class TranscriptTypeError(InvalidInputError, AttributeError):
    """The transcript is not a string (an ``AttributeError`` too, as 0.0.5 raised for ``None``)."""


class ConfigurationError(CartesiaError, ValueError):
    """The client's configuration (e.g. ``CARTESIA_BASE_URL``) is malformed."""


# --- HTTP / websocket API -------------------------------------------------------------------


class APIError(CartesiaError):
    """The base of the API's errors under the official 4.2.0 client's name.

    It covers error statuses (:class:`APIStatusError`), broken connections
    (:class:`APIConnectionError`) and timeouts (:class:`APITimeoutError`), as in 4.2.0.
    """


class APIStatusError(APIError, ValueError):
    """The server answered with an error status.

    Subclasses ``ValueError`` because cartesia 0.0.5 raised ``ValueError`` for failed HTTP calls.

    Attributes:
        status_code: The HTTP status (or the ``status_code`` of a websocket error frame).
        message: The server's own error text.
        request_id: The server's request id, when it sent one.
        body: The decoded JSON error body (or its text), when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: Optional[int] = None,
        request_id: Optional[str] = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.request_id = request_id
        self.body = body


class BadRequestError(APIStatusError):
    """400 / 413 / 422: the request itself was rejected; retrying it cannot help."""


class UnprocessableEntityError(BadRequestError):
    """422 (4.2.0's name); a :class:`BadRequestError`, which 0.0.5-era code catches for it."""


class AuthenticationError(APIStatusError):
    """401 / 403: the API key is missing or wrong."""


class PermissionDeniedError(AuthenticationError):
    """403 (4.2.0's name); an :class:`AuthenticationError`, which our clients raised for it."""


class ConflictError(APIStatusError):
    """409: the request conflicts with the resource's state."""


class NotFoundError(APIStatusError):
    """404: the voice, route or resource does not exist."""


class RateLimitError(APIStatusError):
    """429: too many requests.

    Attributes:
        retry_after: Seconds the server asked us to wait, or ``None``.
    """

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx: the server failed (also exported as 4.2.0's ``InternalServerError``)."""


#: 4.2.0's name for a 5xx: the same class (the meaning matches).
InternalServerError = ServerError


class GenerationError(CartesiaError, RuntimeError):
    """The server reported an error inside a running generation (an error frame).

    Subclasses ``RuntimeError`` because cartesia 0.0.5 raised ``RuntimeError`` for websocket
    generation failures.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: Optional[int] = None,
        context_id: Optional[str] = None,
        request_id: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.context_id = context_id
        self.request_id = request_id


class APIConnectionError(APIError):
    """The request did not get a complete answer: a failed connection or a timeout (4.2.0's name)."""


class APITimeoutError(APIConnectionError):
    """A time limit ran out (4.2.0's name; every :class:`CartesiaTimeoutError` is one)."""


class CartesiaConnectionError(APIConnectionError, ConnectionError):
    """The connection could not be made, or broke before the response was complete."""


class WebSocketClosedError(CartesiaConnectionError, RuntimeError):
    """The websocket closed while a generation was still running.

    Attributes:
        code: The close code (1000, 1006, 1011, ...), or ``None`` if unknown.
        reason: The close reason sent by the server.
    """

    def __init__(self, message: str, *, code: Optional[int] = None, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class CartesiaTimeoutError(APITimeoutError, TimeoutError):
    """A configured time limit ran out."""


class ConnectTimeoutError(CartesiaTimeoutError):
    """Connecting (TCP, TLS, HTTP headers or the websocket handshake) took too long."""


class FirstAudioTimeoutError(CartesiaTimeoutError):
    """The first audio chunk of a generation did not arrive in time."""


class ChunkGapTimeoutError(CartesiaTimeoutError):
    """The gap between two chunks of a generation was too long (a stalled stream)."""


class TotalTimeoutError(CartesiaTimeoutError):
    """The whole generation took longer than its total time limit."""
