"""Untrusted backup sets, on real exports, real files and real clusters.

A backup set handed to ``--supabase-from-backup`` may have been changed by someone else.
Without a signing key anyone can rewrite its manifest, so these tests play that attacker:
they edit a file and list it again in the manifest (``reseal``), and check that what the
plugin must refuse is refused in the integrity phase, before any staging target starts.

- the manifest: paths confined to the set, no symbolic links, strict field types, no file the
  manifest does not list.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_supabase_restore import manifest as mf
from pytest_supabase_restore.config import Config
from pytest_supabase_restore.demo import DemoProject
from pytest_supabase_restore.drill import Drill
from pytest_supabase_restore.errors import BackupError
from pytest_supabase_restore.export import export
from pytest_supabase_restore.results import DrillState

# -- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> Iterator[Any]:
    with DemoProject(scale=1, objects=3) as project:
        yield project


@pytest.fixture(scope="module")
def backup(demo: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export(demo.db_url, tmp_path_factory.mktemp("plain"), s3=demo.s3, jobs=2)


def copy_set(src: Path, tmp_path: Path) -> Path:
    dest = tmp_path / src.name
    shutil.copytree(src, dest, symlinks=True)
    return dest


def load(set_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((set_dir / mf.MANIFEST).read_text(encoding="utf-8"))
    return data


def save(set_dir: Path, data: dict[str, Any]) -> None:
    (set_dir / mf.MANIFEST).write_text(json.dumps(data), encoding="utf-8")


def sha_of(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    return {"size": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}


def reseal(set_dir: Path, **extra: dict[str, Any]) -> None:
    """What anyone can do to an unsigned set: list its files, as they are now, again."""
    data = load(set_dir)
    files = {}
    for path in sorted(set_dir.rglob("*")):
        rel = path.relative_to(set_dir).as_posix()
        if path.is_file() and not path.is_symlink() and rel != mf.MANIFEST:
            files[rel] = sha_of(path)
    data["files"] = {**files, **extra}
    save(set_dir, data)


def drill(set_dir: Path, tmp_path: Path, **settings: Any) -> tuple[Drill, DrillState]:
    """Run the drill on ``set_dir`` as --supabase-from-backup does, and tear it down."""
    config = Config(enabled=True, from_backup=set_dir, staging="ephemeral", jobs=2, **settings)
    run = Drill(config, tmp_path, lambda _message: None)
    try:
        state = run.run()
    finally:
        run.teardown()
    return run, state


def refused_in_integrity(run: Drill, state: DrillState) -> str:
    assert state.error, "the set was accepted"
    assert state.error_phase == "integrity", (state.error_phase, state.error)
    assert run.staging is None, "a staging target was started for a refused set"
    assert "staging_start" not in state.phase_seconds()
    return state.error


# -- the manifest ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rel",
    ["../outside.txt", "/etc/hostname", "db/../../outside.txt", "db//toc.dat", "./roles.sql"],
)
def test_manifest_paths_stay_inside_the_set(backup: Path, tmp_path: Path, rel: str) -> None:
    copy = copy_set(backup, tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("not part of the set\n")
    target = Path(rel) if rel.startswith("/") else copy / rel
    data = load(copy)
    data["files"][rel] = sha_of(target) if target.is_file() else sha_of(outside)
    save(copy, data)
    with pytest.raises(BackupError, match=r"malformed manifest: files\[") as info:
        mf.read_manifest(copy)
    assert "leave the backup set" in str(info.value) or "absolute" in str(info.value)


def test_symlinked_roles_sql_is_refused_and_never_read(backup: Path, tmp_path: Path) -> None:
    copy = copy_set(backup, tmp_path)
    (copy / "roles.sql").unlink()
    os.symlink("/etc/passwd", copy / "roles.sql")
    reseal(copy, **{"roles.sql": sha_of(Path("/etc/passwd"))})
    problems = mf.verify_files(copy, mf.read_manifest(copy))
    assert problems == [
        "roles.sql: a symbolic link (a backup set holds only regular files)",
        "roles.sql: its path goes through a symbolic link",
    ]
    run, state = drill(copy, tmp_path)
    error = refused_in_integrity(run, state)
    assert "symbolic link" in error
    passwd_line = Path("/etc/passwd").read_text().splitlines()[0]
    assert passwd_line not in json.dumps(dataclasses.asdict(state), default=str)


def test_symlinked_directory_in_the_set_is_refused(backup: Path, tmp_path: Path) -> None:
    copy = copy_set(backup, tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "toc.dat").write_bytes((copy / "db" / "toc.dat").read_bytes())
    shutil.rmtree(copy / "db")
    os.symlink(outside, copy / "db")
    problems = mf.verify_files(copy, mf.read_manifest(copy))
    assert any(p.startswith("db: a symbolic link") for p in problems), problems
    assert "db/toc.dat: its path goes through a symbolic link" in problems  # never read


def test_special_file_is_refused_without_blocking(backup: Path, tmp_path: Path) -> None:
    copy = copy_set(backup, tmp_path)
    victim = sorted((copy / "db").glob("*.dat"))[0]
    victim.unlink()
    os.mkfifo(victim)
    problems = mf.verify_files(copy, mf.read_manifest(copy))
    rel = victim.relative_to(copy).as_posix()
    assert f"{rel}: not a regular file (a backup set holds only regular files)" in problems


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.update(version=-1), "version"),
        (lambda d: d.update(version=0), "version"),
        (lambda d: d.update(version=True), "version"),
        (lambda d: d.update(version="1"), "version"),
        (lambda d: d.update(files=["db/toc.dat"]), "files"),
        (lambda d: d["files"]["db/toc.dat"].update(size="5"), "files['db/toc.dat'].size"),
        (lambda d: d["files"]["db/toc.dat"].update(size=-1), "files['db/toc.dat'].size"),
        (lambda d: d["files"]["db/toc.dat"].update(sha256="abc"), "files['db/toc.dat'].sha256"),
        (lambda d: d["files"].update({"roles.sql": "12 bytes"}), "files['roles.sql']"),
        (lambda d: d["files"].pop("db/toc.dat"), "files"),
        (lambda d: d.update(snapshot_time=5), "snapshot_time"),
        (lambda d: d.update(snapshot_time="2026-01-01T00:00:00"), "snapshot_time"),
        (lambda d: d["source"].pop("server_major"), "source.server_major"),
        (lambda d: d["source"].update(server_major="15"), "source.server_major"),
        (lambda d: d.update(scope_schemas="public"), "scope_schemas"),
        (lambda d: d["tables"]["public.tasks"].update(rows=-3), "tables['public.tasks'].rows"),
        (lambda d: d["rls"].update(users=None), "rls.users"),
        (lambda d: d["storage"]["objects"][0].update(size="big"), "storage.objects[0].size"),
        (
            lambda d: d["storage"]["objects"][0].update(sha256="../../../../etc/passwd"),
            "storage.objects[0].sha256",
        ),
        (lambda d: d["storage"]["objects"][0].update(bucket=7), "storage.objects[0].bucket"),
        (lambda d: d["storage"].update(objects={}), "storage.objects"),
        (lambda d: d["storage"].update(downloaded="yes"), "storage.downloaded"),
    ],
)
def test_malformed_manifest_is_one_precise_error(
    backup: Path, tmp_path: Path, edit: Callable[[dict[str, Any]], Any], field: str
) -> None:
    copy = copy_set(backup, tmp_path)
    data = load(copy)
    edit(data)
    save(copy, data)
    with pytest.raises(BackupError) as info:
        mf.read_manifest(copy)
    assert f"malformed manifest: {field}: " in str(info.value)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"format": "pytest-supabase-restore/backup-set", "version": 1, "version": 1}', "twice"),
        ('{"format": "pytest-supabase-restore/backup-set", "version": NaN}', "NaN"),
    ],
)
def test_ambiguous_json_is_refused(backup: Path, tmp_path: Path, text: str, why: str) -> None:
    copy = copy_set(backup, tmp_path)
    (copy / mf.MANIFEST).write_text(text)
    with pytest.raises(BackupError, match=f"malformed manifest.*{why}"):
        mf.read_manifest(copy)


def test_storage_object_must_be_a_listed_file(backup: Path, tmp_path: Path) -> None:
    copy = copy_set(backup, tmp_path)
    data = load(copy)
    sha = data["storage"]["objects"][0]["sha256"]
    del data["files"][f"storage/objects/{sha[:2]}/{sha}"]
    save(copy, data)
    with pytest.raises(BackupError, match=r"storage\.objects\[0\]: its bytes .* not listed"):
        mf.read_manifest(copy)


@pytest.mark.parametrize("extra", ["db/9999.dat", "db/manifest.json", "roles.sql"])
def test_a_file_the_manifest_does_not_list_is_refused(
    backup: Path, tmp_path: Path, extra: str
) -> None:
    copy = copy_set(backup, tmp_path)
    data = load(copy)
    if extra == "roles.sql":  # present on disk, left out of the manifest
        del data["files"]["roles.sql"]
        save(copy, data)
    else:
        (copy / extra).write_text("COPY (SELECT 1) TO PROGRAM 'id';\n")
    problems = mf.verify_files(copy, mf.read_manifest(copy))
    assert problems == [f"{extra}: not listed in the manifest"]
