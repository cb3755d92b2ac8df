"""The browser tools' arguments: what a model may not pass, whatever policy would say."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agentlab.adapters.playwright_browser import PlaywrightBrowser
from agentlab.core.errors import ConfigError
from agentlab.security import CredentialVault
from agentlab.tools.browser import BrowserOpen


@pytest.mark.parametrize(
    "url",
    [
        "http://attacker.test\\@portal.example.co.jp/",  # urlsplit and Chromium disagree
        "http://attacker.test@portal.example.co.jp/",
        "http://user:pw@portal.example.co.jp/portal/",
        "http://portal.example.co.jp\\evil.test/",
        "http://portal.example.co.jp/a\\b",
        "javascript:alert(1)",
        "http://portal.example.co.jp/ x",
    ],
)
def test_browser_open_refuses_urls_that_parsers_read_differently(url: str) -> None:
    with pytest.raises(ValidationError):
        BrowserOpen.model_validate({"url": url})


@pytest.mark.parametrize(
    "url",
    [
        "http://portal.example.co.jp",
        "http://portal.example.co.jp/portal/",
        "https://portal.example.co.jp:8443/portal/suppliers/SUP-000106?x=a@b#top",
    ],
)
def test_browser_open_takes_plain_urls(url: str) -> None:
    assert BrowserOpen.model_validate({"url": url}).url == url


def test_credentials_without_a_vault_are_a_config_error_with_a_hint() -> None:
    with pytest.raises(ConfigError, match="hint: pass vault="):
        PlaywrightBrowser(
            None,  # type: ignore[arg-type]  # refused before the browser is used
            allowed_domains=("example.co.jp",),
            credentials={"portal.example.co.jp": "supplier_portal"},
        )
    PlaywrightBrowser(
        None,  # type: ignore[arg-type]
        allowed_domains=("example.co.jp",),
        vault=CredentialVault({"supplier_portal": b"k" * 32}),
        credentials={"portal.example.co.jp": "supplier_portal"},
    )
