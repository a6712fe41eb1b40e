"""TLS for a socket read in one thread and written in another: one lock around the SSL object.

websockets' sync client reads its connection in a thread of its own while callers write to it.
Over ``ssl.SSLSocket`` that means ``SSL_read`` and ``SSL_write`` on one OpenSSL object at the
same time, which OpenSSL does not allow: when a server's TLS 1.3 session tickets arrive just as
the upgrade request is written (most servers send them right after the handshake), the request
was lost (the open then timed out), or the process crashed on a corrupted heap. Here the TLS
state lives in an ``ssl.SSLObject`` over memory buffers: socket reads and writes need no lock,
every use of the SSL object holds one, and encrypted bytes leave in the order they were made.
"""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any, List, Optional

__all__ = ["LockedTLSContext", "LockedTLSSocket"]

# One raw read: a 0.1 s frame of float32 audio is ~24 kB of base64 JSON.
_READ = 256 * 1024


class LockedTLSSocket:
    """The socket-like object websockets' sync connection reads and writes (TLS, thread-safe).

    Only what the connection uses is offered (``recv``, ``sendall``, ``shutdown``, ``close``,
    timeouts, addresses, ``fileno`` for its selector); a raw ``send`` past TLS is not.
    """

    def __init__(self, sock: socket.socket, tls: ssl.SSLObject, incoming: ssl.MemoryBIO,
                 outgoing: ssl.MemoryBIO) -> None:
        self._sock = sock
        self._tls = tls
        self._incoming = incoming
        self._outgoing = outgoing
        self._tls_lock = threading.Lock()  # every use of the SSL object and its buffers
        self._send_lock = threading.Lock()  # taken before _tls_lock: records leave in order
        self._ended = False  # the peer's close_notify (or EOF) was read
        #: One socket read per ``recv`` at the most, for readers that wait by deadline (the
        #: read turns of ``ws_turns``): a record cut across reads must not hold one past it.
        self.single_read = False

    @property
    def ssl_object(self) -> ssl.SSLObject:
        """The TLS state (peer certificate, cipher, version); do not read or write through it."""
        return self._tls

    # --- reading -----------------------------------------------------------------------------

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """Everything decrypted so far (at least one byte; may exceed ``bufsize``), ``b""`` at
        the end of the stream.

        All of it: the connection waits on the socket's readiness before it calls, so plaintext
        left in the SSL object would wait unseen for the next bytes from the peer. ``flags`` go
        to the socket's reads. With :attr:`single_read` set, a read that brought only part of
        a record raises ``BlockingIOError`` instead of reading again.
        """
        read = False
        while True:
            data = self._decrypted()
            if data is not None:
                return data
            if read and self.single_read:
                raise BlockingIOError("only part of a TLS record has arrived")
            raw = self._sock.recv(max(bufsize, _READ), flags)
            read = True
            with self._tls_lock:
                if raw:
                    self._incoming.write(raw)
                else:
                    self._incoming.write_eof()

    def _decrypted(self) -> Optional[bytes]:
        """The plaintext the buffered records hold, ``b""`` at the end, ``None`` when more bytes
        must come first."""
        if self._ended:
            return b""
        pieces: List[bytes] = []
        closed = False
        with self._tls_lock:
            tls = self._tls
            try:
                while True:
                    piece = tls.read(_READ)
                    if not piece:  # the peer's close_notify
                        closed = True
                        break
                    pieces.append(piece)
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                # An EOF without close_notify ends the stream too, as ssl.SSLSocket's default
                # (suppress_ragged_eofs) has it.
                closed = True
        if closed:
            self._ended = True
        # Records TLS makes on its own while reading (a key update's answer, when the peer asks
        # for one) go out with the next write, in order: this thread never waits on a send.
        if closed and pieces:
            # The end came with the last data, and nothing more may make the socket readable
            # for the caller's next wait: make it readable (its next read gives b"").
            try:
                self._sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass
        if not pieces and not closed:
            return None
        return b"".join(pieces)

    # --- writing -----------------------------------------------------------------------------

    def sendall(self, data: Any) -> None:
        """Encrypt ``data`` and send it all (the socket's timeout applies), after any records
        TLS made since the last write."""
        with self._send_lock:
            with self._tls_lock:
                self._tls.write(data)
                records = self._outgoing.read()
            self._sock.sendall(records)

    # --- the socket's own --------------------------------------------------------------------

    def shutdown(self, how: int) -> None:
        """Shut the TCP connection down (as ``ssl.SSLSocket.shutdown``: no close_notify)."""
        self._sock.shutdown(how)

    def close(self) -> None:
        self._sock.close()

    def fileno(self) -> int:
        return self._sock.fileno()

    def settimeout(self, timeout: Optional[float]) -> None:
        self._sock.settimeout(timeout)

    def gettimeout(self) -> Optional[float]:
        return self._sock.gettimeout()

    def setsockopt(self, *args: Any) -> None:
        self._sock.setsockopt(*args)

    def getsockname(self) -> Any:
        return self._sock.getsockname()

    def getpeername(self) -> Any:
        return self._sock.getpeername()

    def version(self) -> Optional[str]:
        return self._tls.version()

    def cipher(self) -> Any:
        return self._tls.cipher()

    def getpeercert(self, binary_form: bool = False) -> Any:
        return self._tls.getpeercert(binary_form)

    def __repr__(self) -> str:
        return f"<LockedTLSSocket {self._sock!r}>"


class LockedTLSContext:
    """Stands in for the ``ssl`` context of websockets' sync ``connect``: its ``wrap_socket``
    makes the TLS handshake and returns a :class:`LockedTLSSocket`.

    Args:
        context: The real context (certificates, verification, SNI). Default: the one
            websockets makes itself, ``ssl.create_default_context()``.
    """

    def __init__(self, context: Optional[ssl.SSLContext] = None) -> None:
        self.context = context if context is not None else ssl.create_default_context()

    def wrap_socket(self, sock: socket.socket, server_hostname: Optional[str] = None,
                    **kwargs: Any) -> LockedTLSSocket:
        """Make the client handshake on ``sock`` (bounded by its timeout).

        Raises:
            ssl.SSLError: The handshake failed (``SSLCertVerificationError`` for a certificate).
            OSError: The socket failed or timed out.
        """
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self.context.wrap_bio(incoming, outgoing, server_hostname=server_hostname, **kwargs)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                records = outgoing.read()
                if records:
                    sock.sendall(records)
                raw = sock.recv(_READ)
                if raw:
                    incoming.write(raw)
                else:  # the next do_handshake raises SSLEOFError
                    incoming.write_eof()
        records = outgoing.read()  # the client's Finished
        if records:
            sock.sendall(records)
        return LockedTLSSocket(sock, tls, incoming, outgoing)

    def __getattr__(self, name: str) -> Any:
        # The real context's: websockets' TLS through an https proxy calls its wrap_bio.
        return getattr(self.context, name)
