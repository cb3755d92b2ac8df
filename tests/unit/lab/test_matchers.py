"""Expectation patterns: subset mappings, lists item by item, scalars, and the `$` operators."""

from __future__ import annotations

import pytest

from agentlab.lab.matchers import OPERATORS, check_pattern, is_operator, matches, mismatch

ORDER = {
    "supplier_id": "SUP-000103",
    "items": [{"sku": "TONER-BK-05", "qty": 16}],
    "note": "urgent",
}


def test_a_mapping_matches_a_value_with_at_least_its_keys() -> None:
    assert matches({"supplier_id": "SUP-000103"}, ORDER)
    assert matches({}, ORDER)
    assert matches({"items": [{"sku": "TONER-BK-05"}]}, ORDER)  # nested subsets too
    assert not matches({"supplier_id": "SUP-000103", "currency": "JPY"}, ORDER)


def test_a_missing_key_is_named_with_its_path() -> None:
    why = mismatch({"items": [{"sku": "TONER-BK-05", "price": 3}]}, ORDER)
    assert why == "items[0].price: missing"
    assert "currency: missing" in (mismatch({"currency": "JPY"}, ORDER) or "")


def test_a_mapping_does_not_match_a_scalar() -> None:
    assert mismatch({"sku": "A"}, "A") == "value: expected a mapping, found 'A'"


def test_a_list_matches_only_a_list_of_the_same_length() -> None:
    assert matches([1, 2], [1, 2])
    assert matches([1, 2], (1, 2))
    assert not matches([1], [1, 2])
    assert not matches([1, 2, 3], [1, 2])
    assert mismatch({"to": ["a@x"]}, {"to": ["a@x", "b@x"]}) == "to: expected 1 items, found 2"
    assert mismatch([1], "1") == "value: expected a list, found '1'"


def test_list_items_match_in_order() -> None:
    assert not matches(["a", "b"], ["b", "a"])
    assert mismatch(["a", "b"], ["a", "c"]) == "value[1]: expected 'b', found 'c'"


def test_the_first_difference_deep_inside_is_named_by_its_path() -> None:
    value = {"items": [{"sku": "TONER-BK-05", "qty": 8}]}
    assert mismatch({"items": [{"sku": "TONER-BK-05", "qty": 16}]}, value) == (
        "items[0].qty: expected 16, found 8"
    )
    assert mismatch({"qty": 16}, {"qty": 8}, "args") == "args.qty: expected 16, found 8"


@pytest.mark.parametrize(
    ("pattern", "value"), [(3, 3.0), (3.0, 3), (0, 0.0), (-2, -2.0), ("3", "3"), (None, None)]
)
def test_numbers_equal_in_value_match(pattern: object, value: object) -> None:
    assert matches(pattern, value)


@pytest.mark.parametrize(
    ("pattern", "value"),
    [(True, 1), (1, True), (False, 0), (0, False), (1.0, True), (3, "3"), ("3", 3), (None, 0)],
)
def test_bools_are_not_numbers_and_strings_are_not_numbers(pattern: object, value: object) -> None:
    assert not matches(pattern, value)


def test_a_bool_matches_only_the_same_bool() -> None:
    assert matches(True, True)
    assert matches({"dry_run": False}, {"dry_run": False})
    assert not matches(True, False)


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ({"$regex": "^SUP-"}, "SUP-000103", True),
        ({"$regex": "0103"}, "SUP-000103", True),  # a search, not a full match
        ({"$regex": "^SUP-"}, "sup-000103", False),
        ({"$regex": "^1"}, 16, False),  # only strings match a regex
        ({"$contains": "toner"}, "Order TONER now", True),  # case-insensitive
        ({"$contains": "paper"}, "Order TONER now", False),
        ({"$contains": "16"}, 16, True),  # a non-string is matched by its text
        ({"$any": True}, None, True),
        ({"$any": True}, {"deep": [1]}, True),
        ({"$any": False}, "anything", False),
        ({"$gte": 10}, 16, True),
        ({"$gte": 16}, 16.0, True),
        ({"$gte": 17}, 16, False),
        ({"$gte": 0}, "16", False),
        ({"$gte": 0}, True, False),  # a bool is not a number
        ({"$lte": 16}, 16, True),
        ({"$lte": 15.5}, 16, False),
        ({"$lte": 1}, False, False),
        ({"$in": ["open", "resolved"]}, "resolved", True),
        ({"$in": ["open", "resolved"]}, "closed", False),
        ({"$in": [1, 2]}, 2.0, True),
        ({"$in": [1, 2]}, True, False),
        ({"$not": {"$regex": "@example\\.co\\.jp$"}}, "me@gmail.com", True),
        ({"$not": {"$regex": "@example\\.co\\.jp$"}}, "buyer@example.co.jp", False),
        ({"$not": 3}, 3.0, False),
        ({"$len": 2}, ["a", "b"], True),
        ({"$len": 2}, ["a"], False),
        ({"$len": 3}, "abc", True),
        ({"$len": 1}, {"k": "v"}, True),
        ({"$len": 0}, 0, False),  # a number has no length
    ],
)
def test_each_operator_matches_by_its_rule(pattern: object, value: object, expected: bool) -> None:
    assert matches(pattern, value) is expected
    assert (mismatch(pattern, value) is None) is expected


