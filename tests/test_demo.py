"""The demo project: a real cluster and a real S3 server that look like a Supabase project."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pytest_supabase_restore.demo import DemoProject, s3_client
from pytest_supabase_restore.demo.seed_storage import MIB, default_object_count
from pytest_supabase_restore.pg.binaries import find_client_tools
from pytest_supabase_restore.pg.cluster import start_cluster
from pytest_supabase_restore.staging.platform import roles_sql

# Supabase's role attributes (supabase/postgres init scripts and demote-postgres migration),
# as the set of pg_roles flags that are true.
# As supabase/postgres leaves them today (staging/platform/roles.sql names the migrations):
# the API roles INHERIT since 20230529180330, supabase_auth_admin lost CREATEROLE in
# 20260821154147.
EXPECTED_ROLES: dict[str, set[str]] = {
    "postgres": {"inherit", "createrole", "createdb", "login", "replication", "bypassrls"},
    "anon": {"inherit"},
    "authenticated": {"inherit"},
    "service_role": {"inherit", "bypassrls"},
    "authenticator": {"login"},
    "supabase_auth_admin": {"login"},
    "supabase_storage_admin": {"createrole", "login"},
    "supabase_functions_admin": {"createrole", "login"},
    "supabase_replication_admin": {"inherit", "login", "replication"},
    "supabase_read_only_user": {"inherit", "login", "bypassrls"},
    "dashboard_user": {"inherit", "createrole", "createdb", "replication"},
    "pgbouncer": {"inherit", "login"},
}
EXPECTED_MEMBERSHIPS = {
    ("authenticator", "anon"),
    ("authenticator", "authenticated"),
    ("authenticator", "service_role"),
    ("postgres", "anon"),
    ("postgres", "authenticated"),
    ("postgres", "service_role"),
    ("supabase_read_only_user", "pg_read_all_data"),
}
_FLAGS = {
    "super": "rolsuper",
    "inherit": "rolinherit",
    "createrole": "rolcreaterole",
    "createdb": "rolcreatedb",
    "login": "rolcanlogin",
    "replication": "rolreplication",
    "bypassrls": "rolbypassrls",
}


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoProject]:
    project = DemoProject(scale=1)
    project.start()
    try:
        yield project
    finally:
        project.stop()


def _role_flags(conn: psycopg.Connection[Any]) -> dict[str, set[str]]:
    columns = ", ".join(_FLAGS.values())
    flags: dict[str, set[str]] = {}
    for row in conn.execute(f"SELECT rolname, {columns} FROM pg_roles"):
        flags[row[0]] = {name for name, value in zip(_FLAGS, row[1:], strict=True) if value}
    return flags


def _memberships(conn: psycopg.Connection[Any]) -> set[tuple[str, str]]:
    rows = conn.execute(
        "SELECT m.rolname, r.rolname FROM pg_auth_members AS am "
        "JOIN pg_roles AS m ON m.oid = am.member JOIN pg_roles AS r ON r.oid = am.roleid"
    )
    return {(member, role) for member, role in rows}


def _role_settings(conn: psycopg.Connection[Any]) -> dict[str, list[str]]:
    rows = conn.execute(
        "SELECT r.rolname, s.setconfig FROM pg_db_role_setting AS s "
        "JOIN pg_roles AS r ON r.oid = s.setrole WHERE s.setdatabase = 0"
    )
    return {name: list(config) for name, config in rows}


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def _footprint(project: DemoProject) -> tuple[set[int], list[Path]]:
    """Every process and path the running project owns."""
    assert project.cluster.process is not None and project.s3_server.process is not None
    postmaster = project.cluster.process.pid
    pids = {postmaster, project.s3_server.process.pid} | _children(postmaster)
    assert project.cluster.base_dir is not None
    # The S3 server's log file and its objects' directory are its only files; LocalS3Server
    # keeps their paths private.
    server = project.s3_server
    paths = [project.cluster.base_dir, Path(str(server._log)), Path(str(server._store))]
    return pids, paths


def _assert_gone(pids: set[int], paths: list[Path]) -> None:
    assert [p for p in pids if _alive(p)] == []
    assert [p for p in paths if p.exists()] == []


# ------------------------------------------------------------------------------------------
# Roles
# ------------------------------------------------------------------------------------------


def test_startup_time_at_scale_1(demo: DemoProject, capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.startup_seconds is not None
    with capsys.disabled():
        print(
            f"\ndemo project start-up at scale 1: {demo.startup_seconds:.2f}s "
            f"({sum(demo.counts.values())} rows, {sum(demo.objects_per_bucket.values())} objects)"
        )


def test_reserved_roles_have_supabase_attributes_and_memberships(demo: DemoProject) -> None:
    with psycopg.connect(demo.admin_url) as conn:
        flags = _role_flags(conn)
        memberships = _memberships(conn)
        settings = _role_settings(conn)
    assert {name: flags.get(name) for name in EXPECTED_ROLES} == EXPECTED_ROLES
    assert "super" in flags["supabase_admin"]
    assert memberships >= EXPECTED_MEMBERSHIPS
    # authenticator must not be able to become the superuser in the demo.
    assert ("authenticator", "supabase_admin") not in memberships
    assert settings["anon"] == ["statement_timeout=3s"]
    assert settings["authenticated"] == ["statement_timeout=8s"]


@pytest.mark.parametrize("bootstrap", ["supabase_admin", "postgres"])
def test_platform_roles_sql_is_idempotent_on_a_fresh_cluster(bootstrap: str) -> None:
    with (
        start_cluster(superuser=bootstrap, name="roles") as cluster,
        psycopg.connect(cluster.dsn(), autocommit=True) as conn,
    ):
        conn.execute(roles_sql())
        conn.execute(roles_sql())
        # A third run repairs drift instead of skipping roles that already exist.
        conn.execute("ALTER ROLE anon LOGIN BYPASSRLS")
        conn.execute("REVOKE authenticated FROM authenticator")
        conn.execute(roles_sql())
        flags = _role_flags(conn)
        memberships = _memberships(conn)
    expected = dict(EXPECTED_ROLES)
    if bootstrap == "postgres":
        # The bootstrap superuser is left alone: demoting it would break the cluster.
        expected["postgres"] = set(_FLAGS)
    assert {name: flags.get(name) for name in expected} == expected
    assert memberships >= EXPECTED_MEMBERSHIPS


# ------------------------------------------------------------------------------------------
# Schema
# ------------------------------------------------------------------------------------------


def test_rls_is_enabled_with_a_policy_on_every_public_table(demo: DemoProject) -> None:
    with psycopg.connect(demo.admin_url) as conn:
        tables = conn.execute(
            "SELECT c.relname, c.relrowsecurity, "
            "       (SELECT count(*) FROM pg_policy AS p WHERE p.polrelid = c.oid) "
            "FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1"
        ).fetchall()
    assert len(tables) >= 13
    assert [name for name, rls, _ in tables if not rls] == []
    assert [name for name, _, policies in tables if policies == 0] == []


def test_app_schema_has_the_variety_a_restore_must_survive(demo: DemoProject) -> None:
    with psycopg.connect(demo.admin_url) as conn:

        def one(query: str) -> Any:
            row = conn.execute(query).fetchone()
            assert row is not None
            return row[0]

        types = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT data_type FROM information_schema.columns WHERE table_schema = 'public'"
            )
        }
        assert {
            "jsonb", "ARRAY", "bytea", "timestamp with time zone", "numeric", "text", "boolean",
            "uuid", "date", "interval", "double precision", "USER-DEFINED",
        } <= types  # fmt: skip
        assert one("SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                   "WHERE n.nspname = 'public' AND t.typtype = 'e'") >= 2  # fmt: skip
        assert one("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' "
                   "AND is_generated = 'ALWAYS'") >= 3  # fmt: skip
        assert one("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' "
                   "AND is_identity = 'YES'") >= 2  # fmt: skip
        assert one("SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
                   "WHERE n.nspname = 'public' AND c.contype = 'c'") >= 5  # fmt: skip
        # A composite primary key, and a table without any.
        assert one("SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
                   "WHERE n.nspname = 'public' AND c.contype = 'p' AND cardinality(c.conkey) > 1 "
                   "AND c.conrelid = 'public.task_tags'::regclass") == 1  # fmt: skip
        assert one("SELECT count(*) FROM pg_constraint WHERE contype = 'p' "
                   "AND conrelid = 'public.import_log'::regclass") == 0  # fmt: skip
        # Range partitions with a default partition.
        assert one("SELECT partstrat FROM pg_partitioned_table "
                   "WHERE partrelid = 'public.audit_events'::regclass") == "r"  # fmt: skip
        assert (
            one(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'public.audit_events'::regclass"
            )
            == 4
        )
        assert one("SELECT partdefid FROM pg_partitioned_table "
                   "WHERE partrelid = 'public.audit_events'::regclass") != 0  # fmt: skip
        assert one(
            "SELECT reloptions FROM pg_class WHERE oid = 'public.project_overview'::regclass"
        ) == ["security_invoker=true"]
        assert one("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' "
                   "AND tablename = 'daily_task_stats' AND indexdef LIKE 'CREATE UNIQUE%'") == 1  # fmt: skip
        assert one("SELECT count(*) FROM public.daily_task_stats") > 0
        # Foreign keys into auth, the auth.users trigger and the Realtime publication.
        assert one("SELECT count(*) FROM pg_constraint WHERE contype = 'f' "
                   "AND confrelid = 'auth.users'::regclass "
                   "AND connamespace = 'public'::regnamespace") >= 8  # fmt: skip
        assert one("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'auth.users'::regclass "
                   "AND tgname = 'on_auth_user_created'") == 1  # fmt: skip
        published = {
            r[0]
            for r in conn.execute(
                "SELECT schemaname || '.' || tablename FROM pg_publication_tables "
                "WHERE pubname = 'supabase_realtime'"
            )
        }
        assert {"public.projects", "public.tasks", "public.comments"} <= published
        # Every table in public is owned by postgres and granted to the API roles.
        owners = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
            )
        }
        assert owners == {"postgres"}
        assert one("SELECT has_table_privilege('anon', 'public.tasks', 'SELECT, INSERT')") is True


def test_the_auth_trigger_created_one_profile_per_user(demo: DemoProject) -> None:
    with psycopg.connect(demo.admin_url) as conn:
        missing, extra, wrong = conn.execute(
            "SELECT "
            " (SELECT count(*) FROM auth.users u WHERE NOT EXISTS "
            "    (SELECT 1 FROM public.profiles p WHERE p.id = u.id)),"
            " (SELECT count(*) FROM public.profiles p WHERE NOT EXISTS "
            "    (SELECT 1 FROM auth.users u WHERE u.id = p.id)),"
            " (SELECT count(*) FROM auth.users u JOIN public.profiles p ON p.id = u.id "
            "    WHERE p.username IS DISTINCT FROM u.raw_user_meta_data ->> 'user_name')"
        ).fetchone() or (None, None, None)
    assert demo.counts["auth.users"] == demo.counts["public.profiles"] == 40
    assert (missing, extra, wrong) == (0, 0, 0)


def test_sequences_are_at_the_max_of_their_columns(demo: DemoProject) -> None:
    checked: dict[str, tuple[Any, Any]] = {}
    with psycopg.connect(demo.admin_url) as conn:
        columns = conn.execute(
            "SELECT n.nspname, c.relname, a.attname, "
            "       pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname) "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND a.attnum > 0 "
            "AND NOT a.attisdropped AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname) IS NOT NULL"
        ).fetchall()
        for schema, table, column, seq in columns:
            row = conn.execute(
                sql.SQL("SELECT max({}) FROM {}.{}").format(
                    sql.Identifier(column), sql.Identifier(schema), sql.Identifier(table)
                )
            ).fetchone()
            current = conn.execute(
                "SELECT last_value FROM pg_sequences "
                "WHERE quote_ident(schemaname) || '.' || quote_ident(sequencename) = %s",
                (seq,),
            ).fetchone()
            assert row is not None and current is not None
            checked[f"{schema}.{table}.{column}"] = (row[0], current[0])
    assert {
        "public.projects.id", "public.tasks.id", "public.comments.id", "public.tags.id",
        "public.audit_events.id", "auth.refresh_tokens.id", "supabase_functions.hooks.id",
    } <= set(checked)  # fmt: skip
    assert {k: v for k, v in checked.items() if v[0] != v[1]} == {}
    # And the next insert through a default does not collide with a seeded key.
    with psycopg.connect(demo.db_url) as conn:
        conn.execute("INSERT INTO public.tags (name) VALUES ('fresh tag')")
        conn.execute(
            "INSERT INTO public.projects (owner_id, name) SELECT id, 'fresh' FROM auth.users LIMIT 1"
        )
        conn.rollback()


# ------------------------------------------------------------------------------------------
# Storage
# ------------------------------------------------------------------------------------------


def test_every_storage_row_has_its_s3_object_and_vice_versa(demo: DemoProject) -> None:
    client = s3_client(demo.s3)
    in_s3: dict[tuple[str, str], tuple[int, str]] = {}
    s3_buckets = {b["Name"] for b in client.list_buckets()["Buckets"]}
    for bucket in s3_buckets:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                in_s3[(bucket, item["Key"])] = (item["Size"], item["ETag"])
    with psycopg.connect(demo.admin_url) as conn:
        rows = conn.execute(
            "SELECT bucket_id, name, metadata, owner_id, owner::text, path_tokens FROM storage.objects"
        ).fetchall()
        buckets = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT id, public, file_size_limit, allowed_mime_types FROM storage.buckets"
            )
        }
        attachments = conn.execute(
            "SELECT bucket_id, object_path, byte_size, sha256 FROM public.attachments"
        ).fetchall()
        avatar_urls = [
            r[0]
            for r in conn.execute(
                "SELECT avatar_url FROM public.profiles WHERE avatar_url IS NOT NULL"
            )
        ]
    in_db = {(b, n): (m["size"], m["eTag"]) for b, n, m, *_ in rows}

    assert len(in_db) == default_object_count(1) == sum(demo.objects_per_bucket.values())
    assert in_db == in_s3
    assert set(buckets) == s3_buckets == {"avatars", "documents", "images"}
    assert buckets["avatars"][0] is True and buckets["documents"][0] is False
    assert buckets["images"][1] == 2 * MIB and buckets["images"][2]
    names = [n for _, n in in_db]
    assert any(" " in n for n in names) and any(not n.isascii() for n in names)
    assert any(n.count("/") >= 3 for n in names)
    sizes = {s for s, _ in in_db.values()}
    assert {3, MIB} <= sizes

    for bucket, name, metadata, owner_id, owner, path_tokens in rows:
        assert set(metadata) == {
            "eTag", "size", "mimetype", "cacheControl", "lastModified", "contentLength", "httpStatusCode",
        }  # fmt: skip
        assert metadata["cacheControl"] == "max-age=3600" and metadata["httpStatusCode"] == 200
        assert metadata["eTag"].startswith('"') and metadata["contentLength"] == metadata["size"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", metadata["lastModified"])
        assert owner_id == owner and path_tokens == name.split("/")
        _, limit, allowed = buckets[bucket]
        assert limit is None or metadata["size"] <= limit
        assert allowed is None or metadata["mimetype"] in allowed
        if bucket == "documents":
            assert name.split("/")[0] == owner_id  # the folder the RLS policy keys on
    head = client.head_object(Bucket=rows[0][0], Key=rows[0][1])
    assert head["ContentType"] == rows[0][2]["mimetype"]
    assert head["CacheControl"] == "max-age=3600"

    assert avatar_urls and all(("avatars", url) in in_s3 for url in avatar_urls)
    assert (
        len(attachments) == demo.objects_per_bucket["documents"] + demo.objects_per_bucket["images"]
    )
    for bucket, path, size, digest in attachments:
        body = client.get_object(Bucket=bucket, Key=path)["Body"].read()
        assert (len(body), hashlib.sha256(body).digest()) == (size, bytes(digest))


# ------------------------------------------------------------------------------------------
# What a Supabase user (the non-superuser postgres role) can do
# ------------------------------------------------------------------------------------------


def test_postgres_can_act_as_a_user_and_rls_shows_only_their_rows(demo: DemoProject) -> None:
    with psycopg.connect(demo.admin_url) as conn:
        visible: dict[str, int] = dict(
            conn.execute(
                "SELECT u.id::text, (SELECT count(*) FROM public.tasks t "
                "                    WHERE u.id IN (t.creator_id, t.assignee_id)) "
                "FROM auth.users u ORDER BY u.created_at"
            ).fetchall()
        )
        public_projects = conn.execute(
            "SELECT count(*) FROM public.projects WHERE visibility = 'public'"
        ).fetchone()
    by_count: dict[int, str] = {}
    for user, count in visible.items():
        if count:
            by_count.setdefault(count, user)
    assert len(by_count) >= 2, "the seed should give users different amounts of data"
    sampled = [by_count[min(by_count)], by_count[max(by_count)]]

    with psycopg.connect(demo.db_url) as conn:
        total = conn.execute("SELECT count(*) FROM public.tasks").fetchone()
        assert total is not None and total[0] == demo.counts["public.tasks"]  # BYPASSRLS
        for user in sampled:
            conn.execute("SET LOCAL ROLE authenticated")
            conn.execute(
                "SELECT set_config('request.jwt.claims', %s, true)",
                (json.dumps({"sub": user, "role": "authenticated"}),),
            )
            seen = conn.execute(
                "SELECT auth.uid()::text, count(*), "
                "       count(*) FILTER (WHERE auth.uid() NOT IN (creator_id, coalesce(assignee_id, creator_id))) "
                "FROM public.tasks"
            ).fetchone()
            assert seen == (user, visible[user], 0)
            conn.rollback()

        conn.execute("SET LOCAL ROLE anon")
        conn.execute("SELECT set_config('request.jwt.claims', %s, true)", ('{"role": "anon"}',))
        anon = conn.execute(
            "SELECT (SELECT count(*) FROM public.projects), (SELECT count(*) FROM public.tasks), "
            "       (SELECT count(*) FROM public.tags) > 0, current_user"
        ).fetchone()
        conn.rollback()
    assert public_projects is not None
    assert anon == (public_projects[0], 0, True, "anon")


def test_pg_dump_as_postgres_in_an_exported_snapshot_dumps_every_schema(
    demo: DemoProject, tmp_path: Path
) -> None:
    tools = find_client_tools(demo.cluster.binaries.major)
    out = tmp_path / "demo.dump"
    with psycopg.connect(demo.db_url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        row = conn.execute("SELECT pg_export_snapshot(), current_user").fetchone()
        assert row is not None and row[1] == "postgres"
        dump = subprocess.run(
            [tools.path("pg_dump"), "--format=custom", "--file", str(out),
             "--snapshot", row[0], "--dbname", demo.db_url],
            capture_output=True, text=True, env=_clean_env(), timeout=120, check=False,
        )  # fmt: skip
        conn.rollback()
    assert dump.returncode == 0, dump.stderr
    assert "error" not in dump.stderr.lower()
    listing = subprocess.run(
        [tools.path("pg_restore"), "--list", str(out)],
        capture_output=True, text=True, env=_clean_env(), timeout=60, check=True,
    ).stdout  # fmt: skip
    for schema, table in [
        ("auth", "users"), ("auth", "identities"), ("auth", "refresh_tokens"),
        ("storage", "buckets"), ("storage", "objects"),
        ("public", "tasks"), ("public", "task_tags"), ("public", "import_log"),
        ("public", "audit_events_2025_01"), ("public", "audit_events_default"),
        ("supabase_functions", "hooks"), ("supabase_migrations", "schema_migrations"),
    ]:  # fmt: skip
        assert re.search(rf"TABLE DATA {schema} {table} ", listing), f"{schema}.{table} not dumped"
    assert "PUBLICATION TABLE public supabase_realtime tasks" in listing
    assert "MATERIALIZED VIEW DATA public daily_task_stats" in listing


# ------------------------------------------------------------------------------------------
# Life cycle
# ------------------------------------------------------------------------------------------


def _fingerprint(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return {
            table: str(
                (conn.execute(
                    sql.SQL("SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {} AS t").format(
                        sql.Identifier(*table.split("."))
                    )
                ).fetchone() or [""])[0]
            )
            # Not profiles: their avatar_url depends on the Storage objects, which differ here.
            for table in ("auth.users", "auth.identities", "public.projects", "public.tasks",
                          "public.comments", "public.audit_events", "public.import_log")
        }  # fmt: skip


class _SeedingFails(DemoProject):
    """A demo whose seeding step fails after the servers are up and the schema is loaded."""

    footprint: tuple[set[int], list[Path]]

    def _seed(self) -> None:
        self.footprint = _footprint(self)
        raise RuntimeError("injected seeding failure")


def test_a_second_project_is_identical_and_stop_leaves_nothing_behind(demo: DemoProject) -> None:
    other = DemoProject(scale=1, objects=2)
    other.start()
    try:
        pids, paths = _footprint(other)
        # Short-lived backends may come and go; the postmaster and the S3 server must be up.
        assert other.cluster.process is not None and other.s3_server.process is not None
        assert _alive(other.cluster.process.pid) and _alive(other.s3_server.process.pid)
        assert all(p.exists() for p in paths)
        # Deterministic: the same rows as the module's demo, byte for byte.
        assert _fingerprint(other.admin_url) == _fingerprint(demo.admin_url)
        # Not Storage (other objects here), and not the heartbeat the running pg_cron job
        # writes every minute: its count depends on how many minute boundaries have passed.
        left_out = ("storage.", "public.att", "public.cron_heartbeat")
        assert {k: v for k, v in other.counts.items() if not k.startswith(left_out)} == {
            k: v for k, v in demo.counts.items() if not k.startswith(left_out)
        }
        assert other.objects_per_bucket == {"avatars": 1, "documents": 1, "images": 0}
    finally:
        other.stop()
    _assert_gone(pids, paths)
    other.stop()  # a second stop is harmless


def test_a_failed_start_stops_everything_it_started() -> None:
    project = _SeedingFails(scale=1)
    with pytest.raises(RuntimeError, match="injected seeding failure"):
        project.start()
    pids, paths = project.footprint
    assert len(pids) >= 3  # postmaster, its background processes, the S3 server
    _assert_gone(pids, paths)
