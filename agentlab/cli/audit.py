"""``agentlab audit``: check the audit log's hash chain, and read its decision points."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from agentlab.adapters import open_audit_log
from agentlab.cli._console import console
from agentlab.cli._options import resolve_audit_url

app = typer.Typer(help="Verify and read the audit log of decision points.", no_args_is_help=True)

# The verbs' own copy of --audit, also spelt --url: here the audit log is the only URL.
AuditUrlOption = Annotated[
    str | None,
    typer.Option(
        "--audit",
        "--url",
        envvar="AGENTLAB_AUDIT_URL",
        help="Audit log URL (duckdb:///path, postgresql://..., memory://). "
        "Default: <AGENTLAB_HOME>/audit.duckdb.",
        show_default=False,
    ),
]


@app.command(name="verify")
def verify(audit: AuditUrlOption = None) -> None:
    """Walk the hash chain; exit 1 and name the first bad record if anything was changed."""
    with open_audit_log(resolve_audit_url(audit), must_exist=True) as log:
        check = log.verify()
        url = log.url
    if check.is_intact:
        console.print(
            f"{url}: intact, {check.checked} records; head hash {check.head_hash}\n"
            "Keep the head hash elsewhere: a chain cannot show that its last record was "
            "replaced or that records were cut off the end."
        )
        return
    console.print(
        f"[red]{url}: BROKEN at record {check.first_bad_seq}[/red] "
        f"({check.checked} records read): {check.problem}"
    )
    raise typer.Exit(1)


@app.command(name="show")
def show(
    audit: AuditUrlOption = None,
    run: Annotated[str | None, typer.Option("--run", help="Only this run's records.")] = None,
    limit: Annotated[int, typer.Option(help="Show the last N records.", min=1)] = 50,
) -> None:
    """Print the latest decision points: who, what, which tool, whose approval, which key."""
    with open_audit_log(resolve_audit_url(audit), must_exist=True) as log:
        records = log.read(run_id=run)[-limit:]
    table = Table(title=f"{len(records)} audit records", title_justify="left")
    for column in ("seq", "at", "actor", "decision", "tool", "approval", "key", "ms", "detail"):
        table.add_column(column, overflow="fold")
    for record in records:
        detail = record.reason or json.dumps(record.target_resources, ensure_ascii=False)
        table.add_row(
            str(record.seq),
            record.at.isoformat(timespec="seconds"),
            record.actor,
            record.decision,
            record.tool or "",
            record.approval or "",
            record.idempotency_key or "",
            "" if record.latency_ms is None else f"{record.latency_ms:.0f}",
            detail[:120],
        )
    console.print(table)
