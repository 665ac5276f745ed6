"""What the backup will hold: tables with honest sizes, in human units.

``reltuples`` is -1 for a table never vacuumed or analysed: its rows are then unknown, not
zero, and its heap size (``pg_relation_size``) is what is shown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from ..proof.scope import list_tables
from .model import INFO, Check, human_bytes

Conn = psycopg.Connection[Any]
SHOWN_TABLES = 10  # the largest tables, one row each

_STATS = """
SELECT t.s || '.' || t.n, c.reltuples::bigint, pg_catalog.pg_relation_size(c.oid)::bigint
FROM unnest(%s::text[], %s::text[]) AS t(s, n)
JOIN pg_catalog.pg_namespace ns ON ns.nspname = t.s
JOIN pg_catalog.pg_class c ON c.relnamespace = ns.oid AND c.relname = t.n
"""

_OBJECTS = """
SELECT
  (SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n
     ON n.oid = c.relnamespace WHERE n.nspname = ANY(%(s)s::text[]) AND c.relkind IN ('v', 'm')),
  (SELECT count(*) FROM pg_catalog.pg_proc p WHERE p.pronamespace::regnamespace::text
     = ANY(%(s)s::text[])),
  (SELECT count(*) FROM pg_catalog.pg_largeobject_metadata),
  pg_catalog.pg_database_size(current_database())
"""


@dataclass(frozen=True)
class TableSize:
    name: str
    rows: int | None  # None: never analysed
    heap: int  # pg_relation_size
    total: int  # pg_total_relation_size (indexes, TOAST)


@dataclass(frozen=True)
class SourceSize:
    """What the plan needs: the bytes a dump and a restored copy take."""

    tables: list[TableSize]
    database_bytes: int
    views: int = 0
    functions: int = 0
    large_objects: int = 0

    @property
    def heap_bytes(self) -> int:
        return sum(t.heap for t in self.tables)

    @property
    def total_bytes(self) -> int:
        return sum(t.total for t in self.tables)


def read_sizes(conn: Conn, scope: list[str]) -> SourceSize:
    refs = list_tables(conn, scope)
    stats = {
        q: (int(rt), int(heap))
        for q, rt, heap in conn.execute(
            _STATS, ([r.schema for r in refs], [r.name for r in refs])
        ).fetchall()
    }
    tables = []
    for r in refs:
        reltuples, heap = stats.get(r.qualified, (-1, 0))
        # A partitioned root has no heap of its own: its tree's total stands for it.
        rows = None if reltuples < 0 and r.kind != "p" else r.est_rows
        tables.append(TableSize(r.qualified, rows, heap if r.kind != "p" else r.bytes, r.bytes))
    row = conn.execute(_OBJECTS, {"s": scope}).fetchone()
    assert row is not None
    return SourceSize(tables, int(row[3]), int(row[0]), int(row[1]), int(row[2]))


def size_checks(conn: Conn, scope: list[str]) -> tuple[list[Check], SourceSize]:
    size = read_sizes(conn, scope)
    unknown = [t for t in size.tables if t.rows is None]
    checks = [
        Check(
            "source size",
            INFO,
            f"{len(size.tables)} tables ({human_bytes(size.heap_bytes)} of rows, "
            f"{human_bytes(size.total_bytes)} with indexes), {size.views} views, "
            f"{size.functions} functions, {size.large_objects} large objects in {len(scope)} schemas; database "
            f"{human_bytes(size.database_bytes)}",
        )
    ]
    for t in sorted(size.tables, key=lambda t: t.total, reverse=True)[:SHOWN_TABLES]:
        rows = "rows unknown (never analysed)" if t.rows is None else f"~{t.rows} rows"
        checks.append(
            Check(
                f"table {t.name}",
                INFO,
                f"{rows}, {human_bytes(t.heap)} of rows, {human_bytes(t.total)} with indexes",
            )
        )
    if unknown:
        checks.append(
            Check(
                "source statistics",
                INFO,
                f"{len(unknown)} table(s) never analysed, sizes from pg_relation_size: "
                + ", ".join(t.name for t in unknown[:10]),
            )
        )
    return checks, size
