"""Which tables the proof covers, and the session every proof query runs in.

Both sides of the proof (the export on the source, the smoke tests on the restored copy)
read the same scope and pin the same session settings, so a difference means the data or
the schema differ, never the way they were read.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

Conn = psycopg.Connection[Any]
"""An open psycopg 3 connection, as every proof function takes it."""

SCOPE_EXCLUDED_SCHEMAS: tuple[str, ...] = (
    "information_schema",
    "pg_*",
    "graphql",
    "graphql_public",
    "pgsodium",
    "pgsodium_masks",
    "pgtle",
    "repack",
    "tiger",
    "tiger_data",
    "timescaledb_*",
    "_timescaledb_*",
    "topology",
    "vault",
    "etl",
    "extensions",
    "pgbouncer",
    "realtime",
    "supabase_migrations",
    "_analytics",
    "_realtime",
    "_supavisor",
)
"""Schemas whose data the Supabase CLI leaves out of a data dump (``*`` is a wildcard)."""

EXCLUDED_TABLE_DATA: tuple[str, ...] = (
    "auth.schema_migrations",
    "storage.migrations",
    "supabase_functions.migrations",
)
"""Platform migration history: the CLI does not dump it, so it is not fingerprinted."""

_EXCLUDED_RE = re.compile(
    "|".join(
        "(?:" + ".*".join(re.escape(part) for part in pattern.split("*")) + ")"
        for pattern in SCOPE_EXCLUDED_SCHEMAS
    )
)


def schema_excluded(name: str) -> bool:
    """True if ``name`` matches one of :data:`SCOPE_EXCLUDED_SCHEMAS`."""
    return _EXCLUDED_RE.fullmatch(name) is not None


def schemas_in_scope(conn: Conn) -> list[str]:
    """Every schema of the database that the backup covers, sorted.

    That is ``public``, ``auth``, ``storage``, ``supabase_functions``, ``cron``, ``net`` and
    every user schema: everything not matching :data:`SCOPE_EXCLUDED_SCHEMAS`.
    """
    rows = conn.execute("SELECT nspname::text FROM pg_catalog.pg_namespace").fetchall()
    return sorted(name for (name,) in rows if not schema_excluded(name))


SESSION_SETTINGS: dict[str, str] = {
    # Everything below changes the text form of some value, and so a row's hash.
    "TimeZone": "UTC",  # timestamptz
    "DateStyle": "ISO, YMD",  # date, timestamp, timestamptz
    "IntervalStyle": "postgres",  # interval
    "extra_float_digits": "3",  # real/double: shortest exact form (PostgreSQL >= 12)
    "bytea_output": "hex",  # bytea
    "lc_monetary": "C",  # money
    # reg* values and every pg_get_*def/format_type result qualify a name only when it is
    # not visible on the search path: with just pg_catalog, user objects are always
    # qualified, identically on both sides.
    "search_path": "pg_catalog",
    "quote_all_identifiers": "off",  # pg_get_*def quoting
    "standard_conforming_strings": "on",  # how pg_get_expr writes string literals
}
"""Session settings pinned while fingerprinting and inventorying (text forms, name quoting)."""


def _in_transaction(conn: Conn) -> bool:
    return conn.info.transaction_status != TransactionStatus.IDLE


def set_config(conn: Conn, settings: Mapping[str, str], *, local: bool) -> None:
    """Set every one of ``settings`` in one round trip (``local``: for this transaction)."""
    names, values = list(settings), list(settings.values())
    conn.execute(
        "SELECT pg_catalog.set_config(k, v, %s) FROM ROWS FROM"
        " (pg_catalog.unnest(%s::text[]), pg_catalog.unnest(%s::text[])) AS s(k, v)",
        (local, names, values),
    )


def pin_session(conn: Conn) -> None:
    """Apply :data:`SESSION_SETTINGS`: ``SET LOCAL`` inside a transaction, else ``SET``.

    A connection that is not in autocommit mode counts as inside a transaction: psycopg
    opens one with the first statement, so the settings last until the caller ends it.
    Note that ``search_path`` becomes ``pg_catalog``: qualify names afterwards.
    """
    set_config(conn, SESSION_SETTINGS, local=_in_transaction(conn) or not conn.autocommit)


@contextlib.contextmanager
def scoped(conn: Conn, settings: Mapping[str, str]) -> Iterator[None]:
    """Run a block in a savepoint (or a transaction of its own) that is always rolled back.

    The rollback undoes every ``set_config(..., true)`` and ``SET ROLE`` made inside, so
    the caller's settings, role and open transaction (with its snapshot) are left as found.
    """
    with conn.transaction(force_rollback=True):
        set_config(conn, settings, local=True)
        yield


def relation(schema: str, name: str) -> sql.Composable:
    """``schema.name`` quoted for a query."""
    return sql.Identifier(schema, name)


@dataclass(frozen=True)
class TableRef:
    """A table whose data the backup carries. A partitioned table covers its partitions."""

    schema: str
    name: str
    kind: str  # 'r' ordinary table, 'p' partitioned table
    pk: tuple[str, ...]
    partitions: tuple[str, ...]  # "schema.name" of every partition below it, sorted
    est_rows: int
    bytes: int

    @property
    def qualified(self) -> str:
        """``schema.name``, unquoted: the key under which the manifest records the table."""
        return f"{self.schema}.{self.name}"


# Objects that belong to an extension are recreated by CREATE EXTENSION, not by the dump;
# only an extension's configuration tables carry dumped data (pg_extension_config_dump).
NOT_EXTENSION_MEMBER = """NOT EXISTS (
    SELECT 1 FROM pg_catalog.pg_depend d
    WHERE d.classid = '{catalog}'::pg_catalog.regclass AND d.objid = {oid} AND d.deptype = 'e')"""

_LIST_TABLES = """
SELECT n.nspname::text, c.relname::text, c.relkind::text,
    ARRAY(
        SELECT a.attname::text
        FROM pg_catalog.pg_index i
        CROSS JOIN LATERAL pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
        WHERE i.indrelid = c.oid AND i.indisprimary
        ORDER BY k.ord) AS pk,
    CASE WHEN c.relkind = 'p' THEN ARRAY(
        SELECT pn.nspname || '.' || pc.relname
        FROM pg_catalog.pg_partition_tree(c.oid) pt
        JOIN pg_catalog.pg_class pc ON pc.oid = pt.relid
        JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
        WHERE pt.relid <> c.oid) ELSE '{}'::text[] END AS partitions,
    CASE WHEN c.relkind = 'p' THEN (
        SELECT coalesce(sum(greatest(pc.reltuples, 0)), 0)::bigint
        FROM pg_catalog.pg_partition_tree(c.oid) pt
        JOIN pg_catalog.pg_class pc ON pc.oid = pt.relid
        WHERE pt.isleaf) ELSE greatest(c.reltuples, 0)::bigint END AS est_rows,
    CASE WHEN c.relkind = 'p' THEN (
        SELECT coalesce(sum(pg_catalog.pg_total_relation_size(pt.relid)), 0)::bigint
        FROM pg_catalog.pg_partition_tree(c.oid) pt)
        ELSE pg_catalog.pg_total_relation_size(c.oid) END AS bytes
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
    AND n.nspname = ANY(%s::text[])
    AND NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_depend d
        WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
            AND d.deptype = 'e'
            -- A configuration table whose whole contents are dumped is kept; one dumped
            -- through a WHERE filter could never match a full-table fingerprint.
            AND NOT EXISTS (
                SELECT 1 FROM pg_catalog.pg_extension e
                WHERE e.oid = d.refobjid AND c.oid = ANY(e.extconfig)
                    AND coalesce(
                        e.extcondition[pg_catalog.array_position(e.extconfig, c.oid)], ''
                    ) = ''))
ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C"
"""


def list_tables(conn: Conn, schemas: Sequence[str]) -> list[TableRef]:
    """Ordinary and partitioned tables in ``schemas`` whose data the backup carries.

    Partitions are not listed on their own: the root covers them (handled once, not twice),
    and ``bytes`` counts the whole tree, indexes and TOAST included. Tables in
    :data:`EXCLUDED_TABLE_DATA` and extension-owned tables (other than configuration tables
    dumped whole) are left out. Sorted by schema, then name.
    """
    rows = conn.execute(_LIST_TABLES, (list(schemas),)).fetchall()
    tables = [
        TableRef(
            schema=schema,
            name=name,
            kind=kind,
            pk=tuple(pk),
            partitions=tuple(sorted(partitions)),
            est_rows=int(est_rows),
            bytes=int(size),
        )
        for schema, name, kind, pk, partitions, est_rows, size in rows
    ]
    return [t for t in tables if t.qualified not in EXCLUDED_TABLE_DATA]


__all__ = [
    "EXCLUDED_TABLE_DATA",
    "NOT_EXTENSION_MEMBER",
    "SCOPE_EXCLUDED_SCHEMAS",
    "SESSION_SETTINGS",
    "Conn",
    "TableRef",
    "list_tables",
    "pin_session",
    "relation",
    "schema_excluded",
    "schemas_in_scope",
    "scoped",
    "set_config",
]
