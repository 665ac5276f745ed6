"""The shape rules of the architecture issue, checked on the source itself: the manifest and the
drill state are typed records end to end, and the package has no import cycle."""

from __future__ import annotations

import ast
import dataclasses
import itertools
import typing
from pathlib import Path
from typing import Any

import pytest

from pytest_supabase_restore import model, results
from pytest_supabase_restore.proof import inventory, records

PACKAGE = Path(model.__file__).parent


def _records(module: Any) -> list[type]:
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and dataclasses.is_dataclass(obj)
        and obj.__module__ == module.__name__
    ]


def _any_in(hint: Any) -> bool:
    if hint is Any:
        return True
    return any(_any_in(arg) for arg in typing.get_args(hint))


@pytest.mark.parametrize(
    "record",
    [*_records(model), *_records(records), *_records(results)],
    ids=lambda r: r.__name__,
)
def test_manifest_and_drill_state_records_carry_no_any(record: type) -> None:
    """Every field of the manifest's records (``model``, ``proof.records``) and of the drill
    state (``results``) has a precise type: no ``Any`` at any depth, so no untyped dict
    crosses a module boundary for them."""
    hints = typing.get_type_hints(
        record, vars(model) | vars(records) | vars(results) | vars(inventory)
    )
    loose = sorted(name for name, hint in hints.items() if _any_in(hint))
    assert loose == [], f"{record.__name__}: fields typed with Any: {loose}"


def test_the_records_really_are_checked() -> None:
    """Control for the test above: the check sees the records and would catch an Any."""
    names = {r.__name__ for r in (*_records(model), *_records(records), *_records(results))}
    assert {"Manifest", "TableEntry", "Fingerprint", "KeyRange", "DrillState"} <= names
    assert _any_in(dict[str, Any]) and _any_in(list[dict[str, Any]] | None)
    assert not _any_in(dict[str, int | dict[str, str]])


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _top_level_imports(path: Path, name: str, package: bool) -> set[str]:
    """The package modules ``path`` imports when it is imported (not inside functions, not
    under ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    base = name.split(".") if package else name.split(".")[:-1]
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                target = ".".join([*anchor, *(node.module.split(".") if node.module else [])])
            else:
                target = node.module or ""
            if target.startswith("pytest_supabase_restore"):
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pytest_supabase_restore"))
    return found


def test_the_package_has_no_import_cycle() -> None:
    paths = {
        _module_name(p): p
        for p in PACKAGE.rglob("*.py")
        if "smoke_tests" not in p.relative_to(PACKAGE).parts
    }
    graph = {
        name: {
            m
            for m in _top_level_imports(path, name, path.name == "__init__.py")
            if m in paths and m != name
        }
        for name, path in paths.items()
    }
    assert len(graph) > 80 and sum(len(v) for v in graph.values()) > 150

    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    # A package's __init__ re-exporting its own modules is how Python packages work, not a
    # cycle between modules.
    real = [
        c
        for c in cycles
        if not any(a.startswith(b + ".") or b.startswith(a + ".") for a, b in itertools.pairwise(c))
    ]
    assert real == [], " ; ".join(" -> ".join(c) for c in real)
