"""Export and restore on real clusters and a real S3 server: the backup set is exact, bad
backups FAIL precisely, staging targets are refused when unsafe."""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pytest_supabase_restore import manifest
from pytest_supabase_restore.backupdir import apply_retention, inventory_files
from pytest_supabase_restore.connections import DISPOSABLE_MARKER, Connection
from pytest_supabase_restore.demo import DemoProject
from pytest_supabase_restore.demo.project import s3_client
from pytest_supabase_restore.errors import BackupError, SafetyError, ToolError
from pytest_supabase_restore.export import ExportOptions, export
from pytest_supabase_restore.pg.binaries import find_client_tools
from pytest_supabase_restore.pg.cluster import start_cluster
from pytest_supabase_restore.proof.fingerprint import compare_table
from pytest_supabase_restore.proof.inventory import diff_inventory, schema_inventory
from pytest_supabase_restore.proof.rls import rls_visibility
from pytest_supabase_restore.proof.scope import list_tables, pin_session
from pytest_supabase_restore.restore import restore_backup_set
from pytest_supabase_restore.staging.ephemeral import EphemeralStaging
from pytest_supabase_restore.staging.url import UrlStaging, check_safe


@pytest.fixture(scope="module")
def demo() -> Any:
    with DemoProject(scale=1) as project:
        yield project


@pytest.fixture(scope="module")
def backup(demo: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export(
        demo.db_url, tmp_path_factory.mktemp("sets"), s3=demo.s3, options=ExportOptions(jobs=2)
    )


@pytest.fixture(scope="module")
def staging(backup: Path) -> Any:
    target = EphemeralStaging.start(15)
    try:
        outcome = restore_backup_set(
            backup,
            target.dsn,
            find_client_tools(15),
            jobs=2,
            prepare_sql=target.prepare_sql,
            cron_inert=target.cron_inert,
        )
        assert not outcome.unexpected, [i.message for i in outcome.unexpected]
        yield target
    finally:
        target.stop()


def _copy(backup: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "copy"
    shutil.copytree(backup, dest)
    return dest


def test_backup_set_is_complete_and_owner_only(backup: Path) -> None:
    data = manifest.read_manifest(backup)
    assert manifest.verify_files(backup, data) == []
    assert data.snapshot_time and data.source.server_major == 15
    assert data.pg_dump.options and not any("--snapshot" in o for o in data.pg_dump.options)
    assert "public.tasks" in data.tables and "auth.users" in data.tables
    assert "auth.schema_migrations" not in data.tables  # platform migration history
    partitioned = [t for t in data.tables.values() if t.partitions]
    assert partitioned, "the partitioned table is recorded once, with its partitions"
    for part in partitioned[0].partitions:
        assert part not in data.tables
    assert len(data.storage.objects) == 30 and data.storage.missing_in_s3 == ()
    for path in [backup, *backup.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), path


def test_roles_dump_keeps_custom_roles_without_reserved_ones_or_passwords(backup: Path) -> None:
    roles = (backup / "roles.sql").read_text()
    assert 'CREATE ROLE "reporting_reader"' in roles
    for reserved in (
        "anon",
        "authenticated",
        "service_role",
        "authenticator",
        "supabase_admin",
        "postgres",
    ):
        assert f'CREATE ROLE "{reserved}"' not in roles
    assert "PASSWORD" not in roles.upper().replace("NOPASSWORD", "")


def test_restored_copy_matches_the_manifest(backup: Path, staging: Any) -> None:
    data = manifest.read_manifest(backup)
    with psycopg.connect(staging.dsn) as conn:
        pin_session(conn)
        tables = {t.qualified: t for t in list_tables(conn, list(data.scope_schemas))}
        assert set(tables) == set(data.tables)
        for name, expected in data.tables.items():
            assert expected.fingerprint is not None, name
            result = compare_table(conn, tables[name], expected.fingerprint)
            assert result.ok, result.message
        inventory = schema_inventory(conn, list(data.scope_schemas))
        assert diff_inventory(data.schema, inventory) == []
        visibility = rls_visibility(
            conn, list(tables.values()), list(data.rls.users), samples=data.rls.samples
        )
        assert visibility == data.rls.visibility


def test_export_is_consistent_under_concurrent_writes(demo: Any, tmp_path: Path) -> None:
    """A writer changes rows while the export runs; the manifest must still describe the dump."""
    stop = threading.Event()
    writes = 0

    def writer() -> None:
        nonlocal writes
        with psycopg.connect(demo.admin_url, autocommit=True) as conn:
            while not stop.is_set():
                conn.execute(
                    "UPDATE public.tags SET name = name || 'x' WHERE id = (SELECT min(id) FROM public.tags)"
                )
                conn.execute(
                    "INSERT INTO public.import_log SELECT * FROM public.import_log LIMIT 1"
                )
                writes += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.2)
        out = export(demo.db_url, tmp_path / "sets", s3=None, options=ExportOptions(jobs=2))
    finally:
        stop.set()
        thread.join()
    assert writes > 0
    data = manifest.read_manifest(out)
    target = EphemeralStaging.start(15, with_s3=False)
    try:
        outcome = restore_backup_set(
            out,
            target.dsn,
            find_client_tools(15),
            prepare_sql=target.prepare_sql,
            cron_inert=target.cron_inert,
        )
        assert not outcome.unexpected
        with psycopg.connect(target.dsn) as conn:
            pin_session(conn)
            for ref in list_tables(conn, list(data.scope_schemas)):
                recorded = data.tables[ref.qualified].fingerprint
                assert recorded is not None, ref.qualified
                result = compare_table(conn, ref, recorded)
                assert result.ok, result.message
    finally:
        target.stop()


@pytest.mark.parametrize("damage", ["missing", "truncated", "bitflip", "extra"])
def test_damaged_backup_file_is_named(backup: Path, tmp_path: Path, damage: str) -> None:
    copy = _copy(backup, tmp_path)
    victim = sorted((copy / "db").glob("*.dat*"))[0]
    rel = victim.relative_to(copy).as_posix()
    if damage == "missing":
        victim.unlink()
    elif damage == "truncated":
        victim.write_bytes(victim.read_bytes()[:-5])
    elif damage == "bitflip":
        raw = bytearray(victim.read_bytes())
        raw[len(raw) // 2] ^= 0x01
        victim.write_bytes(bytes(raw))
    else:
        (copy / "db" / "stray.dat").write_bytes(b"x")
        rel = "db/stray.dat"
    problems = manifest.verify_files(copy, manifest.read_manifest(copy))
    assert len(problems) == 1 and problems[0].startswith(rel)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: {**d, "version": 999}, "newer than this plugin understands"),
        (lambda d: {**d, "format": "something-else"}, "not a pytest-supabase-restore manifest"),
        (lambda d: {k: v for k, v in d.items() if k != "tables"}, "no 'tables'"),
        (None, "malformed manifest"),
    ],
)
def test_bad_manifest_is_a_precise_error(
    backup: Path, tmp_path: Path, edit: Any, message: str
) -> None:
    copy = _copy(backup, tmp_path)
    path = copy / "manifest.json"
    if edit is None:
        path.write_text(path.read_text()[:100])
    else:
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    with pytest.raises(BackupError, match=message):
        manifest.read_manifest(copy)


