"""Filling a tool's arguments from the task text and earlier results, against its JSON Schema.

Each parameter is read from its schema -- type, pattern, enum, range, nullability -- and
its description, and filled from what the conversation holds: the request text first
(ids, addresses, numbers, quoted text), then the records earlier tool results returned.
A required value that cannot be found is reported as missing, so the policy can look it
up with another tool (or ask the requester) instead of guessing.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

from agentlab.llm.sim.reading import (
    ACTION_CONCEPTS,
    CONCEPT_OF,
    IDENT,
    Observation,
    content_words,
    emails,
    flatten_text,
    numbers,
    overlap,
    proper_nouns,
    records,
    stem,
    stems,
    words,
)

# Which enum value a word asks for: ordinary English, not any tool's vocabulary.
ENUM_SYNONYMS = {
    "resolved": {"close", "closed", "resolve", "resolved", "fix", "fixed", "solved", "done"},
    "open": {"open", "reopen", "reopened", "unresolved"},
    "pending": {"pending", "hold", "waiting", "wait", "paused"},
    "urgent": {"urgent", "asap", "emergency", "immediately", "critical"},
    "high": {"high", "important", "soon"},
    "low": {"low", "minor", "whenever"},
}
NEUTRAL_ENUM = ("normal", "medium", "default", "standard", "open")
QUANTITY_WORDS = {"qty", "quantity", "count", "units", "unit", "number", "amount", "many"}
QUERY_NAMES = {"query", "q", "search", "keywords", "keyword", "term", "terms", "text"}
SHORT_TEXT_NAMES = {"title", "subject", "summary", "headline", "name"}
LONG_TEXT_NAMES = {"body", "message", "comment", "content", "description", "note", "details"}
SIGNATURE = "-- sent by the help-desk assistant (agentlab simulator)"


@dataclass
class FillContext:
    """What arguments are filled from."""

    text: str
    """The request for this call: one clause of the task, or an instruction."""
    task: str
    """The whole task."""
    observations: list[Observation] = field(default_factory=list)
    chosen: dict[str, Any] = field(default_factory=dict)
    """Values chosen so far for this call, by parameter name (they favour matching records)."""
    salt: str = ""
    """Makes the idempotency key this call's own."""
    ambiguous: dict[str, list[str]] = field(default_factory=dict)
    """Parameters several records fit equally well, with the values they offer."""
    is_lookup: bool = False
    """A lookup casts its net wide: optional filters stay null."""
    replies: tuple[str, ...] = ()
    """What the requester said after the task, in a conversation (answers to questions)."""

    def fact_records(self) -> list[dict[str, Any]]:
        """Records from results that answered (newest call first)."""
        found: list[dict[str, Any]] = []
        for observation in reversed(self.observations):
            if observation.is_done or observation.status == "awaiting_approval":
                found.extend(records(observation.data))
        return found


@dataclass
class Filled:
    """Arguments, and the required parameters that could not be filled."""

    arguments: dict[str, Any]
    missing: list[str]
    """Paths of required values nobody gave: ``supplier_id``, ``items.0.sku``."""
    ambiguous: dict[str, list[str]] = field(default_factory=dict)
    """Paths several records fit equally well, with the values they offer."""


class _Missing(Exception):
    pass


def fill_arguments(schema: dict[str, Any], ctx: FillContext) -> Filled:
    """Arguments for an object schema, filled from ``ctx``."""
    missing: list[str] = []
    arguments = _fill_object(schema, schema, ctx, "", missing)
    return Filled(arguments, missing, dict(ctx.ambiguous))


