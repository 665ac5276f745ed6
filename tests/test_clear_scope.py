"""Clearing a url staging target before the restore, on a real cluster: only the backup's own
schemas go, in one transaction, and only when the cascade reaches nothing else. Every
refusal is checked to have changed nothing (a pg_dump of the staging database before and
after is identical)."""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from pytest_supabase_restore.errors import RestoreError, SafetyError
from pytest_supabase_restore.pg.binaries import find_client_tools
from pytest_supabase_restore.pg.cluster import Cluster
from pytest_supabase_restore.pgtools import run_tool
from pytest_supabase_restore.staging.clear import clear_scope

SCOPE = ["app", "public"]  # what the backup holds
STAGING_SQL = """
CREATE TABLE public.accounts (id int PRIMARY KEY, name text);
INSERT INTO public.accounts SELECT g, 'a' || g FROM generate_series(1, 50) g;
CREATE SCHEMA app;
CREATE TABLE app.items (id int PRIMARY KEY, account int REFERENCES public.accounts);
CREATE SCHEMA reporting;  -- not in the backup: must survive untouched
CREATE TABLE reporting.daily (day date PRIMARY KEY, n int);
"""
_names = itertools.count()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with Cluster(name="clear-scope") as c:
        with c.connect(autocommit=True) as admin:
            admin.execute("CREATE ROLE stage_owner LOGIN NOSUPERUSER")
            admin.execute("CREATE ROLE someone_else LOGIN NOSUPERUSER")
        c.set_password("stage_owner")  # the cluster is SCRAM-only
        c.set_password("someone_else")
        yield c


@pytest.fixture
def staging(cluster: Cluster) -> str:
    """A fresh staging database owned by stage_owner; returns its URL (as stage_owner)."""
    name = f"stage{next(_names)}"
    with cluster.connect(autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} OWNER stage_owner")
    dsn = cluster.dsn(name, user="stage_owner")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(STAGING_SQL)
    return dsn


def as_admin(dsn: str) -> str:
    return dsn.replace("stage_owner@", "postgres@", 1)


def run(dsn: str, statement: str) -> None:
    with psycopg.connect(as_admin(dsn), autocommit=True) as conn:
        conn.execute(statement)


def image(dsn: str) -> str:
    result = run_tool(
        [find_client_tools(15).path("pg_dump"), "--no-password"], as_admin(dsn), timeout=60
    )
    assert result.returncode == 0, result.stderr
    return re.sub(r"^\\(un)?restrict .*$", "", result.stdout, flags=re.M)


def schemas(dsn: str) -> list[str]:
    """Every schema, system ones too (pg_dump leaves those out)."""
    with psycopg.connect(as_admin(dsn)) as conn:
        return [r[0] for r in conn.execute("SELECT nspname FROM pg_namespace ORDER BY 1")]


def refused_without_change(dsn: str, scope: list[str]) -> str:
    """Run clear_scope; check first that nothing changed, then that it was a refusal."""
    before = image(dsn), schemas(dsn)
    error: Exception | None = None
    try:
        clear_scope(dsn, scope, False)
    except Exception as exc:
        error = exc
    assert (image(dsn), schemas(dsn)) == before, f"the staging database was changed ({error!r})"
    assert isinstance(error, SafetyError), repr(error)
    return str(error)


# -- a cascade that would reach outside the backup's schemas ---------------------------------
@pytest.mark.timeout(60)
def test_a_view_in_another_schema_on_a_backup_table_is_refused(staging: str) -> None:
    run(staging, "CREATE VIEW reporting.names AS SELECT name FROM public.accounts")
    message = refused_without_change(staging, SCOPE)
    assert "would also drop 1 object(s) outside them: view reporting.names" in message, message
    assert "nothing was changed" in message and "Fix:" in message


@pytest.mark.timeout(60)
def test_a_foreign_key_from_another_schema_is_refused(staging: str) -> None:
    run(
        staging,
        "CREATE TABLE reporting.audit (id int PRIMARY KEY, "
        "account int CONSTRAINT audit_account_fk REFERENCES public.accounts)",
    )
    message = refused_without_change(staging, SCOPE)
    assert "constraint audit_account_fk on table reporting.audit" in message, message


