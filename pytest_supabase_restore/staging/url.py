"""The url target: an existing staging database, refused unless it is safe to overwrite.

Two independent guards, both failing closed (:func:`check_safe`):

* **Marked disposable.** The database's comment is exactly :data:`DISPOSABLE_MARKER`
  (surrounding whitespace aside). A comment that merely mentions it does not count.
* **Provably not the source.** Host names prove nothing: on Supabase the pooler host and
  the direct host are two names for one server, and so are ``localhost``, ``127.0.0.1``,
  a proxy or a tunnel. So both servers are asked, with facts no role needs a privilege
  for and none can forge:

  - *same server* when the drill's probe session on staging (a random
    ``application_name``) is listed in the source's ``pg_stat_activity`` (every role sees
    every session's ``application_name``), or both report the same
    ``pg_postmaster_start_time()``, or the same system identifier (``pg_control_system()``,
    where executable: it is shared by a server and its physical replicas);
  - *different* only when positively shown: different system identifiers, or different
    postmaster start times while the source is not a standby (a standby's primary is a
    different server with a different start time, so for a standby source only the system
    identifiers can tell). Anything else (the source unreachable, nothing comparable
    readable) is refused with what could not be proven and how to fix it.

  With no source URL at all (``--supabase-from-backup`` without ``SUPABASE_DB_URL``) there
  is nothing to compare with: only the marker protects the database then, and the drill
  says so in a warning line.

:func:`clear_scope` then drops the backup's own schemas in one transaction, and only when
the cascade reaches nothing outside them.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, LiteralString

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from ..connections import DISPOSABLE_MARKER, Connection, mask_url
from ..errors import RestoreError, SafetyError, first_line
from ..model import Manifest
from ..proof.scope import schema_excluded
from ..storage.endpoint import connection_endpoint
from .base import StagingTarget

PROBE_PREFIX = "pytest-supabase-restore-probe-"
CHECK_APPLICATION = "pytest-supabase-restore-identity-check"
PLATFORM_SCHEMAS = ("auth", "storage", "extensions")
"""Kept on a staging target where the Supabase platform is present: the platform owns them."""
SHOWN_OBJECTS = 10  # a refusal lists at most this many objects
LOCK_TIMEOUT = 60  # seconds clear_scope waits for another session's lock on staging


def _where(dsn: str) -> tuple[str, str, str]:
    p: dict[str, Any] = conninfo_to_dict(dsn)
    host = str(p.get("host") or p.get("hostaddr") or "localhost").lower()
    if host in ("127.0.0.1", "::1", "localhost"):
        host = "localhost"
    return host, str(p.get("port") or "5432"), str(p.get("dbname") or p.get("user") or "postgres")


def _quoted(name: str) -> str:
    """``name`` as an SQL identifier (quoted only where it must be)."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def _first_line(exc: BaseException) -> str:
    return first_line(exc, type(exc).__name__)


@dataclass(frozen=True)
class ServerFacts:
    """What one session learns about its server without any privilege (None: not readable)."""

    pid: int
    started: dt.datetime | None  # pg_postmaster_start_time()
    system_id: str | None  # pg_control_system(), where the role may execute it
    in_recovery: bool | None  # pg_is_in_recovery(): a standby
    comment: str | None  # the database's comment
    database: str


def _value(conn: psycopg.Connection[Any], query: LiteralString) -> Any:
    """One value, or None when the role may not run ``query`` (autocommit: nothing to undo)."""
    try:
        row = conn.execute(query).fetchone()
    except psycopg.OperationalError:
        raise  # the connection itself failed: not "unreadable"
    except psycopg.Error:
        return None
    return row[0] if row else None


def _facts(conn: psycopg.Connection[Any]) -> ServerFacts:
    row = conn.execute(
        "SELECT pg_backend_pid(), current_database(), "
        "shobj_description(d.oid, 'pg_database') FROM pg_database d "
        "WHERE d.datname = current_database()"
    ).fetchone()
    assert row is not None
    ident = _value(conn, "SELECT system_identifier::text FROM pg_control_system()")
    return ServerFacts(
        pid=int(row[0]),
        started=_value(conn, "SELECT pg_postmaster_start_time()"),
        system_id=str(ident) if ident is not None else None,
        in_recovery=_value(conn, "SELECT pg_is_in_recovery()"),
        comment=row[2],
        database=str(row[1]),
    )


