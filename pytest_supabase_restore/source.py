"""Reading the source: connections that only read, the exported snapshot, what breaks them
from another thread, the roles, and the errors that say what to check.

Every session is read-only with the role's statement, idle and lock timeouts off (as
pg_dump's own); an abort breaks each at the socket, so no stalled network can hold an
interrupted export.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from .connections import mask_url
from .errors import SourceConnectionLost, SourceError, first_line
from .model import BucketEntry
from .pg.binaries import PgBinaries
from .pgtools import CONNECTION_LOST, LOGIN_REFUSED, NO_SLOTS, first_error, run_tool
from .slots import cap_jobs, export_connections, read_slots

Progress = Callable[[str], None]

RESERVED_ROLES = re.compile(
    r"^(anon|authenticated|authenticator|dashboard_user|pgbouncer|postgres|service_role|"
    r"supabase_.*|cli_login_.*|pgsodium_keyholder|pgsodium_keyiduser|pgsodium_keymaker|"
    r"pgtle_admin|pg_.*)$"
)
ALLOWED_ROLE_CONFIGS = re.compile(
    r"(pgaudit\..*|pgrst\..*|session_replication_role|statement_timeout|track_io_timing)"
)


_SNAPSHOT_GONE = re.compile(r"invalid snapshot identifier", re.IGNORECASE)
_DROPPED_WHILE_CONNECTING = re.compile(
    r"server closed the connection unexpectedly|connection reset by peer", re.IGNORECASE
)


CONNECT_TIMEOUT = 15  # seconds for one connection to the source to be established


def connect_source(
    db_url: str,
    *,
    application: str = "pytest-supabase-restore",
    cancel: Cancel | None = None,
) -> psycopg.Connection[Any]:
    """A read-only connection to the source, or a SourceError that says what to check.

    With ``cancel``, the connection is registered with it the moment it exists (before its
    first statement), and the attempt is made in short tries (same total time) that stop
    once the export is cancelled: a handshake stalled by the network cannot be broken from
    another thread, and an interrupted export must not wait for it."""
    if cancel is None:
        return _connect_source(db_url, application, CONNECT_TIMEOUT, None)
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while True:
        if cancel.cancelled:
            raise SourceError("the export was stopped while connecting to the source")
        left = deadline - time.monotonic()
        try:
            return _connect_source(db_url, application, max(2, min(3, int(left))), cancel)
        except SourceError as exc:
            timed_out = isinstance(exc.__cause__, psycopg.errors.ConnectionTimeout)
            if not timed_out or time.monotonic() >= deadline:
                raise


def _connect_source(
    db_url: str, application: str, timeout: int, cancel: Cancel | None
) -> psycopg.Connection[Any]:
    try:
        conn = psycopg.connect(
            db_url,
            connect_timeout=timeout,
            application_name=application,
            # A path that silently dies (NAT, failover) is noticed instead of hanging forever.
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=6,
        )
    except psycopg.OperationalError as exc:
        text = first_line(str(exc), type(exc).__name__)
        if _DROPPED_WHILE_CONNECTING.search(str(exc)):
            # The server was reached and the link dropped during the handshake: the same
            # transient fault as a drop mid-export, retried the same way.
            raise SourceConnectionLost(
                f"Connecting to the source database {mask_url(db_url)}: the connection to the "
                f"source was lost during the handshake ({text}). Check the source's "
                "availability and any pooler or proxy in between."
            ) from exc
        hint = "check the host, port and network (Supabase: use the session pooler URL on IPv4-only networks)"
        if "password" in text or "authentication" in text:
            hint = "check the user and password in SUPABASE_DB_URL"
        if NO_SLOTS.search(str(exc)):
            raise slots_failure("Connecting to the source", str(exc)) from exc
        raise SourceError(
            f"Cannot connect to the source database {mask_url(db_url)}: {text}. Fix: {hint}."
        ) from exc
    if cancel is not None:
        cancel.connection(conn)  # from now on an abort breaks it, even mid-statement
    # A role's statement or idle timeout (Supabase sets them on API roles, and teams set
    # them on others) must not cancel a long fingerprint or end the snapshot's transaction
    # while pg_dump runs: like pg_dump itself, the export turns them off for its sessions.
    for setting in ("statement_timeout", "idle_in_transaction_session_timeout", "lock_timeout"):
        conn.execute(psycopg.sql.SQL("SET {} = 0").format(psycopg.sql.Identifier(setting)))
    conn.commit()
    conn.read_only = True
    return conn


_DENIED = re.compile(r"permission denied for (table|relation|schema|sequence) (\S+)", re.IGNORECASE)
_RLS_BLOCKED = re.compile(r"query would be affected by row-level security policy", re.IGNORECASE)
RLS_FIX = (
    "export with a role that has BYPASSRLS (on Supabase, the postgres user has it; for a "
    "read-only role see docs/SOURCE_ROLE.md), or as a superuser run: ALTER ROLE {role} BYPASSRLS;"
)
DENIED_FIX = (
    "export with a role that can read every table in scope (on Supabase, the postgres "
    "user's connection string from Settings > Database), or as its owner run: {grant}"
)


def denied_grant(kind: str, name: str) -> str:
    """The GRANT that lets the export's role read ``name``: a schema needs USAGE, a table
    or sequence SELECT (``--supabase-dry-run`` lists every gap at once)."""
    kind = kind.lower()
    if kind == "schema":
        return f"GRANT USAGE ON SCHEMA {name} TO <the source user>;"
    what = "SEQUENCE" if kind == "sequence" else "TABLE"
    return f"GRANT SELECT ON {what} {name} TO <the source user>;"


LOGIN_FIX = (
    "check the user and password (SUPABASE_DB_URL, or PGPASSWORD / PGPASSFILE / ~/.pgpass "
    "when the URL has none) and the TLS settings (sslmode, PGSSLROOTCERT); not retried, "
    "since the same login is refused again"
)


SLOTS_FIX = (
    "lower --supabase-jobs (the export opens 2 x jobs + 2 connections), or run the drill when "
    "fewer clients are connected; not retried, since a new attempt needs as many connections"
)


def slots_failure(what: str, message: str) -> SourceError:
    """The source (or its pooler) refused a connection: every slot is taken."""
    line = next((ln.strip() for ln in message.splitlines() if NO_SLOTS.search(ln)), "")
    return SourceError(
        f"{what}: the source refused a connection because its connection slots are taken "
        f"({line or first_error(message).strip()}). Fix: {SLOTS_FIX}."
    )


def source_failure(what: str, message: str) -> SourceError:
    """The right error for a failure reading the source: no slot, lost connection, denied,
    other."""
    first = first_error(message).strip() or "no message"
    if NO_SLOTS.search(message):  # libpq says "connection to server ... failed" for these too
        return slots_failure(what, message)
    denied = _DENIED.search(message)
    if denied:
        kind, name = denied.group(1), denied.group(2)
        fix = DENIED_FIX.format(grant=denied_grant(kind, name))
        return SourceError(
            f"{what}: the source user may not read {kind.lower()} {name} ({first}). Fix: {fix}"
        )
    if _RLS_BLOCKED.search(message):
        fix = RLS_FIX.format(role="<the source user>")
        return SourceError(
            f"{what}: the source user may not read every row past row-level security "
            f"({first}); a backup without the rows a policy hides would be incomplete. Fix: {fix}"
        )
    if LOGIN_REFUSED.search(message):  # also "connection to server ... failed": not lost
        return SourceError(f"{what}: the source refused the login ({first}). Fix: {LOGIN_FIX}.")
    if CONNECTION_LOST.search(message) or _SNAPSHOT_GONE.search(message):
        # A snapshot that became invalid mid-export means the session holding it was cut.
        return SourceConnectionLost(
            f"{what}: the connection to the source was lost ({first}). The network path or "
            "the server dropped it; check the source's availability and any pooler or "
            "proxy idle limits."
        )
    return SourceError(f"{what}: {first}")


def server_version(conn: psycopg.Connection[Any]) -> tuple[int, str]:
    row = conn.execute(
        "SELECT current_setting('server_version_num')::int, current_setting('server_version')"
    ).fetchone()
    assert row is not None
    conn.rollback()
    return row[0] // 10000, str(row[1])


def dump_roles(db_url: str, tools: PgBinaries, dest: Path) -> list[str]:
    """Custom roles without passwords; Supabase's reserved roles left out (as the CLI does)."""
    result = run_tool(
        [
            tools.path("pg_dumpall"),
            "--roles-only",
            "--no-role-passwords",
            "--no-comments",
            "--quote-all-identifiers",
        ],
        db_url,
        timeout=600,
    )
    if result.returncode != 0:
        raise source_failure("pg_dumpall --roles-only failed", result.stderr)
    kept: list[str] = []
    roles: list[str] = []
    for line in result.stdout.splitlines():
        if line.startswith(("\\restrict", "\\unrestrict")):
            continue
        m = re.match(r'^(CREATE|ALTER) ROLE "([^"]+)"', line)
        if m:
            if RESERVED_ROLES.match(m.group(2)):
                continue
            if m.group(1) == "CREATE":
                roles.append(m.group(2))
            line = line.replace(" NOSUPERUSER", "").replace(" NOREPLICATION", "")
            m_set = re.match(r'^ALTER ROLE "[^"]+" SET "?([^" ]+)', line)
            if m_set and not ALLOWED_ROLE_CONFIGS.fullmatch(m_set.group(1)):
                continue
        g = re.match(r'^GRANT "([^"]+)" TO "([^"]+)"', line)
        if g and (RESERVED_ROLES.match(g.group(2)) or g.group(1) in {"authenticator"}):
            continue
        kept.append(line)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(kept) + "\nRESET ALL;\n")
    return roles


