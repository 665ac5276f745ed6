"""Extensions a staging target cannot load, and everything of the backup that depends on them.

At export the manifest records, per extension, the objects it provides (``pg_depend``
entries of type ``e``): its types, functions, operators, operator classes, access methods,
relations and schemas, by name (``extensions.vector``), nothing else. At restore, once an
extension could not be created (``could not open extension control file``), every error
caused by its absence is expected: an error whose message or statement names one of those
objects, and, in cascade, an error on anything that needs an object which already failed
for that reason (``relation "public.items" does not exist`` for the COPY, the indexes, the
foreign keys and the policies of a table whose ``CREATE TABLE`` needed the ``vector`` type).
Each such object is mapped to its extension, so that exactly its checks are *not tested*.
"""

from __future__ import annotations

from typing import Any

import psycopg

MEMBER_KINDS: tuple[str, ...] = (
    "schemas",
    "types",
    "functions",
    "operators",
    "opclasses",
    "access_methods",
    "relations",
)
"""The kinds of extension members the manifest lists (only the non-empty ones are kept)."""

_IS_MEMBER = (
    "JOIN pg_catalog.pg_depend d ON d.objid = x.oid AND d.classid = '{catalog}'::pg_catalog.regclass"
    " AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.deptype = 'e'"
)
_Q_MEMBERS = " UNION ALL ".join(
    f"SELECT d.refobjid, '{kind}', {name} FROM {catalog} x "
    + _IS_MEMBER.format(catalog=catalog)
    + (f" JOIN pg_catalog.pg_namespace n ON n.oid = x.{nsp}" if nsp else "")
    + (f" WHERE {where}" if where else "")
    for kind, catalog, nsp, name, where in (
        ("schemas", "pg_catalog.pg_namespace", None, "x.nspname::text", None),
        (
            "types",
            "pg_catalog.pg_type",
            "typnamespace",
            "pg_catalog.format('%s.%s', n.nspname, x.typname)",
            None,
        ),
        (
            "functions",
            "pg_catalog.pg_proc",
            "pronamespace",
            "pg_catalog.format('%s.%s', n.nspname, x.proname)",
            None,
        ),
        (
            "operators",
            "pg_catalog.pg_operator",
            "oprnamespace",
            "pg_catalog.format('%s.%s', n.nspname, x.oprname)",
            None,
        ),
        (
            "opclasses",
            "pg_catalog.pg_opclass",
            "opcnamespace",
            "pg_catalog.format('%s.%s', n.nspname, x.opcname)",
            None,
        ),
        ("access_methods", "pg_catalog.pg_am", None, "x.amname::text", None),
        (
            "relations",
            "pg_catalog.pg_class",
            "relnamespace",
            "pg_catalog.format('%s.%s', n.nspname, x.relname)",
            "x.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')",
        ),
    )
)
_Q_EXTENSIONS = """
SELECT e.oid, e.extname::text, e.extversion, n.nspname::text
FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
"""


def extension_members(conn: psycopg.Connection[Any]) -> dict[str, dict[str, Any]]:
    """Every extension of the database with what it provides: the manifest's ``extensions``
    section, ``{name: {"version", "schema", "members": {kind: [names]}}}``. Names are
    ``schema.name`` (schemas and access methods: the plain name), unquoted, each once:
    functions and operators without their argument types."""
    found: dict[int, dict[str, Any]] = {}
    for oid, name, version, schema in conn.execute(_Q_EXTENSIONS).fetchall():
        found[int(oid)] = {"name": name, "version": version, "schema": schema, "members": {}}
    for ext_oid, kind, member in conn.execute(_Q_MEMBERS).fetchall():
        entry = found.get(int(ext_oid))
        if entry is not None:
            entry["members"].setdefault(kind, set()).add(str(member))
    return {
        e["name"]: {
            "version": e["version"],
            "schema": e["schema"],
            "members": {k: sorted(e["members"][k]) for k in MEMBER_KINDS if e["members"].get(k)},
        }
        for e in sorted(found.values(), key=lambda e: str(e["name"]))
    }


__all__ = ["MEMBER_KINDS", "extension_members"]
