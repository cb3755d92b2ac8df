"""The ``@tool`` decorator and the registry the executor and the tool router read."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TypeVar

from pydantic import BaseModel

from agentlab.core.errors import ConfigError
from agentlab.core.records import SideEffect
from agentlab.tools.context import ToolContext, ToolOutput
from agentlab.tools.spec import EXECUTOR_FIELDS, ToolSpec

ArgsT = TypeVar("ArgsT", bound=BaseModel)


def tool(
    arguments: type[ArgsT],
    *,
    side_effect: SideEffect | str,
    scope: str,
    system: str,
    supports_dry_run: bool = True,
    masked_fields: Iterable[str] = (),
    targets: Callable[[ArgsT], tuple[str, ...]] | None = None,
    resources: Iterable[str] = (),
) -> Callable[[Callable[[ArgsT, ToolContext], Awaitable[ToolOutput]]], ToolSpec[ArgsT]]:
    """Turn an async implementation into a :class:`ToolSpec` named after the function.

    The arguments model's docstring is the description the model reads, and a write tool's
    arguments must carry ``dry_run`` and ``idempotency_key``: the article's checklist asks for
    an idempotency key in every write tool's definition.

    Raises:
        TypeError: the model has no docstring, a write lacks the two fields, or a masked field
            is not an argument. These are programming errors, caught when the module loads.
    """
    side_effect = SideEffect(side_effect)

    def wrap(run: Callable[[ArgsT, ToolContext], Awaitable[ToolOutput]]) -> ToolSpec[ArgsT]:
        doc = inspect.getdoc(arguments)
        if not doc:
            raise TypeError(f"{arguments.__name__} needs a docstring: it is the tool description")
        fields = set(arguments.model_fields)
        if side_effect is SideEffect.WRITE and not fields >= EXECUTOR_FIELDS:
            raise TypeError(f"{arguments.__name__} is a write: it needs {sorted(EXECUTOR_FIELDS)}")
        if unknown := set(masked_fields) - fields:
            raise TypeError(f"masked fields {sorted(unknown)} are not arguments of {run.__name__}")
        return ToolSpec(
            name=run.__name__,
            description=doc,
            arguments=arguments,
            side_effect=side_effect,
            scope=scope,
            system=system,
            run=run,
            supports_dry_run=supports_dry_run,
            masked_fields=frozenset(masked_fields),
            resources=frozenset(resources),
            **({"targets": targets} if targets else {}),
        )

    return wrap


class ToolRegistry:
    """The tools an executor knows, by name."""

    def __init__(self, tools: Iterable[ToolSpec[BaseModel]] = ()) -> None:
        self._tools: dict[str, ToolSpec[BaseModel]] = {}
        for spec in tools:
            self.add(spec)

    def add(self, spec: ToolSpec[BaseModel]) -> None:
        """Register a tool.

        Raises:
            ConfigError: another tool already has its name.
        """
        if spec.name in self._tools:
            raise ConfigError(f"two tools are named {spec.name!r}", hint="rename one of them")
        self._tools[spec.name] = spec

    def get(self, name: str) -> ToolSpec[BaseModel] | None:
        """The tool called ``name``, or None."""
        return self._tools.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[ToolSpec[BaseModel]]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        """The tool names, sorted."""
        return sorted(self._tools)
