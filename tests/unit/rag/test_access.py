from __future__ import annotations

import pytest
from pydantic import ValidationError

from agentlab.rag import AccessScope


def allows(
    scope: AccessScope,
    data_class: str = "internal",
    doc_id: str = "D",
    **attributes: tuple[str, ...],
) -> bool:
    return scope.allows(doc_id=doc_id, data_class=data_class, attributes=attributes)


def test_only_the_listed_classes_are_readable() -> None:
    scope = AccessScope.of_classes(["public", "internal"])
    assert allows(scope, "public")
    assert allows(scope, "internal")
    assert not allows(scope, "confidential")
    assert not allows(scope, "restricted")
    assert not allows(scope, "Internal")  # classes are exact, lower-case names


def test_each_attribute_rule_needs_one_allowed_value_and_the_attribute_itself() -> None:
    scope = AccessScope(
        data_classes=frozenset({"internal"}),
        attributes={"department": frozenset({"it", "hr"}), "tags": frozenset({"vpn"})},
    )
    assert allows(scope, department=("it",), tags=("vpn", "mfa"))
    assert not allows(scope, department=("finance",), tags=("vpn",))
    assert not allows(scope, department=("it",))  # no tags at all: out
    assert not allows(scope, "confidential", department=("it",), tags=("vpn",))


def test_a_doc_id_rule_keeps_to_its_documents() -> None:
    scope = AccessScope(data_classes=frozenset({"internal"}), doc_ids=frozenset({"A"}))
    assert allows(scope, doc_id="A")
    assert not allows(scope, doc_id="B")


@pytest.mark.parametrize(
    "scope",
    [
        AccessScope.nothing(),
        AccessScope(data_classes=frozenset()),
        AccessScope(data_classes=frozenset({"public"}), attributes={"department": frozenset()}),
        AccessScope(data_classes=frozenset({"public"}), doc_ids=frozenset()),
    ],
    ids=["nothing", "no-classes", "empty-attribute-rule", "no-documents"],
)
def test_a_scope_that_allows_nothing_says_so_and_allows_nothing(scope: AccessScope) -> None:
    assert scope.allows_nothing
    assert not allows(scope, "public", doc_id="D", department=("it",))


def test_a_scope_is_frozen_and_checks_its_names() -> None:
    scope = AccessScope.of_classes({"public"})
    with pytest.raises(ValidationError):
        scope.data_classes = frozenset({"restricted"})  # type: ignore[misc]
    with pytest.raises(ValidationError):
        AccessScope.of_classes({"Not A Class"})
    with pytest.raises(ValidationError):
        AccessScope(data_classes=frozenset({"public"}), attributes={"Bad Key": frozenset({"x"})})
