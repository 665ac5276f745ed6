"""RLS visibility: what each identity sees per table, evaluated as PostgREST would.

A table with a key sample (:mod:`.rlskeys`) is evaluated by index lookups of its sampled
keys; one without (no primary key, no data file of its own, or a set written before
samples) by counting every row it shows. Counts, table and policy names and error
conditions only, never row contents.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
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
from .rlskeys import KeySample, key_types, lookup_params, lookup_query
from .scope import Conn, TableRef, relation, scoped, set_config

RlsCount = int | dict[str, str | list[int]]
"""What one identity sees of one table: rows visible (-1: no SELECT privilege), the
indexes of its sampled keys it can read ({"visible": [...]}), or the error its policy
raised ({"error": "<SQLSTATE> <message>"})."""
"""What one identity sees of one table: a row count, ``{"visible": [i, ...]}`` (the indexes
of the table's sampled keys it sees, ascending), ``-1`` when the role may not read the
table at all, or ``{"error": "<SQLSTATE> <message>"}`` when evaluating its policies raised."""

# How the sampled keys' text is read back into values: as COPY wrote it (pg_dump's styles).
_KEY_INPUT = {"DateStyle": "ISO, YMD", "IntervalStyle": "postgres"}
# One index probe per sampled key, whatever the statistics say: the cost stays bounded by
# the sample (never a scan of the table, nor of every row a policy lets through), and both
# sides evaluate the policies on the same rows. Planner settings change no result.
_PROBES = {
    "enable_seqscan": "off",
    "enable_bitmapscan": "off",
    "enable_hashjoin": "off",
    "enable_mergejoin": "off",
}

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
        # u.id, the uuid (its index), not the output column: that would sort its text.
        "SELECT u.id::text FROM auth.users AS u ORDER BY u.id LIMIT %s",
        (int(n),),
    ).fetchall()
    return [uid for (uid,) in rows]


def rls_tables(conn: Conn, tables: Sequence[TableRef]) -> list[TableRef]:
    """The ones of ``tables`` that have row-level security enabled, in their order."""
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


def _evaluator(conn: Conn, table: TableRef, sample: KeySample | None) -> sql.Composed:
    """The query that evaluates one identity's view of ``table``: the sample's lookups, or
    a count of every row it shows."""
    if sample is None:
        return sql.SQL("SELECT count(*) FROM {}").format(relation(table.schema, table.name))
    types = key_types(conn, table, sample.columns)
    if types is None:
        raise _KeyColumnsMissing
    return lookup_query(table, sample.columns, types)


class _KeyColumnsMissing(Exception):
    """A sampled key column is not in the table."""


_MISSING_KEY = {"error": "42703 a sampled key column is missing from the table"}


def _evaluate(
    conn: Conn,
    query: sql.Composed,
    params: list[Any] | None,
    probes: bool,
    setup: Callable[[], None],
) -> RlsCount:
    """One identity's view of one table, in a savepoint ``setup`` makes a request of it."""
    with conn.transaction(force_rollback=True):
        if params is not None:
            set_config(conn, _KEY_INPUT, local=True)
        setup()
        if probes:
            set_config(conn, _PROBES, local=True)
        try:
            rows = conn.execute(query, params).fetchall()
        except psycopg.Error as exc:
            if exc.sqlstate is None or exc.sqlstate.startswith(_NOT_BEHAVIOUR):
                raise
            return {"error": error_summary(exc)}
    if params is None:
        return int(rows[0][0]) if rows else 0
    return {"visible": [int(i) for (i,) in rows]}


def rls_visibility(
    conn: Conn,
    tables: Sequence[TableRef],
    user_ids: Sequence[str],
    session: RlsSession | None = None,
    samples: Mapping[str, KeySample] | None = None,
) -> dict[str, dict[str, RlsCount]]:
    """What each identity sees, per table with RLS enabled: ``{"anon": {...}, "<uuid>": {...}}``.

    A table in ``samples`` is evaluated by looking up its sampled keys (``{"visible":
    [...]}``), any other by counting its rows. Each evaluation runs in a savepoint set up
    by :func:`impersonate` (``anon``, or ``authenticated`` with the user's id as ``sub``)
    under ``session``, by default the one :func:`postgrest_session` reads from ``conn``
    (the export's; staging passes the recorded one, so both sides evaluate under the same
    settings). A table the role may not read counts ``-1``; one whose policies raise
    records ``{"error": ...}`` (:func:`error_summary`) instead of failing. Afterwards the
    role, settings and the caller's transaction are what they were. Works for a
    non-superuser that is a member of ``anon`` and ``authenticated``.
    """
    if session is None:
        session = postgrest_session(conn)
    samples = samples or {}
    identities: list[tuple[str, str, str | None]] = [(ANON, ANON, None)]
    identities += [(uid, AUTHENTICATED, uid) for uid in user_ids]
    result: dict[str, dict[str, RlsCount]] = {label: {} for label, _r, _u in identities}
    with scoped(conn, {"row_security": "on"}):
        enabled = rls_tables(conn, tables)
        readable: dict[str, set[str]] = {}
        for role in dict.fromkeys(role for _label, role, _uid in identities):
            with conn.transaction(force_rollback=True):  # fails early if not a member
                impersonate(conn, session, role, None, POSTGREST_DB_SCHEMAS[0])
            readable[role] = _readable(conn, role, enabled) if enabled else set()
        for table in enabled:
            sample = samples.get(table.qualified)
            try:
                query = _evaluator(conn, table, sample)
            except _KeyColumnsMissing:
                for label, _role, _uid in identities:
                    result[label][table.qualified] = dict(_MISSING_KEY)
                continue
            for label, role, user_id in identities:
                if table.qualified not in readable[role]:
                    result[label][table.qualified] = -1
                elif sample is not None and not sample.keys:
                    result[label][table.qualified] = {"visible": []}
                else:
                    request = functools.partial(
                        impersonate, conn, session, role, user_id, table.schema
                    )
                    params = (
                        None if sample is None else lookup_params(sample, sample.probed(user_id))
                    )
                    probes = sample is not None and not sample.whole
                    result[label][table.qualified] = _evaluate(conn, query, params, probes, request)
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


def _visible_of(value: Any) -> set[int] | None:
    return set(value["visible"]) if isinstance(value, dict) and "visible" in value else None


def _show_count(value: Any, sampled: int | None = None) -> str:
    if value is None:
        return "no RLS (or table missing)"
    error = _error_of(value)
    if error is not None:
        return f"an error ({error})"
    visible = _visible_of(value)
    if visible is not None:
        return f"{len(visible)} of {sampled if sampled is not None else '?'} sampled rows"
    return "no SELECT privilege" if int(value) < 0 else f"{int(value)} rows"


def _sample_difference(name: str, exp: set[int], act: set[int], sampled: int | None) -> str:
    """Which way a sampled table's visibility moved: counts of keys only, never values."""
    return (
        f"{name}: {_show_count({'visible': exp}, sampled)} visible expected, "
        f"{len(act)} found ({len(exp - act)} no longer visible, {len(act - exp)} newly visible)"
    )


def compare_rls_visibility(
    conn: Conn,
    tables: Sequence[TableRef],
    expected: Mapping[str, Any],
    actual: Mapping[str, Any],
    role: str,
    session: RlsSession,
    samples: Mapping[str, KeySample] | None = None,
    identity: str | None = None,
) -> RlsComparison:
    """Compare what one identity (as ``role``) saw in the backup with what it sees now.

    Equal counts (or the same sampled keys visible: ``samples`` and ``identity``, a user
    id or anon, give how many it was asked about), and the same error on both sides, are
    equal behaviour (the latter a note). Anything else is a problem naming the table and,
    where a count raised, the error(s) and the SELECT policies on the table that apply to
    ``role`` (read through ``conn``, the restored copy). Tables, policy names, counts and
    errors only.
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

    sizes = {name: len(sample.probed(identity)) for name, sample in (samples or {}).items()}
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
        sampled = sizes.get(name)
        exp_keys, act_keys = _visible_of(exp), _visible_of(act)
        if act_error is not None and exp_error is None:
            problems.append(
                f"{name}: {_show_count(exp, sampled)} expected, but counting raised "
                f"{act_error} in the restored copy ({policies(name)})"
            )
        elif exp_error is not None and act_error is None:
            problems.append(
                f"{name}: counting raised {exp_error} in the backup, the restored copy counts "
                f"{_show_count(act, sampled)} ({policies(name)})"
            )
        elif exp_error is not None and act_error is not None:
            problems.append(
                f"{name}: counting raised {exp_error} in the backup, {act_error} in the "
                f"restored copy ({policies(name)})"
            )
        elif exp_keys is not None and act_keys is not None:
            problems.append(
                f"{_sample_difference(name, exp_keys, act_keys, sampled)} ({policies(name)})"
            )
        else:
            problems.append(
                f"{name}: {_show_count(exp, sampled)} expected, {_show_count(act, sampled)} found"
            )
    return RlsComparison(problems, notes)


__all__ = [
    "RlsComparison",
    "RlsCount",
    "compare_rls_visibility",
    "rls_tables",
    "rls_visibility",
    "sample_users",
    "select_policies",
]
