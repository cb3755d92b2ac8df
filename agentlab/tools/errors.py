"""What a tool raises, by audience.

* :class:`InvalidArguments` and :class:`~agentlab.core.errors.ToolRejected` are for the model:
  their message is the tool's result and the run goes on.
* :class:`ToolUnavailable` is for the executor: the system failed for a reason that may pass
  (a 429, a 503, a dropped connection), so the call is retried with the configured backoff.
"""

from __future__ import annotations

from pydantic import ValidationError

from agentlab.core.errors import ToolRejected


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
