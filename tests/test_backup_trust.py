"""Untrusted backup sets, on real exports, real files and real clusters.

A backup set handed to ``--supabase-from-backup`` may have been changed by someone else.
Without a signing key anyone can rewrite its manifest, so these tests play that attacker:
they edit a file and list it again in the manifest (``reseal``), and check that what the
plugin must refuse is refused in the integrity phase, before any staging target starts.

- the manifest: paths confined to the set, no symbolic links, strict field types, no file the
  manifest does not list;
- ``roles.sql``: only role statements as ``pg_dumpall --roles-only`` writes them (checked
  against the real pg_dumpall 15 and the Supabase CLI's format), and those run as rebuilt;
- the optional HMAC signature (``SUPABASE_RESTORE_SIGNING_KEY``);
- the optional encryption at rest (``SUPABASE_RESTORE_ENCRYPTION_KEY``).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import shutil
import struct
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pytest_supabase_restore import manifest as mf
from pytest_supabase_restore.config import OPTIONS, SECRET_ENV, Config, validate
from pytest_supabase_restore.demo import DemoProject
from pytest_supabase_restore.drill import Drill
from pytest_supabase_restore.encryption import (
    HEADER_BYTES,
    TAG_BYTES,
    DecryptError,
    decrypt_file,
    encrypt_file,
    parse_key,
)
from pytest_supabase_restore.errors import BackupError
from pytest_supabase_restore.export import ExportOptions, export
from pytest_supabase_restore.pg.binaries import find_client_tools
from pytest_supabase_restore.pg.cluster import start_cluster
from pytest_supabase_restore.pgtools import run_tool
from pytest_supabase_restore.restore import run_role_statements
from pytest_supabase_restore.results import DrillState
from pytest_supabase_restore.rolesql import parse_roles
from pytest_supabase_restore.source import dump_roles

SIGNING_KEY = "signing-key-of-the-tests-0123456789abcdef"
OTHER_SIGNING_KEY = "another-signing-key-of-the-tests-0123456789"
ENCRYPTION_KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()
OTHER_ENCRYPTION_KEY = base64.urlsafe_b64encode(bytes(range(1, 33))).decode()


# -- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> Iterator[Any]:
    with DemoProject(scale=1, objects=3) as project:
        yield project


@pytest.fixture(scope="module")
def backup(demo: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export(
        demo.db_url, tmp_path_factory.mktemp("plain"), s3=demo.s3, options=ExportOptions(jobs=2)
    )


@pytest.fixture(scope="module")
def signed(demo: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export(
        demo.db_url,
        tmp_path_factory.mktemp("signed"),
        s3=demo.s3,
        options=ExportOptions(jobs=2, signing_key=SIGNING_KEY),
    )


@pytest.fixture(scope="module")
def sealed(demo: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Signed and encrypted."""
    return export(
        demo.db_url,
        tmp_path_factory.mktemp("sealed"),
        s3=demo.s3,
        options=ExportOptions(
            jobs=2, signing_key=SIGNING_KEY, encryption_key=parse_key(ENCRYPTION_KEY)
        ),
    )


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
    """The object's file and its files entry both removed: refused before anything is
    restored, naming the bucket and key (not a local path)."""
    copy = copy_set(backup, tmp_path)
    data = load(copy)
    obj = data["storage"]["objects"][0]
    sha = obj["sha256"]
    del data["files"][f"storage/objects/{sha[:2]}/{sha}"]
    (copy / "storage" / "objects" / sha[:2] / sha).unlink()
    save(copy, data)
    with pytest.raises(BackupError) as info:
        mf.read_manifest(copy)
    message = str(info.value)
    assert "storage.objects[0]" in message and "its bytes are not in" in message
    assert f"{obj['bucket']!r}/{obj['key']!r}" in message
    assert "storage/objects/" not in message  # named by bucket and key, not by its file


def test_a_missing_or_changed_storage_file_names_bucket_and_key(
    backup: Path, tmp_path: Path
) -> None:
    copy = copy_set(backup, tmp_path)
    manifest = mf.read_manifest(copy)
    first, second = manifest.storage.objects[:2]
    (copy / "storage" / "objects" / first.sha256[:2] / first.sha256).unlink()
    changed = copy / "storage" / "objects" / second.sha256[:2] / second.sha256
    changed.write_bytes(changed.read_bytes()[:-1] + b"!" if second.size else b"!")
    problems = mf.verify_files(copy, manifest)
    assert f"Storage object {first.bucket!r}/{first.key!r}: missing from the backup set" in problems
    assert any(p.startswith(f"Storage object {second.bucket!r}/{second.key!r}: ") for p in problems)
    assert not any(str(tmp_path) in p for p in problems)


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