@pytest.mark.timeout(60)
def test_a_default_and_a_column_type_from_the_backup_are_refused(staging: str) -> None:
    """A default calling a sequence of public, and a column typed with an enum of public: the
    cascade would drop the default and the column (not the tables)."""
    run(
        staging,
        "CREATE SEQUENCE public.ticket_no; CREATE TYPE public.mood AS ENUM ('ok', 'bad'); "
        "CREATE TABLE reporting.tickets (id int DEFAULT nextval('public.ticket_no'), "
        "mood public.mood)",
    )
    message = refused_without_change(staging, SCOPE)
    assert "default value for column id of table reporting.tickets" in message, message
    assert "column mood of table reporting.tickets" in message, message


@pytest.mark.timeout(60)
def test_an_extension_installed_into_public_is_refused(cluster: Cluster, staging: str) -> None:
    with cluster.connect(autocommit=True) as admin:
        available = admin.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'pgcrypto'"
        ).fetchone()
    if not available:
        pytest.skip("pgcrypto is not installed on this machine")
    run(staging, "CREATE EXTENSION pgcrypto SCHEMA public")
    message = refused_without_change(staging, SCOPE)
    assert "extension pgcrypto" in message, message
    # A backup that installs pgcrypto into public itself recreates it: then it may go.
    assert clear_scope(staging, SCOPE, False, recreated_extensions=["pgcrypto"]) == SCOPE
    with psycopg.connect(staging) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_extension WHERE extname = 'pgcrypto'"
        ).fetchone() == (0,)


# -- what no backup holds ------------------------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "extra", ["information_schema", "pg_catalog", "pg_toast", "vault", "extensions"]
)
def test_system_or_platform_schemas_in_the_scope_list_are_refused(staging: str, extra: str) -> None:
    """A tampered manifest once made the drill drop information_schema on staging."""
    message = refused_without_change(as_admin(staging), [*SCOPE, extra])
    assert f"names {extra}, which no backup holds" in message, message
    assert "nothing was changed" in message


# -- who may drop ----------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_a_schema_the_role_does_not_own_is_refused_before_any_change(staging: str) -> None:
    """Before: public was dropped, then DROP SCHEMA zreports failed (must be owner)."""
    run(staging, "CREATE SCHEMA zreports AUTHORIZATION someone_else")
    message = refused_without_change(staging, [*SCOPE, "zreports"])
    assert "may not drop the schema(s) zreports (owned by someone_else)" in message, message
    assert "nothing was changed" in message


@pytest.mark.timeout(60)
def test_a_failure_half_way_changes_nothing(staging: str) -> None:
    """The drop of app succeeds; that of public waits for another session's lock until the
    role's statement_timeout cancels it. Everything is rolled back (the old code, one
    autocommit statement per schema, had dropped app for good)."""
    run(
        staging,
        f"ALTER ROLE stage_owner IN DATABASE {conninfo_to_dict(staging)['dbname']} "
        "SET statement_timeout = '2s'",
    )
    run(staging, "CREATE TABLE public.busy (id int)")
    before = image(staging), schemas(staging)
    holder = psycopg.connect(as_admin(staging))
    error: Exception | None = None
    try:
        holder.execute("LOCK TABLE public.busy IN ACCESS SHARE MODE")
        clear_scope(staging, SCOPE, False)
    except Exception as exc:
        error = exc
    finally:
        holder.rollback()
        holder.close()
    assert (image(staging), schemas(staging)) == before
    assert isinstance(error, RestoreError), repr(error)
    assert "while waiting for another session's lock" in str(error)
    assert "nothing was changed" in str(error)


# -- the happy path ------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_public_comes_back_as_a_new_database_has_it(cluster: Cluster, staging: str) -> None:
    """Owner, grants and comment of the recreated public equal a new database's (on 15+:
    pg_database_owner, USAGE for PUBLIC), so the restore's own ACL statements for public
    end where the backup's did; before, the clearing role owned it with no grants."""
    query = (
        "SELECT pg_get_userbyid(nspowner)::text, nspacl::text, "
        "obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = 'public'"
    )
    with cluster.connect(autocommit=True) as admin:
        admin.execute("CREATE DATABASE fresh_reference OWNER stage_owner")
    try:
        with psycopg.connect(cluster.dsn("fresh_reference")) as conn:
            fresh = conn.execute(query).fetchone()
    finally:
        with cluster.connect(autocommit=True) as admin:
            admin.execute("DROP DATABASE fresh_reference")
    clear_scope(staging, SCOPE, False)
    with psycopg.connect(as_admin(staging)) as conn:
        assert conn.execute(query).fetchone() == fresh
    assert fresh is not None and fresh[0] == "pg_database_owner"


