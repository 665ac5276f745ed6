"""Staging is a sandbox: restored code is untrusted, and nothing the drill starts holds a secret.

A restored trigger or function executes in staging (the CRUD check inserts rows; a
materialized view's query runs on REFRESH). On Supabase the objects' owner ``postgres`` is
no superuser, so code that only does harm as a superuser is harmless there; in staging it
must stay harmless. And every process the drill starts (PostgreSQL servers and their
backends, the local S3 servers, pg_dump, pg_restore, the watchdog) gets an allow-listed
environment, so code that does run finds none of the run's secrets. The throwaway servers
are private: SCRAM with random passwords, S3 with a random key pair.

All against real servers: the demo project as the source, a real drill in-process through
pytester, ``/proc/<pid>/environ`` read for every descendant process while the drill runs.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pytest_supabase_restore.demo import DemoProject
from pytest_supabase_restore.pg.cluster import Cluster
from pytest_supabase_restore.storage.client import list_buckets, make_client
from pytest_supabase_restore.storage.endpoint import S3Endpoint
from pytest_supabase_restore.storage.server import LocalS3Server

SOURCE_PASSWORD = "src-pw-never-in-a-child-4f1e"
SECRETS = {
    "GITHUB_TOKEN": "ghp_" + "t0kenNeverInAChild" * 2,
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/never-in-a-child-0c3",
    "SUPABASE_SERVICE_ROLE_KEY": "service-role-never-in-a-child-71",
}

# A trigger that is harmless where its role is no superuser (as on Supabase), and writes the
# environment of its server to a file where it runs as one.
EXFILTRATION = """
CREATE SEQUENCE public.sandbox_probe_calls;
CREATE FUNCTION public.sandbox_probe() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM pg_catalog.nextval('public.sandbox_probe_calls');
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        EXECUTE pg_catalog.format('COPY (SELECT 1) TO PROGRAM %L', 'env > {target}');
    END IF;
    RETURN NEW;
END
$f$;
CREATE TRIGGER sandbox_probe BEFORE INSERT OR UPDATE ON public.tags
    FOR EACH ROW EXECUTE FUNCTION public.sandbox_probe();
