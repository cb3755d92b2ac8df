"""Patterns that expectations are written in, and the one function that matches them.

A suite says what a tool call's arguments or a world record must look like without spelling
out every field. A pattern is plain YAML data:

- a mapping matches a mapping that has every key of the pattern, each matching (extra keys
  in the value are fine: a *subset* match);
- a list matches a list of the same length, item by item;
- a scalar matches an equal scalar (``3`` matches ``3.0``);
- an operator mapping (one key starting with ``$``) matches by rule: ``{$regex: "^SUP-"}``,
  ``{$contains: toner}`` (case-insensitive substring), ``{$any: true}``, ``{$gte: 1}``,
  ``{$lte: 10}``, ``{$in: [a, b]}``, ``{$not: <pattern>}``, ``{$len: 2}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

OPERATORS = ("$regex", "$contains", "$any", "$gte", "$lte", "$in", "$not", "$len")


def is_operator(pattern: object) -> bool:
    """True for a one-key mapping whose key is one of :data:`OPERATORS`."""
    return isinstance(pattern, Mapping) and len(pattern) == 1 and next(iter(pattern)) in OPERATORS


def check_pattern(pattern: object, where: str = "pattern") -> list[str]:
    """Problems with a pattern itself, each naming where it is; empty when it is usable.

    Problems are an unknown ``$`` operator, a regex that does not compile, an operator given
    the wrong kind of value.
    """
    problems: list[str] = []
    if isinstance(pattern, Mapping):
        dollar = [k for k in pattern if isinstance(k, str) and k.startswith("$")]
        if dollar and not is_operator(pattern):
            problems.append(
                f"{where}: {', '.join(dollar)} is not an operator on its own; use one of "
                f"{', '.join(OPERATORS)} as the only key of its mapping"
            )
        elif is_operator(pattern):
            op, arg = next(iter(pattern.items()))
            if op == "$regex":
                try:
                    re.compile(str(arg))
                except re.error as exc:
                    problems.append(f"{where}: $regex {arg!r} does not compile: {exc}")
            elif op == "$not":
                problems += check_pattern(arg, f"{where}.$not")
            elif op in ("$gte", "$lte", "$len") and not isinstance(arg, int | float):
                problems.append(f"{where}: {op} needs a number, not {arg!r}")
            elif op == "$in" and not isinstance(arg, list):
                problems.append(f"{where}: $in needs a list, not {arg!r}")
        else:
            for key, value in pattern.items():
                problems += check_pattern(value, f"{where}.{key}")
    elif isinstance(pattern, list):
        for index, item in enumerate(pattern):
            problems += check_pattern(item, f"{where}[{index}]")
    return problems


def mismatch(pattern: object, value: object, where: str = "") -> str | None:
    """Why ``value`` does not match ``pattern`` (naming the first differing path), or None."""
    label = where or "value"
    if is_operator(pattern):
        assert isinstance(pattern, Mapping)
        op, arg = next(iter(pattern.items()))
        return _operator_mismatch(op, arg, value, label)
    if isinstance(pattern, Mapping):
        if not isinstance(value, Mapping):
            return f"{label}: expected a mapping, found {_short(value)}"
        for key, expected in pattern.items():
            if key not in value:
                return f"{label}.{key}: missing"
            why = mismatch(expected, value[key], f"{label}.{key}" if where else str(key))
            if why:
                return why
        return None
    if isinstance(pattern, list):
        if not isinstance(value, list | tuple):
            return f"{label}: expected a list, found {_short(value)}"
        if len(pattern) != len(value):
            return f"{label}: expected {len(pattern)} items, found {len(value)}"
        for index, (expected, item) in enumerate(zip(pattern, value, strict=True)):
            why = mismatch(expected, item, f"{label}[{index}]")
            if why:
                return why
        return None
    if _scalar_equal(pattern, value):
        return None
    return f"{label}: expected {_short(pattern)}, found {_short(value)}"


def matches(pattern: object, value: object) -> bool:
    """True when ``value`` matches ``pattern``."""
    return mismatch(pattern, value) is None


def _operator_mismatch(op: str, arg: Any, value: object, label: str) -> str | None:
    if op == "$any":
        return None if arg else f"{label}: {{$any: false}} matches nothing"
    if op == "$regex":
        if isinstance(value, str) and re.search(str(arg), value):
            return None
        return f"{label}: {_short(value)} does not match /{arg}/"
    if op == "$contains":
        text = value if isinstance(value, str) else str(value)
        if str(arg).lower() in text.lower():
            return None
        return f"{label}: {_short(value)} does not contain {arg!r}"
    if op in ("$gte", "$lte"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{label}: expected a number, found {_short(value)}"
        ok = value >= arg if op == "$gte" else value <= arg
        return None if ok else f"{label}: {value} is not {'>=' if op == '$gte' else '<='} {arg}"
    if op == "$in":
        if any(_scalar_equal(option, value) for option in arg):
            return None
        return f"{label}: {_short(value)} is not one of {arg}"
    if op == "$len":
        size = len(value) if isinstance(value, list | tuple | str | Mapping) else None
        return None if size == arg else f"{label}: expected length {arg}, found {size}"
    if op == "$not":
        return None if mismatch(arg, value) else f"{label}: {_short(value)} should not match"
    raise ValueError(f"unknown operator {op}")  # check_pattern refuses these at load time


def _scalar_equal(expected: object, value: object) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return expected is value
    if isinstance(expected, int | float) and isinstance(value, int | float):
        return float(expected) == float(value)
    return expected == value


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
