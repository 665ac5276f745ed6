"""The schema inventory: what the schema consists of, read from the catalogs, and its diff."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .scope import NOT_EXTENSION_MEMBER, SESSION_SETTINGS, Conn, scoped

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

_NSP = "n.nspname = ANY(%(schemas)s::text[])"
_REL_MEMBER = NOT_EXTENSION_MEMBER.format(catalog="pg_catalog.pg_class", oid="c.oid")
_PROC_MEMBER = NOT_EXTENSION_MEMBER.format(catalog="pg_catalog.pg_proc", oid="p.oid")
_TYPE_MEMBER = NOT_EXTENSION_MEMBER.format(catalog="pg_catalog.pg_type", oid="t.oid")
_OWNER_NAME = "CASE WHEN {0} = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid({0})::text END"
_FUNC_SIG = (
    "n.nspname || '.' || p.proname || '(' || pg_catalog.oidvectortypes(p.proargtypes) || ')'"
)

_Q_SCHEMAS = f"""
SELECT n.nspname::text, pg_catalog.pg_get_userbyid(n.nspowner)::text,
    pg_catalog.obj_description(n.oid, 'pg_namespace')
FROM pg_catalog.pg_namespace n WHERE {_NSP}
"""

_Q_TABLES = f"""
SELECT n.nspname || '.' || c.relname, c.relkind::text, pg_catalog.pg_get_userbyid(c.relowner)::text,
    c.relrowsecurity, c.relforcerowsecurity, c.relpersistence::text,
    pg_catalog.pg_get_expr(c.relpartbound, c.oid),
    CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END,
    ARRAY(SELECT pn.nspname || '.' || pc.relname
          FROM pg_catalog.pg_inherits i
          JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent
          JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
          WHERE i.inhrelid = c.oid ORDER BY i.inhseqno),
    c.relreplident::text, coalesce(c.reloptions, '{{}}'::text[]),
    pg_catalog.obj_description(c.oid, 'pg_class')
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'f') AND {_NSP} AND {_REL_MEMBER}
"""

_Q_COLUMNS = f"""
SELECT n.nspname || '.' || c.relname || '.' || a.attname,
    row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum),
    pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
    CASE WHEN a.attgenerated = '' THEN pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) END,
    CASE WHEN a.attgenerated <> '' THEN pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) END,
    a.attidentity::text,
    CASE WHEN a.attcollation <> ty.typcollation THEN (
        SELECT cn.nspname || '.' || co.collname FROM pg_catalog.pg_collation co
        JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
        WHERE co.oid = a.attcollation) END,
    pg_catalog.col_description(c.oid, a.attnum)
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'f')
    AND {_NSP} AND {_REL_MEMBER}
"""

_Q_CONSTRAINTS = f"""
SELECT n.nspname || '.' || c.relname || '.' || co.conname, co.contype::text,
    pg_catalog.pg_get_constraintdef(co.oid), co.condeferrable, co.condeferred, co.convalidated
FROM pg_catalog.pg_constraint co
JOIN pg_catalog.pg_class c ON c.oid = co.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE {_NSP} AND {_REL_MEMBER}
"""

_Q_INDEXES = f"""
SELECT n.nspname || '.' || ic.relname, n.nspname || '.' || c.relname,
    pg_catalog.pg_get_indexdef(i.indexrelid), i.indisunique, i.indisprimary,
    i.indisreplident, i.indisclustered
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE {_NSP} AND {_REL_MEMBER}
"""

_Q_VIEWS = f"""
SELECT n.nspname || '.' || c.relname, pg_catalog.pg_get_userbyid(c.relowner)::text,
    pg_catalog.md5(pg_catalog.pg_get_viewdef(c.oid)), coalesce(c.reloptions, '{{}}'::text[]),
    c.relispopulated, pg_catalog.obj_description(c.oid, 'pg_class')
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind::text = %(relkind)s AND {_NSP} AND {_REL_MEMBER}
"""

_Q_FUNCTIONS = f"""
SELECT {_FUNC_SIG}, p.prokind::text, pg_catalog.pg_get_function_result(p.oid),
    pg_catalog.pg_get_function_arguments(p.oid), l.lanname::text, p.prosecdef,
    p.provolatile::text, p.proisstrict, p.proleakproof, p.proparallel::text,
    coalesce(p.proconfig, '{{}}'::text[]),
    pg_catalog.md5(CASE WHEN p.prosqlbody IS NOT NULL
                        THEN pg_catalog.pg_get_function_sqlbody(p.oid) ELSE p.prosrc END),
    pg_catalog.pg_get_userbyid(p.proowner)::text, pg_catalog.obj_description(p.oid, 'pg_proc')
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
WHERE {_NSP} AND {_PROC_MEMBER}
"""

_Q_TRIGGERS = f"""
SELECT n.nspname || '.' || c.relname || '.' || tg.tgname,
    pg_catalog.pg_get_triggerdef(tg.oid), tg.tgenabled::text
