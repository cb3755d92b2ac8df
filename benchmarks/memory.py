"""Peak memory (RSS) of a 1,000-run replay and of the 500-run live benchmark.

Each measurement runs in a child process of its own, so its peak is its own: the parent
reads the child's ``ru_maxrss`` from ``os.wait4``. The rows:

* baseline: the interpreter with agentlab's lab imported, doing nothing;
* replay, 1 round: the helpdesk suite, 84 tasks x 3 configurations x 2 simulator profiles =
  504 runs, from the shipped cassettes, graders and the metrics database included;
* replay, 2 rounds: the same twice into one database, 1,008 runs (what grows with the
  number of runs shows as the difference between the two rows);
* live, 500 runs: ``live_throughput.py``'s scenario with the article's caps and LLM budget
  (500 runs at once through one agent, time compressed 8x).

    .venv/bin/python benchmarks/memory.py
    .venv/bin/python benchmarks/memory.py --skip-live
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent


def child_baseline() -> dict[str, object]:
    """Import what the replay imports, and nothing more."""
    import agentlab.lab.runner  # noqa: F401 -- the import is what is measured

    return {"runs": 0}


def child_replay(rounds: int) -> dict[str, object]:
    """Replay every configuration x model of the helpdesk suite ``rounds`` times."""
    from agentlab.lab.metrics import open_metrics
    from agentlab.lab.runner import run_suite
    from agentlab.lab.suite import load_suite

    suite = load_suite("helpdesk")
    runs = 0
    with tempfile.TemporaryDirectory() as folder, open_metrics(Path(folder) / "lab.duckdb") as m:
        for _ in range(rounds):
            for model in suite.models:
                for config in suite.configs:
                    result = run_suite(
                        suite, config=config, model=model, mode="replay", metrics=m, resume=False
                    )
                    errors = [r for r in result.results if r.error]
                    if errors:
                        raise SystemExit(f"{len(errors)} replay error(s): {errors[0].error}")
                    runs += len(result.results)
    return {"runs": runs}


def child_live(runs: int, time_scale: float) -> dict[str, object]:
    """The live benchmark's budget scenario."""
    sys.path.insert(0, str(HERE))
    from live_throughput import measure

    out = asyncio.run(measure(runs, time_scale, "sim-large", use_budget=True))
    return {"runs": out.runs, "succeeded": out.succeeded}


def measure_child(arguments: list[str]) -> tuple[dict[str, object], float, float]:
    """Run this script as a child with ``arguments``; its result, peak RSS in MB, seconds."""
    began = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--child", *arguments],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - began
    if child.returncode != 0:
        raise SystemExit(f"the child {arguments} failed with exit code {child.returncode}")
    result = json.loads(output.strip().splitlines()[-1])
    return result, usage.ru_maxrss / 1024, seconds  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--skip-live", action="store_true", help="only the replays")
    parser.add_argument("--live-runs", type=int, default=500)
    parser.add_argument("--time-scale", type=float, default=8.0)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "baseline":
            result = child_baseline()
        elif kind == "replay":
            result = child_replay(int(rest[0]))
        else:
            result = child_live(int(rest[0]), float(rest[1]))
        print(json.dumps(result))
        return

    measurements = [
        ("baseline (agentlab.lab imported)", ["baseline"]),
        ("replay, 1 round (504 runs)", ["replay", "1"]),
        ("replay, 2 rounds (1,008 runs)", ["replay", "2"]),
    ]
    if not args.skip_live:
        measurements.append(
            (
                f"live, {args.live_runs} runs at once (compressed {args.time_scale:g}x)",
                ["live", str(args.live_runs), str(args.time_scale)],
            )
        )
    table = Table(title="peak RSS, each in a process of its own")
    for column in ("measurement", "runs", "seconds", "peak RSS MB"):
        table.add_column(column, justify="right")
    for label, arguments in measurements:
        result, rss_mb, seconds = measure_child(arguments)
        table.add_row(label, str(result["runs"]), f"{seconds:.1f}", f"{rss_mb:.0f}")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
