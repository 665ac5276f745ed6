"""The schema inventory: what the schema consists of, read from the catalogs, and its diff."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import catalog
from .scope import SESSION_SETTINGS, Conn, scoped

_CONTYPES = {
    "c": "check",
    "f": "foreign key",
    "p": "primary key",
    "u": "unique",
    "t": "constraint trigger",
    "x": "exclusion",
}
_POLCMDS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}
_TGENABLED = {"O": "enabled", "D": "disabled", "R": "replica", "A": "always"}
_VOLATILITY = {"i": "immutable", "s": "stable", "v": "volatile"}
_PARALLEL = {"s": "safe", "r": "restricted", "u": "unsafe"}
_PROKINDS = {"f": "function", "p": "procedure", "a": "aggregate", "w": "window"}
_IDENTITY = {"a": "always", "d": "by default"}
_PERSISTENCE = {"p": "permanent", "u": "unlogged", "t": "temporary"}
_REPLIDENT = {"d": "default", "n": "nothing", "f": "full", "i": "index"}
_RELKIND_OBJ = {
    "r": "table",
    "p": "table",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
    "S": "sequence",
}
_DEFACL_OBJ = {"r": "tables", "S": "sequences", "f": "functions", "T": "types", "n": "schemas"}

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]
"""A value of the inventory as JSON holds it."""
ObjectInfo = dict[str, JsonValue]
"""One object's description: attribute name -> value (``owner``, ``definition``, ...)."""
_Objects = dict[str, ObjectInfo]
Inventory = dict[str, _Objects]
"""The schema inventory: kind -> object key -> :data:`ObjectInfo` (:func:`schema_inventory`)."""
InventoryView = Mapping[str, Mapping[str, Mapping[str, JsonValue]]]
"""An inventory as the comparisons read it."""
_Params = Mapping[str, Any]


def _rows(conn: Conn, query: str, params: _Params | None = None) -> list[tuple[Any, ...]]:
    return conn.execute(query, params).fetchall()


def _schemas(conn: Conn, params: _Params) -> _Objects:
    return {
        name: {"owner": owner, "comment": comment}
        for name, owner, comment in _rows(conn, catalog.SCHEMAS, params)
    }


def _tables(conn: Conn, params: _Params) -> _Objects:
    return {
        r[0]: {
            "kind": {"r": "table", "p": "partitioned table", "f": "foreign table"}[r[1]],
            "owner": r[2],
            "rls_enabled": r[3],
            "rls_forced": r[4],
            "persistence": _PERSISTENCE.get(r[5], r[5]),
            "partition_bound": r[6],
            "partition_key": r[7],
            "inherits": list(r[8]),
            "replica_identity": _REPLIDENT.get(r[9], r[9]),
            "options": sorted(r[10]),
            "comment": r[11],
        }
        for r in _rows(conn, catalog.TABLES, params)
    }


def _columns(conn: Conn, params: _Params) -> _Objects:
    return {
        r[0]: {
            "position": int(r[1]),
            "type": r[2],
            "not_null": r[3],
            "default": r[4],
            "generated": r[5],
            "identity": _IDENTITY.get(r[6]),
            "collation": r[7],
            "comment": r[8],
        }
        for r in _rows(conn, catalog.COLUMNS, params)
    }


def _constraints(conn: Conn, params: _Params) -> _Objects:
    return {
        r[0]: {
            "type": _CONTYPES.get(r[1], r[1]),
            "definition": r[2],
            "deferrable": r[3],
            "deferred": r[4],
            "validated": r[5],
        }
        for r in _rows(conn, catalog.CONSTRAINTS, params)
    }


def _indexes(conn: Conn, params: _Params) -> _Objects:
    return {
        r[0]: {
            "table": r[1],
            "definition": r[2],
            "unique": r[3],
            "primary": r[4],
            "replica_identity": r[5],
            "clustered": r[6],
        }
        for r in _rows(conn, catalog.INDEXES, params)
    }


def _view_like(conn: Conn, params: _Params, relkind: str) -> _Objects:
    found: _Objects = {}
    for r in _rows(conn, catalog.VIEWS, {**params, "relkind": relkind}):
        entry: dict[str, Any] = {
            "owner": r[1],
            "definition_md5": r[2],
            "options": sorted(r[3]),
            "comment": r[5],
        }
        if relkind == "m":
            entry["populated"] = r[4]
        found[r[0]] = entry
    return found


