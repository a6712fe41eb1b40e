"""Who a current-API request is: an API key or an access token, with the grants it carries."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import FrozenSet, Optional, Sequence

from aiohttp import web

from ..auth import check_key
from .errors import ApiError
from .tokens import GRANTS, TOKEN_PREFIX, TokenStore

__all__ = ["Principal", "credential", "authenticate", "require_grant"]


@dataclasses.dataclass(frozen=True)
class Principal:
    """The authenticated caller.

    Attributes:
        account: Stable, key-free identifier of the API key (tokens share their issuer's), for
            per-key limits.
        grants: What it may use: every grant for an API key, the token's grants otherwise.
        is_token: Whether it authenticated with an access token.
    """

    account: str
    grants: FrozenSet[str]
    is_token: bool


def credential(request: web.Request) -> Optional[str]:
    """The key or token a request carries: ``Authorization: Bearer``, ``X-API-Key``, or the
    ``api_key`` / ``access_token`` query parameters (what browsers use on websockets)."""
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    return (
        request.headers.get("X-API-Key")
        or request.query.get("api_key")
        or request.query.get("access_token")
        or None
    )


def _account(key: str) -> str:
    # A digest, so the key itself is never kept in counters, logs or reprs.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def authenticate(request: web.Request, accepted: Sequence[str], tokens: TokenStore) -> Principal:
    """Authenticate ``request``.

    Raises:
        ApiError: 401 for a missing or wrong key, or an unknown or expired token (the message
            never contains the credential).
    """
    cred = credential(request)
    if cred and cred.startswith(TOKEN_PREFIX):
        record = tokens.get(cred)
        if record is None:
            raise ApiError(401, "invalid access token", title="Invalid token")
        if record.expired():
            raise ApiError(401, "access token expired: request a new one", title="Token expired")
        return Principal(record.account, record.grants, True)
    problem = check_key(cred, accepted)
    if problem is not None:
        if not cred:
            problem = (
                "missing API key: send `Authorization: Bearer <key>` or `X-API-Key` "
                "(websockets: the api_key or access_token query parameter)"
            )
        raise ApiError(401, problem)
    assert cred is not None
    return Principal(_account(cred), frozenset(GRANTS), False)


def require_grant(principal: Principal, grant: str) -> None:
    """Refuse a token without ``grant`` (API keys carry every grant).

    Raises:
        ApiError: 403 naming the missing grant.
    """
    if grant not in principal.grants:
        raise ApiError(
            403,
            f"this access token has no `{grant}` grant",
            title="Insufficient permissions",
            error_code="forbidden",
        )