def test_missing_storage_bytes_are_recorded(tmp_path: Path) -> None:
    with DemoProject(scale=1, objects=6) as project:
        with psycopg.connect(project.admin_url) as conn:
            bucket, key = conn.execute(
                "SELECT bucket_id, name FROM storage.objects ORDER BY name LIMIT 1"
            ).fetchone()  # type: ignore[misc]
        client = s3_client(project.s3)
        client.delete_object(Bucket=bucket, Key=key)
        client.put_object(Bucket=bucket, Key="orphan/unknown.bin", Body=b"x")
        out = export(project.db_url, tmp_path, s3=project.s3)
    storage = manifest.read_manifest(out).storage
    assert storage.missing_in_s3 == ((bucket, key),)
    assert storage.unknown_to_db == ((bucket, "orphan/unknown.bin"),)


def test_wrong_client_tools_fail_before_anything_is_written(demo: Any, tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="--supabase-pg-bindir"):
        export(
            demo.db_url, tmp_path / "sets", s3=None, options=ExportOptions(pg_bindir=str(tmp_path))
        )
    assert not (tmp_path / "sets").exists()


def test_retention_keeps_the_newest_and_never_the_current(backup: Path, tmp_path: Path) -> None:
    base = tmp_path / "sets"
    base.mkdir()
    names = ["20260101T000000000Z", "20260201T000000000Z", "20260301T000000000Z"]
    for name in names:
        shutil.copytree(backup, base / name)
    (base / ".partial-20260401T000000000Z-1").mkdir()
    deleted = apply_retention(base, base / names[0], count=1, days=None)
    assert sorted(p.name for p in deleted) == [names[1]]
    assert (base / names[0]).exists() and (base / names[2]).exists()


