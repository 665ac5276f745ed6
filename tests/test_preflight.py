"""The preflight (``--supabase-dry-run``) against real servers: a PostgreSQL cluster whose
roles have real privilege gaps, the local S3 server, a staging URL that is the source, an
unreachable one, a pooler port. Each failure names its cause and its fix, the fix is shown
to work where it is a GRANT, and nothing is written: the source's pg_dump is the same
before and after, and the object store holds what it held."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pytest_httpserver import HTTPServer
from tcpfaults import TcpProxy
from werkzeug import Request, Response

from pytest_supabase_restore.config import Config
from pytest_supabase_restore.connections import Connection
from pytest_supabase_restore.errors import SourceError
from pytest_supabase_restore.export import ExportOptions, export
from pytest_supabase_restore.pg.binaries import find_client_tools
from pytest_supabase_restore.pg.cluster import Cluster
from pytest_supabase_restore.pgtools import run_tool
from pytest_supabase_restore.preflight import FAIL, INFO, PASS, WARN, Check, run_preflight
from pytest_supabase_restore.staging import docker_available
from pytest_supabase_restore.storage.client import iter_objects, list_buckets, make_client
from pytest_supabase_restore.storage.endpoint import S3Endpoint
from pytest_supabase_restore.storage.server import LocalS3Server

APP_SQL = """
CREATE TABLE public.accounts (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO public.accounts SELECT g, 'account ' || g FROM generate_series(1, 500) g;
CREATE TABLE public.secrets (id int PRIMARY KEY, token text);
CREATE SEQUENCE public.counter;
CREATE SCHEMA billing;
CREATE TABLE billing.invoices (id int PRIMARY KEY, account int REFERENCES public.accounts);
INSERT INTO billing.invoices SELECT g, g FROM generate_series(1, 100) g;
-- never analysed: no autovacuum, no ANALYZE, so reltuples stays -1
CREATE TABLE public.fresh (id int PRIMARY KEY, body text) WITH (autovacuum_enabled = false);
INSERT INTO public.fresh SELECT g, repeat('x', 200) FROM generate_series(1, 3000) g;
CREATE SCHEMA storage;
CREATE TABLE storage.buckets (id text PRIMARY KEY, name text);
CREATE TABLE storage.objects (bucket_id text REFERENCES storage.buckets, name text,
    PRIMARY KEY (bucket_id, name));
INSERT INTO storage.buckets VALUES ('kept', 'kept'), ('gone', 'gone');
INSERT INTO storage.objects VALUES ('kept', 'a.txt'), ('kept', 'lost.txt');
SELECT lo_from_bytea(424242, 'large object bytes');
-- restorability lint: a foreign-key cycle, a trigger on auth.users, a webhook trigger
CREATE TABLE public.teams (id int PRIMARY KEY, owner int);
CREATE TABLE public.members (id int PRIMARY KEY, team int REFERENCES public.teams);
ALTER TABLE public.teams ADD FOREIGN KEY (owner) REFERENCES public.members;
CREATE SCHEMA auth;
CREATE TABLE auth.users (id uuid PRIMARY KEY);
CREATE FUNCTION public.on_signup() RETURNS trigger LANGUAGE plpgsql AS
    $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users
    FOR EACH ROW EXECUTE FUNCTION public.on_signup();
CREATE FUNCTION public.notify_shop() RETURNS trigger LANGUAGE plpgsql AS
    $$BEGIN PERFORM net.http_post('https://example.invalid/hook', '{}'::jsonb); RETURN NEW; END$$;
CREATE TRIGGER accounts_webhook AFTER INSERT ON public.accounts
    FOR EACH ROW EXECUTE FUNCTION public.notify_shop();
CREATE EXTENSION citext;
CREATE TABLE public.people (email citext PRIMARY KEY);
"""


def url(cluster: Cluster, dbname: str, user: str, *, host: str = "127.0.0.1", port: int = 0) -> str:
    return f"postgresql://{user}@{host}:{port or cluster.port}/{dbname}?passfile={cluster.passfile}"


@pytest.fixture(scope="module")
def source() -> Iterator[Cluster]:
    """``app``: the superuser reads everything; ``reader`` lacks USAGE on billing, SELECT on
    public.secrets, public.counter and the large object; ``nousage`` reads every table but
    lacks USAGE on billing (what the real export meets first)."""
    with Cluster(name="preflight-src") as cluster:
        with cluster.connect(autocommit=True) as admin:
            admin.execute("CREATE DATABASE app")
            for role in ("reader", "nousage"):
                admin.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER")
                cluster.set_password(role)
        with psycopg.connect(cluster.dsn("app"), autocommit=True) as app:
            app.execute(APP_SQL)
            app.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
            app.execute("GRANT USAGE ON SCHEMA public, storage TO reader, nousage")
            app.execute("GRANT SELECT ON public.accounts, public.fresh TO reader")
            app.execute("GRANT SELECT ON ALL TABLES IN SCHEMA storage TO reader, nousage")
            app.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public, billing TO nousage")
            app.execute("GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO nousage")
            app.execute("GRANT SELECT ON LARGE OBJECT 424242 TO nousage")
            app.execute("ALTER ROLE reader SET statement_timeout = '5s'")
        with cluster.connect(autocommit=True) as admin:
            admin.execute("CREATE DATABASE bare")
        with psycopg.connect(cluster.dsn("bare"), autocommit=True) as bare:
            bare.execute("CREATE SCHEMA billing")
            bare.execute("CREATE TABLE billing.invoices (id int PRIMARY KEY)")
            bare.execute("GRANT SELECT ON billing.invoices TO nousage")
        yield cluster


@pytest.fixture(scope="module")
def s3() -> Iterator[LocalS3Server]:
    """The object store: bucket ``kept`` (one of its two rows has bytes); ``gone`` missing."""
    with LocalS3Server("preflight-s3") as server:
        client = make_client(server.endpoint)
        client.create_bucket(
            Bucket="kept", CreateBucketConfiguration={"LocationConstraint": "local"}
        )  # type: ignore[typeddict-item]
        client.put_object(Bucket="kept", Key="a.txt", Body=b"hello world")
        yield server


def image(cluster: Cluster) -> str:
    """The database and the roles as pg_dump and pg_dumpall print them."""
    tools = find_client_tools(15)
    parts = []
    for args, dsn in (
        ([tools.path("pg_dump"), "--no-password"], cluster.dsn("app")),
        ([tools.path("pg_dumpall"), "--globals-only", "--no-password"], cluster.dsn()),
    ):
        result = run_tool(args, dsn, timeout=120)
        assert result.returncode == 0, result.stderr
        parts.append(result.stdout)
    return re.sub(r"^\\(un)?restrict .*$", "", "\n".join(parts), flags=re.M)


def store(endpoint: S3Endpoint) -> dict[str, list[tuple[str, int]]]:
    client = make_client(endpoint)
    return {
        b: sorted((str(o["Key"]), int(o["Size"])) for o in iter_objects(client, b))
        for b in list_buckets(client)
    }


def preflight(db_url: str, s3: S3Endpoint | None = None, **settings: object) -> dict[str, Check]:
    config = Config(enabled=True, dry_run=True, jobs=2, **settings)  # type: ignore[arg-type]
    checks = run_preflight(config, db_url, s3, [db_url])
    return {c.check: c for c in checks}


# -- privileges: every gap, with the GRANT that closes it -----------------------------------
@pytest.mark.timeout(120)
def test_privilege_gaps_fail_with_the_exact_grants_and_the_grants_fix_them(
    source: Cluster,
) -> None:
    before = image(source)
    checks = preflight(url(source, "app", "reader"))
    schema = checks["source schema access"]
    assert schema.status == FAIL and "schema billing" in schema.result
    assert "GRANT USAGE ON SCHEMA billing TO reader;" in schema.fix
    tables = checks["source table access"]
    assert tables.status == FAIL and "public.secrets" in tables.result
    assert "billing.invoices" in tables.result and "public.accounts" not in tables.result
    assert "GRANT SELECT ON TABLE public.secrets TO reader;" in tables.fix
    seq = checks["source sequence access"]
    assert seq.status == FAIL and "GRANT SELECT ON SEQUENCE public.counter TO reader;" in seq.fix
    lo = checks["source large objects"]
    assert lo.status == FAIL and "GRANT SELECT ON LARGE OBJECT 424242 TO reader;" in lo.fix
    timeouts = checks["source timeouts"]
    assert timeouts.status == INFO and "statement_timeout=5000ms" in timeouts.result
    assert "turns these off" in timeouts.result
    assert image(source) == before, "the preflight changed the source"
    # The fixes it names are the right ones: run them, and every check passes.
    fixes = [checks[n].fix.split("run: ", 1)[1] for n in ("source schema access",
             "source table access", "source sequence access", "source large objects")]  # fmt: skip
    with psycopg.connect(source.dsn("app"), autocommit=True) as app:
        for statement in " ".join(fixes).split(";"):
            if statement.strip():
                app.execute(statement)
        try:
            fixed = preflight(url(source, "app", "reader"))
        finally:
            app.execute("REVOKE USAGE ON SCHEMA billing FROM reader")
            app.execute("REVOKE SELECT ON public.secrets, billing.invoices FROM reader")
            app.execute("REVOKE SELECT ON SEQUENCE public.counter FROM reader")
            app.execute("REVOKE SELECT ON LARGE OBJECT 424242 FROM reader")
    for name in ("source schema access", "source table access", "source sequence access",
                 "source large objects"):  # fmt: skip
        assert fixed[name].status == PASS, fixed[name]


@pytest.mark.timeout(120)
def test_the_real_export_names_usage_on_the_schema_not_select(
    source: Cluster, tmp_path: Path
) -> None:
    """The export's own message for a schema without USAGE named GRANT SELECT: wrong."""
    checks = preflight(url(source, "bare", "nousage"))
    assert checks["source schema access"].status == FAIL
    assert checks["source table access"].status == PASS
    with pytest.raises(SourceError) as info:
        export(url(source, "bare", "nousage"), tmp_path, s3=None, options=ExportOptions(jobs=1))
    message = str(info.value)
    assert "schema billing" in message, message
    assert "GRANT USAGE ON SCHEMA billing" in message and "GRANT SELECT" not in message, message


# -- sizes -----------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_never_analysed_tables_are_unknown_rows_with_their_heap_size(source: Cluster) -> None:
    checks = preflight(source.dsn("app"))
    with source.connect("app") as conn:
        heap = conn.execute("SELECT pg_relation_size('public.fresh')").fetchone()
        reltuples = conn.execute(
            "SELECT reltuples FROM pg_class WHERE oid = 'public.fresh'::regclass"
        ).fetchone()
    assert reltuples == (-1,), "the table was analysed: the test proves nothing"
    assert heap is not None and heap[0] > 100_000
    fresh = checks["table public.fresh"]
    assert fresh.result.startswith("rows unknown (never analysed), ")
    assert f"{heap[0] / 1024:.1f} KiB of rows" in fresh.result, fresh.result
    assert "public.fresh" in checks["source statistics"].result
    size = checks["source size"]
    assert re.search(r"\d+ tables \([\d.]+ KiB of rows", size.result), size.result
    assert "1 large objects" in size.result


# -- storage ---------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_a_bucket_the_endpoint_lacks_fails_and_rows_without_bytes_are_counted(
    source: Cluster, s3: LocalS3Server
) -> None:
    before = store(s3.endpoint)
    checks = preflight(source.dsn("app"), s3.endpoint)
    buckets = checks["storage buckets"]
    assert buckets.status == FAIL and "gone" in buckets.result and "NoSuchBucket" in buckets.result
    assert "kept" not in buckets.result and buckets.fix
    kept = checks["bucket kept"]
    assert kept.status == WARN and kept.result.startswith("1 objects, 11 B; 1 row(s)")
    assert "lost.txt" not in kept.result  # object names are the project's data
    assert store(s3.endpoint) == before


