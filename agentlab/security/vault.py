"""The credential vault: named credentials, handed out only as short-lived tokens.

The article's 4.3 and 7.2: agents never hold long-lived keys. The vault keeps each
credential's signing key and issues tokens that expire (15 minutes by default, the article's
TTL), limited to the scopes a request needs. Two things hand them out, both on the server
side of the tools, so a token never reaches the model, a page's DOM, the events or the
audit log:

* the browser backend asks for one when it sends a request to the credential's domain;
* :class:`VaultAuth`, an ``httpx`` auth flow, signs the tools' requests to the systems'
  JSON APIs: each request gets a token of that system's credential with only the scope the
  request needs (``erp:read`` for a ``GET /erp/...``), renewed by a :class:`TokenBroker`
  before it expires.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from agentlab.core.clock import Clock, SystemClock
from agentlab.core.errors import ConfigError
from agentlab.core.tokens import sign_token

DEFAULT_TTL_S = 900.0
"""The article's token lifetime: about 15 minutes."""
RENEW_MARGIN_S = 60.0
"""A cached token is renewed when it has less than this left to live."""


@dataclass(frozen=True)
class ShortLivedToken:
    """A token and when it stops working. Its ``repr`` hides the value."""

    credential: str
    value: str
    expires_at: datetime
    scopes: tuple[str, ...] = ()
    """The scopes it is limited to; empty for a token of the whole credential."""

    def __repr__(self) -> str:
        scopes = f", scopes={list(self.scopes)}" if self.scopes else ""
        return (
            f"ShortLivedToken({self.credential!r}{scopes}, "
            f"expires_at={self.expires_at.isoformat()})"
        )

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
        scopes: The scopes each credential may be narrowed to (``{"erp_api": ["erp:read",
            "erp:write"]}``); a credential not named here issues only whole-credential
            tokens, and a request for any scope of it is refused.
    """

    def __init__(
        self,
        keys: Mapping[str, bytes],
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Clock | None = None,
        scopes: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        if ttl_s <= 0:
            raise ConfigError(f"a token's ttl_s must be positive, not {ttl_s}")
        self._keys = dict(keys)
        self._scopes = {name: frozenset(granted) for name, granted in (scopes or {}).items()}
        if unknown := set(self._scopes) - set(self._keys):
            raise ConfigError(
                f"scopes were given for credentials the vault does not hold: {sorted(unknown)}",
                hint="give each credential's key in keys, or drop its scopes",
            )
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

    def issue(self, credential: str, *, scopes: Iterable[str] = ()) -> ShortLivedToken:
        """A new token for ``credential``, valid for ``ttl_s`` from now, limited to ``scopes``.

        Raises:
            ConfigError: the vault holds no such credential, or the credential may not be
                narrowed to one of the scopes asked for.
        """
        key = self._keys.get(credential)
        if key is None:
            raise ConfigError(
                f"the vault holds no credential {credential!r}",
                hint=f"known credentials: {', '.join(self.credentials) or 'none'}",
            )
        wanted = tuple(sorted(set(scopes)))
        granted = self._scopes.get(credential, frozenset())
        if missing := [scope for scope in wanted if scope not in granted]:
            raise ConfigError(
                f"credential {credential!r} is not granted scope(s) {missing}",
                hint=f"it is granted: {', '.join(sorted(granted)) or 'no scopes'}; add the "
                "scope to the vault's scopes only if the system should allow it",
            )
        expires_at = self.clock.now() + timedelta(seconds=self.ttl_s)
        value = sign_token(key, credential, expires_at, secrets.token_hex(8), scopes=wanted)
        self.issued += 1
        return ShortLivedToken(credential, value, expires_at, wanted)


class TokenBroker:
    """Keeps one token per (credential, scopes) and renews it before it expires.

    The server-side half of the article's "manage refresh server-side": whoever sends
    requests asks the broker for a token each time, and gets the cached one while it has
    more than ``margin_s`` to live, a new one after that.

    Args:
        vault: Issues the tokens.
        margin_s: Renew a token when it has less than this left.
    """

    def __init__(self, vault: CredentialVault, *, margin_s: float = RENEW_MARGIN_S) -> None:
        if margin_s >= vault.ttl_s:
            raise ConfigError(
                f"the renewal margin ({margin_s:g} s) must be shorter than the tokens' "
                f"lifetime ({vault.ttl_s:g} s)",
                hint="lower margin_s or raise the vault's ttl_s",
            )
        self.vault = vault
        self.margin_s = margin_s
        self._tokens: dict[tuple[str, tuple[str, ...]], ShortLivedToken] = {}

    def token(self, credential: str, scopes: Iterable[str] = ()) -> ShortLivedToken:
        """A token for ``credential`` and ``scopes`` with more than ``margin_s`` to live."""
        wanted = (credential, tuple(sorted(set(scopes))))
        token = self._tokens.get(wanted)
        if token is None or not token.is_fresh(self.vault.clock.now(), margin_s=self.margin_s):
            token = self.vault.issue(credential, scopes=wanted[1])
            self._tokens[wanted] = token
        return token


Route = Callable[[httpx.Request], tuple[str, tuple[str, ...]] | None]
"""Which credential and scopes a request needs; None for a request that needs none."""

API_SYSTEMS = ("erp", "mail", "helpdesk", "kb", "rpa")
"""The sandbox world's JSON APIs, each opened by its own credential (``<system>_api``)."""


