"""The url staging guard against real servers: a staging URL that reaches the source under
another address is refused, whatever the roles may read, and the source is left exactly as
it was (compared as a ``pg_dump`` of the database and of the roles, before and after).

The roles here are what a hosted platform hands out: NOSUPERUSER logins without pg_monitor,
on servers where ``pg_control_system()`` is not executable by PUBLIC (the old check skipped
the system identifier silently then). Other addresses of one server: the TCP proxy of
``tcpfaults`` (another port), ``127.1`` (another spelling of 127.0.0.1), another database of
the same server, and a streaming standby.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from tcpfaults import TcpProxy

from pytest_supabase_restore.config import Config
from pytest_supabase_restore.connections import DISPOSABLE_MARKER, Connection
from pytest_supabase_restore.drill import Drill
from pytest_supabase_restore.errors import SafetyError
from pytest_supabase_restore.pg.binaries import find_client_tools
from pytest_supabase_restore.pg.cluster import Cluster, free_port
from pytest_supabase_restore.pgtools import run_tool
from pytest_supabase_restore.reaper import reaper
from pytest_supabase_restore.staging.url import PROBE_PREFIX, check_safe

MENTIONS = "production. NEVER mark as pytest-supabase-restore:disposable"
APP_SQL = """
CREATE TABLE public.accounts (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO public.accounts SELECT g, 'account ' || g FROM generate_series(1, 500) g;
CREATE TABLE public.orders (id int PRIMARY KEY, account int REFERENCES public.accounts, total int);
INSERT INTO public.orders SELECT g, 1 + g % 500, g * 3 FROM generate_series(1, 2000) g;
CREATE VIEW public.totals AS SELECT account, sum(total) FROM public.orders GROUP BY account;
CREATE SCHEMA billing;
CREATE TABLE billing.invoices (id int PRIMARY KEY, account int REFERENCES public.accounts);
INSERT INTO billing.invoices SELECT g, g FROM generate_series(1, 100) g;
"""


def url(cluster: Cluster, dbname: str, user: str, *, host: str = "127.0.0.1", port: int = 0) -> str:
    # The cluster's password file authenticates, whatever host or port reaches it.
    return f"postgresql://{user}@{host}:{port or cluster.port}/{dbname}?passfile={cluster.passfile}"


def restricted_roles(cluster: Cluster) -> None:
    """A platform's roles: no superuser, no pg_monitor, no pg_control_system() (revoked in
    template1 too, so that every database created afterwards inherits it)."""
    for dbname in ("template1", "postgres"):
        with cluster.connect(dbname, autocommit=True) as admin:
            admin.execute("REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC")
    with cluster.connect(autocommit=True) as admin:
        admin.execute("CREATE ROLE stg_role LOGIN NOSUPERUSER NOCREATEROLE")
        admin.execute("CREATE ROLE reader LOGIN NOSUPERUSER NOCREATEROLE")
    # Throwaway clusters are SCRAM-only: a role logs in once it has a password.
    cluster.set_password("stg_role")
    cluster.set_password("reader")


def marked(cluster: Cluster, dbname: str, comment: str) -> None:
    with cluster.connect(autocommit=True) as admin:
        admin.execute(f"COMMENT ON DATABASE {dbname} IS '{comment}'")


@pytest.fixture
def source() -> Iterator[Cluster]:
    """The source server: database ``app`` and its objects owned by ``stg_role`` (so that a
    DROP SCHEMA by that role would succeed), its comment only mentioning the marker."""
    with Cluster(name="guard-src") as cluster:
        restricted_roles(cluster)
        with cluster.connect(autocommit=True) as admin:
            admin.execute("CREATE DATABASE app OWNER stg_role")
        # Owned by the URL's role, as the postgres user owns a Supabase project's objects.
        with psycopg.connect(cluster.dsn("app", user="stg_role"), autocommit=True) as app:
            app.execute(APP_SQL)
            app.execute("GRANT USAGE ON SCHEMA billing TO reader")
            app.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public, billing TO reader")
        marked(cluster, "app", MENTIONS)
        yield cluster


@pytest.fixture(scope="module")
def bystander() -> Iterator[Cluster]:
    """A source for the tests that only compare with it (it is never changed)."""
    with Cluster(name="guard-src-ro") as cluster:
        restricted_roles(cluster)
        with cluster.connect(autocommit=True) as admin:
            admin.execute("CREATE DATABASE app")
        yield cluster


@pytest.fixture(scope="module")
def other() -> Iterator[Cluster]:
    """A genuinely different server, with the same restricted roles."""
    with Cluster(name="guard-other") as cluster:
        restricted_roles(cluster)
        with cluster.connect(autocommit=True) as admin:
            admin.execute("CREATE DATABASE stage OWNER stg_role")
        yield cluster


def image(cluster: Cluster, dbname: str = "app") -> str:
    """The database (with its comment) and the roles, as pg_dump and pg_dumpall print them."""
    tools = find_client_tools(15)
    parts = []
    for args, dsn in (
        ([tools.path("pg_dump"), "--create", "--no-password"], cluster.dsn(dbname)),
        ([tools.path("pg_dumpall"), "--globals-only", "--no-password"], cluster.dsn()),
    ):
        result = run_tool(args, dsn, timeout=120)
        assert result.returncode == 0, result.stderr
        parts.append(result.stdout)
    # pg_dump 15.14+ writes a random \restrict key into every dump: not part of the data.
    return re.sub(r"^\\(un)?restrict .*$", "", "\n".join(parts), flags=re.M)


def assert_cannot_read_system_identifier(dsn: str) -> None:
    with psycopg.connect(dsn) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT pg_control_system()")


# -- the "done when": the whole drill, the source untouched -------------------------
@pytest.mark.timeout(180)
@pytest.mark.parametrize("address", ["proxy", "127.1"])
def test_drill_refuses_staging_that_reaches_the_source_and_leaves_it_unchanged(
    source: Cluster, tmp_path: Path, address: str
) -> None:
    """STAGING_DB_URL reaches the source's own database under another address, as a role that
    may not execute pg_control_system(), and the source's comment merely mentions the marker.
    The drill exports, then refuses staging before writing anything: the source's pg_dump is
    identical before and after (the old guard let it run DROP SCHEMA "public" CASCADE)."""
    before = image(source)
    with TcpProxy(source.port) as proxy:
        staging_url = (
            url(source, "app", "stg_role", port=proxy.port)
            if address == "proxy"
            else url(source, "app", "stg_role", host="127.1")
        )
        assert_cannot_read_system_identifier(staging_url)
        settings = Config(
            enabled=True,
            staging="url",
            jobs=2,
            source=Connection(db_url=source.dsn("app")),
            target=Connection(db_url=staging_url),
        )
        lines: list[str] = []
        drill = Drill(settings, tmp_path, lines.append)
        try:
            state = drill.run()
        finally:
            drill.teardown()
    assert state.error is not None, lines
    assert state.error.startswith(f"Refusing STAGING_DB_URL {staging_url}"), state.error
    assert "same PostgreSQL server as the source" in state.error, state.error
    assert "pg_stat_activity" in state.error, state.error
    assert state.error_phase == "restore" and state.staging_dsn is None
    assert image(source) == before


# -- same server, other address: refused with nothing but unprivileged facts ---------------
@pytest.mark.timeout(60)
def test_exact_marker_on_the_source_behind_a_proxy_is_still_refused(source: Cluster) -> None:
    """Someone marked production itself as disposable: the identity guard alone refuses."""
    marked(source, "app", DISPOSABLE_MARKER)
    before = image(source)
    with TcpProxy(source.port) as proxy:
        staging_url = url(source, "app", "stg_role", port=proxy.port)
        with pytest.raises(SafetyError) as info:
            check_safe(staging_url, url(source, "app", "reader"))
    message = str(info.value)
    assert "same PostgreSQL server as the source" in message, message
    assert f"application_name {PROBE_PREFIX}" in message and "pg_stat_activity" in message
    assert "Fix: point STAGING_DB_URL at a separate, disposable database" in message
    assert image(source) == before


@pytest.mark.timeout(60)
def test_another_database_of_the_source_server_is_refused(source: Cluster) -> None:
    """Roles and the cluster are shared: a marked sibling database is still the source's
    server. Neither role may read the system identifier."""
    with source.connect(autocommit=True) as admin:
        admin.execute("CREATE DATABASE sibling OWNER stg_role")
    marked(source, "sibling", DISPOSABLE_MARKER)
    assert_cannot_read_system_identifier(url(source, "sibling", "stg_role"))
    with pytest.raises(SafetyError, match="same PostgreSQL server as the source"):
        check_safe(url(source, "sibling", "stg_role"), url(source, "app", "reader"))


# -- the marker is the exact comment ---------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "comment",
    [MENTIONS, f"{DISPOSABLE_MARKER} (no!)", "", "pytest-supabase-restore:disposable-not"],
)
def test_a_comment_that_is_not_exactly_the_marker_is_refused(
    other: Cluster, bystander: Cluster, comment: str
) -> None:
    if comment:
        marked(other, "stage", comment)
    else:
        with other.connect(autocommit=True) as admin:
            admin.execute("COMMENT ON DATABASE stage IS NULL")
    with pytest.raises(SafetyError) as info:
        check_safe(url(other, "stage", "stg_role"), url(bystander, "app", "reader"))
    message = str(info.value)
    assert "not marked as disposable" in message, message
    assert f"COMMENT ON DATABASE stage IS '{DISPOSABLE_MARKER}';" in message


@pytest.mark.timeout(60)
def test_a_different_server_is_accepted_with_its_proof(other: Cluster, bystander: Cluster) -> None:
    """The marker (surrounding whitespace aside) on a server of its own: accepted, with
    restricted roles on both sides; the proof is the two postmaster start times."""
    marked(other, "stage", f"  {DISPOSABLE_MARKER}\n")
    assert_cannot_read_system_identifier(url(other, "stage", "stg_role"))
    proofs = check_safe(url(other, "stage", "stg_role"), url(bystander, "app", "reader"))
    assert len(proofs) == 1 and proofs[0].startswith("different servers"), proofs
    assert "the source is not a standby" in proofs[0]
    # Where both roles may read the system identifier, that is the proof instead.
    proofs = check_safe(other.dsn("stage"), bystander.dsn("app"))
    assert proofs[0].startswith("different database systems (system identifiers"), proofs


# -- what cannot be proven is refused ----------------------------------------------------------
@pytest.mark.timeout(60)
def test_an_unreachable_source_is_refused(other: Cluster) -> None:
    marked(other, "stage", DISPOSABLE_MARKER)
    gone = f"postgresql://reader@127.0.0.1:{free_port()}/app"
    with pytest.raises(SafetyError) as info:
        check_safe(url(other, "stage", "stg_role"), gone)
    message = str(info.value)
    assert "could not prove that it is not the source" in message, message
    assert "connecting to the source failed" in message
    assert "Fix: run the drill where the source is reachable" in message


@pytest.mark.timeout(60)
def test_nothing_comparable_readable_is_refused(other: Cluster, bystander: Cluster) -> None:
    """A staging server that hides pg_postmaster_start_time() as well: no fact can show that it
    is another server than the source, so it is refused (fail closed)."""
    marked(other, "stage", DISPOSABLE_MARKER)
    with other.connect("stage", autocommit=True) as admin:
        admin.execute("REVOKE EXECUTE ON FUNCTION pg_postmaster_start_time() FROM PUBLIC")
    try:
        with pytest.raises(SafetyError) as info:
            check_safe(url(other, "stage", "stg_role"), url(bystander, "app", "reader"))
    finally:
        with other.connect("stage", autocommit=True) as admin:
            admin.execute("GRANT EXECUTE ON FUNCTION pg_postmaster_start_time() TO PUBLIC")
    message = str(info.value)
    assert "could not prove that it is not the source" in message, message
    assert "staging answers neither pg_postmaster_start_time() nor pg_control_system()" in message
    assert "GRANT EXECUTE ON FUNCTION" in message


@pytest.mark.timeout(60)
def test_without_a_source_only_the_marker_decides_and_a_warning_says_so(other: Cluster) -> None:
    warnings: list[str] = []
    with other.connect(autocommit=True) as admin:
        admin.execute("COMMENT ON DATABASE stage IS NULL")
    with pytest.raises(SafetyError, match="not marked as disposable"):
        check_safe(url(other, "stage", "stg_role"), None, warn=warnings.append)
    marked(other, "stage", DISPOSABLE_MARKER)
    assert check_safe(url(other, "stage", "stg_role"), None, warn=warnings.append) == []
    assert len(warnings) == 1, warnings
    assert "was not compared with a source" in warnings[0]
    assert "only its disposable marker" in warnings[0]


def test_a_staging_url_with_several_hosts_is_refused(other: Cluster) -> None:
    many = (
        f"postgresql://stg_role@127.0.0.1:{other.port},127.0.0.1:{free_port()}/stage"
        f"?passfile={other.passfile}"
    )
    with pytest.raises(SafetyError, match="names several hosts"):
        check_safe(many, None)


# -- a standby as the source, its primary as staging -----------------------------------------
def start_standby(primary: Cluster) -> Cluster:
    """A streaming standby of ``primary`` (pg_basebackup -R), as a Cluster that stops and
    removes itself like any other."""
    hba = primary.data_dir / "pg_hba.conf"
    hba.write_text(hba.read_text() + "host replication all 127.0.0.1/32 trust\n")
    with primary.connect(autocommit=True) as admin:
        admin.execute("SELECT pg_reload_conf()")
    standby = Cluster(primary.binaries, name="guard-standby")
    standby.base_dir = Path(tempfile.mkdtemp(prefix="supabase-restore-guard-standby-"))
    reaper.watch_path(standby.base_dir)
    try:
        standby.socket_dir.mkdir()
        os_user = standby._os_user
        if os_user is not None:
            for p in (standby.base_dir, standby.socket_dir):
                os.chown(p, os_user.pw_uid, os_user.pw_gid)
        os.chmod(standby.base_dir, 0o700)
        # A physical copy: the standby's roles and passwords are the primary's.
        standby._passwords = dict(primary._passwords)
        standby._write_passfile()
        standby._run(
            [
                primary.binaries.path("pg_basebackup"),
                "-D",
                str(standby.data_dir),
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
                "-h",
                "127.0.0.1",
                "-p",
                str(primary.port),
                "-U",
                primary.superuser,
            ]
        )
        for _ in range(5):
            standby.port = free_port()
            if standby._launch():
                return standby
        raise AssertionError("the standby did not start")
    except BaseException:
        standby.stop()
        raise


@pytest.mark.timeout(120)
def test_the_primary_of_a_standby_source_is_refused(other: Cluster) -> None:
    """SUPABASE_DB_URL is a read replica, STAGING_DB_URL its (marked) primary: different
    servers, different start times, yet the same data. Without the system identifier the
    drill cannot tell, so it refuses; with it, it names the replica."""
    if not Path(other.binaries.path("pg_basebackup")).is_file():
        pytest.skip("pg_basebackup is not installed beside initdb")
    marked(other, "stage", DISPOSABLE_MARKER)
    standby = start_standby(other)
    try:
        replica = url(standby, "stage", "reader")
        with psycopg.connect(replica) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        with pytest.raises(SafetyError) as info:
            check_safe(url(other, "stage", "stg_role"), replica)
        message = str(info.value)
        assert "could not prove that it is not the source" in message, message
        assert "the source is a standby" in message and "export from the primary" in message
        with pytest.raises(SafetyError, match=r"system identifier .*physical replica"):
            check_safe(other.dsn("stage"), standby.dsn("stage"))
    finally:
        standby.stop()
