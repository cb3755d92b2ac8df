"""The metrics database at scale: KPI queries over 100,000 runs and 1,000,000 steps.

Synthesises a year of nightly experiments straight into a ``MetricsStore`` DuckDB file --
365 nights x 3 configurations x 2 models = 2,190 experiments, 100,000 runs between them and
10 tool steps a run (1,000,000 steps) -- with bulk inserts from pandas, then times what the
lab and the report ask of it, each the median of ``--repeats`` runs after one untimed one:

* ``kpis()``: the ``kpis`` view over every experiment;
* ``kpis(suite, label="nightly")``: as ``nightly`` reads it for SLOs;
* ``benchmark_table``: the article's table for the latest night's six experiments;
* ``nightly_history``: the report's trends, every finished nightly experiment of the year;
* a tool breakdown over all 1,000,000 steps, and one experiment's steps.

The rows are made up (seeded numpy draws), shaped like the lab's own: the point is the
number of rows, not their values.

    .venv/bin/python benchmarks/metrics_scale.py
    .venv/bin/python benchmarks/metrics_scale.py --runs 20000 --steps-per-run 5 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from agentlab.lab.metrics import open_metrics
from agentlab.lab.metrics.store import RUN_COLUMNS
from agentlab.lab.metrics.table import benchmark_table
from agentlab.lab.nightly import NIGHTLY, nightly_history

CONFIGS = ("chat_rag", "single", "multi")
MODELS = ("sim-large", "sim-small")
TOOLS = (
    "lookup_stock",
    "create_purchase_order",
    "send_email",
    "search_kb",
    "update_ticket",
    "create_ticket",
)
FIRST_NIGHT = datetime(2025, 11, 27, 2, 0, tzinfo=UTC)


def experiments_frame(nights: int) -> pd.DataFrame:
    """One nightly experiment per configuration x model, every night for ``nights`` nights."""
    rows = []
    for night in range(nights):
        started = FIRST_NIGHT + timedelta(days=night)
        for c, config in enumerate(CONFIGS):
            for m, model in enumerate(MODELS):
                at = started + timedelta(minutes=10 * (2 * c + m))
                rows.append(
                    {
                        "experiment_id": f"exp-{night:04d}{c}{m}",
                        "suite": "helpdesk",
                        "config": config,
                        "model": model,
                        "mode": "replay",
                        "code_version": f"{night * 7919 % 65536:04x}",
                        "repeats": 1,
                        "seed": 0,
                        "baseline_model": "sim-large",
                        "label": NIGHTLY,
                        "started_at": at,
                        "finished_at": at + timedelta(minutes=8),
                    }
                )
    return pd.DataFrame(rows)


def runs_frame(experiments: pd.DataFrame, runs: int, rng: np.random.Generator) -> pd.DataFrame:
    """``runs`` graded runs spread evenly over the experiments, every RunResult column set."""
    owner = np.arange(runs) % len(experiments)
    exp = experiments.iloc[owner].reset_index(drop=True)
    per_exp = np.arange(runs) // len(experiments)
    n = runs
    success = rng.random(n) < 0.84
    frame = pd.DataFrame(
        {
            "experiment_id": exp["experiment_id"],
            "suite": exp["suite"],
            "config": exp["config"],
            "model": exp["model"],
            "mode": exp["mode"],
            "task_id": [f"task-{i:03d}" for i in per_exp],
            "kind": rng.choice(["read", "ticket", "purchase_order", "mail", "refuse"], n),
            "repetition": np.zeros(n, dtype=np.int64),
            "run_id": [f"run-{i:08d}" for i in range(n)],
            "status": np.where(success, "succeeded", "failed"),
            "answer": "done",
            "success": success,
            "checks": "[]",
            "failure_cause": np.where(success, None, "wrong_answer"),
            "latency_ms": rng.lognormal(np.log(9000), 0.5, n),
            "model_calls": rng.integers(1, 6, n),
            "prompt_tokens": rng.integers(1000, 9000, n),
            "completion_tokens": rng.integers(50, 600, n),
            "cost_usd": rng.gamma(2.0, 0.01, n),
            "tool_cost_usd": np.zeros(n),
            "tool_calls": np.full(n, 10, dtype=np.int64),
            "external_calls": rng.integers(0, 4, n),
            "dry_runs": rng.integers(0, 2, n),
            "blocked_calls": (rng.random(n) < 0.03).astype(np.int64),
            "tool_failures": (rng.random(n) < 0.05).astype(np.int64),
            "forbidden_effects": np.zeros(n, dtype=np.int64),
            "injections_detected": (rng.random(n) < 0.02).astype(np.int64),
            "dlp_detections": np.zeros(n, dtype=np.int64),
            "exfiltrations_blocked": np.zeros(n, dtype=np.int64),
            "rework": rng.random(n) < 0.05,
            "reviews": rng.integers(0, 2, n),
            "side_effects": "[]",
            "divergences": "[]",
            "world_diff": "{}",
            "error": None,
            "recorded_success": success,
        }
    )
    missing = set(RUN_COLUMNS) - set(frame.columns)
    if missing:
        raise SystemExit(f"RunResult has fields this benchmark does not fill: {sorted(missing)}")
    return frame[list(RUN_COLUMNS)]


def steps_frame(runs: pd.DataFrame, per_run: int, rng: np.random.Generator) -> pd.DataFrame:
    """``per_run`` tool steps for every run."""
    n = len(runs) * per_run
    repeat = np.repeat(np.arange(len(runs)), per_run)
    source = runs.iloc[repeat].reset_index(drop=True)
    tools = rng.choice(TOOLS, n)
    ok = rng.random(n) < 0.95
    return pd.DataFrame(
        {
            "experiment_id": source["experiment_id"],
            "task_id": source["task_id"],
            "repetition": source["repetition"],
            "run_id": source["run_id"],
            "step_id": [f"step-{i:09d}" for i in range(n)],
            "position": np.tile(np.arange(per_run), len(runs)),
            "tool": tools,
            "side_effect": np.where(np.isin(tools, TOOLS[1:3]), "write", "read"),
            "status": np.where(ok, "committed", "failed"),
            "attempts": rng.integers(1, 3, n),
            "error_code": np.where(ok, None, "TOOL_TIMEOUT"),
            "approver": None,
            "approved_by": None,
            "rejected_by": None,
            "reworked": rng.random(n) < 0.02,
            "has_dry_run": rng.random(n) < 0.3,
            "is_preview_only": np.zeros(n, dtype=bool),
            "latency_ms": rng.lognormal(np.log(300), 0.4, n),
        }
    )


def fill(path: Path, *, runs: int, steps_per_run: int, nights: int, seed: int) -> float:
    """Create the store at ``path`` and bulk-insert the synthetic rows; the seconds it took."""
    rng = np.random.default_rng(seed)
    began = time.perf_counter()
    with open_metrics(path):
        pass  # the schema, migrations and the kpis view, as agentlab makes them
    experiments = experiments_frame(nights)
    run_rows = runs_frame(experiments, runs, rng)
    step_rows = steps_frame(run_rows, steps_per_run, rng)
    conn = duckdb.connect(str(path))
    try:
        conn.execute("SET TimeZone = 'UTC'")
        for table, frame in (
            ("experiments", experiments),
            ("runs", run_rows),
            ("steps", step_rows),
        ):
            conn.register("frame", frame)
            names = ", ".join(f'"{name}"' for name in frame.columns)
            conn.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM frame")
            conn.unregister("frame")
    finally:
        conn.close()
    return time.perf_counter() - began


def timed(call: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """Median and slowest milliseconds of ``repeats`` calls after one untimed; the last result."""
    result = call()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        result = call()
        times.append(1000 * (time.perf_counter() - began))
    return statistics.median(times), max(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--steps-per-run", type=int, default=10)
    parser.add_argument("--nights", type=int, default=365)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    console = Console(width=120)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "lab.duckdb"
        fill_s = fill(
            path,
            runs=args.runs,
            steps_per_run=args.steps_per_run,
            nights=args.nights,
            seed=args.seed,
        )
        size_mb = path.stat().st_size / 1e6
        with open_metrics(path) as store:
            counts = store.sql(
                "SELECT (SELECT count(*) FROM experiments) AS experiments, "
                "(SELECT count(*) FROM runs) AS runs, (SELECT count(*) FROM steps) AS steps"
            ).iloc[0]
            latest = store.sql(
                "SELECT experiment_id FROM experiments "
                "WHERE started_at::DATE = (SELECT max(started_at)::DATE FROM experiments)"
            )["experiment_id"].tolist()
            one = latest[0]
            queries: list[tuple[str, Callable[[], Any]]] = [
                ("kpis(), every experiment", store.kpis),
                (
                    "kpis(suite, label='nightly')",
                    lambda: store.kpis(suite="helpdesk", label=NIGHTLY),
                ),
                (
                    "benchmark_table(kpis(latest night))",
                    lambda: benchmark_table(store.kpis(latest)),
                ),
                ("nightly_history(store, 'helpdesk')", lambda: nightly_history(store, "helpdesk")),
                (
                    "tool breakdown over all steps",
                    lambda: store.sql(
                        "SELECT tool, count(*) AS steps, avg(latency_ms) AS latency_ms, "
                        "avg((status <> 'committed')::INTEGER) AS failure_rate, "
                        "avg(attempts) AS attempts FROM steps GROUP BY tool ORDER BY tool"
                    ),
                ),
                ("steps(one experiment)", lambda: store.steps(one)),
                ("runs(one experiment)", lambda: store.runs(one)),
            ]
            table = Table(
                title=(
                    f"metrics at scale: {counts['experiments']:,} experiments, "
                    f"{counts['runs']:,} runs, {counts['steps']:,} steps "
                    f"(median of {args.repeats})"
                )
            )
            for column in ("query", "rows", "median ms", "slowest ms"):
                table.add_column(column, justify="right")
            for name, call in queries:
                median, slowest, result = timed(call, args.repeats)
                table.add_row(name, f"{len(result):,}", f"{median:.1f}", f"{slowest:.1f}")
        console.print(table)
        console.print(f"bulk load {fill_s:.1f} s, file {size_mb:.0f} MB")


if __name__ == "__main__":
    main()
