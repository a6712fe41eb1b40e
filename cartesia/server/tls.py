"""TLS for the local server: a given certificate, or a throwaway CA and localhost certificate."""

from __future__ import annotations

import dataclasses
import os
import ssl
import tempfile
from pathlib import Path
from typing import Optional

__all__ = ["TLSError", "TLSMaterial", "server_tls", "LOCAL_NAMES"]

#: The names the generated certificate is valid for.
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
_EXTRA_HINT = "pip install 'cartesia[tls]'"


class TLSError(ValueError):
    """TLS cannot be set up as asked; ``str(exc)`` says why and what to do."""


@dataclasses.dataclass
class TLSMaterial:
    """What a TLS server needs, and what its clients need to trust it.

    Attributes:
        server_context: The context to serve with.
        ca_pem: PEM of the CA that signed the certificate (``None`` for a given ``--cert``).
        ca_path: Where that PEM was written (``--ca-out``), if anywhere.
    """

    server_context: ssl.SSLContext
    ca_pem: Optional[bytes] = None
    ca_path: Optional[Path] = None

    def client_context(self) -> ssl.SSLContext:
        """An ``ssl.SSLContext`` for clients that trusts this server (hostname checks on)."""
        if self.ca_pem is None:
            raise TLSError("the server uses a given certificate: trust its CA yourself")
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        ctx.load_verify_locations(cadata=self.ca_pem.decode("ascii"))
        return ctx


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def server_tls(
    cert: Optional[str | os.PathLike[str]] = None,
    key: Optional[str | os.PathLike[str]] = None,
    ca_out: Optional[str | os.PathLike[str]] = None,
) -> TLSMaterial:
    """The TLS setup for ``cartesia serve --tls``.

    With ``cert`` and ``key`` (PEM files) the server uses them. Without, it makes a throwaway CA
    and a certificate for ``localhost``, ``127.0.0.1`` and ``::1`` with trustme (the ``tls``
    extra) and writes the CA's PEM to ``ca_out`` (if given) for clients to trust, e.g.
    ``SSL_CERT_FILE=<ca_out>``.

    Raises:
        TLSError: Only one of cert/key, unreadable or mismatched files, ``ca_out`` with a given
            certificate, or trustme missing.
    """
    # What create_default_context(Purpose.CLIENT_AUTH) makes from Python 3.10 on; 3.9's is not a
    # server context and refuses num_tickets.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # No TLS 1.3 session tickets. They arrive right after the handshake, while a client that
    # reads in one thread and writes in another (websockets' sync client, so the official
    # 4.2.0 websocket) is sending its upgrade request: OpenSSL's SSL object is not thread-safe,
    # and the client's first write was lost (or its heap corrupted) in ~1 of 1,000 opens under
    # load. Nothing is lost by it: no client here resumes sessions.
    ctx.num_tickets = 0
    if cert is not None or key is not None:
        if cert is None or key is None:
            raise TLSError("--cert and --key go together: give both PEM files, or neither")
        if ca_out is not None:
            raise TLSError("--ca-out only applies to the generated certificate (no --cert/--key)")
        for flag, path in (("--cert", cert), ("--key", key)):
            if not Path(path).is_file():
                raise TLSError(f"cannot read {flag} {path}: no such file")
        try:
            ctx.load_cert_chain(str(cert), str(key))
        except (OSError, ssl.SSLError) as exc:
            raise TLSError(f"cannot use --cert {cert} / --key {key}: {exc}") from None
        return TLSMaterial(ctx)
    try:
        import trustme
    except ImportError:
        raise TLSError(
            "--tls without --cert/--key generates a local certificate with trustme, which is "
            f"not installed: {_EXTRA_HINT} (the `tls` extra), or pass --cert and --key"
        ) from None
    ca = trustme.CA(organization_name="cartesia local server")
    issued = ca.issue_cert(*LOCAL_NAMES)
    issued.configure_cert(ctx)
    pem = ca.cert_pem.bytes()
    ca_path = None
    if ca_out is not None:
        ca_path = Path(ca_out)
        try:
            _write_atomically(ca_path, pem)
        except OSError as exc:
            raise TLSError(f"cannot write --ca-out {ca_path}: {exc.strerror or exc}") from None
    return TLSMaterial(ctx, ca_pem=pem, ca_path=ca_path)