def _connect(dsn: str, application: str) -> psycopg.Connection[Any]:
    """A session that reads only: every statement runs in a read-only transaction."""
    conn = psycopg.connect(dsn, connect_timeout=15, autocommit=True, application_name=application)
    try:
        conn.execute("SET default_transaction_read_only = on")
    except BaseException:
        conn.close()
        raise
    return conn


class _Refusal:
    """Builds the one-line refusals for one staging URL."""

    def __init__(self, staging_dsn: str) -> None:
        self.staging = mask_url(staging_dsn)

    def same(self, source: str, why: str) -> SafetyError:
        return SafetyError(
            f"Refusing STAGING_DB_URL {self.staging}: it reaches the same PostgreSQL server as "
            f"the source {mask_url(source)}: {why}. The restore overwrites staging; it must "
            "never be the source. Fix: point STAGING_DB_URL at a separate, disposable "
            "database."
        )

    def unproven(self, source: str, what: str, fix: str) -> SafetyError:
        return SafetyError(
            f"Refusing STAGING_DB_URL {self.staging}: the drill could not prove that it is "
            f"not the source {mask_url(source)}: {what}. The restore overwrites staging, so a "
            f"database that might be the source is refused. Fix: {fix}."
        )


_GRANT_FIX = (
    "let both URLs' roles execute pg_control_system() (as a superuser: GRANT EXECUTE ON "
    "FUNCTION pg_control_system() TO <role>) so that the system identifiers can be compared, "
    "or use a staging database on a server of its own"
)


def _prove_distinct(
    staging: ServerFacts,
    probe: str,
    source_dsn: str,
    refuse: _Refusal,
) -> str:
    """How staging is shown not to be the server of ``source_dsn``; else a SafetyError."""
    try:
        src = _connect(source_dsn, CHECK_APPLICATION)
    except psycopg.Error as exc:
        raise refuse.unproven(
            source_dsn,
            f"connecting to the source failed ({_first_line(exc)})",
            "run the drill where the source is reachable, so that both servers can be compared",
        ) from exc
    with src:
        try:
            return _compare(src, staging, probe, source_dsn, refuse)
        except psycopg.OperationalError as exc:
            raise refuse.unproven(
                source_dsn,
                f"the connection to the source broke during the check ({_first_line(exc)})",
                "run the drill again where the source is reachable",
            ) from exc


def _compare(
    src: psycopg.Connection[Any],
    staging: ServerFacts,
    probe: str,
    source_dsn: str,
    refuse: _Refusal,
) -> str:
    """Same server: refused; different: how it is known; neither: refused as unproven."""
    source = _facts(src)
    # The probe session is open on staging: if staging is this server, it is listed.
    try:
        seen = src.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", [probe]
        ).fetchall()
    except psycopg.OperationalError:
        raise
    except psycopg.Error:  # not readable for this role: the other facts decide
        seen = []
    if seen:
        raise refuse.same(
            source_dsn,
            f"the drill's probe session on staging (pid {staging.pid}, application_name "
            f"{probe}) is listed in the source's pg_stat_activity",
        )
    if staging.system_id and staging.system_id == source.system_id:
        raise refuse.same(
            source_dsn,
            f"both report the database system identifier {source.system_id}: the same "
            "server, or a physical replica of it",
        )
    if staging.started and staging.started == source.started:
        raise refuse.same(
            source_dsn,
            f"both servers were started at {source.started.isoformat()}",
        )
    if staging.system_id and source.system_id:
        proof = (
            f"different database systems (system identifiers {staging.system_id} and "
            f"{source.system_id})"
        )
    elif staging.started and source.started:
        if source.in_recovery is not False:
            raise refuse.unproven(
                source_dsn,
                "the source is a standby (or does not say whether it is one), and a "
                "standby's primary is a different server: only the system identifiers "
                "(pg_control_system()) can tell, and "
                + ("staging's" if not staging.system_id else "the source's")
                + " role may not read it",
                _GRANT_FIX + ", or export from the primary",
            )
        proof = (
            f"different servers (staging's started at {staging.started.isoformat()}, "
            f"the source's at {source.started.isoformat()}; the source is not a standby)"
        )
    else:
        side = "staging" if not staging.started else "the source"
        raise refuse.unproven(
            source_dsn,
            f"{side} answers neither pg_postmaster_start_time() nor pg_control_system() "
            "for its role",
            "GRANT EXECUTE ON FUNCTION pg_postmaster_start_time() TO the URL's role, or "
            + _GRANT_FIX,
        )
    # Both sessions still run on the servers they described (no restart in between).
    if _value(src, "SELECT pg_postmaster_start_time()") != source.started:
        raise refuse.unproven(
            source_dsn, "the source restarted during the check", "run the drill again"
        )
    return proof


