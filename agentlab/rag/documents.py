"""Documents, the chunks they are cut into, and the data class every chunk carries.

A :class:`Document` is one article of organisational knowledge: a policy, a how-to, a memo.
It has a ``data_class`` (the article's section 5.3) and attributes such as ``department`` and
``tags`` that access rules can test. A :class:`Chunk` is a piece of a document small enough to
embed; it copies the document's class and attributes, because the index filters chunk by
chunk, in the query itself, and must never need a join to know what a chunk may be shown to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

DataClass = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
"""A data class: lower case, e.g. ``public`` or a class of the policy's own such as ``finance``."""

STANDARD_DATA_CLASSES = ("public", "internal", "confidential", "restricted")
"""The usual ladder, least to most sensitive. A policy may use classes of its own as well."""

DEFAULT_DATA_CLASS = "internal"
"""The class of a chunk nobody classified: the article's ``DEFAULT 'internal'``."""

DocId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]
"""A document id: 1-128 characters of ``[A-Za-z0-9_.:-]``, e.g. ``KB-VPN-001``."""

AttributeKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
"""An attribute name that access rules can test: lower case, digits and ``_``."""

Department = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
"""A department name: lower case, e.g. ``it`` or ``finance``."""

Tag = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
"""A tag: lower case, e.g. ``vpn`` or ``remote-work``."""

Attributes = Mapping[AttributeKey, tuple[str, ...]]
"""Attributes as the index keeps them: every value a tuple of strings, so that a rule's test
is always "do these values meet the allowed ones" (``department`` becomes a 1-tuple)."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class Document(_Model):
    """One piece of organisational knowledge, the long-term memory tier of the article (5.1)."""

    doc_id: DocId
    """Stable id; indexing a document again replaces its chunks."""
    title: str = Field(min_length=1, max_length=300)
    """Shown with every hit, so that an answer can cite it."""
    content: str
    """The text, Markdown allowed."""
    data_class: DataClass = DEFAULT_DATA_CLASS
    """Who may read it, as a class; the actor's allowed classes filter retrieval."""
    department: Department | None = None
    """The owning department, e.g. ``it`` or ``finance``; access rules may test it."""
    tags: tuple[Tag, ...] = ()
    """Free labels, e.g. ``vpn``; access rules may test them."""
    expires_at: AwareDatetime | None = None
    """When the document leaves the index (retention); ``None`` keeps it until deleted."""

    def attributes(self) -> dict[str, tuple[str, ...]]:
        """The attributes access rules test, every value a tuple (absent ones left out)."""
        found: dict[str, tuple[str, ...]] = {}
        if self.department is not None:
            found["department"] = (self.department,)
        if self.tags:
            found["tags"] = tuple(self.tags)
        return found


class Chunk(_Model):
    """A piece of a document, with everything the index needs to filter and cite it."""

    doc_id: DocId
    chunk_no: int = Field(ge=0)
    """Position in the document, from 0; (doc_id, chunk_no) is unique in an index."""
    title: str = ""
    """The document's title."""
    content: str = Field(min_length=1)
    data_class: DataClass = DEFAULT_DATA_CLASS
    attributes: dict[AttributeKey, tuple[str, ...]] = Field(default_factory=dict)
    """Copied from the document; see :meth:`Document.attributes`."""
    expires_at: AwareDatetime | None = None
    """Copied from the document; an expired chunk is never returned, and is purged."""
