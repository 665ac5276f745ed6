"""Source checks: server and tools, pooler mode, privileges, timeouts, connection slots."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ..config import Config
from ..errors import DrillError
from ..slots import export_connections, read_slots
from ..source import RLS_FIX
from .model import FAIL, INFO, PASS, WARN, Check, shortened

Conn = psycopg.Connection[Any]

TRANSACTION_POOLER_PORT = 6543  # Supabase's Supavisor (and the usual pgbouncer) in transaction mode


def _quote(name: str) -> str:
    from ..staging.url import _quoted  # quoted only where it must be, as a person writes it

    return _quoted(name)


def tools_check(conn: Conn, settings: Config) -> tuple[Check, int]:
    """The server version and the client tools that will dump it; and the server's major."""
    from ..pg.binaries import find_client_tools
    from ..source import server_version

    major, version = server_version(conn)
    try:
        tools = find_client_tools(major, str(settings.pg_bindir) if settings.pg_bindir else None)
    except DrillError as exc:
        return Check("source tools", FAIL, f"PostgreSQL {version}: {exc}", "install them"), major
    return (
        Check(
            "source tools", PASS, f"PostgreSQL {version}; pg_dump {tools.version} ({tools.bindir})"
        ),
        major,
    )


def pooler_check(db_url: str) -> Check:
    """pg_dump holds one transaction across many statements and sessions (an exported
    snapshot): a pooler in transaction mode hands each statement to any server connection."""
    flagged = "pgbouncer=true" in db_url.lower()  # Prisma's flag; libpq refuses it
    try:
        params: dict[str, Any] = conninfo_to_dict(db_url)
    except psycopg.ProgrammingError:
        params = {}
    port = str(params.get("port") or "5432")
    host = str(params.get("host") or "")
    if port != str(TRANSACTION_POOLER_PORT) and not flagged:
        return Check("source pooler", PASS, f"port {port}: not a transaction-mode pooler port")
    why = f"port {port}" if not flagged else "pgbouncer=true in the URL"
    return Check(
        "source pooler",
        FAIL,
        f"{why}: a pooler in transaction mode (Supavisor/pgbouncer), which pg_dump cannot use "
        "(its exported snapshot needs one session for the whole dump)",
        f"use the session pooler (the same host {host or '<host>'} on port 5432) or the direct "
        "connection (db.<project-ref>.supabase.co:5432), from Settings > Database",
    )


_DENIED_SCHEMAS = """
SELECT n.nspname::text FROM pg_catalog.pg_namespace n
WHERE n.nspname = ANY(%s::text[]) AND NOT pg_catalog.has_schema_privilege(n.oid, 'USAGE')
ORDER BY 1
"""

# Tables and sequences pg_dump reads (extension members are recreated, not dumped).
_DENIED_RELATIONS = """
SELECT c.relkind::text, n.nspname::text, c.relname::text
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%s::text[]) AND c.relkind IN ('r', 'p', 'S')
  AND NOT pg_catalog.has_table_privilege(c.oid, 'SELECT')
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
      WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
        AND d.deptype = 'e')
ORDER BY 2, 3
"""

# Large objects the role may not read (pg_dump reads every one): owner, or SELECT granted
# to the role, a role it is a member of, or PUBLIC; superusers read all.
_DENIED_LARGE_OBJECTS = """
SELECT m.oid::bigint FROM pg_catalog.pg_largeobject_metadata m
WHERE NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
  AND NOT pg_catalog.pg_has_role(m.lomowner, 'USAGE')
  AND NOT EXISTS (
      SELECT 1 FROM pg_catalog.aclexplode(
          coalesce(m.lomacl, pg_catalog.acldefault('L', m.lomowner))) a
      WHERE a.privilege_type = 'SELECT'
        AND (a.grantee = 0 OR pg_catalog.pg_has_role(a.grantee, 'USAGE')))
ORDER BY 1
"""