"""

# A database webhook through two wrapper functions: the trigger calls public.notify_hook,
# which calls net.http_post (here a stand-in for pg_net that fails loudly if ever called).
WEBHOOK_PLATFORM = """
CREATE SCHEMA IF NOT EXISTS net;
CREATE FUNCTION net.http_post(url text, body jsonb DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql AS $f$ BEGIN RAISE EXCEPTION 'staging called out to %', url; END $f$;
GRANT USAGE ON SCHEMA net TO postgres;
"""
WEBHOOK_APP = """
CREATE FUNCTION public.notify_hook(payload jsonb) RETURNS void LANGUAGE sql
    AS $f$ SELECT net.http_post('https://hooks.example.invalid/projects', payload) $f$;
CREATE FUNCTION public.on_project_change() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM public.notify_hook(pg_catalog.to_jsonb(NEW));
    RETURN NEW;
END
$f$;
CREATE TRIGGER project_webhook AFTER INSERT OR UPDATE ON public.projects
    FOR EACH ROW EXECUTE FUNCTION public.on_project_change();
"""

# Runs last in the drill's own pytest session, while staging is up: how often the trigger
# ran in staging, and the environment of every process below the pytest process.
PROBE = """
import json, os
from pathlib import Path

import psycopg


def _descendants(root):
    children = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            found.append(child)
            todo.append(child)
    return found


def test_zz_probe(staging_dsn):
    with psycopg.connect(staging_dsn) as conn:
        row = conn.execute(
            "SELECT last_value, is_called FROM public.sandbox_probe_calls"
        ).fetchone()
    envs = {}
    for pid in _descendants(os.getpid()):
        try:
            raw = Path(f"/proc/{pid}/environ").read_bytes()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\\0", b" ").decode()
        except OSError:
            continue
        envs[f"{pid} {cmd[:80]}"] = raw.decode(errors="replace")
    Path(os.environ["SANDBOX_PROBE_OUT"]).write_text(
        json.dumps({"calls": row[0] if row[1] else 0, "environ": envs})
    )
"""

CONFTEST = """
import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.name == "test_zz_probe")
"""


@pytest.fixture
def world_writable() -> Iterator[Path]:
    """A directory the unprivileged server user could write to, if code made it try."""
    path = Path(tempfile.mkdtemp(prefix="sandbox-probe-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        for child in path.iterdir():
            child.unlink()
        path.rmdir()


@pytest.mark.timeout(300)
def test_restored_code_never_runs_as_superuser_and_no_child_holds_a_secret(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    world_writable: Path,
) -> None:
    stolen = world_writable / "env.txt"
    with DemoProject(scale=1) as demo:
        with psycopg.connect(demo.admin_url, autocommit=True) as admin:
            admin.execute(WEBHOOK_PLATFORM)
        with psycopg.connect(demo.db_url, autocommit=True) as app:
            app.execute(EXFILTRATION.format(target=stolen))
            app.execute(WEBHOOK_APP)
            # Harmless on the source: postgres is no superuser there.
            app.execute("INSERT INTO public.tags (name) VALUES ('probe on the source')")
        assert not stolen.exists()
        with psycopg.connect(demo.admin_url, autocommit=True) as admin:
            admin.execute(f"ALTER ROLE postgres PASSWORD '{SOURCE_PASSWORD}'")
        source_url = (
            f"postgresql://postgres:{SOURCE_PASSWORD}@127.0.0.1:{demo.cluster.port}/postgres"
        )
        env = {
            **SECRETS,
            "SUPABASE_DB_URL": source_url,
            "SUPABASE_S3_ENDPOINT": demo.s3.url,
            "SUPABASE_S3_REGION": demo.s3.region,
            "SUPABASE_S3_ACCESS_KEY_ID": demo.s3.access_key_id,
            "SUPABASE_S3_SECRET_ACCESS_KEY": demo.s3.secret_access_key,
            "SANDBOX_PROBE_OUT": str(tmp_path / "probe.json"),
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        pytester.makeconftest(CONFTEST)
        pytester.makepyfile(test_sandbox_probe=PROBE)
        summary = tmp_path / "summary.json"
        result = pytester.runpytest(
            "--supabase-restore",
            "-p",
            "no:cacheprovider",
            f"--supabase-summary-json={summary}",
            "test_sandbox_probe.py",
        )
        verdict = json.loads(summary.read_text())
        s3_secret = demo.s3.secret_access_key
    output = result.stdout.str()
    assert verdict["status"] == "PASS", verdict["reason"] + "\n" + output[-3000:]
    probe = json.loads((tmp_path / "probe.json").read_text())

    # The webhook behind two wrappers was switched off, and the schema still matched.
    assert any("public.projects/project_webhook" in s for s in verdict["side_effects_off"])
    assert "public.projects/project_webhook disabled" in output

    # The trigger ran in staging (CRUD inserted into public.tags), never as a superuser.
    assert probe["calls"] >= 1
    assert not stolen.exists(), "restored code ran as a superuser in staging"

    # No process the drill started holds a secret of the run in its environment.
    secrets = [*SECRETS.values(), SOURCE_PASSWORD, s3_secret]
    servers = [name for name in probe["environ"] if "postgres" in name or "_server_main" in name]
    assert len(servers) >= 4, probe["environ"].keys()  # source + staging PostgreSQL and S3
    for name, environ in probe["environ"].items():
        for secret in secrets:
            assert secret not in environ, f"{name} holds a secret in its environment"
        assert "SUPABASE_" not in environ and "GITHUB_" not in environ, name


# -- the throwaway servers are private ------------------------------------------------------
def _other_user() -> str:
    for name in ("nobody", "daemon"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    pytest.skip("no second unprivileged OS user to try a login as")


@pytest.mark.timeout(120)
def test_another_local_user_cannot_log_in_to_a_throwaway_cluster() -> None:
    if os.geteuid() != 0:
        pytest.skip("switching to another OS user needs root")
    user = _other_user()
    with Cluster(name="private") as cluster:
        psql = cluster.binaries.path("psql")
        for host in ("127.0.0.1", str(cluster.socket_dir)):
            attempt = subprocess.run(
                [
                    "setpriv",
                    f"--reuid={user}",
                    f"--regid={pwd.getpwnam(user).pw_gid}",
                    "--clear-groups",
                    psql,
                    "-h",
                    host,
                    "-p",
                    str(cluster.port),
                    "-U",
                    cluster.superuser,
                    "-w",  # never prompt: no password means no login
                    "-c",
                    "SELECT 1",
                    "postgres",
                ],
                capture_output=True,
                text=True,
                timeout=30,
                env={"PATH": os.environ["PATH"], "HOME": "/"},
                check=False,
            )
            assert attempt.returncode != 0, f"{user} logged in through {host}"
            assert "password" in attempt.stderr or "Permission denied" in attempt.stderr, (
                attempt.stderr
            )
        # This process still gets in, through the password file the DSN names.
        with psycopg.connect(cluster.dsn()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert (cluster.passfile.stat().st_mode & 0o077) == 0


@pytest.mark.timeout(60)
def test_the_local_s3_server_answers_only_its_own_key() -> None:
    with LocalS3Server(name="private-s3") as server:
        endpoint = server.endpoint
        assert endpoint.access_key_id and len(endpoint.secret_access_key) >= 20
        client = make_client(endpoint)
        client.create_bucket(
            Bucket="private", CreateBucketConfiguration={"LocationConstraint": endpoint.region}
        )
        client.put_object(Bucket="private", Key="a+b %é=&.txt", Body=b"restored bytes")
        assert "private" in list_buckets(client)
        for key_id, secret in ((endpoint.access_key_id, "wrong"), ("AKIAOTHER", "wrong")):
            stranger = make_client(S3Endpoint(endpoint.url, endpoint.region, key_id, secret))
            with pytest.raises(Exception) as info:
                stranger.get_object(Bucket="private", Key="a+b %é=&.txt")
            assert "SignatureDoesNotMatch" in str(info.value) or "InvalidAccessKeyId" in str(
                info.value
            )
        for path in ("/private/a%2Bb", "/moto-api/data.json"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(endpoint.url + path, timeout=10)  # noqa: S310
            assert refused.value.code == 403
        environ = Path(f"/proc/{server.process.pid}/environ").read_bytes()  # type: ignore[union-attr]
        assert b"AWS_" not in environ


# -- pg_cron jobs never run in staging ------------------------------------------------------
CRON_PROBE = """
import json, os, time
from pathlib import Path