def _probe_and_compare(
    stg: psycopg.Connection[Any], probe: str, sources: list[str], refuse: _Refusal
) -> tuple[ServerFacts, list[str]]:
    """Staging's facts, and how it differs from each source, while the probe session is open."""
    # Also as a statement: a pooler may replace the startup parameter with its own.
    stg.execute("SELECT set_config('application_name', %s, false)", [probe])
    staging = _facts(stg)
    if staging.in_recovery:
        raise SafetyError(
            f"Refusing STAGING_DB_URL {refuse.staging}: it is a read-only standby "
            "(pg_is_in_recovery()), which a restore cannot write to. Fix: give the "
            "primary's URL of the staging database."
        )
    proofs = [_prove_distinct(staging, probe, source, refuse) for source in sources]
    # The probe session still runs on the server it described (no restart in between).
    if sources and _value(stg, "SELECT pg_postmaster_start_time()") != staging.started:
        raise refuse.unproven(sources[0], "staging restarted during the check", "run it again")
    return staging, proofs


def check_safe(
    staging_dsn: str,
    source_dsns: str | Sequence[str] | None,
    *,
    warn: Callable[[str], None] | None = None,
) -> list[str]:
    """Refuse a staging database that might be a source or is not marked disposable.

    ``source_dsns``: every database this run backs up (none for a backup set given as is).
    Returns how staging was shown to differ from each source; ``warn`` gets a line when
    there was no source to compare with.
    """
    sources = [source_dsns] if isinstance(source_dsns, str) else list(source_dsns or [])
    refuse = _Refusal(staging_dsn)
    params: dict[str, Any] = conninfo_to_dict(staging_dsn)
    if "," in str(params.get("host") or "") + str(params.get("hostaddr") or ""):
        raise SafetyError(
            f"Refusing STAGING_DB_URL {refuse.staging}: it names several hosts, so the "
            "restore's connections could reach a different server than the one checked. "
            "Fix: give exactly one host."
        )
    for source in sources:
        if _where(staging_dsn) == _where(source):
            raise SafetyError(
                f"Refusing STAGING_DB_URL {refuse.staging}: it has the same host, port and "
                "database as the source. The restore overwrites staging; it must never be "
                "the source."
            )
    probe = PROBE_PREFIX + secrets.token_hex(16)
    try:
        stg = _connect(staging_dsn, probe)
    except psycopg.Error as exc:
        raise SafetyError(
            f"Cannot connect to STAGING_DB_URL {refuse.staging}: {_first_line(exc)}"
        ) from exc
    with stg:
        try:
            staging, proofs = _probe_and_compare(stg, probe, sources, refuse)
        except psycopg.OperationalError as exc:
            raise SafetyError(
                f"Refusing STAGING_DB_URL {refuse.staging}: the connection to it broke during "
                f"the safety check ({_first_line(exc)}). Fix: run the drill again."
            ) from exc
    comment = (staging.comment or "").strip()
    if comment != DISPOSABLE_MARKER:
        shown = (
            "it has no comment"
            if not comment
            else f"its comment is {comment[:120]!r}, not exactly the marker"
        )
        raise SafetyError(
            f"Refusing STAGING_DB_URL {refuse.staging}: the database is not marked as "
            f"disposable ({shown}). The restore overwrites it. If that is what you want, run "
            f"in it: COMMENT ON DATABASE {_quoted(staging.database)} IS '{DISPOSABLE_MARKER}';"
        )
    if not sources and warn is not None:
        warn(
            f"staging identity: STAGING_DB_URL {refuse.staging} was not compared with a "
            "source (no source URL in this run, e.g. --supabase-from-backup without "
            "SUPABASE_DB_URL): only its disposable marker shows that it may be overwritten"
        )
    return proofs


