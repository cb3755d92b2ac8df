"""The simulator's agent policy: one OpenAI chat request in, one ``chat.completion`` out.

Which kind of answer is wanted is read from the request's structure, as a real model reads
it: a ``plan`` or ``verdict`` response format asks for that JSON; offered tools ask it to
act (call tools, or answer from their results); neither asks it to answer the question in
the user message from the documents given there.

Every choice is seeded (see :mod:`agentlab.llm.sim.draws`) and nothing reads the clock, so
the same request always gets the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from agentlab.llm.sim.acting import act
from agentlab.llm.sim.answering import answer
from agentlab.llm.sim.draws import Draws
from agentlab.llm.sim.planning import plan, verdict
from agentlab.llm.sim.profiles import SimProfile, load_profiles
from agentlab.llm.sim.reading import Conversation, read_conversation
from agentlab.llm.sim.reply import Reply
from agentlab.llm.sim.requesting import is_requester, requester_reply
from agentlab.llm.sim.schema_fill import FillContext, fill_arguments
from agentlab.llm.sim.wire import (
    SYSTEM_FINGERPRINT_PREFIX,
    RequestError,
    completion,
    parse_request,
    schema_name,
)
from agentlab.llm.structured import PLAN_FORMAT, VERDICT_FORMAT

EPOCH = 1_767_225_600
"""2026-01-01T00:00:00Z: ``created`` is this plus an offset drawn from the request."""
SIMULATOR_VERSION = "1"
CACHE_MIN_TOKENS = 1024
CACHE_STEP_TOKENS = 128


class SimAnswer(NamedTuple):
    """One answer: the ``chat.completion`` body, its modelled latency, and the reply behind it."""

    body: dict[str, Any]
    latency_ms: float
    reply: Reply


class SimulatorPolicy:
    """Answers OpenAI chat requests as one of its profiles.

    Args:
        profiles: The profiles by name; the built-in ``profiles.yaml`` when None.
    """

    def __init__(self, profiles: Mapping[str, SimProfile] | None = None) -> None:
        self.profiles = dict(profiles) if profiles is not None else load_profiles()

    def profile(self, name: str) -> SimProfile:
        """The profile a request's ``model`` names.

        Raises:
            RequestError: 404 ``model_not_found``, listing the profiles served.
        """
        profile = self.profiles.get(name)
        if profile is None:
            served = ", ".join(sorted(self.profiles))
            raise RequestError(
                f"The model '{name}' does not exist. This agentlab simulator serves: {served}.",
                param="model",
                code="model_not_found",
                status=404,
            )
        return profile

    def respond(self, request: dict[str, Any] | bytes | str) -> SimAnswer:
        """The answer to one request.

        Raises:
            RequestError: the request is malformed (400) or names an unknown model (404).
        """
        request = parse_request(request)
        profile = self.profile(request["model"])
        conversation = read_conversation(request)
        draws = Draws(
            profile.name, conversation.task, conversation.assistant_turns, request.get("seed")
        )
        reply = decide(request, conversation, draws, profile)
        return _envelope(request, profile, draws, reply)


def decide(
    request: dict[str, Any], conversation: Conversation, draws: Draws, profile: SimProfile
) -> Reply:
    """What to answer, by the kind of answer the request's structure asks for."""
    if is_requester(conversation.system):
        return requester_reply(conversation.system, conversation.last_user)
    name = schema_name(request)
    if name == PLAN_FORMAT:
        return plan(conversation, draws, profile)
    if name == VERDICT_FORMAT:
        return verdict(conversation, draws, profile)
    if name is not None:
        return _other_schema(request, conversation)
    if conversation.tools:
        return act(conversation, draws, profile, request.get("tool_choice"))
    return answer(conversation, draws, profile)


def _other_schema(request: dict[str, Any], conversation: Conversation) -> Reply:
    """Any other JSON schema: filled from the conversation like a tool's arguments."""
    schema = (request["response_format"].get("json_schema") or {}).get("schema") or {}
    ctx = FillContext(text=conversation.last_user, task=conversation.task)
    return Reply(content=json.dumps(fill_arguments(schema, ctx).arguments, ensure_ascii=False))


# -- the envelope ------------------------------------------------------------------------------


def _envelope(
    request: dict[str, Any], profile: SimProfile, draws: Draws, reply: Reply
) -> SimAnswer:
    canonical = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.sha256(f"{profile.name}\x1f{canonical}".encode()).hexdigest()
    cpt = profile.tokens.chars_per_token
    content = reply.content
    finish_reason = "tool_calls" if reply.tool_calls else "stop"
    visible = _tokens(content or reply.refusal or "", cpt)
    visible += sum(_tokens(c.name + c.arguments, cpt) + 5 for c in reply.tool_calls)
    limit = request.get("max_completion_tokens") or request.get("max_tokens")
    if limit and content and visible > limit and not reply.tool_calls:
        content = content[: int(limit * cpt)]
        visible, finish_reason = limit, "length"
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None if reply.refusal else content,
        "refusal": reply.refusal,
        "annotations": [],
    }
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": "call_" + hashlib.sha256(f"{digest}:{i}".encode()).hexdigest()[:24],
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for i, call in enumerate(reply.tool_calls)
        ]
    low, high = profile.tokens.reasoning_tokens
    reasoning = draws.rng("reasoning_tokens").randint(low, high) if high else 0
    prompt = prompt_tokens(request, cpt)
    completion_tokens = visible + reasoning
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens(request, cpt), "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    body = completion(
        response_id=f"chatcmpl-sim{digest[:26]}",
        created=EPOCH + int(digest[26:34], 16) % 31_536_000,
        model=profile.name,
        fingerprint=f"{SYSTEM_FINGERPRINT_PREFIX}-v{SIMULATOR_VERSION}-{profile.name}",
        message=message,
        finish_reason=finish_reason,
        usage=usage,
    )
    latency = profile.latency.latency_ms(prompt, completion_tokens, draws.rng("latency"))
    return SimAnswer(body, latency, reply)


def _tokens(text: str, chars_per_token: float) -> int:
    return math.ceil(len(text) / chars_per_token) if text else 0


def _prompt_text(messages: list[Any], request: dict[str, Any]) -> str:
    parts = {"messages": messages, "tools": request.get("tools") or []}
    if request.get("response_format"):
        parts["response_format"] = request["response_format"]
    return json.dumps(parts, sort_keys=True, ensure_ascii=False)


def prompt_tokens(request: dict[str, Any], chars_per_token: float) -> int:
    """Prompt tokens: the request's JSON size over characters per token, plus 3 a message."""
    messages = request["messages"]
    return _tokens(_prompt_text(messages, request), chars_per_token) + 3 * len(messages)


def cached_tokens(request: dict[str, Any], chars_per_token: float) -> int:
    """Tokens of the prefix the previous turn already sent, as OpenAI reports a cache hit.

    The previous request of a conversation is everything before its last assistant message;
    OpenAI caches prompts of 1024 tokens or more, in steps of 128. Derived from the request
    alone, so it is the same on every replay.
    """
    messages = request["messages"]
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
    if last is None:
        return 0
    prefix = _tokens(_prompt_text(messages[:last], request), chars_per_token) + 3 * last
    if prefix < CACHE_MIN_TOKENS:
        return 0
    return min(
        (prefix // CACHE_STEP_TOKENS) * CACHE_STEP_TOKENS, prompt_tokens(request, chars_per_token)
    )
