"""Export: one snapshot-consistent backup set of the database and every Storage object.

The source is only read. One connection opens a REPEATABLE READ, READ ONLY transaction and
exports its snapshot; ``pg_dump --snapshot`` dumps exactly that snapshot while other
connections import it to read the schema inventory, row-level security visibility and the
``storage.objects`` listing. Row counts and fingerprints come from the COPY lines pg_dump
wrote (:mod:`.proof.copyhash`): the table data is read from the source once, by pg_dump.
Everything the manifest says is therefore true of exactly what was dumped, even while
production keeps writing.

An export is a sequence of small phases over one :class:`_ExportRun`: probe the source,
take the snapshot, start pg_dump and the Storage download, read the proof beside them,
fingerprint the dump's data files, then write, encrypt, sign and name the set. Any failure removes the partial set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING

import psycopg

from . import __version__, extdeps, manifest
from . import source_reads as source_reads_mod
from .background import Background
from .backupdir import inventory_files, new_set_dir, restrict_tree
from .connections import mask_url
from .errors import BackupError, ToolError
from .model import (
    BucketEntry,
    DumpInfo,
    ExtensionEntry,
    Manifest,
    PlatformExport,
    RlsProof,
    SourceInfo,
    StorageSection,
    TableEntry,
)
from .pg.binaries import PgBinaries, find_client_tools
from .pgtools import NO_SPACE, libpq_env, stop_group
from .proof.copyhash import DecompressorMissing, DumpTable
from .proof.dumpfollow import hash_while_dumping
from .proof.dumpset import (
    Hashing,
    Layout,
    copy_read,
    copy_settings,
    layouts,
    python_encoding,
)
from .proof.fingerprint import fingerprint_table
from .proof.inventory import Inventory, schema_inventory
from .proof.postgrest import RlsSession, postgrest_session
from .proof.records import Fingerprint
from .proof.rls import rls_tables, rls_visibility, sample_users
from .proof.rlskeys import KeySample, Pick, plan_picks
from .proof.scope import (
    EXCLUDED_TABLE_DATA,
    SCOPE_EXCLUDED_SCHEMAS,
    SESSION_SETTINGS,
    TableRef,
    list_tables,
    schemas_in_scope,
)
from .reaper import reaper
from .results import SourceReads
from .source import (
    Cancel,
    SnapshotExport,
    StorageObjectRow,
    connect_source,
    dump_roles,
    jobs_for_slots,
    migration_history_of,
    platform_roles_of,
    server_version,
    source_failure,
    storage_rows,
)
from .storage.endpoint import S3Endpoint

if TYPE_CHECKING:
    from .storage.records import TransferResult

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


def _noop(_: str) -> None:
    pass


@dataclass(frozen=True)
class ExportOptions:
    """How an export runs. The keys never appear in a repr (or a log line made from one)."""

    jobs: int = 2  # pg_dump jobs and fingerprint processes (capped to the source's free slots)
    compression: str = "none"  # none | gzip:N | lz4 | zstd (see compression_args)
    s3_concurrency: int = 8  # parallel Storage downloads
    rls_sample: int = 5  # auth users whose row-level security visibility is recorded
    pg_bindir: str | None = None  # client tools to use instead of the discovered ones
    source_label: str | None = None  # what the manifest names the source (default: masked URL)
    signing_key: str | None = field(default=None, repr=False)
    encryption_key: bytes | None = field(default=None, repr=False)
    # Writes what the Management API gives beside the database (Edge Function bundles) into
    # the partial set and describes it; None without a token.
    # The Management API's part of the set (Edge Functions, settings): see .project_settings.
    platform: Callable[[Path], PlatformExport] | None = field(default=None, repr=False)


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


def export(
    db_url: str,
    base_dir: Path,
    *,
    s3: S3Endpoint | None,
    options: ExportOptions | None = None,
    progress: Progress = _noop,
    timings: dict[str, float] | None = None,
    source_reads: Callable[[SourceReads], None] | None = None,
) -> Path:
    """Write one complete backup set below ``base_dir`` and return its directory.

    With ``options.encryption_key`` every file is encrypted (:mod:`.encryption`) and with
    ``options.signing_key`` the manifest is signed (:mod:`.signing`), both before the set
    gets its final name.

    Nothing is left behind on failure: the partial directory is removed and the error is
    raised. The set is renamed to its final name only once the manifest is complete.
    A database error becomes a :class:`SourceError` (``SourceConnectionLost`` when the
    connection broke, which the drill retries with a new snapshot).

    ``source_reads``, when given, is called with what the export read from the source
    (:mod:`.source_reads`), when the source's statistics could be read.
    """
    before = source_reads_mod.counters(db_url) if source_reads is not None else None
    cancel = Cancel()
    run = _ExportRun(
        db_url,
        base_dir,
        s3,
        options or ExportOptions(),
        progress,
        {} if timings is None else timings,
        cancel,
    )
    # The export runs in a thread so that this (main) thread stays free for signals: on
    # Ctrl-C, SIGTERM or a time limit it breaks the connections and stops pg_dump, then
    # waits for the export's own cleanup (the partial set removed) before re-raising.
    work = Background(run.run, "supabase-restore-export")
    try:
        while work.running:
            work.join(0.2)
    except BaseException:
        cancel.abort()
        work.join(60)
        raise
    try:
        out = work.result()
    except psycopg.Error as exc:
        raise source_failure("Export", str(exc)) from exc
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise disk_full(base_dir) from exc
        raise
    if source_reads is not None and before is not None:
        measured = _measure_reads(db_url, before, run.proof.fingerprints)
        if measured is not None:
            source_reads(measured)
    return out


def _measure_reads(
    db_url: str, before: source_reads_mod.Counters, tables: dict[str, TableEntry]
) -> SourceReads | None:
    relations: list[tuple[str, str]] = []
    for entry in tables.values():
        read = entry.fingerprint.copy if entry.fingerprint else None
        if read is not None:
            relations += [(p.schema, p.name) for p in read.parts]
        else:
            relations.append((entry.schema, entry.name))
            for qualified in entry.partitions:
                schema, _, name = qualified.partition(".")
                relations.append((schema, name))
    rows = sum(e.rows for e in tables.values())
    return source_reads_mod.measure(db_url, before, rows, relations)


def disk_full(base_dir: Path) -> BackupError:
    return BackupError(
        f"The backup directory {base_dir} ran out of space ({NO_SPACE}) while the backup set "
        "was written; the incomplete set was removed. Fix: free space there or point "
        "--supabase-backup-dir at a larger disk."
    )


@dataclass
class _Proof:
    """What the export reads in the snapshot beside pg_dump."""

    fingerprints: dict[str, TableEntry] = field(default_factory=dict)
    inventory: Inventory = field(default_factory=dict)
    extensions: dict[str, ExtensionEntry] = field(default_factory=dict)
    rls: RlsProof = field(default_factory=RlsProof)
    # Before the dump: the sampled users and the session (None: no Supabase API roles),
    # the tables with RLS; beside the fingerprints: their key samples.
    rls_session: RlsSession | None = None
    rls_users: list[str] = field(default_factory=list)
    rls_tables: list[TableRef] = field(default_factory=list)
    picks: dict[str, Pick] = field(default_factory=dict)
    samples: dict[str, KeySample] = field(default_factory=dict)


class _ExportRun:
    """One export, phase by phase (see the module docstring)."""

    def __init__(
        self,
        db_url: str,
        base_dir: Path,
        s3: S3Endpoint | None,
        options: ExportOptions,
        progress: Progress,
        timings: dict[str, float],
        cancel: Cancel,
    ) -> None:
        self.db_url, self.base_dir, self.s3 = db_url, base_dir, s3
        self.options, self.progress, self.timings, self.cancel = options, progress, timings, cancel
        self.jobs = options.jobs
        self.dumper: subprocess.Popen[bytes] | None = None
        self.dump_err: IO[bytes] | None = None
        self.dump_args: list[str] = []
        self.fetcher: Background[TransferResult] | None = None
        self.hasher: Background[float] | None = None
        self.hashing: Hashing | None = None
        self.proof = _Proof()
        self.copy_settings: dict[str, str] = {}

    def run(self) -> Path:
        started = time.monotonic()
        major, version = self._probe()
        tools = find_client_tools(major, self.options.pg_bindir)  # before anything is written
        self.progress(
            f"source: PostgreSQL {version}; client tools {tools.version} in {tools.bindir}"
        )
        snap = SnapshotExport(self.db_url, self.cancel)
        partial, final = new_set_dir(self.base_dir, snap.snapshot_time)
        reaper.watch_path(partial)  # never left behind, even if this process is killed
        try:
            data = self._read_and_dump(snap, tools, partial, major, version)
            self._write(partial, data)
            os.replace(partial, final)
            reaper.forget_path(partial)
            self.timings["export_total"] = time.monotonic() - started
            return final
        except BaseException:
            self._stop_children()
            shutil.rmtree(partial, ignore_errors=True)
            reaper.forget_path(partial)
            raise
        finally:
            if self.dumper is not None:
                reaper.forget_process(self.dumper.pid)
            if self.dump_err is not None:
                self.dump_err.close()
            snap.close()

    def _probe(self) -> tuple[int, str]:
        probe = connect_source(self.db_url, cancel=self.cancel)
        try:
            major, version = server_version(probe)
            self.jobs = jobs_for_slots(probe, self.jobs, self.progress)
            # pg_dump's sessions start as this one does (role and database defaults).
            self.copy_settings = copy_settings(probe, quote_all_identifiers=True)
        finally:
            probe.close()
        return major, version

    def _read_layouts(self, snap: SnapshotExport, tables: list[TableRef]) -> dict[str, Layout]:
        """What pg_dump will copy of each table (catalog only, in the snapshot)."""
        conn = snap.importer()
        try:
            return layouts(conn, tables)
        finally:
            conn.rollback()
            conn.close()

    def _start_hashing(
        self, tools: PgBinaries, partial: Path, tables: list[TableRef], layout: dict[str, Layout]
    ) -> None:
        """Every table's fingerprint from the COPY lines pg_dump wrote (no second read of the
        source), each table hashed as soon as its data files are complete, while pg_dump
        writes the others (:mod:`.proof.dumpfollow`)."""
        refs = {t.qualified: t for t in tables}
        settings = self.copy_settings
        fingerprints, samples = self.proof.fingerprints, self.proof.samples

        def done(table: DumpTable, fp: Fingerprint, sample: KeySample | None) -> None:
            if sample is not None:
                samples[table.qualified] = sample
            fp = replace(fp, copy=copy_read(table, settings))
            fingerprints[table.qualified] = TableEntry.of(refs[table.qualified], fp)
            self.progress(
                f"fingerprinted {table.qualified}: {fp.rows} rows "
                f"({len(fingerprints)}/{len(tables)})"
            )

        hashing = Hashing(
            python_encoding(settings["client_encoding"]), max(1, self.jobs), done, self.proof.picks
        )
        dumper, stop = self.dumper, self.cancel.event
        assert dumper is not None

        def run() -> float:
            try:
                return hash_while_dumping(
                    dumper, tools, partial / "db", tables, layout, hashing, stop
                )
            finally:
                hashing.close(cancel=True)  # already closed after a full run

        self.hashing = hashing
        self.hasher = Background(run, "supabase-restore-hashing")

    def _finish_hashing(self, snap: SnapshotExport, tables: list[TableRef]) -> None:
        """Wait for the fingerprints; a table without a data file of its own (or whose
        file needs a decompressor that is not installed) is fingerprinted on the source."""
        assert self.hasher is not None and self.hashing is not None
        try:
            self.timings["fingerprint_after_dump"] = self.hasher.result()
        except DecompressorMissing as exc:
            self.progress(f"{exc}: fingerprinting on the source instead")
        started = self.hashing.started
        self.timings["fingerprint"] = time.monotonic() - started if started is not None else 0.0
        missing = [t for t in tables if t.qualified not in self.proof.fingerprints]
        if missing:
            self._fingerprint(snap, missing)

    def _read_and_dump(
        self, snap: SnapshotExport, tools: PgBinaries, partial: Path, major: int, version: str
    ) -> Manifest:
        scope = schemas_in_scope(snap.conn)
        tables = list_tables(snap.conn, scope)
        self.progress(
            f"snapshot {snap.snapshot_id} at {snap.snapshot_time.isoformat()}: "
            f"{len(tables)} tables in {len(scope)} schemas"
        )
        buckets, db_objects = storage_rows(snap.conn)
        login = snap.conn.execute(
            "SELECT current_user::text, rolsuper FROM pg_catalog.pg_roles "
            "WHERE rolname = current_user"
        ).fetchone()
        platform_roles = platform_roles_of(snap.conn)
        migration_history = migration_history_of(snap.conn)
        self._start_storage(partial, buckets, db_objects)
        self._read_inventory(snap, scope)
        layout = self._read_layouts(snap, tables)
        self._start_dump(snap, tools, partial)
        self._plan_rls(snap, tables, layout)
        self._start_hashing(tools, partial, tables, layout)
        storage_section = self._storage_section(buckets, db_objects)
        self._finish_dump()
        self._finish_hashing(snap, tables)
        self._read_rls(snap)  # the snapshot's transaction is still open (closed by run())
        custom_roles = dump_roles(self.db_url, tools, partial / "roles.sql")
        platform = self.options.platform(partial) if self.options.platform else PlatformExport()
        restrict_tree(partial)
        return Manifest(
            format=manifest.FORMAT,
            version=manifest.VERSION,
            created_at=dt.datetime.now(dt.timezone.utc).isoformat(),
            snapshot_time=snap.snapshot_time.isoformat(),
            tool_version=__version__,
            source=SourceInfo(
                server_major=major,
                server_version=version,
                label=self.options.source_label or mask_url(self.db_url),
                login_role=login[0] if login else None,
                login_superuser=bool(login[1]) if login else None,
                platform_roles=tuple(platform_roles),
                migration_history=migration_history,
            ),
            pg_dump=DumpInfo(
                version=tools.version,
                major=tools.major,
                options=tuple(
                    a for a in self.dump_args[1:] if not a.startswith(("--file=", "--snapshot="))
                ),
                compression=self.options.compression,
                jobs=self.jobs,
            ),
            settings=dict(SESSION_SETTINGS),
            scope_schemas=tuple(scope),
            excluded_schemas=tuple(SCOPE_EXCLUDED_SCHEMAS),
            excluded_table_data=tuple(EXCLUDED_TABLE_DATA),
            roles=tuple(custom_roles),
            tables=self.proof.fingerprints,
            schema=self.proof.inventory,
            extensions=self.proof.extensions,
            rls=self.proof.rls,
            storage=storage_section,
            functions=platform.functions,
            project_settings=platform.settings,
            manual_restore=platform.manual_restore,
        )

    def _start_storage(
        self, partial: Path, buckets: list[BucketEntry], rows: list[StorageObjectRow]
    ) -> None:
        # The Storage download is network and hashing work: it runs beside pg_dump and the
        # fingerprints instead of after them.
        if self.s3 is None:
            return
        from .storage.download import download_all, expected_total

        endpoint, event, expected = self.s3, self.cancel.event, expected_total(rows)
        self.fetcher = Background(
            lambda: download_all(
                endpoint,
                partial / "storage",
                [b.id for b in buckets] or None,
                concurrency=self.options.s3_concurrency,
                progress=self.progress,
                cancel=event,
                expected=expected,
            ),
            "supabase-restore-storage-export",
        )

    def _read_inventory(self, snap: SnapshotExport, scope: list[str]) -> None:
        # Read before pg_dump starts. Everything in it is of the snapshot except sequence
        # positions, which no snapshot holds: read first, each is at most what pg_dump then
        # writes, so a sequence the source advances during the export (every insert does)
        # is never reported as set back by the restore.
        t0 = time.monotonic()
        conn = snap.importer()
        try:
            self.proof.inventory = schema_inventory(conn, scope)
            # What each extension provides: when a staging target cannot load one, the
            # restore tells its consequences from every other error by these names.
            self.proof.extensions = extdeps.extension_members(conn)
        finally:
            conn.rollback()
            conn.close()
        self.timings["schema_inventory"] = time.monotonic() - t0

    def _start_dump(self, snap: SnapshotExport, tools: PgBinaries, partial: Path) -> None:
        self.dump_args = [
            tools.path("pg_dump"),
            "--format=directory",
            f"--jobs={max(1, self.jobs)}",
            f"--snapshot={snap.snapshot_id}",
            f"--file={partial / 'db'}",
            "--no-password",
            "--quote-all-identifiers",
            *compression_args(tools, self.options.compression),
        ]
        for pattern in SCOPE_EXCLUDED_SCHEMAS:
            self.dump_args.append(f"--exclude-schema={pattern}")
        for table in EXCLUDED_TABLE_DATA:
            schema, _, name = table.partition(".")
            self.dump_args.append(f'--exclude-table-data="{schema}"."{name}"')
        # pg_dump runs as a child process while the proof is computed; on any failure or
        # interrupt it is stopped before the partial directory is removed.
        self.dump_err = tempfile.TemporaryFile()  # noqa: SIM115 - closed when the run ends
        self.dump_started = time.monotonic()
        self.dumper = subprocess.Popen(
            self.dump_args,
            env=libpq_env(self.db_url),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.dump_err,
            start_new_session=True,  # its parallel workers are stopped with it (stop_group)
        )
        reaper.watch_process(self.dumper.pid)
        self.cancel.process(self.dumper)

    def _fingerprint(self, snap: SnapshotExport, tables: list[TableRef]) -> None:
        """Fingerprints read on the source, in the snapshot, in parallel."""
        t0 = time.monotonic()
        lock = threading.Lock()
        fingerprints = self.proof.fingerprints

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
                fingerprints[ref.qualified] = TableEntry.of(ref, fp)
                self.progress(
                    f"fingerprinted {ref.qualified}: {fp.rows} rows "
                    f"({len(fingerprints)}/{len(tables)})"
                )

        ordered = sorted(tables, key=lambda t: t.bytes, reverse=True)
        pool = ThreadPoolExecutor(max_workers=max(1, self.jobs))
        done = False
        try:
            for future in as_completed([pool.submit(work, ref) for ref in ordered]):
                future.result()
            done = True
        finally:  # the first failure stops the queue instead of reading every other table
            if not done:
                self.cancel.abort()
            pool.shutdown(wait=True, cancel_futures=True)
        self.timings["fingerprint_source"] = time.monotonic() - t0

    def _plan_rls(
        self, snap: SnapshotExport, tables: list[TableRef], layout: dict[str, Layout]
    ) -> None:
        """Beside pg_dump: whom to sample, the session to evaluate in, which tables have RLS
        (the keys are then picked from the dump's lines, :meth:`_fingerprint_dump`)."""
        t0 = time.monotonic()
        conn = snap.importer()
        try:
            has_api_roles = conn.execute(
                "SELECT count(*) = 2 FROM pg_roles WHERE rolname IN ('anon', 'authenticated')"
            ).fetchone() == (True,)
            if has_api_roles:  # a plain PostgreSQL source has no Supabase API roles
                self.proof.rls_users = sample_users(conn, self.options.rls_sample)
                # Evaluated as PostgREST would for each identity; staging evaluates again
                # under the session recorded here.
                self.proof.rls_session = postgrest_session(conn)
                self.proof.rls_tables = rls_tables(conn, tables)
                dumped = {  # the columns every part's COPY writes
                    name: set.intersection(*(set(p.columns) for p in lay.parts))
                    for name, lay in layout.items()
                    if lay.parts
                }
                self.proof.picks = plan_picks(
                    conn, self.proof.rls_tables, dumped, self.proof.rls_users
                )
        finally:
            conn.rollback()
            conn.close()
        self.timings["inventory"] = time.monotonic() - t0

    def _read_rls(self, snap: SnapshotExport) -> None:
        """What each identity sees of the sampled keys (index lookups) and, of a table
        without a sample, of every row, in the snapshot."""
        plan = self.proof
        if plan.rls_session is None:
            return
        t0 = time.monotonic()
        counted = {
            t.qualified: "its dump lines were not read (fingerprinted on the source instead)"
            if t.qualified in plan.picks
            else "no primary key and no plain B-tree index to look keys up by"
            for t in plan.rls_tables
            if t.qualified not in plan.samples
        }
        conn = snap.importer()
        try:
            visibility = rls_visibility(
                conn, plan.rls_tables, plan.rls_users, plan.rls_session, plan.samples
            )
        finally:
            conn.rollback()
            conn.close()
        self.proof.rls = RlsProof(
            users=tuple(plan.rls_users),
            visibility=visibility,
            session=plan.rls_session,
            samples=dict(plan.samples),
            counted=counted,
        )
        self.timings["rls"] = time.monotonic() - t0
        keys = sum(len(s.keys) for s in plan.samples.values())
        self.progress(
            f"RLS visibility for {len(plan.rls_users)} users and anon: {keys} sampled keys "
            f"in {len(plan.samples)} tables, {len(counted)} tables counted in full"
        )

    def _storage_section(
        self, buckets: list[BucketEntry], db_objects: list[StorageObjectRow]
    ) -> StorageSection:
        if self.fetcher is None:
            return StorageSection(buckets=tuple(buckets), db_objects=len(db_objects))
        result = self.fetcher.result()
        self.timings["storage_export"] = self.fetcher.seconds
        if any(NO_SPACE in e for e in result.errors):
            raise disk_full(self.base_dir)
        if result.errors:
            raise BackupError(
                "Storage export failed: "
                + "; ".join(result.errors[:5])
                + (f" (+{len(result.errors) - 5} more)" if len(result.errors) > 5 else "")
            )
        listed = {(o.bucket, o.key) for o in result.objects}
        known = {(bucket, key) for bucket, key, _size in db_objects}
        self.progress(f"storage: {len(result.objects)} objects, {result.bytes} bytes")
        return StorageSection(
            buckets=tuple(buckets),
            objects=tuple(result.objects),
            db_objects=len(db_objects),
            missing_in_s3=tuple(sorted(known - listed)),
            unknown_to_db=tuple(sorted(listed - known)),
            downloaded=True,
        )

    def _finish_dump(self) -> None:
        assert self.dumper is not None and self.dump_err is not None
        returncode = self.dumper.wait()
        self.timings["pg_dump"] = time.monotonic() - self.dump_started
        if returncode != 0:
            self.dump_err.seek(0)
            stderr = self.dump_err.read().decode(errors="replace")
            if NO_SPACE in stderr:
                raise disk_full(self.base_dir)
            raise source_failure(f"pg_dump failed (exit {returncode})", stderr)
        self.progress(f"pg_dump finished in {self.timings['pg_dump']:.1f}s")

    def _write(self, partial: Path, data: Manifest) -> None:
        """The manifest (with every file's hash), encrypted and signed when asked."""
        jobs = max(2, self.jobs)
        t0 = time.monotonic()
        files = inventory_files(partial, jobs=jobs, content_named=True)
        self.timings["files"] = time.monotonic() - t0
        data = dataclasses.replace(
            data, timings={k: round(v, 3) for k, v in self.timings.items()}, files=files
        )
        if self.options.encryption_key is not None:
            from .encryption import encrypt_set

            t0 = time.monotonic()
            data = encrypt_set(partial, data, self.options.encryption_key, jobs=jobs)
            self.timings["encrypt"] = time.monotonic() - t0
            self.progress(f"encrypted {len(data.files)} files")
        manifest.write_manifest(partial, data)
        if self.options.signing_key is not None:
            from .signing import sign_set

            sign_set(partial, self.options.signing_key)

    def _stop_children(self) -> None:
        if self.dumper is not None:
            stop_group(self.dumper)
        # The hashing reads the directory and the Storage download writes into it: both stop
        # before it goes.
        self.cancel.event.set()
        for worker in (self.hasher, self.fetcher):
            if worker is not None:
                worker.join(60)