# -- clearing the backup's schemas ---------------------------------------------------------

# Every object of the database outside the schemas being dropped, as (catalog, oid, subid):
# what DROP SCHEMA ... CASCADE must leave alone. Objects without a schema of their own
# (columns, defaults, constraints, triggers, rules, policies) belong to their relation or
# type; database-wide objects (extensions, casts, event triggers, foreign-data wrappers,
# servers, languages, publications) are always outside. pg_toast follows its main table.
_OUTSIDE = """
WITH inside AS (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = ANY(%(drop)s::text[])),
rel AS (SELECT oid FROM pg_catalog.pg_class
        WHERE relnamespace NOT IN (SELECT oid FROM inside)
          AND relnamespace <> 'pg_toast'::pg_catalog.regnamespace),
typ AS (SELECT oid FROM pg_catalog.pg_type WHERE typnamespace NOT IN (SELECT oid FROM inside))
SELECT 'pg_namespace'::regclass::oid, oid, 0 FROM pg_catalog.pg_namespace
    WHERE oid NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_class'::regclass::oid, oid, 0 FROM rel
UNION ALL SELECT 'pg_class'::regclass::oid, attrelid, attnum FROM pg_catalog.pg_attribute
    WHERE attnum > 0 AND NOT attisdropped AND attrelid IN (SELECT oid FROM rel)
UNION ALL SELECT 'pg_attrdef'::regclass::oid, oid, 0 FROM pg_catalog.pg_attrdef
    WHERE adrelid IN (SELECT oid FROM rel)
UNION ALL SELECT 'pg_constraint'::regclass::oid, oid, 0 FROM pg_catalog.pg_constraint
    WHERE conrelid IN (SELECT oid FROM rel) OR contypid IN (SELECT oid FROM typ)
       OR (conrelid = 0 AND contypid = 0 AND connamespace NOT IN (SELECT oid FROM inside))
UNION ALL SELECT 'pg_trigger'::regclass::oid, oid, 0 FROM pg_catalog.pg_trigger
    WHERE tgrelid IN (SELECT oid FROM rel) AND NOT tgisinternal
UNION ALL SELECT 'pg_rewrite'::regclass::oid, oid, 0 FROM pg_catalog.pg_rewrite
    WHERE ev_class IN (SELECT oid FROM rel)
UNION ALL SELECT 'pg_policy'::regclass::oid, oid, 0 FROM pg_catalog.pg_policy
    WHERE polrelid IN (SELECT oid FROM rel)
UNION ALL SELECT 'pg_type'::regclass::oid, oid, 0 FROM typ
UNION ALL SELECT 'pg_proc'::regclass::oid, oid, 0 FROM pg_catalog.pg_proc
    WHERE pronamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_operator'::regclass::oid, oid, 0 FROM pg_catalog.pg_operator
    WHERE oprnamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_opclass'::regclass::oid, oid, 0 FROM pg_catalog.pg_opclass
    WHERE opcnamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_opfamily'::regclass::oid, oid, 0 FROM pg_catalog.pg_opfamily
    WHERE opfnamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_collation'::regclass::oid, oid, 0 FROM pg_catalog.pg_collation
    WHERE collnamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_conversion'::regclass::oid, oid, 0 FROM pg_catalog.pg_conversion
    WHERE connamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_statistic_ext'::regclass::oid, oid, 0 FROM pg_catalog.pg_statistic_ext
    WHERE stxnamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_ts_config'::regclass::oid, oid, 0 FROM pg_catalog.pg_ts_config
    WHERE cfgnamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_ts_dict'::regclass::oid, oid, 0 FROM pg_catalog.pg_ts_dict
    WHERE dictnamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_ts_parser'::regclass::oid, oid, 0 FROM pg_catalog.pg_ts_parser
    WHERE prsnamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_ts_template'::regclass::oid, oid, 0 FROM pg_catalog.pg_ts_template
    WHERE tmplnamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_default_acl'::regclass::oid, oid, 0 FROM pg_catalog.pg_default_acl
    WHERE defaclnamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_extension'::regclass::oid, oid, 0 FROM pg_catalog.pg_extension
    WHERE NOT (extname = ANY(%(recreated)s::text[]) AND extnamespace IN (SELECT oid FROM inside))
UNION ALL SELECT 'pg_cast'::regclass::oid, oid, 0 FROM pg_catalog.pg_cast
UNION ALL SELECT 'pg_event_trigger'::regclass::oid, oid, 0 FROM pg_catalog.pg_event_trigger
UNION ALL SELECT 'pg_language'::regclass::oid, oid, 0 FROM pg_catalog.pg_language
UNION ALL SELECT 'pg_foreign_data_wrapper'::regclass::oid, oid, 0
    FROM pg_catalog.pg_foreign_data_wrapper
UNION ALL SELECT 'pg_foreign_server'::regclass::oid, oid, 0 FROM pg_catalog.pg_foreign_server
UNION ALL SELECT 'pg_transform'::regclass::oid, oid, 0 FROM pg_catalog.pg_transform
UNION ALL SELECT 'pg_publication'::regclass::oid, oid, 0 FROM pg_catalog.pg_publication
UNION ALL SELECT 'pg_publication_rel'::regclass::oid, oid, 0 FROM pg_catalog.pg_publication_rel
    WHERE prrelid IN (SELECT oid FROM rel)
"""


