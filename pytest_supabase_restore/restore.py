"""Restore a backup set into a staging database, in order, keeping every error.

Order: roles, schema (pre-data), data with triggers off (``session_replication_role =
replica``), post-data (indexes, constraints, triggers) with parallel jobs, side effects
neutralised, ``ANALYZE``. Known Supabase restore hazards are handled on purpose; every error
pg_restore reports is kept and classified as expected for the target (with the reason) or as
a real failure that fails the drill (:mod:`.restore_messages`).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from .errors import RestoreError, first_line
from .model import Manifest
from .pg.binaries import PgBinaries
from .pgtools import first_error, run_tool
from .proof.scope import schema_excluded
from .redact import Redactor
from .restore_messages import (
    _record,
    excerpt,
    fatal_restore_error,
    parse_pg_restore_errors,
)
from .results import RestoreIssue
from .rolesql import read_roles
from .source import RESERVED_ROLES
from .toc import read_toc

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass
class RestoreOutcome:
    """What a restore did: timed phases and every message, classified."""

    phases: dict[str, float] = field(default_factory=dict)
    issues: list[RestoreIssue] = field(default_factory=list)
    not_restorable: list[str] = field(default_factory=list)
    neutralised: list[str] = field(default_factory=list)
    disabled_triggers: list[str] = field(default_factory=list)  # "schema.table.trigger"
    # What could not be restored because an extension could not be: object -> extension.
    extension_dependents: dict[str, str] = field(default_factory=dict)

    @property
    def unexpected(self) -> list[RestoreIssue]:
        return [i for i in self.issues if not i.expected]


def run_script(
    dsn: str, script: str, label: str, redactor: Redactor | None = None
) -> list[tuple[str, str]]:
    """Run a whole script (may hold DO blocks) in one go; return its error, if any."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            conn.execute(script.encode())
        except psycopg.Error as exc:
            return [(f"{label}: {first_line(exc, type(exc).__name__)}", excerpt(redactor, script))]
    return []


def role_statements(set_dir: Path) -> list[str]:
    """The checked statements of ``set_dir/roles.sql`` (none without one; see :mod:`.rolesql`).
    Raises BackupError when it holds anything but role statements."""
    path = set_dir / "roles.sql"
    return read_roles(path) if os.path.lexists(path) else []


def run_role_statements(
    dsn: str, statements: Sequence[str], redactor: Redactor | None = None
) -> list[tuple[str, str]]:
    """Run checked role statements one by one (autocommit); return (message, statement) errors.

    Each is one canonical statement from :func:`.rolesql.parse_roles`; the session's encoding
    and string syntax are pinned to what that canonical form assumes.
    """
    errors: list[tuple[str, str]] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET client_encoding = 'UTF8'")
        conn.execute("SET standard_conforming_strings = on")
        for stmt in statements:
            try:
                conn.execute(stmt)
            except psycopg.Error as exc:
                message = f"roles: {first_line(exc, type(exc).__name__)}"
                errors.append((message, excerpt(redactor, stmt)))
    return errors


# Default privileges apply to every object pg_restore creates. Staging's own (a Supabase
# project's: whatever postgres creates in public is granted to anon, authenticated and
# service_role) would add grants the source revoked; the backup set restores the source's
# own default privileges after its tables. So, in every schema the backup covers, staging's
# are revoked before the restore: each object gets exactly the source's grants.
_CLEAR_DEFAULT_PRIVILEGES = """
DO $clear$
DECLARE
    entry record;
BEGIN
    FOR entry IN
        SELECT pg_catalog.pg_get_userbyid(d.defaclrole) AS owner, n.nspname AS schema,
            CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES'
                WHEN 'f' THEN 'FUNCTIONS' WHEN 'T' THEN 'TYPES' WHEN 'n' THEN 'SCHEMAS' END
                AS kind,
            pg_catalog.string_agg(DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END, ', ')
                AS grantees
        FROM pg_catalog.pg_default_acl d
        JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
        CROSS JOIN LATERAL pg_catalog.aclexplode(d.defaclacl) a
        WHERE n.nspname = ANY ({schemas})
        GROUP BY 1, 2, 3
    LOOP
        EXECUTE pg_catalog.format(
            'ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I REVOKE ALL ON %s FROM %s',
            entry.owner, entry.schema, entry.kind, entry.grantees);
    END LOOP;
END
$clear$
"""


