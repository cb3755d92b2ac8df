"""``agentlab approvals``: the commits waiting for a person, and the person's answer."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from agentlab.adapters import open_store
from agentlab.cli._console import console
from agentlab.cli._options import StoreUrlOption, resolve_store_url
from agentlab.core.ids import RunId, StepId
from agentlab.runtime import ApprovalQueue

app = typer.Typer(
    help="List and answer the approvals that wait for a person.", no_args_is_help=True
)

RunArg = Annotated[str, typer.Argument(help="The run's id.")]
StepArg = Annotated[str, typer.Argument(help="The step's id, as `agentlab approvals list` shows.")]
ReviewerOption = Annotated[str, typer.Option("--reviewer", help="Your name, for the audit log.")]


@app.command(name="list")
def list_pending(store: StoreUrlOption = None) -> None:
    """List every step whose dry-run is done and which waits for a decision."""
    with open_store(resolve_store_url(store), must_exist=True) as event_store:
        pending = ApprovalQueue(event_store).pending()
    table = Table(title=f"{len(pending)} waiting for approval", title_justify="left")
    for column in ("run", "step", "actor", "tool", "would do"):
        table.add_column(column, overflow="fold")
    for item in pending:
        preview = json.dumps(item.preview, ensure_ascii=False)
        table.add_row(item.run_id, item.step_id, item.actor, item.tool, preview[:200])
    console.print(table)


@app.command(name="approve")
def approve(
    run_id: RunArg,
    step_id: StepArg,
    reviewer: ReviewerOption,
    reason: Annotated[str, typer.Option(help="Why; kept in the run and the audit log.")] = "",
    store: StoreUrlOption = None,
) -> None:
    """Approve a waiting commit; the run commits it when it continues."""
    with open_store(resolve_store_url(store), must_exist=True) as event_store:
        ApprovalQueue(event_store).approve(
            RunId(run_id), StepId(step_id), reviewer=reviewer, reason=reason
        )
    console.print(f"approved {step_id} of {run_id} as {reviewer}")


@app.command(name="reject")
def reject(
    run_id: RunArg,
    step_id: StepArg,
    reviewer: ReviewerOption,
    reason: Annotated[str, typer.Option(help="Why; the model reads it.")],
    store: StoreUrlOption = None,
) -> None:
    """Reject a waiting commit; it will never run."""
    with open_store(resolve_store_url(store), must_exist=True) as event_store:
        ApprovalQueue(event_store).reject(
            RunId(run_id), StepId(step_id), reviewer=reviewer, reason=reason
        )
    console.print(f"rejected {step_id} of {run_id} as {reviewer}")
