"""What the drill did, as one JSON document shared by the controller and every worker.

The controller runs the drill (export, integrity check, restore) once, before any test
runs, and writes a :class:`DrillState` into the run directory; xdist workers read it.
The verdict is built from this state plus the test reports.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "drill-state.json"
# How a smoke test is skipped when the drill itself failed: a pointer, not the error again
# (the error is said once, in the verdict). The verdict recognises skips by this prefix.
DRILL_FAILED_SKIP = "not run: the drill failed"


def drill_failed_skip(phase: str | None) -> str:
    """The skip reason of every smoke test of a drill that failed in ``phase``."""
    where = f" in {phase}" if phase else ""
    return f"{DRILL_FAILED_SKIP}{where} (its error is in the drill verdict)"


@dataclass
class Phase:
    """One timed phase of the drill."""

    name: str
    seconds: float
    ok: bool = True
    detail: str = ""


@dataclass
class RestoreIssue:
    """A message the restore produced: expected for the target, or a real failure."""

    statement: str
    message: str
    expected: bool
    reason: str = ""
    # The object the statement is about ("table public.items", see toc.DbObject.label).
    object: str = ""
    # The extension the target cannot load that caused this error, when that is the cause.
    extension: str = ""


@dataclass
class BackupSizes:
    """How big the backup set is, for people (the manifest's summary)."""

    tables: int | None = None
    rows: int | None = None
    db_bytes: int | None = None
    objects: int | None = None
    object_bytes: int | None = None


@dataclass
class FaultResult:
    """One fault --supabase-self-test injected into a scratch copy, and whether the check
    of its category caught it (``evidence``: the check's message, redacted and shortened)."""

    fault: str
    category: str
    caught: bool
    evidence: str
    injected: bool = True  # False: the fault could not be put into the scratch copy


@dataclass
class PlatformHealth:
    """The platform's own view of the project's backups (the Management API), when a token
    is configured. ``problems`` are FAIL reasons; ``error`` says why nothing could be read."""

    project_ref: str | None = None
    newest_completed_at: str | None = None  # ISO 8601, UTC
    newest_completed_id: int | None = None
    newest_age_seconds: float | None = None
    completed_count: int = 0
    pitr_enabled: bool | None = None
    pitr_earliest: str | None = None  # the physical backup window (PITR), ISO 8601
    pitr_latest: str | None = None
    max_age_hours: float | None = None
    problems: list[str] = field(default_factory=list)
    error: str | None = None
    # Changes since the previous drill (from the tracking issue's history): FAIL reasons
    # with --supabase-pitr-rule=fail, else said in the platform section only.
    warnings: list[str] = field(default_factory=list)
    pitr_rule: str = "warn"
    # What a full restore of the project does by hand (from the backup set's manifest).
    manual_restore: list[str] = field(default_factory=list)
    # What the branch target runs differently from the backup (settings fields, functions).
    branch_differences: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SourceReads:
    """What the export read from the source (:func:`.source_reads.measure`): the deltas of
    its statistics around the export, and their ratio to what a bare pg_dump of the same
    data reads (the rows pg_dump wrote, the heap and TOAST blocks of the dumped tables)."""

    rows: int
    blocks: int
    database_rows: int
    database_blocks: int
    pg_dump_rows: int
    pg_dump_blocks: int
    ratio_rows: float | None
    ratio_blocks: float | None
    basis: str
    # VACUUM/ANALYZE runs (autovacuum's included) on the source's tables that ended during
    # the export: their reads are counted in ``blocks`` too (0 in states written before).
    maintenance_runs: int = 0


@dataclass
class DrillState:
    """Everything the tests and the verdict need to know about this run's drill."""

    enabled: bool = False
    mode: str = "export"  # "export" | "from-backup" | "dry-run"
    error: str | None = None  # the drill could not run: the reason, with the fix
    error_phase: str | None = None
    phases: list[Phase] = field(default_factory=list)
    rto_seconds: float | None = None
    rto_budget_seconds: float | None = None
    backup_dir: str | None = None  # the backup set (directory holding manifest.json)
    backup_format: str | None = None  # "manifest" | "supabase-cli"
    snapshot_time: str | None = None
    source_label: str | None = None  # a masked description of the source
    server_version: str | None = None
    tool_version: str | None = None
    staging_kind: str | None = None  # "ephemeral" | "container" | "url" | "branch"
    staging_dsn: str | None = None  # not shown anywhere; may carry a password for "url"
    staging_label: str | None = None  # masked, for people
    staging_server_version: str | None = None
    staging_s3: dict[str, str] | None = None  # url/region of the restored object store
    # The staging project's APIs (staging.api.StagingApi.to_state): url, keys, JWT secret.
    staging_api: dict[str, str] | None = None
    restore_issues: list[RestoreIssue] = field(default_factory=list)
    not_restorable: list[str] = field(default_factory=list)
    # Objects that could not be restored because they depend on an extension the target
    # cannot load: {"table public.items": "vector"} (object labels: toc.DbObject.label).
    extension_dependents: dict[str, str] = field(default_factory=dict)
    # Triggers the restore disabled so that staging never calls out ("schema.table.trigger").
    disabled_triggers: list[str] = field(default_factory=list)
    # Categories with nothing to prove for this backup (category -> why), e.g. storage for a
    # CLI dump, which holds no objects. See verdict.build_verdict.
    not_applicable: dict[str, str] = field(default_factory=dict)
    # Tables whose data the drill changed in staging on purpose ("schema.name" -> why).
    altered_tables: dict[str, str] = field(default_factory=dict)
    not_tested: list[str] = field(default_factory=list)
    integrity_problems: list[str] = field(default_factory=list)
    keep_staging: bool = False
    # The backup set's sizes (from its manifest); None until the integrity check read it.
    backup: BackupSizes | None = None
    # "verified" (the signature checked out) or "not verified" (signed, no key given).
    signature: str | None = None
    export_retries: list[str] = field(default_factory=list)  # why each retry was needed
    export_timings: dict[str, float] = field(default_factory=dict)  # seconds per step
    # What the export read from the source (source_reads.measure); None when not measured.
    source_reads: SourceReads | None = None
    # What the restore switched off in staging so it never calls out (pg_cron, pg_net, hooks).
    neutralised: list[str] = field(default_factory=list)
    self_test: list[FaultResult] | None = None  # None: --supabase-self-test did not run
    dry_run: list[str] = field(default_factory=list)  # what --supabase-dry-run found
    # The preflight's table (--supabase-dry-run): one {check, status, result, fix} per row.
    preflight: list[dict[str, str]] = field(default_factory=list)
    # The source had no Storage settings, so its objects were not exported.
    storage_not_exported: bool = False
    # The platform's backups, read with SUPABASE_ACCESS_TOKEN; None without a token.
    platform: PlatformHealth | None = None

    # -- persistence ----------------------------------------------------------------------
    def save(self, run_dir: Path) -> None:
        path = run_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(self), fh, indent=2, default=str)
        os.replace(tmp, path)

    @classmethod
    def load(cls, run_dir: Path) -> DrillState:
        return cls.from_json(json.loads((run_dir / STATE_FILE).read_text()))

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DrillState:
        """The state :meth:`save` wrote (as parsed JSON), with its nested records rebuilt."""
        data = dict(raw)
        data["phases"] = [Phase(**p) for p in data.get("phases", [])]
        data["restore_issues"] = [RestoreIssue(**r) for r in data.get("restore_issues", [])]
        if data.get("backup") is not None:
            data["backup"] = BackupSizes(**data["backup"])
        if data.get("source_reads") is not None:
            data["source_reads"] = SourceReads(**data["source_reads"])
        if data.get("platform") is not None:
            data["platform"] = PlatformHealth(**data["platform"])
        if data.get("self_test") is not None:
            data["self_test"] = [FaultResult(**r) for r in data["self_test"]]
        return cls(**data)

    # -- helpers --------------------------------------------------------------------------
    def add_phase(self, name: str, seconds: float, ok: bool = True, detail: str = "") -> None:
        self.phases.append(Phase(name=name, seconds=round(seconds, 3), ok=ok, detail=detail))

    def phase_seconds(self) -> dict[str, float]:
        return {p.name: p.seconds for p in self.phases}

    @property
    def restored(self) -> bool:
        return self.error is None and self.staging_dsn is not None
