"""A settled source: what a production database that has been running for a while looks like.

The demo is bulk-loaded minutes before it is measured, so autovacuum still has every fresh
table to vacuum (since PostgreSQL 13 inserts alone trigger it) and to analyse. A VACUUM reads
every block of its table that is not all-visible, and the source's statistics count every
backend's reads, autovacuum's included: a read-amplification figure taken while it runs is
the export's reads plus autovacuum's. So, before anything is measured, the benchmark runs
``VACUUM (ANALYZE)`` on the whole demo once, and before each measured step it waits until no
autovacuum worker is running on the source.
"""

from __future__ import annotations

import time

import psycopg

_WORKERS = """
SELECT count(*) FROM pg_catalog.pg_stat_activity
WHERE backend_type = 'autovacuum worker' AND datname = pg_catalog.current_database()
"""


def vacuum_all(admin_url: str) -> float:
    """``VACUUM (ANALYZE)`` of the whole database; its seconds."""
    t0 = time.monotonic()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    return time.monotonic() - t0


def autovacuum_idle(admin_url: str, timeout: float = 300.0) -> float:
    """Wait until no autovacuum worker runs on the database for two readings 0.5 s apart
    (at most ``timeout`` seconds); the seconds waited."""
    t0 = time.monotonic()
    quiet = 0
    with psycopg.connect(admin_url, autocommit=True) as conn:
        while quiet < 2 and time.monotonic() - t0 < timeout:
            row = conn.execute(_WORKERS).fetchone()
            quiet = quiet + 1 if row is not None and int(row[0]) == 0 else 0
            if quiet < 2:
                time.sleep(0.5)
    return time.monotonic() - t0
