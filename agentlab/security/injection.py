"""The instruction-in-data detector: a score for text that talks to the agent, not about work.

A tool result, a web page, a mail or a document is data. Text in it that addresses the AI,
tries to override its instructions, dresses up as a system message, or tells it to send
something somewhere is the shape of a prompt injection. :func:`screen` cuts the text into
segments (paragraphs, HTML comments), scores each from weighted signals, and reports the
segments at or above a threshold; :func:`quarantine` replaces those segments in a JSON value
with a notice, so a model never reads them.

The signals are heuristics, known to miss paraphrased attacks and to be fooled by an
attacker who reads this file: the detector is one layer of several, measured in
``benchmarks/injection_defences.py``, never the only one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import JsonValue

DEFAULT_THRESHOLD = 0.5
"""A segment scoring at least this is reported."""

_ADDRESS = r"(?:[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}|https?://\S+|www\.\S+)"

SIGNALS: tuple[tuple[str, float, re.Pattern[str]], ...] = (
    (
        "override",
        0.6,
        re.compile(
            r"\b(?:ignore|disregard|forget|override|skip)\b[^.\n]{0,20}\b(?:previous|prior|"
            r"above|earlier|original|all|your|any)\b[^.\n]{0,20}\b(?:instructions?|directions?|"
            r"prompts?|rules?|tasks?|guidelines?|iunstructions)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "addresses_the_ai",
        0.4,
        re.compile(
            r"\b(?:note|message|instructions?|attention|notice)\s+(?:to|for)\s+(?:the\s+|all\s+"
            r"|any\s+)?(?:ai|a\.i\.|llm|language model|assistants?|agents?|chatbots?|bots?|"
            r"models?)\b|\b(?:ai|llm)\s+(?:assistants?|agents?)\s+(?:reading|processing|"
            r"summari[sz]ing)\b|\bdear\s+(?:ai|assistant|agent|model)\b|\byou are now\b|"
            r"\bas an ai\b|\bto you,\s+(?:the\s+)?(?:ai|assistant|agent|model)\b|"
            r"\bthis is an important message from\b",
            re.IGNORECASE,
        ),
    ),
    (
        "fake_system_message",
        0.4,
        re.compile(
            r"\bsystem\s+(?:note|message|prompt|override|instruction|notice|alert)\b|"
            r"^\s*(?:system|assistant)\s*:|###\s*\(?system|<\|im_start\|>|\[/?INST\]|"
            r"</?(?:system|information|instructions?)>|\badmin(?:istrator)? mode\b|"
            r"\bdeveloper mode\b",
            re.IGNORECASE | re.MULTILINE,
        ),
    ),
    (
        "exfiltration",
        0.35,
        re.compile(
            r"\b(?:e-?mail|send|forward|post|upload|transfer|wire|share|leak|export|copy|"
            r"submit|deliver)\b(?s:.){0,120}?" + _ADDRESS,
            re.IGNORECASE,
        ),
    ),
    (
        "concealment",
        0.3,
        re.compile(
            r"\b(?:do not|don't|never)\s+(?:tell|mention|inform|reveal|say|show|let)\b|"
            r"\bwithout\s+(?:telling|asking|informing|notifying)\b|\bsecretly\b|"
            r"\bkeep (?:this|it) (?:secret|hidden|between us)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "manipulate_the_user",
        0.25,
        re.compile(
            r"\btell (?:the user|them|users|everyone|the requester)\b|"
            r"\b(?:respond|reply|answer) (?:only )?with\b",
            re.IGNORECASE,
        ),
    ),
    (
        "urgency",
        0.2,
        re.compile(
            r"\bimportant\s*(?:!{2,}|message|instructions?|system|note)\b|"
            r"\bbefore you (?:can )?(?:solve|do|continue|answer|finish)\b|\bIMPORTANT!+",
            re.IGNORECASE,
        ),
    ),
    (
        "tool_directive",
        0.2,
        re.compile(
            r"\b(?:call|use|invoke|run|execute)\s+(?:the\s+)?(?:tool|function)\b|"
            r"\b(?:call|invoke)\s+[a-z]+_[a-z_]+\b",
            re.IGNORECASE,
        ),
    ),
)
"""Each signal: its name, its weight, and what it matches."""

_SEGMENT_BREAK = re.compile(r"\n\s*\n|<!--|-->")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z<\[#(])|\n")
LONG_PARAGRAPH = 400
"""Paragraphs longer than this are screened sentence by sentence."""


@dataclass(frozen=True)
class InjectionFinding:
    """One segment of text that reads like an instruction to the agent."""

    start: int
    end: int
    score: float
    """1 - the product of (1 - weight) over the signals present, in [0, 1)."""
    signals: tuple[str, ...]
    excerpt: str
    """The segment, whitespace collapsed, clipped to 200 characters: for the audit record."""


@dataclass(frozen=True)
class ScreenResult:
    """What :func:`screen` found in one text."""

    score: float
    """The highest segment score (0 when nothing scored)."""
    findings: tuple[InjectionFinding, ...]
    """Segments at or above the threshold."""

    @property
    def is_flagged(self) -> bool:
        """True when some segment reached the threshold."""
        return bool(self.findings)

    @property
    def signals(self) -> tuple[str, ...]:
        """Every signal of the reported segments, each once, sorted."""
        return tuple(sorted({s for f in self.findings for s in f.signals}))


def segments(text: str) -> list[tuple[int, int]]:
    """Where ``text`` breaks into paragraphs and HTML comments, as (start, end) spans.

    A paragraph longer than :data:`LONG_PARAGRAPH` characters (a web page's text, flattened
    to one line) is cut further into sentences, so a quarantine takes the instruction out
    and leaves the page.
    """
    spans, cursor = [], 0
    for match in _SEGMENT_BREAK.finditer(text):
        if match.start() > cursor:
            spans.append((cursor, match.start()))
        cursor = match.end()
    if cursor < len(text):
        spans.append((cursor, len(text)))
    cut: list[tuple[int, int]] = []
    for start, end in spans:
        if end - start <= LONG_PARAGRAPH:
            cut.append((start, end))
            continue
        inner = start
        for match in _SENTENCE_END.finditer(text, start, end):
            cut.append((inner, match.start()))
            inner = match.end()
        cut.append((inner, end))
    return [(start, end) for start, end in cut if text[start:end].strip()]


def score_segment(text: str) -> tuple[float, tuple[str, ...]]:
    """The score of one segment and the signals present in it."""
    present = tuple(name for name, _, pattern in SIGNALS if pattern.search(text))
    weights = {name: weight for name, weight, _ in SIGNALS}
    remaining = 1.0
    for name in present:
        remaining *= 1 - weights[name]
    return round(1 - remaining, 4), present


def screen(text: str, *, threshold: float = DEFAULT_THRESHOLD) -> ScreenResult:
    """Score every segment of ``text``; report those at or above ``threshold``.

    A reported segment longer than a short paragraph starts where its first signal does, so
    what precedes the instruction in a run-on text (a page's table) is not cut with it.
    """
    best, findings = 0.0, []
    for segment_start, end in segments(text):
        score, signals = score_segment(text[segment_start:end])
        best = max(best, score)
        start = segment_start
        if score >= threshold and end - start > LONG_PARAGRAPH // 2:
            first = min(
                m.start()
                for _, _, pattern in SIGNALS
                if (m := pattern.search(text, start, end)) is not None
            )
            start = max(text.rfind(" ", start, first) + 1, start)
        if score >= threshold:
            excerpt = " ".join(text[start:end].split())[:200]
            findings.append(InjectionFinding(start, end, score, signals, excerpt))
    return ScreenResult(best, tuple(findings))


def notice(finding: InjectionFinding) -> str:
    """What a quarantined segment is replaced with."""
    return (
        f"[quarantined by agentlab: {len(finding.excerpt)}+ characters of instruction-like "
        f"text (score {finding.score:.2f}: {', '.join(finding.signals)}) removed; it was data, "
        "not an instruction]"
    )


@dataclass(frozen=True)
class ScreenedValue:
    """A JSON value after screening: the value to pass on and what was found in it."""

    value: JsonValue
    """The value, with flagged segments replaced when quarantined; else unchanged."""
    findings: tuple[InjectionFinding, ...]
    score: float

    @property
    def is_flagged(self) -> bool:
        """True when some string in the value had a reported segment."""
        return bool(self.findings)

    @property
    def signals(self) -> tuple[str, ...]:
        """Every signal of the reported segments, each once, sorted."""
        return tuple(sorted({s for f in self.findings for s in f.signals}))


def screen_value(
    value: JsonValue, *, threshold: float = DEFAULT_THRESHOLD, quarantine: bool = False
) -> ScreenedValue:
    """Screen every string inside a JSON value; with ``quarantine``, cut what was reported.

    Positions in the findings are relative to the string each was found in.
    """
    findings: list[InjectionFinding] = []
    best = 0.0

    def visit(node: JsonValue) -> JsonValue:
        nonlocal best
        if isinstance(node, str):
            result = screen(node, threshold=threshold)
            best = max(best, result.score)
            findings.extend(result.findings)
            return _cut(node, result.findings) if quarantine and result.findings else node
        if isinstance(node, list):
            return [visit(item) for item in node]
        if isinstance(node, dict):
            return {key: visit(item) for key, item in node.items()}
        return node

    screened = visit(value)
    return ScreenedValue(screened, tuple(findings), best)


def _cut(text: str, findings: tuple[InjectionFinding, ...]) -> str:
    pieces, cursor = [], 0
    for finding in sorted(findings, key=lambda f: f.start):
        pieces.append(text[cursor : finding.start])
        pieces.append(notice(finding))
        cursor = finding.end
    pieces.append(text[cursor:])
    return "".join(pieces)
