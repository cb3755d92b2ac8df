"""Slips no schema catches: a write's value that is valid but not the one the task asked for.

A small model copies "16" as "61", takes the neighbouring ticket, or sends the mail to the
address a lookup returned instead of the one the requester gave. The arguments still match
every pattern and range, so the executor's validation lets them through; only a check of
the outcome against the task (a verifier) can see them. Only values the task itself names
slip -- a number, an id, an address in its text -- so what slipped is what was asked.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

from agentlab.llm.sim.reading import (
    IDENT,
    Observation,
    emails,
    identifiers,
    numbers,
    records,
)
from agentlab.llm.sim.schema_fill import leaves, resolve, set_at


def slip_value(
    arguments: dict[str, Any],
    schema: dict[str, Any],
    task: str,
    observations: list[Observation],
    rng: random.Random,
) -> tuple[dict[str, Any], str] | None:
    """``arguments`` with one value the task named replaced by a plausible wrong one.

    Returns:
        The changed arguments and what changed (``items.0.qty: 16 -> 61``), or None when no
        value the task named can slip (nothing to get wrong).
    """
    said_numbers = {int(n) for n in numbers(task) if n == int(n)}
    said_ids = set(identifiers(task))
    said_emails = {a.lower() for a in emails(task)}
    seen = _result_values(observations)
    options: list[tuple[tuple[Any, ...], Any, list[Any]]] = []
    for path, value in leaves(arguments):
        if isinstance(value, bool):
            continue
        if isinstance(value, int) and value in said_numbers:
            low, high = _bounds(schema, path)
            others = _number_slips(value, said_numbers, low, high)
        elif isinstance(value, str) and value.lower() in said_emails:
            others = [a for a in seen["emails"] if a.lower() not in said_emails]
        elif isinstance(value, str) and value in said_ids:
            key = next((p for p in reversed(path) if isinstance(p, str)), "")
            others = _id_slips(value, key, seen["ids"], said_ids)
        else:
            continue
        if others:
            options.append((path, value, others))
    if not options:
        return None
    path, value, others = rng.choice(options)
    wrong = rng.choice(others)
    changed = json.loads(json.dumps(arguments))
    set_at(changed, path, wrong)
    where = ".".join(str(p) for p in path)
    return changed, f"{where}: {value} -> {wrong}"


def _number_slips(value: int, said: set[int], low: float | None, high: float | None) -> list[int]:
    """Numbers a hurried copy gives: another number of the text, digits swapped or lost."""
    digits = str(value)
    found = [n for n in sorted(said) if n != value]
    if len(digits) >= 2:
        found.append(int(digits[::-1]))  # 16 -> 61, 12 -> 21
        found += [int(digits[:i] + digits[i + 1 :]) for i in range(len(digits))]  # 16 -> 6, 1
    else:
        found += [value * 10, value + 1, value - 1]  # 2 -> 20, 3, 1
    return list(
        dict.fromkeys(
            n
            for n in found
            if n != value and n > 0 and (low is None or n >= low) and (high is None or n <= high)
        )
    )


def _id_slips(value: str, key: str, seen: dict[str, list[str]], said: set[str]) -> list[str]:
    """Ids like ``value``: another of the same kind a result listed, or a neighbouring one."""
    kind = value.split("-", 1)[0]
    found = [v for v in seen.get(key, []) if v != value and v not in said]
    found += [
        v
        for values in seen.values()
        for v in values
        if v.split("-", 1)[0] == kind and v != value and v not in said
    ]
    number = re.search(r"(\d{3,})$", value)
    if number:
        width, n = len(number.group(1)), int(number.group(1))
        for near in (n - 1, n + 1):
            if near > 0:
                found.append(value[: number.start()] + str(near).zfill(width))
    return list(dict.fromkeys(v for v in found if v not in said))


def _result_values(observations: list[Observation]) -> dict[str, Any]:
    """Ids (by the key that held them) and addresses the results so far returned."""
    ids: dict[str, list[str]] = {}
    found_emails: list[str] = []
    for observation in observations:
        if not observation.is_done:
            continue
        for record in records(observation.data):
            for key, value in record.items():
                if isinstance(value, str) and IDENT.fullmatch(value):
                    ids.setdefault(key, []).append(value)
        found_emails += emails(observation.text())
    return {"ids": ids, "emails": list(dict.fromkeys(found_emails))}


def _bounds(schema: dict[str, Any], path: tuple[Any, ...]) -> tuple[float | None, float | None]:
    """The range the schema allows at ``path`` (``items.0.qty``)."""
    leaf, _ = resolve(schema, schema)
    for part in path:
        if isinstance(part, int):
            leaf, _ = resolve(leaf.get("items") or {}, schema)
        else:
            leaf, _ = resolve((leaf.get("properties") or {}).get(part) or {}, schema)
    low = leaf.get("minimum", leaf.get("exclusiveMinimum"))
    high = leaf.get("maximum", leaf.get("exclusiveMaximum"))
    return low, high
