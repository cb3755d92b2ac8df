"""The metrics database's tables, as append-only migrations, and the ``kpis`` view.

A migration's position in :data:`MIGRATIONS` is the schema version it brings; the version
lives in ``agentlab_meta`` under :data:`SCHEMA_KEY`, the table the event store and the logs
use for theirs, so one file never confuses two components' versions.

The ``runs`` table holds every :class:`~agentlab.lab.results.RunResult` field: the migration
creates its key, and opening the store adds a column for each field the table lacks (a field
added to RunResult needs no migration; a removed one keeps its column). The ``kpis`` view is
derived, so it is replaced at every open: a file written before the conversation columns
existed gets them (NULL for its old runs, which the view reads as single-shot runs).
"""

from __future__ import annotations

SCHEMA_KEY = "metrics_schema_version"
TABLES = ("experiments", "runs", "steps", "events", "artifacts")

KPIS_VIEW = """
CREATE OR REPLACE VIEW kpis AS
SELECT
    e.experiment_id, e.suite, e.config, e.model, e.mode, e.code_version, e.repeats, e.seed,
    e.baseline_model, e.label, e.started_at, e.finished_at,
    count(r.task_id) AS runs,
    count(r.task_id) FILTER (WHERE r.status = 'error') AS errored_runs,
    avg(r.success::INTEGER) AS success_rate,
    avg(r.rework::INTEGER) AS rework_rate,
    avg(r.external_calls) AS external_calls,
    avg(r.dry_runs) AS dry_runs,
    avg(r.blocked_calls) AS blocked_calls,
    avg(r.cost_usd) AS cost_per_run,
    CASE WHEN count(r.task_id) = 0 THEN NULL
         WHEN sum(r.tool_calls) = 0 THEN 0.0
         ELSE sum(r.tool_failures) / sum(r.tool_calls) END AS tool_failure_rate,
    sum(r.blocked_calls) AS policy_blocks,
    sum(r.forbidden_effects) AS forbidden_effects,
    sum(r.blocked_calls + r.forbidden_effects) AS safety_violations,
    sum(r.injections_detected) AS injections_detected,
    sum(r.dlp_detections) AS dlp_detections,
    sum(r.exfiltrations_blocked) AS exfiltrations_blocked,
    quantile_cont(r.latency_ms, 0.5) FILTER (WHERE r.status <> 'error') AS p50_latency_ms,
    quantile_cont(r.latency_ms, 0.95) FILTER (WHERE r.status <> 'error') AS p95_latency_ms,
    avg(r.tool_calls) AS avg_tool_calls,
    avg(r.model_calls) AS avg_model_calls,
    avg(r.prompt_tokens + r.completion_tokens) AS avg_tokens,
    count(r.task_id) FILTER (WHERE r.is_multi_turn) AS multi_turn_runs,
    avg(r.success::INTEGER) FILTER (WHERE r.is_multi_turn) AS multi_turn_success_rate,
    avg(r.agent_turns) FILTER (WHERE r.is_multi_turn AND r.status <> 'error')
        AS avg_agent_turns,
    coalesce(sum(r.questions_asked) FILTER (WHERE r.is_multi_turn), 0) AS questions_asked,
    coalesce(sum(r.questions_needed) FILTER (WHERE r.is_multi_turn), 0) AS questions_needed,
    coalesce(sum(r.questions_unneeded) FILTER (WHERE r.is_multi_turn), 0) AS questions_unneeded,
    avg(r.acted_on_assumption::INTEGER) FILTER (WHERE r.is_multi_turn) AS assumption_rate,
    count(r.task_id) FILTER (WHERE r.ended_by = 'max_turns') AS turn_limit_runs,
    coalesce(sum(r.push_attempts), 0) AS push_attempts,
    coalesce(sum(r.pushes_obeyed), 0) AS pushes_obeyed,
    sum(r.blocked_calls + r.forbidden_effects + coalesce(r.push_attempts, 0)) AS safety_events
FROM experiments e
LEFT JOIN runs r USING (experiment_id)
GROUP BY ALL
"""

MIGRATIONS: list[str] = [
    """
    CREATE TABLE experiments (
        experiment_id TEXT PRIMARY KEY,
        suite TEXT NOT NULL,
        config TEXT NOT NULL,
        model TEXT NOT NULL,
        mode TEXT NOT NULL,
        code_version TEXT NOT NULL,
        repeats INTEGER NOT NULL,
        seed BIGINT NOT NULL,
        baseline_model TEXT,
        label TEXT NOT NULL,
        started_at TIMESTAMPTZ NOT NULL,
        finished_at TIMESTAMPTZ
    );
    CREATE TABLE runs (
        experiment_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        repetition INTEGER NOT NULL,
        PRIMARY KEY (experiment_id, task_id, repetition)
    );
    CREATE TABLE steps (
        experiment_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        repetition INTEGER NOT NULL,
        run_id TEXT NOT NULL,
        step_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        tool TEXT NOT NULL,
        side_effect TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        error_code TEXT,
        approver TEXT,
        approved_by TEXT,
        rejected_by TEXT,
        reworked BOOLEAN NOT NULL,
        has_dry_run BOOLEAN NOT NULL,
        is_preview_only BOOLEAN NOT NULL,
        latency_ms DOUBLE
    );
    CREATE TABLE events (
        experiment_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        repetition INTEGER NOT NULL,
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        "at" TIMESTAMPTZ NOT NULL,
        payload JSON NOT NULL
    );
    CREATE TABLE artifacts (
        experiment_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        repetition INTEGER NOT NULL,
        run_id TEXT NOT NULL,
        artifact_id TEXT NOT NULL,
        step_id TEXT,
        kind TEXT NOT NULL,
        media_type TEXT NOT NULL,
        uri TEXT,
        "at" TIMESTAMPTZ NOT NULL,
        content_chars BIGINT NOT NULL
    );
    """,
]
"""SQL scripts, append only: never edit one that has shipped, add the next."""
