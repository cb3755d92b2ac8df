"""The RPA runner: versioned, deterministic workflows (the article's 9.2).

Each run returns a status, an error code and a screenshot-like text of its last screen. An
outcome is a pure function of (seed, workflow, version, inputs): the same call always
succeeds or always fails with the same code, so suites can count on it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from agentlab.world.errors import WorldError
from agentlab.world.fixture import Rpa, Workflow

PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
}


class RpaRunner:
    """Runs the fixture's workflows; a run's record is kept when it is committed."""

    def __init__(self, fixture: Rpa, *, seed: int) -> None:
        self.workflows = {(w.name, w.version): w for w in fixture.workflows}
        self.runs: dict[str, dict[str, Any]] = {}
        self._seed = seed

    def catalogue(self) -> list[dict[str, Any]]:
        """Every workflow and version, with its inputs."""
        return [
            {"name": w.name, "version": w.version, "description": w.description, "inputs": w.inputs}
            for w in self.workflows.values()
        ]

    def plan(self, name: str, version: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """Check the call and compute its outcome (without recording it)."""
        workflow = self.workflows.get((name, version))
        if workflow is None:
            known = sorted(v for n, v in self.workflows if n == name)
            raise WorldError(
                404, f"no workflow {name} {version}" + (f" (versions: {known})" if known else "")
            )
        _check_inputs(workflow, inputs)
        digest = hashlib.sha256(
            json.dumps([self._seed, name, version, inputs], sort_keys=True).encode()
        ).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        failed = draw < workflow.failure_rate
        error_code = workflow.error_codes[digest[8] % len(workflow.error_codes)] if failed else None
        screens = workflow.screens or ("Start", "Done")
        last = screens[len(screens) // 2] if failed else screens[-1]
        return {
            "workflow": name,
            "version": version,
            "inputs": inputs,
            "status": "failed" if failed else "succeeded",
            "error_code": error_code,
            "screenshot": {
                "media_type": "text/plain",
                "content": _screen(workflow, last, inputs, error_code),
            },
        }

    def record(self, outcome: dict[str, Any], *, at: str) -> dict[str, Any]:
        """Keep a committed run with the next id."""
        run = {"rpa_run_id": f"RPA-{len(self.runs) + 1:06d}", **outcome, "finished_at": at}
        self.runs[run["rpa_run_id"]] = run
        return run

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """The committed runs."""
        return {"runs": list(self.runs.values())}


def _check_inputs(workflow: Workflow, inputs: dict[str, Any]) -> None:
    missing = sorted(set(workflow.inputs) - set(inputs))
    extra = sorted(set(inputs) - set(workflow.inputs))
    if missing or extra:
        raise WorldError(
            422,
            f"inputs of {workflow.name} {workflow.version}: missing {missing}, unexpected {extra}",
        )
    for name, kind in workflow.inputs.items():
        value = inputs[name]
        is_wrong_bool = isinstance(value, bool) and kind != "bool"
        if is_wrong_bool or not isinstance(value, PYTHON_TYPES[kind]):
            raise WorldError(422, f"inputs.{name}: expected {kind}, got {type(value).__name__}")


def _screen(workflow: Workflow, screen: str, inputs: dict[str, Any], error: str | None) -> str:
    width = 48
    lines = [f"{workflow.name} {workflow.version}", f"[ {screen} ]", ""]
    lines += [f"{key}: {value}" for key, value in sorted(inputs.items())]
    lines += ["", f"!! {error}" if error else "OK"]
    border = "+" + "-" * (width - 2) + "+"
    body = [f"| {line[: width - 4]:<{width - 4}} |" for line in lines]
    return "\n".join([border, *body, border])
