"""database_schema: the restored schema is the backed-up schema, nothing missing or extra.

The schema inventory (tables, columns, constraints, indexes, views, functions, triggers,
sequences, enums, extensions, RLS policies, grants, publications) is computed by the same
SQL here as at backup time. Each difference is reported exactly once: table-scoped objects
under their table, policies under the policy, everything else under its kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import psycopg
import pytest

from pytest_supabase_restore.model import Manifest
from pytest_supabase_restore.proof.inventory import (
    Inventory,
    InventoryDiff,
    InventoryView,
    diff_inventory,
)
from pytest_supabase_restore.proof.scope import schemas_in_scope
from pytest_supabase_restore.smoke_tests._support import (
    TABLE_SCOPED_KINDS,
    Facts,
    Unloadable,
    object_key,
    owner_table,
    shorten,
)

pytestmark = pytest.mark.supabase_category("database_schema")


def _table_of(kind: str, key: str, entry: Mapping[str, Any], tables: list[str]) -> str | None:
    """The table an inventory entry belongs to (None: not table-scoped)."""
    if kind == "tables":
        return key
    if kind == "indexes":
        return str(entry.get("table")) if entry.get("table") else None
    if kind in ("columns", "constraints", "triggers", "policies"):
        split = owner_table(key, tables)
        return split[0] if split else None
    return None


def _select(
    inventory: InventoryView, kinds: tuple[str, ...], keep: Callable[[str, str, Any], bool]
) -> dict[str, dict[str, Any]]:
    return {
        kind: {k: v for k, v in inventory.get(kind, {}).items() if keep(kind, k, v)}
        for kind in kinds
    }


def _fail_on(diffs: list[InventoryDiff], what: str, left_out: list[str] | None = None) -> None:
    if diffs:
        lines = [str(d) for d in diffs]
        note = ""
        if left_out:
            note = (
                f" (not compared: {len(left_out)} object(s) that depend on an extension this "
                f"staging target cannot load: {shorten(left_out, 5)})"
            )
        pytest.fail(
            f"{what}: {len(diffs)} schema difference(s) from the backup: {shorten(lines)}{note}",
            pytrace=False,
        )


def _compare(
    expected: InventoryView,
    actual: InventoryView,
    what: str,
    unloadable: Unloadable,
    tables: list[str],
    drill_fact: Any,
) -> None:
    """Diff ``expected`` with ``actual``, leaving out, on both sides, every object that
    depends on an extension this staging target cannot load; what was left out is recorded
    (``not_compared``) and named in a failure."""
    expected, left_out = unloadable.split(expected, tables)
    actual, _ = unloadable.split(actual, tables)
    if left_out:
        drill_fact("not_compared", left_out)
    _fail_on(diff_inventory(expected, actual), what, left_out)


def _all_tables(facts: Facts, actual: InventoryView) -> list[str]:
    return sorted(set(facts.inventory.get("tables", {})) | set(actual.get("tables", {})))


def test_table_schema(
    schema_table: str,
    facts: Facts,
    staging_inventory: Inventory,
    unloadable: Unloadable,
    drill_fact: Any,
) -> None:
    """The table, its columns, constraints, indexes and triggers are as backed up (those
    that depend on an extension this staging target cannot load left out, and named)."""
    tables = _all_tables(facts, staging_inventory)

    def keep(kind: str, key: str, entry: Any) -> bool:
        return _table_of(kind, key, entry, tables) == schema_table

    kinds = tuple(k for k in TABLE_SCOPED_KINDS if k in facts.inventory)
    expected = _select(facts.inventory, kinds, keep)
    actual = _select(staging_inventory, kinds, keep)
    _compare(expected, actual, schema_table, unloadable, tables, drill_fact)


def test_policy(schema_policy: str, facts: Facts, staging_inventory: Inventory) -> None:
    """The row-level security policy exists with the same command, roles and expressions."""
    key = object_key(schema_policy)
    expected = {"policies": {key: facts.inventory["policies"][key]}}
    found = staging_inventory.get("policies", {}).get(key)
    actual = {"policies": {key: found} if found is not None else {}}
    _fail_on(diff_inventory(expected, actual), f"policy {schema_policy}")


def test_schema_kind(
    schema_kind: str,
    facts: Facts,
    staging_inventory: Inventory,
    unloadable: Unloadable,
    drill_fact: Any,
) -> None:
    """Every object of this kind is as backed up, and nothing was added.

    For table-scoped kinds only objects on tables the backup does not know are reported
    here (the rest belong to ``test_table_schema``); for policies, only extra ones. Objects
    that depend on an extension this staging target cannot load (and the extension itself)
    are left out, and named.
    """
    known_tables = set(facts.inventory.get("tables", {}))
    tables = _all_tables(facts, staging_inventory)
    recorded_policies = set(facts.inventory.get("policies", {}))

    def keep(kind: str, key: str, entry: Any) -> bool:
        if kind == "policies":
            return key not in recorded_policies
        if kind in TABLE_SCOPED_KINDS:
            return _table_of(kind, key, entry, tables) not in known_tables
        return True

    expected = _select(facts.inventory, (schema_kind,), keep)
    actual = _select(staging_inventory, (schema_kind,), keep)
    _compare(expected, actual, schema_kind, unloadable, tables, drill_fact)


def test_no_extra_schemas(
    facts: Facts,
    manifest: Manifest,
    pinned_db: psycopg.Connection[Any],
    unloadable: Unloadable,
) -> None:
    """The restored copy has no schema in the backup's scope that the backup did not have
    (a schema an unloadable extension provides is not expected)."""
    found = schemas_in_scope(pinned_db)
    extra = sorted(set(found) - set(facts.scope))
    missing = sorted(
        s for s in set(facts.scope) - set(found) if unloadable.cause([f"schema {s}"]) is None
    )
    problems = [f"extra schema {s}" for s in extra] + [f"missing schema {s}" for s in missing]
    if problems:
        pytest.fail(f"schemas differ from the backup: {shorten(problems)}", pytrace=False)
