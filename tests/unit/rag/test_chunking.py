from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentlab.rag import Document, chunk_document, chunk_text

words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30)
texts = st.lists(
    st.one_of(words, st.sampled_from(["\n\n", "\n", "# Heading\n", ". ", "  ", "\r\n\r\n"])),
    max_size=120,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(text=texts, max_chars=st.integers(20, 400))
def test_no_text_is_lost_or_repeated_and_no_chunk_is_too_long(text: str, max_chars: int) -> None:
    chunks = chunk_text(text, max_chars=max_chars)
    assert all(0 < len(c) <= max_chars for c in chunks)
    # The same characters in the same order, whitespace aside (a word longer than max_chars
    # is cut, so compare characters, not words).
    assert "".join("".join(chunks).split()) == "".join(text.split())
    if all(len(word) <= max_chars for word in text.split()):
        assert " ".join(chunks).split() == text.split()
    assert chunk_text(text, max_chars=max_chars) == chunks  # deterministic


def test_a_heading_opens_a_chunk_and_short_paragraphs_are_packed() -> None:
    text = "# Intro\nshort one.\n\nshort two.\n\n## Steps\n\n1. do this\n2. do that"
    assert chunk_text(text, max_chars=200) == [
        "# Intro\n\nshort one.\n\nshort two.",
        "## Steps\n\n1. do this\n2. do that",
    ]


def test_a_long_paragraph_is_cut_at_sentence_ends_then_between_words() -> None:
    sentence = "The VPN client reconnects after a drop. "
    chunks = chunk_text(sentence * 10, max_chars=100)
    assert all(c.endswith("drop.") for c in chunks)
    assert chunk_text("word " * 50, max_chars=24)[0] == "word word word word word"
    assert chunk_text("x" * 50, max_chars=20) == ["x" * 20, "x" * 20, "x" * 10]


def test_a_blank_text_has_no_chunks() -> None:
    assert chunk_text(" \n\n \t") == []


def test_max_chars_below_twenty_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 20"):
        chunk_text("text", max_chars=5)


def test_chunks_carry_the_documents_class_attributes_and_retention() -> None:
    expires = datetime(2027, 1, 1, tzinfo=UTC)
    document = Document(
        doc_id="KB-HR-900",
        title="Salary bands",
        content="# Salary bands\n\n" + "Band L1 pays well. " * 40,
        data_class="confidential",
        department="hr",
        tags=("salary",),
        expires_at=expires,
    )
    chunks = chunk_document(document, max_chars=200)
    assert [c.chunk_no for c in chunks] == list(range(len(chunks)))
    assert len(chunks) > 2
    for c in chunks:
        assert (c.doc_id, c.title, c.data_class) == ("KB-HR-900", "Salary bands", "confidential")
        assert c.attributes == {"department": ("hr",), "tags": ("salary",)}
        assert c.expires_at == expires


def test_an_unclassified_document_is_internal_as_in_the_article() -> None:
    document = Document(doc_id="D", title="T", content="text")
    assert document.data_class == "internal"
    assert document.attributes() == {}
