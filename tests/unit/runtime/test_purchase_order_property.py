"""Property: no purchase-order input reaches the world unless it passes validation.

Hypothesis drives the executor with generated arguments, valid and invalid alike, against
the real world app. The oracle is independent of the code under test: the article's JSON
Schema, closed, checked by the jsonschema library. Every request that reaches the ERP must
satisfy it, and an input it rejects must never produce a request.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentlab.runtime import ReviewDecision, ScriptedReviewer
from agentlab.tools import InvalidArguments
from agentlab.tools.erp import create_purchase_order
from agentlab.world import build_world_app
from tests.article import ARTICLE_PO_SCHEMA
from tests.unit.runtime._bench import PROCUREMENT, bench, policy_with, run


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(schema)
    schema["additionalProperties"] = False
    schema["properties"]["items"]["items"]["additionalProperties"] = False
    return schema


WORLD_APP = build_world_app()  # one app for every example; the bench resets it
ORACLE = jsonschema.Draft202012Validator(_closed(ARTICLE_PO_SCHEMA["parameters"]))

any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=5,
)
# Real ids from the default world, so valid orders get past the ERP's own checks too.
valid_lines = st.fixed_dictionaries(
    {
        "sku": st.sampled_from(["TONER-BK-05", "TONER-CY-05", "TONER-MG-05"])
        | st.from_regex(r"[A-Z0-9-]{3,32}", fullmatch=True),
        "qty": st.integers(1, 1000) | st.sampled_from([1, 1000]),
    }
)
valid_orders = st.fixed_dictionaries(
    {
        "supplier_id": st.just("SUP-000103") | st.from_regex(r"SUP-[0-9]{6}", fullmatch=True),
        "items": st.lists(valid_lines, min_size=1, max_size=20),
        "dry_run": st.booleans(),
        "idempotency_key": st.from_regex(r"[A-Za-z0-9_-]{16,64}", fullmatch=True),
    }
)
field_names = st.sampled_from(["supplier_id", "items", "dry_run", "idempotency_key"])


@st.composite
def one_field_broken(draw: st.DrawFn) -> dict[str, Any]:
    """A valid order with exactly one thing wrong: near a boundary, or any JSON at all."""
    order = draw(valid_orders)
    how = draw(st.sampled_from(["value", "qty", "sku", "extra", "missing", "length", "line_extra"]))
    line = draw(st.integers(0, len(order["items"]) - 1))
    if how == "value":
        order[draw(field_names)] = draw(any_json)
    elif how == "qty":
        order["items"][line]["qty"] = draw(
            st.sampled_from([0, -1, 1001, 1002]) | st.floats(1, 1000) | any_json
        )
    elif how == "sku":
        order["items"][line]["sku"] = draw(
            st.sampled_from(["toner", "AB", "A" * 33, "TONER-BK-05\n"]) | st.text(max_size=40)
        )
    elif how == "extra":
        order[draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in order))] = draw(
            any_json
        )
    elif how == "missing":
        del order[draw(field_names)]
    elif how == "length":
        order["items"] = draw(st.just([]) | st.lists(valid_lines, min_size=21, max_size=22))
    else:
        order["items"][line]["price_usd"] = draw(any_json)
    if how == "value" and "supplier_id" in order and isinstance(order["supplier_id"], str):
        order["supplier_id"] = draw(st.just(order["supplier_id"]) | st.just("SUP-000103\n"))
    return order


def _passes_the_tool(arguments: dict[str, Any]) -> bool:
    try:
        create_purchase_order.validate(arguments)
    except InvalidArguments:
        return False
    return True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    arguments=st.one_of(
        valid_orders, one_field_broken(), st.dictionaries(st.text(max_size=12), any_json)
    )
)
def test_no_purchase_order_reaches_the_world_unvalidated(arguments: dict[str, Any]) -> None:
    async def scenario() -> list[Any]:
        approve = ScriptedReviewer(lambda _r: ReviewDecision.approve("rita"))
        # DLP off: a generated SKU of 16 digits can pass the Luhn check, and DLP rightly
        # blocks a "card number" in arguments; this property is about validation alone.
        no_dlp = policy_with(defences={"dlp": False})
        async with bench(no_dlp, reviewer=approve, app=WORLD_APP) as b:
            rec = b.start()
            await b.executor.call(rec, PROCUREMENT, "create_purchase_order", arguments)
            return b.sent_to("/erp/purchase-orders")

    sent = run(scenario())

    if not ORACLE.is_valid(arguments):
        assert sent == []
    elif _passes_the_tool(arguments):
        # The tool is stricter than the schema (1.0 is no integer to it, and '$' lets no
        # newline through); what passes both must at least be previewed.
        assert sent, "a valid order must at least be previewed"
    for request in sent:
        body = json.loads(request.content)
        as_model_sent_it = {**body, "idempotency_key": request.headers["Idempotency-Key"]}
        ORACLE.validate(as_model_sent_it)
