"""Runs per second replaying a golden-run suite from its cassettes.

Replays every configuration x simulator profile of the suite (from the shipped cassettes, all
graders and the metrics database included), ``--rounds`` times, and prints runs per second
per round and overall, with where the time of one replayed run goes (cProfile's top entries
with ``--profile``).

    .venv/bin/python benchmarks/replay.py
    .venv/bin/python benchmarks/replay.py --rounds 3 --concurrency 8 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from agentlab.lab.metrics import open_metrics
from agentlab.lab.runner import run_suite
from agentlab.lab.suite import load_suite


def replay_once(suite_name: str, metrics_path: Path, concurrency: int) -> int:
    """Replay every configuration x model of the suite once; the number of runs."""
    suite = load_suite(suite_name)
    runs = 0
    with open_metrics(metrics_path) as metrics:
        for model in suite.models:
            for config in suite.configs:
                result = run_suite(
                    suite,
                    config=config,
                    model=model,
                    mode="replay",
                    metrics=metrics,
                    concurrency=concurrency,
                    resume=False,
                )
                errors = [r for r in result.results if r.error]
                if errors:
                    raise SystemExit(f"{len(errors)} replay error(s), first: {errors[0].error}")
                runs += len(result.results)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="helpdesk")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top entries")
    args = parser.parse_args()
    console = Console()
    table = Table(title=f"replaying {args.suite} (all configurations x simulator profiles)")
    for column in ("round", "runs", "seconds", "runs/s"):
        table.add_column(column, justify="right")
    total_runs, total_s = 0, 0.0
    with tempfile.TemporaryDirectory() as folder:
        metrics_path = Path(folder) / "lab.duckdb"
        profiler = cProfile.Profile() if args.profile else None
        for round_no in range(1, args.rounds + 1):
            started = time.perf_counter()
            if profiler is not None:
                profiler.enable()
            runs = replay_once(args.suite, metrics_path, args.concurrency)
            if profiler is not None:
                profiler.disable()
            seconds = time.perf_counter() - started
            total_runs, total_s = total_runs + runs, total_s + seconds
            table.add_row(str(round_no), str(runs), f"{seconds:.2f}", f"{runs / seconds:.1f}")
    table.add_row("all", str(total_runs), f"{total_s:.2f}", f"{total_runs / total_s:.1f}")
    console.print(table)
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
