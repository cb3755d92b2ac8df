"""The nightly HTML report: self-contained, regressions first, everything escaped."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from plotly.offline import get_plotlyjs

from agentlab.lab.compare import compare
from agentlab.report import build_nightly_report, write_nightly_report
from tests.unit.report._runs import nightly_inputs, result


@pytest.fixture(scope="module")
def inputs() -> dict[str, Any]:
    return nightly_inputs()


@pytest.fixture(scope="module")
def page(inputs: dict[str, Any]) -> str:
    return build_nightly_report(**inputs, generated_at=datetime(2026, 1, 7, tzinfo=UTC))


def test_plotly_is_embedded_once_and_nothing_is_fetched(page: str) -> None:
    assert page.count(get_plotlyjs()) == 1
    assert "<script src" not in page.replace(" ", "")
    assert "<link" not in page
    assert page.count('class="plotly-graph-div"') == 3  # trend, trade-off, KPI bars


def test_regressions_come_first_and_link_to_their_sections(page: str) -> None:
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings[0] == "Regressions (2)"
    assert headings[1:] == ["KPIs", "Against the baseline", "Charts", "Failed tasks (2)"]
    links = re.findall(r'<a href="#([^"]+)">', page)
    assert links == ["compare-single--sim-large", "task-single--sim-large--mail-status"]
    for anchor in links:
        assert f'id="{anchor}"' in page


def test_the_header_says_the_model_is_the_simulator(page: str, inputs: dict[str, Any]) -> None:
    header = page[page.index("<header>") : page.index("</header>")]
    assert "sim-large: agentlab&#x27;s offline simulator" in header
    assert "generated 2026-01-07T00:00:00+00:00" in header

    real = inputs["kpis"].assign(model="gpt-5-mini")
    other = build_nightly_report(kpis=real)
    assert "simulator" not in other[other.index("<header>") : other.index("</header>")]


def test_the_kpi_table_shows_every_configuration_by_the_articles_names(page: str) -> None:
    table = page[page.index('<table class="kpis">') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr><td>(.*?)</td>", table)
    assert rows == [
        "Chat (RAG only)",
        "Single agent (Plan + Tool)",
        "Multi-agent (Planner/Verifier separated)",
    ]


def test_a_failed_task_shows_its_checks_and_side_effect_diff(page: str) -> None:
    start = page.index('<article id="task-single--sim-large--mail-status"')
    section = page[start : page.index("</article>", start)]
    assert "regression" in section
    assert "passed 1/1 before, 0/1 now" in section
    assert "<code>side_effects</code>" in section
    assert '<tr class="added"><td>added</td><td>send_mail</td>' in section
    assert "all-staff@example.co.jp" in section


def test_text_from_runs_is_escaped(page: str) -> None:
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>unexpected</b>" not in page
    assert "&lt;b&gt;unexpected&lt;/b&gt;" in page


def test_without_regressions_the_report_says_so(inputs: dict[str, Any]) -> None:
    page = build_nightly_report(kpis=inputs["kpis"], comparisons=inputs["comparisons"])

    assert re.findall(r"<h2>(.*?)</h2>", page)[0] == "No regressions"


def test_a_regression_has_a_section_even_when_its_run_was_not_passed(
    inputs: dict[str, Any],
) -> None:
    page = build_nightly_report(kpis=inputs["kpis"], regressions=inputs["regressions"])

    assert 'id="task-single--sim-large--mail-status"' in page
    # the metric regression's comparison is not in this report: its link goes to the KPIs
    assert '<a href="#kpis">' in page


def test_the_same_inputs_give_the_same_file(inputs: dict[str, Any], tmp_path: Path) -> None:
    first = write_nightly_report(tmp_path / "reports" / "a.html", **inputs)
    second = write_nightly_report(tmp_path / "reports" / "b.html", **inputs)

    assert first == tmp_path / "reports" / "a.html"
    assert first.read_bytes() == second.read_bytes()


def test_pass_k_rows_say_how_many_tasks_they_cover(inputs: dict[str, Any]) -> None:
    # Three single-shot tasks run once, one multi-turn task run four times (one run fails).
    def runs(experiment_id: str) -> list[Any]:
        once = [result(t, experiment_id=experiment_id) for t in ("a", "b", "c")]
        talk = [
            result("mt", experiment_id=experiment_id, repetition=r, success=r != 3)
            for r in range(4)
        ]
        return once + talk

    comparison = compare(runs("exp-a"), runs("exp-b"), n_boot=50)
    page = build_nightly_report(
        **(inputs | {"comparisons": [comparison], "regressions": []}),
        generated_at=datetime(2026, 1, 7, tzinfo=UTC),
    )
    table = re.search(r'<table class="passk">(.*?)</table>', page, re.S)
    assert table is not None
    assert "<th>tasks</th>" in table.group(1)
    rows = re.findall(r"<tr><td>(\d+)</td><td>(\d+)</td>", table.group(1))
    assert rows == [("1", "4"), ("2", "1"), ("3", "1"), ("4", "1")]
    assert "for k &gt; 1, only the tasks with their own `repeats`" in page
