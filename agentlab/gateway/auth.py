"""Bearer tokens: who calls the gateway, and what they may do.

A token maps to an **actor** (whose runs it starts and sees) and **scopes**. The gateway's
own scopes say which calls it may make:

=====================  ==============================================================
scope                  allows
=====================  ==============================================================
``runs:submit``        start runs as the token's actor (``POST /runs``)
``runs:submit_as``     start runs as any actor of the policy (a service account)
``runs:read``          read the token's actor's runs and follow their events
``runs:read_all``      read every run
``approvals:decide``   list and answer approvals -- only for tools whose scope the
                       caller holds (``erp:write`` for a purchase order), through the
                       token's scopes or the policy actor's
``audit:read``         query and verify the audit log
=====================  ==============================================================

Tokens are random (``agl_`` and 43 URL-safe characters, 256 bits) and kept only as SHA-256
hashes in a YAML file that ``agentlab tokens issue`` writes; the token itself is printed once
and never stored or logged. A plain hash is enough for a secret this long: there is nothing to
guess from it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NamedTuple

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from agentlab.core.config import load_yaml_model
from agentlab.core.errors import ConfigError

RUNS_SUBMIT = "runs:submit"
RUNS_SUBMIT_AS = "runs:submit_as"
RUNS_READ = "runs:read"
RUNS_READ_ALL = "runs:read_all"
APPROVALS_DECIDE = "approvals:decide"
AUDIT_READ = "audit:read"
GATEWAY_SCOPES = (
    RUNS_SUBMIT,
    RUNS_SUBMIT_AS,
    RUNS_READ,
    RUNS_READ_ALL,
    APPROVALS_DECIDE,
    AUDIT_READ,
)
"""The gateway's own scopes; a token may also carry tool scopes (``erp:write``) for approving."""

TOKEN_PREFIX = "agl_"

Scope = Annotated[str, Field(pattern=r"^[a-z0-9_.-]+:[a-z0-9_.*-]+$")]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:@-]{1,64}$")]


class TokenRecord(BaseModel):
    """One issued token, as the token file keeps it: its hash, never the token."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    name: Name
    """What the token is for (``alice-laptop``, ``ci-nightly``); shown in lists and logs."""
    actor: Name
    """Who calls with it: the policy's actor whose runs it starts and sees, or a reviewer."""
    scopes: tuple[Scope, ...]
    """The gateway's scopes it grants, and tool scopes for approving (``erp:write``)."""
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    """SHA-256 of the token, in hex."""
    created_at: AwareDatetime | None = None


class TokenFile(BaseModel):
    """The token file: ``tokens:``, a list of :class:`TokenRecord`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tokens: tuple[TokenRecord, ...] = ()


@dataclass(frozen=True)
class Caller:
    """Who made a request, once their token checked out."""

    token_name: str
    actor: str
    scopes: frozenset[str]

    def may(self, scope: str) -> bool:
        """True when the token grants ``scope``."""
        return scope in self.scopes


def hash_token(token: str) -> str:
    """The hex SHA-256 a token file keeps for ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenBook:
    """The tokens the gateway accepts, by hash.

    Args:
        records: The issued tokens.
        source: Where they came from, for messages.
    """

    def __init__(self, records: tuple[TokenRecord, ...] = (), *, source: str = "<tokens>") -> None:
        self.source = source
        self._by_hash = {r.sha256: r for r in records}
        if len(self._by_hash) != len(records):
            raise ConfigError(f"{source}: two token records have the same hash")

    @classmethod
    def load(cls, path: str | Path) -> TokenBook:
        """Read a token file.

        Raises:
            ConfigError: the file is missing or wrong, with file:line.
        """
        return cls(load_yaml_model(Path(path), TokenFile).tokens, source=str(path))

    @property
    def records(self) -> tuple[TokenRecord, ...]:
        """Every token record."""
        return tuple(self._by_hash.values())

    def authenticate(self, token: str) -> Caller | None:
        """The caller a token stands for, or None for a token nobody issued."""
        digest = hash_token(token)
        record = self._by_hash.get(digest)
        # Compare again in constant time: the lookup above keys on the digest, not the token.
        if record is None or not hmac.compare_digest(record.sha256, digest):
            return None
        return Caller(record.name, record.actor, frozenset(record.scopes))


class IssuedToken(NamedTuple):
    """What :func:`issue_token` returns: the token (show it once) and its record."""

    token: str
    record: TokenRecord


def issue_token(path: str | Path, *, name: str, actor: str, scopes: tuple[str, ...]) -> IssuedToken:
    """Make a new token, add its hash to the token file (made with mode 0600 if missing).

    Raises:
        ConfigError: a token of that name exists, or the file is wrong.
    """
    path = Path(path)
    existing = TokenBook.load(path).records if path.exists() else ()
    if any(r.name == name for r in existing):
        raise ConfigError(
            f"{path}: a token named {name!r} exists", hint="revoke it first, or pick another name"
        )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = TokenRecord(
        name=name,
        actor=actor,
        scopes=scopes,
        sha256=hash_token(token),
        created_at=datetime.now(UTC),
    )
    write_tokens(path, (*existing, record))
    return IssuedToken(token, record)


def revoke_token(path: str | Path, name: str) -> TokenRecord:
    """Remove the token named ``name`` from the file; a gateway drops it at its next start.

    Raises:
        ConfigError: no token of that name.
    """
    path = Path(path)
    records = TokenBook.load(path).records
    gone = [r for r in records if r.name == name]
    if not gone:
        raise ConfigError(
            f"{path}: no token named {name!r}",
            hint="see `agentlab tokens list --file " + str(path) + "`",
        )
    write_tokens(path, tuple(r for r in records if r.name != name))
    return gone[0]


def write_tokens(path: Path, records: tuple[TokenRecord, ...]) -> None:
    """Write the token file, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = TokenFile(tokens=records).model_dump(mode="json")
    text = (
        "# agentlab gateway tokens: SHA-256 hashes only; `agentlab tokens issue` adds one.\n"
        + yaml.safe_dump(body, sort_keys=False)
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