def api_credential(system: str) -> str:
    """The vault credential that opens a world system's JSON API: ``erp`` -> ``erp_api``."""
    return f"{system}_api"


def api_scopes(system: str) -> tuple[str, str]:
    """The scopes a system's credential may be narrowed to: ``<system>:read``, ``:write``."""
    return (f"{system}:read", f"{system}:write")


def route_by_system(request: httpx.Request) -> tuple[str, tuple[str, ...]] | None:
    """The world's rule: ``/<system>/...`` needs ``<system>_api``, read or write by method."""
    system = request.url.path.strip("/").split("/", 1)[0]
    if system not in API_SYSTEMS:
        return None
    verb = "read" if request.method in ("GET", "HEAD", "OPTIONS") else "write"
    return api_credential(system), (f"{system}:{verb}",)


def open_api_vault(
    *, ttl_s: float = DEFAULT_TTL_S, clock: Clock | None = None
) -> tuple[CredentialVault, dict[str, bytes]]:
    """A vault with a fresh random key for each of the world's JSON APIs.

    Returns the vault, and the keys to give the world (``World(api_keys=...)``) so that it
    can check the tokens. The keys live in these two objects only: never in settings, files
    or events.
    """
    keys = {api_credential(system): secrets.token_bytes(32) for system in API_SYSTEMS}
    scopes = {api_credential(system): api_scopes(system) for system in API_SYSTEMS}
    return CredentialVault(keys, ttl_s=ttl_s, clock=clock, scopes=scopes), keys


class VaultAuth(httpx.Auth):
    """Adds ``Authorization: Bearer <short-lived token>`` to the requests that need one.

    Give it to the ``httpx`` client the executor hands tools: the tools' code never sees a
    key or a token, and every request carries only the scope it needs.

    Args:
        broker: Hands out (and renews) the tokens.
        route: Which credential and scopes a request needs (:func:`route_by_system` by
            default); a request it returns None for is sent as it is.
    """

    def __init__(self, broker: TokenBroker, route: Route = route_by_system) -> None:
        self.broker = broker
        self.route = route

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Sign the request, if its route needs a credential."""
        needed = self.route(request)
        if needed is not None:
            credential, scopes = needed
            token = self.broker.token(credential, scopes)
            request.headers["Authorization"] = f"Bearer {token.value}"
        yield request
