"""``agentlab demo``: a scripted procurement run through the governed executor."""

from __future__ import annotations

from rich.table import Table

from agentlab.adapters import open_audit_log, open_conversation_log, open_store
from agentlab.cli._console import console
from agentlab.cli._options import (
    AuditUrlOption,
    StoreUrlOption,
    conversation_key,
    resolve_audit_url,
    resolve_store_url,
)
from agentlab.cli._render import timeline_table
from agentlab.core.settings import Settings
from agentlab.lab.demo import record_demo_run
from agentlab.store.timeline import timeline


def demo(store: StoreUrlOption = None, audit: AuditUrlOption = None) -> None:
    """Run a scripted procurement run (no model) through policy, approval and a resume.

    Shows schema validation, a retried 503, policy and human approval, an allowlist block,
    a resume from the store, and a repeated commit answered from its record.
    """
    settings = Settings()
    store_url, audit_url = resolve_store_url(store), resolve_audit_url(audit)
    key = conversation_key(settings)
    with (
        open_store(store_url) as event_store,
        open_audit_log(audit_url) as audit_log,
        open_conversation_log(settings.resolved_conversation_url(), key=key) as conversation,
    ):
        result = record_demo_run(event_store, audit=audit_log, conversation=conversation)
        rows = timeline(event_store.read(result.run_id))
    console.print(
        "[bold]scripted demo run[/bold]: a fixed plan stands in for the model "
        f"(no model, no network); events in {store_url}, audit log in {audit_url}\n"
    )
    calls = Table(title="what the executor made of each call", title_justify="left")
    for column in ("step", "tool", "outcome", "why"):
        calls.add_column(column, overflow="fold")
    for label, outcome in result.outcomes:
        calls.add_row(label, outcome.tool, outcome.status, outcome.message[:140])
    console.print(calls)
    changes = Table(title="what changed in the sandbox world", title_justify="left")
    for column in ("collection", "added", "changed", "removed"):
        changes.add_column(column)
    for name, diff in result.world_diff.items():
        changes.add_row(name, *(str(len(diff[k])) for k in ("added", "changed", "removed")))
    console.print(changes)
    console.print(timeline_table(rows, title=f"timeline of {result.run_id}"))
    check = result.audit
    chain = "intact" if check.is_intact else f"BROKEN at {check.first_bad_seq}"
    console.print(
        f"audit chain: {chain} ({check.checked} records, head {check.head_hash[:16]}); "
        f"resumed {result.state.times_resumed}x; "
        f"repeated commit answered from its record: {'yes' if result.is_repeat_replayed else 'NO'}"
    )
    if not (result.is_repeat_replayed and result.audit.is_intact):
        raise SystemExit(1)