def _views(conn: Conn, params: _Params) -> _Objects:
    return _view_like(conn, params, "v")


def _matviews(conn: Conn, params: _Params) -> _Objects:
    return _view_like(conn, params, "m")


def _functions(conn: Conn, params: _Params) -> _Objects:
    return {
        r[0]: {
            "kind": _PROKINDS.get(r[1], r[1]),
            "returns": r[2],
            "arguments": r[3],
            "language": r[4],
            "security_definer": r[5],
            "volatility": _VOLATILITY.get(r[6], r[6]),
            "strict": r[7],
            "leakproof": r[8],
            "parallel": _PARALLEL.get(r[9], r[9]),
            "config": sorted(r[10]),
            "source_md5": r[11],
            "owner": r[12],
            "comment": r[13],
        }
        for r in _rows(conn, catalog.FUNCTIONS, params)
    }


def _triggers(conn: Conn, params: _Params) -> _Objects:
    return {
        key: {"definition": definition, "enabled": _TGENABLED.get(enabled, enabled)}
        for key, definition, enabled in _rows(conn, catalog.TRIGGERS, params)
    }


def _sequence(r: tuple[Any, ...]) -> dict[str, Any]:
    readable, last = r[8], r[9]
    return {
        "type": r[1],
        "start": int(r[2]),
        "increment": int(r[3]),
        "min": int(r[4]),
        "max": int(r[5]),
        "cycle": r[6],
        "cache": int(r[7]),
        # pg_sequence_last_value is NULL until nextval/setval(..., true) was called.
        "last_value": (int(last) if last is not None else int(r[2])) if readable else None,
        "is_called": (last is not None) if readable else None,
        "owned_by": r[10],
        "owner": r[11],
    }


def _sequences(conn: Conn, params: _Params) -> _Objects:
    return {r[0]: _sequence(r) for r in _rows(conn, catalog.SEQUENCES, params)}


def _enums(conn: Conn, params: _Params) -> _Objects:
    return {
        name: {"owner": owner, "labels": list(labels)}
        for name, owner, labels in _rows(conn, catalog.ENUMS, params)
    }


def _extensions(conn: Conn, _params: _Params) -> _Objects:
    return {
        name: {"version": version, "schema": schema}
        for name, version, schema in _rows(conn, catalog.EXTENSIONS)
    }


def _policies(conn: Conn, params: _Params) -> _Objects:
    return {
        r[0]: {
            "table": r[1],
            "name": r[2],
            "command": _POLCMDS.get(r[3], r[3]),
            "permissive": r[4],
            "roles": sorted(r[5]),
            "qual": r[6],
            "with_check": r[7],
        }
        for r in _rows(conn, catalog.POLICIES, params)
    }


def _grant_label(objtype: str) -> str:
    if objtype.startswith("relation:"):
        return _RELKIND_OBJ.get(objtype[9:], "relation")
    if objtype.startswith("default:"):
        return "default privileges on " + _DEFACL_OBJ.get(objtype[8:], objtype[8:])
    return objtype


def _grants(conn: Conn, params: _Params) -> _Objects:
    privileges: dict[str, set[str]] = {}
    for objtype, name, grantee, privilege, grantable in _rows(conn, catalog.GRANTS, params):
        key = f"{_grant_label(objtype)} {name} to {grantee}"
        privileges.setdefault(key, set()).add(privilege + ("*" if grantable else ""))
    return {key: {"privileges": [*sorted(privs)]} for key, privs in privileges.items()}


def _publications(conn: Conn, _params: _Params) -> _Objects:
    if conn.info.server_version < 150000:  # row filters, column lists, schemas: 15+
        return {}
    return {
        r[0]: {
            "owner": r[1],
            "all_tables": r[2],
            "insert": r[3],
            "update": r[4],
            "delete": r[5],
            "truncate": r[6],
            "via_root": r[7],
            "tables": sorted(r[8]),
            "schemas": sorted(r[9]),
        }
        for r in _rows(conn, catalog.PUBLICATIONS)
    }


