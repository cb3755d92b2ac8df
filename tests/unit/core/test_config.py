from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from agentlab.core.config import load_yaml_model, parse_yaml_model
from agentlab.core.errors import ConfigError


class Item(BaseModel):
    sku: str
    qty: int = Field(gt=0)


class Order(BaseModel):
    customer: str
    items: list[Item]


def line_of(text: str, fragment: str) -> int:
    """The 1-based line of the first line of ``text`` that contains ``fragment``."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if fragment in line)


ORDER = """\
customer: acme
items:
  - sku: PAPER-A4
    qty: 2
  - sku: TONER-5
    qty: lots
"""


def test_a_valid_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "order.yaml"
    path.write_text(ORDER.replace("lots", "5"), encoding="utf-8")
    order = load_yaml_model(path, Order)
    assert order.items[1] == Item(sku="TONER-5", qty=5)


def test_a_wrong_nested_field_is_reported_at_its_file_and_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml_model(ORDER, Order, path="order.yaml")
    assert caught.value.message.startswith(
        f"order.yaml:{line_of(ORDER, 'qty: lots')}: field 'items.1.qty':"
    )


def test_every_problem_is_reported_at_once() -> None:
    text = "items:\n  - sku: A\n    qty: 0\n  - qty: 3\n"
    with pytest.raises(ConfigError) as caught:
        parse_yaml_model(text, Order, path="o.yaml")
    message = caught.value.message
    assert message.startswith("3 problems in o.yaml")
    assert f"o.yaml:{line_of(text, 'qty: 0')}: field 'items.0.qty'" in message
    assert f"o.yaml:{line_of(text, '- qty: 3')}: field 'items.1.sku'" in message
    assert "field 'customer': Field required" in message


def test_a_duplicate_key_is_refused_at_its_second_line() -> None:
    text = "customer: acme\nitems: []\ncustomer: globex\n"
    with pytest.raises(ConfigError, match=r"o\.yaml:3: key 'customer' appears twice"):
        parse_yaml_model(text, Order, path="o.yaml")


def test_a_yaml_syntax_error_names_its_line() -> None:
    text = "customer: acme\nitems: [1, 2\nnext: 3\n"
    with pytest.raises(ConfigError, match=r"^\[CONFIG\] o\.yaml:3: not valid YAML"):
        parse_yaml_model(text, Order, path="o.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("customer: !env CUSTOMER\nitems: []\n", r"o\.yaml:1: cannot read value 'CUSTOMER'"),
        ("customer: acme\n? [a, b]\n: 1\nitems: []\n", r"o\.yaml:2: a mapping key must be"),
        (
            "base: &b {customer: acme}\norder:\n  <<: *b\n",
            r"o\.yaml:3: merge keys .* not supported",
        ),
    ],
    ids=["unknown-tag", "sequence-as-key", "merge-key"],
)
def test_yaml_that_composes_but_does_not_construct_is_a_config_error(
    text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_yaml_model(text, Order, path="o.yaml")


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match="no such file") as caught:
        load_yaml_model(path, Order)
    assert str(path) in caught.value.message


@pytest.mark.parametrize("text", ["", "# nothing yet\n"], ids=["empty", "comment-only"])
def test_an_empty_document_reports_the_required_fields(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml_model(text, Order, path="o.yaml")
    assert "field 'customer': Field required" in caught.value.message
    assert "field 'items': Field required" in caught.value.message


def test_an_empty_document_satisfies_a_model_without_required_fields() -> None:
    class Limits(BaseModel):
        per_minute: int = 60

    assert parse_yaml_model("", Limits, path="limits.yaml") == Limits()
