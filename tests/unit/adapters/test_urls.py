"""Connection URLs in messages and logs never carry a password, whatever form it takes."""

from __future__ import annotations

import pytest

from agentlab.adapters._urls import redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:s3cret@h/db", "postgresql://u:***@h/db"),
        ("redis://:s3cret@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://h:6379/0?password=s3cret", "redis://h:6379/0?password=***"),
        (
            "postgresql://u@h/db?sslmode=require&PASSWORD=s3cret",
            "postgresql://u@h/db?sslmode=require&PASSWORD=***",
        ),
        ("host=h password=s3cret dbname=x", "host=h password=*** dbname=x"),
        ("host=h password = 's3 cret' dbname=x", "host=h password = *** dbname=x"),
        ("postgresql://u@h/db?host=/tmp/socket", "postgresql://u@h/db?host=/tmp/socket"),
    ],
)
def test_every_form_of_password_is_hidden(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "s3cret" not in redact_url(url)
