from __future__ import annotations

from datetime import timedelta

import pytest

from agentlab.core.clock import TickingClock
from agentlab.core.errors import ConfigError
from agentlab.core.tokens import sign_token, verify_token
from agentlab.security import CredentialVault

KEY = b"k" * 32


def test_a_token_works_for_its_credential_until_it_expires() -> None:
    clock = TickingClock()
    vault = CredentialVault({"supplier_portal": KEY}, ttl_s=900, clock=clock)
    token = vault.issue("supplier_portal")
    now = clock.now()
    assert token.expires_at - now < timedelta(seconds=900)
    assert verify_token(KEY, token.value, credential="supplier_portal", now=now)
    later = token.expires_at + timedelta(seconds=1)
    assert not verify_token(KEY, token.value, credential="supplier_portal", now=later)
    assert not verify_token(KEY, token.value, credential="other_portal", now=now)
    assert not verify_token(b"x" * 32, token.value, credential="supplier_portal", now=now)
    assert vault.issued == 1


def test_a_tampered_token_is_refused() -> None:
    clock = TickingClock()
    token = CredentialVault({"supplier_portal": KEY}, clock=clock).issue("supplier_portal")
    name, expires, nonce, signature = token.value.split(".")
    longer = f"{name}.{int(expires) + 3600}.{nonce}.{signature}"
    last = "1" if signature.endswith("0") else "0"  # always a different signature
    flipped = token.value[:-1] + last
    for forged in (longer, flipped, "supplier_portal.1.2", ""):
        assert not verify_token(KEY, forged, credential="supplier_portal", now=clock.now())


def test_the_token_value_is_never_in_its_repr_or_the_vaults() -> None:
    vault = CredentialVault({"supplier_portal": KEY}, clock=TickingClock())
    token = vault.issue("supplier_portal")
    assert token.value not in repr(token)
    assert "supplier_portal" in repr(vault)
    assert KEY.decode() not in repr(vault)


def test_tokens_are_renewed_before_they_expire() -> None:
    clock = TickingClock(tick=timedelta(seconds=100))
    token = CredentialVault({"supplier_portal": KEY}, ttl_s=300, clock=clock).issue(
        "supplier_portal"
    )
    assert token.is_fresh(token.expires_at - timedelta(seconds=60))
    assert not token.is_fresh(token.expires_at - timedelta(seconds=10))


def test_an_unknown_credential_or_a_bad_ttl_says_what_to_do() -> None:
    vault = CredentialVault({"supplier_portal": KEY})
    with pytest.raises(ConfigError, match="known credentials: supplier_portal"):
        vault.issue("payroll")
    with pytest.raises(ConfigError, match="ttl_s must be positive"):
        CredentialVault({}, ttl_s=0)
    with pytest.raises(ValueError, match="lower-case"):
        sign_token(KEY, "Bad Name", TickingClock().now(), "n")
