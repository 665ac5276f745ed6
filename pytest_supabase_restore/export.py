"""Export: one snapshot-consistent backup set of the database and every Storage object.

The source is only read. One connection opens a REPEATABLE READ, READ ONLY transaction and
exports its snapshot; ``pg_dump --snapshot`` dumps exactly that snapshot while other
connections import it to compute row counts, fingerprints, the schema inventory, row-level
security visibility and the ``storage.objects`` listing. Everything the manifest says is
therefore true of exactly what was dumped, even while production keeps writing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from . import __version__, extdeps, manifest
from .background import Background
from .config import mask_url
from .errors import BackupError, SourceConnectionLost, SourceError, ToolError, first_line
from .pg.binaries import PgBinaries, find_client_tools
from .pgtools import (
    CONNECTION_LOST,
    NO_SLOTS,
    NO_SPACE,
    first_error,
    libpq_env,
    run_tool,
    stop_group,
)
from .proof.fingerprint import fingerprint_table
from .proof.inventory import schema_inventory
from .proof.postgrest import postgrest_session
from .proof.rls import rls_visibility, sample_users
from .proof.scope import (
    EXCLUDED_TABLE_DATA,
    SCOPE_EXCLUDED_SCHEMAS,
    SESSION_SETTINGS,
    TableRef,
    list_tables,
    schemas_in_scope,
)
from .reaper import reaper
from .s3server import S3Endpoint
from .slots import cap_jobs, export_connections, read_slots

if TYPE_CHECKING:
    from .storage import TransferResult

log = logging.getLogger(__name__)
Progress = Callable[[str], None]

RESERVED_ROLES = re.compile(
    r"^(anon|authenticated|authenticator|dashboard_user|pgbouncer|postgres|service_role|"
    r"supabase_.*|cli_login_.*|pgsodium_keyholder|pgsodium_keyiduser|pgsodium_keymaker|"
    r"pgtle_admin|pg_.*)$"
)
ALLOWED_ROLE_CONFIGS = re.compile(
    r"(pgaudit\..*|pgrst\..*|session_replication_role|statement_timeout|track_io_timing)"
)


def _noop(_: str) -> None:
    pass


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
        text = first_line(exc, type(exc).__name__)
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


_DENIED = re.compile(
    r"permission denied for (?:table|relation|schema|sequence) (\S+)", re.IGNORECASE
)
DENIED_FIX = (
    "export with a role that can read every table in scope (on Supabase, the postgres "
    "user's connection string from Settings > Database), or GRANT SELECT on it to this user"
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
        return SourceError(
            f"{what}: the source user may not read {denied.group(1)} ({first}). Fix: {DENIED_FIX}."
        )
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


def compression_args(pgdump: PgBinaries, compression: str) -> list[str]:
    """pg_dump's compression flags for ``none``/``gzip:N``/``lz4``/``zstd`` on this version."""
    if compression == "none":
        return ["--compress=0"]
    method, _, level = compression.partition(":")
    if pgdump.major < 16:
        if method != "gzip":
            raise ToolError(
                f"--supabase-compression={compression} needs pg_dump 16 or newer (this one is "
                f"{pgdump.major}); use gzip:N or none."
            )
        return [f"--compress={level or '6'}"]
    return [f"--compress={method}{':' + level if level else ''}"]


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


