"""The policy file: who may do what, how autonomously, how often, and with whose approval.

Loaded from YAML with :func:`load_policy`; a wrong field is reported as ``file:line``. The
article's ``rateLimits`` block (section 8.2) is accepted verbatim as one of its keys.
"""

from __future__ import annotations

import re
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agentlab.core.config import load_yaml_model, parse_yaml_model
from agentlab.core.errors import ConfigError

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
Domain = Annotated[str, Field(pattern=r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")]


class AutonomyPhase(IntEnum):
    """The article's staged autonomy (12.1): each phase allows what the last did, and more."""

    CHAT_RAG = 0
    """Chat and retrieval only: no tools."""
    READ_ONLY = 1
    """Read-only tools (search, reference APIs)."""
    DRY_RUN = 2
    """Write tools in dry-run only: the diff is shown, nothing is committed."""
    COMMIT = 3
    """Commits within limits, allowlists and daily caps, after approval."""
    MULTI_AGENT = 4
    """As phase 3, with specialised agents (planner, executor, verifier)."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class Actor(_Model):
    """A person or service a run acts for."""

    scopes: tuple[str, ...] = ()
    """Granted scopes, e.g. ``erp:read``; a tool is offered only with its scope."""
    data_classes: tuple[str, ...] = ("public",)
    """The data classes this actor may read; retrieval and the KB filter by them."""
    use_cases: tuple[Name, ...] = ()
    """The use cases this actor may start runs in."""


class UseCase(_Model):
    """A kind of request the agent serves, and the tools it may use for it."""

    description: str = ""
    tools: tuple[Name, ...] = ()
    """Tools offered in this use case (further narrowed by scopes and the phase)."""
    phase: AutonomyPhase | None = None
    """A lower phase for this use case than the policy's; never a higher one."""
    fallbacks: tuple[Fallback, ...] = ()
    """What to do, in order, when a run of this use case fails (the article's 9.3)."""


class RpaFallback(_Model):
    """Hand the work to an existing, versioned RPA flow."""

    kind: Literal["rpa"] = "rpa"
    workflow: str
    version: str


class ChatAnswerFallback(_Model):
    """Answer in chat only, as a stopgap: what was found, and that nothing was changed."""

    kind: Literal["chat_answer"] = "chat_answer"


class TicketFallback(_Model):
    """Open a helpdesk ticket so a person takes over."""

    kind: Literal["ticket"] = "ticket"
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    requester: str = "agent-fallback@example.co.jp"
    """Who the ticket is filed for; the run's requester when it is an email address."""


FALLBACK_TOOLS = {"rpa": "run_rpa_workflow", "ticket": "create_ticket"}
"""The tool each kind of fallback runs; a use case with that fallback must offer it."""

Fallback = Annotated[RpaFallback | ChatAnswerFallback | TicketFallback, Field(discriminator="kind")]


class ApprovalRule(_Model):
    """Who approves a tool's commits: a human, or the policy itself within a limit.

    Rules are read in order; the first whose tool matches and whose limit holds decides.
    A write no rule covers needs a human.
    """

    name: Name
    """Recorded as the approver (``policy:<name>``) in events and the audit log."""
    tool: Name
    approver: Literal["human", "policy"]
    max_amount: float | None = Field(default=None, ge=0)
    """The rule applies only when the dry-run's amount is at most this."""
    amount_field: str = "total_usd"
    """The field of the dry-run result that holds the amount."""


class Allowlists(_Model):
    """Where tools may reach, whatever the model asks."""

    email_recipient_domains: tuple[Domain, ...] | None = None
    """Email may go only to these domains (and their subdomains); None: no list."""
    browser_domains: tuple[Domain, ...] | None = None
    """The browser may open only these domains (and their subdomains); None: no list."""


class LlmLimits(_Model):
    """The LLM budget: a token bucket waits when it is empty instead of failing."""

    provider: str = "openai"
    requests_per_minute: int = Field(gt=0)
    tokens_per_minute: int = Field(gt=0)


class RetryPolicy(_Model):
    """Retries of a tool call after a retryable failure (429, 5xx, a dropped connection)."""

    max_attempts: int = Field(ge=1, le=20)
    """Attempts in all, the first included."""
    backoff_ms: tuple[Annotated[int, Field(ge=0)], ...] = ()
    """Wait before retry 1, 2, ...; the last value repeats if there are more retries."""


class ToolLimits(_Model):
    """Caps on one system (``erp_api``, ``email_send``, ...), shared by its tools."""

    concurrency: int | None = Field(default=None, ge=1)
    """Calls in flight at once; more wait for a slot."""
    retry: RetryPolicy | None = None
    daily_cap: int | None = Field(default=None, ge=0)
    """Commits per UTC day; the next one is refused as a policy block."""
    allow_domains: tuple[Domain, ...] | None = None
    """Domains this system's tools may reach (email recipients, URLs)."""
    per_run_cap: int | None = Field(default=None, ge=0)
    """Calls of this system's tools per run (the browser's "at most 20 actions per run");
    the next one is refused as a policy block."""


class RateLimits(_Model):
    """The article's ``rateLimits`` block, verbatim."""

    llm: LlmLimits | None = None
    tools: dict[Name, ToolLimits] = Field(default_factory=dict)


DlpKind = Literal[
    "email_address",
    "phone_number",
    "card_number",
    "my_number",
    "us_ssn",
    "api_key",
    "aws_access_key",
    "jwt",
    "bearer_token",
    "vault_token",
    "private_key",
    "known_secret",
]
"""The kinds of data DLP finds (``agentlab.security.dlp`` has a detector for each)."""
DlpAction = Literal["allow", "mask", "block"]


class DlpRule(_Model):
    """What DLP does with one kind of data at each place it could go."""

    answer: DlpAction = "allow"
    """The final answer the requester reads; ``block`` withholds the whole answer."""
    tool_arguments: Literal["allow", "block"] = "allow"
    """What a tool sends to its system; ``block`` refuses the call as a policy block. (No
    ``mask``: a tool given a masked value would act on it, e.g. mail a placeholder.)"""
    tool_results: DlpAction = "allow"
    """What a system answered, before a model reads it or an event records it."""
    logs: DlpAction = "allow"
    """The audit log and the conversation log."""


_SECRET = DlpRule(answer="block", tool_arguments="block", tool_results="mask", logs="mask")
_ID = DlpRule(answer="mask", tool_arguments="block", tool_results="mask", logs="mask")
DEFAULT_DLP: dict[str, DlpRule] = {
    "email_address": DlpRule(),
    "phone_number": DlpRule(logs="mask"),
    "card_number": _ID,
    "my_number": _ID,
    "us_ssn": _ID,
    "api_key": _SECRET,
    "aws_access_key": _SECRET,
    "jwt": _SECRET,
    "bearer_token": _SECRET,
    "vault_token": _SECRET,
    "private_key": _SECRET,
    "known_secret": _SECRET,
}
"""DLP's rules when a policy names none for a kind: addresses may flow (mail needs them),
identity and card numbers are masked and never sent, secrets never leave at all."""

DEFENCE_LAYERS = (
    "least_privilege",
    "spotlighting",
    "injection_screen",
    "two_phase_commit",
    "output_inspection",
    "dlp",
)
"""The switchable layers of the defence against prompt injection, in the article's order."""

DEFAULT_CLASS_MARKERS: dict[str, tuple[str, ...]] = {
    "confidential": (r"\bCONFIDENTIAL\b", r"\bCONF-[A-Z]+-[0-9]{4}\b"),
    "restricted": (r"\bRESTRICTED\b", r"\bRSTR-[A-Z]+-[0-9]{4}\b"),
}
"""How the sandbox's documents mark their data class (a heading and a tracking id)."""


class Defences(_Model):
    """The layers against prompt injection and leaks, each switchable to measure it.

    All on by default. ``benchmarks/injection_defences.py`` turns them off one at a time;
    ``open_live_agent(defences=...)`` and ``--defences`` override a policy's settings.
    """

    least_privilege: bool = True
    """Tools offered per use case, the actor's scopes, and the allowlists. Off: every tool,
    for every actor, to any address."""
    spotlighting: bool = True
    """Tool results reach the model fenced as untrusted data with a boundary per run."""
    spotlight_mode: Literal["delimit", "datamark"] = "delimit"
    """``delimit`` fences the data; ``datamark`` also marks the whitespace inside it."""
    injection_screen: bool = True
    """The instruction-in-data detector screens every tool result."""
    injection_action: Literal["flag", "quarantine"] = "quarantine"
    """``flag`` records the finding and passes the text on marked as suspect;
    ``quarantine`` records it and cuts the text out before any model reads it."""
    injection_threshold: float = Field(default=0.5, gt=0, le=1)
    """The detector's score at which a segment is reported."""
    two_phase_commit: bool = True
    """Writes are previewed (dry-run) and approved before they commit. Off: they commit at
    once (the autonomy phase still holds: phase 2 never commits)."""
    output_inspection: bool = True
    """Writes' arguments and the answer may name only addresses and links of the task (or
    of ``trusted_domains``), and carry no marking of a data class the actor may not see."""
    trusted_domains: tuple[Domain, ...] = ()
    """Domains whose addresses and links may leave without appearing in the task."""
    class_markers: dict[Name, tuple[str, ...]] = Field(
        default_factory=lambda: dict(DEFAULT_CLASS_MARKERS)
    )
    """Regular expressions that mark text of each data class."""
    dlp: bool = True
    """DLP masks or blocks personal and secret data by the policy's ``dlp`` rules."""

    @field_validator("class_markers")
    @classmethod
    def _patterns_compile(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for data_class, patterns in value.items():
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"{data_class}: {pattern!r} is not a regex: {exc}") from None
        return value

    @property
    def enabled(self) -> tuple[str, ...]:
        """The layers that are on, in :data:`DEFENCE_LAYERS` order."""
        return tuple(layer for layer in DEFENCE_LAYERS if getattr(self, layer))

    def only(self, *layers: str) -> Defences:
        """These settings with exactly ``layers`` on (the rest off).

        Raises:
            ConfigError: a name is not one of :data:`DEFENCE_LAYERS`.
        """
        if unknown := set(layers) - set(DEFENCE_LAYERS):
            raise ConfigError(
                f"unknown defence layer(s): {', '.join(sorted(unknown))}",
                hint=f"the layers are: {', '.join(DEFENCE_LAYERS)}",
            )
        return self.model_copy(update={layer: layer in layers for layer in DEFENCE_LAYERS})


def parse_defences(spec: str, base: Defences | None = None) -> Defences:
    """Defences from a command-line spec, over ``base`` (the defaults if None).

    ``all``, ``none``, a comma-separated list of layers to turn on (the rest off), or
    ``all`` followed by ``-layer`` items to turn off: ``all,-spotlighting``.

    Raises:
        ConfigError: an unknown layer name, with the list of known ones.
    """
    base = base or Defences()
    items = [item.strip() for item in spec.split(",") if item.strip()]
    if not items:
        raise ConfigError("no defence layers given", hint="use all, none, or a list of layers")
    if items[0] in ("all", "none"):
        on = set(DEFENCE_LAYERS) if items[0] == "all" else set()
        for item in items[1:]:
            name = item.lstrip("+-")
            (on.discard if item.startswith("-") else on.add)(name)
            base.only(name)  # checks the name
        return base.only(*sorted(on))
    return base.only(*items)


class Policy(_Model):
    """Everything the executor and the tool router enforce, in one file."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    phase: AutonomyPhase
    """The autonomy phase, 0 to 4; see :class:`AutonomyPhase`."""
    actors: dict[Name, Actor]
    use_cases: dict[Name, UseCase]
    approvals: tuple[ApprovalRule, ...] = ()
    allowlists: Allowlists = Allowlists()
    rate_limits: RateLimits = Field(default=RateLimits(), alias="rateLimits")
    defences: Defences = Defences()
    """The switchable layers against prompt injection and leaks; all on by default."""
    dlp: dict[DlpKind, DlpRule] = Field(default_factory=lambda: dict(DEFAULT_DLP))
    """DLP's rule per kind of data; kinds not named keep :data:`DEFAULT_DLP`'s rule."""

    @field_validator("dlp")
    @classmethod
    def _dlp_over_defaults(cls, value: dict[str, DlpRule]) -> dict[str, DlpRule]:
        return {**DEFAULT_DLP, **value}

    def with_defences(self, defences: Defences) -> Policy:
        """This policy with other defence settings (to measure a layer's effect)."""
        return self.model_copy(update={"defences": defences})

    @model_validator(mode="after")
    def _references_resolve(self) -> Self:
        for actor_name, actor in self.actors.items():
            for use_case in actor.use_cases:
                if use_case not in self.use_cases:
                    raise ValueError(
                        f"actor {actor_name!r} names use case {use_case!r}, which is not "
                        f"defined (known: {', '.join(sorted(self.use_cases)) or 'none'})"
                    )
        for name, use_case in self.use_cases.items():
            for fallback in use_case.fallbacks:
                needed = FALLBACK_TOOLS.get(fallback.kind)
                if needed and needed not in use_case.tools:
                    raise ValueError(
                        f"use case {name!r} falls back to {fallback.kind!r}, which runs "
                        f"{needed!r}: add it to the use case's tools"
                    )
            if use_case.phase is not None and use_case.phase > self.phase:
                raise ValueError(
                    f"use case {name!r} asks for phase {int(use_case.phase)}, above the "
                    f"policy's phase {int(self.phase)}; a use case may only lower it"
                )
        return self

    def phase_of(self, use_case: str) -> AutonomyPhase:
        """The phase that applies to a use case: its own if set, else the policy's."""
        own = self.use_cases[use_case].phase
        return self.phase if own is None else own


UseCase.model_rebuild()


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file.

    Raises:
        ConfigError: naming ``file:line`` and the field for every problem found.
    """
    return load_yaml_model(Path(path), Policy)


def parse_policy(text: str, *, source: str = "<policy>") -> Policy:
    """Validate a policy from YAML text; errors name ``source`` and the line."""
    return parse_yaml_model(text, Policy, path=source)


DEFAULT_POLICY_PATH = Path(__file__).with_name("default.yaml")


def default_policy() -> Policy:
    """The embedded policy the demo and the default suites use (phase 3)."""
    return load_policy(DEFAULT_POLICY_PATH)