FROM pg_catalog.pg_trigger tg
JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE NOT tg.tgisinternal AND {_NSP} AND {_REL_MEMBER}
"""

# pg_sequence_last_value raises without SELECT or USAGE; such a sequence's position is
# recorded as unknown instead of failing the whole inventory.
_Q_SEQUENCES = f"""
SELECT n.nspname || '.' || c.relname, pg_catalog.format_type(s.seqtypid, NULL),
    s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcycle, s.seqcache,
    pg_catalog.has_sequence_privilege(c.oid, 'SELECT, USAGE') AS readable,
    CASE WHEN pg_catalog.has_sequence_privilege(c.oid, 'SELECT, USAGE')
         THEN pg_catalog.pg_sequence_last_value(c.oid) END,
    (SELECT rn.nspname || '.' || rc.relname || '.' || ra.attname
     FROM pg_catalog.pg_depend d
     JOIN pg_catalog.pg_class rc ON rc.oid = d.refobjid
     JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
     JOIN pg_catalog.pg_attribute ra ON ra.attrelid = d.refobjid AND ra.attnum = d.refobjsubid
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
         AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
         AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
     LIMIT 1),
    pg_catalog.pg_get_userbyid(c.relowner)::text
FROM pg_catalog.pg_sequence s
JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE {_NSP} AND {_REL_MEMBER}
"""

_Q_ENUMS = f"""
SELECT n.nspname || '.' || t.typname, pg_catalog.pg_get_userbyid(t.typowner)::text,
    ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e
          WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype = 'e' AND {_NSP} AND {_TYPE_MEMBER}
"""

_Q_EXTENSIONS = """
SELECT e.extname::text, e.extversion, n.nspname::text
FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
"""

_Q_POLICIES = f"""
SELECT n.nspname || '.' || c.relname || '.' || p.polname, n.nspname || '.' || c.relname,
    p.polname::text, p.polcmd::text, p.polpermissive,
    ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(r)::text END
          FROM pg_catalog.unnest(p.polroles) AS r),
    pg_catalog.pg_get_expr(p.polqual, p.polrelid),
    pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)
