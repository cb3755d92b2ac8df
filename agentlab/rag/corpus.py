"""Load a knowledge base: Markdown files with YAML front matter, one document each.

A file looks like this (the same format the sandbox world's ``/kb`` serves)::

    ---
    doc_id: KB-VPN-001
    title: Connect to the VPN
    data_class: internal          # required: an unclassified document is an error
    department: it                # optional
    tags: [vpn, remote-work]      # optional
    expires_at: 2027-03-31T00:00:00+09:00   # optional retention
    ---
    # Connect to the VPN
    ...

``data_class`` has no default here, unlike in :class:`~agentlab.rag.Document`: a file whose
author forgot to classify it (or misspelt the key) is refused with its file and line, rather
than quietly indexed as ``internal``.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from agentlab.core.config import parse_yaml_model
from agentlab.core.errors import ConfigError
from agentlab.rag.documents import DataClass, Department, DocId, Document, Tag

HELPDESK_KB = Path(__file__).parents[1] / "world" / "fixtures" / "kb"
"""The helpdesk suite's knowledge base, shipped with agentlab (the world serves it too)."""

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)(.*)\Z", re.DOTALL)


class FrontMatter(BaseModel):
    """The fields between the ``---`` lines at the top of a knowledge-base file."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    doc_id: DocId
    """Unique in the folder, e.g. ``KB-VPN-001``."""
    title: str = Field(min_length=1, max_length=300)
    data_class: DataClass
    """public, internal, confidential, restricted, or a class of the policy's own."""
    department: Department | None = None
    tags: tuple[Tag, ...] = ()
    expires_at: AwareDatetime | None = None
    """Optional retention: the document leaves the index after this time (with a timezone)."""


def load_document(path: str | Path) -> Document:
    """Read one knowledge-base file.

    Raises:
        ConfigError: the file is missing, has no front matter, or a wrong field
            (``path:line: field 'x': ...``).
    """
    return _read(Path(path))[0]


def load_corpus(folder: str | Path = HELPDESK_KB) -> list[Document]:
    """Read every ``*.md`` file in ``folder``, sorted by file name.

    Args:
        folder: The knowledge base; by default the helpdesk suite's.

    Raises:
        ConfigError: the folder is missing, a file is wrong (see :func:`load_document`), or
            two files share a ``doc_id``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such folder", hint="pass the knowledge base's folder")
    documents: list[Document] = []
    seen: dict[str, Path] = {}
    for path in sorted(folder.glob("*.md")):
        document, line = _read(path)
        if document.doc_id in seen:
            raise ConfigError(
                f"{path}:{line}: doc_id {document.doc_id!r} is also used by "
                f"{seen[document.doc_id]}",
                hint="give every document its own doc_id",
            )
        seen[document.doc_id] = path
        documents.append(document)
    return documents


def _read(path: Path) -> tuple[Document, int]:
    """The document in ``path``, and the line of its ``doc_id``."""
    try:
        text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise ConfigError(
            f"{path}:1: no front matter",
            hint="start the file with a --- line, the fields (doc_id, title, data_class), ---",
        )
    front = match.group(1)
    # One leading newline stands for the opening --- line, so YAML's line numbers are the file's.
    meta = parse_yaml_model("\n" + front, FrontMatter, path=path)
    rows = front.split("\n")
    line = 1 + next((n for n, row in enumerate(rows, 1) if row.startswith("doc_id")), 1)
    document = Document(
        doc_id=meta.doc_id,
        title=meta.title,
        data_class=meta.data_class,
        department=meta.department,
        tags=meta.tags,
        expires_at=meta.expires_at,
        content=match.group(2).strip(),
    )
    return document, line