def resolve(schema: dict[str, Any], root: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """A schema with ``$ref`` followed and ``null`` alternatives removed; and if it is nullable."""
    nullable = False
    for _ in range(10):
        if "$ref" in schema:
            name = str(schema["$ref"]).rsplit("/", 1)[-1]
            schema = {
                **(root.get("$defs") or root.get("definitions") or {}).get(name, {}),
                **{k: v for k, v in schema.items() if k != "$ref"},
            }
            continue
        options = schema.get("anyOf") or schema.get("oneOf")
        if options:
            rest = [o for o in options if o.get("type") != "null"]
            nullable = nullable or len(rest) < len(options)
            merged = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
            schema = {**rest[0], **merged} if rest else {"type": "null"}
            if len(rest) > 1:
                schema["x-alternatives"] = rest
            continue
        kind = schema.get("type")
        if isinstance(kind, list):
            nullable = nullable or "null" in kind
            others = [k for k in kind if k != "null"]
            schema = {**schema, "type": others[0] if others else "null"}
        break
    return schema, nullable


def _fill_object(
    schema: dict[str, Any], root: dict[str, Any], ctx: FillContext, path: str, missing: list[str]
) -> dict[str, Any]:
    schema, _ = resolve(schema, root)
    props = schema.get("properties") or {}
    required = set(schema.get("required") or props)
    result: dict[str, Any] = {}
    for name, raw in props.items():
        prop, nullable = resolve(raw, root)
        where = f"{path}{name}"
        if nullable and ctx.is_lookup:
            result[name] = None
            continue
        try:
            value = _fill_value(
                name, prop, root, ctx, path=where, missing=missing, nullable=nullable
            )
        except _Missing as exc:
            if nullable:
                value = None
            elif name in required:
                if isinstance(exc, _Ambiguous):
                    ctx.ambiguous[where] = exc.options
                missing.append(where)
                continue
            else:
                continue
        result[name] = value
        if value is not None and not isinstance(value, (dict, list)):
            ctx.chosen[name] = value
    return result


def _fill_value(
    name: str,
    schema: dict[str, Any],
    root: dict[str, Any],
    ctx: FillContext,
    *,
    path: str,
    missing: list[str],
    nullable: bool = False,
) -> Any:
    kind = schema.get("type")
    doc = str(schema.get("description", ""))
    if name == "dry_run" and kind == "boolean":
        return False  # the executor decides; a model asks for the real thing
    if name == "idempotency_key":
        digest = hashlib.sha256(f"{ctx.salt}|{ctx.text}".encode()).hexdigest()
        return f"sim-{digest[:28]}"
    if "enum" in schema:
        return _enum(name, schema, ctx)
    if kind == "object":
        return _fill_object(schema, root, ctx, f"{path}.", missing)
    if kind == "array":
        return _array(schema, root, ctx, path=path, missing=missing)
    if kind == "boolean":
        return _boolean(name, doc, ctx)
    if kind in ("integer", "number"):
        return _number(name, schema, ctx, is_integer=kind == "integer")
    if kind == "string" or "x-alternatives" in schema:
        is_query = name.lower() in QUERY_NAMES
        if nullable and not is_query and "pattern" not in schema and payload(ctx.text) is None:
            value = _from_records(name, ctx, None)
            if value is None:
                raise _Missing  # nothing was said for an optional text: null
            return value
        return _string(name, schema, ctx)
    raise _Missing


# -- scalars ---------------------------------------------------------------------------------


def _enum(name: str, schema: dict[str, Any], ctx: FillContext) -> Any:
    values = [v for v in schema["enum"] if v is not None]
    said = set(words(ctx.text)) | {stem(w) for w in words(ctx.text)}
    for value in values:
        if str(value).lower() in said:
            return value
    for value in values:
        if ENUM_SYNONYMS.get(str(value).lower(), set()) & said:
            return value
    if name in ctx.chosen and ctx.chosen[name] in values:
        return ctx.chosen[name]
    if None in schema["enum"]:
        return None
    raise_if_filter(schema)
    for neutral in NEUTRAL_ENUM:
        if neutral in values:
            return neutral
    return values[0]


def raise_if_filter(schema: dict[str, Any]) -> None:
    """A filter nobody asked for is left out (its nullable caller turns that into null)."""
    doc = str(schema.get("description", "")).lower()
    if re.search(r"\bonly\b|\bor null\b|\bfilter", doc):
        raise _Missing


def _boolean(name: str, doc: str, ctx: FillContext) -> bool:
    cue = stems(f"{name.replace('_', ' ')} {doc}") - {"true", "false", "list", "only"}
    return len(cue & stems(ctx.text)) >= 2


def _number(name: str, schema: dict[str, Any], ctx: FillContext, *, is_integer: bool) -> Any:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    cue = {stem(w) for w in words(f"{name.replace('_', ' ')} {schema.get('description', '')}")}
    value: float | None = None
    if cue & QUANTITY_WORDS and name not in ("limit", "top_k", "k"):
        said = numbers(ctx.text)
        if said:
            value = said[0]
        elif (deficit := _deficit(ctx)) is not None:
            value = deficit
    if value is None:
        value = 3 if (low is not None and high is not None and low <= 3 <= high) else (low or 1)
    if low is not None:
        value = max(value, low)
    if high is not None:
        value = min(value, high)
    return int(value) if is_integer else float(value)


def _deficit(ctx: FillContext) -> float | None:
    """Enough to bring the chosen record back to its reorder point (how a buyer restocks)."""
    record = ctx.chosen.get("__record__")
    if not isinstance(record, dict):
        return None
    target = next(
        (
            v
            for k, v in record.items()
            if re.search(r"reorder|target|min", k) and isinstance(v, (int, float))
        ),
        None,
    )
    current = next(
        (
            v
            for k, v in record.items()
            if re.search(r"on_hand|stock|available", k) and isinstance(v, (int, float))
        ),
        None,
    )
    if target is None or current is None:
        return None
    return float(max(target - current, 1))


def _string(name: str, schema: dict[str, Any], ctx: FillContext) -> str:
    pattern = schema.get("pattern")
    doc = str(schema.get("description", ""))
    if (pattern and "@" in pattern) or schema.get("format") == "email" or "email" in name:
        found = emails(ctx.text) or emails(ctx.task)
        if found:
            return found[0]
        record_value = _from_records(name, ctx, pattern)
        if record_value is not None:
            return record_value
        raise _Missing
    if pattern:
        return _patterned(name, pattern, ctx)
    lowered = name.lower()
    if lowered in QUERY_NAMES or re.search(r"look for|search|part of", doc, re.I):
        return _query(doc, schema, ctx)
    if lowered in SHORT_TEXT_NAMES or re.search(r"one-line|summary|subject|title", doc, re.I):
        summary = _summary(ctx.text)
        if len(summary.split()) < 3:
            summary = _summary(ctx.task)
        return _clip(summary, schema)
    if lowered in LONG_TEXT_NAMES or re.search(r"body|comment|what happened|text", doc, re.I):
        return _clip(_body(ctx), schema)
    value = _from_records(name, ctx, None)
    if value is not None:
        return value
    return _clip(_summary(ctx.text), schema)


def _patterned(name: str, pattern: str, ctx: FillContext) -> str:
    regex = re.compile(pattern)
    prefix = re.match(r"\^([A-Za-z]+-)", pattern)
    taken = {str(v) for k, v in ctx.chosen.items() if k != name}
    tokens = re.findall(r"[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]|[A-Za-z0-9]", ctx.text)
    for token in tokens:
        if token in taken or not regex.search(token):
            continue
        looks_like_id = (
            bool(prefix)
            or bool(IDENT.fullmatch(token))  # a code in capitals: ADAPTER-USBC-HDMI
            or bool(re.search(r"[0-9]", token) and re.search(r"[-.]", token))
        )
        if looks_like_id:
            record = next((r for r in ctx.fact_records() if r.get(name) == token), None)
            if record is not None:
                ctx.chosen["__record__"] = record
            return token
    value = _from_records(name, ctx, regex)
    if value is not None:
        return value
    raise _Missing


def _from_records(name: str, ctx: FillContext, regex: re.Pattern[str] | str | None) -> Any:
    """The value of ``name`` in the record that best matches the request, if one stands out."""
    if isinstance(regex, str):
        regex = re.compile(regex)
    scored: list[tuple[int, int, Any, dict[str, Any]]] = []
    chosen = {str(v) for k, v in ctx.chosen.items() if not k.startswith("__")}
    for order, record in enumerate(ctx.fact_records()):
        value = record.get(name)
        if value is None or isinstance(value, (dict, list)):
            continue
        if regex is not None and not regex.search(str(value)):
            continue
        text = flatten_text(record) + " " + " ".join(str(v) for v in record.values())
        score = 2 * overlap(ctx.text, text)
        score += 4 * sum(1 for noun in proper_nouns(ctx.text) if noun.lower() in text.lower())
        if next((k for k in record if k == "id" or k.endswith("_id")), None) == name:
            score += 1  # the record is the thing itself, not something that refers to it
        score += 3 * sum(1 for v in record.values() if str(v) in chosen and str(v) != str(value))
        if record.get("is_active") is False:
            score -= 5
        scored.append((score, -order, value, record))
    if not scored:
        return None
    scored.sort(key=lambda item: (item[0], item[1]), reverse=True)
    best = scored[0]
    rivals = [item for item in scored[1:] if item[0] == best[0] and str(item[2]) != str(best[2])]
    if rivals:
        raise _Ambiguous(name, [str(best[2]), *(str(r[2]) for r in rivals)])
    ctx.chosen["__record__"] = best[3]
    return best[2]


class _Ambiguous(_Missing):
    def __init__(self, name: str, options: list[str]) -> None:
        super().__init__(name)
        self.options = options


def _query(doc: str, schema: dict[str, Any], ctx: FillContext) -> str:
    if re.search(r"\bname\b", doc, re.I):
        found = proper_nouns(ctx.text)
        # "A4" in "A4 paper from Osaka Paper Works" is a size, not a name
        names = [n for n in found if not re.search(r"[0-9]", n)] or found
        if names:
            return _clip(names[0], schema)
        if "empty" in doc.lower():
            return ""
    return _clip(" ".join(keywords(ctx.text)), schema)


def keywords(text: str, limit: int = 6) -> list[str]:
    """The words of a request that say what it is about (not what to do)."""
    found = []
    for word in content_words(text):
        concept = CONCEPT_OF.get(word) or CONCEPT_OF.get(stem(word))
        if concept in ACTION_CONCEPTS or word in found:
            continue
        found.append(word)
    return found[:limit] or content_words(text)[:limit]


def payload(text: str) -> str | None:
    """What a request says to write: after "saying", "that", a colon, or in quotes."""
    quoted = re.search(r"[\"“']([^\"”']{3,})[\"”']", text)
    if quoted:
        return quoted.group(1).strip()
    said = re.search(
        r"\b(?:saying|that says|to say|telling them|with the note|noting)\b:?\s*(.+)",
        text,
        re.IGNORECASE,
    )
    if said:
        return said.group(1).strip()
    colon = text.split(":", 1)
    if len(colon) == 2 and len(colon[1].strip()) > 3 and "@" not in colon[1][:1]:
        return colon[1].strip()
    that = re.search(r"\bthat\s+(.+)", text, re.IGNORECASE)
    if that:
        return that.group(1).strip()
    return None


def _summary(text: str) -> str:
    body = payload(text) or text
    kept = [w for w in re.findall(r"\S+", re.sub(r"\S+@\S+", "", body))][:10]
    summary = " ".join(kept).strip(" .,:;") or "Request from the help desk"
    summary = summary[0].upper() + summary[1:]
    return summary if len(summary) >= 3 else f"{summary} request"


def _body(ctx: FillContext) -> str:
    lines = [payload(ctx.text) or ctx.task.strip()]
    if ctx.replies:  # a conversation: what the requester added when asked
        lines.append("Requester: " + " ".join(r.strip() for r in ctx.replies))
    evidence = evidence_lines(ctx.observations)
    if evidence:
        lines.append("Details: " + "; ".join(evidence))
    lines.append(SIGNATURE)
    return "\n\n".join(line for line in lines if line)


def evidence_lines(observations: list[Observation]) -> list[str]:
    """One line per completed write: its tool and the ids and amounts it returned."""
    lines = []
    for observation in observations:
        if not observation.is_done or observation.arguments is None:
            continue
        if (
            "dry_run" not in observation.arguments
            and "idempotency_key" not in observation.arguments
        ):
            continue
        lines.append(f"{observation.tool}: {salient(observation.data)}")
    return lines


def salient(data: Any, limit: int = 6) -> str:
    """The identifying parts of a result: ids, names, statuses, amounts."""
    record = data.get("result", data) if isinstance(data, dict) else data
    if not isinstance(record, dict):
        return json.dumps(record, ensure_ascii=False)[:200]
    parts = []
    for key, raw in record.items():
        value = (
            ", ".join(raw)
            if isinstance(raw, list) and all(isinstance(v, str) for v in raw)
            else raw
        )
        if isinstance(value, (dict, list)) or value is None or isinstance(value, bool):
            continue
        if re.search(
            r"(_id$|^id$|status|total|amount|price|name|title|qty|on_hand|subject|^to$)", key
        ):
            parts.append(f"{key.replace('_', ' ')} {value}")
    return ", ".join(parts[:limit]) or json.dumps(record, ensure_ascii=False)[:200]


def _clip(text: str, schema: dict[str, Any]) -> str:
    high = schema.get("maxLength")
    low = schema.get("minLength", 0)
    if high is not None and len(text) > high:
        text = text[: max(high - 1, 0)].rstrip() + ("…" if high > 1 else "")
        text = text[:high]
    if len(text) < low:
        text = text + "." * (low - len(text))
    return text


# -- arrays ------------------------------------------------------------------------------------


def _array(
    schema: dict[str, Any],
    root: dict[str, Any],
    ctx: FillContext,
    *,
    path: str,
    missing: list[str],
) -> list[Any]:
    items, _ = resolve(schema.get("items") or {}, root)
    low = schema.get("minItems", 0)
    high = schema.get("maxItems", 50)
    if items.get("type") == "object":
        values = _object_items(items, root, ctx, path, missing)
    elif "@" in str(items.get("pattern", "")) or items.get("format") == "email":
        values = (emails(ctx.text) or emails(ctx.task))[:high]
    elif items.get("type") == "string" and "enum" in items:
        said = set(words(ctx.text))
        values = [v for v in items["enum"] if str(v).lower() in said]
    else:
        values = keywords(ctx.text)[:high] if items.get("type") == "string" else []
    if len(values) < low:
        raise _Missing
    return values


def _object_items(
    items: dict[str, Any], root: dict[str, Any], ctx: FillContext, path: str, missing: list[str]
) -> list[dict[str, Any]]:
    props = items.get("properties") or {}
    if set(props) >= {"name", "value"}:
        pairs = re.findall(r"\b([a-z][a-z0-9_]{0,39})\s*[=:]\s*([^\s,;]+)", ctx.text)
        return [{"name": key, "value": _scalar(value)} for key, value in pairs]
    key = next(
        (n for n, p in props.items() if resolve(p, root)[0].get("pattern")), next(iter(props), "")
    )
    key_schema, _ = resolve(props.get(key, {}), root)
    regex = re.compile(str(key_schema.get("pattern", ".+")))
    taken = {str(v) for v in ctx.chosen.values()}
    found = [
        token
        for token in dict.fromkeys(re.findall(r"\b[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+\b", ctx.text))
        if regex.search(token) and token not in taken
    ]
    # "USB-C docking stations (DOCK-USB-C)": a token inside a longer one is a part of its name.
    mentioned = [t for t in found if not any(t != other and t in other for other in found)]
    lines: list[dict[str, Any]] = []
    for token in mentioned or [None]:
        sub = FillContext(
            text=_around(ctx.text, token) if token else ctx.text,
            task=ctx.task,
            observations=ctx.observations,
            chosen=dict(ctx.chosen),
            salt=ctx.salt,
        )
        before = len(missing)
        line = _fill_object(items, root, sub, f"{path}.{len(lines)}.", missing)
        ctx.ambiguous.update(sub.ambiguous)
        if len(missing) == before and not sub.ambiguous:
            lines.append(line)
    return _one_line_per(key, lines)


def _one_line_per(key: str, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first line for each value of ``key``: one SKU is one line of an order."""
    seen: set[str] = set()
    kept = []
    for line in lines:
        value = line.get(key)
        if value is not None and str(value) in seen:
            continue
        if value is not None:
            seen.add(str(value))
        kept.append(line)
    return kept


def said_quantity(text: str, token: str) -> float | None:
    """The quantity ``text`` gives for ``token`` ("order 16 TONER-BK-05" -> 16), if any."""
    if token not in text:
        return None
    said = numbers(_around(text, token))
    return said[0] if said else None


def asked_status(text: str) -> str | None:
    """The status a request asks a record to get ("resolve ticket X" -> ``resolved``).

    Read from the words outside what it says to write, so a comment's text ("saying it is
    fixed") asks for nothing.
    """
    said = payload(text)
    asked = set(words(text.replace(said, " ") if said else text))
    asked |= {stem(w) for w in asked}
    for value in ("resolved", "pending", "open"):
        if ENUM_SYNONYMS[value] & asked:
            return value
    return None


def _around(text: str, token: str) -> str:
    """The words that go with ``token``, its quantity among them.

    From the number just before it ("order 5 X"), or else up to the next id after it ("top
    up X with 30 packs").
    """
    index = text.find(token)
    before = IDENT.sub(" ", text[max(index - 30, 0) : index]).split()  # other ids are not its
    counted = [i for i, word in enumerate(before) if numbers(word)]
    if counted:
        return " ".join([*before[counted[-1] :], token])
    after = text[index + len(token) : index + len(token) + 40]
    following = re.search(r"\b[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+\b", after)
    return token + (after[: following.start()] if following else after)


def _scalar(text: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (int, float, bool)) else text


# -- mistakes --------------------------------------------------------------------------------


def corrupt(arguments: dict[str, Any], schema: dict[str, Any], rng: random.Random) -> str:
    """Arguments broken the way models break them: bad JSON, out of range, off pattern."""
    options: list[str] = ["malformed"]
    flat = leaves(arguments)
    if any(isinstance(v, int) and not isinstance(v, bool) for _, v in flat):
        options += ["range", "type"]
    if any(isinstance(v, str) and re.search(r"[A-Z]+-\d", v) for _, v in flat):
        options.append("pattern")
    if arguments:
        options.append("missing")
    kind = rng.choice(options)
    broken = json.loads(json.dumps(arguments))
    if kind == "malformed":
        text = json.dumps(arguments, ensure_ascii=False)
        return text[: max(len(text) - rng.randint(1, 6), 1)]
    if kind == "missing":
        broken.pop(rng.choice(sorted(broken)))
    for path, value in leaves(broken):
        if kind == "range" and isinstance(value, int) and not isinstance(value, bool):
            set_at(broken, path, value * 1000 + 1000)
            break
        if kind == "type" and isinstance(value, int) and not isinstance(value, bool):
            set_at(broken, path, str(value))
            break
        if kind == "pattern" and isinstance(value, str) and re.search(r"[A-Z]+-\d", value):
            set_at(broken, path, value.split("-", 1)[1].lstrip("0") or "0")
            break
    return json.dumps(broken, ensure_ascii=False)


def leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every scalar in nested dicts and lists, with the path of keys and indexes to it."""
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in leaves(v, (*path, k))]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in leaves(v, (*path, i))]
    return [(path, value)]


def set_at(target: Any, path: tuple[Any, ...], value: Any) -> None:
    """Replace the scalar at ``path`` (as :func:`leaves` gives it) in ``target``."""
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