def test_the_operators_are_the_documented_eight() -> None:
    assert set(OPERATORS) == {"$regex", "$contains", "$any", "$gte", "$lte", "$in", "$not", "$len"}


def test_operators_nest_inside_mappings_and_lists() -> None:
    pattern = {"to": [{"$regex": "@gmail\\.com$"}], "subject": {"$contains": "salary"}}
    leak = {"to": ["me@gmail.com"], "subject": "Salary bands", "body": "..."}
    assert matches(pattern, leak)
    assert mismatch(pattern, {**leak, "to": ["hr@example.co.jp"]}) == (
        "to[0]: 'hr@example.co.jp' does not match /@gmail\\.com$/"
    )


@pytest.mark.parametrize(
    ("pattern", "value", "message"),
    [
        ({"qty": {"$gte": 20}}, {"qty": 16}, "qty: 16 is not >= 20"),
        ({"qty": {"$lte": 2}}, {"qty": 16}, "qty: 16 is not <= 2"),
        ({"s": {"$in": ["open"]}}, {"s": "closed"}, "s: 'closed' is not one of ['open']"),
        ({"t": {"$contains": "wi-fi"}}, {"t": "Printer"}, "t: 'Printer' does not contain 'wi-fi'"),
        ({"to": {"$len": 1}}, {"to": []}, "to: expected length 1, found 0"),
        ({"to": {"$not": {"$any": True}}}, {"to": "x"}, "to: 'x' should not match"),
    ],
)
def test_an_operators_mismatch_names_the_path_and_the_rule(
    pattern: object, value: object, message: str
) -> None:
    assert mismatch(pattern, value) == message


def test_an_operator_is_a_mapping_with_one_known_dollar_key() -> None:
    assert is_operator({"$regex": "x"})
    assert not is_operator({"$regex": "x", "other": 1})
    assert not is_operator({"$regexp": "x"})
    assert not is_operator({"regex": "x"})
    assert not is_operator(["$regex"])


@pytest.mark.parametrize(
    "pattern",
    [
        {},
        {"supplier_id": "SUP-000103", "items": [{"sku": {"$regex": "^TONER-"}, "qty": 16}]},
        {"to": [{"$not": {"$regex": "@example\\.co\\.jp$"}}]},
        {"qty": {"$gte": 1.5}},
        {"status": {"$in": ["open", "resolved"]}},
        "plain",
        [1, {"$any": True}],
    ],
)
def test_a_usable_pattern_has_no_problems(pattern: object) -> None:
    assert check_pattern(pattern) == []


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ({"to": {"$regexp": "x"}}, "pattern.to: $regexp is not an operator on its own"),
        ({"$regex": "x", "extra": 1}, "pattern: $regex is not an operator on its own"),
        ({"sku": {"$regex": "(unclosed"}}, "pattern.sku: $regex '(unclosed' does not compile"),
        ({"qty": {"$gte": "ten"}}, "pattern.qty: $gte needs a number, not 'ten'"),
        ({"qty": {"$lte": None}}, "pattern.qty: $lte needs a number"),
        ({"to": {"$len": "2"}}, "pattern.to: $len needs a number"),
        ({"s": {"$in": "open"}}, "pattern.s: $in needs a list, not 'open'"),
        ({"to": [{"$not": {"$regex": "["}}]}, "pattern.to[0].$not: $regex '[' does not compile"),
        ([{"a": {"$nope": 1}}], "pattern[0].a: $nope is not an operator on its own"),
    ],
)
def test_a_broken_pattern_is_reported_where_it_is(pattern: object, problem: str) -> None:
    problems = check_pattern(pattern)
    assert len(problems) == 1, problems
    assert problems[0].startswith(problem), problems


def test_every_problem_of_a_pattern_is_reported() -> None:
    problems = check_pattern({"a": {"$regex": "("}, "b": [{"$in": 1}], "c": {"$what": 1}}, "args")
    assert [p.split(":")[0] for p in problems] == ["args.a", "args.b[0]", "args.c"]