def platform_roles_of(conn: psycopg.Connection[Any]) -> list[str]:
    """The Supabase platform's reserved roles (:data:`RESERVED_ROLES`, PostgreSQL's own
    ``pg_*`` aside) that exist on the source, sorted."""
    names = [r[0] for r in conn.execute("SELECT rolname::text FROM pg_catalog.pg_roles")]
    return sorted(n for n in names if RESERVED_ROLES.match(n) and not n.startswith("pg_"))


def migration_history_of(conn: psycopg.Connection[Any]) -> int | None:
    """How many migrations the Supabase CLI recorded as applied to the source
    (``supabase_migrations.schema_migrations``), or None when it has no such table."""
    row = conn.execute(
        "SELECT pg_catalog.to_regclass('supabase_migrations.schema_migrations') IS NOT NULL"
    ).fetchone()
    if row is None or not row[0]:
        return None
    counted = conn.execute("SELECT count(*) FROM supabase_migrations.schema_migrations").fetchone()
    return int(counted[0]) if counted else None


class Cancel:
    """Everything an export has open on the source, so that it can be broken from the
    main thread: an interrupt or a time limit must not wait for a network that stalls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.conns: list[psycopg.Connection[Any]] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.cancelled = False
        self.event = threading.Event()  # for work that polls (the Storage download)

    def connection(self, conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
        with self._lock:
            self.conns.append(conn)
            cancelled = self.cancelled
        if cancelled:
            _break(conn)
        return conn

    def process(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self.procs.append(proc)

    def abort(self) -> None:
        """Break every connection at the socket and stop the child processes."""
        self.event.set()
        with self._lock:
            self.cancelled = True
            conns, procs = list(self.conns), list(self.procs)
        for conn in conns:
            _break(conn)
        for proc in procs:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGTERM)


def _break(conn: psycopg.Connection[Any]) -> None:
    # A cancel request would itself have to reach the server, which may be what fails;
    # shutting the socket down makes a blocked call in any thread fail at once.
    with contextlib.suppress(Exception):
        if not conn.closed:
            sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class SnapshotExport:
    """Holds the transaction whose snapshot everything is read in."""

    def __init__(self, db_url: str, cancel: Cancel) -> None:
        self.db_url = db_url
        self.cancel = cancel
        self.conn = self._open()
        row = self.conn.execute(
            "SELECT pg_export_snapshot(), clock_timestamp() AT TIME ZONE 'UTC'"
        ).fetchone()
        assert row is not None
        self.snapshot_id: str = row[0]
        self.snapshot_time: dt.datetime = row[1].replace(tzinfo=dt.timezone.utc)

    def importer(self) -> psycopg.Connection[Any]:
        conn = self._open()
        conn.execute(
            psycopg.sql.SQL("SET TRANSACTION SNAPSHOT {}").format(
                psycopg.sql.Literal(self.snapshot_id)
            )
        )
        return conn

    def _open(self) -> psycopg.Connection[Any]:
        # psycopg opens each transaction as REPEATABLE READ READ ONLY: the source is only read.
        conn = connect_source(self.db_url, cancel=self.cancel)
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        return conn

    def close(self) -> None:
        try:
            self.conn.rollback()
            self.conn.close()
        except psycopg.Error:
            pass


def jobs_for_slots(conn: psycopg.Connection[Any], requested: int, progress: Progress) -> int:
    """``requested`` jobs, capped to the source's free connection slots (:mod:`slots`)."""
    try:
        free = read_slots(conn)
    except psycopg.OperationalError:
        raise
    except psycopg.Error as exc:  # a platform that hides the settings: say so, keep going
        conn.rollback()
        progress(
            f"connection slots of the source unknown ({first_error(str(exc))}): jobs not capped"
        )
        return requested
    needed = export_connections(1)
    if free.free < needed:
        raise SourceError(
            f"The source has {free.free} free connection slot(s) for this role ({free.why}); "
            f"the export needs at least {needed}. Nothing was exported. Fix: {SLOTS_FIX}."
        )
    jobs = cap_jobs(requested, free)
    if jobs < requested:
        progress(
            f"jobs capped from {requested} to {jobs}: the source has {free.free} free "
            f"connection slots ({free.why}); the export opens 2 x jobs + 2 connections and "
            "leaves at least half of the free slots to other clients"
        )
    return jobs