# The reached objects, described, leaving out the parts of another reached object (the
# columns, rules, row and array types of a view, the defaults and constraints of a table).
_DESCRIBE = """
WITH r(c, o, s) AS (SELECT * FROM unnest(%s::oid[], %s::oid[], %s::int[]))
SELECT pg_catalog.pg_describe_object(r.c, r.o, r.s) FROM r
WHERE NOT EXISTS (
    SELECT 1 FROM (
        SELECT 'pg_class'::regclass::oid, r.o WHERE r.c = 'pg_class'::regclass AND r.s <> 0
        UNION ALL SELECT 'pg_class'::regclass::oid, ev_class FROM pg_catalog.pg_rewrite
            WHERE r.c = 'pg_rewrite'::regclass AND oid = r.o
        UNION ALL SELECT 'pg_class'::regclass::oid, typrelid FROM pg_catalog.pg_type
            WHERE r.c = 'pg_type'::regclass AND oid = r.o AND typrelid <> 0
        UNION ALL SELECT 'pg_type'::regclass::oid, typelem FROM pg_catalog.pg_type
            WHERE r.c = 'pg_type'::regclass AND oid = r.o AND typcategory = 'A'
        UNION ALL SELECT 'pg_class'::regclass::oid, adrelid FROM pg_catalog.pg_attrdef
            WHERE r.c = 'pg_attrdef'::regclass AND oid = r.o
        UNION ALL SELECT 'pg_class'::regclass::oid, conrelid FROM pg_catalog.pg_constraint
            WHERE r.c = 'pg_constraint'::regclass AND oid = r.o AND conrelid <> 0
        UNION ALL SELECT 'pg_type'::regclass::oid, contypid FROM pg_catalog.pg_constraint
            WHERE r.c = 'pg_constraint'::regclass AND oid = r.o AND contypid <> 0
        UNION ALL SELECT 'pg_class'::regclass::oid, tgrelid FROM pg_catalog.pg_trigger
            WHERE r.c = 'pg_trigger'::regclass AND oid = r.o
        UNION ALL SELECT 'pg_class'::regclass::oid, polrelid FROM pg_catalog.pg_policy
            WHERE r.c = 'pg_policy'::regclass AND oid = r.o
        UNION ALL SELECT 'pg_class'::regclass::oid, prrelid FROM pg_catalog.pg_publication_rel
            WHERE r.c = 'pg_publication_rel'::regclass AND oid = r.o
    ) AS parent(pc, po)
    JOIN r AS whole ON whole.c = parent.pc AND whole.o = parent.po AND whole.s = 0
)
"""


