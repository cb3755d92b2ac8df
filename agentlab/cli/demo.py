"""``agentlab demo``: record the scripted purchase-order run and show what the store holds."""

from __future__ import annotations

from agentlab.adapters import open_store
from agentlab.cli._console import console
from agentlab.cli._options import StoreUrlOption, resolve_store_url
from agentlab.cli._render import state_table, timeline_table
from agentlab.lab.demo import record_demo_run
from agentlab.store.timeline import timeline


def demo(store: StoreUrlOption = None) -> None:
    """Record a scripted run (crash, resume, refused duplicate commit) and print its timeline.

    No model and no tools are involved: this shows the Run/Step/Artifact event store.
    """
    url = resolve_store_url(store)
    with open_store(url) as event_store:
        result = record_demo_run(event_store)
        rows = timeline(event_store.read(result.run_id))
    console.print(f"scripted demo run (no model, no tools) recorded in [bold]{url}[/bold]\n")
    console.print(timeline_table(rows, title=f"timeline of {result.run_id}"))
    console.print(state_table(result.state))
    committed = len(result.state.committed_keys)
    console.print(
        f"resumed {result.state.times_resumed}x after the crash; "
        f"side effects committed: {committed}; "
        f"duplicate commit refused: {'yes' if result.is_duplicate_refused else 'NO'}"
    )
    if not result.is_duplicate_refused:
        raise SystemExit(1)
