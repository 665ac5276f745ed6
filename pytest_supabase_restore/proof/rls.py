"""RLS visibility: what each identity sees per table, counted as PostgREST would.

Counts, table and policy names and error conditions only, never row contents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from .postgrest import (
    ANON,
    AUTHENTICATED,
    POSTGREST_DB_SCHEMAS,
    RlsSession,
    error_summary,
    impersonate,
    postgrest_session,
)
from .scope import Conn, TableRef, relation, scoped

RlsCount = int | dict[str, str]
"""What one identity sees of one table: a row count, ``-1`` when the role may not read the
table at all, or ``{"error": "<SQLSTATE> <message>"}`` when evaluating its policies raised."""

# Errors that say nothing about a policy (connection, resources, cancel, serialization,
# internal): they propagate instead of being recorded as behaviour.
_NOT_BEHAVIOUR = ("08", "40", "53", "57", "58", "XX")


def sample_users(conn: Conn, n: int) -> list[str]:
    """The ids of the first ``n`` users of ``auth.users`` by id (deterministic); ``[]`` if
    the table does not exist."""
    row = conn.execute("SELECT pg_catalog.to_regclass('auth.users') IS NOT NULL").fetchone()
    if row is None or not row[0] or n <= 0:
        return []
    rows = conn.execute(
        "SELECT id::text FROM auth.users ORDER BY id LIMIT %s", (int(n),)
    ).fetchall()
    return [uid for (uid,) in rows]


def _rls_tables(conn: Conn, tables: Sequence[TableRef]) -> list[TableRef]:
    if not tables:
        return []
    rows = conn.execute(
        """
        SELECT n.nspname::text, c.relname::text
        FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relrowsecurity
            AND (n.nspname::text, c.relname::text) IN (
                SELECT * FROM ROWS FROM (
                    pg_catalog.unnest(%s::text[]), pg_catalog.unnest(%s::text[])))
        """,
        ([t.schema for t in tables], [t.name for t in tables]),
    ).fetchall()
    enabled = set(rows)
    return [t for t in tables if (t.schema, t.name) in enabled]


def _readable(conn: Conn, role: str, tables: Sequence[TableRef]) -> set[str]:
    """The tables ``role`` may run ``SELECT count(*)`` on at all (schema USAGE and SELECT on
    the table or any column): the others count ``-1`` without running anything."""
    rows = conn.execute(
        """
        SELECT x.s || '.' || x.n
        FROM ROWS FROM (pg_catalog.unnest(%s::text[]), pg_catalog.unnest(%s::text[])) AS x(s, n)
        WHERE pg_catalog.has_schema_privilege(%s, x.s, 'USAGE')
            AND pg_catalog.has_any_column_privilege(
                %s, pg_catalog.format('%%I.%%I', x.s, x.n), 'SELECT')
        """,
        ([t.schema for t in tables], [t.name for t in tables], role, role),
    ).fetchall()
    return {name for (name,) in rows}


def rls_visibility(
    conn: Conn,
    tables: Sequence[TableRef],
    user_ids: Sequence[str],
    session: RlsSession | None = None,
) -> dict[str, dict[str, RlsCount]]:
    """What each identity sees, per table with RLS enabled: ``{"anon": {...}, "<uuid>": {...}}``.

    Each count runs in a savepoint set up by :func:`impersonate` (``anon``, or
    ``authenticated`` with the user's id as ``sub``) under ``session``, by default the one
    :func:`postgrest_session` reads from ``conn`` (the export's; staging passes the
    recorded one, so both sides count under the same settings). A table the role may not
    read counts ``-1``; a count whose policies raise records ``{"error": ...}``
    (:func:`error_summary`) instead of failing. Afterwards the role, settings and the
    caller's transaction are what they were. Works for a non-superuser that is a member of
    ``anon`` and ``authenticated``.
    """
    if session is None:
        session = postgrest_session(conn)
    identities: list[tuple[str, str, str | None]] = [(ANON, ANON, None)]
    identities += [(uid, AUTHENTICATED, uid) for uid in user_ids]
    result: dict[str, dict[str, RlsCount]] = {}
    with scoped(conn, {"row_security": "on"}):
        rls_tables = _rls_tables(conn, tables)
        readable: dict[str, set[str]] = {}
        for role in dict.fromkeys(role for _label, role, _uid in identities):
            with conn.transaction(force_rollback=True):  # fails early if not a member
                impersonate(conn, session, role, None, POSTGREST_DB_SCHEMAS[0])
            readable[role] = _readable(conn, role, rls_tables) if rls_tables else set()
        for label, role, user_id in identities:
            counts: dict[str, RlsCount] = {}
            for table in rls_tables:
                if table.qualified not in readable[role]:
                    counts[table.qualified] = -1
                    continue
                query = sql.SQL("SELECT count(*) FROM {}").format(
                    relation(table.schema, table.name)
                )
                with conn.transaction(force_rollback=True):
                    impersonate(conn, session, role, user_id, table.schema)
                    try:
                        got = conn.execute(query).fetchone()
                    except psycopg.Error as exc:
                        if exc.sqlstate is None or exc.sqlstate.startswith(_NOT_BEHAVIOUR):
                            raise
                        counts[table.qualified] = {"error": error_summary(exc)}
                    else:
                        counts[table.qualified] = int(got[0]) if got else 0
            result[label] = counts
    return result


def select_policies(conn: Conn, table: TableRef, role: str) -> list[str]:
    """Names of the policies on ``table`` that apply to ``SELECT`` by ``role`` (commands
    SELECT and ALL, roles including it or PUBLIC), sorted."""
    rows = conn.execute(
        """
        SELECT policyname::text FROM pg_catalog.pg_policies
        WHERE schemaname = %s AND tablename = %s AND cmd IN ('SELECT', 'ALL')
            AND roles && ARRAY[%s, 'public']::name[]
        ORDER BY 1
        """,
        (table.schema, table.name, role),
    ).fetchall()
    return [name for (name,) in rows]


@dataclass(frozen=True)
class RlsComparison:
    """The recorded and the restored visibility of one identity, compared."""

    problems: list[str]  # one per table that differs
    notes: list[str]  # equal behaviour worth saying (the same error on both sides)

    @property
    def ok(self) -> bool:
        return not self.problems


def _error_of(value: Any) -> str | None:
    return str(value["error"]) if isinstance(value, dict) and "error" in value else None


def _show_count(value: Any) -> str:
    if value is None:
        return "no RLS (or table missing)"
    error = _error_of(value)
    if error is not None:
        return f"an error ({error})"
    return "no SELECT privilege" if int(value) < 0 else f"{int(value)} rows"


def compare_rls_visibility(
    conn: Conn,
    tables: Sequence[TableRef],
    expected: Mapping[str, Any],
    actual: Mapping[str, Any],
    role: str,
    session: RlsSession,
) -> RlsComparison:
    """Compare what one identity (as ``role``) saw in the backup with what it sees now.

    Equal counts, and the same error on both sides, are equal behaviour (the latter a
    note). Anything else is a problem naming the table and, where a count raised, the
    error(s) and the SELECT policies on the table that apply to ``role`` (read through
    ``conn``, the restored copy). Tables, policy names, counts and errors only.
    """
    refs = {t.qualified: t for t in tables}
    problems: list[str] = []
    notes: list[str] = []

    def policies(name: str) -> str:
        ref = refs.get(name)
        found = select_policies(conn, ref, role) if ref is not None else []
        if not found:
            return f"no SELECT policy on it applies to {role}"
        listed = ", ".join(f'"{p}"' for p in found)
        return f"SELECT polic{'y' if len(found) == 1 else 'ies'} for {role}: {listed}"

    for name in sorted(set(expected) | set(actual)):
        exp, act = expected.get(name), actual.get(name)
        if exp == act:
            error = _error_of(exp)
            if error is not None:
                notes.append(
                    f"{name}: raises {error} in the backup and in the restored copy alike "
                    f"({policies(name)})"
                )
            continue
        exp_error, act_error = _error_of(exp), _error_of(act)
        if (
            session.legacy
            and exp == -1
            and act_error is not None
            and act_error.startswith("42501 ")
        ):
            # Old manifests counted -1 for any permission error, also one inside a policy.
            notes.append(f"{name}: permission denied in the backup and in the restored copy")
            continue
        if act_error is not None and exp_error is None:
            problems.append(
                f"{name}: {_show_count(exp)} expected, but counting raised {act_error} in the "
                f"restored copy ({policies(name)})"
            )
        elif exp_error is not None and act_error is None:
            problems.append(
                f"{name}: counting raised {exp_error} in the backup, the restored copy counts "
                f"{_show_count(act)} ({policies(name)})"
            )
        elif exp_error is not None and act_error is not None:
            problems.append(
                f"{name}: counting raised {exp_error} in the backup, {act_error} in the "
                f"restored copy ({policies(name)})"
            )
        else:
            problems.append(f"{name}: {_show_count(exp)} expected, {_show_count(act)} found")
    return RlsComparison(problems, notes)


__all__ = [
    "RlsComparison",
    "RlsCount",
    "compare_rls_visibility",
    "rls_visibility",
    "sample_users",
    "select_policies",
]