# -- roles.sql -----------------------------------------------------------------------------

ROLES_SETUP = [
    "CREATE ROLE reporting_reader LOGIN PASSWORD 'pw-never-restored' CONNECTION LIMIT 5 "
    "VALID UNTIL '2030-01-01'",
    'CREATE ROLE "Odd ""name""; DROP" NOLOGIN',
    # A name that holds ";\n" and a statement: one name, never two statements.
    "CREATE ROLE \"x;\nCOPY (SELECT 1) TO PROGRAM 'id';--\"",
    "CREATE ROLE grp NOINHERIT BYPASSRLS",
    'CREATE ROLE "back\\slash"',
    "GRANT grp TO reporting_reader WITH ADMIN OPTION",
    'GRANT grp TO "Odd ""name""; DROP"',
    "ALTER ROLE reporting_reader SET statement_timeout = '5s'",
    'ALTER ROLE reporting_reader SET search_path = public, "$user"',
    "ALTER ROLE grp SET pgrst.db_schemas = 'api, public'",
    "COMMENT ON ROLE grp IS 'a group; with ''quotes'' and a back\\slash'",
]


def _roles_state(dsn: str, names: list[str]) -> dict[str, Any]:
    """Everything a roles dump restores, for the given roles, comparable across clusters."""
    with psycopg.connect(dsn) as conn:
        roles = conn.execute(
            "SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, "
            "rolreplication, rolbypassrls, rolconnlimit, rolvaliduntil, "
            "shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = ANY(%s) "
            "ORDER BY rolname",
            (names,),
        ).fetchall()
        members = conn.execute(
            "SELECT r.rolname, m.rolname, a.admin_option FROM pg_auth_members a "
            "JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member "
            "WHERE m.rolname = ANY(%s) ORDER BY 1, 2",
            (names,),
        ).fetchall()
        settings = conn.execute(
            "SELECT r.rolname, s.setconfig FROM pg_db_role_setting s "
            "JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = ANY(%s) ORDER BY 1",
            (names,),
        ).fetchall()
    return {"roles": roles, "members": members, "settings": settings}


@pytest.fixture(scope="module")
def role_source() -> Iterator[tuple[Any, list[str]]]:
    with start_cluster(name="rolesrc") as cluster:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            for statement in ROLES_SETUP:
                conn.execute(statement)
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND rolname <> 'postgres'"
                ).fetchall()
            ]
        yield cluster, names


@pytest.mark.parametrize(
    "flags",
    [
        ["--no-role-passwords"],
        ["--no-role-passwords", "--no-comments", "--quote-all-identifiers"],
        "export",  # the export's own roles.sql (dump_roles)
    ],
    ids=["plain", "quoted", "export"],
)
def test_pg_dumpall_roles_are_accepted_and_restore_the_same_roles(
    role_source: tuple[Any, list[str]], tmp_path: Path, flags: Any
) -> None:
    """What pg_dumpall 15 really writes passes the check, and the rebuilt statements restore
    exactly the roles, attributes, memberships, settings and comments it describes."""
    cluster, names = role_source
    tools = find_client_tools(15)
    if flags == "export":
        dump_roles(cluster.dsn(), tools, tmp_path / "roles.sql")
        text = (tmp_path / "roles.sql").read_text()
    else:
        result = run_tool([tools.path("pg_dumpall"), "--roles-only", *flags], cluster.dsn())
        assert result.returncode == 0, result.stderr
        text = result.stdout
    statements = parse_roles(text)
    assert len(statements) >= len(ROLES_SETUP)
    assert not any(s.startswith("COPY") for s in statements)
    with start_cluster(name="roledst") as target:
        errors = run_role_statements(target.dsn(), statements)
        # The only failure: the bootstrap superuser, which already exists in the target.
        assert all('role "postgres" already exists' in m for m, _ in errors), errors
        expected = _roles_state(cluster.dsn(), names)
        restored = _roles_state(target.dsn(), names)
    if flags == "export":  # the export keeps only the settings Supabase allows (not search_path)
        assert ("reporting_reader", ["statement_timeout=5s"]) in restored["settings"]
        expected["settings"] = [s for s in expected["settings"] if s[0] != "reporting_reader"]
        restored["settings"] = [s for s in restored["settings"] if s[0] != "reporting_reader"]
    if flags == "export" or "--no-comments" in flags:
        expected["roles"] = [r[:-1] for r in expected["roles"]]
        restored["roles"] = [r[:-1] for r in restored["roles"]]
    assert restored == expected


