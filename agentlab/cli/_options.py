"""Options shared by several verbs, each with its AGENTLAB_* twin."""

from __future__ import annotations

from typing import Annotated

import typer

from agentlab.core.settings import Settings
from agentlab.store.conversation import load_or_create_conversation_key

StoreUrlOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="AGENTLAB_STORE_URL",
        help="Event store URL (duckdb:///path, postgresql://..., memory://). "
        "Default: <AGENTLAB_HOME>/runs.duckdb.",
        show_default=False,
    ),
]


def resolve_store_url(store: str | None) -> str:
    """The URL given on the command line, or the one the settings make."""
    return store or Settings().resolved_store_url()


AuditUrlOption = Annotated[
    str | None,
    typer.Option(
        "--audit",
        envvar="AGENTLAB_AUDIT_URL",
        help="Audit log URL (duckdb:///path, postgresql://..., memory://). "
        "Default: <AGENTLAB_HOME>/audit.duckdb.",
        show_default=False,
    ),
]


def resolve_audit_url(audit: str | None) -> str:
    """The audit log URL given on the command line, or the one the settings make."""
    return audit or Settings().resolved_audit_url()


def conversation_key(settings: Settings) -> bytes:
    """The conversation log's key: the setting if given, else the key file in the home."""
    secret = settings.conversation_key
    return load_or_create_conversation_key(
        settings.home, secret.get_secret_value() if secret else None
    )