StorageObjectRow = tuple[str, str, "int | None"]
"""A ``storage.objects`` row as the export reads it: bucket, key and recorded size."""


def storage_rows(
    conn: psycopg.Connection[Any],
) -> tuple[list[BucketEntry], list[StorageObjectRow]]:
    """storage.buckets and the (bucket, key, size) of every storage.objects row as of the
    snapshot (the size from its metadata; None where it records none)."""
    exists = conn.execute(
        "SELECT to_regclass('storage.objects') IS NOT NULL AND to_regclass('storage.buckets') IS NOT NULL"
    ).fetchone()
    if not exists or not exists[0]:
        return [], []
    buckets = [
        BucketEntry(
            id=str(r[0]),
            name=r[1],
            public=r[2],
            file_size_limit=r[3],
            allowed_mime_types=tuple(r[4]) if r[4] is not None else None,
        )
        for r in conn.execute(
            "SELECT id, name, public, file_size_limit, allowed_mime_types FROM storage.buckets ORDER BY id"
        ).fetchall()
    ]
    objects = [
        (str(r[0]), str(r[1]), int(r[2]) if r[2] is not None else None)
        for r in conn.execute(
            "SELECT bucket_id, name, (metadata->>'size')::bigint FROM storage.objects "
            "ORDER BY bucket_id, name"
        ).fetchall()
    ]
    return buckets, objects
