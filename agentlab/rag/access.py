"""Access control before retrieval: which chunks an actor may be shown (the article's 5.3).

An :class:`AccessScope` is attribute-based access control (ABAC) over chunks: the data classes
the actor may read, and constraints on the chunk's attributes and document ids. Every vector
index turns a scope into its query's ``WHERE`` clause, so a chunk outside the scope is never
read out of the database, let alone put into a prompt, a log or a cassette. "Don't output
secrets" in a prompt is not governance; this is.

:meth:`AccessScope.allows` is the reference meaning of a scope, in plain Python: the contract
tests check every backend's SQL against it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict

from agentlab.rag.documents import AttributeKey, DataClass, DocId


class AccessScope(BaseModel):
    """What one actor may retrieve. Deny by default: a scope that allows nothing finds nothing.

    A chunk is in the scope when all of these hold:

    * its ``data_class`` is one of ``data_classes``;
    * for every ``key -> allowed`` in ``attributes``, the chunk has the attribute ``key`` and
      at least one of its values is in ``allowed`` (a chunk without the attribute is out);
    * ``doc_ids`` is None, or the chunk's document is one of them.

    Example:
        ``AccessScope(data_classes={"public", "internal"}, attributes={"department": {"it"}})``
        lets an IT helpdesk agent read public and internal IT documents, nothing else.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    data_classes: frozenset[DataClass]
    """The classes the actor may read, e.g. the policy actor's ``data_classes``."""
    attributes: Mapping[AttributeKey, frozenset[str]] = {}
    """Attribute constraints: the chunk must carry one of the allowed values of each key."""
    doc_ids: frozenset[DocId] | None = None
    """Only these documents, when set (an empty set allows none)."""

    @classmethod
    def of_classes(cls, classes: Iterable[str]) -> Self:
        """A scope that tests data classes only: ``AccessScope.of_classes(actor.data_classes)``."""
        return cls(data_classes=frozenset(classes))

    @classmethod
    def nothing(cls) -> Self:
        """The scope that allows no chunk at all."""
        return cls(data_classes=frozenset())

    @property
    def allows_nothing(self) -> bool:
        """True when no chunk can be in this scope, so an index need not even be asked."""
        return (
            not self.data_classes
            or any(not allowed for allowed in self.attributes.values())
            or (self.doc_ids is not None and not self.doc_ids)
        )

    def allows(
        self, *, doc_id: str, data_class: str, attributes: Mapping[str, Iterable[str]]
    ) -> bool:
        """Whether a chunk with this document, class and attributes is in the scope."""
        if data_class not in self.data_classes:
            return False
        if self.doc_ids is not None and doc_id not in self.doc_ids:
            return False
        return all(
            not allowed.isdisjoint(attributes.get(key, ()))
            for key, allowed in self.attributes.items()
        )
