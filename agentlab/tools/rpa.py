"""The RPA tool: run a versioned, deterministic RPA workflow (the article's section 9).

The agent decides; the RPA flow executes the UI steps. Its arguments are typed like any
other tool's, the workflow is pinned by version, and the run's status, error code and
screenshot come back as the result (the executor keeps the screenshot as an artifact).
"""

from __future__ import annotations

from pydantic import Field

from agentlab.tools.context import Evidence, ToolContext, ToolOutput
from agentlab.tools.registry import tool
from agentlab.tools.spec import ToolArguments, WriteArguments


class RpaInput(ToolArguments):
    """One named input of an RPA workflow."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    """The input's name, as the workflow declares it."""
    value: str | int | float | bool
    """The input's value."""


class RunRpaWorkflow(WriteArguments):
    """Run a versioned RPA workflow (dry-run supported); returns status and a screenshot."""

    workflow: str = Field(pattern=r"^[a-z][a-z0-9_]{2,63}$")
    """The workflow's name, e.g. invoice_entry."""
    version: str = Field(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")
    """The exact version to run, e.g. 1.3.0."""
    inputs: list[RpaInput] = Field(max_length=20)
    """The workflow's inputs, each named once."""


@tool(
    RunRpaWorkflow,
    side_effect="write",
    scope="rpa:run",
    system="rpa_runner",
    targets=lambda args: (f"rpa:workflow/{args.workflow}@{args.version}",),
)
async def run_rpa_workflow(args: RunRpaWorkflow, ctx: ToolContext) -> ToolOutput:
    """Run (or preview) an RPA workflow."""
    body = await ctx.request(
        "POST",
        "/rpa/runs",
        json={
            "workflow": args.workflow,
            "version": args.version,
            "inputs": {item.name: item.value for item in args.inputs},
            "dry_run": ctx.is_dry_run,
        },
    )
    output = ToolOutput.of_write(body)
    screenshot = body.get("screenshot") if isinstance(body, dict) else None
    if not isinstance(screenshot, dict) or "content" not in screenshot:
        return output
    media_type = str(screenshot.get("media_type", "text/plain"))
    shot = Evidence("screenshot", screenshot["content"], media_type)
    return ToolOutput(output.result, output.diff, evidence=(shot,))
