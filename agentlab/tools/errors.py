"""What a tool raises, by audience.

* :class:`InvalidArguments` and :class:`~agentlab.core.errors.ToolRejected` are for the model:
  their message is the tool's result and the run goes on.
* :class:`ActionFailed` is a :class:`~agentlab.core.errors.ToolRejected` that carries
  evidence (a screenshot, a DOM excerpt) and an error code: the executor keeps the evidence
  as artifacts of the failed step. :class:`ActionBlocked` is one that a system's own guard
  refused on policy's behalf (the browser's network-layer allowlist, its upload ban): the
  executor records it as a policy block.
* :class:`ToolUnavailable` is for the executor: the system failed for a reason that may pass
  (a 429, a 503, a dropped connection), so the call is retried with the configured backoff.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError

from agentlab.core.errors import ToolRejected

if TYPE_CHECKING:
    from agentlab.tools.context import Evidence


class InvalidArguments(ToolRejected):
    """The model's arguments break the tool's schema; nothing was sent to the system.

    The message names every wrong field and the rule it breaks, so the model can fix them.
    """

    def __init__(self, tool: str, error: ValidationError) -> None:
        self.tool = tool
        self.problems = tuple(_describe(item) for item in error.errors())
        super().__init__(
            f"{tool}: invalid arguments, nothing was sent: " + "; ".join(self.problems)
        )


def _describe(item: object) -> str:
    details = dict(item)  # type: ignore[call-overload]
    field = ".".join(str(part) for part in details["loc"]) or "(arguments)"
    text = f"{field}: {details['msg']}"
    if details["type"] not in ("missing", "extra_forbidden") and "input" in details:
        got = repr(details["input"])
        text += f" (got {got if len(got) <= 40 else got[:39] + '…'})"
    return text


class ToolUnavailable(Exception):
    """The system could not serve the call now; the executor may retry it.

    Args:
        message: What failed, e.g. ``"erp_api answered 503"``.
        error_code: A short code for the event log and metrics, e.g. ``http_503``.
        retry_after_s: The wait the system asked for (``Retry-After``), if any.
    """

    def __init__(self, message: str, *, error_code: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.error_code = error_code
        self.retry_after_s = retry_after_s


class ActionFailed(ToolRejected):
    """The system could not do the action as asked; the run goes on, the evidence is kept.

    Args:
        message: What went wrong and what to do next; the model reads it.
        error_code: A short code for the event log and metrics, e.g. ``selector_not_found``.
        evidence: What the system looked like when the action failed.
    """

    def __init__(
        self, message: str, *, error_code: str, evidence: tuple[Evidence, ...] = ()
    ) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.evidence = evidence


class ActionBlocked(ActionFailed):
    """A guard inside the system refused the action on policy's behalf.

    The executor records it as a policy block (``step_rejected`` by ``policy:<rule>``, an
    audit ``blocked`` record), exactly like a block decided before the call.

    Args:
        message: What was refused, and why; the model reads it.
        rule: The policy rule enforced, e.g. ``allowlist`` or ``no_file_attachments``.
        evidence: What the system looked like when the action was refused.
    """

    def __init__(self, message: str, *, rule: str, evidence: tuple[Evidence, ...] = ()) -> None:
        super().__init__(message, error_code=f"blocked_{rule}", evidence=evidence)
        self.rule = rule