import psycopg


def test_cron_probe(staging_dsn, supabase_backup):
    with psycopg.connect(staging_dsn, autocommit=True) as conn:
        before = conn.execute("SELECT count(*) FROM public.cron_heartbeat").fetchone()[0]
        runs_before = conn.execute("SELECT count(*) FROM cron.job_run_details").fetchone()[0]
        active = conn.execute("SELECT count(*) FROM cron.job WHERE active").fetchone()[0]
        # Past the next minute boundary: the job's schedule ('* * * * *') is due there.
        time.sleep(60 - time.time() % 60 + 5)
        after = conn.execute("SELECT count(*) FROM public.cron_heartbeat").fetchone()[0]
        runs_after = conn.execute("SELECT count(*) FROM cron.job_run_details").fetchone()[0]
    Path(os.environ["CRON_PROBE_OUT"]).write_text(json.dumps({
        "backed_up": supabase_backup.manifest.tables["public.cron_heartbeat"].rows,
        "before": before, "after": after, "active": active,
        "runs_before": runs_before, "runs_after": runs_after,
    }))
"""


@pytest.mark.timeout(240)
def test_a_cron_job_never_runs_in_staging(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The demo schedules a job that writes a row every minute, and it runs on the source.
    In staging the job is restored active, exactly as backed up, and a minute boundary passes
    while the drill's own test watches: no row is written, no run recorded."""
    with DemoProject(scale=1) as demo:
        if not demo.has_cron:
            pytest.skip("this PostgreSQL installation has no pg_cron (Debian: postgresql-15-cron)")
        with psycopg.connect(demo.db_url) as conn:
            started = conn.execute("SELECT count(*) FROM public.cron_heartbeat").fetchone()
        monkeypatch.setenv("CRON_PROBE_OUT", str(tmp_path / "cron.json"))
        pytester.makepyfile(test_cron_probe=CRON_PROBE)
        pytester.runpytest(
            "--supabase-restore",
            "--supabase-demo",
            "--no-supabase-builtin-tests",
            "-p",
            "no:cacheprovider",
            "test_cron_probe.py",
        )
        probe = json.loads((tmp_path / "cron.json").read_text())
        # Meanwhile, on the source, the same job kept running.
        with psycopg.connect(demo.db_url) as conn:
            deadline = time.monotonic() + 70
            while time.monotonic() < deadline:
                now = conn.execute("SELECT count(*) FROM public.cron_heartbeat").fetchone()
                if now and started and now[0] > started[0]:
                    break
                time.sleep(1)
    assert now and started and now[0] > started[0], "the job never ran on the source"
    assert probe["active"] == 1
    assert probe["before"] == probe["after"] == probe["backed_up"]
    assert probe["runs_before"] == probe["runs_after"]
