"""Short-lived signed tokens: what the credential vault issues and a sandbox system checks.

A token is ``<credential>.<expires_epoch_s>.<nonce>.<signature>``, the signature an
HMAC-SHA256 of the first three parts under the credential's key. The vault
(``agentlab.security``) signs; a system that holds the key (the sandbox world's supplier
portal) verifies. Both sides live above ``core``, so the format lives here, once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def sign_token(key: bytes, credential: str, expires_at: datetime, nonce: str) -> str:
    """A token for ``credential`` that is valid until ``expires_at``.

    Raises:
        ValueError: ``credential`` is not a lower-case name, or the nonce holds a dot.
    """
    if not _NAME.match(credential):
        raise ValueError(f"credential names are lower-case words, not {credential!r}")
    if "." in nonce or not nonce:
        raise ValueError("the nonce must be a non-empty string without dots")
    body = f"{credential}.{int(expires_at.timestamp())}.{nonce}"
    return f"{body}.{_signature(key, body)}"


def verify_token(key: bytes, token: str, *, credential: str, now: datetime) -> bool:
    """True when ``token`` was signed with ``key`` for ``credential`` and has not expired."""
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != credential or not parts[1].isdigit():
        return False
    body, signature = ".".join(parts[:3]), parts[3]
    if not hmac.compare_digest(_signature(key, body), signature):
        return False
    return now.timestamp() < int(parts[1])


def _signature(key: bytes, body: str) -> str:
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
