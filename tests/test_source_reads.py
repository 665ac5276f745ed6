"""The ``source_reads`` figures against a real cluster: the deltas and the maintenance runs
(VACUUM / ANALYZE, autovacuum's included) that share the export's window."""

from __future__ import annotations

import psycopg

from pytest_supabase_restore import source_reads
from pytest_supabase_restore.pg.cluster import start_cluster


def test_a_vacuum_in_the_window_is_counted_apart_and_a_quiet_window_counts_none() -> None:
    with start_cluster(name="reads", settings={"autovacuum": "off"}) as cluster:
        dsn = cluster.dsn()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
            conn.execute("INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 5000) g")
        relations = [("public", "t")]

        # A quiet window: only a read of the table, as pg_dump's COPY does.
        before = source_reads.counters(dsn)
        assert before is not None
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT count(*) FROM t").fetchone()
        quiet = source_reads.measure(dsn, before, 5000, relations)
        assert quiet is not None
        assert quiet.rows == 5000 and quiet.maintenance_runs == 0
        assert quiet.blocks >= quiet.pg_dump_blocks > 0

        # The same read with a VACUUM ANALYZE beside it: one vacuum and one analyze run,
        # and the vacuum's block reads come on top of the read's.
        before = source_reads.counters(dsn)
        assert before is not None
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT count(*) FROM t").fetchone()
            conn.execute("VACUUM (ANALYZE) t")
        busy = source_reads.measure(dsn, before, 5000, relations)
        assert busy is not None
        assert busy.maintenance_runs == 2
        assert busy.blocks > quiet.blocks
