"""Rich renderings of store data for the terminal."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from agentlab.store.projection import RunState
from agentlab.store.timeline import TimelineRow


def timeline_table(rows: Sequence[TimelineRow], *, title: str) -> Table:
    """A table of a run's events, one row each."""
    table = Table(title=title, title_justify="left")
    for column in ("seq", "at", "event", "step", "detail"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            str(row.seq),
            row.at.strftime("%H:%M:%S.%f")[:-3],
            row.kind,
            row.step_id or "",
            row.detail,
        )
    return table


def state_table(state: RunState) -> Table:
    """A table of where each step of a run stands."""
    table = Table(title=f"run {state.run.run_id}: {state.status}", title_justify="left")
    for column in ("step", "tool", "status", "attempts", "idempotency key"):
        table.add_column(column)
    for entry in state.steps.values():
        table.add_row(
            entry.step.step_id,
            entry.step.tool,
            entry.status,
            str(entry.attempts),
            entry.step.idempotency_key or "-",
        )
    return table