# One reader per kind, in the order the manifest lists them.
_READERS: dict[str, Callable[[Conn, _Params], _Objects]] = {
    "schemas": _schemas,
    "tables": _tables,
    "columns": _columns,
    "constraints": _constraints,
    "indexes": _indexes,
    "views": _views,
    "matviews": _matviews,
    "functions": _functions,
    "triggers": _triggers,
    "sequences": _sequences,
    "enums": _enums,
    "extensions": _extensions,
    "policies": _policies,
    "grants": _grants,
    "publications": _publications,
}

INVENTORY_KINDS: tuple[str, ...] = tuple(_READERS)
"""The kinds of object :func:`schema_inventory` lists, in its order."""


def schema_inventory(conn: Conn, schemas: Sequence[str]) -> Inventory:
    """What the schema of ``schemas`` consists of: kind -> object key -> description.

    Kinds are :data:`INVENTORY_KINDS`. Keys are unquoted dotted names (functions:
    ``schema.name(argtypes)``; grants: ``<object type> <name> to <grantee>``). Everything is
    JSON-serialisable and sorted, and excludes OIDs and anything else a faithful restore may
    change. Extensions and publications are listed whole; all else only within ``schemas``.
    Objects that belong to an extension are left to the extension's own entry.
    """
    params = {"schemas": list(schemas)}
    with scoped(conn, SESSION_SETTINGS):
        found = {kind: read(conn, params) for kind, read in _READERS.items()}
    return {kind: {key: objs[key] for key in sorted(objs)} for kind, objs in found.items()}


@dataclass(frozen=True)
class InventoryDiff:
    """One difference between the recorded and the restored schema."""

    kind: str
    key: str
    problem: str  # "missing" | "extra" | "changed"
    detail: str

    def __str__(self) -> str:
        text = f"{self.kind} {self.key}: {self.problem}"
        return f"{text} ({self.detail})" if self.detail else text


def _show(value: JsonValue) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= 160 else text[:157] + "..."


def _int(value: JsonValue, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _sequence_next(desc: Mapping[str, JsonValue]) -> int | None:
    last = desc.get("last_value")
    if not isinstance(last, int):
        return None
    return last + _int(desc.get("increment"), 1) if desc.get("is_called") else last


def _changed_fields(
    kind: str, exp: Mapping[str, JsonValue], act: Mapping[str, JsonValue]
) -> list[str]:
    skip: set[str] = set()
    notes: list[str] = []
    if kind == "sequences":
        # Tests on staging may consume values, so a sequence may be ahead; only behind
        # (values would be handed out again) or unreadable on one side is reported.
        skip = {"last_value", "is_called"}
        exp_next, act_next = _sequence_next(exp), _sequence_next(act)
        if exp_next is not None and act_next is not None:
            ascending = _int(exp.get("increment"), 1) > 0
            behind = act_next < exp_next if ascending else act_next > exp_next
            if behind:
                notes.append(
                    f"last_value: expected {exp.get('last_value')} (is_called "
                    f"{_show(exp.get('is_called'))}), actual {act.get('last_value')} "
                    f"(is_called {_show(act.get('is_called'))}): set back"
                )
    for name in sorted(set(exp) | set(act)):
        if name in skip:
            continue
        if exp.get(name) != act.get(name):
            notes.append(f"{name}: expected {_show(exp.get(name))}, actual {_show(act.get(name))}")
    return notes


def diff_inventory(expected: InventoryView, actual: InventoryView) -> list[InventoryDiff]:
    """Every difference between two :func:`schema_inventory` results, sorted by kind and key.

    Kinds the expected inventory does not record are not compared (an older manifest). The
    detail names the differing fields with expected and actual values: schema facts only.
    """
    diffs: list[InventoryDiff] = []
    for kind in sorted(expected):
        exp_objs = expected[kind]
        act_objs = actual.get(kind, {})
        for key in sorted(set(exp_objs) | set(act_objs)):
            if key not in act_objs:
                diffs.append(InventoryDiff(kind, key, "missing", "not found in the restored copy"))
            elif key not in exp_objs:
                diffs.append(InventoryDiff(kind, key, "extra", "not in the backup"))
            else:
                notes = _changed_fields(kind, exp_objs[key], act_objs[key])
                if notes:
                    diffs.append(InventoryDiff(kind, key, "changed", "; ".join(notes)))
    return diffs


__all__ = [
    "INVENTORY_KINDS",
    "Inventory",
    "InventoryDiff",
    "InventoryView",
    "JsonValue",
    "ObjectInfo",
    "diff_inventory",
    "schema_inventory",
]
