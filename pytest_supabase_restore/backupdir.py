"""Where backup sets live: owner-only directories and files, a new set's directory names,
the inventory of its files, and retention of older sets.

A set is written under a temporary name (``.partial-*``) and renamed only once its manifest
is complete (see :mod:`.export`), so retention only ever sees complete sets.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import manifest
from .model import FileEntry


def new_set_dir(base: Path, when: dt.datetime) -> tuple[Path, Path]:
    """(partial directory to write into, final name) for a set taken at ``when``."""
    private_dir(base)
    name = when.strftime("%Y%m%dT%H%M%S") + f"{when.microsecond // 1000:03d}Z"
    final = base / name
    partial = base / f"{manifest.PARTIAL_PREFIX}{name}-{os.getpid()}"
    private_dir(partial)
    return partial, final


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


def inventory_files(root: Path, jobs: int = 4) -> dict[str, FileEntry]:
    """Every file below ``root`` except the manifest: relative path -> size and SHA-256."""
    paths = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.name != manifest.MANIFEST and not p.is_symlink()
    )

    def describe(p: Path) -> tuple[str, FileEntry]:
        return p.relative_to(root).as_posix(), FileEntry(p.stat().st_size, sha256_file(p))

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return dict(pool.map(describe, paths))