# -- staging ---------------------------------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize("address", ["same", "127.1", "proxy"])
def test_a_staging_url_that_is_the_source_fails(source: Cluster, address: str) -> None:
    db_url = source.dsn("app")
    with source.connect(autocommit=True) as admin:  # even marked: identity decides first
        admin.execute("COMMENT ON DATABASE app IS 'pytest-supabase-restore:disposable'")
    try:
        with TcpProxy(source.port) as proxy:
            staging = {
                "same": db_url,
                "127.1": url(source, "app", "postgres", host="127.1"),
                "proxy": url(source, "app", "postgres", port=proxy.port),
            }[address]
            checks = preflight(db_url, staging="url", target=Connection(db_url=staging))
    finally:
        with source.connect(autocommit=True) as admin:
            admin.execute("COMMENT ON DATABASE app IS NULL")
    safety = checks["staging safety"]
    assert safety.status == FAIL, safety
    expected = "same host, port and database" if address == "same" else "same PostgreSQL server"
    assert expected in safety.result and safety.fix, safety


@pytest.mark.timeout(60)
def test_an_unreachable_staging_url_fails(source: Cluster) -> None:
    staging = "postgresql://postgres:x@127.0.0.1:1/nope"
    checks = preflight(source.dsn("app"), staging="url", target=Connection(db_url=staging))
    safety = checks["staging safety"]
    assert safety.status == FAIL and safety.result.startswith("Cannot connect to STAGING_DB_URL")
    assert "postgres:***@127.0.0.1:1/nope" in safety.result and ":x@" not in safety.result
    assert "host, port" in safety.fix


