"""Row fingerprints: a table's count and order-independent hash, per primary-key range.

Messages name tables, row counts and primary-key boundary values, never other row contents.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from ..errors import DrillError
from .copyhash import copy_ranges, copy_whole
from .records import MOD as _MOD
from .records import Fingerprint, KeyRange
from .records import acc_of as _acc_of
from .records import fmt as _fmt
from .scope import SESSION_SETTINGS, Conn, TableRef, relation, scoped

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

# 64 bits of the MD5 of the row's text form. ROW(t.*) (not t::text) because a column may be
# called "t"; pg_dump keeps column order, so the restored copy gives the same text.
_ROW_HASH = sql.SQL(
    "(('x' OPERATOR(pg_catalog.||) pg_catalog.left(pg_catalog.md5(ROW(t.*)::text), 16))"
    "::pg_catalog.bit(64))::bigint"
)


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
        h=_ROW_HASH, rel=relation(table.schema, table.name)
    )
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]) % _MOD


def fingerprint_table(conn: Conn, table: TableRef, buckets: int = 16) -> Fingerprint:
    """Row count and order-independent fingerprint of ``table``, in one server-side pass.

    The fingerprint is the count plus the sum (mod 2^64) of 64 bits of ``md5(ROW(t.*)::text)``
    per row, under :data:`SESSION_SETTINGS`. With a primary key, ``ntile(buckets)`` over key
    order splits the rows into key ranges (``lo``/``hi`` inclusive, key values as text), each
    with its own count and fingerprint; the table's fingerprint is derived from them. A
    table without a primary key gets no ranges.
    """
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1, not {buckets}")
    with scoped(conn, _FINGERPRINT_SETTINGS):
        if not table.pk:
            rows, acc = _whole_table(conn, table)
            return Fingerprint(rows, _fmt(rows, acc))
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
            rel=relation(table.schema, table.name),
            key_refs=key_refs,
        )
        result = conn.execute(query).fetchall()
    out: list[KeyRange] = []
    for _b, rows, acc, lo, hi in result:
        if lo is None or hi is None:  # the bound arithmetic must match ntile exactly
            raise DrillError(
                f"Could not determine the key range of a bucket of {table.qualified}; "
                "this is a bug in pytest-supabase-restore, please report it."
            )
        out.append(KeyRange(tuple(lo), tuple(hi), int(rows), _fmt(rows, acc)))
    total_rows, total_acc = _combine([(b.rows, _acc_of(b.fingerprint)) for b in out])
    return Fingerprint(total_rows, _fmt(total_rows, total_acc), tuple(out))


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
    conn: Conn, table: TableRef, buckets: Sequence[KeyRange]
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
        if len(bucket.lo) != len(table.pk) or len(bucket.hi) != len(table.pk):
            raise ValueError(
                f"a key range of {table.qualified} has {len(bucket.lo)} key values, "
                f"its primary key {len(table.pk)} columns"
            )
    with scoped(conn, _FINGERPRINT_SETTINGS):
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
                    lo=bound(bucket.lo),
                    gap=sql.Literal(-i),
                    hi=bound(bucket.hi),
                    i=sql.Literal(i),
                )
            )
        case = sql.SQL("CASE {} ELSE {} END").format(
            sql.SQL(" ").join(whens), sql.Literal(-(len(buckets) + 1))
        )
        query = sql.SQL(
            "SELECT {case} AS b, count(*), coalesce(sum(s.h), 0)"
            " FROM (SELECT {h} AS h, {key_select} FROM {rel} AS t) AS s GROUP BY 1"
        ).format(
            case=case, h=_ROW_HASH, key_select=key_select, rel=relation(table.schema, table.name)
        )
        found = {
            int(b): (int(rows), int(acc) % _MOD) for b, rows, acc in conn.execute(query, params)
        }
    return _ranges(buckets, found)


def _ranges(
    buckets: Sequence[KeyRange], found: Mapping[int, tuple[int, int]]
) -> list[dict[str, Any]]:
    """:func:`fingerprint_ranges`' entries from the (rows, hash) it found per range ``i``
    (1-based) and per gap ``-i`` before range ``i``."""
    out: list[dict[str, Any]] = []
    n = len(buckets)
    for i in range(1, n + 2):
        gap = found.get(-i)
        if gap is not None:
            out.append(
                {
                    "lo": list(buckets[i - 2].hi) if i > 1 else None,
                    "hi": list(buckets[i - 1].lo) if i <= n else None,
                    "rows": gap[0],
                    "fingerprint": _fmt(*gap),
                    "outside": True,
                }
            )
        if i <= n:
            rows, acc = found.get(i, (0, 0))
            out.append(
                {
                    "lo": list(buckets[i - 1].lo),
                    "hi": list(buckets[i - 1].hi),
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


Whole = Callable[[], tuple[int, int]]
Ranges = Callable[[Sequence[KeyRange]], list[dict[str, Any]]]


def _readers(conn: Conn, table: TableRef, expected: Fingerprint) -> tuple[Whole, Ranges]:
    """How to read ``table`` the way ``expected`` was fingerprinted: the whole table, and
    per recorded key range."""
    read = expected.copy
    if read is not None:

        def copy_ranges_of(buckets: Sequence[KeyRange]) -> list[dict[str, Any]]:
            found = copy_ranges(
                conn, read.parts, read.settings, table.pk, read.key_kinds, buckets, read.scheme
            )
            return _ranges(buckets, found)

        return (lambda: copy_whole(conn, read.parts, read.settings, read.scheme)), copy_ranges_of

    # The whole-table pass runs in parallel workers; the range pass cannot (its GROUP BY
    # looks like a million groups to the planner), so it only runs to explain a mismatch.
    def whole() -> tuple[int, int]:
        with scoped(conn, _FINGERPRINT_SETTINGS):
            return _whole_table(conn, table)

    return whole, lambda buckets: fingerprint_ranges(conn, table, buckets)


def compare_table(conn: Conn, table: TableRef, expected: Fingerprint) -> TableComparison:
    """Compare ``table`` with the fingerprint :func:`fingerprint_table` recorded.

    A matching table costs one (parallel) pass. On a mismatch, a table with a primary key
    gets a second pass over the recorded key ranges, and the message names each differing
    range with its row counts (key boundary values only, never row contents); that pass alone
    then decides the result, so the report is consistent even if rows change in between.
    Without a primary key the difference cannot be narrowed and the message says so.
    """
    exp_rows = expected.rows
    exp_fp = expected.value
    exp_buckets = expected.ranges
    narrowable = bool(table.pk) and (bool(exp_buckets) or exp_rows == 0)
    narrowable = narrowable and all(
        len(b.lo) == len(table.pk) and len(b.hi) == len(table.pk) for b in exp_buckets
    )
    if expected.copy is not None:  # key ranges in the recorded key types' order
        narrowable = narrowable and len(expected.copy.key_kinds) == len(table.pk)
    whole, ranges = _readers(conn, table, expected)
    differing: list[RangeDiff] = []
    try:
        act_rows, act_acc = whole()
    except (psycopg.errors.UndefinedColumn, psycopg.errors.UndefinedTable) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        message = f"{table.qualified}: the columns the backup copied cannot be read: {first}"
        return TableComparison(table.qualified, False, exp_rows, 0, [], message)
    matches = act_rows == exp_rows and _fmt(act_rows, act_acc) == exp_fp
    if narrowable and not matches:
        entries = ranges(exp_buckets)
        act_rows, act_acc = _combine([(e["rows"], _acc_of(e["fingerprint"])) for e in entries])
        by_range = iter(exp_buckets)
        for entry in entries:
            if entry["outside"]:
                differing.append(RangeDiff(entry["lo"], entry["hi"], 0, entry["rows"], True))
                continue
            exp = next(by_range)
            if entry["fingerprint"] != exp.fingerprint or entry["rows"] != exp.rows:
                differing.append(RangeDiff(entry["lo"], entry["hi"], exp.rows, entry["rows"]))
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


__all__ = [
    "RangeDiff",
    "TableComparison",
    "compare_table",
    "fingerprint_ranges",
    "fingerprint_table",
]