def test_supabase_cli_roles_format_is_accepted(role_source: tuple[Any, list[str]]) -> None:
    """`supabase db dump --role-only` runs pg_dumpall --roles-only --quote-all-identifiers
    --no-role-passwords --no-comments, comments out the platform's reserved roles, deletes the
    comment lines and appends RESET ALL; newer pg_dumpall adds \\restrict lines."""
    cluster, _names = role_source
    tools = find_client_tools(15)
    result = run_tool(
        [
            tools.path("pg_dumpall"),
            "--roles-only",
            "--quote-all-identifiers",
            "--no-role-passwords",
            "--no-comments",
        ],
        cluster.dsn(),
    )
    assert result.returncode == 0, result.stderr
    lines = []
    for line in result.stdout.splitlines():
        if line.startswith(('CREATE ROLE "postgres"', 'ALTER ROLE "postgres"')):
            continue  # commented out, then deleted with the other comment lines
        if not line.startswith("--"):
            lines.append(line)
    cli = "\\restrict AbC123\n" + "\n".join(lines) + "\n\\unrestrict AbC123\nRESET ALL;\n"
    cli += 'ALTER ROLE "anon" SET "statement_timeout" TO \'3s\';\n'  # kept: an allowed setting
    statements = parse_roles(cli)
    assert statements[-2:] == ["RESET ALL", 'ALTER ROLE "anon" SET "statement_timeout" TO \'3s\'']
    assert 'GRANT "grp" TO "reporting_reader" WITH ADMIN OPTION GRANTED BY "postgres"' in statements


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("COPY (SELECT 1) TO PROGRAM 'id';", "COPY is not a role statement"),
        ("CREATE ROLE a;\nDO $$ BEGIN PERFORM 1; END $$;", "DO is not a role statement"),
        ("CREATE ROLE a; SELECT pg_read_file('/etc/passwd');", "SELECT is not a role statement"),
        ("ALTER SYSTEM SET archive_command = 'id';", "ROLE was expected, not SYSTEM"),
        ("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';", "ROLE was expected"),
        ("ALTER ROLE a WITH LOGIN PASSWORD 'known';", "a password"),
        ("CREATE ROLE a ENCRYPTED PASSWORD 'md5abc';", "a password"),
        ("ALTER ROLE a SET session_preload_libraries TO '/tmp/x.so';", "loads code"),
        ("ALTER ROLE a SET role TO 'postgres';", "changes identity"),
        ("SET client_encoding = 'SJIS';", "a value pg_dumpall never writes"),
        ("SET standard_conforming_strings = off;", "a value pg_dumpall never writes"),
        ("SET session_authorization = 'a';", "not a setting of a roles dump"),
        ("\\! touch /tmp/pwned\n", "meta-command"),
        ("CREATE ROLE a\n\\restrict abc\n;", "meta-command"),
        ("COMMENT ON ROLE a IS U&'\\0041';", "prefixed string"),
        ("COMMENT ON ROLE a IS E'\\x41';", "an escape in an E'' string"),
        ("CREATE ROLE current_user;", "keyword CURRENT_USER"),
        ("CREATE ROLE a;\nCREATE ROLE b", "truncated"),
        ("CREATE ROLE \"a;\nCOPY x TO PROGRAM 'id';", "unterminated"),
        ("GRANT a TO b WITH ADMIN EVERYTHING;", "grant option"),
    ],
)
def test_anything_but_role_statements_is_refused(text: str, why: str) -> None:
    with pytest.raises(BackupError) as info:
        parse_roles(text)
    message = str(info.value)
    assert why in message
    assert "roles.sql" in message and "before anything was restored" in message


def test_refusal_names_the_first_statement_shortened() -> None:
    text = "CREATE ROLE ok;\nCOPY (SELECT " + "x, " * 200 + "1) TO PROGRAM 'id';\n"
    with pytest.raises(BackupError) as info:
        parse_roles(text)
    message = str(info.value)
    assert "statement 2 (line 2)" in message
    excerpt = message.split("): ", 1)[1].split("; roles.sql runs", 1)[0]
    assert excerpt.startswith("'COPY (SELECT x, x,") and excerpt.endswith("...'")
    assert len(excerpt) <= 84


