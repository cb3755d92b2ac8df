"""The agent side of the defences: spotlight what a model reads, inspect what it answers.

The executor guards what goes to and comes from the tools' systems; these two guard the
model's side of the run. Both read the switches from the executor's policy
(``policy.defences``), so one setting governs a run end to end.

* :func:`spotlight` -- just before a request is sent, each tool result is fenced as
  untrusted data with the run's boundary, and the system prompt gains the rule that names
  it. The graph's state keeps the results as they were, so checkpoints, the verifier and
  a resumed run read them unchanged.
* :func:`inspect_answer` -- before the answer is recorded: DLP's ``answer`` rules, then
  output inspection (links the task never named are cut out -- the "click this URL" of an
  injection; an answer carrying a data class the actor may not see is withheld).
"""

from __future__ import annotations

from agentlab.agents.context import AgentContext
from agentlab.core.events import DlpDetected, ExfiltrationBlocked
from agentlab.llm import Message
from agentlab.security.dlp import Dlp
from agentlab.security.outbound import inspect_outbound, redact
from agentlab.security.spotlight import boundary_for, rule, wrap


def _dlp(ctx: AgentContext) -> Dlp:
    return ctx.executor.dlp


def spotlight(ctx: AgentContext, messages: list[Message]) -> list[Message]:
    """``messages`` as the model is sent them: tool results fenced, the rule in the prompt.

    Returns the messages unchanged when the ``spotlighting`` defence is off.
    """
    defences = ctx.executor.policy.defences
    if not defences.spotlighting:
        return messages
    has_tool_results = any(m.get("role") == "tool" for m in messages)
    if not has_tool_results:
        return messages
    boundary = boundary_for(ctx.recorder.run_id, ctx.seed)
    mode = defences.spotlight_mode
    names = {
        call["id"]: call["function"]["name"]
        for m in messages
        if m.get("role") == "assistant"
        for call in m.get("tool_calls") or []
    }
    sent: list[Message] = []
    for message in messages:
        if message.get("role") == "tool" and isinstance(message.get("content"), str):
            source = f"tool:{names.get(message.get('tool_call_id'), 'unknown')}"
            content = wrap(message["content"], boundary=boundary, source=source, mode=mode)
            sent.append({**message, "content": content})
        else:
            sent.append(message)
    paragraph = rule(boundary, mode)
    if sent and sent[0].get("role") in ("system", "developer"):
        first = sent[0]
        return [{**first, "content": f"{first.get('content') or ''}\n\n{paragraph}"}, *sent[1:]]
    return [{"role": "system", "content": paragraph}, *sent]


def inspect_answer(ctx: AgentContext, task: str, answer: str) -> str:
    """The answer as the requester may read it, with what was done about it recorded."""
    dlp = _dlp(ctx)
    found = dlp.apply(answer, "answer")
    acted = set(found.masked) | set(found.blocked)
    if acted:
        ctx.recorder.detected(
            DlpDetected,
            place="answer",
            kinds=tuple(sorted(acted)),
            count=sum(1 for d in found.detections if d.kind in acted),
            action="blocked" if found.is_blocked else "masked",
        )
    if found.is_blocked:
        kinds = ", ".join(found.blocked)
        return (
            f"The answer was withheld: it held {kinds}, which policy does not let an answer "
            "carry. Ask the owner of the data to share it another way."
        )
    answer = found.value if isinstance(found.value, str) else answer
    defences = ctx.executor.policy.defences
    if not defences.output_inspection:
        return answer
    actor = ctx.executor.policy.actors.get(ctx.request.actor)
    findings = inspect_outbound(
        answer,
        task=task,
        trusted_domains=defences.trusted_domains,
        class_markers=defences.class_markers,
        actor_classes=actor.data_classes if actor else (),
    )
    # An address in an answer sends nothing; a link is what an injection wants clicked.
    findings = [f for f in findings if f.kind != "unseen_address"]
    if not findings:
        return answer
    targets = tuple(f"class:{f.target}" if f.kind == "data_class" else f.target for f in findings)
    reason = "; ".join(f.describe() for f in findings)
    ctx.recorder.detected(ExfiltrationBlocked, place="answer", targets=targets, reason=reason)
    if any(f.kind == "data_class" for f in findings):
        classes = ", ".join(sorted({f.target for f in findings if f.kind == "data_class"}))
        return (
            f"The answer was withheld: it carried {classes} data, which the requester may not see."
        )
    return redact(answer, findings)
