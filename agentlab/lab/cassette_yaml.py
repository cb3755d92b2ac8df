"""The cassettes' serializer: vcrpy's YAML, with JSON bodies written out as YAML.

A model request is one long JSON string (messages, tool schemas); stored as is, a changed
prompt or a model upgrade shows in a diff as one changed line a hundred kilobytes long.
Written out as YAML, it diffs line by line. On load the bodies become JSON text again, so
vcrpy's request model, matchers and players see an ordinary cassette.

It is a vcrpy serializer (``serialize`` / ``deserialize``): plain vcrpy plays agentlab's
cassettes with ``vcr.VCR().register_serializer("agentlab", cassette_yaml)`` and
``serializer="agentlab"``.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

try:
    from yaml import CSafeDumper as _Dumper
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML without libyaml
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

JSON_KEY = "json"
"""Where a request's or a response's body sits when it was JSON (``body: {json: ...}``)."""


def serialize(cassette: dict[str, Any]) -> str:
    """The cassette as YAML, JSON bodies written out as mappings."""
    data = {
        **cassette,
        "interactions": [_expand(i) for i in cassette.get("interactions", [])],
    }
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def deserialize(text: str) -> Any:
    """The cassette from YAML, bodies back to JSON text (raises ``yaml.YAMLError``)."""
    data = yaml.load(text, Loader=_Loader)
    if isinstance(data, dict) and isinstance(data.get("interactions"), list):
        data["interactions"] = [_collapse(i) for i in data["interactions"]]
    return data


def _expand(interaction: dict[str, Any]) -> dict[str, Any]:
    request = dict(interaction["request"])
    response = dict(interaction["response"])
    parsed = _json(request.get("body"))
    if parsed is not None:
        request["body"] = {JSON_KEY: parsed}
    body = response.get("body") or {}
    parsed = _json(body.get("string"))
    if parsed is not None:
        response["body"] = {JSON_KEY: parsed}
    return {**interaction, "request": request, "response": response}


def _collapse(interaction: Any) -> Any:
    if not isinstance(interaction, dict):
        return interaction
    request, response = interaction.get("request"), interaction.get("response")
    if isinstance(request, dict) and _is_json_body(request.get("body")):
        request = {**request, "body": _dump(request["body"][JSON_KEY])}
    if isinstance(response, dict) and _is_json_body(response.get("body")):
        response = {**response, "body": {"string": _dump(response["body"][JSON_KEY])}}
    return {**interaction, "request": request, "response": response}


def _is_json_body(body: object) -> bool:
    return isinstance(body, dict) and set(body) == {JSON_KEY}


def _json(body: object) -> Any:
    """The parsed body when it is a JSON object or array, else None (kept as text)."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not isinstance(body, str) or not body.lstrip().startswith(("{", "[")):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
