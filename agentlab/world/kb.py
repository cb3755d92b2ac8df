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

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from agentlab.core.errors import ConfigError
from agentlab.world.errors import WorldError

WORD = re.compile(r"[a-z0-9]+")


class Article(BaseModel):
    """A knowledge-base article."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    doc_id: str
    title: str
    data_class: str
    department: str | None = None
    tags: tuple[str, ...] = ()
    content: str = ""


def load_articles(folder: Path) -> list[Article]:
    """Read every ``*.md`` article in ``folder`` (none if the folder is missing).

    Raises:
        ConfigError: an article has no front matter or a wrong field, naming the file.
    """
    if not folder.is_dir():
        return []
    articles = [_parse(path) for path in sorted(folder.glob("*.md"))]
    seen: dict[str, Path] = {}
    for article, path in zip(articles, sorted(folder.glob("*.md")), strict=True):
        if article.doc_id in seen:
            raise ConfigError(
                f"{path}: doc_id {article.doc_id!r} is also used by {seen[article.doc_id]}"
            )
        seen[article.doc_id] = path
    return articles


def _parse(path: Path) -> Article:
    text = path.read_text(encoding="utf-8")
    parts = text.split("---", 2)
    if not text.startswith("---") or len(parts) < 3:
        raise ConfigError(
            f"{path}:1: no front matter", hint="start the file with ---, the fields, then ---"
        )
    try:
        meta = yaml.safe_load(parts[1]) or {}
        return Article.model_validate({**meta, "content": parts[2].strip()})
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{path}: front matter: {exc}") from None


class KnowledgeBase:
    """Keyword search over articles, filtered by data class."""

    def __init__(self, articles: list[Article]) -> None:
        self.articles = {a.doc_id: a for a in articles}

    def search(self, query: str, *, classes: set[str], limit: int) -> list[dict[str, Any]]:
        """The best-matching readable articles: title words count twice."""
        words = set(WORD.findall(query.lower()))
        scored = []
        for article in self.articles.values():
            if article.data_class not in classes:
                continue
            title = WORD.findall(article.title.lower())
            body = WORD.findall(article.content.lower())
            score = sum(2 * title.count(w) + body.count(w) for w in words)
            if score:
                scored.append((score, article))
        scored.sort(key=lambda pair: (-pair[0], pair[1].doc_id))
        return [
            {
                "doc_id": a.doc_id,
                "title": a.title,
                "data_class": a.data_class,
                "snippet": a.content[:200],
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