@pytest.mark.timeout(60)
def test_auto_with_a_staging_url_says_which_target_it_uses_and_why(source: Cluster) -> None:
    other = "postgresql://postgres@127.0.0.1:1/elsewhere"
    checks = preflight(source.dsn("app"), staging="auto", target=Connection(db_url=other))
    target = checks["staging target"]
    kind, why = (
        ("container", "a Docker engine answers")
        if docker_available()
        else ("ephemeral", "no Docker engine answers")
    )
    assert target.status == FAIL
    assert f"will use a {kind} target ({why}), not STAGING_DB_URL" in target.result
    assert "--supabase-staging=url" in target.fix


@pytest.mark.timeout(60)
def test_a_transaction_pooler_port_fails_naming_the_session_url(
    source: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Supavisor's transaction mode listens on 6543: a real server behind that port."""
    create = socket.create_server
    monkeypatch.setattr(
        socket, "create_server", lambda _addr, **kw: create(("127.0.0.1", 6543), **kw)
    )
    try:
        proxy = TcpProxy(source.port)
    except OSError:
        pytest.skip("port 6543 is taken on this machine")
    finally:
        monkeypatch.undo()
    with proxy:
        checks = preflight(url(source, "app", "postgres", port=6543))
    pooler = checks["source pooler"]
    assert pooler.status == FAIL and "transaction mode" in pooler.result
    assert "session pooler" in pooler.fix and "port 5432" in pooler.fix
    assert checks["source connection"].status == PASS  # it is reachable: the mode is the fault


# -- restorability lint, connection limits ---------------------------------------------------
@pytest.mark.timeout(60)
def test_lint_names_what_a_restore_cannot_carry_or_switches_off(source: Cluster) -> None:
    checks = preflight(source.dsn("app"))
    cycle = checks["circular foreign keys"]
    assert cycle.status == WARN and "(members -> teams)" in cycle.result, cycle
    users = checks["auth.users triggers"]
    assert users.status == WARN and "on_auth_user_created" in users.result
    hooks = checks["webhook triggers"]
    assert hooks.status == INFO and "public.accounts: accounts_webhook" in hooks.result
    roles = checks["login roles"]
    assert (
        roles.status == WARN
        and "nousage, reader" in roles.result
        and "postgres" not in roles.result
    )
    assert "PASSWORD" in roles.fix
    assert checks["pg_cron jobs"].result == "pg_cron is not installed"


@pytest.mark.timeout(60)
def test_a_role_connection_limit_below_the_export_need_fails(source: Cluster) -> None:
    with source.connect(autocommit=True) as admin:
        admin.execute("ALTER ROLE reader CONNECTION LIMIT 2")
        try:
            checks = preflight(url(source, "app", "reader"))
        finally:
            admin.execute("ALTER ROLE reader CONNECTION LIMIT -1")
    slots = checks["source connections"]
    assert slots.status == FAIL and "the role's connection limit 2" in slots.result, slots
    assert "connection limit" in slots.fix
    assert preflight(url(source, "app", "reader"))["source connections"].status == PASS


@pytest.mark.timeout(60)
def test_disk_need_is_held_against_the_free_space_where_the_set_goes(
    source: Cluster, tmp_path: Path
) -> None:
    import shutil

    checks = preflight(source.dsn("app"), backup_dir=tmp_path / "sets", staging="ephemeral")
    disk = checks["disk"]
    assert disk.status == PASS and f"in {tmp_path}," in disk.result, disk
    free = shutil.disk_usage(tmp_path).free / 1024**3
    assert re.search(r"needs up to [\d.]+ MiB", disk.result)
    shown = re.search(r", ([\d.]+) GiB free$", disk.result)
    assert shown and abs(float(shown.group(1)) - free) < max(1.0, free * 0.05), disk.result
    assert re.search(
        r"^about \d+ s for [\d.]+ [KM]iB of rows and 0 objects", checks["estimated time"].result
    )
    assert not (tmp_path / "sets").exists()


# -- notifications: one GET to a local GitHub, nothing to Slack ------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("answer", "status", "expected"),
    [
        (
            {"has_issues": True, "permissions": {"pull": True, "triage": True}},
            PASS,
            "reads acme/shop",
        ),
        ({"has_issues": True, "permissions": {"pull": True, "push": False}}, FAIL, "not write"),
        ({"has_issues": False}, FAIL, "issues turned off"),
        (None, FAIL, "401"),
    ],
)
def test_the_github_token_is_checked_with_one_read_only_request(
    source: Cluster, httpserver: HTTPServer, answer: object, status: str, expected: str
) -> None:
    seen: list[Request] = []

    def respond(request: Request) -> Response:
        seen.append(request)
        if answer is None:
            return Response('{"message": "Bad credentials"}', status=401)
        return Response(json.dumps(answer), content_type="application/json")

    httpserver.expect_request("/repos/acme/shop").respond_with_handler(respond)
    checks = preflight(
        source.dsn("app"),
        github_issue=True,
        github_token="ghp_preflighttoken",
        github_repository="acme/shop",
        github_api_url=httpserver.url_for("/").rstrip("/"),
    )
    github = checks["github"]
    assert github.status == status and expected in github.result, github
    assert [(r.method, r.path) for r in seen] == [("GET", "/repos/acme/shop")]
    assert seen[0].headers["Authorization"] == "Bearer ghp_preflighttoken"
    assert "ghp_preflighttoken" not in github.result + github.fix


