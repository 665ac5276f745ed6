"""The backup-set format: a directory with ``manifest.json`` that proves what it holds.

Layout (all files owner-only, because they hold production data)::

    <backup-dir>/<snapshot time, e.g. 20261124T172900Z>/
        manifest.json          the proof (this module)
        roles.sql              custom roles, no passwords, reserved roles left out
        db/                    pg_dump directory format (toc.dat + one file per table)
        storage/objects/ab/<sha256>   Storage object bytes, content addressed

A set is written under a temporary name (``.partial-*``) and renamed only once its manifest
is complete, so a partial set is never mistaken for a complete one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .errors import BackupError

FORMAT = "pytest-supabase-restore/backup-set"
VERSION = 1
MANIFEST = "manifest.json"
PARTIAL_PREFIX = ".partial-"


def identity_label(identity: str, manifest: dict[str, Any]) -> str:
    """How an RLS identity of the manifest is named in test ids and messages: ``anon``, or
    ``user1``, ``user2``, ... by its place in the sampled users (sampled in id order, so
    the names are stable from run to run).

    An ``auth.users`` id is a user's data: it stays in the backup set and never reaches a
    report (ids and messages end up in artifacts kept for weeks)."""
    if identity == "anon":
        return identity
    users = list((manifest.get("rls") or {}).get("users") or [])
    return f"user{users.index(identity) + 1}" if identity in users else "user"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) readable by the owner only."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def restrict_tree(root: Path) -> None:
    """Make every file 0600 and every directory 0700 below ``root`` (pg_dump writes 0644)."""
    for dirpath, _dirs, files in os.walk(root):
        os.chmod(dirpath, 0o700)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o600)


def inventory_files(root: Path, jobs: int = 4) -> dict[str, dict[str, Any]]:
    """Every file below ``root`` except the manifest: relative path -> size and SHA-256."""
    paths = sorted(
        p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST and not p.is_symlink()
    )

    def describe(p: Path) -> tuple[str, dict[str, Any]]:
        return p.relative_to(root).as_posix(), {"size": p.stat().st_size, "sha256": sha256_file(p)}

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return dict(pool.map(describe, paths))


def write_manifest(root: Path, manifest: dict[str, Any]) -> Path:
    path = root / MANIFEST
    tmp = root / (MANIFEST + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=1, sort_keys=True, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def read_manifest(root: Path) -> dict[str, Any]:
    """Parse and check the manifest's format and version. Raises BackupError."""
    path = root / MANIFEST
    if not path.is_file():
        raise BackupError(f"{path}: missing. This directory is not a complete backup set.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupError(f"{path}: malformed manifest ({exc}).") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BackupError(f"{path}: not a pytest-supabase-restore manifest (format field).")
    version = data.get("version")
    if not isinstance(version, int):
        raise BackupError(f"{path}: malformed manifest (version is not an integer).")
    if version > VERSION:
        raise BackupError(
            f"{path}: manifest version {version} is newer than this plugin understands "
            f"({VERSION}). Upgrade pytest-supabase-restore to validate this backup set."
        )
    for key in ("snapshot_time", "tables", "schema", "files", "storage"):
        if key not in data:
            raise BackupError(f"{path}: malformed manifest (no {key!r}).")
    return data


def verify_files(
    root: Path,
    manifest: dict[str, Any],
    jobs: int = 4,
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Check every file against the manifest. Returns problems, each naming the file."""
    expected: dict[str, dict[str, Any]] = manifest["files"]
    problems: list[str] = []

    def check(item: tuple[str, dict[str, Any]]) -> str | None:
        rel, meta = item
        path = root / rel
        if not path.is_file():
            return f"{rel}: missing from the backup set"
        size = path.stat().st_size
        if size != meta["size"]:
            kind = "truncated" if size < meta["size"] else "grown"
            return f"{rel}: {kind} ({size} bytes, manifest says {meta['size']})"
        if sha256_file(path) != meta["sha256"]:
            return f"{rel}: modified (SHA-256 differs from the manifest)"
        return None

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for result in pool.map(check, sorted(expected.items())):
            if result:
                problems.append(result)
    on_disk = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name != MANIFEST
    }
    for extra in sorted(on_disk - set(expected)):
        problems.append(f"{extra}: not listed in the manifest")
    if progress:
        progress(f"checked {len(expected)} files against the manifest")
    return problems


def summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """Sizes for the verdict: tables, rows, db_bytes, objects, object_bytes."""
    tables = manifest.get("tables", {})
    objects = manifest.get("storage", {}).get("objects", [])
    return {
        "snapshot_time": manifest.get("snapshot_time"),
        "tables": len(tables),
        "rows": sum(int(t.get("rows", 0)) for t in tables.values()),
        "db_bytes": sum(int(t.get("bytes", 0)) for t in tables.values()),
        "objects": len(objects),
        "object_bytes": sum(int(o.get("size", 0)) for o in objects),
    }
