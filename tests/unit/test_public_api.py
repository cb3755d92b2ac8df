from __future__ import annotations

import ast
from inspect import ismodule
from pathlib import Path

import agentlab

PACKAGE = Path(agentlab.__file__).parent


def test_public_names_are_exported_and_documented() -> None:
    names = {
        name
        for name, value in vars(agentlab).items()
        if not name.startswith("_") and not ismodule(value)
    }
    assert sorted(names) == agentlab.__all__
    undocumented = [name for name in names if not getattr(agentlab, name).__doc__]
    assert undocumented == []


def test_nothing_inside_the_package_imports_from_the_package_root() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "agentlab":
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
            if isinstance(node, ast.Import) and any(a.name == "agentlab" for a in node.names):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []
