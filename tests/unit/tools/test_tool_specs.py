"""The tool definitions: the article's schema, strictness, and messages that name the field."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest

from agentlab.core.errors import ToolRejected
from agentlab.tools import BUILTIN_TOOLS, InvalidArguments, builtin_tools
from agentlab.tools.erp import CreatePurchaseOrder
from agentlab.tools.registry import tool
from agentlab.tools.spec import ToolArguments
from tests.article import ARTICLE_PO_SCHEMA

VALID_PO = {
    "supplier_id": "SUP-000123",
    "items": [{"sku": "TONER-BK-5", "qty": 5}],
    "dry_run": True,
    "idempotency_key": "k" * 16,
}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Resolve $refs and drop what the article leaves out (descriptions, closed objects)."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(defs[node["$ref"].rsplit("/", 1)[1]], defs)
        return {
            key: (sorted(value) if key == "required" else _inline(value, defs))
            for key, value in node.items()
            if key not in ("$defs", "description", "additionalProperties")
        }
    return node


def test_the_purchase_order_tool_is_the_articles_schema() -> None:
    spec = builtin_tools().get("create_purchase_order")
    assert spec is not None
    schema = spec.json_schema()
    expected = copy.deepcopy(ARTICLE_PO_SCHEMA["parameters"])
    expected["required"] = sorted(expected["required"])
    expected["properties"]["items"]["items"]["required"].sort()

    assert spec.name == ARTICLE_PO_SCHEMA["name"]
    assert spec.description == ARTICLE_PO_SCHEMA["description"]
    assert _inline(schema, schema.get("$defs", {})) == expected


@pytest.mark.parametrize("spec", BUILTIN_TOOLS, ids=lambda s: s.name)
def test_every_builtin_schema_is_closed_and_fully_required(spec: Any) -> None:
    """OpenAI's strict mode needs both; and a closed schema is what 'no extra fields' means."""
    schema = spec.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    objects = [schema, *schema.get("$defs", {}).values()]
    for obj in objects:
        assert obj["additionalProperties"] is False
        assert sorted(obj["required"]) == sorted(obj["properties"])
        assert all("default" not in prop for prop in obj["properties"].values())
    assert spec.openai_tool()["function"]["strict"] is True
    assert spec.description


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"supplier_id": "SUP-12"}, "supplier_id", "should match pattern"),
        ({"items": []}, "items", "at least 1 item"),
        ({"items": [{"sku": "TONER", "qty": 1001}]}, "items.0.qty", "less than or equal to 1000"),
        ({"items": [{"sku": "TONER", "qty": 0}]}, "items.0.qty", "greater than or equal to 1"),
        ({"items": [{"sku": "TONER", "qty": "5"}]}, "items.0.qty", "valid integer"),
        ({"items": [{"sku": "toner", "qty": 5}]}, "items.0.sku", "should match pattern"),
        ({"dry_run": "false"}, "dry_run", "valid boolean"),
        ({"idempotency_key": "short"}, "idempotency_key", "at least 16 characters"),
        ({"price_override": 1}, "price_override", "Extra inputs are not permitted"),
    ],
)
def test_invalid_arguments_name_the_field_and_the_rule(
    change: dict[str, Any], field: str, rule: str
) -> None:
    spec = builtin_tools().get("create_purchase_order")
    assert spec is not None
    with pytest.raises(InvalidArguments) as caught:
        spec.validate({**VALID_PO, **change})
    message = str(caught.value)
    assert f"{field}: " in message
    assert rule in message
    assert "nothing was sent" in message
    assert isinstance(caught.value, ToolRejected)  # its message goes back to the model


def test_every_missing_field_is_named_at_once() -> None:
    spec = builtin_tools().get("create_purchase_order")
    assert spec is not None
    with pytest.raises(InvalidArguments) as caught:
        spec.validate({})
    assert {p.split(":")[0] for p in caught.value.problems} == set(
        ARTICLE_PO_SCHEMA["parameters"]["required"]
    )


def test_validation_accepts_the_json_text_a_model_sends() -> None:
    spec = builtin_tools().get("create_purchase_order")
    assert spec is not None
    args = spec.validate(json.dumps(VALID_PO))
    assert isinstance(args, CreatePurchaseOrder)
    assert args.items[0].qty == 5


def test_a_trailing_newline_does_not_slip_past_the_pattern() -> None:
    """Python's re lets '$' match before a final newline; the validator must not."""
    spec = builtin_tools().get("create_purchase_order")
    assert spec is not None
    with pytest.raises(InvalidArguments, match="supplier_id"):
        spec.validate({**VALID_PO, "supplier_id": "SUP-000123\n"})


def test_masked_fields_keep_only_their_size_in_the_audit_view() -> None:
    spec = builtin_tools().get("send_email")
    assert spec is not None
    view = spec.audit_view({"to": ["a@example.co.jp"], "subject": "Salary", "body": "secret"})
    assert view["to"] == ["a@example.co.jp"]
    assert "secret" not in json.dumps(view)
    assert view["body"].startswith("[masked:")


def test_targets_name_what_a_call_touches() -> None:
    spec = builtin_tools().get("send_email")
    assert spec is not None
    args = spec.validate(
        {
            "to": ["a@example.co.jp", "b@other.example"],
            "subject": "s",
            "body": "b",
            "dry_run": True,
            "idempotency_key": "k" * 16,
        }
    )
    assert spec.targets(args) == ("mailto:a@example.co.jp", "mailto:b@other.example")


def test_a_write_tool_without_an_idempotency_key_field_is_refused_at_definition() -> None:
    class Transfer(ToolArguments):
        """Move money."""

        amount: int

    with pytest.raises(TypeError, match="idempotency_key"):

        @tool(Transfer, side_effect="write", scope="bank:write", system="bank")
        async def transfer(args: Transfer, ctx: object) -> object:  # pragma: no cover
            return None


def test_two_tools_with_one_name_are_refused() -> None:
    registry = builtin_tools()
    spec = registry.get("search_kb")
    assert spec is not None
    with pytest.raises(Exception, match="two tools are named 'search_kb'"):
        registry.add(spec)
