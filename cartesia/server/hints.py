"""What ``cartesia serve`` prints after its address: how to point each client at this server."""

from __future__ import annotations

from typing import List, Optional

__all__ = ["client_hints"]

_WILDCARDS = ("", "0.0.0.0", "::", "[::]")


def client_hints(
    *,
    scheme: str,
    host: str,
    port: int,
    ca_file: Optional[str] = None,
    keys_required: bool = False,
) -> List[str]:
    """The lines telling a user how to point the 0.0.5, current and official 4.2.0 clients here.

    Args:
        scheme: ``"http"`` or ``"https"`` (``--tls``).
        host: The host the server listens on, as printed (IPv6 in brackets).
        port: The bound port.
        ca_file: With TLS, the CA certificate file clients must trust.
        keys_required: Whether only the ``--api-key`` keys are accepted (else any non-empty key).

    Returns:
        Lines without newlines; they never contain an API key.
    """
    current = "from cartesia import Cartesia:" if _has_current_client() else "current API (coming):"
    current = current.ljust(len("from cartesia import Cartesia:"))
    if host in _WILDCARDS:
        host = "localhost"  # a wildcard bind is reachable there; 0.0.0.0 is not an address to call
    address = f"{host}:{port}"
    key = "CARTESIA_API_KEY=<one of the --api-key keys>" if keys_required else "CARTESIA_API_KEY=<any non-empty value>"
    lines = [f"point a client at it ({key}):"]
    if scheme == "https":
        # A generated CA is only on disk with --ca-out; a given --cert was signed by the user's CA.
        trust = f"SSL_CERT_FILE={ca_file}" if ca_file else "SSL_CERT_FILE=<its CA: serve with --ca-out FILE>"
        url = f"https://{address}"
        lines += [
            f"  cartesia.tts (0.0.5 API):      CARTESIA_BASE_URL={url} {trust}",
            f"  {current} CARTESIA_BASE_URL={url} {trust}",
            f"  official cartesia 4.2.0:       CARTESIA_BASE_URL={url} {trust} and api_key=... in code",
        ]
        return lines
    url = f"http://{address}"
    # cartesia 0.0.5 takes a bare host and speaks plain HTTP only to hosts named localhost;
    # cartesia.tts also takes an explicit http:// URL, which works for any host.
    if "localhost" in host:
        old = f"CARTESIA_BASE_URL={address} (or {url} with cartesia.tts)"
    else:
        old = f"CARTESIA_BASE_URL={url} (cartesia.tts; the original 0.0.5 uses TLS for this host)"
    lines += [
        f"  cartesia.tts (0.0.5 API):      {old}",
        f"  {current} CARTESIA_BASE_URL={url}",
        f"  official cartesia 4.2.0:       CARTESIA_BASE_URL={url} and api_key=... in code; "
        "HTTP only (its websockets always use wss: serve with --tls)",
    ]
    return lines


def _has_current_client() -> bool:
    # The current-API client (`cartesia.Cartesia`) lands in a later release; until then the
    # line says so instead of naming an import that fails.
    import cartesia

    return hasattr(cartesia, "Cartesia")
