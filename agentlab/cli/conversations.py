"""``agentlab conversations purge``: enforce the conversation log's retention, or erase a run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from agentlab.adapters import open_conversation_log
from agentlab.cli._console import console
from agentlab.cli._options import conversation_key
from agentlab.core.errors import ConfigError
from agentlab.core.settings import Settings

app = typer.Typer(help="The encrypted conversation log.", no_args_is_help=True)


@app.command(name="purge")
def purge(
    older_than_days: Annotated[
        int | None,
        typer.Option(help="Delete turns older than this (default: the retention setting).", min=0),
    ] = None,
    run: Annotated[str | None, typer.Option("--run", help="Delete all of one run's turns.")] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--conversations",
            "--url",
            envvar="AGENTLAB_CONVERSATION_URL",
            show_default=False,
            help="Conversation log URL; default <AGENTLAB_HOME>/conversations.duckdb.",
        ),
    ] = None,
) -> None:
    """Delete conversation text for good: by age (retention), or one run (an erasure request)."""
    settings = Settings()
    if run is not None and older_than_days is not None:
        raise ConfigError("give --run or --older-than-days, not both")
    cutoff = None
    if run is None:
        days = settings.conversation_retention_days if older_than_days is None else older_than_days
        cutoff = datetime.now(UTC) - timedelta(days=days)
    key = conversation_key(settings)
    with open_conversation_log(url or settings.resolved_conversation_url(), key=key) as log:
        removed = log.purge(older_than=cutoff, run_id=run)
        where = log.url
    scope = f"of run {run}" if run else f"older than {cutoff:%Y-%m-%d %H:%M} UTC"
    console.print(f"{where}: deleted {removed} turns {scope}")
