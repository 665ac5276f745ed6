"""One definition of "the same": table fingerprints, the schema inventory and RLS visibility.

The export computes these facts on the source, inside the dump's exported snapshot, as the
non-superuser ``postgres`` role (BYPASSRLS); the smoke tests compute them again on the
restored staging copy, as a superuser, and only compare. Both sides run exactly the SQL in
this module, under exactly the same session settings, so a difference means the data or the
schema differ, never the way they were read.

Every function takes an open psycopg 3 connection and is safe inside a caller's REPEATABLE
READ transaction that imported a snapshot: work runs in a savepoint that is rolled back at
the end (so every ``SET LOCAL`` and ``SET ROLE`` is undone), nothing is committed and the
isolation level is never touched. On an idle connection the work runs in a short
transaction of its own that is rolled back.

Messages name tables, row counts and primary-key boundary values, never other row contents.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from .errors import DrillError
from .rolesql import UNSAFE_ROLE_SETTINGS

Conn = psycopg.Connection[Any]

# ---------------------------------------------------------------------------------------------
# Scope
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# Session settings
# ---------------------------------------------------------------------------------------------

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

# Fingerprints must see every row or fail: with row_security off, a role that RLS would
# filter gets an error instead of a silently smaller table. The planner prices md5() of a
# whole row like an addition and so rarely hashes in parallel workers; cheaper parallel
# costs let it (tables below min_parallel_table_scan_size stay serial regardless).
_FINGERPRINT_SETTINGS: dict[str, str] = {
    **SESSION_SETTINGS,
    "row_security": "off",
    "parallel_setup_cost": "100",
    "parallel_tuple_cost": "0.001",
}


def _in_transaction(conn: Conn) -> bool:
    return conn.info.transaction_status != TransactionStatus.IDLE


def _set_config(conn: Conn, settings: Mapping[str, str], *, local: bool) -> None:
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
    _set_config(conn, SESSION_SETTINGS, local=_in_transaction(conn) or not conn.autocommit)


@contextlib.contextmanager
def _scoped(conn: Conn, settings: Mapping[str, str]) -> Iterator[None]:
    """Run a block in a savepoint (or a transaction of its own) that is always rolled back.

    The rollback undoes every ``set_config(..., true)`` and ``SET ROLE`` made inside, so
    the caller's settings, role and open transaction (with its snapshot) are left as found.
    """
    with conn.transaction(force_rollback=True):
        _set_config(conn, settings, local=True)
        yield


def _rel(schema: str, name: str) -> sql.Composable:
    return sql.Identifier(schema, name)


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


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
_NOT_EXTENSION_MEMBER = """NOT EXISTS (
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


# ---------------------------------------------------------------------------------------------
# Fingerprints
# ---------------------------------------------------------------------------------------------

_MOD = 1 << 64

# 64 bits of the MD5 of the row's text form. ROW(t.*) (not t::text) because a column may be
# called "t"; pg_dump keeps column order, so the restored copy gives the same text.
_ROW_HASH = sql.SQL(
    "(('x' OPERATOR(pg_catalog.||) pg_catalog.left(pg_catalog.md5(ROW(t.*)::text), 16))"
    "::pg_catalog.bit(64))::bigint"
)


def _fmt(rows: Any, acc: Any) -> str:
    # sum(bigint) arrives as Decimal; Python's % makes a negative sum positive mod 2^64.
    return f"{int(rows)}:{int(acc) % _MOD:016x}"


def _acc_of(fingerprint: str) -> int:
    return int(fingerprint.partition(":")[2], 16)


def _combine(parts: Sequence[tuple[int, int]]) -> tuple[int, int]:
    return sum(r for r, _ in parts), sum(a for _, a in parts) % _MOD


def _key_exprs(table: TableRef) -> tuple[sql.Composable, sql.Composable]:
    """The key columns in the inner query (aliases k0, k1, ...) and in ORDER/ROW lists."""
    select = sql.SQL(", ").join(
        sql.SQL("t.{} AS {}").format(sql.Identifier(col), sql.Identifier(f"k{i}"))
        for i, col in enumerate(table.pk)
    )
    refs = sql.SQL(", ").join(sql.Identifier("s", f"k{i}") for i in range(len(table.pk)))
    return select, refs


def _whole_table(conn: Conn, table: TableRef) -> tuple[int, int]:
    query = sql.SQL("SELECT count(*), coalesce(sum({h}), 0) FROM {rel} AS t").format(
        h=_ROW_HASH, rel=_rel(table.schema, table.name)
    )
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]) % _MOD


