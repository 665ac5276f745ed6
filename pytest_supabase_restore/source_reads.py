"""What an export read from the source: cumulative statistics taken around it.

Rows are ``seq_tup_read + idx_tup_fetch`` of ``pg_stat_user_tables``, blocks
``heap_blks_read + heap_blks_hit`` (and TOAST) of ``pg_statio_user_tables``, and the
database-wide ``tup_returned``/``blks_read + blks_hit`` of ``pg_stat_database``. Each is
compared with what a bare ``pg_dump`` of the same tables reads: every row it wrote once, and
every heap and TOAST block of those tables once. The figures include whatever else the
source served meanwhile (production traffic, and autovacuum: a VACUUM reads every block of
its table that is not all-visible), so they are an upper bound of the export's;
``maintenance_runs`` counts the VACUUM and ANALYZE runs on the source's tables that finished
in that window, so a blocks figure above pg_dump's share can be told apart from the export's
own reads.

Since PostgreSQL 15 a session's statistics reach the shared counters when it is idle or
ends, not at once: the second reading waits until the export's sessions (pg_dump's too)
are gone and the counters stop moving.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from .results import SourceReads

log = logging.getLogger(__name__)

_COUNTERS = """
SELECT
    (SELECT coalesce(sum(seq_tup_read), 0) + coalesce(sum(idx_tup_fetch), 0)
     FROM pg_catalog.pg_stat_user_tables)::bigint,
    (SELECT coalesce(sum(coalesce(heap_blks_read, 0) + coalesce(heap_blks_hit, 0)
                         + coalesce(toast_blks_read, 0) + coalesce(toast_blks_hit, 0)), 0)
     FROM pg_catalog.pg_statio_user_tables)::bigint,
    (SELECT tup_returned + tup_fetched FROM pg_catalog.pg_stat_database
     WHERE datname = pg_catalog.current_database())::bigint,
    (SELECT blks_read + blks_hit FROM pg_catalog.pg_stat_database
     WHERE datname = pg_catalog.current_database())::bigint,
    (SELECT coalesce(sum(vacuum_count + autovacuum_count + analyze_count
                         + autoanalyze_count), 0)
     FROM pg_catalog.pg_stat_user_tables)::bigint
"""

# Heap and TOAST blocks of the given relations: what one sequential read of each costs.
_BLOCKS = """
SELECT coalesce(sum(
    pg_catalog.pg_relation_size(c.oid, 'main')
    + CASE WHEN c.reltoastrelid <> 0
           THEN pg_catalog.pg_relation_size(c.reltoastrelid, 'main') ELSE 0 END), 0)::bigint
    / pg_catalog.current_setting('block_size')::bigint
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN ROWS FROM (pg_catalog.unnest(%s::text[]), pg_catalog.unnest(%s::text[])) AS t(s, r) ON t.s = n.nspname AND t.r = c.relname
WHERE c.relkind = 'r'
"""

_OURS = """
SELECT count(*) FROM pg_catalog.pg_stat_activity
WHERE datname = pg_catalog.current_database() AND pid <> pg_catalog.pg_backend_pid()
    AND application_name = ANY(%s::text[])
"""

APPLICATIONS = ("pg_dump", "pytest-supabase-restore")


@dataclass(frozen=True)
class Counters:
    rows: int
    blocks: int
    db_rows: int
    db_blocks: int
    maintenance: int = 0  # VACUUM and ANALYZE runs, autovacuum's included


def _read(conn: psycopg.Connection[Any]) -> Counters:
    conn.execute("SELECT pg_catalog.pg_stat_clear_snapshot()")
    row = conn.execute(_COUNTERS).fetchone()
    assert row is not None
    return Counters(*(int(v or 0) for v in row))


def counters(db_url: str) -> Counters | None:
    """The source's counters now (None when they cannot be read: the export goes on)."""
    try:
        with psycopg.connect(db_url, autocommit=True, connect_timeout=10) as conn:
            return _read(conn)
    except psycopg.Error as exc:
        log.info("source statistics not readable: %s", exc)
        return None


def _settled(conn: psycopg.Connection[Any], wait: float) -> Counters:
    """Once the export's sessions are gone (up to ``wait`` seconds), the counters when two
    readings 0.25 s apart agree (at most a second more: a busy source never stops)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        row = conn.execute(_OURS, (list(APPLICATIONS),)).fetchone()
        if row is not None and int(row[0]) == 0:
            break
        time.sleep(0.1)
    last = _read(conn)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = _read(conn)
        if now == last:
            return now
        last = now
    return last


def settled(db_url: str, wait: float = 5.0) -> Counters | None:
    """The counters once the export's sessions (and pg_dump's) are gone and they stop moving."""
    try:
        with psycopg.connect(db_url, autocommit=True, connect_timeout=10) as conn:
            return _settled(conn, wait)
    except psycopg.Error as exc:
        log.info("source statistics not readable: %s", exc)
        return None


def measure(
    db_url: str,
    before: Counters,
    dumped_rows: int,
    relations: Sequence[tuple[str, str]],
    *,
    wait: float = 5.0,
) -> SourceReads | None:
    """The ``source_reads`` figures of an export that started at ``before``: absolute deltas
    and their ratio to a bare pg_dump's share (``dumped_rows``; the heap and TOAST blocks of
    ``relations``, the tables whose data was dumped)."""
    try:
        with psycopg.connect(db_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute("SELECT pg_catalog.set_config('application_name', 'stats-reader', false)")
            after = _settled(conn, wait)
            row = conn.execute(
                _BLOCKS, ([s for s, _ in relations], [r for _, r in relations])
            ).fetchone()
    except psycopg.Error as exc:
        log.info("source statistics not readable: %s", exc)
        return None
    table_blocks = int(row[0]) if row else 0
    rows = after.rows - before.rows
    blocks = after.blocks - before.blocks
    return SourceReads(
        rows=rows,
        blocks=blocks,
        database_rows=after.db_rows - before.db_rows,
        database_blocks=after.db_blocks - before.db_blocks,
        pg_dump_rows=dumped_rows,
        pg_dump_blocks=table_blocks,
        ratio_rows=round(rows / dumped_rows, 3) if dumped_rows else None,
        ratio_blocks=round(blocks / table_blocks, 3) if table_blocks else None,
        maintenance_runs=after.maintenance - before.maintenance,
        basis="pg_stat deltas around the export over the rows pg_dump wrote and the "
        "heap+TOAST blocks of the dumped tables",
    )


__all__ = ["APPLICATIONS", "Counters", "counters", "measure", "settled"]
