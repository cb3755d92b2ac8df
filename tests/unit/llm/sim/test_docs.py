"""docs/simulator.md: its example runs and prints what the text says; its table is the YAML."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from agentlab.cli import sim, world
from agentlab.llm.sim import load_profiles

DOC = Path(__file__).parents[4] / "docs" / "simulator.md"


def test_the_python_example_runs_and_prints_what_the_doc_says(
    capsys: pytest.CaptureFixture[str],
) -> None:
    [block] = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    exec(compile(block, str(DOC), "exec"), {"__name__": "__docs__"})
    assert capsys.readouterr().out.splitlines() == [
        "agentlab-simulator set_ticket_status",
        "resolved",
    ]


def test_the_profile_table_shows_the_built_in_rates() -> None:
    text = DOC.read_text(encoding="utf-8")
    profiles = load_profiles()
    for rate in ("wrong_tool", "bad_arguments", "obey_injection", "refuse_harmful"):
        row = next(line for line in text.splitlines() if f"`errors.{rate}`" in line)
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert float(cells[-2]) == getattr(profiles["sim-large"].errors, rate)
        assert float(cells[-1]) == getattr(profiles["sim-small"].errors, rate)


def _default_port(command: Callable[..., object]) -> int:
    return int(inspect.signature(command).parameters["port"].default)


def test_the_simulator_serves_on_its_own_port_and_the_doc_names_it() -> None:
    port = _default_port(sim.serve)
    assert port == 8766
    assert port != _default_port(world.serve)  # both servers can run side by side
    text = DOC.read_text(encoding="utf-8")
    assert f"--port {port}" in text
    assert f"http://127.0.0.1:{port}/v1" in text
    assert "8765" not in text
