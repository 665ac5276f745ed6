"""The session PostgREST sets up for a request, read from the database and reproduced.

Every RLS count runs as :func:`impersonate` sets it up, in the :class:`RlsSession` that
:func:`postgrest_session` reads (at export) or the manifest records (on staging), so both
sides count under the same search_path, role settings and JWT claims.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from ..errors import DrillError, first_line
from ..rolesql import UNSAFE_ROLE_SETTINGS
from .scope import Conn, set_config

ANON = "anon"
AUTHENTICATED = "authenticated"
AUTHENTICATOR = "authenticator"
"""PostgREST's login role on Supabase: its in-database ``pgrst.*`` settings configure it."""

POSTGREST_DB_SCHEMAS: tuple[str, ...] = ("public", "graphql_public")
"""PostgREST's ``db-schemas`` as the Supabase CLI configures it (``[api] schemas``)."""

POSTGREST_EXTRA_SEARCH_PATH: tuple[str, ...] = ("public", "extensions")
"""PostgREST's ``db-extra-search-path`` as the Supabase CLI configures it
(``[api] extra_search_path``)."""

_TIME_LIMIT = "a time limit: it decides whether a count finishes, not what it counts"
_READ_ONLY = "every count is read-only, as PostgREST's GET requests are"
# Role settings PostgREST applies that the counts do not, and why; recorded, never silent.
_NOT_APPLIED: dict[str, str] = {
    "statement_timeout": _TIME_LIMIT,
    "lock_timeout": _TIME_LIMIT,
    "idle_in_transaction_session_timeout": _TIME_LIMIT,
    "idle_session_timeout": _TIME_LIMIT,
    "transaction_timeout": _TIME_LIMIT,
    # PostgREST takes it as the request's isolation level; a count runs in the transaction
    # (and, at export, the snapshot) it is given.
    "default_transaction_isolation": "the isolation level: counts run in the given snapshot",
    "default_transaction_read_only": _READ_ONLY,
    "transaction_read_only": _READ_ONLY,
    **{name: "it would change the identity or load code" for name in UNSAFE_ROLE_SETTINGS},
}

