"""performance: the restored copy answers like a production database, within budget.

The restore must finish within the RTO budget (when one is set); every non-empty table must
have planner statistics (a restore that skips ANALYZE leaves the planner guessing); and a
primary-key lookup on the largest tables must use an index and answer within
``--supabase-lookup-threshold-ms``. Timings are recorded as test properties.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pytest_supabase_restore.config import Config
from pytest_supabase_restore.results import DrillState
from pytest_supabase_restore.smoke_tests._support import Facts, resolve_relation

pytestmark = pytest.mark.supabase_category("performance")

LOOKUP_RUNS = 5
# Below this many pages a sequential scan is genuinely cheaper than any index, so the
# planner is right to choose one; the index must then at least be usable.
SMALL_TABLE_PAGES = 8
_INDEX_NODES = {"Index Scan", "Index Only Scan", "Bitmap Heap Scan", "Bitmap Index Scan"}


def test_rto_within_budget(
    drill_state: DrillState, drill_settings: Config, drill_fact: Any
) -> None:
    """The restore (staging start to a usable database) took no longer than the budget."""
    drill_fact("rto_seconds", drill_state.rto_seconds)
    if drill_settings.rto_budget is None:
        pytest.skip("not tested: no RTO budget set (--supabase-rto-budget)")
    if drill_state.rto_seconds is None:
        pytest.fail("RTO: the drill recorded no restore time", pytrace=False)
    if drill_state.rto_seconds > drill_settings.rto_budget:
        pytest.fail(
            f"RTO: the restore took {drill_state.rto_seconds:.1f} s, over the budget of "
            f"{drill_settings.rto_budget:g} s",
            pytrace=False,
        )


def test_planner_statistics(
    stats_table: str, facts: Facts, pinned_db: psycopg.Connection[Any]
) -> None:
    """The table (non-empty in the backup) has planner statistics after the restore."""
    found = resolve_relation(pinned_db, stats_table)
    if found is None:
        pytest.fail(f"{stats_table}: missing from the restored copy", pytrace=False)
    oid, _rel, kind, _schema = found
    row = pinned_db.execute(
        """
        SELECT
            CASE WHEN %(kind)s = 'p' THEN (
                SELECT coalesce(sum(GREATEST(c.reltuples, 0)), 0)
                FROM pg_catalog.pg_partition_tree(%(oid)s) t
                JOIN pg_catalog.pg_class c ON c.oid = t.relid WHERE t.isleaf)
            ELSE (SELECT GREATEST(reltuples, 0) FROM pg_catalog.pg_class
                  WHERE oid = %(oid)s) END,
            -- pg_stats, not pg_statistic: readable without superuser on a url target.
            (SELECT count(*) FROM pg_catalog.pg_stats s
             JOIN pg_catalog.pg_namespace n ON n.nspname = s.schemaname
             JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename
             WHERE c.oid = %(oid)s)
        """,
        {"kind": kind, "oid": oid},
    ).fetchone()
    assert row is not None
    reltuples, columns_with_stats = float(row[0]), int(row[1])
    rows = facts.tables[stats_table].rows
    problems = []
    if reltuples <= 0:
        problems.append("the planner's row estimate (reltuples) is empty")
    if columns_with_stats == 0:
        problems.append("no column statistics (pg_stats)")
    if problems:
        pytest.fail(
            f"{stats_table}: {rows} rows backed up, but {' and '.join(problems)}: run ANALYZE "
            "after the restore, or queries plan as if the table were empty",
            pytrace=False,
        )


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def _scans(conn: psycopg.Connection[Any], query: sql.Composable, relations: set[str]) -> list[str]:
    """Node types of the plan that read ``relations`` (names as EXPLAIN prints them)."""
    explain = sql.SQL("EXPLAIN (FORMAT JSON) {}").format(query)
    row = conn.execute(explain).fetchone()
    assert row is not None
    plan = row[0][0]["Plan"]
    return [
        str(node["Node Type"])
        for node in _plan_nodes(plan)
        if node.get("Relation Name") in relations or node.get("Node Type") == "Bitmap Index Scan"
    ]


def _lookup(
    conn: psycopg.Connection[Any], table: str, oid: int, rel: str, pk: list[str]
) -> sql.Composed:
    """``SELECT *`` of one existing row of the table by its primary key (never shown)."""
    cols = [sql.Identifier(c) for c in pk]
    types = [
        str(r[0])
        for r in conn.execute(
            "SELECT pg_catalog.format_type(a.atttypid, a.atttypmod)"
            " FROM pg_catalog.unnest(%s::text[]) WITH ORDINALITY AS k(name, ord)"
            " JOIN pg_catalog.pg_attribute a ON a.attrelid = %s AND a.attname = k.name"
            " ORDER BY k.ord",
            (pk, oid),
        )
    ]
    if len(types) != len(pk):
        pytest.fail(f"{table}: primary-key column(s) missing: {', '.join(pk)}", pytrace=False)
    # The key of some row (never shown): the lookup must find exactly that row.
    key_row = conn.execute(
        sql.SQL("SELECT ARRAY[{}]::text[] FROM {} LIMIT 1").format(
            sql.SQL(", ").join(sql.SQL("{}::text").format(c) for c in cols), sql.SQL(rel)
        )
    ).fetchone()
    if key_row is None:
        pytest.skip(
            f"not tested: {table} is empty in the restored copy (data_integrity reports it)"
        )
    # Literals, not parameters: EXPLAIN cannot take bind parameters, and the planner should
    # see the same constant an application's query would carry.
    return sql.SQL("SELECT * FROM {t} WHERE {cond}").format(
        t=sql.SQL(rel),
        cond=sql.SQL(" AND ").join(
            sql.SQL("{} = {}::{}").format(c, sql.Literal(v), sql.SQL(ty))
            for c, v, ty in zip(cols, key_row[0], types, strict=True)
        ),
    )


def _index_plan(conn: psycopg.Connection[Any], table: str, oid: int, lookup: sql.Composed) -> str:
    """How the lookup is planned; fails when no index can serve it (on a table big enough
    for the planner to want one)."""
    names = {
        r[0]
        for r in conn.execute(
            "SELECT c.relname::text FROM pg_catalog.pg_class c WHERE c.oid = %(oid)s"
            " OR c.oid IN (SELECT relid FROM pg_catalog.pg_partition_tree(%(oid)s))",
            {"oid": oid},
        )
    }
    scans = _scans(conn, lookup, names)
    if _INDEX_NODES & set(scans):
        return "planner's choice"
    pages_row = conn.execute(
        "SELECT coalesce(sum(c.relpages), 0) FROM pg_catalog.pg_class c WHERE c.oid = %(oid)s"
        " OR c.oid IN (SELECT relid FROM pg_catalog.pg_partition_tree(%(oid)s))",
        {"oid": oid},
    ).fetchone()
    pages = int(pages_row[0]) if pages_row else 0
    if pages >= SMALL_TABLE_PAGES:
        pytest.fail(
            f"{table}: a primary-key lookup does not use an index "
            f"({', '.join(scans) or 'no scan node'} over {pages} pages): the index or the "
            "statistics did not survive the restore",
            pytrace=False,
        )
    with conn.transaction(force_rollback=True):
        conn.execute("SELECT pg_catalog.set_config('enable_seqscan', 'off', true)")
        scans = _scans(conn, lookup, names)
    if not _INDEX_NODES & set(scans):
        pytest.fail(
            f"{table}: no index can serve a primary-key lookup ({', '.join(scans)}"
            ", even with sequential scans disabled)",
            pytrace=False,
        )
    return f"index usable; a {pages}-page table is scanned sequentially by choice"


def test_primary_key_lookup(
    lookup_table: str,
    facts: Facts,
    drill_settings: Config,
    pinned_db: psycopg.Connection[Any],
    drill_fact: Any,
) -> None:
    """A lookup by primary key uses an index and answers within the threshold."""
    entry = facts.tables[lookup_table]
    found = resolve_relation(pinned_db, lookup_table)
    if found is None:
        pytest.fail(f"{lookup_table}: missing from the restored copy", pytrace=False)
    oid, rel, _kind, _schema = found
    lookup = _lookup(pinned_db, lookup_table, oid, rel, list(entry.pk))
    how = _index_plan(pinned_db, lookup_table, oid, lookup)
    timings: list[float] = []
    for _ in range(LOOKUP_RUNS):
        started = time.perf_counter()
        rows = pinned_db.execute(lookup).fetchall()
        timings.append((time.perf_counter() - started) * 1000)
        if len(rows) != 1:
            pytest.fail(
                f"{lookup_table}: a primary-key lookup returned {len(rows)} rows", pytrace=False
            )
    median = statistics.median(timings)
    drill_fact("lookup_ms", round(median, 3))
    drill_fact("lookup_plan", how)
    threshold = drill_settings.lookup_threshold_ms
    if median > threshold:
        pytest.fail(
            f"{lookup_table}: a primary-key lookup takes {median:.1f} ms (median of "
            f"{LOOKUP_RUNS}), over the threshold of {threshold:g} ms",
            pytrace=False,
        )
