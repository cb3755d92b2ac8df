"""The credential vault: named credentials, handed out only as short-lived tokens.

The article's 4.3 and 7.2: agents never hold long-lived keys. The vault keeps each
credential's signing key and issues tokens that expire (15 minutes by default, the article's
TTL). The browser backend asks for one when it sends a request to the credential's domain
and puts it in that request's headers, so the token never reaches the model, the page's
DOM, the events or the audit log.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from agentlab.core.clock import Clock, SystemClock
from agentlab.core.errors import ConfigError
from agentlab.core.tokens import sign_token

DEFAULT_TTL_S = 900.0
"""The article's token lifetime: about 15 minutes."""


@dataclass(frozen=True)
class ShortLivedToken:
    """A token and when it stops working. Its ``repr`` hides the value."""

    credential: str
    value: str
    expires_at: datetime

    def __repr__(self) -> str:
        return f"ShortLivedToken({self.credential!r}, expires_at={self.expires_at.isoformat()})"

    def is_fresh(self, now: datetime, *, margin_s: float = 30.0) -> bool:
        """True while the token has more than ``margin_s`` seconds to live."""
        return now + timedelta(seconds=margin_s) < self.expires_at


class CredentialVault:
    """Holds credentials' keys; gives out tokens that expire.

    Args:
        keys: The signing key of each credential, by name (``supplier_portal``). The system
            the credential opens holds the same key, to check the tokens.
        ttl_s: How long a token lives.
        clock: Tells the time tokens are issued, and so when they expire.
    """

    def __init__(
        self,
        keys: Mapping[str, bytes],
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Clock | None = None,
    ) -> None:
        if ttl_s <= 0:
            raise ConfigError(f"a token's ttl_s must be positive, not {ttl_s}")
        self._keys = dict(keys)
        self.ttl_s = ttl_s
        self.clock = clock or SystemClock()
        self.issued = 0
        """How many tokens the vault has handed out (for tests and metrics; never values)."""

    def __repr__(self) -> str:
        return f"CredentialVault(credentials={sorted(self._keys)}, ttl_s={self.ttl_s})"

    @property
    def credentials(self) -> list[str]:
        """The names of the credentials held, sorted."""
        return sorted(self._keys)

    def issue(self, credential: str) -> ShortLivedToken:
        """A new token for ``credential``, valid for ``ttl_s`` from now.

        Raises:
            ConfigError: the vault holds no such credential.
        """
        key = self._keys.get(credential)
        if key is None:
            raise ConfigError(
                f"the vault holds no credential {credential!r}",
                hint=f"known credentials: {', '.join(self.credentials) or 'none'}",
            )
        expires_at = self.clock.now() + timedelta(seconds=self.ttl_s)
        value = sign_token(key, credential, expires_at, secrets.token_hex(8))
        self.issued += 1
        return ShortLivedToken(credential, value, expires_at)