# The roles every Supabase project has had from the start, and the drill's own API checks
# log in through: never dropped, whatever a manifest says.
_CORE_ROLES = frozenset(
    {"postgres", "supabase_admin", "anon", "authenticated", "service_role", "authenticator"}
)


def drop_platform_roles_absent(dsn: str, source_roles: Sequence[str]) -> list[str]:
    """Drop the platform roles the staging platform SQL created but the source lacks.

    Staging starts as today's Supabase project; a project created before a role existed
    (supabase_realtime_admin, for one) has neither the role nor its grants, and pg_restore
    never revokes what a target has in excess. Only a source that is a Supabase project
    (it has ``authenticator``) is matched this way; the core roles always stay. A schema
    the role owns goes with it, whoever owns what is in it (``pgbouncer``'s schema holds
    ``get_auth``, owned by ``supabase_admin``, and a project without the role has neither):
    this runs right after the platform SQL, so all such a schema holds is the platform's.
    Returns the dropped roles."""
    if "authenticator" not in source_roles:
        return []
    keep = set(source_roles) | _CORE_ROLES
    dropped: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT rolname::text FROM pg_catalog.pg_roles "
                "WHERE rolname <> current_user ORDER BY 1"
            )
        ]
        for name in names:
            if name in keep or name.startswith("pg_") or not RESERVED_ROLES.match(name):
                continue
            owned = conn.execute(
                "SELECT nspname::text FROM pg_catalog.pg_namespace "
                "WHERE nspowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %s)",
                (name,),
            ).fetchall()
            with conn.transaction():
                for (schema,) in owned:
                    conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
            dropped.append(name)
    return dropped


