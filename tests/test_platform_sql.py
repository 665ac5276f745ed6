"""The platform SQL (staging/platform/*.sql) on a real server: what a fresh Supabase project
has before any user SQL, applied as the bootstrap superuser supabase_admin."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pytest_supabase_restore.pg.binaries import find_client_tools
from pytest_supabase_restore.pg.cluster import Cluster

PLATFORM = resources.files("pytest_supabase_restore") / "staging" / "platform"
FILES = ("roles.sql", "base.sql", "event_triggers.sql", "auth.sql", "storage.sql")
VERSIONS: dict[str, Any] = json.loads((PLATFORM / "versions.json").read_text())
EVENT_TRIGGERS = {
    "issue_pg_cron_access",
    "issue_pg_net_access",
    "issue_pg_graphql_access",
    "issue_graphql_placeholder",
    "pgrst_ddl_watch",
    "pgrst_drop_watch",
}


def apply(cluster: Cluster, *names: str) -> None:
    with cluster.connect(autocommit=True) as conn:
        for name in names:
            conn.execute((PLATFORM / name).read_text())


def tool(name: str) -> str:
    return find_client_tools(15).path(name)


def dump_schema(cluster: Cluster, *args: str) -> str:
    out = subprocess.run(
        [tool("pg_dump"), cluster.dsn(), "--schema-only", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # pg_dump 15.14+ brackets its output with random \restrict keys.
    return "\n".join(line for line in out.splitlines() if not line.startswith("\\"))


def roles_snapshot(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        """
        SELECT r.rolname, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb,
               r.rolcanlogin, r.rolreplication, r.rolbypassrls, r.rolconfig,
               ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                     WHERE m.member = r.oid ORDER BY 1)
        FROM pg_roles r WHERE r.rolname !~ '^pg_' ORDER BY 1
        """
    ).fetchall()


@pytest.fixture(scope="module")
def platform() -> Iterator[Cluster]:
    with Cluster(superuser="supabase_admin", name="platform") as cluster:
        apply(cluster, *FILES)
        yield cluster


def test_postgres_is_demoted_and_the_api_roles_are_in_place(platform: Cluster) -> None:
    with platform.connect() as conn:
        row = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication, rolcanlogin"
            " FROM pg_roles WHERE rolname = 'postgres'"
        ).fetchone()
        assert row == (False, True, True, True, True, True)
        members = dict(
            conn.execute(
                "SELECT g.rolname, array_agg(u.rolname ORDER BY u.rolname) FROM pg_auth_members m"
                " JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member"
                " GROUP BY g.rolname"
            ).fetchall()
        )
        for api in ("anon", "authenticated", "service_role"):
            assert {"authenticator", "postgres"} <= set(members[api])
        assert conn.execute(
            "SELECT rolinherit, rolcanlogin FROM pg_roles WHERE rolname = 'authenticator'"
        ).fetchone() == (False, True)
        assert "postgres" not in members.get("supabase_auth_admin", [])
        owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        ).fetchone()
        assert owner == ("postgres",)


def test_event_triggers_exist_and_extensions_still_install(platform: Cluster) -> None:
    with platform.connect() as conn:
        found = {
            name: owner
            for name, owner in conn.execute(
                "SELECT evtname, pg_get_userbyid(evtowner) FROM pg_event_trigger"
            ).fetchall()
        }
        assert set(found) == EVENT_TRIGGERS
        assert set(found.values()) == {"supabase_admin"}
        # DROP/CREATE EXTENSION fire four of them; none may get in the way (rolled back).
        conn.execute("DROP EXTENSION pgcrypto")
        conn.execute("CREATE EXTENSION pgcrypto WITH SCHEMA extensions")
        assert conn.execute("SELECT extensions.gen_random_bytes(4) IS NOT NULL").fetchone() == (
            True,
        )
        conn.rollback()
    # postgres (not a superuser) may create trusted extensions, as on Supabase.
    with psycopg.connect(platform.set_password("postgres"), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA extensions")
        conn.execute("DROP EXTENSION citext")


def test_roles_base_and_event_triggers_are_idempotent(platform: Cluster) -> None:
    with platform.connect() as conn:
        roles_before = roles_snapshot(conn)
    schema_before = dump_schema(platform)
    apply(platform, "roles.sql", "base.sql", "event_triggers.sql")
    with platform.connect() as conn:
        assert roles_snapshot(conn) == roles_before
    assert dump_schema(platform) == schema_before


def test_auth_schema(platform: Cluster) -> None:
    with platform.connect() as conn:
        columns = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = 'auth' AND table_name = 'users'"
            ).fetchall()
        }
        assert {"is_anonymous", "is_sso_user", "phone", "confirmed_at", "deleted_at"} <= columns
        conn.execute(
            "SELECT set_config('request.jwt.claims', %s, true)",
            ['{"sub": "0b1e9a3c-4d5f-4a6b-8c7d-9e0f1a2b3c4d", "role": "authenticated"}'],
        )
        assert conn.execute("SELECT auth.uid()::text, auth.role()").fetchone() == (
            "0b1e9a3c-4d5f-4a6b-8c7d-9e0f1a2b3c4d",
            "authenticated",
        )
        conn.rollback()
        assert conn.execute("SELECT auth.uid()").fetchone() == (None,)
        versions = {r[0] for r in conn.execute("SELECT version FROM auth.schema_migrations")}
        gotrue = {
            re.match(r"\d+", name).group(0)  # type: ignore[union-attr]
            for name in (
                "00_init_auth_schema",
                "20240214120130_add_is_anonymous_column",
                VERSIONS["auth"]["newest_migration_version"] + "_newest",
            )
        }
        assert gotrue <= versions
        legacy = VERSIONS["auth"]["legacy_versions_from_the_image"]
        assert set(legacy) <= versions
        assert len(versions) == VERSIONS["auth"]["migration_files"] + len(legacy) == 77
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c"
            " WHERE c.relnamespace = 'auth'::regnamespace"
        ).fetchall()
        assert owners == [("supabase_auth_admin",)]
        assert conn.execute(
            "SELECT has_table_privilege('postgres', 'auth.schema_migrations', 'INSERT'),"
            " has_table_privilege('postgres', 'auth.users', 'SELECT WITH GRANT OPTION')"
        ).fetchone() == (False, True)


def test_storage_schema(platform: Cluster) -> None:
    with platform.connect() as conn:
        assert conn.execute("SELECT storage.foldername('a/b/c.png')").fetchone() == (["a", "b"],)
        assert conn.execute(
            "SELECT storage.filename('a/b/c.png'), storage.extension('a/b/c.tar.gz')"
        ).fetchone() == ("c.png", "gz")
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = 'storage' AND table_name = 'objects' ORDER BY ordinal_position"
            ).fetchall()
        ]
        assert columns == VERSIONS["storage"]["columns"]["objects"]
        assert {"bucket_id", "name", "metadata", "path_tokens", "user_metadata"} <= set(columns)
        rows = conn.execute("SELECT id, name, hash FROM storage.migrations ORDER BY id").fetchall()
        assert len(rows) == VERSIONS["storage"]["migrations_rows"] == 64
        assert rows[0][:2] == (0, "create-migrations-table")
        assert rows[-1][1] == VERSIONS["storage"]["newest_migration_name"]
        assert all(re.fullmatch(r"[0-9a-f]{40}", h) for _, _, h in rows)
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c"
            " WHERE c.relnamespace = 'storage'::regnamespace"
        ).fetchall()
        assert owners == [("supabase_storage_admin",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="Direct deletion"):
            conn.execute("DELETE FROM storage.objects")
        conn.rollback()


def test_versions_json_lists_the_columns_we_create(platform: Cluster) -> None:
    with platform.connect() as conn:
        for schema in ("auth", "storage"):
            found: dict[str, list[str]] = {}
            for table, column in conn.execute(
                "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                " WHERE c.relnamespace = %s::regnamespace AND c.relkind = 'r'"
                " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum",
                [schema],
            ).fetchall():
                found.setdefault(table, []).append(column)
            assert found == VERSIONS[schema]["columns"]


def keep_for_restore(toc_line: str) -> bool:
    """The TOC entries of a Supabase dump that a staging database prepared with roles.sql and
    base.sql still needs: everything in auth and storage, and the event triggers."""
    if toc_line.startswith(";") or not toc_line.strip():
        return False
    body = toc_line.split(" ", 3)[3] if toc_line.count(" ") >= 3 else ""
    return bool(
        re.match(r"(SCHEMA - |ACL - SCHEMA )(auth|storage) ", body)
        or re.match(r"[A-Z][A-Z ]* (auth|storage) ", body)
        or body.startswith("EVENT TRIGGER - ")
    )


def test_a_dump_restores_onto_roles_and_base(platform: Cluster, tmp_path: Path) -> None:
    archive = tmp_path / "platform.dump"
    subprocess.run(
        [tool("pg_dump"), platform.dsn(), "--format=custom", f"--file={archive}"], check=True
    )
    toc = subprocess.run(
        [tool("pg_restore"), "--list", str(archive)], capture_output=True, text=True, check=True
    ).stdout
    listing = tmp_path / "keep.list"
    listing.write_text("".join(line + "\n" for line in toc.splitlines() if keep_for_restore(line)))
    with Cluster(superuser="supabase_admin", name="platform-restore") as target:
        apply(target, "roles.sql", "base.sql")
        restored = subprocess.run(
            [
                tool("pg_restore"),
                f"--dbname={target.dsn()}",
                f"--use-list={listing}",
                "--exit-on-error",
                str(archive),
            ],
            capture_output=True,
            text=True,
        )
        assert restored.returncode == 0, restored.stderr
        assert restored.stderr == ""
        assert dump_schema(target) == dump_schema(platform)
        with target.connect() as conn:
            assert conn.execute("SELECT count(*) FROM auth.schema_migrations").fetchone() == (77,)
            assert conn.execute("SELECT count(*) FROM storage.migrations").fetchone() == (64,)


def test_a_source_without_the_pgbouncer_role_drops_it_and_its_schema_from_staging() -> None:
    """A Supabase project built without the pooler's role (an older project, or one set up
    without the image's pgbouncer file) has neither the role nor its schema. Staging's
    platform SQL made both, with ``pgbouncer.get_auth`` owned by supabase_admin; dropping
    the role used to fail on that function (DependentObjectsStillExist) and FAIL the drill."""
    from pytest_supabase_restore.restore import drop_platform_roles_absent

    with Cluster(superuser="supabase_admin", name="nopgbouncer") as cluster:
        apply(cluster, *FILES)
        with cluster.connect() as conn:
            roles = [r[0] for r in conn.execute("SELECT rolname::text FROM pg_roles")]
        source_roles = [r for r in roles if r != "pgbouncer"]
        assert "authenticator" in source_roles
        dropped = drop_platform_roles_absent(cluster.dsn(), source_roles)
        with cluster.connect() as conn:
            left = conn.execute(
                "SELECT to_regnamespace('pgbouncer'), to_regrole('pgbouncer'), "
                "to_regrole('supabase_admin') IS NOT NULL"
            ).fetchone()
    assert dropped == ["pgbouncer"]
    assert left == (None, None, True)