@pytest.fixture
def spot() -> Iterator[Path]:
    """A directory the server's unprivileged OS user can write to (pytest's tmp_path is
    private to this user): where a program run by the server would leave its marker."""
    path = Path(tempfile.mkdtemp(prefix="trust-spot-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_tampered_roles_sql_is_refused_before_anything_runs(
    backup: Path, tmp_path: Path, spot: Path
) -> None:
    """roles.sql runs as the staging superuser: COPY ... TO PROGRAM there would be a shell."""
    copy = copy_set(backup, tmp_path)
    marker = spot / "program-ran"
    with open(copy / "roles.sql", "a") as fh:
        fh.write(f"COPY (SELECT 1) TO PROGRAM 'touch {marker}';\n")
    reseal(copy)
    run, state = drill(copy, tmp_path)
    error = refused_in_integrity(run, state)
    assert "COPY is not a role statement" in error and "COPY (SELECT 1) TO PROGRAM" in error
    assert not marker.exists()
    # The control: run as a superuser, a COPY ... TO PROGRAM does leave its file.
    with start_cluster(name="control") as cluster, psycopg.connect(cluster.dsn()) as conn:
        # The program reads what COPY writes (touch would not: COPY then fails on a broken
        # pipe whenever touch exits before the row is written).
        conn.execute(f"COPY (SELECT 1) TO PROGRAM 'cat > {spot}/control'")
    assert (spot / "control").exists()


def test_tampered_roles_sql_of_a_cli_dump_is_refused(tmp_path: Path) -> None:
    dump = tmp_path / "cli"
    dump.mkdir()
    (dump / "roles.sql").write_text(
        "CREATE ROLE \"app\";\nCOPY (SELECT 1) TO PROGRAM 'id';\nRESET ALL;\n"
    )
    (dump / "schema.sql").write_text("CREATE TABLE public.t (id int);\n")
    (dump / "data.sql").write_text("")
    run, state = drill(dump, tmp_path)
    error = refused_in_integrity(run, state)
    assert "statement 2 (line 2)" in error and "COPY" in error


# -- signature ------------------------------------------------------------------------------


def test_export_signs_the_manifest_bytes(signed: Path) -> None:
    import hmac

    sig = (signed / mf.SIGNATURE).read_text()
    manifest_bytes = (signed / mf.MANIFEST).read_bytes()
    assert sig == hmac.new(SIGNING_KEY.encode(), manifest_bytes, "sha256").hexdigest() + "\n"
    assert (signed / mf.SIGNATURE).stat().st_mode & 0o777 == 0o600
    assert mf.verify_files(signed, mf.read_manifest(signed)) == []  # the sig is not "extra"


def test_signed_set_with_the_key_restores(signed: Path, tmp_path: Path) -> None:
    _run, state = drill(signed, tmp_path, signing_key=SIGNING_KEY)
    assert state.error is None, state.error
    assert state.signature == "verified"
    assert not any("signature" in t for t in state.not_tested)


def test_signed_set_without_the_key_is_a_not_tested_note(signed: Path, tmp_path: Path) -> None:
    _run, state = drill(signed, tmp_path)
    assert state.error is None, state.error
    assert any(
        t.startswith("signature: the backup set is signed") and "SUPABASE_RESTORE_SIGNING_KEY" in t
        for t in state.not_tested
    ), state.not_tested


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("unsigned", "is not signed"),
        ("other-key", "does not match"),
        ("manifest-edited", "does not match"),
        ("garbage", "not a hex HMAC-SHA256"),
        ("symlink", "cannot be read as a regular file"),
    ],
)
def test_with_the_key_only_a_valid_signature_passes(
    signed: Path, tmp_path: Path, damage: str, message: str
) -> None:
    copy = copy_set(signed, tmp_path)
    sig = copy / mf.SIGNATURE
    key = SIGNING_KEY
    if damage == "unsigned":
        sig.unlink()
    elif damage == "other-key":
        key = OTHER_SIGNING_KEY
    elif damage == "manifest-edited":
        # A change the manifest check alone would accept (an attacker's re-listed set), and
        # one it would refuse: the signature is checked first, before anything is parsed.
        data = load(copy)
        data["version"] = -1
        save(copy, data)
    elif damage == "garbage":
        sig.write_text("not a signature\n")
    else:
        real = tmp_path / "elsewhere.sig"
        real.write_bytes(sig.read_bytes())
        sig.unlink()
        os.symlink(real, sig)
    run, state = drill(copy, tmp_path, signing_key=key)
    error = refused_in_integrity(run, state)
    assert message in error
    assert "malformed manifest" not in error


