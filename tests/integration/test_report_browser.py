"""The nightly report as a person sees it: Debian's Chromium, headless, with no network.

The report is opened from disk in an offline browser context that also aborts any http(s)
request, so a chart that needed a CDN would not render and the test would fail. A screenshot
of the rendered report is saved as ``reports/nightly-report.png`` (git-ignored), to look at.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from agentlab.report import write_nightly_report
from tests.unit.report._runs import nightly_inputs

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = Path(__file__).parents[2] / "reports" / "nightly-report.png"
TASK_ANCHOR = "task-single--sim-large--mail-status"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def opened(browser: Browser, tmp_path: Path) -> Iterator[tuple[Page, list[str]]]:
    """The report open in a 1280x720 offline page, and what went wrong while it loaded."""
    report = write_nightly_report(tmp_path / "reports" / "nightly.html", **nightly_inputs())
    context = browser.new_context(offline=True, viewport={"width": 1280, "height": 720})
    problems: list[str] = []

    def refuse(route: Route) -> None:
        problems.append(f"fetched {route.request.url}")
        route.abort()

    context.route(re.compile(r"^(https?|wss?)://"), refuse)
    page = context.new_page()
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on(
        "dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss())
    )
    page.goto(report.as_uri())
    yield page, problems
    context.close()


def test_the_reader_sees_regressions_kpis_and_a_chart_without_network(
    opened: tuple[Page, list[str]],
) -> None:
    page, problems = opened

    headings = page.locator("main h2")
    expect(headings.first).to_have_text("Regressions (2)")
    expect(headings.first).to_be_in_viewport()
    expect(page.locator("header .simulator")).to_contain_text("sim-large")
    expect(page.locator("table.kpis tbody tr td:first-child")).to_have_text(
        [
            "Chat (RAG only)",
            "Single agent (Plan + Tool)",
            "Multi-agent (Planner/Verifier separated)",
        ]
    )
    expect(page.locator(".js-plotly-plot")).to_have_count(3)
    expect(page.locator("#chart-tradeoff.js-plotly-plot svg.main-svg").first).to_be_attached()
    expect(page.locator("#chart-trend .scatterlayer .trace")).to_have_count(9)  # 3 configs x 3
    assert problems == []

    page.screenshot(path=SCREENSHOT, full_page=True)
    png = SCREENSHOT.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width == 1280
    assert height > 720  # the whole page, charts and failed tasks below the fold


def test_a_regression_link_scrolls_to_its_tasks_diff(opened: tuple[Page, list[str]]) -> None:
    page, problems = opened
    section = page.locator(f"#{TASK_ANCHOR}")
    expect(section).not_to_be_in_viewport()

    page.locator(f'#regressions a[href="#{TASK_ANCHOR}"]').click()

    expect(section.locator("h3")).to_be_in_viewport()
    assert page.evaluate("location.hash") == f"#{TASK_ANCHOR}"
    expect(section).to_contain_text("Side-effect diff")
    expect(section.locator("tr.added")).to_contain_text("all-staff@example.co.jp")
    # the run's own text stays text: the injected markup is shown, not executed
    expect(section.locator("tr.added")).to_contain_text("<script>alert(1)</script>")
    assert problems == []
