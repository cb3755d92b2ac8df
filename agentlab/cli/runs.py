"""``agentlab runs``: list the runs in a store and show one run's events."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from agentlab.adapters import open_store
from agentlab.cli._console import console
from agentlab.cli._options import StoreUrlOption, resolve_store_url
from agentlab.cli._render import state_table, timeline_table
from agentlab.core.errors import ConfigError
from agentlab.core.ids import RunId
from agentlab.store.projection import project_run
from agentlab.store.timeline import timeline

app = typer.Typer(help="Look at the runs in an event store.", no_args_is_help=True)


@app.command(name="list")
def list_runs(store: StoreUrlOption = None) -> None:
    """List every run in the store with its status, in the order they started."""
    with open_store(resolve_store_url(store), must_exist=True) as event_store:
        states = [project_run(event_store.read(run_id)) for run_id in event_store.run_ids()]
    table = Table(title=f"{len(states)} runs", title_justify="left")
    for column in ("run", "started", "actor", "status", "steps", "task"):
        table.add_column(column, overflow="fold")
    for state in states:
        run = state.run
        table.add_row(
            run.run_id,
            run.started_at.isoformat(timespec="seconds"),
            run.actor,
            state.status,
            str(len(state.steps)),
            run.task,
        )
    console.print(table)


@app.command(name="show")
def show_run(
    run_id: Annotated[str, typer.Argument(help="The run's id, as `agentlab runs list` prints it.")],
    store: StoreUrlOption = None,
) -> None:
    """Print one run's timeline and the state of its steps."""
    with open_store(resolve_store_url(store), must_exist=True) as event_store:
        events = event_store.read(RunId(run_id))
        if not events:
            raise ConfigError(
                f"no run {run_id!r} in {event_store.url}",
                hint="list the runs with `agentlab runs list`",
            )
    console.print(timeline_table(timeline(events), title=f"timeline of {run_id}"))
    console.print(state_table(project_run(events)))