def test_with_the_key_a_cli_dump_is_refused(tmp_path: Path) -> None:
    dump = tmp_path / "cli"
    dump.mkdir()
    for name in ("roles.sql", "schema.sql", "data.sql"):
        (dump / name).write_text("")
    run, state = drill(dump, tmp_path, signing_key=SIGNING_KEY)
    assert "cannot be signed" in refused_in_integrity(run, state)


def test_signing_key_from_the_environment_refuses_an_unsigned_set(
    backup: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Through pytest itself: the key is read from the environment and never printed."""
    monkeypatch.setenv("SUPABASE_RESTORE_SIGNING_KEY", SIGNING_KEY)
    summary = tmp_path / "summary.json"
    result = pytester.runpytest(
        "--supabase-restore",
        f"--supabase-from-backup={backup}",
        "--supabase-summary-json",
        str(summary),
        "-p",
        "no:cacheprovider",
    )
    verdict = json.loads(summary.read_text())
    assert result.ret != 0 and verdict["status"] == "FAIL"
    assert "is not signed (no manifest.json.sig)" in verdict["reason"]
    assert SIGNING_KEY not in result.stdout.str() + result.stderr.str() + summary.read_text()


def test_keys_are_secrets_from_the_environment_only(tmp_path: Path) -> None:
    for name in ("SUPABASE_RESTORE_SIGNING_KEY", "SUPABASE_RESTORE_ENCRYPTION_KEY"):
        assert name in SECRET_ENV
        assert all(opt.env != name for opt in OPTIONS)  # no flag, no ini key
    config = Config(signing_key=SIGNING_KEY, encryption_key=ENCRYPTION_KEY)
    assert SIGNING_KEY in config.secrets() and ENCRYPTION_KEY in config.secrets()
    assert SIGNING_KEY not in repr(config) and ENCRYPTION_KEY not in repr(config)
    for bad, message in (
        ({"signing_key": "short"}, "at least 32"),
        ({"encryption_key": "bm90IDMyIGJ5dGVz"}, "32 random bytes"),
        ({"encryption_key": ENCRYPTION_KEY[:-2] + "!!"}, "32 random bytes"),
    ):
        with pytest.raises(pytest.UsageError, match=message):
            validate(Config(enabled=True, from_backup=tmp_path, **bad))


# -- encryption -----------------------------------------------------------------------------

SMALL_CHUNK = 1024


def _encrypted(tmp_path: Path, payload: bytes, rel: str = "db/1234.dat") -> Path:
    """``tmp_path/set/<rel>.enc`` holding ``payload`` in 1 KiB chunks."""
    src = tmp_path / "plain.bin"
    src.write_bytes(payload)
    root = tmp_path / "set"
    encrypt_file(src, root / (rel + ".enc"), parse_key(ENCRYPTION_KEY), rel, SMALL_CHUNK)
    return root


def _chunks(path: Path) -> tuple[bytes, list[bytes]]:
    raw = path.read_bytes()
    size = SMALL_CHUNK + TAG_BYTES
    body = raw[HEADER_BYTES:]
    return raw[:HEADER_BYTES], [body[i : i + size] for i in range(0, len(body), size)]


@pytest.mark.parametrize("length", [0, 1, SMALL_CHUNK, 3 * SMALL_CHUNK, 5000])
def test_encrypted_file_round_trip(tmp_path: Path, length: int) -> None:
    payload = os.urandom(length)
    root = _encrypted(tmp_path, payload)
    enc = root / "db/1234.dat.enc"
    assert payload[:16] not in enc.read_bytes() or length < 16
    _header, chunks = _chunks(enc)
    assert len(chunks) == max(1, -(-length // SMALL_CHUNK))
    size, sha = decrypt_file(root, "db/1234.dat", tmp_path / "out.bin", parse_key(ENCRYPTION_KEY))
    assert (size, sha) == (length, hashlib.sha256(payload).hexdigest())
    assert (tmp_path / "out.bin").read_bytes() == payload


@pytest.mark.parametrize(
    "damage",
    [
        "wrong-key",
        "drop-last-chunk",
        "cut-mid-chunk",
        "swap-chunks",
        "repeat-last-chunk",
        "flip-a-bit",
        "other-file",
        "chunk-size",
    ],
)
def test_encrypted_file_damage_does_not_decrypt(tmp_path: Path, damage: str) -> None:
    payload = os.urandom(3 * SMALL_CHUNK + 100)
    root = _encrypted(tmp_path, payload)
    enc = root / "db/1234.dat.enc"
    header, chunks = _chunks(enc)
    key = parse_key(ENCRYPTION_KEY)
    rel = "db/1234.dat"
    if damage == "wrong-key":
        key = parse_key(OTHER_ENCRYPTION_KEY)
    elif damage == "drop-last-chunk":  # cut exactly at a chunk boundary
        enc.write_bytes(header + b"".join(chunks[:-1]))
    elif damage == "cut-mid-chunk":
        enc.write_bytes(enc.read_bytes()[:-50])
    elif damage == "swap-chunks":
        enc.write_bytes(header + chunks[1] + chunks[0] + b"".join(chunks[2:]))
    elif damage == "repeat-last-chunk":
        enc.write_bytes(enc.read_bytes() + chunks[-1])
    elif damage == "flip-a-bit":
        raw = bytearray(enc.read_bytes())
        raw[HEADER_BYTES + 10] ^= 1
        enc.write_bytes(bytes(raw))
    elif damage == "other-file":  # the same ciphertext under another name in the set
        rel = "db/5678.dat"
        enc.rename(root / "db/5678.dat.enc")
    else:
        enc.write_bytes(header[:-4] + struct.pack(">I", 2 * SMALL_CHUNK) + b"".join(chunks))
    with pytest.raises(DecryptError, match="does not decrypt"):
        decrypt_file(root, rel, tmp_path / "out.bin", key)


def test_encrypted_export_holds_no_plaintext(sealed: Path, backup: Path) -> None:
    data = mf.read_manifest(sealed)
    assert data.version == mf.ENCRYPTED_VERSION and data.encryption is not None
    assert data.encryption.chunk_size > 0
    on_disk = {p.relative_to(sealed).as_posix() for p in sealed.rglob("*") if p.is_file()}
    assert on_disk == {rel + ".enc" for rel in data.files} | {mf.MANIFEST, mf.SIGNATURE}
    assert b"CREATE ROLE" not in (sealed / "roles.sql.enc").read_bytes()
    assert mf.verify_files(sealed, data) == []  # the ciphertext is checked without the key
    plain = mf.read_manifest(backup)
    assert data.files["roles.sql"].sha256 == plain.files["roles.sql"].sha256


def test_encrypted_set_decrypts_restores_and_leaves_no_plaintext(
    sealed: Path, tmp_path: Path
) -> None:
    run, state = drill(sealed, tmp_path, signing_key=SIGNING_KEY, encryption_key=ENCRYPTION_KEY)
    assert state.error is None, state.error
    assert run._decrypted is not None and run._decrypted.name.startswith(
        "supabase-restore-decrypted-"
    )
    assert not run._decrypted.exists(), "the decrypted copy was not removed at teardown"
    assert state.backup is not None
    assert state.backup.tables is not None and state.backup.tables > 5
    assert state.backup.objects == 3
    assert state.backup_dir == str(sealed)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (OTHER_ENCRYPTION_KEY, "wrong SUPABASE_RESTORE_ENCRYPTION_KEY?"),
        (None, "is encrypted, and SUPABASE_RESTORE_ENCRYPTION_KEY is not set"),
    ],
)
def test_encrypted_set_without_its_key_fails_integrity(
    sealed: Path, tmp_path: Path, key: str | None, message: str
) -> None:
    run, state = drill(sealed, tmp_path, signing_key=SIGNING_KEY, encryption_key=key)
    assert message in refused_in_integrity(run, state)
    assert run._decrypted is None or not run._decrypted.exists()


def test_changed_ciphertext_fails_integrity_even_when_relisted(
    sealed: Path, tmp_path: Path
) -> None:
    """Without the signing key anyone can re-list a changed .enc file in the manifest; the
    change still shows, as a chunk that does not decrypt."""
    copy = copy_set(sealed, tmp_path)
    enc = copy / "roles.sql.enc"
    raw = bytearray(enc.read_bytes())
    raw[-1] ^= 1
    enc.write_bytes(bytes(raw))
    data = load(copy)
    data["files"]["roles.sql"]["enc_sha256"] = hashlib.sha256(bytes(raw)).hexdigest()
    save(copy, data)
    run, state = drill(copy, tmp_path, encryption_key=ENCRYPTION_KEY)
    error = refused_in_integrity(run, state)
    assert "roles.sql.enc: chunk 0 does not decrypt" in error
