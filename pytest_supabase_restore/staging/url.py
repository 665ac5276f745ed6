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

:func:`.clear.clear_scope` then drops the backup's own schemas in one transaction, and only
when the cascade reaches nothing outside them.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, LiteralString

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ..connections import DISPOSABLE_MARKER, Connection, mask_url
from ..errors import SafetyError, first_line
from ..model import Manifest
from ..storage.endpoint import connection_endpoint
from .base import StagingTarget
from .clear import clear_scope

PROBE_PREFIX = "pytest-supabase-restore-probe-"
CHECK_APPLICATION = "pytest-supabase-restore-identity-check"


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
