"""Deterministic, fast data for the demo project: the entry point of its seeding.

Rows are generated server-side (``generate_series`` and md5-derived pseudo-random values),
so scale 1 (a few thousand rows) takes well under a second and scale 1000 (millions of
rows, about 1.5 GB) takes minutes, not hours. The same ``scale`` and ``seed`` give the same
rows in auth and public, byte for byte. The SQL is in ``demo.seed_users`` (auth) and
``demo.seed_app`` (public); the Storage buckets and objects are in ``demo.seed_storage``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

from .seed_app import PUBLIC_SQL, TAGS
from .seed_users import AUTH_SQL, users_sql

log = logging.getLogger(__name__)

DEMO_PASSWORD = "demo-password"  # noqa: S105 - the published password of every demo user
"""Every non-anonymous demo user signs in with this password (it is a demo, not a secret)."""

SCHEMAS: tuple[str, ...] = (
    "auth",
    "storage",
    "public",
    "supabase_functions",
    "supabase_migrations",
)
"""The schemas the demo project fills, and that :func:`table_counts` counts."""


def _temp_functions(seed: int) -> str:
    """Pseudo-random helpers in ``pg_temp``: inlined by the planner, gone with the session."""
    prefix = f"{int(seed)}:"
    return f"""
CREATE OR REPLACE FUNCTION pg_temp.r(key text) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ('x' || substr(md5('{prefix}' || key), 1, 13))::bit(52)::bigint::double precision
             / 4503599627370496 $$;
CREATE OR REPLACE FUNCTION pg_temp.ri(key text, lo bigint, hi bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT lo + floor(pg_temp.r(key) * (hi - lo + 1))::bigint $$;
CREATE OR REPLACE FUNCTION pg_temp.pick(key text, options text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT options[1 + floor(pg_temp.r(key) * array_length(options, 1))::int] $$;
CREATE OR REPLACE FUNCTION pg_temp.u(key text) RETURNS uuid
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT overlay(overlay(md5('{prefix}uuid:' || key) placing '4' from 13)
                     placing '8' from 17)::uuid $$;
"""


def seed(conn: psycopg.Connection[Any], scale: int = 1, seed: int = 42) -> dict[str, int]:
    """Fill auth and public with deterministic rows; return the row count per table.

    ``conn`` should be a superuser connection (``supabase_admin``) so that the final
    ANALYZE covers the platform schemas too. Users go into ``auth.users`` and the app's
    ``on_auth_user_created`` trigger creates their profiles. Scale 1 is about 6,000 rows;
    rows grow linearly with ``scale``.
    """
    if scale < 1:
        raise ValueError(f"scale must be >= 1, not {scale}")
    n_users = 40 * scale
    params: dict[str, Any] = {
        "n_users": n_users,
        "password": DEMO_PASSWORD,
        "seed_text": str(int(seed)),
        "extra_tags": 2 * (scale - 1),
        "n_tags": len(TAGS) + 2 * (scale - 1),
        "n_hooks": 10 * scale,
    }
    with conn.transaction():
        # generate_series estimates make these plans look expensive enough for JIT, whose
        # compile time (about a second) would dominate a small seed.
        conn.execute("SET LOCAL jit = off")
        conn.execute(_temp_functions(seed))
        for statement in (*users_sql(), *AUTH_SQL, *PUBLIC_SQL):
            used = {k: v for k, v in params.items() if f"%({k})s" in statement}
            conn.execute(statement, used or None)
        conn.execute("REFRESH MATERIALIZED VIEW public.daily_task_stats")
        sync_sequences(conn)
        conn.execute("ANALYZE")
    counts = table_counts(conn)
    log.info("seeded the demo project at scale %s: %s rows", scale, sum(counts.values()))
    return counts


def sync_sequences(conn: psycopg.Connection[Any], schemas: Iterable[str] = SCHEMAS) -> None:
    """Move every identity/serial sequence to the max of its column, as in a real database.

    Rows seeded with explicit keys leave their sequences at 1; a restored database whose
    next insert collides with an existing key would pass a row-count check and still be
    broken, so the demo must look like a database that has been used.
    """
    rows = conn.execute(
        """
        SELECT n.nspname, c.relname, a.attname, s.seq
        FROM pg_catalog.pg_attribute AS a
        JOIN pg_catalog.pg_class AS c ON c.oid = a.attrelid
        JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
        CROSS JOIN LATERAL (
            SELECT pg_catalog.pg_get_serial_sequence(
                       quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname) AS seq
        ) AS s
        WHERE c.relkind IN ('r', 'p')
          AND NOT c.relispartition
          AND a.attnum > 0
          AND NOT a.attisdropped
          AND n.nspname = ANY(%s)
          AND s.seq IS NOT NULL
        ORDER BY 1, 2, 3
        """,
        (list(schemas),),
    ).fetchall()
    for schema, table, column, seq in rows:
        conn.execute(
            sql.SQL(
                "SELECT setval({seq}, coalesce(max({col}), 1), max({col}) IS NOT NULL) "
                "FROM {schema}.{table}"
            ).format(
                seq=sql.Literal(seq),
                col=sql.Identifier(column),
                schema=sql.Identifier(schema),
                table=sql.Identifier(table),
            )
        )


def table_counts(conn: psycopg.Connection[Any], schemas: Iterable[str] = SCHEMAS) -> dict[str, int]:
    """Exact row count of every table holding rows (leaf partitions, not their parent).

    Keys are ``schema.table`` as written by ``quote_ident(schema) || '.' || quote_ident(table)``. A partitioned parent is
    left out because its rows are its partitions' rows; counting both would count twice.
    """
    tables = conn.execute(
        """
        SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), n.nspname, c.relname
        FROM pg_catalog.pg_class AS c
        JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND n.nspname = ANY(%s)
        ORDER BY 1
        """,
        (list(schemas),),
    ).fetchall()
    counts: dict[str, int] = {}
    for name, schema, table in tables:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.{}").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
        ).fetchone()
        counts[name] = int(row[0]) if row else 0
    return counts