def privilege_checks(conn: Conn, scope: list[str]) -> list[Check]:
    """USAGE on every schema in scope, SELECT on every table, sequence and large object,
    each gap with the exact GRANT that closes it."""
    row = conn.execute("SELECT current_user").fetchone()
    assert row is not None
    to = _quote(str(row[0]))
    schemas = [_quote(r[0]) for r in conn.execute(_DENIED_SCHEMAS, (scope,)).fetchall()]
    relations = conn.execute(_DENIED_RELATIONS, (scope,)).fetchall()
    objects = [str(r[0]) for r in conn.execute(_DENIED_LARGE_OBJECTS).fetchall()]
    tables = [f"{_quote(s)}.{_quote(n)}" for kind, s, n in relations if kind != "S"]
    sequences = [f"{_quote(s)}.{_quote(n)}" for kind, s, n in relations if kind == "S"]
    # (check, what passing means, the denied objects, how each is named, its GRANT)
    specs = (
        ("source schema access", f"USAGE on all {len(scope)} schemas in scope", schemas,
         "schema {}", "GRANT USAGE ON SCHEMA {} TO " + to + ";"),
        ("source table access", "SELECT on every table in scope", tables,
         "{}", "GRANT SELECT ON TABLE {} TO " + to + ";"),
        ("source sequence access", "SELECT on every sequence in scope", sequences,
         "{}", "GRANT SELECT ON SEQUENCE {} TO " + to + ";"),
        ("source large objects", "SELECT on every large object", objects,
         "large object {}", "GRANT SELECT ON LARGE OBJECT {} TO " + to + ";"),
    )  # fmt: skip
    return [
        *(
            _gap(name, ok, [label.format(d) for d in denied], [grant.format(d) for d in denied])
            for name, ok, denied, label, grant in specs
        ),
        rls_bypass_check(conn, scope, to),
    ]


# Tables in scope with row-level security on: pg_dump reads them with row_security off,
# which stops the dump unless the role bypasses RLS (superuser, BYPASSRLS or the owner).
_RLS_TABLES = """
SELECT n.nspname::text || '.' || c.relname::text
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%s::text[]) AND c.relkind IN ('r', 'p') AND c.relrowsecurity
  AND NOT pg_catalog.pg_has_role(c.relowner, 'USAGE')
ORDER BY 1
"""


def rls_bypass_check(conn: Conn, scope: list[str], to: str) -> Check:
    """pg_dump needs every row: a table with RLS the role neither owns nor bypasses stops it."""
    row = conn.execute(
        "SELECT rolsuper OR rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = current_user"
    ).fetchone()
    if row is not None and row[0]:
        return Check("source row-level security", PASS, "the source user bypasses RLS")
    blocked = [str(r[0]) for r in conn.execute(_RLS_TABLES, (scope,)).fetchall()]
    if not blocked:
        return Check("source row-level security", PASS, "no table in scope has RLS to bypass")
    return Check(
        "source row-level security",
        FAIL,
        f"the source user does not bypass row-level security, which pg_dump needs for "
        f"{len(blocked)} table(s) with RLS: {shortened(blocked)}",
        RLS_FIX.format(role=to),
    )


def _gap(name: str, ok: str, denied: list[str], grants: list[str]) -> Check:
    if not denied:
        return Check(name, PASS, ok)
    return Check(
        name,
        FAIL,
        f"the source user may not read {len(denied)}: {shortened(denied)}",
        "as the owner (or a superuser) run: "
        + " ".join(grants[:10])
        + (f" (and {len(grants) - 10} more like it)" if len(grants) > 10 else ""),
    )


_TIMEOUTS = (
    "statement_timeout",
    "idle_in_transaction_session_timeout",
    "lock_timeout",
    "idle_session_timeout",
    "transaction_timeout",
)


def timeout_check(conn: Conn) -> Check:
    """The role's and database's timeouts (``reset_val``: what a new session starts with;
    the export's own sessions set them to 0, as pg_dump does)."""
    rows = conn.execute(
        "SELECT name, reset_val, unit FROM pg_catalog.pg_settings WHERE name = ANY(%s)",
        (list(_TIMEOUTS),),
    ).fetchall()
    set_ = [f"{n}={v}{u or ''}" for n, v, u in rows if v not in ("0", "")]
    if not set_:
        return Check("source timeouts", PASS, "no statement, idle or lock timeout is set")
    return Check(
        "source timeouts",
        INFO,
        f"{', '.join(set_)}: the export turns these off for its own sessions "
        "(as pg_dump does), so they cannot cut it short",
    )


def slots_check(conn: Conn, jobs: int) -> Check:
    """Free connection slots against what the export opens at its peak."""
    slots = read_slots(conn)
    need_min = export_connections(1)
    need = export_connections(jobs)
    found = f"{slots.free} free ({slots.why}); the export opens {need} with {jobs} job(s)"
    if slots.free < need_min:
        return Check(
            "source connections",
            FAIL,
            found + f", at least {need_min}",
            "run the drill when fewer clients are connected, or raise the role's or "
            "database's connection limit",
        )
    if slots.free // 2 < need:
        return Check(
            "source connections",
            WARN,
            found + ": fewer jobs will be used (half the free slots)",
            "lower --supabase-jobs to fit",
        )
    return Check("source connections", PASS, found)
