"""Disk need against free space, and an estimated drill time.

The throughputs are the benchmark's (bench/README.md, scale 1000 on a shared 2-core
machine, the class of a hosted CI runner): 1,606 MB of table data and 3,000 objects took
31.7 s to export, 40.4 s to restore and about 47 s of checks. The estimate scales them
linearly with the source's sizes; a faster machine takes less."""

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
EXPORT_MB_S = 1606 / 31.7
RESTORE_MB_S = 1606 / 40.4
CHECKS_MB_S = 1606 / 47.0
OBJECT_DOWNLOAD_S = 24.4 / 3000  # beside pg_dump
OBJECT_UPLOAD_S = 14.0 / 3000  # beside the data restore
# What a small project costs whatever its size: pytest start-up, the staging start, the
# checks' own start and teardown (the demo, 2 MiB of rows, measured on the same class of
# machine: export 5.2 s, staging start 1-8 s, restore 3.1 s, then the checks).
FIXED_S = 30.0
CLUSTER_BYTES = 64 * 1024 * 1024  # a new cluster's catalog and WAL before any data


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
    local object store (a second copy of every object) in the temporary directory; on one
    file system they count together."""
    backup_at = _existing(settings.backup_dir or Path(tempfile.gettempdir()))
    need = {backup_at: db.heap_bytes + storage.bytes}
    labels = {backup_at: "backup set"}
    if resolve_kind(settings.staging) == "ephemeral":
        staging_at = _existing(Path(tempfile.gettempdir()))
        same = next((p for p in need if _device(p) == _device(staging_at)), None)
        key = same or staging_at
        need[key] = need.get(key, 0) + db.database_bytes + CLUSTER_BYTES + storage.bytes
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