def fingerprint_table(conn: Conn, table: TableRef, buckets: int = 16) -> dict[str, Any]:
    """Row count and order-independent fingerprint of ``table``, in one server-side pass.

    The fingerprint is the count plus the sum (mod 2^64) of 64 bits of ``md5(ROW(t.*)::text)``
    per row, under :data:`SESSION_SETTINGS`. With a primary key, ``ntile(buckets)`` over key
    order splits the rows into key ranges (``lo``/``hi`` inclusive, key values as text), each
    with its own count and fingerprint; the table's fingerprint is derived from them. A
    table without a primary key gets ``"buckets": []``.
    """
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1, not {buckets}")
    with _scoped(conn, _FINGERPRINT_SETTINGS):
        if not table.pk:
            rows, acc = _whole_table(conn, table)
            return {"rows": rows, "fingerprint": _fmt(rows, acc), "buckets": []}
        key_select, key_refs = _key_exprs(table)
        key_text = sql.SQL("ARRAY[{}]").format(
            sql.SQL(", ").join(
                sql.SQL("{}::text").format(sql.Identifier("x", f"k{i}"))
                for i in range(len(table.pk))
            )
        )
        # ntile gives bucket b the rows start(b)..end(b) of the key order, the first
        # (count % n) buckets one row more than the others; comparing row_number with those
        # bounds picks each bucket's first and last key without a second pass or sort.
        # OFFSET 0 keeps the hash below the sort, so only (hash, key) tuples are sorted.
        query = sql.SQL(
            """
            SELECT x.b, count(*), coalesce(sum(x.h), 0),
                max(CASE WHEN x.rn = CASE WHEN x.b <= x.r THEN (x.b - 1) * (x.q + 1) + 1
                                          ELSE x.r * (x.q + 1) + (x.b - 1 - x.r) * x.q + 1 END
                         THEN {key_text} END),
                max(CASE WHEN x.rn = CASE WHEN x.b <= x.r THEN x.b * (x.q + 1)
                                          ELSE x.r * (x.q + 1) + (x.b - x.r) * x.q END
                         THEN {key_text} END)
            FROM (
                SELECT s.*, ntile({n}) OVER w AS b, row_number() OVER w AS rn,
                    count(*) OVER () / {n} AS q, count(*) OVER () % {n} AS r
                FROM (SELECT {h} AS h, {key_select} FROM {rel} AS t OFFSET 0) AS s
                WINDOW w AS (ORDER BY {key_refs})
            ) AS x
            GROUP BY x.b
            ORDER BY x.b
            """
        ).format(
            key_text=key_text,
            n=sql.Literal(buckets),
            h=_ROW_HASH,
            key_select=key_select,
            rel=_rel(table.schema, table.name),
            key_refs=key_refs,
        )
        result = conn.execute(query).fetchall()
    out: list[dict[str, Any]] = []
    for _b, rows, acc, lo, hi in result:
        if lo is None or hi is None:  # the bound arithmetic must match ntile exactly
            raise DrillError(
                f"Could not determine the key range of a bucket of {table.qualified}; "
                "this is a bug in pytest-supabase-restore, please report it."
            )
        out.append(
            {"lo": list(lo), "hi": list(hi), "rows": int(rows), "fingerprint": _fmt(rows, acc)}
        )
    total_rows, total_acc = _combine([(b["rows"], _acc_of(b["fingerprint"])) for b in out])
    return {"rows": total_rows, "fingerprint": _fmt(total_rows, total_acc), "buckets": out}


def _key_types(conn: Conn, table: TableRef) -> list[str]:
    rows = conn.execute(
        """
        SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod)
        FROM pg_catalog.pg_attribute a
        JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
        """,
        (table.schema, table.name),
    ).fetchall()
    types = dict(rows)
    missing = [col for col in table.pk if col not in types]
    if missing:
        raise DrillError(
            f"Table {table.qualified} has no column(s) {', '.join(missing)} of its recorded "
            "primary key; its key ranges cannot be compared."
        )
    return [types[col] for col in table.pk]