def _refused_names(schemas: Collection[str]) -> list[str]:
    """Scope entries that no backup holds: system schemas and the platform's excluded ones."""
    return sorted(
        s
        for s in schemas
        if s in ("pg_catalog", "information_schema") or s.startswith("pg_") or schema_excluded(s)
    )


def _outside(
    conn: psycopg.Connection[Any], drop: list[str], recreated: list[str]
) -> set[tuple[int, int, int]]:
    rows = conn.execute(_OUTSIDE, {"drop": drop, "recreated": recreated}).fetchall()
    return {(int(c), int(o), int(s)) for c, o, s in rows}


def _shorten(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN_OBJECTS])
    more = len(items) - SHOWN_OBJECTS
    return shown + (f" (+{more} more)" if more > 0 else "")


def _schemas_to_drop(
    conn: psycopg.Connection[Any], schemas: list[str], keep: set[str]
) -> list[str]:
    """The schemas of ``schemas`` that exist here and are dropped: not in ``keep``, not an
    extension's. Refused (:class:`SafetyError`) when this role may not drop one of them."""
    rows = conn.execute(
        "SELECT n.nspname::text, pg_catalog.pg_has_role(n.nspowner, 'USAGE'), "
        "pg_catalog.pg_get_userbyid(n.nspowner)::text, EXISTS (SELECT 1 FROM "
        "pg_catalog.pg_depend d WHERE d.classid = 'pg_namespace'::regclass "
        "AND d.objid = n.oid AND d.deptype = 'e') "
        "FROM pg_catalog.pg_namespace n WHERE n.nspname = ANY(%s::text[]) ORDER BY 1",
        [list(schemas)],
    ).fetchall()
    drop = [name for name, _, _, member in rows if name not in keep and not member]
    role = conn.execute("SELECT current_user::text").fetchone()
    denied = [
        f"{name} (owned by {owner})" for name, may, owner, _ in rows if name in drop and not may
    ]
    if denied:
        raise SafetyError(
            f"Refusing to clear the staging database: the role {role[0] if role else '?'} "
            f"of STAGING_DB_URL may not drop the schema(s) {', '.join(denied)}; nothing "
            "was changed. Fix: connect STAGING_DB_URL as the schemas' owner (on Supabase: "
            "the postgres user), or give the schemas to this role (ALTER SCHEMA ... OWNER "
            "TO ...)."
        )
    return drop


def _require_create(conn: psycopg.Connection[Any]) -> None:
    """Refused (:class:`SafetyError`) when this role may not create schemas in the database."""
    allowed = conn.execute(
        "SELECT pg_catalog.has_database_privilege(current_database(), 'CREATE')"
    ).fetchone()
    if not allowed or not allowed[0]:
        raise SafetyError(
            "Refusing to clear the staging database: the role of STAGING_DB_URL may not "
            "create schemas in it (no CREATE privilege on the database), so the restore "
            "could not recreate what would be dropped; nothing was changed. Fix: "
            "connect as the database owner (on Supabase: the postgres user)."
        )


def _drop_schemas(conn: psycopg.Connection[Any], drop: list[str], recreated: list[str]) -> None:
    """``DROP SCHEMA ... CASCADE`` each of ``drop`` in a savepoint, rolled back and refused
    (:class:`SafetyError`) when the cascade reached any object outside them."""
    before = _outside(conn, drop, recreated)
    conn.execute("SAVEPOINT clear_scope")
    try:
        for schema in drop:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as exc:
        raise RestoreError(
            f"Clearing the staging database was stopped while waiting for another "
            f"session's lock ({_first_line(exc)}); nothing was changed. Fix: end the other "
            "sessions on the staging database, then run the drill again."
        ) from exc
    except psycopg.Error as exc:
        raise SafetyError(
            f"Refusing to clear the staging database: DROP SCHEMA failed "
            f"({_first_line(exc)}); nothing was changed."
        ) from exc
    reached = before - _outside(conn, drop, recreated)
    if reached:
        conn.execute("ROLLBACK TO SAVEPOINT clear_scope")
        names = sorted(
            str(r[0])
            for r in conn.execute(
                _DESCRIBE,
                [[r[0] for r in reached], [r[1] for r in reached], [r[2] for r in reached]],
            ).fetchall()
        )
        raise SafetyError(
            f"Refusing to clear the staging database: dropping the backup's schemas "
            f"({', '.join(drop)}) would also drop {len(names)} object(s) outside them: "
            f"{_shorten(names)}; nothing was changed. Fix: remove those objects, or their "
            "dependency on the backup's schemas, from the staging database (or use a "
            "staging database that holds nothing else)."
        )