def test_the_backup_schemas_are_dropped_and_public_recreated_in_one_transaction(
    staging: str,
) -> None:
    """An observer polling the catalog meanwhile never sees app gone while public is still
    there, nor public missing: the drop and the new public commit together."""
    run(staging, "CREATE VIEW app.recent AS SELECT * FROM public.accounts")  # inside: fine
    seen: set[tuple[bool, bool]] = set()
    stop = threading.Event()

    def observe() -> None:
        with psycopg.connect(as_admin(staging), autocommit=True) as conn:
            while not stop.is_set():
                row = conn.execute(
                    "SELECT to_regnamespace('app') IS NOT NULL, "
                    "to_regclass('public.accounts') IS NOT NULL"
                ).fetchone()
                assert row is not None
                seen.add((bool(row[0]), bool(row[1])))

    thread = threading.Thread(target=observe)
    thread.start()
    try:
        dropped = clear_scope(staging, SCOPE, False)
    finally:
        stop.set()
        thread.join()
    assert dropped == SCOPE
    assert seen <= {(True, True), (False, False)}, seen
    with psycopg.connect(staging) as conn:
        assert conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname IN ('app', 'public', 'reporting') "
            "ORDER BY 1"
        ).fetchall() == [("public",), ("reporting",)]
        assert conn.execute(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        ).fetchone() == (0,)
        assert conn.execute("SELECT to_regclass('reporting.daily') IS NOT NULL").fetchone() == (
            True,
        )


@pytest.mark.timeout(60)
def test_platform_schemas_are_kept_where_the_platform_is_present(staging: str) -> None:
    run(staging, "CREATE SCHEMA auth AUTHORIZATION stage_owner; CREATE TABLE auth.users (id int)")
    assert clear_scope(staging, ["auth", *SCOPE], True) == SCOPE
    with psycopg.connect(staging) as conn:
        assert conn.execute("SELECT to_regclass('auth.users') IS NOT NULL").fetchone() == (True,)


# -- through the drill: a url target is cleared again on the next run -------------------------
@pytest.mark.timeout(180)
def test_the_drill_clears_a_url_target_it_restored_before(cluster: Cluster, tmp_path: Path) -> None:
    """A source with pgcrypto installed into public, restored twice into one marked url
    target: the second run drops the extension with public (the backup installs it again).
    A view added on staging in another schema then makes the third run refuse, unchanged."""
    from pytest_supabase_restore.config import Config
    from pytest_supabase_restore.connections import DISPOSABLE_MARKER, Connection
    from pytest_supabase_restore.drill import Drill

    with cluster.connect(autocommit=True) as admin:
        if not admin.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'pgcrypto'"
        ).fetchone():
            pytest.skip("pgcrypto is not installed on this machine")
    with Cluster(name="clear-scope-src") as source:
        with source.connect(autocommit=True) as admin:
            admin.execute("CREATE EXTENSION pgcrypto SCHEMA public")
            admin.execute(
                "CREATE TABLE public.secrets (id int PRIMARY KEY, digest bytea); "
                "INSERT INTO public.secrets SELECT g, public.digest(g::text, 'sha256') "
                "FROM generate_series(1, 20) g"
            )
        with cluster.connect(autocommit=True) as admin:
            admin.execute("CREATE DATABASE drilled OWNER stage_owner")
            admin.execute(f"COMMENT ON DATABASE drilled IS '{DISPOSABLE_MARKER}'")
        target = cluster.dsn("drilled")
        settings = Config(
            enabled=True,
            staging="url",
            jobs=2,
            source=Connection(db_url=source.dsn()),
            target=Connection(db_url=target),
        )

        def drill_once(n: int) -> Any:
            drill = Drill(settings, tmp_path / f"run{n}", lambda _m: None)
            (tmp_path / f"run{n}").mkdir()
            try:
                return drill.run()
            finally:
                drill.teardown()

        for n in (1, 2):
            state = drill_once(n)
            assert state.error is None, state.error
        run(
            target,
            "CREATE SCHEMA reporting; CREATE VIEW reporting.d AS SELECT id FROM public.secrets",
        )
        before = image(target)
        state = drill_once(3)
    assert state.error is not None and "view reporting.d" in state.error, state.error
    assert image(target) == before