@pytest.mark.timeout(60)
def test_the_slack_url_is_checked_for_its_form_and_nothing_is_sent(
    source: Cluster, httpserver: HTTPServer
) -> None:
    hook = httpserver.url_for("/services/T000/B000/secretpart")
    good = preflight(source.dsn("app"), slack=True, slack_webhook_url=hook)["slack"]
    assert good.status == PASS and "secretpart" not in good.result
    assert httpserver.log == []  # a dry run posts nothing
    bad = preflight(source.dsn("app"), slack=True, slack_webhook_url="hooks.slack.com/x")["slack"]
    assert bad.status == FAIL and "hooks.slack.com/services" in bad.result
    unset = preflight(source.dsn("app"), slack=True)["slack"]
    assert unset.status == FAIL and unset.fix == "set SLACK_WEBHOOK_URL"


# -- a staging URL that is safe ----------------------------------------------------------------
@pytest.mark.timeout(120)
def test_a_disposable_staging_on_another_server_passes_with_its_proof_and_endpoint(
    source: Cluster, s3: LocalS3Server
) -> None:
    with Cluster(name="preflight-stg") as other:
        with other.connect(autocommit=True) as admin:
            admin.execute("COMMENT ON DATABASE postgres IS 'pytest-supabase-restore:disposable'")
        endpoint = s3.endpoint
        target = Connection(
            db_url=other.dsn(),
            s3_endpoint=endpoint.url,
            s3_region=endpoint.region,
            s3_access_key_id=endpoint.access_key_id,
            s3_secret_access_key=endpoint.secret_access_key,
        )
        checks = preflight(source.dsn("app"), staging="url", target=target)
    assert checks["staging safety"].status == PASS, checks["staging safety"]
    assert "different" in checks["staging safety"].result
    assert checks["staging version"].status == PASS
    assert (
        checks["staging storage"].status == PASS and "1 buckets" in checks["staging storage"].result
    )


