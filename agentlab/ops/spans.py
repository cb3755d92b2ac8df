"""Spans kept in the store, and read back as a run's timeline.

When no OpenTelemetry collector is configured, finished spans go to a DuckDB table ``spans``
(by default ``$AGENTLAB_HOME/spans.duckdb``), one row per span, so a notebook can show a
run's timeline without any server::

    from agentlab.ops import load_spans, timeline, timeline_figure
    rows = load_spans("duckdb:///.agentlab/spans.duckdb", run_id="run_...")
    timeline(rows)          # offsets, durations and depths, pandas-free
    timeline_figure(rows)   # the same as a plotly Gantt-style chart

DuckDB SQL is this module's job, as it is ``lab/metrics``'s. The exporter opens the file for
each batch and closes it again, so another process (a notebook) can read the spans between
two batches.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from agentlab.core.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id VARCHAR NOT NULL,
    span_id VARCHAR NOT NULL,
    parent_span_id VARCHAR,
    name VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    start_unix_ns BIGINT NOT NULL,
    end_unix_ns BIGINT NOT NULL,
    status VARCHAR NOT NULL,
    status_message VARCHAR,
    run_id VARCHAR,
    attributes JSON NOT NULL,
    events JSON NOT NULL,
    service VARCHAR,
    PRIMARY KEY (trace_id, span_id)
)
"""
_COLUMNS = (
    "trace_id, span_id, parent_span_id, name, kind, start_unix_ns, end_unix_ns, status, "
    "status_message, run_id, attributes, events, service"
)
_LOCK_RETRIES = 20


