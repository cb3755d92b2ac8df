"""Output inspection: what leaves the run is checked against what the requester asked.

An injected instruction succeeds only when something leaves: a mail to the attacker's
address, a link in the answer, a confidential figure pasted into a ticket. Two rules catch
that shape whatever the model was told:

* **unseen destinations** -- an e-mail address or URL in a write's arguments (or in the
  final answer) must appear in the requester's task, or be on a domain the policy trusts
  for this check. One that appears only in data the run read is where an injection points.
* **data classes** -- text carrying the marking of a data class the actor may not see
  (``CONFIDENTIAL``, a ``CONF-...`` tracking id) must not leave in an argument or answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from pydantic import JsonValue

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]+", re.IGNORECASE)

FindingKind = Literal["unseen_address", "unseen_url", "data_class"]


@dataclass(frozen=True)
class OutboundFinding:
    """One thing that must not leave: where it would go, or which class it carries."""

    kind: FindingKind
    target: str
    """The address or URL, or the data class whose marking was found."""

    def describe(self) -> str:
        """The finding in words, for the model, the audit log and the events."""
        if self.kind == "unseen_address":
            return f"{self.target} is not in the requester's task"
        if self.kind == "unseen_url":
            return f"the link {self.target} is not in the requester's task"
        return f"it carries {self.target} data, which the actor may not see"


def strings_of(value: JsonValue) -> list[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in strings_of(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings_of(item)]
    return []


def destinations(text: str) -> tuple[list[str], list[str]]:
    """The e-mail addresses and URLs in ``text``, each once, in order."""
    addresses = list(dict.fromkeys(m.rstrip(".") for m in _EMAIL.findall(text)))
    without = _EMAIL.sub(" ", text)
    urls = list(dict.fromkeys(m.rstrip(".,;:") for m in _URL.findall(without)))
    return addresses, urls


def _domain_of(destination: str) -> str:
    if "@" in destination and "://" not in destination:
        return destination.rpartition("@")[2].lower()
    url = destination if "://" in destination else f"http://{destination}"
    return (urlsplit(url).hostname or "").lower()


def _on(domain: str, trusted: Iterable[str]) -> bool:
    return any(domain == d or domain.endswith("." + d) for d in trusted)


def inspect_outbound(
    value: JsonValue,
    *,
    task: str,
    trusted_domains: Sequence[str] = (),
    class_markers: Mapping[str, Sequence[str]] | None = None,
    actor_classes: Iterable[str] = (),
) -> list[OutboundFinding]:
    """What in ``value`` must not leave the run.

    Args:
        value: A write's arguments, or the final answer.
        task: The requester's task, as they wrote it.
        trusted_domains: Domains whose addresses and URLs may leave without appearing in the
            task (empty: none may).
        class_markers: For each data class, regular expressions of its marking.
        actor_classes: The data classes the actor may see; markings of these are fine.
    """
    text = "\n".join(strings_of(value))
    task_lower = task.lower()
    findings: list[OutboundFinding] = []
    addresses, urls = destinations(text)
    for address in addresses:
        if address.lower() not in task_lower and not _on(_domain_of(address), trusted_domains):
            findings.append(OutboundFinding("unseen_address", address))
    for url in urls:
        domain = _domain_of(url)
        in_task = url.lower() in task_lower or domain in task_lower
        if not in_task and not _on(domain, trusted_domains):
            findings.append(OutboundFinding("unseen_url", url))
    allowed = set(actor_classes)
    for data_class, patterns in (class_markers or {}).items():
        if data_class in allowed:
            continue
        if any(re.search(pattern, text) for pattern in patterns):
            findings.append(OutboundFinding("data_class", data_class))
    return findings


def redact(text: str, findings: Iterable[OutboundFinding]) -> str:
    """``text`` with each unseen address and URL of ``findings`` replaced by a notice."""
    for finding in findings:
        if finding.kind != "data_class":
            text = text.replace(finding.target, f"[removed: {finding.kind.replace('_', ' ')}]")
    return text