FROM pg_catalog.pg_policy p
JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE {_NSP} AND {_REL_MEMBER}
"""

# A NULL ACL means "the built-in default"; acldefault() spells it out, so an explicit ACL
# equal to the default and a NULL one compare equal. Grantors are left out on purpose:
# a restore run by another role legitimately records another grantor.
_Q_GRANTS = f"""
SELECT 'relation:' || c.relkind::text, n.nspname || '.' || c.relname,
    {_OWNER_NAME.format("a.grantee")}, a.privilege_type, a.is_grantable
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL pg_catalog.aclexplode(coalesce(c.relacl, pg_catalog.acldefault(
    CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) AS a
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND {_NSP} AND {_REL_MEMBER}
UNION ALL
SELECT 'column', n.nspname || '.' || c.relname || '.' || att.attname,
    {_OWNER_NAME.format("a.grantee")}, a.privilege_type, a.is_grantable
FROM pg_catalog.pg_attribute att
JOIN pg_catalog.pg_class c ON c.oid = att.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL pg_catalog.aclexplode(att.attacl) AS a
WHERE att.attacl IS NOT NULL AND att.attnum > 0 AND NOT att.attisdropped
    AND {_NSP} AND {_REL_MEMBER}
UNION ALL
SELECT 'function', {_FUNC_SIG}, {_OWNER_NAME.format("a.grantee")}, a.privilege_type,
    a.is_grantable
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
CROSS JOIN LATERAL pg_catalog.aclexplode(
    coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) AS a
WHERE {_NSP} AND {_PROC_MEMBER}
UNION ALL
SELECT 'schema', n.nspname::text, {_OWNER_NAME.format("a.grantee")}, a.privilege_type,
    a.is_grantable
FROM pg_catalog.pg_namespace n
CROSS JOIN LATERAL pg_catalog.aclexplode(
    coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) AS a
WHERE {_NSP}
UNION ALL
SELECT 'default:' || d.defaclobjtype::text,
    'for role ' || pg_catalog.pg_get_userbyid(d.defaclrole)
        || coalesce(' in schema ' || n.nspname, ''),
    {_OWNER_NAME.format("a.grantee")}, a.privilege_type, a.is_grantable
FROM pg_catalog.pg_default_acl d
LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
CROSS JOIN LATERAL pg_catalog.aclexplode(d.defaclacl) AS a
WHERE d.defaclnamespace = 0 OR {_NSP}
"""

_Q_PUBLICATIONS = """
SELECT p.pubname::text, pg_catalog.pg_get_userbyid(p.pubowner)::text, p.puballtables,
    p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate, p.pubviaroot,
    ARRAY(SELECT pn.nspname || '.' || pc.relname
              || coalesce(' (' || (SELECT pg_catalog.string_agg(pa.attname, ', ' ORDER BY pa.attnum)
                                   FROM pg_catalog.pg_attribute pa
                                   WHERE pa.attrelid = pr.prrelid
                                       AND pa.attnum = ANY(pr.prattrs)) || ')', '')
              || coalesce(' WHERE ' || pg_catalog.pg_get_expr(pr.prqual, pr.prrelid), '')
          FROM pg_catalog.pg_publication_rel pr
          JOIN pg_catalog.pg_class pc ON pc.oid = pr.prrelid
          JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
          WHERE pr.prpubid = p.oid),
    ARRAY(SELECT pn.nspname::text FROM pg_catalog.pg_publication_namespace pns
          JOIN pg_catalog.pg_namespace pn ON pn.oid = pns.pnnspid
          WHERE pns.pnpubid = p.oid)
FROM pg_catalog.pg_publication p
"""


_Objects = dict[str, dict[str, Any]]
_Params = Mapping[str, Any]


def _rows(conn: Conn, query: str, params: _Params | None = None) -> list[tuple[Any, ...]]:
    return conn.execute(query, params).fetchall()


def _schemas(conn: Conn, params: _Params) -> _Objects:
    return {
        name: {"owner": owner, "comment": comment}
        for name, owner, comment in _rows(conn, _Q_SCHEMAS, params)
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
        for r in _rows(conn, _Q_TABLES, params)
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
        for r in _rows(conn, _Q_COLUMNS, params)
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
        for r in _rows(conn, _Q_CONSTRAINTS, params)
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
        for r in _rows(conn, _Q_INDEXES, params)
    }


def _view_like(conn: Conn, params: _Params, relkind: str) -> _Objects:
    found: _Objects = {}
    for r in _rows(conn, _Q_VIEWS, {**params, "relkind": relkind}):
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
        for r in _rows(conn, _Q_FUNCTIONS, params)
    }


def _triggers(conn: Conn, params: _Params) -> _Objects:
    return {
        key: {"definition": definition, "enabled": _TGENABLED.get(enabled, enabled)}
        for key, definition, enabled in _rows(conn, _Q_TRIGGERS, params)
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
    return {r[0]: _sequence(r) for r in _rows(conn, _Q_SEQUENCES, params)}


def _enums(conn: Conn, params: _Params) -> _Objects:
    return {
        name: {"owner": owner, "labels": list(labels)}
        for name, owner, labels in _rows(conn, _Q_ENUMS, params)
    }


def _extensions(conn: Conn, _params: _Params) -> _Objects:
    return {
        name: {"version": version, "schema": schema}
        for name, version, schema in _rows(conn, _Q_EXTENSIONS)
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
        for r in _rows(conn, _Q_POLICIES, params)
    }


def _grant_label(objtype: str) -> str:
    if objtype.startswith("relation:"):
        return _RELKIND_OBJ.get(objtype[9:], "relation")
    if objtype.startswith("default:"):
        return "default privileges on " + _DEFACL_OBJ.get(objtype[8:], objtype[8:])
    return objtype


def _grants(conn: Conn, params: _Params) -> _Objects:
    privileges: dict[str, set[str]] = {}
    for objtype, name, grantee, privilege, grantable in _rows(conn, _Q_GRANTS, params):
        key = f"{_grant_label(objtype)} {name} to {grantee}"
        privileges.setdefault(key, set()).add(privilege + ("*" if grantable else ""))
    return {key: {"privileges": sorted(privs)} for key, privs in privileges.items()}


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
        for r in _rows(conn, _Q_PUBLICATIONS)
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


def schema_inventory(conn: Conn, schemas: Sequence[str]) -> dict[str, _Objects]:
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


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= 160 else text[:157] + "..."


def _sequence_next(desc: Mapping[str, Any]) -> int | None:
    last = desc.get("last_value")
    if last is None:
        return None
    return int(last) + int(desc.get("increment") or 1) if desc.get("is_called") else int(last)


def _changed_fields(kind: str, exp: Mapping[str, Any], act: Mapping[str, Any]) -> list[str]:
    skip: set[str] = set()
    notes: list[str] = []
    if kind == "sequences":
        # Tests on staging may consume values, so a sequence may be ahead; only behind
        # (values would be handed out again) or unreadable on one side is reported.
        skip = {"last_value", "is_called"}
        exp_next, act_next = _sequence_next(exp), _sequence_next(act)
        if exp_next is not None and act_next is not None:
            ascending = int(exp.get("increment") or 1) > 0
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


def diff_inventory(
    expected: Mapping[str, Mapping[str, Mapping[str, Any]]],
    actual: Mapping[str, Mapping[str, Mapping[str, Any]]],
) -> list[InventoryDiff]:
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
    "InventoryDiff",
    "diff_inventory",
    "schema_inventory",
]