def clear_default_privileges(dsn: str) -> None:
    """Revoke staging's default privileges in every schema a backup set covers (see above)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        names = [r[0] for r in conn.execute("SELECT nspname::text FROM pg_catalog.pg_namespace")]
        schemas = [name for name in names if not schema_excluded(name)]
        conn.execute(sql.SQL(_CLEAR_DEFAULT_PRIVILEGES).format(schemas=sql.Literal(schemas)))


def _restore_section(
    tools: PgBinaries,
    dsn: str,
    db_dir: Path,
    section: str,
    jobs: int,
    *,
    replica: bool = False,
    use_list: Path | None = None,
) -> tuple[int, str]:
    args = [
        tools.path("pg_restore"),
        f"--section={section}",
        "--no-password",
        "--dbname",
        _dbname_only(dsn),
    ]
    if jobs > 1 and section != "pre-data":
        args.append(f"--jobs={jobs}")
    if use_list is not None:
        args.append(f"--use-list={use_list}")
    args.append(str(db_dir))
    extra = {"PGOPTIONS": "-c session_replication_role=replica"} if replica else None
    result = run_tool(args, dsn, extra_env=extra)
    return result.returncode, result.stderr


def _dbname_only(dsn: str) -> str:
    # The connection itself comes from the environment (libpq_env); only the database name goes
    # on the command line, so no password ever appears in the process list.
    from psycopg.conninfo import conninfo_to_dict

    return str(conninfo_to_dict(dsn).get("dbname") or "postgres")


def analyze(tools: PgBinaries, dsn: str, jobs: int) -> None:
    """Planner statistics for every table: ``vacuumdb --analyze-only -j N`` analyzes tables
    in parallel; a plain ``ANALYZE`` when it is missing or fails."""
    vacuumdb = Path(tools.path("vacuumdb"))
    if jobs > 1 and vacuumdb.is_file():
        result = run_tool(
            [
                str(vacuumdb),
                "--analyze-only",
                f"--jobs={jobs}",
                "--quiet",
                "--dbname",
                _dbname_only(dsn),
            ],
            dsn,
        )
        if result.returncode == 0:
            # vacuumdb skips partitioned tables; their own statistics need an ANALYZE.
            with psycopg.connect(dsn, autocommit=True) as conn:
                parents = conn.execute(
                    "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relkind = 'p' AND NOT c.relispartition"
                ).fetchall()
                for (name,) in parents:
                    conn.execute(sql.SQL("ANALYZE {}").format(sql.SQL(name)))
            return
        fatal = fatal_restore_error("analyze", result.stderr)
        if fatal is not None:
            raise fatal
        log.warning(
            "vacuumdb --analyze-only failed (%s); running ANALYZE", first_error(result.stderr)
        )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE")


# Calls that reach outside the database: pg_net, the http extension, Supabase's database
# webhooks (supabase_functions.http_request), dblink. Matched in function bodies.
_CALLS_OUT = re.compile(
    r"\bnet\s*\.\s*http_\w+\s*\(|\bsupabase_functions\s*\.\s*http_request\b|"
    r"\bhttp_(?:get|post|put|patch|delete|head)\s*\(|\bhttp\s*\(\s*\(|"
    r"\bextensions\s*\.\s*http\w*\s*\(|\bdblink(?:_exec|_send_query)?\s*\(",
    re.IGNORECASE,
)
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")


def calling_out(functions: list[tuple[int, str, str, str]]) -> set[int]:
    """The oids of ``functions`` ``(oid, schema, name, body)`` that call out, directly or
    through other functions of the list (a trigger calling a wrapper that calls
    ``net.http_post`` is a webhook too). Names are matched without their schema, so a
    same-named function elsewhere also counts: disabling one trigger too many in staging is
    safe, missing one is not."""
    flagged = {oid for oid, schema, name, body in functions if _CALLS_OUT.search(body or "")}
    flagged |= {
        oid
        for oid, schema, name, _ in functions
        if (schema, name) == ("supabase_functions", "http_request")
        or (schema == "net" and name.startswith("http_"))
    }
    while True:
        names = {name for oid, _s, name, _b in functions if oid in flagged}
        if not names:
            return flagged
        calls = re.compile(
            r"\b(?:" + "|".join(re.escape(n) for n in sorted(names)) + r")\s*\(", re.IGNORECASE
        )
        more = {
            oid
            for oid, _s, _n, body in functions
            if oid not in flagged and calls.search(body or "")
        }
        if not more:
            return flagged
        flagged |= more


def neutralise_side_effects(dsn: str, *, cron_inert: bool = False) -> tuple[list[str], list[str]]:
    """Make sure a restored copy never calls out: pg_cron jobs off, pg_net queue emptied,
    and every trigger whose function calls out (database webhooks, ``net.http_*``, the http
    extension, dblink, also through wrapper functions) disabled.

    With ``cron_inert`` (a target whose pg_cron scheduler can never run a job, see
    :mod:`.pg.cron`) jobs are left exactly as backed up; elsewhere they are deactivated,
    which changes ``cron.job``'s data.

    Returns (what was done, for people; the disabled triggers as ``schema.table.trigger``,
    so the schema check can expect them disabled)."""
    done: list[str] = []
    disabled: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('cron.job') IS NOT NULL").fetchone() == (True,):
            if cron_inert:
                row = conn.execute("SELECT count(*) FROM cron.job WHERE active").fetchone()
                done.append(
                    f"pg_cron: {row[0] if row else 0} active job(s) kept as backed up; this "
                    "server's scheduler cannot run any (cron.host points nowhere)"
                )
            else:
                n = conn.execute("UPDATE cron.job SET active = false WHERE active").rowcount
                done.append(f"pg_cron: {n} job(s) deactivated")
        if conn.execute("SELECT to_regclass('net.http_request_queue') IS NOT NULL").fetchone() == (
            True,
        ):
            n = conn.execute("DELETE FROM net.http_request_queue").rowcount
            done.append(f"pg_net: {n} queued request(s) dropped")
        functions = [
            (int(oid), str(schema), str(name), str(body or ""))
            for oid, schema, name, body in conn.execute(
                """
                SELECT p.oid, n.nspname, p.proname,
                       CASE WHEN p.prosqlbody IS NOT NULL
                            THEN pg_catalog.pg_get_function_sqlbody(p.oid) ELSE p.prosrc END
                FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname <> ALL (%s) AND n.nspname NOT LIKE 'pg\\_%%'
                """,
                (list(_SYSTEM_SCHEMAS),),
            ).fetchall()
        ]
        flagged = calling_out(functions)
        rows = conn.execute(
            """
            SELECT n.nspname, c.relname, t.tgname
            FROM pg_trigger t
            JOIN pg_class c ON c.oid = t.tgrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' AND t.tgfoid = ANY (%s)
            ORDER BY 1, 2, 3
            """,
            (sorted(flagged),),
        ).fetchall()
        for schema, table, trigger in rows:
            conn.execute(
                sql.SQL("ALTER TABLE {}.{} DISABLE TRIGGER {}").format(
                    sql.Identifier(schema), sql.Identifier(table), sql.Identifier(trigger)
                )
            )
            done.append(f"webhook trigger {schema}.{table}/{trigger} disabled")
            disabled.append(f"{schema}.{table}.{trigger}")
    return done, disabled


def restore_backup_set(
    set_dir: Path,
    dsn: str,
    tools: PgBinaries,
    *,
    jobs: int = 2,
    platform_present: bool = False,
    prepare_sql: str | None = None,
    progress: Progress = lambda _m: None,
    roles: Sequence[str] | None = None,
    redactor: Redactor | None = None,
    cron_inert: bool = False,
    manifest: Manifest | None = None,
) -> RestoreOutcome:
    """Restore ``set_dir`` (a manifest backup set) into ``dsn``.

    ``roles``: the role statements the integrity check accepted; without it ``roles.sql`` is
    checked here (:func:`role_statements`, a BackupError when it holds anything else).
    ``manifest``: the set's checked manifest, whose ``extensions`` section says what each
    extension provides (what fails when the target cannot load one is expected).
    Errors of single statements are kept and classified, not raised; a target that fails
    as a whole (disk full, server gone) raises :class:`RestoreError` naming the cause.
    The statements kept with errors are redacted with ``redactor`` before they are
    shortened.
    """
    from .extdeps import members_from_manifest

    statements = list(roles) if roles is not None else role_statements(set_dir)
    source_roles = list(manifest.source.platform_roles) if manifest and prepare_sql else None
    try:
        return _restore_backup_set(
            set_dir,
            dsn,
            tools,
            jobs,
            platform_present,
            prepare_sql,
            progress,
            statements,
            redactor,
            cron_inert,
            members_from_manifest(manifest),
            source_roles,
        )
    except psycopg.OperationalError as exc:
        raise fatal_restore_error("restore", str(exc)) or RestoreError(
            f"The staging database failed during the restore: {first_error(str(exc))}"
        ) from exc


def _restore_backup_set(
    set_dir: Path,
    dsn: str,
    tools: PgBinaries,
    jobs: int,
    platform_present: bool,
    prepare_sql: str | None,
    progress: Progress,
    roles: Sequence[str],
    redactor: Redactor | None,
    cron_inert: bool,
    members: Mapping[str, Mapping[str, Sequence[str]]],
    source_roles: Sequence[str] | None,
) -> RestoreOutcome:
    out = RestoreOutcome()
    raw: list[tuple[str, str]] = []

    t0 = time.monotonic()
    if prepare_sql:
        raw += run_script(dsn, prepare_sql, "platform", redactor)
        if source_roles is not None:
            for name in drop_platform_roles_absent(dsn, source_roles):
                progress(f"restore: platform role {name} dropped (the source has none)")
    if roles:
        raw += run_role_statements(dsn, roles, redactor)
    clear_default_privileges(dsn)
    out.phases["roles"] = time.monotonic() - t0
    progress(f"restore: roles in {out.phases['roles']:.1f}s")

    db_dir = set_dir / "db"
    for section, replica, phase in (
        ("pre-data", False, "schema"),
        ("data", True, "data"),
        ("post-data", False, "post_data"),
    ):
        t0 = time.monotonic()
        code, stderr = _restore_section(tools, dsn, db_dir, section, jobs, replica=replica)
        fatal = fatal_restore_error(phase, stderr) if code != 0 else None
        if fatal is not None:
            raise fatal
        raw += parse_pg_restore_errors(stderr, redactor)
        out.phases[phase] = time.monotonic() - t0
        progress(f"restore: {phase} in {out.phases[phase]:.1f}s")

    t0 = time.monotonic()
    out.neutralised, out.disabled_triggers = neutralise_side_effects(dsn, cron_inert=cron_inert)
    out.phases["neutralise"] = time.monotonic() - t0

    t0 = time.monotonic()
    analyze(tools, dsn, jobs)
    out.phases["analyze"] = time.monotonic() - t0
    progress(f"restore: ANALYZE in {out.phases['analyze']:.1f}s")

    toc = read_toc(tools, db_dir) if raw else []
    _record(out, raw, platform_present, toc=toc, extensions=members)
    return out


def restore_cli_dump(
    dump_dir: Path,
    dsn: str,
    *,
    prepare_sql: str | None = None,
    progress: Progress = lambda _m: None,
    roles: Sequence[str] | None = None,
    redactor: Redactor | None = None,
    cron_inert: bool = False,
) -> RestoreOutcome:
    """Restore the Supabase CLI's roles.sql, schema.sql and data.sql (the documented order).

    ``roles.sql`` passes the same check as a backup set's (``roles``: its accepted statements;
    without it the file is checked here).
    """
    statements = list(roles) if roles is not None else role_statements(dump_dir)
    out = RestoreOutcome()
    raw: list[tuple[str, str]] = []
    if prepare_sql:
        raw += run_script(dsn, prepare_sql, "platform", redactor)
    if statements:
        t0 = time.monotonic()
        raw += run_role_statements(dsn, statements, redactor)
        out.phases["roles"] = time.monotonic() - t0
        progress(f"restore: roles.sql in {out.phases['roles']:.1f}s")
    for name, phase in (("schema.sql", "schema"), ("data.sql", "data")):
        path = dump_dir / name
        if not path.is_file():
            continue
        t0 = time.monotonic()
        # \restrict / \unrestrict are psql meta-commands of newer pg_dump; comment them out.
        text = re.sub(r"^\\(un)?restrict .*$", r"-- \g<0>", path.read_text(), flags=re.M)
        if phase == "data":
            text = "SET session_replication_role = replica;\n" + text
        raw += _run_with_copy(dsn, text, name, redactor)
        out.phases[phase] = time.monotonic() - t0
        progress(f"restore: {name} in {out.phases[phase]:.1f}s")
    t0 = time.monotonic()
    out.neutralised, out.disabled_triggers = neutralise_side_effects(dsn, cron_inert=cron_inert)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE")
    out.phases["analyze"] = time.monotonic() - t0
    _record(out, raw, platform_present=False)
    return out


def _run_with_copy(
    dsn: str, text: str, label: str, redactor: Redactor | None = None
) -> list[tuple[str, str]]:
    """Run a plain SQL dump that may hold ``COPY ... FROM stdin`` blocks."""
    errors: list[tuple[str, str]] = []
    lines = text.splitlines()
    with psycopg.connect(dsn, autocommit=True) as conn:
        buf: list[str] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            if not buf and re.match(r"^COPY .* FROM stdin;$", line):
                data: list[str] = []
                i += 1
                while i < len(lines) and lines[i] != "\\.":
                    data.append(lines[i])
                    i += 1
                try:
                    with conn.cursor().copy(line[:-1].encode()) as copy:
                        copy.write(("\n".join(data) + "\n").encode() if data else b"")
                except psycopg.Error as exc:
                    message = f"{label}: {first_line(exc, type(exc).__name__)}"
                    errors.append((message, excerpt(redactor, line)))
                i += 1
                continue
            if line.startswith("--") or (not buf and not line.strip()):
                i += 1
                continue
            buf.append(line)
            if line.rstrip().endswith(";") and _balanced("\n".join(buf)):
                stmt = "\n".join(buf)
                buf = []
                try:
                    conn.execute(stmt.encode())
                except psycopg.Error as exc:
                    message = f"{label}: {first_line(exc, type(exc).__name__)}"
                    errors.append((message, excerpt(redactor, stmt)))
            i += 1
    return errors


def _balanced(stmt: str) -> bool:
    """True when ``stmt`` is not inside a dollar-quoted body (good enough for pg_dump output)."""
    tags = re.findall(r"\$[A-Za-z_]*\$", stmt)
    return len(tags) % 2 == 0