def spans_path(url: str) -> Path:
    """The file of a spans URL: ``duckdb:///abs/spans.duckdb``, ``duckdb://rel.duckdb``.

    Raises:
        ConfigError: the URL is not a DuckDB file URL.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme != "duckdb" or not rest or rest == ":memory:":
        raise ConfigError(
            f"spans URL {url!r} is not a DuckDB file URL",
            hint="use duckdb:///abs/path/spans.duckdb, or send spans to a collector with "
            "AGENTLAB_OTLP_ENDPOINT",
        )
    return Path(rest)


class DuckDBSpanExporter(SpanExporter):
    """Writes finished spans as rows of the ``spans`` table of a DuckDB file.

    Args:
        url: ``duckdb:///path/spans.duckdb``; the file and its folder are made if missing.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = spans_path(url)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._is_shut_down = False
        with self._connect() as conn:
            conn.execute(_SCHEMA)

    def _connect(self) -> duckdb.DuckDBPyConnection:
        # Another process may hold the file for a moment (a notebook reading): wait a little.
        for attempt in range(_LOCK_RETRIES):
            try:
                return duckdb.connect(str(self.path))
            except duckdb.IOException:
                if attempt == _LOCK_RETRIES - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Insert the spans; a span exported twice is kept once."""
        if self._is_shut_down:
            return SpanExportResult.FAILURE
        rows = [_row(s) for s in spans if s.context is not None]
        try:
            with self._lock, self._connect() as conn:
                conn.executemany(
                    f"INSERT OR IGNORE INTO spans ({_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
        except duckdb.Error as exc:
            # Tracing must never take a run down; the spans of this batch are lost, and said so.
            logger.warning("could not write %d spans to %s: %s", len(rows), self.url, exc)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Refuse further exports."""
        self._is_shut_down = True

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is buffered here: every export is written at once."""
        return True


def _hex(number: int, width: int) -> str:
    return f"{number:0{width}x}"


def _row(span: ReadableSpan) -> tuple[Any, ...]:
    context = span.context
    assert context is not None  # filtered by the caller
    attributes = {key: _plain(value) for key, value in (span.attributes or {}).items()}
    events = [
        {
            "name": event.name,
            "unix_ns": event.timestamp,
            "attributes": {k: _plain(v) for k, v in (event.attributes or {}).items()},
        }
        for event in span.events
    ]
    start = span.start_time or 0
    return (
        _hex(context.trace_id, 32),
        _hex(context.span_id, 16),
        _hex(span.parent.span_id, 16) if span.parent is not None else None,
        span.name,
        span.kind.name.lower(),
        start,
        span.end_time or start,
        span.status.status_code.name.lower(),
        span.status.description,
        attributes.get("agentlab.run.id"),
        json.dumps(attributes, ensure_ascii=False),
        json.dumps(events, ensure_ascii=False),
        span.resource.attributes.get("service.name"),
    )


def _plain(value: Any) -> Any:
    """An attribute value as JSON can hold it (OpenTelemetry keeps sequences as tuples)."""
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


def load_spans(
    url: str, *, run_id: str | None = None, trace_id: str | None = None
) -> list[dict[str, Any]]:
    """The stored spans, oldest first, as plain dicts (no pandas needed).

    Each dict has ``trace_id``, ``span_id``, ``parent_span_id``, ``name``, ``kind``,
    ``start`` and ``end`` (aware datetimes), ``duration_ms``, ``status``, ``status_message``,
    ``run_id``, ``attributes`` and ``events``.

    Args:
        url: The spans URL tracing was configured with.
        run_id: Only this run's spans (every stretch of it: its start and its resumes).
        trace_id: Only this trace's spans.

    Raises:
        ConfigError: the URL is not a DuckDB URL, or no spans were ever written there.
    """
    path = spans_path(url)
    if not path.is_file():
        raise ConfigError(
            f"no spans at {path}",
            hint="configure tracing first (agentlab serve does, or "
            "agentlab.ops.configure_tracing(spans_url=...)), then run something",
        )
    where, params = [], []
    if run_id is not None:
        where.append("run_id = ?")
        params.append(run_id)
    if trace_id is not None:
        where.append("trace_id = ?")
        params.append(trace_id)
    sql = f"SELECT {_COLUMNS} FROM spans"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY start_unix_ns, end_unix_ns DESC"
    with duckdb.connect(str(path), read_only=True) as conn:
        fetched = conn.execute(sql, params).fetchall()
    return [_span_dict(row) for row in fetched]


def _span_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    (trace_id, span_id, parent, name, kind, start_ns, end_ns, status, message, run_id) = row[:10]
    attributes, events, service = row[10:]
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent,
        "name": name,
        "kind": kind,
        "start": datetime.fromtimestamp(start_ns / 1e9, UTC),
        "end": datetime.fromtimestamp(end_ns / 1e9, UTC),
        "duration_ms": (end_ns - start_ns) / 1e6,
        "status": status,
        "status_message": message,
        "run_id": run_id,
        "attributes": json.loads(attributes),
        "events": json.loads(events),
        "service": service,
    }


def span_dicts(spans: Iterable[ReadableSpan]) -> list[dict[str, Any]]:
    """SDK spans (an ``InMemorySpanExporter``'s) in :func:`load_spans`'s form, oldest first."""
    rows = [_span_dict(_row(s)) for s in spans if s.context is not None]
    return sorted(rows, key=lambda r: (r["start"], -r["duration_ms"]))


def timeline(spans: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The spans as a timeline: each with ``depth`` and ``offset_ms`` from the first start.

    Children follow their parent, in start order, so printing ``"  " * depth + name`` draws
    the tree. A span whose parent is not among ``spans`` is a root (depth 0).
    """
    by_id = {s["span_id"]: s for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for item in sorted(spans, key=lambda s: (s["start"], -s["duration_ms"])):
        parent = item["parent_span_id"] if item["parent_span_id"] in by_id else None
        children.setdefault(parent, []).append(item)
    if not spans:
        return []
    origin = min(s["start"] for s in spans)
    ordered: list[dict[str, Any]] = []

    def visit(parent: str | None, depth: int) -> None:
        for item in children.get(parent, []):
            offset_ms = (item["start"] - origin).total_seconds() * 1000
            ordered.append({**item, "depth": depth, "offset_ms": offset_ms})
            visit(item["span_id"], depth + 1)

    visit(None, 0)
    return ordered


def spans_frame(spans: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The :func:`timeline` as a pandas DataFrame, one row per span."""
    import pandas as pd  # noqa: PLC0415 - only notebooks need it

    columns = ["depth", "name", "offset_ms", "duration_ms", "status", "run_id", "span_id"]
    rows = timeline(spans)
    frame = pd.DataFrame(rows, columns=[*columns, "attributes"])
    return frame


def timeline_figure(spans: Sequence[dict[str, Any]], *, title: str = "trace") -> go.Figure:
    """A Gantt-style plotly figure of the spans: one bar per span, children indented."""
    import plotly.graph_objects as go  # noqa: PLC0415 - only notebooks need it

    rows = timeline(spans)
    labels = [f"{'  ' * r['depth']}{r['name']}  ·{i}" for i, r in enumerate(rows)]
    colors = ["#d62728" if r["status"] == "error" else "#1f77b4" for r in rows]
    figure = go.Figure(
        go.Bar(
            y=labels,
            x=[max(r["duration_ms"], 0.01) for r in rows],
            base=[r["offset_ms"] for r in rows],
            orientation="h",
            marker_color=colors,
            hovertext=[json.dumps(r["attributes"], default=str)[:500] for r in rows],
        )
    )
    figure.update_layout(
        title=title,
        xaxis_title="ms since the first span",
        yaxis={"autorange": "reversed"},
        height=max(240, 22 * len(rows) + 120),
        margin={"l": 320},
    )
    return figure
