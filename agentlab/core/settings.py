"""Settings from the environment (``AGENTLAB_*``) and ``.env``.

Only entry points (the CLI, the gateway, notebook helpers) read settings; everything below
them takes plain arguments, so a library call never depends on the caller's environment.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """agentlab's settings; each field can be set as ``AGENTLAB_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="AGENTLAB_", env_file=".env", extra="ignore", use_attribute_docstrings=True
    )

    home: Path = Field(default=Path(".agentlab"))
    """Where runs, metrics and reports are kept when no URL says otherwise."""
    store_url: str | None = None
    """Event store URL: ``duckdb:///path/runs.duckdb`` (default: ``<home>/runs.duckdb``),
    ``postgresql://user@host/db`` or ``memory://``."""

    audit_url: str | None = None
    """Audit log URL, in the same forms (default: ``<home>/audit.duckdb``)."""

    conversation_url: str | None = None
    """Conversation log URL (default: ``<home>/conversations.duckdb``)."""
    conversation_key: SecretStr | None = None
    """Fernet key of the conversation log; default: ``<home>/conversation.key``, made on
    first use with mode 0600."""
    conversation_retention_days: int = Field(default=30, ge=1)
    """How long conversation text is kept; ``agentlab conversations purge`` enforces it."""

    model: str = "sim-large"
    """The model agents use: a simulator profile (``sim-large``, ``sim-small``) or, with
    ``model_base_url``, the name an OpenAI-compatible endpoint knows."""
    model_base_url: str | None = None
    """An OpenAI-compatible endpoint (``https://.../v1``); None runs the bundled simulator
    in-process, with no network and no key."""
    model_api_key_env: str = "OPENAI_API_KEY"
    """The environment variable that holds the endpoint's key; never put the key itself in
    a file of the repository."""
    world_url: str | None = None
    """Where the tools' systems are (``agentlab world serve``); None runs the sandbox world
    in-process."""
    checkpoint_url: str | None = None
    """Where agent graphs are checkpointed (default: ``<home>/checkpoints.duckdb``), so a
    run waiting for approval survives a restart."""

    def resolved_checkpoint_url(self) -> str:
        """The checkpointer URL, defaulting to its own DuckDB file in ``home``."""
        if self.checkpoint_url:
            return self.checkpoint_url
        return f"duckdb://{(self.home / 'checkpoints.duckdb').resolve()}"

    def resolved_store_url(self) -> str:
        """The store URL, defaulting to a DuckDB file in ``home``."""
        if self.store_url:
            return self.store_url
        return f"duckdb://{(self.home / 'runs.duckdb').resolve()}"

    def resolved_audit_url(self) -> str:
        """The audit log URL, defaulting to its own DuckDB file in ``home``."""
        if self.audit_url:
            return self.audit_url
        return f"duckdb://{(self.home / 'audit.duckdb').resolve()}"

    def resolved_conversation_url(self) -> str:
        """The conversation log URL, defaulting to its own DuckDB file in ``home``."""
        if self.conversation_url:
            return self.conversation_url
        return f"duckdb://{(self.home / 'conversations.duckdb').resolve()}"
