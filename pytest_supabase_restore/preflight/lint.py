"""Restorability lint of the source: what a restore cannot carry, or must switch off.

Listed by name, none of it fails the drill: pg_cron jobs and triggers that call out are
switched off in staging (as the restore does), login roles lose their passwords (no dump
carries them), triggers on ``auth.users`` and circular foreign keys make a restore fragile.
"""

from __future__ import annotations

from typing import Any

import psycopg

from ..source import RESERVED_ROLES
from .model import INFO, PASS, WARN, Check, shortened

Conn = psycopg.Connection[Any]

_FUNCTIONS = """
SELECT p.oid, n.nspname, p.proname,
       CASE WHEN p.prosqlbody IS NOT NULL
            THEN pg_catalog.pg_get_function_sqlbody(p.oid) ELSE p.prosrc END
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
"""

_TRIGGERS = """
SELECT n.nspname || '.' || c.relname || ': ' || t.tgname, t.tgfoid, n.nspname, c.relname
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal AND n.nspname = ANY(%s::text[])
ORDER BY 1
"""

_FOREIGN_KEYS = """
SELECT c.conrelid::regclass::text, c.confrelid::regclass::text
FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace
WHERE c.contype = 'f' AND n.nspname = ANY(%s::text[]) AND c.conrelid <> c.confrelid
"""


def lint_checks(conn: Conn, scope: list[str]) -> list[Check]:
    return [
        _cron_check(conn),
        *_trigger_checks(conn, scope),
        _event_trigger_check(conn),
        _login_roles_check(conn),
        _circular_fk_check(conn, scope),
    ]


def _cron_check(conn: Conn) -> Check:
    if conn.execute("SELECT to_regclass('cron.job') IS NOT NULL").fetchone() != (True,):
        return Check("pg_cron jobs", PASS, "pg_cron is not installed")
    try:
        jobs = [
            str(r[0])
            for r in conn.execute(
                "SELECT coalesce(jobname, jobid::text) FROM cron.job WHERE active ORDER BY 1"
            ).fetchall()
        ]
    except psycopg.errors.InsufficientPrivilege:
        conn.rollback()
        return Check("pg_cron jobs", WARN, "cron.job is not readable by the source user")
    if not jobs:
        return Check("pg_cron jobs", PASS, "no active job")
    return Check(
        "pg_cron jobs",
        INFO,
        f"{len(jobs)} active job(s) the drill switches off in staging: {shortened(jobs)}",
    )


def _trigger_checks(conn: Conn, scope: list[str]) -> list[Check]:
    from ..restore import calling_out

    functions = [(int(o), str(s), str(n), str(b or "")) for o, s, n, b in conn.execute(_FUNCTIONS)]
    flagged = calling_out(functions)
    triggers = conn.execute(_TRIGGERS, (scope,)).fetchall()
    out = [str(label) for label, foid, _s, _n in triggers if int(foid) in flagged]
    on_users = [str(label) for label, _f, s, n in triggers if (s, n) == ("auth", "users")]
    checks = [
        Check(
            "webhook triggers",
            INFO if out else PASS,
            f"{len(out)} trigger(s) call out (pg_net, webhooks, http, dblink) and are "
            f"switched off in staging: {shortened(out)}"
            if out
            else "no trigger calls out",
        )
    ]
    if on_users:
        checks.append(
            Check(
                "auth.users triggers",
                WARN,
                f"{len(on_users)} trigger(s) on auth.users (off during the data restore, "
                f"they fire on every sign-up afterwards): {shortened(on_users)}",
                "check that their functions are in the backup and work on the restored copy",
            )
        )
    return checks


def _event_trigger_check(conn: Conn) -> Check:
    import re

    from ..restore_messages import _PLATFORM_EVENT_TRIGGERS

    names = [
        str(r[0])
        for r in conn.execute("SELECT evtname FROM pg_catalog.pg_event_trigger ORDER BY 1")
    ]
    own = [n for n in names if not re.fullmatch(_PLATFORM_EVENT_TRIGGERS, n)]
    platform = len(names) - len(own)
    found = f"{platform} of the platform's (staging's platform creates them)"
    if not own:
        return Check("event triggers", PASS, found)
    return Check(
        "event triggers",
        WARN,
        f"{found}; {len(own)} of the project's own, whose owner must be a superuser "
        f"(a restore as a non-superuser cannot create them): {shortened(own)}",
        "recreate them as a superuser after a real restore, or drop them if unused",
    )


def _login_roles_check(conn: Conn) -> Check:
    roles = [
        str(r[0])
        for r in conn.execute(
            "SELECT rolname FROM pg_catalog.pg_roles WHERE rolcanlogin ORDER BY 1"
        ).fetchall()
    ]
    custom = [r for r in roles if not RESERVED_ROLES.match(r)]
    if not custom:
        return Check("login roles", PASS, "no custom login role")
    return Check(
        "login roles",
        WARN,
        f"{len(custom)} custom login role(s) whose passwords no dump carries: {shortened(custom)}",
        "after a real restore, set each one's password again (ALTER ROLE ... PASSWORD)",
    )


def _cycles(edges: list[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components with more than one table (Tarjan's algorithm)."""
    graph: dict[str, list[str]] = {}
    for a, b in edges:
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _circular_fk_check(conn: Conn, scope: list[str]) -> Check:
    edges = [(str(a), str(b)) for a, b in conn.execute(_FOREIGN_KEYS, (scope,)).fetchall()]
    cycles = _cycles(edges)
    if not cycles:
        return Check("circular foreign keys", PASS, "none")
    shown = ["(" + " -> ".join(c) + ")" for c in cycles]
    return Check(
        "circular foreign keys",
        WARN,
        f"{len(cycles)} cycle(s) of foreign keys between tables: {shortened(shown)}; a "
        "data-only restore of them needs triggers off (the drill does this)",
        "for your own data-only restores use --disable-triggers as a superuser",
    )