def test_url_staging_refusals(tmp_path: Path) -> None:
    with start_cluster(name="urlsrc") as src, start_cluster(name="urlstg") as stg:
        with pytest.raises(SafetyError, match="same host, port and database"):
            check_safe(src.dsn(), src.dsn())
        with pytest.raises(SafetyError, match="not marked as disposable"):
            check_safe(stg.dsn(), src.dsn())
        with psycopg.connect(stg.dsn(), autocommit=True) as conn:
            conn.execute(f"COMMENT ON DATABASE postgres IS '{DISPOSABLE_MARKER}'")
        check_safe(stg.dsn(), src.dsn())
        target = UrlStaging.open(Connection(db_url=stg.dsn()), src.dsn())
        assert target.kind == "url" and not target.disposable and target.prepare_sql


def test_same_server_under_another_name_is_refused() -> None:
    with start_cluster(name="alias") as src:
        with psycopg.connect(src.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE other")
            conn.execute(f"COMMENT ON DATABASE other IS '{DISPOSABLE_MARKER}'")
        with pytest.raises(SafetyError, match="same PostgreSQL server"):
            check_safe(src.dsn("other"), src.dsn())


def test_unexpected_restore_error_names_the_statement(tmp_path: Path) -> None:
    """A backup whose schema references something the target lacks must FAIL, not pass."""
    with start_cluster(name="badsrc") as src:
        with psycopg.connect(src.dsn(), autocommit=True) as conn:
            conn.execute("CREATE ROLE ghost_owner")
            conn.execute("CREATE TABLE public.t (id int primary key)")
            conn.execute("ALTER TABLE public.t OWNER TO ghost_owner")
        out = export(src.dsn(), tmp_path, s3=None)
    (out / "roles.sql").write_text("")  # the role is lost from the backup
    data = manifest.read_manifest(out)
    manifest.write_manifest(out, dataclasses.replace(data, files=inventory_files(out)))
    target = EphemeralStaging.start(15, with_s3=False)
    try:
        outcome = restore_backup_set(
            out, target.dsn, find_client_tools(15), prepare_sql=target.prepare_sql
        )
    finally:
        target.stop()
    assert outcome.unexpected
    assert any("ghost_owner" in i.message and "OWNER TO" in i.statement for i in outcome.unexpected)


def test_webhook_triggers_are_neutralised(tmp_path: Path) -> None:
    with start_cluster(name="hooksrc") as src:
        with psycopg.connect(src.dsn(), autocommit=True) as conn:
            conn.execute("CREATE SCHEMA supabase_functions")
            conn.execute(
                "CREATE FUNCTION supabase_functions.http_request() RETURNS trigger LANGUAGE plpgsql "
                "AS $$ BEGIN RAISE EXCEPTION 'would call out'; END $$"
            )
            conn.execute("CREATE TABLE public.orders (id int primary key)")
            conn.execute(
                "CREATE TRIGGER notify_shop AFTER INSERT ON public.orders FOR EACH ROW "
                "EXECUTE FUNCTION supabase_functions.http_request()"
            )
        out = export(src.dsn(), tmp_path, s3=None)
    target = EphemeralStaging.start(15, with_s3=False)
    try:
        outcome = restore_backup_set(
            out, target.dsn, find_client_tools(15), prepare_sql=target.prepare_sql
        )
        assert any("notify_shop" in n for n in outcome.neutralised)
        with psycopg.connect(target.dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO public.orders VALUES (1)")  # no call-out fires
    finally:
        target.stop()


def test_unreachable_source_is_one_precise_error(tmp_path: Path) -> None:
    from pytest_supabase_restore.errors import SourceError
    from pytest_supabase_restore.pg.cluster import free_port

    url = f"postgresql://postgres:pw-never-shown@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(SourceError) as info:
        export(url, tmp_path / "sets", s3=None)
    assert "Cannot connect" in str(info.value) and "pw-never-shown" not in str(info.value)
    assert not (tmp_path / "sets").exists()


def test_failed_export_leaves_no_partial_set(demo: Any, tmp_path: Path) -> None:
    from pytest_supabase_restore.errors import DrillError
    from pytest_supabase_restore.pg.cluster import free_port
    from pytest_supabase_restore.storage.endpoint import S3Endpoint

    dead = S3Endpoint(f"http://127.0.0.1:{free_port()}", "local", "k", "s")
    with pytest.raises(DrillError):
        export(demo.db_url, tmp_path / "sets", s3=dead)
    assert list((tmp_path / "sets").iterdir()) == []


def test_passwords_go_through_the_environment_not_argv() -> None:
    from pytest_supabase_restore.pgtools import libpq_env

    env = libpq_env("postgresql://u:s3cr3t-pw@db.example:6543/app?sslmode=require")
    assert env["PGPASSWORD"] == "s3cr3t-pw" and env["PGHOST"] == "db.example"
    assert env["PGPORT"] == "6543" and env["PGSSLMODE"] == "require"


def test_container_target_without_docker_is_a_clear_error() -> None:
    from pytest_supabase_restore.errors import ConfigError
    from pytest_supabase_restore.staging import docker_available
    from pytest_supabase_restore.staging.container import ContainerStaging

    if docker_available():
        pytest.skip("a Docker engine answers here; this test covers machines without one")
    with pytest.raises(ConfigError, match="needs a running Docker engine"):
        ContainerStaging.start(15)


@pytest.mark.skipif(
    not __import__("pytest_supabase_restore.staging", fromlist=["x"]).docker_available(),
    reason="no Docker engine answers (`docker info` failed): the container target "
    "(supabase/postgres via testcontainers) cannot run on this machine",
)
def test_round_trip_into_a_supabase_postgres_container(backup: Path) -> None:
    from pytest_supabase_restore.staging.container import ContainerStaging

    target = ContainerStaging.start(15)
    try:
        outcome = restore_backup_set(
            backup, target.dsn, find_client_tools(15), platform_present=True
        )
        assert not outcome.unexpected, [i.message for i in outcome.unexpected]
    finally:
        target.stop()


def test_interrupt_during_export_stops_pg_dump_and_leaves_nothing(
    demo: Any, tmp_path: Path
) -> None:
    """Ctrl-C while the fingerprints run: pg_dump is stopped before the partial set is removed."""
    import subprocess

    def interrupt(message: str) -> None:
        if message.startswith("fingerprinted"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export(demo.db_url, tmp_path / "sets", s3=None, progress=interrupt)
    assert list((tmp_path / "sets").iterdir()) == []
    procs = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True, check=True)
    assert str(tmp_path) not in procs.stdout


def test_calling_out_follows_wrapper_functions() -> None:
    from pytest_supabase_restore.restore import calling_out

    functions = [
        (1, "public", "notify", "BEGIN PERFORM public.post_it(NEW.id); RETURN NEW; END"),
        (2, "public", "post_it", "SELECT net.http_post('https://x.invalid', '{}'::jsonb)"),
        (3, "public", "audit", "BEGIN INSERT INTO public.log VALUES (NEW.id); RETURN NEW; END"),
        (4, "public", "outer", "BEGIN PERFORM notify(); END"),
        (
            5,
            "app",
            "hook",
            "SELECT supabase_functions.http_request('x', 'POST', '{}', '{}', '1000')",
        ),
        (6, "app", "fetch", "SELECT content FROM extensions.http_get('https://x.invalid')"),
        (7, "app", "remote", "SELECT dblink_exec('host=elsewhere', 'DELETE FROM t')"),
        (8, "app", "posted", "SELECT 'http_post is only a word here'"),
    ]
    assert calling_out(functions) == {1, 2, 4, 5, 6, 7}


def test_interleaved_pg_restore_worker_output_is_parsed_per_error() -> None:
    """pg_restore --jobs workers share stderr; a line can start inside another's."""
    from pytest_supabase_restore.restore_messages import parse_pg_restore_errors

    missing = 'ERROR:  unrecognized configuration parameter "transaction_timeout"'
    stderr = (
        f"pg_restore: error: could not execute query: {missing}\n"
        "Command was: SET transaction_timeout = 0;pg_restore:pg_restore: error: could not "
        f"execute query: {missing}\n"
        "Command was: SET transaction_timeout = 0;\n\n"
        "pg_restore: warning: errors ignored on restore: 2\n"
    )
    assert (
        parse_pg_restore_errors(stderr)
        == [(" ".join(missing.split()), "SET transaction_timeout = 0;")] * 2
    )


@pytest.mark.parametrize("seed", range(40))
def test_any_interleaving_of_parallel_workers_pieces_gives_each_error_once(seed: int) -> None:
    """Each worker writes "pg_restore: ", "error: ", the text and the newline separately;
    whatever order the pieces of three workers land in, each failed statement is found once
    with its own statement, and the closing warning is not an error."""
    from pytest_supabase_restore.restore_messages import parse_pg_restore_errors

    rng = random.Random(seed)
    missing = 'ERROR:  unrecognized configuration parameter "transaction_timeout"'
    failed = 'ERROR:  relation "public.gone" does not exist'
    writers = [
        [
            piece
            for text in (
                f"could not execute query: {missing}\nCommand was: SET transaction_timeout = 0;",
                f"could not execute query: {failed}\nCommand was: ALTER TABLE public.gone OWNER TO x;",
            )
            for piece in ("pg_restore: ", "error: ", text, "\n")
        ]
        for _worker in range(3)
    ]
    out: list[str] = []
    while any(writers):
        out.append(rng.choice([w for w in writers if w]).pop(0))
    out.append("pg_restore: warning: errors ignored on restore: 6\n")
    assert sorted(parse_pg_restore_errors("".join(out))) == sorted(
        [(" ".join(missing.split()), "SET transaction_timeout = 0;")] * 3
        + [(" ".join(failed.split()), "ALTER TABLE public.gone OWNER TO x;")] * 3
    )


def test_an_error_whose_prefix_was_written_before_another_workers_error_is_its_own() -> None:
    """The interleaving CI met: worker A wrote "pg_restore: ", worker B its whole error, then
    A its "error: ..." on the next line. Two errors, each with its own statement."""
    from pytest_supabase_restore.restore_messages import parse_pg_restore_errors

    missing = 'ERROR:  unrecognized configuration parameter "transaction_timeout"'
    stderr = (
        f"pg_restore: pg_restore: error: could not execute query: {missing}\n"
        "Command was: SET transaction_timeout = 0;\n"
        f"error: could not execute query: {missing}\n"
        "Command was: SET transaction_timeout = 0;"
        f"error: could not execute query: {missing}\n"
        "Command was: SET transaction_timeout = 0;\n"
        "pg_restore: warning: errors ignored on restore: 3\n"
    )
    assert (
        parse_pg_restore_errors(stderr)
        == [(" ".join(missing.split()), "SET transaction_timeout = 0;")] * 3
    )


_DEFAULT_ACLS = """
SELECT pg_catalog.pg_get_userbyid(d.defaclrole)::text, n.nspname::text, d.defaclobjtype::text,
    d.defaclacl::text
FROM pg_catalog.pg_default_acl d
LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
WHERE n.nspname IS NULL OR n.nspname IN ('public', 'app')
ORDER BY 1, 2, 3
"""


def _restored_inventory(out: Path, schemas: list[str]) -> tuple[dict[str, Any], list[Any]]:
    """Restore ``out`` into a fresh ephemeral staging: its schema inventory and default
    privileges (the restore must have had no unexpected error)."""
    target = EphemeralStaging.start(15, with_s3=False)
    try:
        outcome = restore_backup_set(
            out,
            target.dsn,
            find_client_tools(15),
            prepare_sql=target.prepare_sql,
            manifest=manifest.read_manifest(out),
        )
        assert not outcome.unexpected, [i.message for i in outcome.unexpected]
        with psycopg.connect(target.dsn) as conn:
            return schema_inventory(conn, schemas), conn.execute(_DEFAULT_ACLS).fetchall()
    finally:
        target.stop()


def test_a_sequence_advanced_during_the_export_is_not_set_back(tmp_path: Path) -> None:
    """Sequence positions are not part of any snapshot: an insert on the source while the
    export runs moves them. Here the sequence moves after pg_dump has read it (the test
    waits until pg_dump's session is gone): the position the manifest records is the one
    from before pg_dump, so the restored sequence is never reported as set back."""
    with start_cluster(name="seqsrc") as src:
        with psycopg.connect(src.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE public.orders (id bigint GENERATED ALWAYS AS IDENTITY)")
            conn.execute("INSERT INTO public.orders DEFAULT VALUES")
        moved = threading.Event()

        def advance_after_pg_dump(message: str) -> None:
            if not message.startswith("fingerprinted") or moved.is_set():
                return
            with psycopg.connect(src.dsn(), autocommit=True) as conn:
                deadline = time.monotonic() + 60
                while conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump'"
                ).fetchone() != (0,):
                    assert time.monotonic() < deadline, "pg_dump did not finish"
                    time.sleep(0.05)
                for _ in range(5):
                    conn.execute("INSERT INTO public.orders DEFAULT VALUES")
            moved.set()

        out = export(src.dsn(), tmp_path, s3=None, progress=advance_after_pg_dump)
    assert moved.is_set()
    data = manifest.read_manifest(out)
    assert data.source.migration_history is None  # no Supabase CLI history here
    recorded = data.schema["sequences"]["public.orders_id_seq"]
    assert (recorded["last_value"], recorded["is_called"]) == (1, True)
    restored, _ = _restored_inventory(out, ["public"])
    diffs = diff_inventory(
        {"sequences": {"public.orders_id_seq": recorded}},
        {"sequences": restored["sequences"]},
    )
    assert diffs == []


def _platform_source_set(
    tmp_path: Path, schemas: list[str], *statements: str
) -> tuple[Path, dict[str, Any], list[Any]]:
    """A backup set of a fresh Supabase-like source (the platform SQL) after ``statements``:
    the set, the source's inventory of ``schemas`` and its default privileges."""
    from pytest_supabase_restore.staging import platform

    with start_cluster(name="platformsrc") as src:
        with psycopg.connect(src.dsn(), autocommit=True) as conn:
            conn.execute(platform.for_cli_dump())
            for statement in statements:
                conn.execute(statement)
        out = export(src.dsn(), tmp_path, s3=None)
        with psycopg.connect(src.dsn()) as conn:
            return out, schema_inventory(conn, schemas), conn.execute(_DEFAULT_ACLS).fetchall()


def test_staging_default_privileges_never_add_a_grant_the_source_revoked(tmp_path: Path) -> None:
    """A Supabase project grants whatever postgres creates in public to the API roles; apps
    revoke that on private tables. Staging has the same default privileges (it is a fresh
    Supabase project), so a table pg_restore creates there would get anon's grant back. The
    restore grants each object exactly what the source did, and ends with the source's own
    default privileges."""
    out, recorded, source_defaults = _platform_source_set(
        tmp_path,
        ["public", "app"],
        "SET ROLE postgres",
        "CREATE TABLE public.private_notes (id int PRIMARY KEY)",
        "REVOKE ALL ON public.private_notes FROM anon",
        "CREATE SCHEMA app",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO anon",
        "CREATE TABLE app.catalogue (id int PRIMARY KEY)",
    )
    restored, staging_defaults = _restored_inventory(out, ["public", "app"])
    assert "table public.private_notes to anon" not in restored["grants"]
    assert "table app.catalogue to anon" in restored["grants"]
    assert diff_inventory(recorded, restored) == []
    assert staging_defaults == source_defaults


def test_a_platform_role_the_source_never_had_is_not_in_staging(tmp_path: Path) -> None:
    """A project created before supabase_realtime_admin existed has neither the role nor
    its grant on public. Staging starts as today's project, and pg_restore never revokes
    what a target has in excess: the restore drops the platform roles the source lacks, so
    the grants compare equal. The manifest records the source's platform roles."""
    out, recorded, _ = _platform_source_set(
        tmp_path,
        ["public"],
        "DROP OWNED BY supabase_realtime_admin",
        "DROP ROLE supabase_realtime_admin",
        "CREATE TABLE public.notes (id int PRIMARY KEY)",
    )
    roles = manifest.read_manifest(out).source.platform_roles
    assert "authenticator" in roles and "supabase_realtime_admin" not in roles
    restored, _ = _restored_inventory(out, ["public"])
    assert "schema public to supabase_realtime_admin" not in restored["grants"]
    assert diff_inventory(recorded, restored) == []


def test_the_cli_migration_history_is_counted_not_backed_up(backup: Path) -> None:
    """supabase_migrations is outside the backup's scope (as in the CLI's own dumps); the
    manifest counts the migrations the source recorded, so the verdict can say so."""
    data = manifest.read_manifest(backup)
    assert data.source.migration_history == 4  # the demo's four migrations
    assert not any(t.startswith("supabase_migrations.") for t in data.tables)