# -- extensions the staging target cannot load -----------------------------------------------
@pytest.mark.timeout(120)
def test_an_extension_the_staging_server_lacks_is_named_with_its_dependents(
    source: Cluster,
) -> None:
    """The throwaway staging server's installation lacks citext (a private view of this
    machine's, as in test_unloadable_extension); the same installation with it passes."""
    import os
    import shutil
    import tempfile

    from test_unloadable_extension import installation_without

    base = Path(tempfile.mkdtemp(prefix="preflight-ext-"))
    os.chmod(base, 0o755)  # noqa: S103 - the server's OS user must reach the installation
    try:
        bindir = installation_without("citext", base / "root")
        checks = preflight(source.dsn("app"), staging="ephemeral", pg_bindir=bindir)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    lacking = checks["extensions"]
    assert lacking.status == WARN and "citext (" in lacking.result, lacking
    assert "column email of table people" in lacking.result, lacking
    assert "plpgsql" not in lacking.result
    full = preflight(source.dsn("app"), staging="ephemeral")["extensions"]
    assert full.status == PASS and "loadable by the throwaway staging server" in full.result


@pytest.mark.timeout(60)
def test_a_container_target_needs_docker_to_answer(source: Cluster) -> None:
    from pytest_supabase_restore.staging import container_problem

    problem = container_problem()
    docker = preflight(source.dsn("app"), staging="container")["staging docker"]
    if problem is None:
        assert (
            docker.status == PASS and "Docker answers; image supabase/postgres:15" in docker.result
        )
    else:
        assert docker.status == FAIL and problem.startswith(docker.result), (docker, problem)
        assert "--supabase-staging=ephemeral" in docker.fix


