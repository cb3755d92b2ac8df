"""DLP detectors: each kind found where it is, and not where it only looks alike."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from agentlab.core.tokens import sign_token
from agentlab.policy import default_policy
from agentlab.policy.model import DlpRule
from agentlab.security import dlp as dlp_module
from agentlab.security.dlp import (
    KINDS,
    Dlp,
    luhn_ok,
    mask_of,
    my_number_ok,
)

SCAN = Dlp()


def kinds(text: str) -> list[str]:
    return [d.kind for d in SCAN.scan(text)]


@pytest.mark.parametrize(
    "text",
    [
        "write to kenji.sato+it@example.co.jp today",
        "cc: a_b@mail.example.org",
    ],
)
def test_email_addresses_are_found(text: str) -> None:
    assert kinds(text) == ["email_address"]


@pytest.mark.parametrize(
    "text",
    ["call +81 3-1234-5678", "call 03-1234-5678", "mobile 090-1234-5678", "(415) 555-0100"],
)
def test_phone_numbers_are_found(text: str) -> None:
    assert kinds(text) == ["phone_number"]


@pytest.mark.parametrize(
    "text",
    ["due 2026-11-24", "ticket TCK-000004", "PO-000001 for 16 units", "order 123-45"],
)
def test_dates_and_ids_are_not_phone_numbers(text: str) -> None:
    assert kinds(text) == []


@pytest.mark.parametrize(
    "number",
    ["4111 1111 1111 1111", "4111-1111-1111-1111", "5555555555554444", "378282246310005"],
)
def test_card_numbers_that_pass_luhn_are_found(number: str) -> None:
    assert kinds(f"card {number} exp 12/29") == ["card_number"]


@pytest.mark.parametrize(
    "number",
    ["4111 1111 1111 1112", "5555555555554440", "1234567812345678", "378282246310006"],
)
def test_card_shaped_numbers_that_fail_luhn_are_not_cards(number: str) -> None:
    assert "card_number" not in kinds(f"ref {number}")


def test_luhn_itself() -> None:
    assert luhn_ok("79927398713")
    assert not luhn_ok("79927398710")
    assert not luhn_ok("7992739871x")


def test_my_numbers_are_found_by_their_check_digit() -> None:
    assert my_number_ok("123456789018")
    assert not my_number_ok("123456789012")
    assert kinds("My Number 1234 5678 9018") == ["my_number"]
    assert kinds("My Number 123456789018") == ["my_number"]
    assert kinds("ref 123456789012") == []  # twelve digits, wrong check digit


def test_us_ssns_are_found_outside_the_ranges_never_issued() -> None:
    assert kinds("SSN 123-45-6789") == ["us_ssn"]
    for never in ("000-12-3456", "666-12-3456", "912-34-5678", "123-00-4567", "123-45-0000"):
        assert kinds(f"SSN {never}") == [], never


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("OPENAI_API_KEY=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t", "api_key"),
        ("key sk-abcdefghijklmnopqrstuvwxyz012345", "api_key"),
        ("token ghp_0123456789abcdefghijABCDEFGHIJ0123", "api_key"),
        ("slack xoxb-1234567890-abcdefghij", "api_key"),
        ("aws AKIAIOSFODNN7EXAMPLE here", "aws_access_key"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n",
            "jwt",
        ),
        ("Authorization: Bearer abcdefghijklmnop0123456789", "bearer_token"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "private_key"),
    ],
)
def test_keys_and_tokens_are_found(text: str, kind: str) -> None:
    assert kinds(text) == [kind]


@pytest.mark.parametrize(
    "key",
    [
        "sk-proj-Abc123Def456Ghi789-abcDEF_ghiJKL-mnop",  # dashes and underscores inside
        "sk-ant-api03-AbCdEfGhIjKlMnOpQrSt-uvwx_yz0123",
    ],
)
def test_a_realistically_shaped_key_is_masked_to_its_last_character(key: str) -> None:
    dlp = Dlp({kind: rule.model_dump() for kind, rule in default_policy().dlp.items()})
    assert dlp.mask_text(f"key {key} end", "logs") == "key [masked:api_key] end"


def test_mask_is_refused_for_tool_arguments_when_the_policy_loads() -> None:
    # A tool given a masked value would act on it (mail a placeholder): block or allow only.
    with pytest.raises(ValidationError, match="tool_arguments"):
        DlpRule(tool_arguments="mask")  # type: ignore[arg-type]


def test_the_vaults_own_tokens_are_found() -> None:
    token = sign_token(b"k" * 32, "erp_api", datetime(2026, 1, 1, tzinfo=UTC), "0" * 16)
    scoped = sign_token(
        b"k" * 32, "erp_api", datetime(2026, 1, 1, tzinfo=UTC), "1" * 16, scopes=["erp:read"]
    )
    assert kinds(f"header {token} sent") == ["vault_token"]
    assert kinds(scoped) == ["vault_token"]


def test_a_bearer_vault_token_is_one_finding_not_two() -> None:
    token = sign_token(b"k" * 32, "erp_api", datetime(2026, 1, 1, tzinfo=UTC), "0" * 16)
    assert kinds(f"Authorization: Bearer {token}") == ["vault_token"]


def test_known_secrets_are_found_exactly_and_short_ones_ignored() -> None:
    dlp = Dlp(known_secrets=("planted-secret-value-42", "abc"))
    assert [d.kind for d in dlp.scan("x planted-secret-value-42 y abc")] == ["known_secret"]


def test_ordinary_helpdesk_text_has_nothing_to_find() -> None:
    text = (
        "Ticket TCK-000004 (Printer on floor 3 out of toner) was opened 2026-01-01T09:00:00+00:00;"
        " order PO-000001 for 16 TONER-BK-05 at 62.50 USD; idempotency key "
        "k-6f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e; KB-IT-006 says the queue is FOLLOWME."
    )
    assert kinds(text) == []


def test_masking_and_blocking_follow_the_rules_per_place() -> None:
    dlp = Dlp(
        {
            "card_number": {"answer": "mask", "tool_arguments": "block", "logs": "mask"},
            "email_address": {"logs": "mask"},
        }
    )
    value = {"to": ["mika@example.co.jp"], "body": "card 4111 1111 1111 1111, thanks"}
    sent = dlp.apply(value, "tool_arguments")
    assert sent.is_blocked
    assert sent.blocked == ("card_number",)
    assert sent.value == value  # blocked, not masked: the caller refuses it whole
    answer = dlp.apply(value, "answer")
    assert not answer.is_blocked
    assert answer.value == {
        "to": ["mika@example.co.jp"],
        "body": f"card {mask_of('card_number')}, thanks",
    }
    logged = dlp.apply(value, "logs")
    assert logged.masked == ("card_number", "email_address")
    assert "mika@example.co.jp" not in str(logged.value)
    assert dlp.apply(value, "tool_results").value == value  # no rule: allowed
    assert (
        dlp.mask_text("card 4111 1111 1111 1111", "tool_arguments") == "card [masked:card_number]"
    )


def test_a_detection_never_shows_its_value() -> None:
    found = SCAN.scan("key sk-abcdefghijklmnopqrstuvwxyz012345")
    assert "sk-" not in repr(found)
    assert "abcdefghij" not in repr(Dlp(known_secrets=("abcdefghij",)))


def test_rules_for_an_unknown_kind_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown DLP kinds"):
        Dlp({"passport": {"answer": "mask"}})
    assert "known_secret" in KINDS


FRAGMENTS = [
    "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t", "ghp_0123456789abcdefghijABCDEFGHIJ0123",
    "xoxb-1234567890-abcdefghij", "AIzaSyA1234567890abcdefghijklmnopqrstu", "AKIAIOSFODNN7EXAMPLE",
    "ASIAIOSFODNN7EXAMPLE", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVm",
    "bEaReR abcdefghijklmnop0123456789",
    "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----",
    "mika@example.co.jp", "+81 3-1234-5678", "415-555-0100", "4111 1111 1111 1111",
    "123-45-6789", "1234 5678 9018", "SUP-000103", "PO-000001", "2026-11-26", "qty 16", "ok",
    "\uff14\uff11\uff11\uff11", "\u0664\u0661\u0661", " ", ".", "@", "-",
]  # fmt: skip


def scans_alike(text: str) -> None:
    """The hints only skip work: a text scans the same with them and without them."""
    with_hints = Dlp().scan(text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dlp_module, "_COULD_HOLD", dict.fromkeys(dlp_module._COULD_HOLD, bool))
        without = Dlp().scan(text)
    assert with_hints == without, text


def test_skipping_detectors_by_their_hints_misses_no_kind() -> None:
    token = sign_token(b"k" * 32, "erp_api", datetime(2026, 1, 1, tzinfo=UTC), "0" * 16)
    for first in [*FRAGMENTS, token]:
        scans_alike(first)
        for second in FRAGMENTS:
            scans_alike(f"{first} {second}")
            scans_alike(f"{first}{second}")


@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=12), max_size=6))
def test_skipping_detectors_by_their_hints_misses_nothing_in_any_text(parts: list[str]) -> None:
    scans_alike(" ".join(parts))
