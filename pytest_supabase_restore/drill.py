"""The drill: source -> export -> integrity check -> staging -> restore, once per run.

The controller process runs it before collection (so that smoke tests can be parametrized
from the manifest, and so that one process owns every server it starts: teardown cannot be
skipped because a worker exited early). Its outcome is a :class:`DrillState` that workers
read from the run directory.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from . import manifest as mf
from .background import Background
from .cleanup import Step, remove_dir, run_steps
from .config import Config
from .connections import mask_url
from .deadline import deadline
from .errors import BackupError, DrillError, SourceConnectionLost, first_line
from .progress import Amount, Tally, Work, dump_bytes, restore_amounts
from .reaper import reaper
from .redact import Redactor
from .results import DrillState, SourceReads
from .staging import resolve_kind
from .storage.endpoint import S3Endpoint, connection_endpoint
from .supabase_cli import accept_cli_dump, is_cli_dump

if TYPE_CHECKING:
    from .model import Manifest, PlatformExport
    from .pg.binaries import PgBinaries
    from .restore import RestoreOutcome
    from .staging.base import StagingTarget
    from .storage.records import ObjectRecord, TransferResult

log = logging.getLogger(__name__)
Progress = Callable[[str], None]

# A connection lost during the export is retried this many times in all, with a new snapshot.
EXPORT_ATTEMPTS = 2
EXPORT_RETRY_DELAY = 5.0


def source_s3(settings: Config) -> S3Endpoint | None:
    return connection_endpoint(settings.source)


class Drill:
    """Runs the drill and owns everything it starts until :meth:`teardown`."""

    def __init__(
        self,
        settings: Config,
        run_dir: Path,
        progress: Progress,
        redactor: Redactor | None = None,
    ) -> None:
        self.settings = settings
        self.run_dir = run_dir
        self.progress = progress
        # Messages the drill stores are shortened; they are redacted with this first.
        self.redactor = redactor if redactor is not None else Redactor(settings.secrets())
        self.state = DrillState(enabled=True, keep_staging=settings.keep_staging)
        self.state.rto_budget_seconds = settings.rto_budget
        self.demo: Any = None
        self.staging: StagingTarget | None = None
        self._temp_backups: Path | None = None
        self._decrypted: Path | None = None  # an encrypted set's plaintext, removed at teardown
        self._restore_dir: Path | None = None  # what the restore reads (the set or _decrypted)
        self._roles: list[str] = []  # roles.sql's statements, as the integrity check accepted
        self._dump: int | None = None  # the size of the dump the restore reads
        self._upload: Tally | None = None  # the Storage upload's progress
        self.current_phase = "source"

    # -- phases ---------------------------------------------------------------------------
    def _timed(self, name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.monotonic()
        self.current_phase = name
        self.progress(f"{name} ...")
        try:
            result = fn()
        except BaseException as exc:
            self.state.add_phase(name, time.monotonic() - t0, ok=False, detail=type(exc).__name__)
            raise
        self.state.add_phase(name, time.monotonic() - t0)
        return result

    def work(self) -> Work | list[Amount] | None:
        """What the running phase has done, for the progress heartbeat: the export's partial
        backup set (its final size is not known: no total); in the restore, the dump read
        (of known size), the staging data directory and the Storage upload (of known size)."""
        if self.current_phase == "export":
            base = self.settings.backup_dir or self._temp_backups
            if base is None or not base.is_dir():
                return None
            return "written", [p for p in base.iterdir() if p.name.startswith(mf.PARTIAL_PREFIX)]
        cluster = getattr(self.staging, "cluster", None)
        data_dir = cluster.data_dir if cluster is not None and cluster.base_dir else None
        return restore_amounts(self.current_phase, self._dump, data_dir, self._upload)

    def run(self) -> DrillState:
        """Run every phase; past the settings' ``drill_time_limit``, stop and FAIL."""
        with deadline(self.settings.drill_time_limit, lambda: self.current_phase):
            return self._run()

    def _run(self) -> DrillState:
        state = self.state
        phase = "source"
        self._platform_health()
        try:
            db_url, s3 = self._source()
            if self.settings.dry_run:
                phase = "dry-run"
                state.mode = "dry-run"
                self._dry_run(db_url, s3)
                return state
            if self.settings.from_backup is not None:
                state.mode = "from-backup"
                set_dir = self.settings.from_backup.resolve()
            else:
                phase = "export"
                set_dir = self._timed("export", lambda: self._export(db_url, s3))
            state.backup_dir = str(set_dir)
            phase = "integrity"
            manifest = self._timed("integrity", lambda: self._integrity(set_dir))
            phase = "restore"
            self._restore(self._restore_dir or set_dir, manifest, db_url)
        except DrillError as exc:
            state.error = str(exc)
            state.error_phase = phase
            self.progress(_failed(phase))
        except psycopg.Error as exc:
            state.error = f"{phase}: database error: {first_line(exc, repr(exc))}"
            state.error_phase = phase
            self.progress(_failed(phase))
        except Exception as exc:  # a FAIL with the cause, never an INTERNALERROR
            text = first_line(exc)
            state.error = self.redactor.shorten(f"{phase}: {type(exc).__name__}: {text}", 1000)
            state.error_phase = phase
            self.progress(_failed(phase))
        return state

    def _platform_health(self) -> None:
        """The platform's own backups (only with SUPABASE_ACCESS_TOKEN; it never raises)."""
        if not self.settings.access_token:
            return
        from .platform_health import health_lines, read_health

        self.state.platform = health = read_health(self.settings)
        if health is not None:
            for line in health_lines(health)[:-1]:
                self.progress(self.redactor.line(line, 500))

    def _platform_facts(self, set_dir: Path, manifest: Manifest, staging: StagingTarget) -> None:
        """The backup's manual restore steps and what a Supabase-project target runs
        differently from it, into the platform section (with a token only)."""
        health = self.state.platform
        if health is None:
            return
        health.manual_restore = list(manifest.manual_restore)
        try:
            health.branch_differences = staging.platform_differences(set_dir, manifest)
        except DrillError as exc:
            health.branch_differences = [f"could not be compared: {exc}"]
        for line in health.branch_differences:
            self.progress(self.redactor.line(f"the branch differs from the backup: {line}", 500))

    def _source(self) -> tuple[str | None, S3Endpoint | None]:
        if self.settings.demo:
            from .demo import DemoProject

            def start() -> Any:
                self.demo = DemoProject(scale=self.settings.demo_scale)
                return self.demo.start()

            demo = self._timed("demo_start", start)
            self.state.source_label = f"demo project (scale {self.settings.demo_scale})"
            for line in demo.missing:
                self.progress(f"demo: {line}")
                self.state.not_tested.append(f"demo: {line}")
            return str(demo.db_url), demo.s3
        if self.settings.source.db_url:
            self.state.source_label = mask_url(self.settings.source.db_url)
        s3 = source_s3(self.settings)
        if s3 is None and self.settings.from_backup is None:
            self.state.storage_not_exported = True
            self.state.not_tested.append(NO_S3_SETTINGS)
        return self.settings.source.db_url, s3

    def _export(self, db_url: str | None, s3: S3Endpoint | None) -> Path:
        from .backupdir import apply_retention
        from .export import ExportOptions, export

        assert db_url is not None
        if self.settings.backup_dir is not None:
            base = self.settings.backup_dir.resolve()
        else:
            self._temp_backups = Path(tempfile.mkdtemp(prefix="supabase-restore-backups-"))
            reaper.watch_path(self._temp_backups)
            base = self._temp_backups
        timings: dict[str, float] = {}
        reads: list[SourceReads] = []
        for attempt in range(1, EXPORT_ATTEMPTS + 1):
            try:
                out = export(
                    db_url,
                    base,
                    s3=s3,
                    options=ExportOptions(
                        jobs=self.settings.effective_jobs,
                        compression=self.settings.compression,
                        s3_concurrency=self.settings.s3_concurrency,
                        rls_sample=self.settings.rls_sample,
                        pg_bindir=str(self.settings.pg_bindir) if self.settings.pg_bindir else None,
                        source_label=self.state.source_label,
                        signing_key=self.settings.signing_key,
                        encryption_key=self._encryption_key(),
                        platform=self._platform_exporter(),
                    ),
                    progress=self.progress,
                    timings=timings,
                    source_reads=reads.append,
                )
                break
            except SourceConnectionLost as exc:
                # A snapshot cannot be resumed: a lost connection means a new export.
                self.state.export_retries.append(str(exc))
                if attempt == EXPORT_ATTEMPTS:
                    raise SourceConnectionLost(
                        f"gave up after {attempt} attempts: {exc}"  # first: messages get shortened
                    ) from exc
                self.progress(
                    f"export attempt {attempt} failed: {exc}; retrying with a new snapshot "
                    f"in {EXPORT_RETRY_DELAY:.0f}s"
                )
                time.sleep(EXPORT_RETRY_DELAY)
        self.state.export_timings = {k: round(v, 3) for k, v in timings.items()}
        self.state.source_reads = reads[-1] if reads else None
        if self.settings.backup_dir is not None and (
            self.settings.retain_count is not None or self.settings.retain_days is not None
        ):
            deleted = apply_retention(
                base, out, self.settings.retain_count, self.settings.retain_days
            )
            if deleted:
                self.progress(f"retention: deleted {len(deleted)} older backup set(s)")
        return out

    def _platform_exporter(self) -> Callable[[Path], PlatformExport] | None:
        """Edge Function bundles, Auth and Storage settings and the manual restore steps into
        the set (only with SUPABASE_ACCESS_TOKEN and a ref)."""
        from .config import project_ref

        ref = project_ref(self.settings)
        if not self.settings.access_token or ref is None:
            return None
        from .management import ManagementApi
        from .project_settings import export_platform

        api = ManagementApi(self.settings.access_token, self.settings.management_api_url, ref)
        return partial(export_platform, api)

    def _encryption_key(self) -> bytes | None:
        if self.settings.encryption_key is None:
            return None
        from .encryption import parse_key

        return parse_key(self.settings.encryption_key)

    def _integrity(self, set_dir: Path) -> Manifest | None:
        """Check the set before anything of it is used: signature (with a signing key), the
        manifest's every field, every file, no symbolic link, decryption of an encrypted set,
        and roles.sql's statements. Any problem is a BackupError."""
        from . import signing
        from .restore import role_statements

        if not set_dir.is_dir():
            raise BackupError(f"{set_dir}: not a directory.")
        if is_cli_dump(set_dir):
            self._roles = accept_cli_dump(set_dir, self.state, self.settings.signing_key)
            return None
        self.state.backup_format = "manifest"
        if self.settings.signing_key is not None:
            signing.verify_set(set_dir, self.settings.signing_key)
            self.state.signature = "verified"
        elif signing.is_signed(set_dir):
            self.state.signature = "not verified"
            self.state.not_tested.append(
                f"signature: the backup set is signed ({mf.SIGNATURE}) but "
                f"{signing.SIGNING_ENV} is not set, so where it came from was not verified"
            )
        manifest = mf.read_manifest(set_dir)
        problems = mf.verify_files(set_dir, manifest, jobs=self.settings.effective_jobs)
        if not problems and manifest.encrypted:
            problems = self._decrypt(set_dir, manifest)
        self.state.integrity_problems = problems
        if problems:
            shown = "; ".join(problems[:5]) + (
                f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
            )
            raise BackupError(f"The backup set {set_dir.name} failed its integrity check: {shown}")
        self._roles = role_statements(self._restore_dir or set_dir)
        self.state.snapshot_time = manifest.snapshot_time
        self.state.server_version = manifest.source.server_version
        self.state.tool_version = manifest.pg_dump.version
        self.state.backup = manifest.sizes()
        storage = manifest.storage
        if not storage.buckets and not storage.db_objects:
            # A database-only project: the storage category passes, vacuously, and says why
            # (no S3 settings are then no gap: there was nothing to back up).
            self.state.not_applicable["storage"] = NO_BUCKETS
            self.state.not_tested = [t for t in self.state.not_tested if t != NO_S3_SETTINGS]
        elif not storage.downloaded and not self.state.storage_not_exported:
            self.state.not_tested.append("storage: the backup set holds no Storage objects")
        history = manifest.source.migration_history
        if history:
            self.state.not_tested.append(
                f"supabase_migrations: the Supabase CLI's history of {history} applied "
                "migration(s) is not part of the backup (as in the CLI's own dumps); after a "
                "real restore, mark them applied with `supabase migration repair`"
            )
        return manifest

    def _decrypt(self, set_dir: Path, manifest: Manifest) -> list[str]:
        """Decrypt an encrypted set into a private temporary directory (removed at teardown,
        also by the reaper if this process dies); the restore then reads from there."""
        from .encryption import ENCRYPTION_ENV, decrypt_set

        key = self._encryption_key()
        if key is None:
            raise BackupError(
                f"The backup set {set_dir.name} is encrypted, and {ENCRYPTION_ENV} is not set: "
                "set it to the key the set was exported with."
            )
        self._decrypted = Path(tempfile.mkdtemp(prefix="supabase-restore-decrypted-"))
        reaper.watch_path(self._decrypted)
        self.progress(f"decrypting {len(manifest.files)} files into {self._decrypted}")
        problems = decrypt_set(
            set_dir, manifest, key, self._decrypted, jobs=self.settings.effective_jobs
        )
        self._restore_dir = self._decrypted
        return problems

    def _start_staging(self, major: int, db_url: str | None) -> StagingTarget:
        kind = resolve_kind(self.settings.staging)
        if kind == "ephemeral":
            from .staging.ephemeral import EphemeralStaging

            return EphemeralStaging.start(
                major, str(self.settings.pg_bindir) if self.settings.pg_bindir else None
            )
        if kind == "container":
            from .staging.container import ContainerStaging

            return ContainerStaging.start(major)
        from .staging.url import UrlStaging

        # Compared with every source of this run: the one exported (the demo's, too) and
        # SUPABASE_DB_URL.
        sources = list(dict.fromkeys(u for u in (db_url, self.settings.source.db_url) if u))

        def warn(line: str) -> None:
            self.progress(line)
            self.state.not_tested.append(line)

        if kind == "branch":
            from .staging.branch import BranchStaging

            return BranchStaging.create(self.settings, sources, progress=self.progress, warn=warn)
        return UrlStaging.open(self.settings.target, sources, progress=self.progress, warn=warn)

    def _restore(self, set_dir: Path, manifest: Manifest | None, db_url: str | None) -> None:
        from .pg.binaries import find_client_tools
        from .restore_report import error_summary

        state = self.state
        major = manifest.source.server_major if manifest else 15
        rto_start = time.monotonic()
        staging = self._timed("staging_start", lambda: self._start_staging(major, db_url))
        self.staging = staging
        self.current_phase = "restore"
        state.staging_kind = staging.kind
        state.staging_label = staging.label
        state.staging_server_version = staging.server_version
        staging.prepare(manifest)
        tools = find_client_tools(
            major, str(self.settings.pg_bindir) if self.settings.pg_bindir else None
        )
        objects = manifest.storage.objects if manifest else ()
        self._dump = dump_bytes(set_dir / "db") if manifest is not None else None
        uploader = self._start_storage_restore(set_dir, objects, staging)
        outcome = self._restore_database(set_dir, manifest, staging, tools)
        staging.after_restore()
        self._record_outcome(outcome, staging)
        if manifest is not None:
            self._platform_facts(set_dir, manifest, staging)
        state.staging_api = staging.api_state()
        if uploader is not None:
            self._finish_storage_restore(uploader, staging)
        elif objects:
            self._own_storage_restore(set_dir, objects, staging)

        with psycopg.connect(staging.dsn, connect_timeout=15) as conn:
            conn.execute("SELECT 1")
        state.rto_seconds = round(time.monotonic() - rto_start, 3)
        state.staging_dsn = staging.dsn
        if outcome.unexpected:
            state.error = error_summary(outcome.unexpected)
            state.error_phase = "restore"
        if self.settings.self_test and manifest is not None and state.error is None:
            self._self_test(staging.dsn, manifest)
        self.progress(
            f"restored into {staging.label} in {state.rto_seconds:.1f}s "
            f"({len(outcome.issues)} restore message(s), {len(outcome.unexpected)} unexpected)"
        )

    def _restore_database(
        self,
        set_dir: Path,
        manifest: Manifest | None,
        staging: StagingTarget,
        tools: PgBinaries,
    ) -> RestoreOutcome:
        from .restore import restore_backup_set, restore_cli_dump

        if manifest is None:
            return restore_cli_dump(
                set_dir,
                staging.dsn,
                prepare_sql=staging.prepare_cli_sql,
                progress=self.progress,
                roles=self._roles,
                redactor=self.redactor,
                cron_inert=staging.cron_inert,
            )
        return restore_backup_set(
            set_dir,
            staging.dsn,
            tools,
            jobs=self.settings.effective_jobs,
            platform_present=staging.platform_present,
            prepare_sql=staging.prepare_sql,
            progress=self.progress,
            roles=self._roles,
            redactor=self.redactor,
            cron_inert=staging.cron_inert,
            manifest=manifest,
        )

    def _record_outcome(self, outcome: RestoreOutcome, staging: StagingTarget) -> None:
        """What the restore did, in the drill state: phases, messages, what it switched off
        and what the target could not restore."""
        from .extdeps import dependents_by_extension, not_restorable_line

        state = self.state
        for name, seconds in outcome.phases.items():
            state.add_phase(name, seconds)
        state.restore_issues = outcome.issues
        state.not_restorable = outcome.not_restorable
        state.neutralised = outcome.neutralised
        state.disabled_triggers = outcome.disabled_triggers
        if any(n.startswith("pg_cron:") and "deactivated" in n for n in outcome.neutralised):
            state.altered_tables["cron.job"] = (
                "its jobs were deactivated in staging so that none runs there (this target's "
                "pg_cron scheduler is not under the drill's control)"
            )
        state.extension_dependents = dict(outcome.extension_dependents)
        dependents = dependents_by_extension(outcome.extension_dependents)
        for item in outcome.not_restorable:
            name = item.removeprefix("extension ")
            state.not_tested.append(
                not_restorable_line(item, staging.kind, dependents.get(name, []))
            )

    def _finish_storage_restore(
        self, uploader: Background[TransferResult], staging: StagingTarget
    ) -> None:
        self.current_phase = "storage"
        uploader.join()
        self.state.add_phase("storage", uploader.seconds, ok=uploader.error is None)
        result = uploader.result()
        if result.errors:
            raise DrillError("Storage restore failed: " + "; ".join(result.errors[:5]))
        self.state.staging_s3 = staging.s3_state()

    def _own_storage_restore(
        self, set_dir: Path, objects: Sequence[ObjectRecord], staging: StagingTarget
    ) -> None:
        """The objects into a target without an S3 endpoint, by its own means (a branch:
        its Storage API); said under not tested when it has none."""
        self.current_phase = "storage"
        started = time.monotonic()
        result = staging.restore_objects(
            set_dir / "storage",
            objects,
            concurrency=self.settings.s3_concurrency,
            progress=self.progress,
        )
        if result is None:
            self.state.not_tested.append(
                "storage restore: no staging object store (STAGING_S3_ENDPOINT)"
            )
            return
        self.state.add_phase("storage", time.monotonic() - started, ok=not result.errors)
        if result.errors:
            raise DrillError("Storage restore failed: " + "; ".join(result.errors[:5]))

    def _start_storage_restore(
        self, set_dir: Path, objects: Sequence[ObjectRecord], staging: StagingTarget
    ) -> Background[TransferResult] | None:
        """Upload the Storage objects into staging in a thread, beside the database restore
        (the two use different servers). Collected, and its errors raised, after the restore."""
        if not objects or staging.s3 is None:
            return None
        from .storage.upload import upload_all

        records = list(objects)
        target = staging.s3
        self._upload = tally = Tally(sum(r.size for r in records), len(records))
        self.progress(f"storage: uploading {len(records)} objects beside the database restore")
        return Background(
            lambda: upload_all(
                target,
                records,
                set_dir / "storage",
                concurrency=self.settings.s3_concurrency,
                progress=self.progress,
                tally=tally,
            ),
            "supabase-restore-storage",
        )

    def _self_test(self, dsn: str, manifest: Manifest) -> None:
        from .selftest import run_self_test

        try:
            results = self._timed("self_test", lambda: run_self_test(dsn, manifest))
        except psycopg.Error as exc:  # no scratch copy: no fault was injected
            from .results import FaultResult

            why = self.redactor.shorten(f"could not make a scratch copy ({exc})", 300)
            self.state.self_test = [FaultResult("scratch copy", "self-test", False, why, False)]
            return
        for r in results:  # shortened for the report, after redaction
            r.evidence = self.redactor.shorten(r.evidence, 300)
        self.state.self_test = results
        for r in results:
            verdict = "caught" if r.caught else "NOT CAUGHT" if r.injected else "NOT INJECTED"
            self.progress(f"self-test: {r.fault} -> {r.category}: {verdict}")

    def _dry_run(self, db_url: str | None, s3: S3Endpoint | None) -> None:
        from .dryrun import dry_run

        sources = list(dict.fromkeys(u for u in (db_url, self.settings.source.db_url) if u))
        dry_run(self.settings, db_url, s3, sources, self.state, self.progress)

    # -- teardown -------------------------------------------------------------------------
    def teardown(self) -> list[str]:
        """Stop everything this drill started, each step best effort: one that fails is
        logged (naming the step, secrets redacted) and every other one still runs. Returns
        messages for the terminal. Safe to call again: nothing is stopped twice."""
        messages: list[str] = []
        steps: list[Step] = []
        staging, self.staging = self.staging, None
        if staging is not None:
            if self.settings.keep_staging and staging.disposable:
                steps.append(("hand over the kept staging target", staging.release))
                steps.append(
                    ("say how to reach the kept staging", lambda: messages.append(_kept(staging)))
                )
            else:
                steps.append((f"stop the staging target ({staging.label})", staging.stop))
        demo, self.demo = self.demo, None
        if demo is not None:
            steps.append(("stop the demo project", demo.stop))
        for temp in (self._temp_backups, self._decrypted):
            if temp is not None:
                steps.append((f"remove {temp}", partial(remove_dir, temp)))
        failures = run_steps(steps, redactor=self.redactor, logger=log)
        messages += [f"teardown: could not {line}" for line in failures]
        return messages


