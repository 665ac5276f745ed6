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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import manifest
from .model import FileEntry
from .storage.pool import bounded_map
from .storage.records import named_sha256


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


def _files_below(root: Path) -> Iterator[str]:
    """Relative POSIX paths of the regular files below ``root`` except the manifest, sorted,
    one directory listed at a time (no symlinks followed or listed)."""

    def walk(directory: Path, prefix: str) -> Iterator[str]:
        with os.scandir(directory) as listing:
            entries = sorted(listing, key=lambda e: e.name)
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                yield from walk(Path(entry.path), f"{prefix}{entry.name}/")
            elif entry.is_file(follow_symlinks=False) and entry.name != manifest.MANIFEST:
                yield prefix + entry.name

    return walk(root, "")


def inventory_files(
    root: Path, jobs: int = 4, *, content_named: bool = False
) -> dict[str, FileEntry]:
    """Every file below ``root`` except the manifest: relative path -> size and SHA-256.

    With ``content_named`` (a set this process is writing, whose Storage download hashed
    each object as it streamed and named the file by that SHA-256), an object file's
    SHA-256 is its name and it is not read again; every other file is hashed. Files are
    hashed on ``jobs`` threads with a bounded number in flight, so memory does not grow with
    the number of files beyond the inventory itself."""

    def describe(rel: str) -> tuple[str, FileEntry]:
        path = root / rel
        known = named_sha256(rel) if content_named else None
        return rel, FileEntry(path.stat().st_size, known or sha256_file(path))

    workers = max(1, jobs)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(bounded_map(pool, describe, _files_below(root), window=4 * workers))
