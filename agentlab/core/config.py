"""Load YAML configuration into pydantic models, with errors that name the file and line.

Suites, policies and rate limits are YAML written by people. When one is wrong, the error says
``path:line: field 'a.b': what was expected``, for every wrong field at once, so the author can
fix the file in one go.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from agentlab.core.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)

Loc = tuple[str | int, ...]


class _LineTrackingBuilder:
    """Builds plain data from a composed YAML tree and notes the line of every location."""

    def __init__(self, path: str | Path) -> None:
        self.path = path
        self.lines: dict[Loc, int] = {}
        self._scalars = yaml.SafeLoader("")

    def build(self, node: yaml.Node, loc: Loc = ()) -> Any:
        self.lines[loc] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                line = key_node.start_mark.line + 1
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise ConfigError(
                        f"{self.path}:{line}: merge keys (<<) are not supported",
                        hint="write the keys out; anchors and aliases (&name, *name) do work",
                    )
                if not isinstance(key_node, yaml.ScalarNode):
                    raise ConfigError(
                        f"{self.path}:{line}: a mapping key must be a plain value, "
                        f"not a {'list' if isinstance(key_node, yaml.SequenceNode) else 'mapping'}",
                        hint="quote the key, or restructure the mapping",
                    )
                key = self.build(key_node, (*loc, "<key>"))
                if key in result:
                    raise ConfigError(
                        f"{self.path}:{line}: key {key!r} appears twice",
                        hint="remove or rename one of them",
                    )
                result[key] = self.build(value_node, (*loc, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, index)) for index, item in enumerate(node.value)]
        try:
            return self._scalars.construct_object(node, deep=True)
        except yaml.YAMLError:  # e.g. a tag such as !env that safe loading refuses
            raise ConfigError(
                f"{self.path}:{node.start_mark.line + 1}: cannot read value {node.value!r} "
                f"tagged {node.tag}",
                hint="remove the tag: agentlab reads plain YAML (no custom or Python tags)",
            ) from None


def _line_of(loc: Loc, lines: dict[Loc, int]) -> int:
    """The line of the deepest part of ``loc`` that exists in the file."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def parse_yaml_model(
    text: str, model: type[ModelT], *, path: str | Path, context: dict[str, Any] | None = None
) -> ModelT:
    """Validate YAML text against ``model``.

    Args:
        text: The YAML document.
        model: The pydantic model the document must satisfy.
        path: The file name to put in error messages.
        context: Passed to the model's validators (pydantic's validation context), for
            checks against things outside the file, such as a registry of known names.

    Raises:
        ConfigError: for YAML syntax errors and for every field that fails validation, each
            as ``path:line: field 'x.y': message``.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(
            f"{path}:{line}: not valid YAML: {exc.problem}",
            hint="check indentation and quoting near that line",
        ) from exc
    builder = _LineTrackingBuilder(path)
    data = {} if node is None else builder.build(node)
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            field = ".".join(str(part) for part in loc) or "(document)"
            problems.append(
                f"{path}:{_line_of(loc, builder.lines)}: field {field!r}: {error['msg']}"
            )
        message = (
            problems[0]
            if len(problems) == 1
            else (f"{len(problems)} problems in {path}:\n  " + "\n  ".join(problems))
        )
        raise ConfigError(
            message,
            hint=f"compare with the {model.__name__} fields in the docs",
        ) from None


def load_yaml_model(path: str | Path, model: type[ModelT]) -> ModelT:
    """Read a YAML file and validate it against ``model``; see :func:`parse_yaml_model`.

    Raises:
        ConfigError: the file is missing or unreadable, or its content is not valid.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file", hint="check the path and the working directory"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return parse_yaml_model(text, model, path=path)
