"""DLP: find personal and secret data in text, and mask or block it by policy.

Detectors, one per *kind* of data (the names the policy's ``dlp`` rules use):

=================  ==============================================================
``email_address``  ``name@domain.tld``
``phone_number``   international (``+81 3-1234-5678``), Japanese (``03-1234-5678``,
                   ``090-1234-5678``) and North American (``(415) 555-0100``) forms
``card_number``    13-19 digits, spaced or dashed in groups, that pass the Luhn check
``my_number``      Japan's 12-digit individual number, with its check digit
``us_ssn``         ``123-45-6789``, minus the ranges the SSA never issues
``api_key``        vendor keys: ``sk-...``, ``ghp_...``, ``xoxb-...``, ``AIza...``
``aws_access_key`` ``AKIA...`` / ``ASIA...`` access key ids
``jwt``            ``eyJ...``.``eyJ...``.``...``
``bearer_token``   the credential after ``Bearer`` (an ``Authorization`` header)
``vault_token``    a token agentlab's own credential vault issued
``private_key``    a PEM ``PRIVATE KEY`` block
``known_secret``   a value the caller names as secret (an environment's API key)
=================  ==============================================================

Each *place* data can go to has its own action per kind (``allow``, ``mask``, ``block``):
``answer`` (what the requester reads), ``tool_arguments`` (what a tool sends out),
``tool_results`` (what a system returned, before a model reads it) and ``logs`` (the audit
and conversation logs). A detection never carries the value it found: only its kind and
where it was, so the detections themselves can be recorded and counted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import JsonValue

from agentlab.core.tokens import TOKEN_PATTERN

Place = Literal["answer", "tool_arguments", "tool_results", "logs"]
Action = Literal["allow", "mask", "block"]
PLACES: tuple[Place, ...] = ("answer", "tool_arguments", "tool_results", "logs")

KINDS: tuple[str, ...] = (
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
)
"""Every kind of data the detectors find, in the order they are tried."""

SECRET_KINDS = frozenset(
    {
        "api_key",
        "aws_access_key",
        "jwt",
        "bearer_token",
        "vault_token",
        "private_key",
        "known_secret",
    }
)
"""Kinds that are credentials rather than personal data."""

Rules = Mapping[str, Mapping[Place, Action]]
"""The action for each kind at each place; a kind or place left out is allowed."""


@dataclass(frozen=True)
class Detection:
    """One finding: which kind, and where in the text. Never the value itself."""

    kind: str
    start: int
    end: int

    def __repr__(self) -> str:
        return f"Detection({self.kind!r}, {self.start}:{self.end})"


# -- checksums -------------------------------------------------------------------------------


def luhn_ok(digits: str) -> bool:
    """True when ``digits`` passes the Luhn (mod 10) check card numbers carry."""
    if not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def my_number_ok(digits: str) -> bool:
    """True when a 12-digit Japanese individual number has the right check digit.

    The check digit is ``11 - (sum of P_n * Q_n mod 11)`` (0 when that remainder is 0 or 1),
    where ``P_n`` is the n-th digit from the right of the first eleven and ``Q_n`` is
    ``n + 1`` for n <= 6, ``n - 5`` after.
    """
    if len(digits) != 12 or not digits.isdigit():
        return False
    body = digits[:11]
    total = 0
    for n in range(1, 12):
        p = int(body[11 - n])
        q = n + 1 if n <= 6 else n - 5
        total += p * q
    remainder = total % 11
    check = 0 if remainder <= 1 else 11 - remainder
    return check == int(digits[11])


def ssn_ok(text: str) -> bool:
    """True for an SSN-shaped ``AAA-GG-SSSS`` the SSA could have issued."""
    area, group, serial = text.split("-")
    if area in ("000", "666") or area.startswith("9"):
        return False
    return group != "00" and serial != "0000"


# -- detectors --------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_PHONE = re.compile(
    r"(?<![\w+-])(?:"
    r"\+\d{1,3}[ .-]?\(?\d{1,4}\)?(?:[ .-]?\d{2,4}){2,3}"  # +81 3-1234-5678, +1 415 555 0100
    r"|0[1-9]\d{0,3}-\d{1,4}-\d{3,4}"  # 03-1234-5678, 090-1234-5678
    r"|\(\d{3}\) ?\d{3}-\d{4}"  # (415) 555-0100
    r"|\d{3}-\d{3}-\d{4}"  # 415-555-0100
    r")(?![\w-])"
)
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
_MY_NUMBER = re.compile(r"(?<![\w-])\d{4}[ -]?\d{4}[ -]?\d{4}(?![\w-])")
_SSN = re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])")
_API_KEY = re.compile(
    r"(?<![\w-])(?:sk-[A-Za-z0-9_-]{20,}"  # sk-proj-..., sk-ant-api03-...: dashes inside
    r"|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|github_pat_[A-Za-z0-9_]{30,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|AIza[0-9A-Za-z_-]{35})"
)
_AWS = re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9])")
_JWT = re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
_BEARER = re.compile(r"(?i:\bbearer)\s+([A-Za-z0-9._~+/=-]{16,})")
_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----.*?(?:-----END (?:[A-Z]+ )?PRIVATE KEY-----|$)",
    re.DOTALL,
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _spans(pattern: re.Pattern[str], text: str, group: int = 0) -> Iterable[tuple[int, int]]:
    for match in pattern.finditer(text):
        yield match.start(group), match.end(group)


def _cards(text: str) -> Iterable[tuple[int, int]]:
    for match in _CARD.finditer(text):
        digits = _digits(match.group())
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            yield match.span()


def _my_numbers(text: str) -> Iterable[tuple[int, int]]:
    for match in _MY_NUMBER.finditer(text):
        if my_number_ok(_digits(match.group())):
            yield match.span()


def _ssns(text: str) -> Iterable[tuple[int, int]]:
    for match in _SSN.finditer(text):
        if ssn_ok(match.group()):
            yield match.span()


def _phones(text: str) -> Iterable[tuple[int, int]]:
    for match in _PHONE.finditer(text):
        digits = _digits(match.group())
        if 9 <= len(digits) <= 15 and not _DATE.match(match.group()):
            yield match.span()


_DETECTORS: dict[str, Callable[[str], Iterable[tuple[int, int]]]] = {
    # Secrets first: a key's digits must not be taken for a phone or card number.
    "private_key": lambda text: _spans(_PRIVATE_KEY, text),
    "vault_token": lambda text: _spans(TOKEN_PATTERN, text),
    "jwt": lambda text: _spans(_JWT, text),
    "bearer_token": lambda text: _spans(_BEARER, text, 1),
    "api_key": lambda text: _spans(_API_KEY, text),
    "aws_access_key": lambda text: _spans(_AWS, text),
    "email_address": lambda text: _spans(_EMAIL, text),
    "card_number": _cards,
    "my_number": _my_numbers,
    "us_ssn": _ssns,
    "phone_number": _phones,
}


_DIGIT = re.compile(r"\d")
_API_KEY_HINT = re.compile(r"sk-|gh[pousr]_|github_pat_|xox[abposr]-|AIza")
_BEARER_HINT = re.compile(r"(?i)bearer")

_COULD_HOLD: dict[str, Callable[[str], object]] = {
    # What each detector's pattern cannot match without: a text lacking it holds no such
    # kind, and its detector is skipped. Most strings a run sees (ids, names, short
    # answers) lack nearly all of them; scanning each with eleven patterns was a tenth of a
    # replayed run.
    "private_key": lambda text: "PRIVATE KEY-----" in text,
    "vault_token": lambda text: "." in text,
    "jwt": lambda text: "eyJ" in text,
    "bearer_token": _BEARER_HINT.search,
    "api_key": _API_KEY_HINT.search,
    "aws_access_key": lambda text: "AKIA" in text or "ASIA" in text,
    "email_address": lambda text: "@" in text,
    "card_number": _DIGIT.search,
    "my_number": _DIGIT.search,
    "us_ssn": _DIGIT.search,
    "phone_number": _DIGIT.search,
}


@dataclass(frozen=True)
class DlpResult:
    """What :meth:`Dlp.apply` made of a text or JSON value at one place."""

    value: JsonValue
    """The value with masked kinds replaced (unchanged when nothing was masked)."""
    detections: tuple[Detection, ...] = ()
    masked: tuple[str, ...] = ()
    """Kinds that were masked, each once, sorted."""
    blocked: tuple[str, ...] = ()
    """Kinds whose action here is ``block``: the caller must not let the value through."""

    @property
    def is_blocked(self) -> bool:
        """True when the value must not go to its place at all."""
        return bool(self.blocked)

    @property
    def kinds(self) -> tuple[str, ...]:
        """Every kind found, each once, sorted."""
        return tuple(sorted({d.kind for d in self.detections}))


@dataclass(frozen=True)
class Dlp:
    """The detectors with a policy's rules: scan text, and mask or block it per place.

    Args:
        rules: The action for each kind at each place (from the policy's ``dlp`` section);
            kinds and places not named are allowed.
        known_secrets: Exact values that are secret wherever they appear (an API key from
            the environment, a signing key's text); found as ``known_secret``. Values
            shorter than 8 characters are ignored: they would match ordinary words.
    """

    rules: Rules = field(default_factory=dict)
    known_secrets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = set(self.rules) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown DLP kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
        kept = tuple(sorted({s for s in self.known_secrets if len(s) >= 8}, key=len, reverse=True))
        object.__setattr__(self, "known_secrets", kept)

    def __repr__(self) -> str:
        return f"Dlp(kinds={sorted(self.rules)}, known_secrets={len(self.known_secrets)})"

    def with_secrets(self, *values: str) -> Dlp:
        """The same rules, knowing ``values`` as secrets too."""
        return Dlp(self.rules, (*self.known_secrets, *values))

    def scan(self, text: str) -> list[Detection]:
        """Every detection in ``text``, left to right; overlapping finds keep the first kind."""
        found: list[Detection] = []
        taken: list[tuple[int, int]] = []
        candidates: list[tuple[str, int, int]] = []
        for secret in self.known_secrets:
            start = text.find(secret)
            while start >= 0:
                candidates.append(("known_secret", start, start + len(secret)))
                start = text.find(secret, start + 1)
        for kind, detector in _DETECTORS.items():
            if _COULD_HOLD[kind](text):
                candidates.extend((kind, start, end) for start, end in detector(text))
        for kind, start, end in candidates:
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            taken.append((start, end))
            found.append(Detection(kind, start, end))
        return sorted(found, key=lambda d: d.start)

    def action(self, kind: str, place: Place) -> Action:
        """What the rules say to do with ``kind`` at ``place``."""
        return self.rules.get(kind, {}).get(place, "allow")

    def apply(self, value: JsonValue, place: Place) -> DlpResult:
        """Scan every string in ``value`` and mask what the rules mask at ``place``.

        Keys of objects are kept as they are; their values are scanned.
        """
        detections: list[Detection] = []

        def visit(node: JsonValue) -> JsonValue:
            if isinstance(node, str):
                found = self.scan(node)
                detections.extend(found)
                return self._masked(node, found, place)
            if isinstance(node, list):
                return [visit(item) for item in node]
            if isinstance(node, dict):
                return {key: visit(item) for key, item in node.items()}
            return node

        masked_value = visit(value)
        kinds = {d.kind for d in detections}
        return DlpResult(
            value=masked_value,
            detections=tuple(detections),
            masked=tuple(sorted(k for k in kinds if self.action(k, place) == "mask")),
            blocked=tuple(sorted(k for k in kinds if self.action(k, place) == "block")),
        )

    def mask_text(self, text: str, place: Place) -> str:
        """``text`` with the kinds that are masked (or blocked) at ``place`` replaced."""
        found = self.scan(text)
        return self._masked(text, found, place, also_blocked=True)

    def _masked(
        self, text: str, found: list[Detection], place: Place, *, also_blocked: bool = False
    ) -> str:
        hidden = ("mask", "block") if also_blocked else ("mask",)
        pieces, cursor = [], 0
        for detection in found:
            if self.action(detection.kind, place) not in hidden:
                continue
            pieces.append(text[cursor : detection.start])
            pieces.append(mask_of(detection.kind))
            cursor = detection.end
        if not pieces:
            return text
        pieces.append(text[cursor:])
        return "".join(pieces)


def mask_of(kind: str) -> str:
    """What a masked value of ``kind`` is replaced with."""
    return f"[masked:{kind}]"