def _storage_rows(
    conn: psycopg.Connection[Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """storage.buckets and storage.objects as of the snapshot (metadata only)."""
    exists = conn.execute(
        "SELECT to_regclass('storage.objects') IS NOT NULL AND to_regclass('storage.buckets') IS NOT NULL"
    ).fetchone()
    if not exists or not exists[0]:
        return [], []
    buckets = [
        {
            "id": r[0],
            "name": r[1],
            "public": r[2],
            "file_size_limit": r[3],
            "allowed_mime_types": r[4],
        }
        for r in conn.execute(
            "SELECT id, name, public, file_size_limit, allowed_mime_types FROM storage.buckets ORDER BY id"
        ).fetchall()
    ]
    objects = [
        {"bucket": r[0], "key": r[1], "size": r[2], "mimetype": r[3], "etag": r[4]}
        for r in conn.execute(
            "SELECT bucket_id, name, (metadata->>'size')::bigint, metadata->>'mimetype', "
            "metadata->>'eTag' FROM storage.objects ORDER BY bucket_id, name"
        ).fetchall()
    ]
    return buckets, objects


def _table_json(ref: TableRef, fp: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": ref.schema,
        "name": ref.name,
        "kind": ref.kind,
        "pk": list(ref.pk),
        "partitions": list(ref.partitions),
        "bytes": ref.bytes,
        **fp,
    }


def new_set_dir(base: Path, when: dt.datetime) -> tuple[Path, Path]:
    """(partial directory to write into, final name) for a set taken at ``when``."""
    manifest.private_dir(base)
    name = when.strftime("%Y%m%dT%H%M%S") + f"{when.microsecond // 1000:03d}Z"
    final = base / name
    partial = base / f"{manifest.PARTIAL_PREFIX}{name}-{os.getpid()}"
    manifest.private_dir(partial)
    return partial, final


def export(
    db_url: str,
    base_dir: Path,
    *,
    s3: S3Endpoint | None,
    jobs: int = 2,
    compression: str = "none",
    s3_concurrency: int = 8,
    rls_sample: int = 5,
    pg_bindir: str | None = None,
    source_label: str | None = None,
    progress: Progress = _noop,
    timings: dict[str, float] | None = None,
    signing_key: str | None = None,
    encryption_key: bytes | None = None,
) -> Path:
    """Write one complete backup set below ``base_dir`` and return its directory.

    With ``encryption_key`` every file is encrypted (:mod:`.encryption`) and with
    ``signing_key`` the manifest is signed (:mod:`.signing`), both before the set gets its
    final name.

    Nothing is left behind on failure: the partial directory is removed and the error is
    raised. The set is renamed to its final name only once the manifest is complete.
    A database error becomes a :class:`SourceError` (``SourceConnectionLost`` when the
    connection broke, which the drill retries with a new snapshot).
    """
    cancel = Cancel()
    # The export runs in a thread so that this (main) thread stays free for signals: on
    # Ctrl-C, SIGTERM or a time limit it breaks the connections and stops pg_dump, then
    # waits for the export's own cleanup (the partial set removed) before re-raising.
    work = Background(
        lambda: _export(
            db_url,
            base_dir,
            s3=s3,
            jobs=jobs,
            compression=compression,
            s3_concurrency=s3_concurrency,
            rls_sample=rls_sample,
            pg_bindir=pg_bindir,
            source_label=source_label,
            progress=progress,
            timings={} if timings is None else timings,
            cancel=cancel,
            signing_key=signing_key,
            encryption_key=encryption_key,
        ),
        "supabase-restore-export",
    )
    try:
        while work.running:
            work.join(0.2)
    except BaseException:
        cancel.abort()
        work.join(60)
        raise
    try:
        return work.result()
    except psycopg.Error as exc:
        raise source_failure("Export", str(exc)) from exc
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise disk_full(base_dir) from exc
        raise


def disk_full(base_dir: Path) -> BackupError:
    return BackupError(
        f"The backup directory {base_dir} ran out of space ({NO_SPACE}) while the backup set "
        "was written; the incomplete set was removed. Fix: free space there or point "
        "--supabase-backup-dir at a larger disk."
    )


def _jobs_for_slots(conn: psycopg.Connection[Any], requested: int, progress: Progress) -> int:
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


def _export(
    db_url: str,
    base_dir: Path,
    *,
    s3: S3Endpoint | None,
    jobs: int,
    compression: str,
    s3_concurrency: int,
    rls_sample: int,
    pg_bindir: str | None,
    source_label: str | None,
    progress: Progress,
    timings: dict[str, float],
    cancel: Cancel,
    signing_key: str | None = None,
    encryption_key: bytes | None = None,
) -> Path:
    started = time.monotonic()
    probe = connect_source(db_url, cancel=cancel)
    try:
        major, version = server_version(probe)
        jobs = _jobs_for_slots(probe, jobs, progress)
    finally:
        probe.close()
    tools = find_client_tools(major, pg_bindir)  # before anything is written
    progress(f"source: PostgreSQL {version}; client tools {tools.version} in {tools.bindir}")

    snap = SnapshotExport(db_url, cancel)
    partial, final = new_set_dir(base_dir, snap.snapshot_time)
    reaper.watch_path(partial)  # never left behind, even if this process is killed
    dumper: subprocess.Popen[bytes] | None = None
    dump_err: Any = None
    fetcher: Background[TransferResult] | None = None
    try:
        scope = schemas_in_scope(snap.conn)
        tables = list_tables(snap.conn, scope)
        progress(
            f"snapshot {snap.snapshot_id} at {snap.snapshot_time.isoformat()}: {len(tables)} tables in {len(scope)} schemas"
        )
        buckets, db_objects = _storage_rows(snap.conn)
        login = snap.conn.execute(
            "SELECT current_user::text, rolsuper FROM pg_catalog.pg_roles "
            "WHERE rolname = current_user"
        ).fetchone()
        # The Storage download is network and hashing work: it runs beside pg_dump and the
        # fingerprints instead of after them.
        if s3 is not None:
            from .storage import download_all

            endpoint = s3
            fetcher = Background(
                lambda: download_all(
                    endpoint,
                    partial / "storage",
                    [b["id"] for b in buckets] or None,
                    concurrency=s3_concurrency,
                    progress=progress,
                    cancel=cancel.event,
                ),
                "supabase-restore-storage-export",
            )

        # The schema inventory is read before pg_dump starts. Everything in it is of the
        # snapshot except sequence positions, which no snapshot holds: read first, each is at
        # most what pg_dump then writes, so a sequence the source advances during the export
        # (every insert does) is never reported as set back by the restore.
        t0 = time.monotonic()
        conn = snap.importer()
        try:
            inventory = schema_inventory(conn, scope)
        finally:
            conn.rollback()
            conn.close()
        timings["schema_inventory"] = time.monotonic() - t0

        dump_args = [
            tools.path("pg_dump"),
            "--format=directory",
            f"--jobs={max(1, jobs)}",
            f"--snapshot={snap.snapshot_id}",
            f"--file={partial / 'db'}",
            "--no-password",
            "--quote-all-identifiers",
            *compression_args(tools, compression),
        ]
        for pattern in SCOPE_EXCLUDED_SCHEMAS:
            dump_args.append(f"--exclude-schema={pattern}")
        for table in EXCLUDED_TABLE_DATA:
            schema, _, name = table.partition(".")
            dump_args.append(f'--exclude-table-data="{schema}"."{name}"')
        # pg_dump runs as a child process while the proof is computed; on any failure or
        # interrupt it is stopped before the partial directory is removed.
        dump_err = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
        dump_started = time.monotonic()
        dumper = subprocess.Popen(
            dump_args,
            env=libpq_env(db_url),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=dump_err,
            start_new_session=True,  # its parallel workers are stopped with it (stop_group)
        )
        reaper.watch_process(dumper.pid)
        cancel.process(dumper)

        # While pg_dump runs, compute the proof in the same snapshot, in parallel.
        t0 = time.monotonic()
        fingerprints: dict[str, dict[str, Any]] = {}
        lock = threading.Lock()
        ordered = sorted(tables, key=lambda t: t.bytes, reverse=True)

        def work(ref: TableRef) -> None:
            conn = snap.importer()
            try:
                fp = fingerprint_table(conn, ref)
            except psycopg.Error as exc:
                raise source_failure(f"Reading {ref.qualified}", str(exc)) from exc
            finally:
                with contextlib.suppress(psycopg.Error):
                    conn.rollback()
                conn.close()
            with lock:
                fingerprints[ref.qualified] = _table_json(ref, fp)
                progress(
                    f"fingerprinted {ref.qualified}: {fp['rows']} rows ({len(fingerprints)}/{len(tables)})"
                )

        pool = ThreadPoolExecutor(max_workers=max(1, jobs))
        done = False
        try:
            for future in as_completed([pool.submit(work, ref) for ref in ordered]):
                future.result()
            done = True
        finally:  # the first failure stops the queue instead of reading every other table
            if not done:
                cancel.abort()
            pool.shutdown(wait=True, cancel_futures=True)
        timings["fingerprint"] = time.monotonic() - t0

        t0 = time.monotonic()
        conn = snap.importer()
        try:
            # What each extension provides: when a staging target cannot load one, the
            # restore tells its consequences from every other error by these names.
            extensions = extdeps.extension_members(conn)
            has_api_roles = conn.execute(
                "SELECT count(*) = 2 FROM pg_roles WHERE rolname IN ('anon', 'authenticated')"
            ).fetchone() == (True,)
            users: list[str] = []
            rls: dict[str, Any] = {"users": users, "visibility": {}}
            if has_api_roles:  # a plain PostgreSQL source has no Supabase API roles
                users = sample_users(conn, rls_sample)
                # Counted as PostgREST would for each identity; staging recounts under the
                # session recorded here.
                session = postgrest_session(conn)
                rls = {
                    "users": users,
                    "visibility": rls_visibility(conn, tables, users, session),
                    "session": session.to_json(),
                }
        finally:
            conn.rollback()
            conn.close()
        timings["inventory"] = time.monotonic() - t0
        progress(f"schema inventory, RLS visibility for {len(users)} users and anon")

        storage_section: dict[str, Any] = {
            "buckets": buckets,
            "objects": [],
            "db_objects": len(db_objects),
            "missing_in_s3": [],
            "unknown_to_db": [],
            "downloaded": False,
        }
        if fetcher is not None:
            result = fetcher.result()
            timings["storage_export"] = fetcher.seconds
            if any(NO_SPACE in e for e in result.errors):
                raise disk_full(base_dir)
            if result.errors:
                raise BackupError(
                    "Storage export failed: "
                    + "; ".join(result.errors[:5])
                    + (f" (+{len(result.errors) - 5} more)" if len(result.errors) > 5 else "")
                )
            listed = {(o.bucket, o.key) for o in result.objects}
            known = {(o["bucket"], o["key"]) for o in db_objects}
            storage_section["objects"] = [o.to_json() for o in result.objects]
            storage_section["missing_in_s3"] = [
                {"bucket": b, "key": k} for b, k in sorted(known - listed)
            ]
            storage_section["unknown_to_db"] = [
                {"bucket": b, "key": k} for b, k in sorted(listed - known)
            ]
            storage_section["downloaded"] = True
            progress(f"storage: {len(result.objects)} objects, {result.bytes} bytes")

        returncode = dumper.wait()
        timings["pg_dump"] = time.monotonic() - dump_started
        if returncode != 0:
            dump_err.seek(0)
            stderr = dump_err.read().decode(errors="replace")
            if NO_SPACE in stderr:
                raise disk_full(base_dir)
            raise source_failure(f"pg_dump failed (exit {returncode})", stderr)
        progress(f"pg_dump finished in {timings['pg_dump']:.1f}s")
        custom_roles = dump_roles(db_url, tools, partial / "roles.sql")
        manifest.restrict_tree(partial)

        data: dict[str, Any] = {
            "format": manifest.FORMAT,
            "version": manifest.VERSION,
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            "snapshot_time": snap.snapshot_time.isoformat(),
            "tool": {"name": "pytest-supabase-restore", "version": __version__},
            "source": {
                "label": source_label or mask_url(db_url),
                "server_version": version,
                "server_major": major,
                # Who the export logged in as: restored code runs no more privileged than this
                # role in staging (see the CRUD and materialized-view checks).
                "login_role": login[0] if login else None,
                "login_superuser": bool(login[1]) if login else None,
            },
            "pg_dump": {
                "version": tools.version,
                "major": tools.major,
                "options": [
                    a for a in dump_args[1:] if not a.startswith(("--file=", "--snapshot="))
                ],
                "compression": compression,
                "jobs": jobs,
            },
            "settings": SESSION_SETTINGS,
            "scope_schemas": scope,
            "excluded_schemas": list(SCOPE_EXCLUDED_SCHEMAS),
            "excluded_table_data": list(EXCLUDED_TABLE_DATA),
            "roles": custom_roles,
            "tables": fingerprints,
            "schema": inventory,
            "extensions": extensions,
            "rls": rls,
            "storage": storage_section,
            "timings": {k: round(v, 3) for k, v in timings.items()},
        }
        data["files"] = manifest.inventory_files(partial, jobs=max(2, jobs))
        if encryption_key is not None:
            from .encryption import encrypt_set

            t0 = time.monotonic()
            encrypt_set(partial, data, encryption_key, jobs=max(2, jobs))
            timings["encrypt"] = time.monotonic() - t0
            progress(f"encrypted {len(data['files'])} files")
        manifest.write_manifest(partial, data)
        if signing_key is not None:
            from .signing import sign_set

            sign_set(partial, signing_key)
        os.replace(partial, final)
        reaper.forget_path(partial)
        timings["export_total"] = time.monotonic() - started
        return final
    except BaseException:
        if dumper is not None:
            stop_group(dumper)
        if fetcher is not None:  # it must stop writing before the directory goes
            cancel.event.set()
            fetcher.join(60)
        shutil.rmtree(partial, ignore_errors=True)
        reaper.forget_path(partial)
        raise
    finally:
        if dumper is not None:
            reaper.forget_process(dumper.pid)
        if dump_err is not None:
            dump_err.close()
        snap.close()


def apply_retention(base: Path, keep: Path, count: int | None, days: float | None) -> list[Path]:
    """Delete older complete sets beyond ``count`` or ``days``; never ``keep``. Returns deleted."""
    sets = sorted(
        (p for p in base.iterdir() if p.is_dir() and (p / manifest.MANIFEST).is_file()),
        key=lambda p: p.name,
        reverse=True,
    )
    deleted: list[Path] = []
    now = time.time()
    for index, path in enumerate(sets):
        if path.resolve() == keep.resolve():
            continue
        too_many = count is not None and index >= count
        too_old = (
            days is not None and now - (path / manifest.MANIFEST).stat().st_mtime > days * 86400
        )
        if too_many or too_old:
            shutil.rmtree(path, ignore_errors=True)
            deleted.append(path)
    return deleted
