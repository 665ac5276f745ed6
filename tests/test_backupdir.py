"""The inventory of a backup set's files (``backupdir.inventory_files``)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pytest_supabase_restore.backupdir import inventory_files


def _put(root: Path, rel: str, data: bytes) -> str:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def test_every_file_but_the_manifest_and_symlinks_is_hashed(tmp_path: Path) -> None:
    expected = {
        rel: _put(tmp_path, rel, os.urandom(n))
        for rel, n in [("db/toc.dat", 100), ("db/3456.dat", 70_000), ("roles.sql", 0)]
        + [(f"storage/objects/{i:02x}/x{i}", i) for i in range(40)]
    }
    _put(tmp_path, "manifest.json", b"{}")
    os.symlink(tmp_path / "roles.sql", tmp_path / "db" / "link")

    got = inventory_files(tmp_path, jobs=3)

    assert {rel: (e.size, e.sha256) for rel, e in got.items()} == {
        rel: ((tmp_path / rel).stat().st_size, digest) for rel, digest in expected.items()
    }


def test_a_content_named_object_file_is_not_read_again(tmp_path: Path) -> None:
    """In a set being written, a Storage object file's SHA-256 is its name (the download
    hashed the bytes as they streamed and named the file by it), so its bytes are not read a
    second time. Only a name of exactly that shape counts; a later check of the set hashes
    every file (``content_named`` off), so a file that differs from its name is caught."""
    real = hashlib.sha256(b"the bytes").hexdigest()
    other = hashlib.sha256(b"other").hexdigest()
    named = f"storage/objects/{other[:2]}/{other}"
    wrong_shard = f"storage/objects/zz/{other}"
    not_an_object = f"db/{other}"
    for rel in (named, wrong_shard, not_an_object):
        _put(tmp_path, rel, b"the bytes")

    trusted = inventory_files(tmp_path, content_named=True)
    assert trusted[named].sha256 == other
    assert trusted[wrong_shard].sha256 == real
    assert trusted[not_an_object].sha256 == real
    assert trusted[named].size == len(b"the bytes")

    checked = inventory_files(tmp_path)
    assert {e.sha256 for e in checked.values()} == {real}
