"""The knowledge base: Markdown articles with YAML front matter, searched by keyword.

An article starts with front matter (``doc_id``, ``title``, ``data_class``, optional
``department`` and ``tags``) between ``---`` lines. Every read is filtered by the caller's
data classes (header ``X-Data-Classes``; ``public`` when absent): an article of another class
is neither found nor fetched. Vector retrieval lives in ``agentlab.rag``; this is the
helpdesk system's own search box.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentlab.core.config import parse_yaml_model
from agentlab.core.errors import ConfigError
from agentlab.world.errors import WorldError

WORD = re.compile(r"[a-z0-9]+")
FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*(?:\r?\n|\Z)", re.DOTALL | re.MULTILINE)
SNIPPET_CHARS = 200


class FrontMatter(BaseModel):
    """What an article's front matter must say; other keys (``expires_at``, ...) are kept out."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    doc_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")
    title: str = Field(min_length=1)
    data_class: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    department: str | None = None
    tags: tuple[str, ...] = ()


class Article(FrontMatter):
    """A knowledge-base article: its front matter and its Markdown content."""

    content: str = ""


def load_articles(folder: Path) -> list[Article]:
    """Read every ``*.md`` article in ``folder`` (none if the folder is missing).

    Raises:
        ConfigError: an article has no front matter or a wrong field (``file:line``), or two
            articles share a ``doc_id``.
    """
    if not folder.is_dir():
        return []
    articles: list[Article] = []
    seen: dict[str, Path] = {}
    for path in sorted(folder.glob("*.md")):
        article = _parse(path)
        if article.doc_id in seen:
            raise ConfigError(
                f"{path}:1: doc_id {article.doc_id!r} is also used by {seen[article.doc_id]}",
                hint="give every article its own doc_id",
            )
        seen[article.doc_id] = path
        articles.append(article)
    return articles


def _parse(path: Path) -> Article:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    match = FRONT_MATTER.match(text)
    if match is None:
        raise ConfigError(
            f"{path}:1: no front matter",
            hint="start the file with a line ---, then doc_id, title, data_class, then ---",
        )
    # The leading newline stands for the opening ---, so errors carry the file's own lines.
    meta = parse_yaml_model("\n" + match.group(1), FrontMatter, path=path)
    return Article(**meta.model_dump(), content=text[match.end() :].strip())


class KnowledgeBase:
    """Keyword search over articles, filtered by data class."""

    def __init__(self, articles: list[Article]) -> None:
        self.articles = {a.doc_id: a for a in articles}

    def search(self, query: str, *, classes: set[str], limit: int) -> list[dict[str, Any]]:
        """The best-matching readable articles; a word in the title or tags counts twice.

        Ties are broken by ``doc_id``, so the order is the same every time.
        """
        words = set(WORD.findall(query.lower()))
        scored = []
        for article in self.articles.values():
            if article.data_class not in classes:
                continue
            heading = WORD.findall(" ".join((article.title, *article.tags)).lower())
            body = WORD.findall(article.content.lower())
            score = sum(2 * heading.count(w) + body.count(w) for w in words)
            if score:
                scored.append((score, article))
        scored.sort(key=lambda pair: (-pair[0], pair[1].doc_id))
        return [
            {
                "doc_id": a.doc_id,
                "title": a.title,
                "data_class": a.data_class,
                "snippet": _snippet(a.title, a.content),
                "score": score,
            }
            for score, a in scored[:limit]
        ]

    def get(self, doc_id: str, *, classes: set[str]) -> dict[str, Any]:
        """One article; 404 if unknown or not readable with these classes (no hint which)."""
        article = self.articles.get(doc_id)
        if article is None or article.data_class not in classes:
            raise WorldError(404, f"no article {doc_id}")
        return article.model_dump()

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """The articles' ids and classes (their text is in the files)."""
        return {
            "articles": [
                {"doc_id": a.doc_id, "title": a.title, "data_class": a.data_class}
                for a in self.articles.values()
            ]
        }


def _snippet(title: str, content: str) -> str:
    """The text's first characters on one line, without a heading that repeats the title."""
    lines = [line.strip() for line in content.splitlines() if line.strip()]
    if lines and lines[0].lstrip("#").strip() == title:
        lines = lines[1:]
    flat = " ".join(" ".join(line.lstrip("#").split()) for line in lines)
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1] + "…"
