"""Disk need against free space, and an estimated drill time.

The throughputs are the benchmark's newest run (bench/README.md, "After the one-read round",
2026-12-02, a shared 2-core machine, the class of a hosted CI runner): at 1,624 MB of
database and 3,000 objects the export took 38.7 s (the Storage download beside it 26.9 s),
the restore (RTO) 47.3 s and the checks about 66 s. The estimate scales them linearly with
the source's sizes; a faster machine takes less."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..config import Config
from ..staging import resolve_kind
from .model import FAIL, INFO, PASS, Check, human_bytes, human_seconds
from .sizes import SourceSize
from .storage import StorageSize

MB = 1_000_000
EXPORT_MB_S = 1624 / 38.7
RESTORE_MB_S = 1624 / 47.3
CHECKS_MB_S = 1624 / 66.0
OBJECT_DOWNLOAD_S = 26.9 / 3000  # beside pg_dump
OBJECT_UPLOAD_S = 14.0 / 3000  # beside the data restore (measured 2026-11-24)
FIXED_S = 30.0
CLUSTER_BYTES = 64 * 1024 * 1024  # a new cluster's catalog and WAL before any data
# The WAL a restore leaves behind before checkpoints recycle it: about what it wrote, up to
# PostgreSQL's default max_wal_size (the throwaway cluster keeps the default).
WAL_BYTES = 1024 * 1024 * 1024


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing parent (where it would be created)."""
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _device(path: Path) -> int:
    return os.stat(path).st_dev


def disk_checks(settings: Config, db: SourceSize, storage: StorageSize) -> list[Check]:
    """The backup set (rows as dumped, about their heap size, plus the objects) where it
    will be written, and an ephemeral staging cluster (the source database's size) with its
    local object store (a second copy of every object) and the restore's WAL in the temporary
    directory; on one file system they count together."""
    backup_at = _existing(settings.backup_dir or Path(tempfile.gettempdir()))
    need = {backup_at: db.heap_bytes + storage.bytes}
    labels = {backup_at: "backup set"}
    if resolve_kind(settings.staging) == "ephemeral":
        staging_at = _existing(Path(tempfile.gettempdir()))
        same = next((p for p in need if _device(p) == _device(staging_at)), None)
        key = same or staging_at
        wal = min(db.database_bytes, WAL_BYTES)
        need[key] = need.get(key, 0) + db.database_bytes + wal + CLUSTER_BYTES + storage.bytes
        what = "staging cluster" + (" + staging objects" if storage.bytes else "")
        labels[key] = f"{labels[key]} + {what}" if key in labels else what
    checks = []
    for where, bytes_needed in need.items():
        free = shutil.disk_usage(where).free
        found = (
            f"{labels[where]}: needs up to {human_bytes(bytes_needed)} in {where}, "
            f"{human_bytes(free)} free"
        )
        if bytes_needed > free:
            checks.append(
                Check(
                    "disk",
                    FAIL,
                    found,
                    "free space there, or point --supabase-backup-dir (and TMPDIR for the "
                    "staging cluster) at a larger disk",
                )
            )
        else:
            checks.append(Check("disk", PASS, found))
    return checks


def estimate_seconds(db: SourceSize, storage: StorageSize) -> float:
    mb = db.heap_bytes / MB
    export = max(mb / EXPORT_MB_S, storage.objects * OBJECT_DOWNLOAD_S)
    restore = max(mb / RESTORE_MB_S, storage.objects * OBJECT_UPLOAD_S)
    return FIXED_S + export + restore + mb / CHECKS_MB_S


def time_check(db: SourceSize, storage: StorageSize) -> Check:
    seconds = estimate_seconds(db, storage)
    return Check(
        "estimated time",
        INFO,
        f"about {human_seconds(seconds)} for {human_bytes(db.heap_bytes)} of rows and "
        f"{storage.objects} objects ({human_bytes(storage.bytes)}), from the benchmark's "
        "throughputs on 2 cores",
    )
