"""What a tool implementation gets from the executor, and what it gives back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import httpx
from pydantic import JsonValue

from agentlab.core.errors import ConfigError, ToolRejected
from agentlab.tools.errors import ToolUnavailable

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
"""HTTP answers that say "try again later" rather than "this call is wrong"."""


@dataclass(frozen=True)
class ToolContext:
    """Call-scoped services for a tool implementation; built by the executor for each call."""

    http: httpx.AsyncClient
    """The client for the tools' systems (the sandbox world by default); its ``base_url``
    says where they are. Every request goes through it, so cassettes can hold them."""
    actor: str
    """Who the call is made for."""
    data_classes: tuple[str, ...] = ("public",)
    """The data classes the actor may read; tools pass them on to the systems they query."""
    is_dry_run: bool = True
    """True for the preview; the executor sets False only for an approved commit."""
    idempotency_key: str | None = None
    """The step's key, sent with every write so the system itself refuses a second effect."""
    run_id: str | None = None
    """The run the call belongs to: what per-run limits (a browser's actions) count by."""
    step_id: str | None = None
    """The step being carried out."""
    resources: Mapping[str, object] = field(default_factory=dict)
    """Services other than HTTP that some tools need -- a browser, a command sandbox, a
    credential vault -- by name, as the executor was given them."""

    def resource(self, name: str, kind: type[T]) -> T:
        """The resource ``name``, checked to be a ``kind``.

        Raises:
            ConfigError: the executor was built without it: a set-up mistake, not something
                the model can fix or a retry can wait out.
        """
        found = self.resources.get(name)
        if not isinstance(found, kind):
            raise ConfigError(
                f"a tool needs the {name!r} resource ({kind.__name__}), and the executor was "
                "built without it",
                hint=f"pass it as Executor(resources={{{name!r}: ...}}), or do not offer the tool",
            )
        return found

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: JsonValue = None,
        params: dict[str, str] | None = None,
    ) -> JsonValue:
        """Send one request to the tool's system and return its JSON body.

        Writes carry the step's ``Idempotency-Key`` header.

        Raises:
            ToolRejected: the system refused the call (4xx); the message is its explanation.
            ToolUnavailable: the system failed for a reason that may pass (429, 5xx, network,
                an answer that is not JSON).
        """
        headers = {"X-Data-Classes": ",".join(self.data_classes)}
        if self.idempotency_key is not None:
            headers["Idempotency-Key"] = self.idempotency_key
        try:
            response = await self.http.request(
                method, path, json=json, params=params, headers=headers
            )
        except httpx.TransportError as exc:
            raise ToolUnavailable(
                f"{method} {path}: {type(exc).__name__}: {exc}", error_code="transport_error"
            ) from exc
        if response.status_code in RETRYABLE_STATUS:
            raise ToolUnavailable(
                f"{method} {path} answered {response.status_code}",
                error_code=f"http_{response.status_code}",
                retry_after_s=_retry_after(response),
            )
        if response.is_error:
            raise ToolRejected(f"{method} {path} was refused: {_detail(response)}")
        try:
            return response.json()
        except ValueError as exc:  # an HTML error page from a proxy, a truncated body
            raise ToolUnavailable(
                f"{method} {path} answered {response.status_code} without JSON",
                error_code="bad_response",
            ) from exc


@dataclass(frozen=True)
class Evidence:
    """Something a call produced that is worth keeping on its own: a screenshot, a file."""

    kind: str
    """The artifact kind: ``screenshot``, ``document``, ..."""
    content: JsonValue
    media_type: str = "application/json"


@dataclass(frozen=True)
class ToolOutput:
    """What a tool returns: the result for the model, and what it changed or would change."""

    result: JsonValue
    """The system's answer, as the model and the event log see it."""
    diff: JsonValue = None
    """For a write: what the call changes (or, in a dry-run, would change)."""
    evidence: tuple[Evidence, ...] = ()
    """Kept by the executor as artifacts of the step when the call is committed."""

    @classmethod
    def of_write(cls, body: JsonValue) -> ToolOutput:
        """Split a system's answer to a write into the result and its ``diff`` field."""
        if isinstance(body, dict):
            result = {key: value for key, value in body.items() if key != "diff"}
            return cls(result, diff=body.get("diff"))
        return cls(body)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare from APIs; the configured backoff applies


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    detail = body.get("detail") if isinstance(body, dict) else None
    return f"HTTP {response.status_code}: {detail if detail is not None else body}"
