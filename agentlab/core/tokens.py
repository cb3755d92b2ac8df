"""Short-lived signed tokens: what the credential vault issues and a sandbox system checks.

A token is ``<credential>.<expires_epoch_s>.<nonce>.<signature>``, or, when it is limited to
some scopes, ``<credential>.<expires_epoch_s>.<scope>+<scope>.<nonce>.<signature>``; the
signature is an HMAC-SHA256 of everything before it under the credential's key. The vault
(``agentlab.security``) signs; a system that holds the key (the sandbox world's supplier
portal and, when it is given keys, its JSON APIs) verifies. Both sides live above ``core``,
so the format lives here, once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SCOPE = re.compile(r"^[a-z][a-z0-9_-]{0,31}:[a-z][a-z0-9_-]{0,31}$")

TOKEN_PATTERN = re.compile(
    r"\b[a-z][a-z0-9_]{0,63}\.[0-9]{9,11}\.(?:[a-z0-9_:+-]{3,}\.)?[0-9a-f]{16}\.[0-9a-f]{64}\b"
)
"""What a token looks like in text: DLP finds tokens that leaked into an answer or a log."""


@dataclass(frozen=True)
class TokenClaims:
    """What a token says about itself, before anyone checks its signature."""

    credential: str
    expires_at: datetime
    scopes: tuple[str, ...]
    """The scopes it is limited to; empty for a token of the whole credential."""


def sign_token(
    key: bytes, credential: str, expires_at: datetime, nonce: str, *, scopes: Iterable[str] = ()
) -> str:
    """A token for ``credential`` that is valid until ``expires_at``, limited to ``scopes``.

    Raises:
        ValueError: ``credential`` is not a lower-case name, a scope is not ``system:verb``,
            or the nonce holds a dot.
    """
    if not _NAME.match(credential):
        raise ValueError(f"credential names are lower-case words, not {credential!r}")
    if "." in nonce or not nonce:
        raise ValueError("the nonce must be a non-empty string without dots")
    scopes = tuple(sorted(set(scopes)))
    for scope in scopes:
        if not _SCOPE.match(scope):
            raise ValueError(f"scopes look like 'erp:read', not {scope!r}")
    parts = [credential, str(int(expires_at.timestamp()))]
    if scopes:
        parts.append("+".join(scopes))
    body = ".".join([*parts, nonce])
    return f"{body}.{_signature(key, body)}"


def read_claims(token: str) -> TokenClaims | None:
    """The claims a token makes, unverified; None when it is not shaped like a token.

    A system uses this only to say *why* it refuses a token (expired, another credential,
    a scope it lacks); whether to accept one is :func:`verify_token`'s call.
    """
    parts = token.split(".")
    if len(parts) not in (4, 5) or not _NAME.match(parts[0]) or not parts[1].isdigit():
        return None
    scopes = tuple(parts[2].split("+")) if len(parts) == 5 else ()
    return TokenClaims(parts[0], datetime.fromtimestamp(int(parts[1]), UTC), scopes)


def verify_token(
    key: bytes, token: str, *, credential: str, now: datetime, scope: str | None = None
) -> bool:
    """True when ``token`` was signed with ``key`` for ``credential`` and has not expired.

    With ``scope``, the token must also carry that scope or be a token of the whole
    credential (one issued without scopes).
    """
    claims = read_claims(token)
    if claims is None or claims.credential != credential:
        return False
    body, signature = token.rpartition(".")[0], token.rpartition(".")[2]
    if not hmac.compare_digest(_signature(key, body), signature):
        return False
    if scope is not None and claims.scopes and scope not in claims.scopes:
        return False
    return now < claims.expires_at


def _signature(key: bytes, body: str) -> str:
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
