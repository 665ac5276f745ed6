"""libpq's own conventions (PGPASSWORD, PGSSLMODE, PGSSLROOTCERT, sslmode in the URL) work
the same for psycopg and for the PostgreSQL tools the plugin runs, against a real cluster
that speaks TLS with a certificate of its own test CA; a refused login is no lost
connection; a database-only project drills to a proven PASS with PGPASSWORD."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pytest_supabase_restore.errors import SourceConnectionLost, SourceError
from pytest_supabase_restore.pg.binaries import find_client_tools
from pytest_supabase_restore.pg.cluster import Cluster, _server_user
from pytest_supabase_restore.pgtools import libpq_env, run_tool
from pytest_supabase_restore.source import source_failure

PASSWORD = "libpq-env-pw-never-shown"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_ca(where: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
        "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=where,
    )  # fmt: skip


@pytest.fixture(scope="module")
def certs() -> Iterator[Path]:
    """A test CA, a server certificate it signed for 127.0.0.1, and a second, unrelated CA;
    in a directory the server's OS user can read (its key: only that user)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no test certificates")
    where = Path(tempfile.mkdtemp(prefix="supabase-restore-certs-"))
    try:
        _make_ca(where, "ca")
        _make_ca(where, "other-ca")
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "server.key", "-out", "server.csr", cwd=where,
        )  # fmt: skip
        (where / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
        _openssl(
            "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.crt",
            cwd=where,
        )  # fmt: skip
        os.chmod(where, 0o755)  # noqa: S103 - the server (another OS user) reads the certificates
        os.chmod(where / "server.key", 0o600)
        user = _server_user()
        if user is not None:
            os.chown(where / "server.key", user.pw_uid, user.pw_gid)
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_cluster(certs: Path) -> Iterator[Cluster]:
    settings = {
        "ssl": "on",
        "ssl_cert_file": str(certs / "server.crt"),
        "ssl_key_file": str(certs / "server.key"),
    }
    with Cluster(name="libpq-tls", settings=settings) as cluster:
        cluster.set_password("postgres", PASSWORD)
        with cluster.connect(autocommit=True) as conn:
            conn.execute("CREATE TABLE public.kept AS SELECT g AS id FROM generate_series(1, 5) g")
        yield cluster


def _url(cluster: Cluster, query: str = "") -> str:
    """A password-less URL: the password comes from PGPASSWORD."""
    return f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres{query}"


def _both(url: str) -> tuple[str, str]:
    """How psycopg and psql each fare with ``url`` in this process's environment: "ok" with
    whether TLS was used, else the error."""
    query = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            row = conn.execute(query).fetchone()
            driver = f"ok ssl={row[0] if row else None}"
    except psycopg.OperationalError as exc:
        driver = str(exc)
    tools = find_client_tools(15)
    result = run_tool([tools.path("psql"), "-XAtc", query], url, timeout=30)
    tool = f"ok ssl={result.stdout.strip() == 't'}" if result.returncode == 0 else result.stderr
    return driver, tool


def test_pgpassword_and_ssl_variables_reach_the_driver_and_the_tools_alike(
    tls_cluster: Cluster, certs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    monkeypatch.setenv("PGSSLMODE", "verify-ca")
    monkeypatch.setenv("PGSSLROOTCERT", str(certs / "ca.crt"))
    assert _both(_url(tls_cluster)) == ("ok ssl=True", "ok ssl=True")
    # Another CA: both refuse the server's certificate.
    monkeypatch.setenv("PGSSLROOTCERT", str(certs / "other-ca.crt"))
    driver, tool = _both(_url(tls_cluster))
    assert "certificate verify failed" in driver and "certificate verify failed" in tool
    # sslmode in the URL wins over PGSSLMODE, for both (without a root certificate:
    # with one, libpq's require verifies it, as verify-ca does).
    monkeypatch.setenv("PGSSLMODE", "disable")
    monkeypatch.delenv("PGSSLROOTCERT")
    assert _both(_url(tls_cluster, "?sslmode=require")) == ("ok ssl=True", "ok ssl=True")
    assert _both(_url(tls_cluster)) == ("ok ssl=False", "ok ssl=False")
    # The tools' environment carries libpq's variables (the password: there, never in argv).
    env = libpq_env(_url(tls_cluster))
    assert env["PGPASSWORD"] == PASSWORD and env["PGSSLMODE"] == "disable"
    monkeypatch.setenv("PGSSLROOTCERT", str(certs / "ca.crt"))
    assert libpq_env(_url(tls_cluster))["PGSSLROOTCERT"] == str(certs / "ca.crt")


def test_a_throwaway_clusters_url_ignores_the_sources_libpq_variables(
    tls_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PGPASSWORD and PGSSLMODE are set for the source; staging's URL (a password file, no
    TLS) must still work for both the driver and the tools."""
    with Cluster(name="libpq-staging") as staging:
        monkeypatch.setenv("PGPASSWORD", "the-source-password")
        monkeypatch.setenv("PGSSLMODE", "require")
        assert _both(staging.dsn()) == ("ok ssl=False", "ok ssl=False")


def test_pg_dump_refused_a_login_is_not_a_lost_connection(
    tls_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", "not-the-password")
    result = run_tool(
        [find_client_tools(15).path("pg_dump"), "--schema-only"], _url(tls_cluster), timeout=60
    )
    assert result.returncode != 0 and "password authentication failed" in result.stderr
    error = source_failure(f"pg_dump failed (exit {result.returncode})", result.stderr)
    assert isinstance(error, SourceError) and not isinstance(error, SourceConnectionLost)
    assert "the source refused the login" in str(error) and "PGPASSWORD" in str(error)


@pytest.fixture(scope="module")
def database_only() -> Iterator[tuple[str, str]]:
    """The demo project without Storage: no bucket, no object. Its URL (no password in it)
    and the postgres role's password."""
    from pytest_supabase_restore.demo import DemoProject

    with DemoProject(objects=0) as demo:
        with psycopg.connect(demo.admin_url, autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")  # storage's own triggers
            conn.execute("DELETE FROM storage.objects")
            conn.execute("DELETE FROM storage.buckets")
        demo.cluster.set_password("postgres", PASSWORD)
        yield f"postgresql://postgres@127.0.0.1:{demo.cluster.port}/postgres", PASSWORD


def test_a_database_only_project_drills_to_a_proven_pass_with_pgpassword(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    database_only: tuple[str, str],
    tmp_path: Path,
) -> None:
    url, password = database_only
    monkeypatch.setenv("SUPABASE_DB_URL", url)
    monkeypatch.setenv("PGPASSWORD", password)
    for name in ("SUPABASE_S3_ENDPOINT", "SUPABASE_S3_ACCESS_KEY_ID", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)
    summary = tmp_path / "summary.json"
    result = pytester.runpytest(
        "--supabase-restore",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--supabase-summary-json={summary}",
    )
    data = json.loads(summary.read_text())
    out = result.stdout.str()
    assert data["status"] == "PASS", data["reason"] + "\n" + out[-3000:]
    assert result.ret == 0 and data["scope"] == "full" and not data["dry_run"]
    assert data["categories"]["storage"]["passed"] == 0
    assert "storage: nothing to restore: the source has no Storage buckets" in "\n".join(
        data["not_tested"]
    )
    assert not any("no source S3 settings" in t for t in data["not_tested"])
    assert "(env SUPABASE_DB_URL; its password: env PGPASSWORD)" in out  # the header
    storage_row = next(ln for ln in out.splitlines() if ln.strip().startswith("storage "))
    assert storage_row.split()[1] == "PASS", storage_row
    assert password not in out and password not in summary.read_text()