def clear_scope(
    dsn: str,
    schemas: list[str],
    platform_present: bool,
    *,
    recreated_extensions: Collection[str] = (),
) -> list[str]:
    """Drop the backup's own schemas from staging, in one transaction; returns those dropped.

    Dropped: each schema of ``schemas`` that exists here, except the platform's own where
    the platform is present, and a schema that belongs to an extension. Refused before
    anything changes (:class:`SafetyError`): a scope entry that is a system or platform
    schema (no backup holds one: the manifest is damaged or edited), a schema this role
    may not drop, and a cascade that would reach any object outside the dropped schemas
    (a view, foreign key, default, column, function ... elsewhere, or an extension, unless
    the backup itself installs that extension into the dropped schema:
    ``recreated_extensions``). ``public`` is created again in the same transaction.
    """
    refused = _refused_names(schemas)
    if refused:
        raise SafetyError(
            f"Refusing to clear the staging database: the backup's list of schemas names "
            f"{', '.join(refused)}, which no backup holds (system or platform schemas); the "
            "manifest is damaged or was edited, and nothing was changed. Fix: export a new "
            "backup set."
        )
    keep = set(PLATFORM_SCHEMAS) if platform_present else set()
    with psycopg.connect(dsn, connect_timeout=15) as conn:  # one transaction, committed last
        conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}s'")
        drop = _schemas_to_drop(conn, schemas, keep)
        if not drop:
            return []
        _require_create(conn)
        _drop_schemas(conn, drop, sorted(recreated_extensions))
        if "public" in schemas:
            conn.execute("CREATE SCHEMA IF NOT EXISTS public")
        conn.commit()
    return drop


@dataclass
class UrlStaging(StagingTarget):
    @classmethod
    def open(
        cls,
        target: Connection,
        source_dsn: str | Sequence[str] | None,
        *,
        progress: Callable[[str], None] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> UrlStaging:
        """Check ``target`` (:func:`check_safe`) against every source; ``progress`` gets how
        it was shown not to be one, ``warn`` a line when there was no source to compare."""
        assert target.db_url is not None
        proofs = check_safe(target.db_url, source_dsn, warn=warn or progress)
        if progress is not None:
            for proof in proofs:
                progress(f"staging identity: not the source: {proof}")
        with psycopg.connect(target.db_url) as conn:
            row = conn.execute(
                "SELECT current_setting('server_version'), "
                "EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'supabase_auth_admin')"
            ).fetchone()
        assert row is not None
        s3 = connection_endpoint(target)
        from . import platform

        return cls(
            kind="url",
            dsn=target.db_url,
            label=f"url {mask_url(target.db_url)}",
            server_version=str(row[0]),
            platform_present=bool(row[1]),
            prepare_sql=None if row[1] else platform.for_backup_set(),
            prepare_cli_sql=None if row[1] else platform.for_cli_dump(),
            s3=s3,
            disposable=False,
        )

    def prepare(self, manifest: Manifest | None) -> None:
        """Drop the backup's own schemas (:func:`clear_scope`), so that the restore meets
        nothing of a previous one; a CLI dump names no schemas, so nothing is dropped."""
        if manifest is None:
            return
        scope = list(manifest.scope_schemas)
        extensions = manifest.schema.get("extensions", {})
        clear_scope(
            self.dsn,
            scope,
            self.platform_present,
            # what the restore installs again into the same schema may be dropped with it
            recreated_extensions=[n for n, e in extensions.items() if e.get("schema") in scope],
        )

    def s3_state(self) -> dict[str, str] | None:
        """Without the key pair: it is the user's (STAGING_S3_*), which workers read from
        their own environment."""
        if self.s3 is None:
            return None
        return {"url": self.s3.url, "region": self.s3.region, "kind": self.kind}

    def stop(self) -> None:
        """Left restored on purpose: a url target is a long-lived project."""