# -- a given backup, no source ---------------------------------------------------------------
def test_psql_versions_that_know_restrict() -> None:
    from pytest_supabase_restore.preflight.backup import psql_knows_restrict

    known = {"13.22": True, "14.18": False, "15.13": False, "15.14": True, "16.10": True,
             "17.5": False, "17.6": True, "18.0": True, "12.20": False}  # fmt: skip
    assert {v: psql_knows_restrict(v) for v in known} == known


@pytest.mark.timeout(60)
def test_a_given_cli_dump_is_checked_for_restrict_lines_and_the_source_is_not_read(
    tmp_path: Path,
) -> None:
    dump = tmp_path / "dump"
    dump.mkdir()
    head = "-- Dumped from database version 15.8\n\\restrict abc123\nSET x = 1;\n"
    for name in ("roles.sql", "schema.sql", "data.sql"):
        (dump / name).write_text(head + "\\unrestrict abc123\n")
    unreachable = "postgresql://postgres:x@127.0.0.1:1/nope"  # never connected to
    config = Config(enabled=True, dry_run=True, from_backup=dump, staging="ephemeral")
    checks = {c.check: c for c in run_preflight(config, unreachable, None, [unreachable])}
    backup = checks["backup"]
    assert "roles.sql, schema.sql, data.sql carry \\restrict lines" in backup.result, backup
    assert backup.status == PASS and "psql 15." in backup.result  # this machine's knows them
    assert "source connection" not in checks and checks["staging server"].status == PASS
    empty = tmp_path / "empty"
    empty.mkdir()
    config = Config(enabled=True, dry_run=True, from_backup=empty, staging="ephemeral")
    checks = {c.check: c for c in run_preflight(config, None, None)}
    assert checks["backup"].status == FAIL and "manifest.json" in checks["backup"].result


def test_a_pgbouncer_flag_in_the_url_is_named_as_the_cause() -> None:
    from pytest_supabase_restore.preflight.source import pooler_check

    check = pooler_check("postgresql://postgres:pw@127.0.0.1:5432/postgres?pgbouncer=true")
    assert check.status == FAIL and "pgbouncer=true in the URL" in check.result
    assert "pw" not in check.result + check.fix


def test_the_disk_need_counts_staging_s3_copy_of_the_objects(tmp_path: Path) -> None:
    """Ephemeral staging keeps a second copy of every Storage object (its local object store)
    beside the cluster in the temporary directory: the need holds both copies, the cluster
    and the WAL its restore writes (about the database's size, at most max_wal_size)."""
    from pytest_supabase_restore.preflight.plan import CLUSTER_BYTES, WAL_BYTES, disk_checks
    from pytest_supabase_restore.preflight.sizes import SourceSize, TableSize
    from pytest_supabase_restore.preflight.storage import StorageSize

    mib = 1024 * 1024
    db = SourceSize([TableSize("public.t", 10, 30 * mib, 50 * mib)], database_bytes=60 * mib)
    objects = StorageSize(objects=4, bytes=20 * mib)
    config = Config(enabled=True, dry_run=True, staging="ephemeral")
    (disk,) = disk_checks(config, db, objects)  # the set goes to the temporary directory too
    need = (30 + 20 + 60 + 60 + 20) * mib + CLUSTER_BYTES
    assert disk.result.startswith(
        f"backup set + staging cluster + staging objects: needs up to {need / mib:.1f} MiB"
    ), disk
    big = SourceSize(db.tables, database_bytes=5 * WAL_BYTES)
    (large,) = disk_checks(config, big, objects)
    need = (30 + 20 + 20) * mib + 6 * WAL_BYTES + CLUSTER_BYTES
    assert f"needs up to {need / 1024**3:.1f} GiB" in large.result, large
    (no_objects,) = disk_checks(config, db, StorageSize())
    assert no_objects.result.startswith("backup set + staging cluster: needs up to "), no_objects
