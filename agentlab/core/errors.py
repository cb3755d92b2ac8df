"""Errors, drawn where they live.

Errors have three audiences::

    * AgentlabError                 code + message + hint; docs/errors/<CODE>.md explains each
        + ConfigError               a file, setting or URL is wrong: file:line and the fix
        + MissingDependency         an optional extra is not installed: the install line
        + PolicyViolation           policy refused an action; recorded, graded, never retried
        + BackendError              a store, index or endpoint failed; safe to retry
        + StoreError                the event store refused a write or a read
            + DuplicateEvent        (run_id, seq) is taken: another writer got there first
            + DuplicateIdempotencyKey  a side effect with this key is already committed
            + InvalidEvent          not an event, or a stored row that no longer parses
            + StoreClosed           the store was closed; open a new one
            + SchemaTooNew          the store was written by a newer agentlab
            + ConversationKeyMismatch  the conversation log was encrypted with another key
            + AuditChainBroken      the audit log's hash chain is broken: a record was changed
        + ModelError                a model endpoint failed or answered in an unreadable form
            + ModelRateLimited      429s went on past the retries the budget allows
        + BudgetExhausted           a run hit a stop condition: steps, cost or wall time
        + VectorIndexError          the vector index refused a write or a read
            + EmbeddingMismatch     the vectors are not the index's embedder's or dimension
            + DuplicateChunk        (doc_id, chunk_no) is indexed already
            + IndexClosed           the index was closed; open a new one
    * ToolRejected                  not a failure: its message goes back to the model

Messages never carry secrets: they name files, fields, runs and keys, not values of credentials.
"""

from __future__ import annotations

from typing import ClassVar


class AgentlabError(Exception):
    """Base of every error agentlab raises on purpose.

    Args:
        message: What happened, naming the file, field, run or key concerned.
        hint: What the user can do next; printed on its own line.
    """

    code: ClassVar[str] = "AGENTLAB"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        text = f"[{self.code}] {message}"
        if hint:
            text += f"\n  hint: {hint}"
        super().__init__(text)

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuilt from its parts, so an error raised in a worker process reads the same
        # in the caller (the default would pass the formatted text as the message).
        return (_rebuild, (type(self), self.message, self.hint))

    @classmethod
    def docs_page(cls) -> str:
        """Path of the page that explains this error, relative to the repository root."""
        return f"docs/errors/{cls.code}.md"


def _rebuild(kind: type[AgentlabError], message: str, hint: str | None) -> AgentlabError:
    return kind(message, hint=hint)


class ConfigError(AgentlabError):
    """A configuration file, setting or URL is wrong; the message names where and why."""

    code = "CONFIG"


class MissingDependency(AgentlabError):
    """An optional dependency is not installed; the hint is the install line."""

    code = "MISSING_DEPENDENCY"


class PolicyViolation(AgentlabError):
    """Policy refused an action. Recorded as an event and graded; never retried."""

    code = "POLICY_VIOLATION"


class BackendError(AgentlabError):
    """A store, index or endpoint failed for a reason outside agentlab; safe to retry."""

    code = "BACKEND"


class StoreError(AgentlabError):
    """The event store refused a write or a read; nothing of the refused batch was written."""

    code = "STORE"


class DuplicateEvent(StoreError):
    """An event with this (run_id, seq) exists already; the whole batch was refused."""

    code = "DUPLICATE_EVENT"


class DuplicateIdempotencyKey(StoreError):
    """A side effect with this idempotency key is committed already; it must not happen twice."""

    code = "DUPLICATE_IDEMPOTENCY_KEY"


class InvalidEvent(StoreError):
    """Something that is not a valid event was appended, or a stored row no longer parses."""

    code = "INVALID_EVENT"


class StoreClosed(StoreError):
    """The store was closed and cannot be used any more."""

    code = "STORE_CLOSED"


class SchemaTooNew(StoreError):
    """The store's schema was written by a newer agentlab than this one."""

    code = "SCHEMA_TOO_NEW"


class ConversationKeyMismatch(StoreError):
    """The conversation log was encrypted with another key than the one configured."""

    code = "CONVERSATION_KEY_MISMATCH"


class ToolRejected(Exception):
    """Not a failure: the tool declined the call, and the message goes back to the model.

    The run goes on; the model reads the message as the tool's result and may try again.
    """


class VectorIndexError(AgentlabError):
    """The vector index refused a write or a read; nothing of a refused batch was written."""

    code = "VECTOR_INDEX"


class EmbeddingMismatch(VectorIndexError):
    """The vectors do not fit the index: another dimension, or another embedder's vectors."""

    code = "EMBEDDING_MISMATCH"


class DuplicateChunk(VectorIndexError):
    """A chunk with this (doc_id, chunk_no) is in the index already; the batch was refused."""

    code = "DUPLICATE_CHUNK"


class IndexClosed(VectorIndexError):
    """The vector index was closed and cannot be used any more."""

    code = "INDEX_CLOSED"


class AuditChainBroken(StoreError):
    """The audit log's hash chain is broken: a record was edited, removed or reordered.

    Raised by what must not go on over a tampered log; ``agentlab audit verify`` names the
    first bad record.
    """

    code = "AUDIT_CHAIN_BROKEN"


class ModelError(BackendError):
    """A model endpoint failed, or answered in a form the model layer cannot read."""

    code = "MODEL"


class ModelRateLimited(ModelError):
    """The endpoint kept answering 429 after the retries the budget allows."""

    code = "MODEL_RATE_LIMITED"


class BudgetExhausted(AgentlabError):
    """A run reached one of its stop conditions: steps, cost or wall time."""

    code = "BUDGET_EXHAUSTED"


class CassetteError(AgentlabError):
    """A cassette is missing, unreadable, or not a cassette.

    The message names the file, and the line or interaction at fault.
    """

    code = "CASSETTE"
