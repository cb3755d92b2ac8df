"""Knowledge: documents, chunks, embedders, the VectorIndex port, ABAC, the Retriever.

The long-term memory tier of the article (5.1): policies, how-tos, design documents. Every
chunk carries a data class; the actor's :class:`AccessScope` filters in the index's query, so
a chunk the actor may not read never leaves the backend. Backends (DuckDB, pgvector) and the
heavier embedders live in ``agentlab.adapters``; see docs/rag.md.
"""

from agentlab.rag.access import AccessScope
from agentlab.rag.chunking import DEFAULT_MAX_CHARS, chunk_document, chunk_text
from agentlab.rag.corpus import HELPDESK_KB, FrontMatter, load_corpus, load_document
from agentlab.rag.documents import (
    DEFAULT_DATA_CLASS,
    STANDARD_DATA_CLASSES,
    Chunk,
    DataClass,
    Document,
)
from agentlab.rag.embedders import Embedder, HashingEmbedder
from agentlab.rag.index import Hit, SearchTuning, VectorIndex, check_embeddings, check_query
from agentlab.rag.retriever import UNTRUSTED_NOTICE, Retriever, render_hits_for_prompt

__all__ = [
    "DEFAULT_DATA_CLASS",
    "DEFAULT_MAX_CHARS",
    "HELPDESK_KB",
    "STANDARD_DATA_CLASSES",
    "UNTRUSTED_NOTICE",
    "AccessScope",
    "Chunk",
    "DataClass",
    "Document",
    "Embedder",
    "FrontMatter",
    "HashingEmbedder",
    "Hit",
    "Retriever",
    "SearchTuning",
    "VectorIndex",
    "check_embeddings",
    "check_query",
    "chunk_document",
    "chunk_text",
    "load_corpus",
    "load_document",
    "render_hits_for_prompt",
]
