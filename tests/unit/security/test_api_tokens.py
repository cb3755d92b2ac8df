"""Short-lived, scoped tokens on the world's JSON APIs: issued, renewed, refused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from agentlab.core.errors import ConfigError
from agentlab.core.tokens import read_claims, sign_token, verify_token
from agentlab.security import (
    CredentialVault,
    TokenBroker,
    VaultAuth,
    open_api_vault,
    route_by_system,
)
from agentlab.world import World, build_world_app

KEY = b"k" * 32


class ManualClock:
    """A clock that moves only when a test moves it."""

    def __init__(self) -> None:
        self.at = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def _client(world: World, auth: httpx.Auth | None = None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=build_world_app(world))
    return httpx.AsyncClient(transport=transport, base_url="http://world", auth=auth)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_scoped_token_carries_its_scopes_and_verifies_only_for_them() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    token = sign_token(KEY, "erp_api", now + timedelta(minutes=15), "n1", scopes=["erp:read"])
    claims = read_claims(token)
    assert claims is not None
    assert claims.scopes == ("erp:read",)
    assert verify_token(KEY, token, credential="erp_api", now=now, scope="erp:read")
    assert not verify_token(KEY, token, credential="erp_api", now=now, scope="erp:write")
    assert not verify_token(KEY, token, credential="mail_api", now=now, scope="erp:read")
    widened = token.replace("erp:read", "erp:read+erp:write")
    assert not verify_token(KEY, widened, credential="erp_api", now=now, scope="erp:write")
    with pytest.raises(ValueError, match="erp:read"):
        sign_token(KEY, "erp_api", now, "n2", scopes=["ERP READ"])


def test_the_vault_issues_only_the_scopes_a_credential_is_granted() -> None:
    vault = CredentialVault({"erp_api": KEY}, scopes={"erp_api": ["erp:read"]})
    assert vault.issue("erp_api", scopes=["erp:read"]).scopes == ("erp:read",)
    with pytest.raises(ConfigError, match=r"not granted scope\(s\) \['erp:write'\]"):
        vault.issue("erp_api", scopes=["erp:write"])
    with pytest.raises(ConfigError, match="does not hold"):
        CredentialVault({}, scopes={"erp_api": ["erp:read"]})


def test_the_broker_keeps_a_token_until_it_nears_expiry_then_renews_it() -> None:
    clock = ManualClock()
    vault = CredentialVault(
        {"erp_api": KEY}, ttl_s=900, clock=clock, scopes={"erp_api": ["erp:read"]}
    )
    broker = TokenBroker(vault, margin_s=60)
    first = broker.token("erp_api", ["erp:read"])
    clock.advance(800)
    assert broker.token("erp_api", ["erp:read"]) is first
    clock.advance(60)  # 40 s left: less than the margin
    renewed = broker.token("erp_api", ["erp:read"])
    assert renewed is not first
    assert renewed.expires_at > first.expires_at
    assert vault.issued == 2
    with pytest.raises(ConfigError, match="shorter than the tokens' lifetime"):
        TokenBroker(vault, margin_s=900)


def test_requests_are_routed_to_their_systems_credential_and_least_scope() -> None:
    get = httpx.Request("GET", "http://world/erp/inventory")
    post = httpx.Request("POST", "http://world/mail/send")
    assert route_by_system(get) == ("erp_api", ("erp:read",))
    assert route_by_system(post) == ("mail_api", ("mail:write",))
    assert route_by_system(httpx.Request("GET", "http://world/_world/diff")) is None
    assert route_by_system(httpx.Request("GET", "http://world/portal/")) is None


def test_keyed_systems_take_fresh_scoped_tokens_and_the_client_never_holds_a_key() -> None:
    clock = ManualClock()
    vault, keys = open_api_vault(ttl_s=900, clock=clock)
    world = World(clock=clock, api_keys=keys)
    broker = TokenBroker(vault)

    async def scenario() -> list[int]:
        statuses = []
        async with _client(world, VaultAuth(broker)) as http:
            statuses.append((await http.get("/erp/inventory")).status_code)
            clock.advance(3600)  # four lifetimes later: the broker renewed it on the way
            statuses.append((await http.get("/helpdesk/tickets")).status_code)
            sent = await http.post(
                "/mail/send",
                json={"to": ["mika@example.co.jp"], "subject": "s", "body": "b", "dry_run": True},
                headers={"Idempotency-Key": "test-key-0000000001"},
            )
            statuses.append(sent.status_code)
        return statuses

    assert asyncio.run(scenario()) == [200, 200, 200]
    assert vault.issued == 3  # erp:read, then helpdesk:read, then mail:write


def test_an_expired_token_is_refused_with_a_401_that_says_so() -> None:
    clock = ManualClock()
    vault, keys = open_api_vault(ttl_s=900, clock=clock)
    world = World(clock=clock, api_keys=keys)
    token = vault.issue("erp_api", scopes=["erp:read"])

    async def scenario() -> list[httpx.Response]:
        async with _client(world) as http:
            fresh = await http.get("/erp/inventory", headers=_bearer(token.value))
            clock.advance(901)
            stale = await http.get("/erp/inventory", headers=_bearer(token.value))
            missing = await http.get("/erp/inventory")
            forged = await http.get("/erp/inventory", headers=_bearer(token.value[:-1] + "x"))
            return [fresh, stale, missing, forged]

    fresh, stale, missing, forged = asyncio.run(scenario())
    assert fresh.status_code == 200
    assert stale.status_code == 401
    assert "expired" in stale.json()["detail"]
    assert missing.status_code == 401
    assert "credential vault" in missing.json()["detail"]
    assert forged.status_code == 401
    assert token.value not in stale.text


def test_an_out_of_scope_token_is_refused_with_a_403() -> None:
    clock = ManualClock()
    vault, keys = open_api_vault(clock=clock)
    world = World(clock=clock, api_keys=keys)
    read_only = vault.issue("mail_api", scopes=["mail:read"])
    erp = vault.issue("erp_api", scopes=["erp:read", "erp:write"])
    mail = {"to": ["mika@example.co.jp"], "subject": "s", "body": "b", "dry_run": True}

    async def scenario() -> list[httpx.Response]:
        async with _client(world) as http:
            return [
                await http.post("/mail/send", json=mail, headers=_bearer(read_only.value)),
                await http.post("/mail/send", json=mail, headers=_bearer(erp.value)),
                await http.get("/mail/outbox", headers=_bearer(read_only.value)),
            ]

    wrong_scope, wrong_system, allowed = asyncio.run(scenario())
    assert wrong_scope.status_code == 403
    assert "does not carry mail:write" in wrong_scope.json()["detail"]
    assert wrong_system.status_code == 403
    assert "erp_api does not open the mail API" in wrong_system.json()["detail"]
    assert allowed.status_code == 200
    assert world.mail.outbox == {}


def test_a_world_without_api_keys_takes_requests_as_before() -> None:
    async def scenario() -> int:
        async with _client(World()) as http:
            return (await http.get("/erp/inventory")).status_code

    assert asyncio.run(scenario()) == 200