NO_BUCKETS = "the source has no Storage buckets (storage.buckets is empty)"
NO_S3_SETTINGS = (
    "storage export: no source S3 settings (SUPABASE_S3_ENDPOINT, SUPABASE_S3_ACCESS_KEY_ID, "
    "SUPABASE_S3_SECRET_ACCESS_KEY); Storage objects were not backed up"
)


def _failed(phase: str) -> str:
    """The progress line of a failed drill: a pointer; its error is said once, in the verdict."""
    return (
        f"drill FAILED in {phase}: the smoke tests are skipped; the error is in the verdict below"
    )


def _private_file(suffix: str, text: str) -> str:
    """A new 0600 file holding ``text``; its path."""
    fd, path = tempfile.mkstemp(prefix="supabase-restore-staging-", suffix=suffix)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return path


def _kept(staging: StagingTarget) -> str:
    """What --supabase-keep-staging prints: how to connect to the staging left running.
    No password or key is printed: those are handed over in 0600 files."""
    connect = staging.dsn
    if mask_url(connect) != connect:
        connect = f"$(cat {_private_file('.dsn', connect + chr(10))})"
    s3 = ""
    if staging.s3 is not None:
        env = _private_file(
            ".env",
            f"STAGING_S3_ENDPOINT={staging.s3.url}\nSTAGING_S3_REGION={staging.s3.region}\n"
            f"STAGING_S3_ACCESS_KEY_ID={staging.s3.access_key_id}\n"
            f"STAGING_S3_SECRET_ACCESS_KEY={staging.s3.secret_access_key}\n",
        )
        s3 = f"; S3 at {staging.s3.url} (its keys: {env})"
    return (
        f'--supabase-keep-staging: staging left running: psql "{connect}"{s3}. Stop it with: '
        f"{staging.stop_hint()}"
    )