# Data exceptions and errors a function raised itself can quote the value that caused them.
_QUOTING = ("22", "P0")


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _split_list(value: str) -> tuple[str, ...]:
    """A PostgREST list setting (``"public, api"``) as names, as PostgREST splits it."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class RlsSession:
    """How every identity's count is evaluated: PostgREST's per-request session.

    ``model`` is ``"postgrest"``: each count runs as :func:`impersonate` sets it up, with
    ``search_path`` = the request's exposed schema (the table's own schema when it is one of
    ``db_schemas``, else the default, ``db_schemas[0]``) followed by ``extra_search_path``,
    then the role's own settings (``role_settings``; PostgREST applies them after the
    search_path, so a role's ``search_path`` wins). ``not_applied`` names role settings the
    count leaves out and why. ``"legacy"`` stands for manifests written before the session
    was recorded: their counts ran in the export session's own search_path, with no role
    settings; :data:`LEGACY_SESSION` reproduces that.
    """

    model: str = "postgrest"
    db_schemas: tuple[str, ...] = POSTGREST_DB_SCHEMAS
    extra_search_path: tuple[str, ...] = POSTGREST_EXTRA_SEARCH_PATH
    role_settings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    not_applied: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def legacy(self) -> bool:
        return self.model == "legacy"

    def search_path(self, schema: str) -> str | None:
        """The ``search_path`` of a request on a table in ``schema`` (None: legacy, the
        session's own default), quoted as PostgREST writes it."""
        if self.legacy:
            return None
        profile = schema if schema in self.db_schemas else self.db_schemas[0]
        return ", ".join(_quote_ident(s) for s in (profile, *self.extra_search_path))

    def to_json(self) -> dict[str, Any]:
        """The manifest's ``rls.session``. ``search_path`` is informational (the default
        profile's); the other fields are what staging evaluates with."""
        if self.legacy:
            raise ValueError("a legacy session is never written")
        return {
            "model": self.model,
            "db_schemas": list(self.db_schemas),
            "db_extra_search_path": list(self.extra_search_path),
            "search_path": self.search_path(self.db_schemas[0]),
            "role_settings": {r: dict(s) for r, s in sorted(self.role_settings.items())},
            "not_applied": {r: dict(s) for r, s in sorted(self.not_applied.items())},
        }

    @classmethod
    def from_json(cls, data: Any) -> RlsSession:
        """The session a manifest's ``rls.session`` records; :data:`LEGACY_SESSION` when it
        records none. Raises ValueError naming the field that is malformed."""
        if data is None:
            return LEGACY_SESSION

        def need(cond: bool, where: str, what: str) -> None:
            if not cond:
                raise ValueError(f"{where}: {what}")

        def names(value: Any) -> bool:
            return isinstance(value, list) and all(isinstance(v, str) and v for v in value)

        def settings(value: Any) -> bool:
            return isinstance(value, dict) and all(
                isinstance(k, str)
                and isinstance(v, dict)
                and all(isinstance(n, str) and n and isinstance(x, str) for n, x in v.items())
                for k, v in value.items()
            )

        need(isinstance(data, dict), "rls.session", "must be an object")
        need(data.get("model") == "postgrest", "rls.session.model", "not 'postgrest'")
        schemas, extra = data.get("db_schemas"), data.get("db_extra_search_path")
        need(names(schemas) and bool(schemas), "rls.session.db_schemas", "not schema names")
        need(names(extra), "rls.session.db_extra_search_path", "not schema names")
        role_settings = data.get("role_settings", {})
        need(settings(role_settings), "rls.session.role_settings", "not role -> settings")
        need(
            not any(n in _NOT_APPLIED for s in role_settings.values() for n in s),
            "rls.session.role_settings",
            "holds a setting the counts never apply",
        )
        not_applied = data.get("not_applied", {})
        need(settings(not_applied), "rls.session.not_applied", "not role -> reasons")
        return cls(
            model="postgrest",
            db_schemas=tuple(schemas),
            extra_search_path=tuple(extra),
            role_settings={r: dict(s) for r, s in role_settings.items()},
            not_applied={r: dict(s) for r, s in not_applied.items()},
        )


LEGACY_SESSION = RlsSession(model="legacy", db_schemas=(), extra_search_path=())
"""How manifests without ``rls.session`` were counted: the session's own search_path."""

# PostgREST's in-database configuration: the authenticator's settings, a database-specific
# one over a global one (queryDbSettings in PostgREST's Config/Database.hs).
_Q_PGRST_CONFIG = """
SELECT DISTINCT ON (x.k) x.k, x.v
FROM (
    SELECT s.setdatabase, pg_catalog.split_part(c, '=', 1) AS k,
        pg_catalog.substr(c, pg_catalog.strpos(c, '=') + 1) AS v
    FROM pg_catalog.pg_db_role_setting s
    JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
    CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) AS c
    WHERE r.rolname = %s
        AND s.setdatabase IN (0, (SELECT d.oid FROM pg_catalog.pg_database d
                                  WHERE d.datname = pg_catalog.current_database()))
) AS x
WHERE x.k IN ('pgrst.db_schemas', 'pgrst.db_extra_search_path')
ORDER BY x.k, x.setdatabase DESC
"""

# The impersonated roles' settings as PostgREST reads them (queryRoleSettings): pg_roles'
# rolconfig (global settings; PostgREST ignores ALTER ROLE ... IN DATABASE for these), only
# settings pg_settings lists with context 'user' or, from PostgreSQL 15, that the
# authenticator was granted SET on.
_Q_ROLE_SETTINGS = """
SELECT r.rolname::text, kv.k, kv.v, ps.name IS NOT NULL, ps.context::text,
    coalesce(ps.context = 'user' {granted}, false)
FROM pg_catalog.pg_roles r
CROSS JOIN LATERAL pg_catalog.unnest(r.rolconfig) AS c
CROSS JOIN LATERAL (SELECT pg_catalog.split_part(c, '=', 1) AS k,
                           pg_catalog.substr(c, pg_catalog.strpos(c, '=') + 1) AS v) AS kv
LEFT JOIN pg_catalog.pg_settings ps ON ps.name = kv.k
WHERE r.rolname = ANY(%s::text[])
ORDER BY 1, 2
"""
_GRANTED = """OR pg_catalog.has_parameter_privilege(
        (SELECT a.oid FROM pg_catalog.pg_roles a WHERE a.rolname = %s), ps.name, 'SET')"""


def postgrest_session(conn: Conn) -> RlsSession:
    """The session PostgREST sets up for a request on this database, read from it.

    ``db-schemas`` / ``db-extra-search-path`` are the Supabase defaults unless the
    ``authenticator`` role carries PostgREST's in-database ``pgrst.db_schemas`` /
    ``pgrst.db_extra_search_path``. The role settings of ``anon`` and ``authenticated`` are
    read as PostgREST reads them; each one the counts would apply is tried once in a rolled
    back savepoint, and one this connection cannot set is recorded as not applied.
    """
    with conn.transaction(force_rollback=True):
        config = dict(conn.execute(_Q_PGRST_CONFIG, (AUTHENTICATOR,)).fetchall())
        db_schemas = _split_list(config.get("pgrst.db_schemas", "")) or POSTGREST_DB_SCHEMAS
        extra = config.get("pgrst.db_extra_search_path")
        extra_path = POSTGREST_EXTRA_SEARCH_PATH if extra is None else _split_list(extra)
        if conn.info.server_version >= 150000:
            query = _Q_ROLE_SETTINGS.format(granted=_GRANTED)
            params: tuple[Any, ...] = (AUTHENTICATOR, [ANON, AUTHENTICATED])
        else:
            query, params = _Q_ROLE_SETTINGS.format(granted=""), ([ANON, AUTHENTICATED],)
        applied: dict[str, dict[str, str]] = {}
        skipped: dict[str, dict[str, str]] = {}
        for role, name, value, known, context, settable in conn.execute(query, params):
            why: str | None = _NOT_APPLIED.get(name)
            if why is None and not known:
                why = "not a setting this server lists, and PostgREST applies only those"
            elif why is None and not settable:
                why = f"needs a privilege PostgREST does not have ({context} context)"
            elif why is None:
                try:
                    with conn.transaction():
                        set_config(conn, {name: value}, local=True)
                except psycopg.Error as exc:
                    why = f"cannot be set by {conn.info.user}: {error_summary(exc)}"
            if why is None:
                applied.setdefault(role, {})[name] = value
            else:
                skipped.setdefault(role, {})[name] = why
    return RlsSession(
        db_schemas=db_schemas,
        extra_search_path=extra_path,
        role_settings=applied,
        not_applied=skipped,
    )


def error_summary(exc: psycopg.Error) -> str:
    """``<SQLSTATE> <first line of the message>`` of a database error, safe to record and
    to show: never the DETAIL, and for errors that may quote a value (data exceptions,
    errors a function raised itself) only the condition."""
    state = exc.sqlstate or "?"
    if state.startswith(_QUOTING):
        return f"{state} {type(exc).__name__} (message withheld: it may quote row values)"
    message = first_line(exc.diag.message_primary or "", type(exc).__name__)
    return f"{state} {message[:200]}"


def _claims(role: str, user_id: str | None) -> dict[str, str]:
    claims = {"role": role} if user_id is None else {"sub": user_id, "role": role}
    return {
        "role": role,
        "request.jwt.claims": json.dumps(claims),
        # The older per-claim settings: PostgREST no longer sets them, Supabase's Storage
        # API still does, and auth.uid() reads them first on many projects.
        "request.jwt.claim.sub": user_id or "",
        "request.jwt.claim.role": role,
    }


def impersonate(
    conn: Conn, session: RlsSession, role: str, user_id: str | None, schema: str
) -> None:
    """Make the current transaction a PostgREST GET request on a table in ``schema``, as
    ``role`` (with ``sub`` = ``user_id`` for a signed-in user). Everything is local to the
    transaction (``set_config(..., true)``): a rolled back savepoint undoes it.

    In PostgREST's order: ``search_path`` (the request's exposed schema, then the extra
    search path), the role's own settings, ``role``, then ``request.jwt.claims`` and the
    request's method (``GET``), path (``/``), headers and cookies (none: ``{}``); and
    read-only, as for a GET. A function
    with its own ``SET search_path`` keeps it, as it always does. A legacy session sets only
    what counts of manifests without a recorded session ran under: the session's default
    search_path and the claims.

    Raises DrillError when a recorded role setting cannot be applied or this connection may
    not ``SET ROLE role``.
    """
    search_path = session.search_path(schema)
    if search_path is None:
        conn.execute("SET LOCAL search_path TO DEFAULT")
        settings: dict[str, str] = {}
    else:
        settings = {"search_path": search_path, **session.role_settings.get(role, {})}
    try:
        set_config(conn, settings, local=True)
    except psycopg.Error as exc:
        raise DrillError(
            f"The settings recorded for {role} ({', '.join(sorted(settings))}) cannot be "
            f"applied here: {error_summary(exc)}"
        ) from exc
    request = _claims(role, user_id)
    if not session.legacy:
        request |= {
            "request.method": "GET",
            "request.path": "/",
            "request.headers": "{}",
            "request.cookies": "{}",
        }
    request["transaction_read_only"] = "on"
    try:
        set_config(conn, request, local=True)
    except psycopg.errors.InsufficientPrivilege as exc:
        user = conn.info.user
        raise DrillError(
            f"The database role {user!r} cannot SET ROLE {role}, so row-level "
            f"security cannot be checked as {role}. Grant it: GRANT {role} TO {user};"
        ) from exc


__all__ = [
    "ANON",
    "AUTHENTICATED",
    "AUTHENTICATOR",
    "LEGACY_SESSION",
    "POSTGREST_DB_SCHEMAS",
    "POSTGREST_EXTRA_SEARCH_PATH",
    "RlsSession",
    "error_summary",
    "impersonate",
    "postgrest_session",
]
