"""Connection slots of the source: how many parallel jobs the export may use.

The export opens, at its peak, one session holding the snapshot, pg_dump's connections
(``--jobs=N`` opens N + 1: a leader and N workers; one job opens one) and one session per
fingerprint worker (N): **2 x jobs + 2** connections, or 3 with one job. Production keeps
serving its own clients meanwhile, so ``--supabase-jobs`` is capped to leave them headroom:
the export takes at most **half of the free connection slots** the source has for this role
when it starts, and at least one job (3 connections) as long as that fits at all.

Free slots are the tightest of three limits, each read without any privilege:

* the server's ``max_connections``, less ``superuser_reserved_connections`` (and, on
  PostgreSQL 16+, ``reserved_connections``) unless the role may use those, less every session
  connected to a database (``pg_stat_activity`` shows every session's ``datid`` to every role;
  background workers count too, which errs on the safe side);
* the role's ``rolconnlimit``, less its sessions (not for a superuser);
* the database's ``datconnlimit``, less its sessions (not for a superuser).

A pooler in front of the source (Supavisor's session mode, PgBouncer) has a client limit of
its own that SQL cannot see; its refusal is named like the server's (:data:`NO_SLOTS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from .pgtools import NO_SLOTS

__all__ = ["NO_SLOTS", "Slots", "cap_jobs", "export_connections", "read_slots"]

_QUERY = """
SELECT current_setting('max_connections')::int,
    current_setting('superuser_reserved_connections')::int,
    coalesce(nullif(current_setting('reserved_connections', true), '')::int, 0),
    r.rolsuper,
    CASE WHEN pg_catalog.to_regrole('pg_use_reserved_connections') IS NULL THEN false
         ELSE pg_catalog.pg_has_role(
             pg_catalog.to_regrole('pg_use_reserved_connections'), 'USAGE') END,
    r.rolconnlimit, d.datconnlimit,
    (SELECT count(*) FROM pg_catalog.pg_stat_activity a
     WHERE a.datid IS NOT NULL AND a.pid <> pg_catalog.pg_backend_pid()),
    (SELECT count(*) FROM pg_catalog.pg_stat_activity a
     WHERE a.usesysid = r.oid AND a.pid <> pg_catalog.pg_backend_pid()),
    (SELECT count(*) FROM pg_catalog.pg_stat_activity a
     WHERE a.datid = d.oid AND a.pid <> pg_catalog.pg_backend_pid())
FROM pg_catalog.pg_roles r, pg_catalog.pg_database d
WHERE r.rolname = current_user AND d.datname = current_database()
"""


@dataclass(frozen=True)
class Slots:
    """Connections this role can still open on the source (besides the session that asked)."""

    free: int
    why: str  # the tightest limit, in words


def read_slots(conn: psycopg.Connection[Any]) -> Slots:
    """The source's free connection slots for ``conn``'s role and database, right now."""
    row = conn.execute(_QUERY).fetchone()
    conn.rollback()
    assert row is not None
    max_conn, su_reserved, reserved, is_super, may_reserved, role_limit, db_limit = row[:7]
    used_server, used_role, used_db = (int(v) for v in row[7:])
    held_back = 0 if is_super else su_reserved + (0 if may_reserved else reserved)
    limits = [
        (
            max_conn - held_back - used_server,
            f"max_connections = {max_conn}"
            + (f", {held_back} reserved for superusers" if held_back else "")
            + f", {used_server} in use",
        )
    ]
    if role_limit >= 0 and not is_super:
        limits.append(
            (
                role_limit - used_role,
                f"the role's connection limit {role_limit}, {used_role} in use",
            )
        )
    if db_limit >= 0 and not is_super:
        limits.append(
            (db_limit - used_db, f"the database's connection limit {db_limit}, {used_db} in use")
        )
    # Our own session is not counted: it closes before the export opens its connections.
    free, why = min(limits, key=lambda item: item[0])
    return Slots(free=max(0, free), why=why)


def export_connections(jobs: int) -> int:
    """Connections the export holds at its peak with ``jobs`` parallel jobs."""
    dump = jobs + 1 if jobs > 1 else 1
    return 1 + dump + jobs


def cap_jobs(requested: int, slots: Slots) -> int:
    """The most jobs (at most ``requested``) whose connections fit into half the free slots;
    at least 1. The caller refuses when even one job does not fit into the free slots."""
    jobs = max(1, requested)
    while jobs > 1 and export_connections(jobs) > slots.free // 2:
        jobs -= 1
    return jobs
