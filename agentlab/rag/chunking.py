"""Cut documents into chunks, deterministically: the same text always gives the same chunks.

Chunks follow the document's own structure: a Markdown heading starts a new chunk, paragraphs
are packed together up to ``max_chars``, and only a paragraph too long on its own is cut, at
sentence ends first, then between words. No text is dropped or repeated, so what a chunk says
can always be found in the document it cites.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from agentlab.rag.documents import Chunk, Document

DEFAULT_MAX_CHARS = 1200
"""About 250-300 tokens of English: small enough to embed well, large enough to answer from."""

_BLANK_LINES = re.compile(r"\n[ \t]*\n+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WHITESPACE = re.compile(r"\s+")


def chunk_text(text: str, *, max_chars: int = DEFAULT_MAX_CHARS) -> list[str]:
    """Split ``text`` into pieces of at most ``max_chars`` characters.

    Args:
        text: Plain text or Markdown.
        max_chars: The longest piece; at least 20.

    Returns:
        The pieces in order, none empty; an empty or blank text gives none.
    """
    if max_chars < 20:
        raise ValueError(f"max_chars must be at least 20, not {max_chars}")
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for block in _blocks(text):
        if block.startswith("#") and current:  # a heading opens a new chunk
            chunks.append("\n\n".join(current))
            current, size = [], 0
        for piece in _fit(block, max_chars):
            added = len(piece) + (2 if current else 0)
            if current and size + added > max_chars:
                chunks.append("\n\n".join(current))
                current, size, added = [], 0, len(piece)
            current.append(piece)
            size += added
    if current:
        chunks.append("\n\n".join(current))
    return chunks


def chunk_document(document: Document, *, max_chars: int = DEFAULT_MAX_CHARS) -> list[Chunk]:
    """The chunks of ``document``, numbered from 0, each carrying its class and attributes.

    Args:
        document: The document to cut.
        max_chars: The longest chunk; see :func:`chunk_text`.
    """
    return [
        Chunk(
            doc_id=document.doc_id,
            chunk_no=number,
            title=document.title,
            content=content,
            data_class=document.data_class,
            attributes=document.attributes(),
            expires_at=document.expires_at,
        )
        for number, content in enumerate(chunk_text(document.content, max_chars=max_chars))
    ]


def _blocks(text: str) -> Iterator[str]:
    """Paragraphs, headings and list blocks, stripped, in order."""
    for block in _BLANK_LINES.split(text.replace("\r\n", "\n")):
        lines = block.strip().split("\n")
        # A heading directly above its paragraph is a block of its own, so it opens a chunk.
        if len(lines) > 1 and lines[0].lstrip().startswith("#"):
            yield lines[0].strip()
            lines = lines[1:]
        rest = "\n".join(lines).strip()
        if rest:
            yield rest


def _fit(block: str, max_chars: int) -> Iterator[str]:
    """``block`` itself if it fits, else its sentences, packed, else its words, packed."""
    if len(block) <= max_chars:
        yield block
        return
    sentences = _SENTENCE_END.split(block)
    if len(sentences) > 1:
        yield from _pack(sentences, " ", max_chars)
        return
    words = _WHITESPACE.split(block)
    if len(words) > 1:
        yield from _pack(words, " ", max_chars)
        return
    for start in range(0, len(block), max_chars):  # one enormous "word", e.g. a base64 blob
        yield block[start : start + max_chars]


def _pack(parts: list[str], separator: str, max_chars: int) -> Iterator[str]:
    current = ""
    for part in parts:
        for piece in _fit(part, max_chars) if len(part) > max_chars else (part,):
            if not current:
                current = piece
            elif len(current) + len(separator) + len(piece) <= max_chars:
                current += separator + piece
            else:
                yield current
                current = piece
    if current:
        yield current