def fingerprint_ranges(
    conn: Conn, table: TableRef, buckets: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Count and fingerprint the rows of ``table`` in the same key ranges as ``buckets``.

    ``buckets`` are the (sorted, disjoint) ranges :func:`fingerprint_table` recorded. Keys
    are compared as rows of the key columns' own types. Returns one entry per range, in
    order, plus an entry with ``"outside": True`` for each stretch outside every range that
    holds rows (below the first ``lo``, between ranges, above the last ``hi``; its ``lo`` and
    ``hi`` are the neighbouring bounds, exclusive, ``None`` where open). One pass.
    """
    if not table.pk:
        raise ValueError(f"{table.qualified} has no primary key; key ranges need one")
    for bucket in buckets:
        if len(bucket["lo"]) != len(table.pk) or len(bucket["hi"]) != len(table.pk):
            raise ValueError(
                f"a key range of {table.qualified} has {len(bucket['lo'])} key values, "
                f"its primary key {len(table.pk)} columns"
            )
    with _scoped(conn, _FINGERPRINT_SETTINGS):
        types = _key_types(conn, table)
        key_select, key_refs = _key_exprs(table)

        params: list[str] = []

        def bound(values: Sequence[str]) -> sql.Composable:
            params.extend(values)
            return sql.SQL("ROW({})").format(
                sql.SQL(", ").join(sql.SQL("%s::" + typ) for typ in types)
            )

        # Walk the sorted ranges: a key below range i's lo lies in the gap before it (-i);
        # otherwise a key up to its hi lies in it (i); past the last range: -(n + 1).
        whens: list[sql.Composable] = []
        for i, bucket in enumerate(buckets, start=1):
            whens.append(
                sql.SQL("WHEN ROW({k}) < {lo} THEN {gap} WHEN ROW({k}) <= {hi} THEN {i}").format(
                    k=key_refs,
                    lo=bound(bucket["lo"]),
                    gap=sql.Literal(-i),
                    hi=bound(bucket["hi"]),
                    i=sql.Literal(i),
                )
            )
        case = sql.SQL("CASE {} ELSE {} END").format(
            sql.SQL(" ").join(whens), sql.Literal(-(len(buckets) + 1))
        )
        query = sql.SQL(
            "SELECT {case} AS b, count(*), coalesce(sum(s.h), 0)"
            " FROM (SELECT {h} AS h, {key_select} FROM {rel} AS t) AS s GROUP BY 1"
        ).format(case=case, h=_ROW_HASH, key_select=key_select, rel=_rel(table.schema, table.name))
        found = {
            int(b): (int(rows), int(acc) % _MOD) for b, rows, acc in conn.execute(query, params)
        }
    out: list[dict[str, Any]] = []
    n = len(buckets)
    for i in range(1, n + 2):
        gap = found.get(-i)
        if gap is not None:
            out.append(
                {
                    "lo": list(buckets[i - 2]["hi"]) if i > 1 else None,
                    "hi": list(buckets[i - 1]["lo"]) if i <= n else None,
                    "rows": gap[0],
                    "fingerprint": _fmt(*gap),
                    "outside": True,
                }
            )
        if i <= n:
            rows, acc = found.get(i, (0, 0))
            out.append(
                {
                    "lo": list(buckets[i - 1]["lo"]),
                    "hi": list(buckets[i - 1]["hi"]),
                    "rows": rows,
                    "fingerprint": _fmt(rows, acc),
                    "outside": False,
                }
            )
    return out


@dataclass(frozen=True)
class RangeDiff:
    """A key range whose rows differ. ``outside``: a stretch between recorded ranges, whose
    ``lo``/``hi`` are exclusive bounds (``None`` = open)."""

    lo: list[str] | None
    hi: list[str] | None
    expected_rows: int
    actual_rows: int
    outside: bool = False


@dataclass(frozen=True)
class TableComparison:
    """The outcome of comparing a table with the fingerprint the backup recorded."""

    table: str  # "schema.name"
    ok: bool
    expected_rows: int
    actual_rows: int
    differing: list[RangeDiff] = field(default_factory=list)
    message: str = ""


_SHOWN_RANGES = 10


def _show_key(values: Sequence[str]) -> str:
    def one(value: str) -> str:
        return value if len(value) <= 60 else value[:57] + "..."

    if len(values) == 1:
        return one(values[0])
    return "(" + ", ".join(one(v) for v in values) + ")"


def _describe_range(cols: str, diff: RangeDiff) -> str:
    if not diff.outside:
        assert diff.lo is not None and diff.hi is not None
        where = f"{cols} {_show_key(diff.lo)}..{_show_key(diff.hi)}"
    elif diff.lo is None and diff.hi is None:
        where = f"any {cols} (the backup recorded no rows)"
    elif diff.lo is None:
        assert diff.hi is not None
        where = f"{cols} below {_show_key(diff.hi)} (outside every backed-up range)"
    elif diff.hi is None:
        where = f"{cols} above {_show_key(diff.lo)} (outside every backed-up range)"
    else:
        where = (
            f"{cols} between {_show_key(diff.lo)} and {_show_key(diff.hi)} "
            "(exclusive; outside every backed-up range)"
        )
    counts = f"{diff.expected_rows} rows expected, {diff.actual_rows} found"
    if diff.expected_rows == diff.actual_rows:
        counts += ", contents differ"
    return f"{where}: {counts}"


def compare_table(conn: Conn, table: TableRef, expected: Mapping[str, Any]) -> TableComparison:
    """Compare ``table`` with the fingerprint :func:`fingerprint_table` recorded.

    A matching table costs one (parallel) pass. On a mismatch, a table with a primary key
    gets a second pass over the recorded key ranges, and the message names each differing
    range with its row counts (key boundary values only, never row contents); that pass alone
    then decides the result, so the report is consistent even if rows change in between.
    Without a primary key the difference cannot be narrowed and the message says so.
    """
    exp_rows = int(expected["rows"])
    exp_fp = str(expected["fingerprint"])
    exp_buckets: list[Mapping[str, Any]] = list(expected.get("buckets") or [])
    narrowable = bool(table.pk) and (bool(exp_buckets) or exp_rows == 0)
    narrowable = narrowable and all(
        len(b["lo"]) == len(table.pk) and len(b["hi"]) == len(table.pk) for b in exp_buckets
    )
    differing: list[RangeDiff] = []
    # The whole-table pass runs in parallel workers; the range pass cannot (its GROUP BY
    # looks like a million groups to the planner), so it only runs to explain a mismatch.
    with _scoped(conn, _FINGERPRINT_SETTINGS):
        act_rows, act_acc = _whole_table(conn, table)
    matches = act_rows == exp_rows and _fmt(act_rows, act_acc) == exp_fp
    if narrowable and not matches:
        entries = fingerprint_ranges(conn, table, exp_buckets)
        act_rows, act_acc = _combine([(e["rows"], _acc_of(e["fingerprint"])) for e in entries])
        by_range = iter(exp_buckets)
        for entry in entries:
            if entry["outside"]:
                differing.append(RangeDiff(entry["lo"], entry["hi"], 0, entry["rows"], True))
                continue
            exp = next(by_range)
            if entry["fingerprint"] != exp["fingerprint"] or entry["rows"] != exp["rows"]:
                differing.append(
                    RangeDiff(entry["lo"], entry["hi"], int(exp["rows"]), entry["rows"])
                )
    ok = act_rows == exp_rows and _fmt(act_rows, act_acc) == exp_fp
    name = table.qualified
    if ok:
        message = f"{name}: {act_rows} rows, fingerprint matches"
    else:
        counts = f"{exp_rows} rows expected, {act_rows} found"
        if exp_rows == act_rows:
            counts += " (same count, contents differ)"
        if narrowable:
            cols = table.pk[0] if len(table.pk) == 1 else "(" + ", ".join(table.pk) + ")"
            shown = "; ".join(_describe_range(cols, d) for d in differing[:_SHOWN_RANGES])
            more = len(differing) - _SHOWN_RANGES
            tail = f"; and {more} more" if more > 0 else ""
            message = f"{name}: {counts}; {len(differing)} key range(s) differ: {shown}{tail}"
        else:
            why = (
                "the table has no primary key"
                if not table.pk
                else "the backup recorded no key ranges for it"
            )
            message = (
                f"{name}: {counts}; {why}, so the differing rows cannot be narrowed to a key range"
            )
    return TableComparison(name, ok, exp_rows, act_rows, differing, message)


# ---------------------------------------------------------------------------------------------
# Schema inventory
# ---------------------------------------------------------------------------------------------

INVENTORY_KINDS: tuple[str, ...] = (
    "schemas",
    "tables",
    "columns",
    "constraints",
    "indexes",
    "views",
    "matviews",
    "functions",
    "triggers",
    "sequences",
    "enums",
    "extensions",
    "policies",
    "grants",
    "publications",
)

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
_REL_MEMBER = _NOT_EXTENSION_MEMBER.format(catalog="pg_catalog.pg_class", oid="c.oid")
_PROC_MEMBER = _NOT_EXTENSION_MEMBER.format(catalog="pg_catalog.pg_proc", oid="p.oid")
_TYPE_MEMBER = _NOT_EXTENSION_MEMBER.format(catalog="pg_catalog.pg_type", oid="t.oid")
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
SELECT n.nspname || '.' || c.relname, c.relkind::text, pg_catalog.pg_get_userbyid(c.relowner)::text,
    pg_catalog.md5(pg_catalog.pg_get_viewdef(c.oid)), coalesce(c.reloptions, '{{}}'::text[]),
    c.relispopulated, pg_catalog.obj_description(c.oid, 'pg_class')
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND {_NSP} AND {_REL_MEMBER}
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


def _sorted(d: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {key: d[key] for key in sorted(d)}


def schema_inventory(conn: Conn, schemas: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """What the schema of ``schemas`` consists of: kind -> object key -> description.

    Kinds are :data:`INVENTORY_KINDS`. Keys are unquoted dotted names (functions:
    ``schema.name(argtypes)``; grants: ``<object type> <name> to <grantee>``). Everything is
    JSON-serialisable and sorted, and excludes OIDs and anything else a faithful restore may
    change. Extensions and publications are listed whole; all else only within ``schemas``.
    Objects that belong to an extension are left to the extension's own entry.
    """
    params = {"schemas": list(schemas)}
    inv: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in INVENTORY_KINDS}

    def rows(query: str, with_params: bool = True) -> list[tuple[Any, ...]]:
        return conn.execute(query, params if with_params else None).fetchall()

    with _scoped(conn, SESSION_SETTINGS):
        for name, owner, comment in rows(_Q_SCHEMAS):
            inv["schemas"][name] = {"owner": owner, "comment": comment}
        for r in rows(_Q_TABLES):
            inv["tables"][r[0]] = {
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
        for r in rows(_Q_COLUMNS):
            inv["columns"][r[0]] = {
                "position": int(r[1]),
                "type": r[2],
                "not_null": r[3],
                "default": r[4],
                "generated": r[5],
                "identity": _IDENTITY.get(r[6]),
                "collation": r[7],
                "comment": r[8],
            }
        for r in rows(_Q_CONSTRAINTS):
            inv["constraints"][r[0]] = {
                "type": _CONTYPES.get(r[1], r[1]),
                "definition": r[2],
                "deferrable": r[3],
                "deferred": r[4],
                "validated": r[5],
            }
        for r in rows(_Q_INDEXES):
            inv["indexes"][r[0]] = {
                "table": r[1],
                "definition": r[2],
                "unique": r[3],
                "primary": r[4],
                "replica_identity": r[5],
                "clustered": r[6],
            }
        for r in rows(_Q_VIEWS):
            entry: dict[str, Any] = {
                "owner": r[2],
                "definition_md5": r[3],
                "options": sorted(r[4]),
                "comment": r[6],
            }
            if r[1] == "m":
                entry["populated"] = r[5]
                inv["matviews"][r[0]] = entry
            else:
                inv["views"][r[0]] = entry
        for r in rows(_Q_FUNCTIONS):
            inv["functions"][r[0]] = {
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
        for r in rows(_Q_TRIGGERS):
            inv["triggers"][r[0]] = {"definition": r[1], "enabled": _TGENABLED.get(r[2], r[2])}
        for r in rows(_Q_SEQUENCES):
            readable, last = r[8], r[9]
            inv["sequences"][r[0]] = {
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
        for name, owner, labels in rows(_Q_ENUMS):
            inv["enums"][name] = {"owner": owner, "labels": list(labels)}
        for name, version, schema in rows(_Q_EXTENSIONS, with_params=False):
            inv["extensions"][name] = {"version": version, "schema": schema}
        for r in rows(_Q_POLICIES):
            inv["policies"][r[0]] = {
                "table": r[1],
                "name": r[2],
                "command": _POLCMDS.get(r[3], r[3]),
                "permissive": r[4],
                "roles": sorted(r[5]),
                "qual": r[6],
                "with_check": r[7],
            }
        privileges: dict[str, set[str]] = {}
        for objtype, name, grantee, privilege, grantable in rows(_Q_GRANTS):
            if objtype.startswith("relation:"):
                label = _RELKIND_OBJ.get(objtype[9:], "relation")
            elif objtype.startswith("default:"):
                label = "default privileges on " + _DEFACL_OBJ.get(objtype[8:], objtype[8:])
            else:
                label = objtype
            key = f"{label} {name} to {grantee}"
            privileges.setdefault(key, set()).add(privilege + ("*" if grantable else ""))
        for key, privs in privileges.items():
            inv["grants"][key] = {"privileges": sorted(privs)}
        if conn.info.server_version >= 150000:  # row filters, column lists, schemas: 15+
            for r in rows(_Q_PUBLICATIONS, with_params=False):
                inv["publications"][r[0]] = {
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
    return {kind: _sorted(inv[kind]) for kind in INVENTORY_KINDS}


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


# ---------------------------------------------------------------------------------------------
# RLS behaviour
# ---------------------------------------------------------------------------------------------

ANON = "anon"
AUTHENTICATED = "authenticated"
AUTHENTICATOR = "authenticator"
"""PostgREST's login role on Supabase: its in-database ``pgrst.*`` settings configure it."""

POSTGREST_DB_SCHEMAS: tuple[str, ...] = ("public", "graphql_public")
"""PostgREST's ``db-schemas`` as the Supabase CLI configures it (``[api] schemas``)."""

POSTGREST_EXTRA_SEARCH_PATH: tuple[str, ...] = ("public", "extensions")
"""PostgREST's ``db-extra-search-path`` as the Supabase CLI configures it
(``[api] extra_search_path``)."""

RlsCount = int | dict[str, str]
"""What one identity sees of one table: a row count, ``-1`` when the role may not read the
table at all, or ``{"error": "<SQLSTATE> <message>"}`` when evaluating its policies raised."""

_TIME_LIMIT = "a time limit: it decides whether a count finishes, not what it counts"
_READ_ONLY = "every count is read-only, as PostgREST's GET requests are"
# Role settings PostgREST applies that the counts do not, and why; recorded, never silent.
_NOT_APPLIED: dict[str, str] = {
    "statement_timeout": _TIME_LIMIT,
    "lock_timeout": _TIME_LIMIT,
    "idle_in_transaction_session_timeout": _TIME_LIMIT,
    "idle_session_timeout": _TIME_LIMIT,
    "transaction_timeout": _TIME_LIMIT,
    # PostgREST takes it as the request's isolation level; a count runs in the transaction
    # (and, at export, the snapshot) it is given.
    "default_transaction_isolation": "the isolation level: counts run in the given snapshot",
    "default_transaction_read_only": _READ_ONLY,
    "transaction_read_only": _READ_ONLY,
    **{name: "it would change the identity or load code" for name in UNSAFE_ROLE_SETTINGS},
}

# Errors that say nothing about a policy (connection, resources, cancel, serialization,
# internal): they propagate instead of being recorded as behaviour.
_NOT_BEHAVIOUR = ("08", "40", "53", "57", "58", "XX")
# Data exceptions and errors a function raised itself can quote the value that caused them.
_QUOTING = ("22", "P0")


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _split_list(value: str) -> tuple[str, ...]:
    """A PostgREST list setting (``"public, api"``) as names, as PostgREST splits it."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class RlsSession:
    """How every identity's count is evaluated: PostgREST's per-request session.

    ``model`` is ``"postgrest"``: each count runs as :func:`impersonate` sets it up, with
    ``search_path`` = the request's exposed schema (the table's own schema when it is one of
    ``db_schemas``, else the default, ``db_schemas[0]``) followed by ``extra_search_path``,
    then the role's own settings (``role_settings``; PostgREST applies them after the
    search_path, so a role's ``search_path`` wins). ``not_applied`` names role settings the
    count leaves out and why. ``"legacy"`` stands for manifests written before the session
    was recorded: their counts ran in the export session's own search_path, with no role
    settings; :data:`LEGACY_SESSION` reproduces that.
    """

    model: str = "postgrest"
    db_schemas: tuple[str, ...] = POSTGREST_DB_SCHEMAS
    extra_search_path: tuple[str, ...] = POSTGREST_EXTRA_SEARCH_PATH
    role_settings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    not_applied: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def legacy(self) -> bool:
        return self.model == "legacy"

    def search_path(self, schema: str) -> str | None:
        """The ``search_path`` of a request on a table in ``schema`` (None: legacy, the
        session's own default), quoted as PostgREST writes it."""
        if self.legacy:
            return None
        profile = schema if schema in self.db_schemas else self.db_schemas[0]
        return ", ".join(_quote_ident(s) for s in (profile, *self.extra_search_path))

    def to_json(self) -> dict[str, Any]:
        """The manifest's ``rls.session``. ``search_path`` is informational (the default
        profile's); the other fields are what staging evaluates with."""
        if self.legacy:
            raise ValueError("a legacy session is never written")
        return {
            "model": self.model,
            "db_schemas": list(self.db_schemas),
            "db_extra_search_path": list(self.extra_search_path),
            "search_path": self.search_path(self.db_schemas[0]),
            "role_settings": {r: dict(s) for r, s in sorted(self.role_settings.items())},
            "not_applied": {r: dict(s) for r, s in sorted(self.not_applied.items())},
        }

    @classmethod
    def from_json(cls, data: Any) -> RlsSession:
        """The session a manifest's ``rls.session`` records; :data:`LEGACY_SESSION` when it
        records none. Raises ValueError naming the field that is malformed."""
        if data is None:
            return LEGACY_SESSION

        def need(cond: bool, where: str, what: str) -> None:
            if not cond:
                raise ValueError(f"{where}: {what}")

        def names(value: Any) -> bool:
            return isinstance(value, list) and all(isinstance(v, str) and v for v in value)

        def settings(value: Any) -> bool:
            return isinstance(value, dict) and all(
                isinstance(k, str)
                and isinstance(v, dict)
                and all(isinstance(n, str) and n and isinstance(x, str) for n, x in v.items())
                for k, v in value.items()
            )

        need(isinstance(data, dict), "rls.session", "must be an object")
        need(data.get("model") == "postgrest", "rls.session.model", "not 'postgrest'")
        schemas, extra = data.get("db_schemas"), data.get("db_extra_search_path")
        need(names(schemas) and bool(schemas), "rls.session.db_schemas", "not schema names")
        need(names(extra), "rls.session.db_extra_search_path", "not schema names")
        role_settings = data.get("role_settings", {})
        need(settings(role_settings), "rls.session.role_settings", "not role -> settings")
        need(
            not any(n in _NOT_APPLIED for s in role_settings.values() for n in s),
            "rls.session.role_settings",
            "holds a setting the counts never apply",
        )
        not_applied = data.get("not_applied", {})
        need(settings(not_applied), "rls.session.not_applied", "not role -> reasons")
        return cls(
            model="postgrest",
            db_schemas=tuple(schemas),
            extra_search_path=tuple(extra),
            role_settings={r: dict(s) for r, s in role_settings.items()},
            not_applied={r: dict(s) for r, s in not_applied.items()},
        )


LEGACY_SESSION = RlsSession(model="legacy", db_schemas=(), extra_search_path=())
"""How manifests without ``rls.session`` were counted: the session's own search_path."""

# PostgREST's in-database configuration: the authenticator's settings, a database-specific
# one over a global one (queryDbSettings in PostgREST's Config/Database.hs).
_Q_PGRST_CONFIG = """
SELECT DISTINCT ON (x.k) x.k, x.v
FROM (
    SELECT s.setdatabase, pg_catalog.split_part(c, '=', 1) AS k,
        pg_catalog.substr(c, pg_catalog.strpos(c, '=') + 1) AS v
    FROM pg_catalog.pg_db_role_setting s
    JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
    CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) AS c
    WHERE r.rolname = %s
        AND s.setdatabase IN (0, (SELECT d.oid FROM pg_catalog.pg_database d
                                  WHERE d.datname = pg_catalog.current_database()))
) AS x
WHERE x.k IN ('pgrst.db_schemas', 'pgrst.db_extra_search_path')
ORDER BY x.k, x.setdatabase DESC
"""

# The impersonated roles' settings as PostgREST reads them (queryRoleSettings): pg_roles'
# rolconfig (global settings; PostgREST ignores ALTER ROLE ... IN DATABASE for these), only
# settings pg_settings lists with context 'user' or, from PostgreSQL 15, that the
# authenticator was granted SET on.
_Q_ROLE_SETTINGS = """
SELECT r.rolname::text, kv.k, kv.v, ps.name IS NOT NULL, ps.context::text,
    coalesce(ps.context = 'user' {granted}, false)
FROM pg_catalog.pg_roles r
CROSS JOIN LATERAL pg_catalog.unnest(r.rolconfig) AS c
CROSS JOIN LATERAL (SELECT pg_catalog.split_part(c, '=', 1) AS k,
                           pg_catalog.substr(c, pg_catalog.strpos(c, '=') + 1) AS v) AS kv
LEFT JOIN pg_catalog.pg_settings ps ON ps.name = kv.k
WHERE r.rolname = ANY(%s::text[])
ORDER BY 1, 2
"""
_GRANTED = """OR pg_catalog.has_parameter_privilege(
        (SELECT a.oid FROM pg_catalog.pg_roles a WHERE a.rolname = %s), ps.name, 'SET')"""


def postgrest_session(conn: Conn) -> RlsSession:
    """The session PostgREST sets up for a request on this database, read from it.

    ``db-schemas`` / ``db-extra-search-path`` are the Supabase defaults unless the
    ``authenticator`` role carries PostgREST's in-database ``pgrst.db_schemas`` /
    ``pgrst.db_extra_search_path``. The role settings of ``anon`` and ``authenticated`` are
    read as PostgREST reads them; each one the counts would apply is tried once in a rolled
    back savepoint, and one this connection cannot set is recorded as not applied.
    """
    with conn.transaction(force_rollback=True):
        config = dict(conn.execute(_Q_PGRST_CONFIG, (AUTHENTICATOR,)).fetchall())
        db_schemas = _split_list(config.get("pgrst.db_schemas", "")) or POSTGREST_DB_SCHEMAS
        extra = config.get("pgrst.db_extra_search_path")
        extra_path = POSTGREST_EXTRA_SEARCH_PATH if extra is None else _split_list(extra)
        if conn.info.server_version >= 150000:
            query = _Q_ROLE_SETTINGS.format(granted=_GRANTED)
            params: tuple[Any, ...] = (AUTHENTICATOR, [ANON, AUTHENTICATED])
        else:
            query, params = _Q_ROLE_SETTINGS.format(granted=""), ([ANON, AUTHENTICATED],)
        applied: dict[str, dict[str, str]] = {}
        skipped: dict[str, dict[str, str]] = {}
        for role, name, value, known, context, settable in conn.execute(query, params):
            why: str | None = _NOT_APPLIED.get(name)
            if why is None and not known:
                why = "not a setting this server lists, and PostgREST applies only those"
            elif why is None and not settable:
                why = f"needs a privilege PostgREST does not have ({context} context)"
            elif why is None:
                try:
                    with conn.transaction():
                        _set_config(conn, {name: value}, local=True)
                except psycopg.Error as exc:
                    why = f"cannot be set by {conn.info.user}: {error_summary(exc)}"
            if why is None:
                applied.setdefault(role, {})[name] = value
            else:
                skipped.setdefault(role, {})[name] = why
    return RlsSession(
        db_schemas=db_schemas,
        extra_search_path=extra_path,
        role_settings=applied,
        not_applied=skipped,
    )


def error_summary(exc: psycopg.Error) -> str:
    """``<SQLSTATE> <first line of the message>`` of a database error, safe to record and
    to show: never the DETAIL, and for errors that may quote a value (data exceptions,
    errors a function raised itself) only the condition."""
    state = exc.sqlstate or "?"
    if state.startswith(_QUOTING):
        return f"{state} {type(exc).__name__} (message withheld: it may quote row values)"
    lines = (exc.diag.message_primary or "").strip().splitlines()
    message = lines[0] if lines else type(exc).__name__
    return f"{state} {message[:200]}"


def _claims(role: str, user_id: str | None) -> dict[str, str]:
    claims = {"role": role} if user_id is None else {"sub": user_id, "role": role}
    return {
        "role": role,
        "request.jwt.claims": json.dumps(claims),
        # The older per-claim settings: PostgREST no longer sets them, Supabase's Storage
        # API still does, and auth.uid() reads them first on many projects.
        "request.jwt.claim.sub": user_id or "",
        "request.jwt.claim.role": role,
    }


def impersonate(
    conn: Conn, session: RlsSession, role: str, user_id: str | None, schema: str
) -> None:
    """Make the current transaction a PostgREST GET request on a table in ``schema``, as
    ``role`` (with ``sub`` = ``user_id`` for a signed-in user). Everything is local to the
    transaction (``set_config(..., true)``): a rolled back savepoint undoes it.

    In PostgREST's order: ``search_path`` (the request's exposed schema, then the extra
    search path), the role's own settings, ``role``, then ``request.jwt.claims`` and the
    request's method (``GET``), path (``/``), headers and cookies (none: ``{}``); and
    read-only, as for a GET. A function
    with its own ``SET search_path`` keeps it, as it always does. A legacy session sets only
    what counts of manifests without a recorded session ran under: the session's default
    search_path and the claims.

    Raises DrillError when a recorded role setting cannot be applied or this connection may
    not ``SET ROLE role``.
    """
    search_path = session.search_path(schema)
    if search_path is None:
        conn.execute("SET LOCAL search_path TO DEFAULT")
        settings: dict[str, str] = {}
    else:
        settings = {"search_path": search_path, **session.role_settings.get(role, {})}
    try:
        _set_config(conn, settings, local=True)
    except psycopg.Error as exc:
        raise DrillError(
            f"The settings recorded for {role} ({', '.join(sorted(settings))}) cannot be "
            f"applied here: {error_summary(exc)}"
        ) from exc
    request = _claims(role, user_id)
    if not session.legacy:
        request |= {
            "request.method": "GET",
            "request.path": "/",
            "request.headers": "{}",
            "request.cookies": "{}",
        }
    request["transaction_read_only"] = "on"
    try:
        _set_config(conn, request, local=True)
    except psycopg.errors.InsufficientPrivilege as exc:
        user = conn.info.user
        raise DrillError(
            f"The database role {user!r} cannot SET ROLE {role}, so row-level "
            f"security cannot be checked as {role}. Grant it: GRANT {role} TO {user};"
        ) from exc


def sample_users(conn: Conn, n: int) -> list[str]:
    """The ids of the first ``n`` users of ``auth.users`` by id (deterministic); ``[]`` if
    the table does not exist."""
    row = conn.execute("SELECT pg_catalog.to_regclass('auth.users') IS NOT NULL").fetchone()
    if row is None or not row[0] or n <= 0:
        return []
    rows = conn.execute(
        "SELECT id::text FROM auth.users ORDER BY id LIMIT %s", (int(n),)
    ).fetchall()
    return [uid for (uid,) in rows]


def _rls_tables(conn: Conn, tables: Sequence[TableRef]) -> list[TableRef]:
    if not tables:
        return []
    rows = conn.execute(
        """
        SELECT n.nspname::text, c.relname::text
        FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relrowsecurity
            AND (n.nspname::text, c.relname::text) IN (
                SELECT * FROM ROWS FROM (
                    pg_catalog.unnest(%s::text[]), pg_catalog.unnest(%s::text[])))
        """,
        ([t.schema for t in tables], [t.name for t in tables]),
    ).fetchall()
    enabled = set(rows)
    return [t for t in tables if (t.schema, t.name) in enabled]


def _readable(conn: Conn, role: str, tables: Sequence[TableRef]) -> set[str]:
    """The tables ``role`` may run ``SELECT count(*)`` on at all (schema USAGE and SELECT on
    the table or any column): the others count ``-1`` without running anything."""
    rows = conn.execute(
        """
        SELECT x.s || '.' || x.n
        FROM ROWS FROM (pg_catalog.unnest(%s::text[]), pg_catalog.unnest(%s::text[])) AS x(s, n)
        WHERE pg_catalog.has_schema_privilege(%s, x.s, 'USAGE')
            AND pg_catalog.has_any_column_privilege(
                %s, pg_catalog.format('%%I.%%I', x.s, x.n), 'SELECT')
        """,
        ([t.schema for t in tables], [t.name for t in tables], role, role),
    ).fetchall()
    return {name for (name,) in rows}


def rls_visibility(
    conn: Conn,
    tables: Sequence[TableRef],
    user_ids: Sequence[str],
    session: RlsSession | None = None,
) -> dict[str, dict[str, RlsCount]]:
    """What each identity sees, per table with RLS enabled: ``{"anon": {...}, "<uuid>": {...}}``.

    Each count runs in a savepoint set up by :func:`impersonate` (``anon``, or
    ``authenticated`` with the user's id as ``sub``) under ``session``, by default the one
    :func:`postgrest_session` reads from ``conn`` (the export's; staging passes the
    recorded one, so both sides count under the same settings). A table the role may not
    read counts ``-1``; a count whose policies raise records ``{"error": ...}``
    (:func:`error_summary`) instead of failing. Afterwards the role, settings and the
    caller's transaction are what they were. Works for a non-superuser that is a member of
    ``anon`` and ``authenticated``.
    """
    if session is None:
        session = postgrest_session(conn)
    identities: list[tuple[str, str, str | None]] = [(ANON, ANON, None)]
    identities += [(uid, AUTHENTICATED, uid) for uid in user_ids]
    result: dict[str, dict[str, RlsCount]] = {}
    with _scoped(conn, {"row_security": "on"}):
        rls_tables = _rls_tables(conn, tables)
        readable: dict[str, set[str]] = {}
        for role in dict.fromkeys(role for _label, role, _uid in identities):
            with conn.transaction(force_rollback=True):  # fails early if not a member
                impersonate(conn, session, role, None, POSTGREST_DB_SCHEMAS[0])
            readable[role] = _readable(conn, role, rls_tables) if rls_tables else set()
        for label, role, user_id in identities:
            counts: dict[str, RlsCount] = {}
            for table in rls_tables:
                if table.qualified not in readable[role]:
                    counts[table.qualified] = -1
                    continue
                query = sql.SQL("SELECT count(*) FROM {}").format(_rel(table.schema, table.name))
                with conn.transaction(force_rollback=True):
                    impersonate(conn, session, role, user_id, table.schema)
                    try:
                        got = conn.execute(query).fetchone()
                    except psycopg.Error as exc:
                        if exc.sqlstate is None or exc.sqlstate.startswith(_NOT_BEHAVIOUR):
                            raise
                        counts[table.qualified] = {"error": error_summary(exc)}
                    else:
                        counts[table.qualified] = int(got[0]) if got else 0
            result[label] = counts
    return result


def select_policies(conn: Conn, table: TableRef, role: str) -> list[str]:
    """Names of the policies on ``table`` that apply to ``SELECT`` by ``role`` (commands
    SELECT and ALL, roles including it or PUBLIC), sorted."""
    rows = conn.execute(
        """
        SELECT policyname::text FROM pg_catalog.pg_policies
        WHERE schemaname = %s AND tablename = %s AND cmd IN ('SELECT', 'ALL')
            AND roles && ARRAY[%s, 'public']::name[]
        ORDER BY 1
        """,
        (table.schema, table.name, role),
    ).fetchall()
    return [name for (name,) in rows]


@dataclass(frozen=True)
class RlsComparison:
    """The recorded and the restored visibility of one identity, compared."""

    problems: list[str]  # one per table that differs
    notes: list[str]  # equal behaviour worth saying (the same error on both sides)

    @property
    def ok(self) -> bool:
        return not self.problems


def _error_of(value: Any) -> str | None:
    return str(value["error"]) if isinstance(value, dict) and "error" in value else None


def _show_count(value: Any) -> str:
    if value is None:
        return "no RLS (or table missing)"
    error = _error_of(value)
    if error is not None:
        return f"an error ({error})"
    return "no SELECT privilege" if int(value) < 0 else f"{int(value)} rows"


def compare_rls_visibility(
    conn: Conn,
    tables: Sequence[TableRef],
    expected: Mapping[str, Any],
    actual: Mapping[str, Any],
    role: str,
    session: RlsSession,
) -> RlsComparison:
    """Compare what one identity (as ``role``) saw in the backup with what it sees now.

    Equal counts, and the same error on both sides, are equal behaviour (the latter a
    note). Anything else is a problem naming the table and, where a count raised, the
    error(s) and the SELECT policies on the table that apply to ``role`` (read through
    ``conn``, the restored copy). Tables, policy names, counts and errors only.
    """
    refs = {t.qualified: t for t in tables}
    problems: list[str] = []
    notes: list[str] = []

    def policies(name: str) -> str:
        ref = refs.get(name)
        found = select_policies(conn, ref, role) if ref is not None else []
        if not found:
            return f"no SELECT policy on it applies to {role}"
        listed = ", ".join(f'"{p}"' for p in found)
        return f"SELECT polic{'y' if len(found) == 1 else 'ies'} for {role}: {listed}"

    for name in sorted(set(expected) | set(actual)):
        exp, act = expected.get(name), actual.get(name)
        if exp == act:
            error = _error_of(exp)
            if error is not None:
                notes.append(
                    f"{name}: raises {error} in the backup and in the restored copy alike "
                    f"({policies(name)})"
                )
            continue
        exp_error, act_error = _error_of(exp), _error_of(act)
        if (
            session.legacy
            and exp == -1
            and act_error is not None
            and act_error.startswith("42501 ")
        ):
            # Old manifests counted -1 for any permission error, also one inside a policy.
            notes.append(f"{name}: permission denied in the backup and in the restored copy")
            continue
        if act_error is not None and exp_error is None:
            problems.append(
                f"{name}: {_show_count(exp)} expected, but counting raised {act_error} in the "
                f"restored copy ({policies(name)})"
            )
        elif exp_error is not None and act_error is None:
            problems.append(
                f"{name}: counting raised {exp_error} in the backup, the restored copy counts "
                f"{_show_count(act)} ({policies(name)})"
            )
        elif exp_error is not None and act_error is not None:
            problems.append(
                f"{name}: counting raised {exp_error} in the backup, {act_error} in the "
                f"restored copy ({policies(name)})"
            )
        else:
            problems.append(f"{name}: {_show_count(exp)} expected, {_show_count(act)} found")
    return RlsComparison(problems, notes)


__all__ = [
    "ANON",
    "AUTHENTICATED",
    "AUTHENTICATOR",
    "EXCLUDED_TABLE_DATA",
    "INVENTORY_KINDS",
    "LEGACY_SESSION",
    "POSTGREST_DB_SCHEMAS",
    "POSTGREST_EXTRA_SEARCH_PATH",
    "SCOPE_EXCLUDED_SCHEMAS",
    "SESSION_SETTINGS",
    "InventoryDiff",
    "RangeDiff",
    "RlsComparison",
    "RlsCount",
    "RlsSession",
    "TableComparison",
    "TableRef",
    "compare_rls_visibility",
    "compare_table",
    "diff_inventory",
    "error_summary",
    "fingerprint_ranges",
    "fingerprint_table",
    "impersonate",
    "list_tables",
    "pin_session",
    "postgrest_session",
    "rls_visibility",
    "sample_users",
    "schema_excluded",
    "schemas_in_scope",
    "select_policies",
]
