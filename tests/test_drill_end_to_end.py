"""The drill end to end through pytest: once per run, dry run, bad backups, teardown."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from pytest_supabase_restore.demo import DemoProject
from pytest_supabase_restore.pg.binaries import find_client_tools
from pytest_supabase_restore.pgtools import run_tool

RECORDER = """
import os, pytest

@pytest.mark.supabase_category("custom")
@pytest.mark.parametrize("n", range(6))
def test_sees_staging(staging_dsn, supabase_backup, n, tmp_path_factory):
    out = os.environ["RECORD_DIR"]
    with open(os.path.join(out, f"{os.getpid()}-{n}"), "w") as fh:
        fh.write(staging_dsn + "\\n" + str(supabase_backup.path))
"""


def _leftovers(output: str) -> list[str]:
    """Server processes still running for the directories this run's output names."""
    import re

    dirs = set(re.findall(r"/tmp/supabase-restore-[\w-]+", output))
    procs = subprocess.run(
        ["ps", "-ww", "-eo", "args"], capture_output=True, text=True, check=True
    ).stdout
    return [p for p in procs.splitlines() if any(d in p for d in dirs)]


def _port_closed(dsn: str) -> bool:
    import psycopg

    try:
        psycopg.connect(dsn, connect_timeout=2).close()
    except psycopg.OperationalError:
        return True
    return False


def test_drill_runs_once_and_every_worker_sees_the_same_staging(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    record = tmp_path / "record"
    record.mkdir()
    monkeypatch.setenv("RECORD_DIR", str(record))
    before = set(Path(tempfile.gettempdir()).glob("supabase-restore-*"))
    pytester.makepyfile(test_recorder=RECORDER)
    summary = tmp_path / "summary.json"
    result = pytester.runpytest(
        "--supabase-restore",
        "--supabase-demo",
        "--no-supabase-builtin-tests",
        "-n",
        "2",
        "-p",
        "no:cacheprovider",
        "--supabase-summary-json",
        str(summary),
        "test_recorder.py",
    )
    result.assert_outcomes(passed=6)
    out = result.stdout.str()
    assert out.count("[supabase-restore] export ...") == 1
    seen = {p.read_text() for p in record.iterdir()}
    pids = {p.name.split("-")[0] for p in record.iterdir()}
    assert len(seen) == 1 and len(pids) == 2, (seen, pids)
    data = json.loads(summary.read_text())
    assert data["staging"] == "ephemeral" and data["rto_seconds"] > 0
    history = [t for t in data["not_tested"] if t.startswith("supabase_migrations:")]
    assert len(history) == 1 and "4 applied migration(s)" in history[0], data["not_tested"]
    assert data["backup"]["tables"] > 10 and data["backup"]["objects"] == 30
    # The built-in categories did not run, so the verdict cannot be PASS.
    assert data["status"] == "FAIL" and result.ret != 0
    dsn, backup_path = next(iter(seen)).split("\n")
    assert _port_closed(dsn), "the staging cluster is still running"
    assert not Path(backup_path).exists(), "the temporary backup set was not removed"
    assert not _leftovers(out)
    del before


def test_dry_run_lists_what_would_happen_and_writes_nothing(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    result = pytester.runpytest(
        "--supabase-restore",
        "--supabase-demo",
        "--supabase-dry-run",
        f"--supabase-backup-dir={backups}",
        "-p",
        "no:cacheprovider",
    )
    out = result.stdout.str()
    assert "table public.tasks" in out and re.search(r"bucket avatars +INFO \d+ objects", out)
    assert re.search(r"staging target +INFO (auto: )?(ephemeral|container)", out)
    assert not backups.exists()


def test_corrupt_backup_fails_naming_the_file(pytester: pytest.Pytester, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    first = pytester.runpytest(
        "--supabase-restore",
        "--supabase-demo",
        "--no-supabase-builtin-tests",
        f"--supabase-backup-dir={backups}",
        "-p",
        "no:cacheprovider",
    )
    assert first.ret != 0  # no built-in tests ran, but the set was written
    (set_dir,) = [p for p in backups.iterdir() if not p.name.startswith(".")]
    victim = sorted((set_dir / "db").glob("*.dat*"))[0]
    victim.write_bytes(victim.read_bytes()[:-3])
    summary = tmp_path / "summary.json"
    result = pytester.runpytest(
        "--supabase-restore",
        f"--supabase-from-backup={set_dir}",
        "--supabase-summary-json",
        str(summary),
        "-p",
        "no:cacheprovider",
    )
    assert result.ret != 0
    data = json.loads(summary.read_text())
    assert data["status"] == "FAIL"
    assert victim.name in data["reason"] and "truncated" in data["reason"]
    assert not _leftovers(result.stdout.str())


def test_supabase_cli_dump_files_are_accepted(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """roles.sql/schema.sql/data.sql as `supabase db dump` writes them restore; the verdict
    lists what a manifest-less backup cannot prove."""
    dump = tmp_path / "cli"
    dump.mkdir()
    with DemoProject(scale=1, objects=3) as demo:
        tools = find_client_tools(15)
        schema = run_tool(
            [tools.path("pg_dump"), "--schema-only", "--schema=public", "--no-owner"], demo.db_url
        )
        data = run_tool([tools.path("pg_dump"), "--data-only", "--schema=public"], demo.db_url)
        assert schema.returncode == 0 and data.returncode == 0, schema.stderr + data.stderr
    (dump / "roles.sql").write_text("")
    (dump / "schema.sql").write_text("\\restrict abc\n" + schema.stdout)
    (dump / "data.sql").write_text(data.stdout)
    summary = tmp_path / "summary.json"
    pytester.runpytest(
        "--supabase-restore",
        f"--supabase-from-backup={dump}",
        "--no-supabase-builtin-tests",
        "--supabase-summary-json",
        str(summary),
        "-p",
        "no:cacheprovider",
    )
    verdict = json.loads(summary.read_text())
    assert any("no manifest" in item for item in verdict["not_tested"])
    assert verdict["staging"] == "ephemeral"


@pytest.mark.timeout(300)
def test_a_cli_dump_made_with_the_clis_own_flags_validates_pass(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """`supabase db dump --role-only`, the default schema dump and `--data-only`, made with
    the CLI's flags and line rewrites (tests/cli_dump.py) from the demo, which is built on a
    fresh Supabase project's platform SQL: tables referencing auth.users, data for auth.*
    and storage.* tables, psql's \\restrict lines, event triggers commented out. Restored into
    the ephemeral target (which gets auth and storage first, as a Supabase project has them),
    every built-in check that needs no manifest runs and the verdict is PASS."""
    from cli_dump import cli_dump

    with DemoProject(scale=1, objects=3) as demo:
        dump = cli_dump(find_client_tools(15), demo.db_url, tmp_path / "cli")
    schema = (dump / "schema.sql").read_text()
    assert 'REFERENCES "auth"."users"' in schema
    assert 'INSERT INTO "auth"."users"' in (dump / "data.sql").read_text()
    summary = tmp_path / "summary.json"
    result = pytester.runpytest(
        "--supabase-restore",
        f"--supabase-from-backup={dump}",
        "--supabase-summary-json",
        str(summary),
        "-p",
        "no:cacheprovider",
    )
    verdict = json.loads(summary.read_text())
    assert verdict["status"] == "PASS", verdict["reason"] + result.stdout.str()[-4000:]
    assert any("no manifest" in item for item in verdict["not_tested"])
    assert verdict["categories"]["crud_operations"]["passed"] > 0
    assert "nothing to check in database_schema, data_integrity, storage" in verdict["reason"]


def test_kept_staging_outlives_the_run_and_its_keys_are_handed_over_privately(
    tmp_path: Path,
) -> None:
    """--supabase-keep-staging: once pytest has exited (its exit handlers and watchdog
    done), the staging cluster and its S3 server still answer, with the connection and
    the S3 keys handed over in 0600 files, never printed."""
    import os
    import re
    import shutil
    import signal
    import stat
    import sys

    import psycopg

    from pytest_supabase_restore.storage.client import make_client
    from pytest_supabase_restore.storage.endpoint import S3Endpoint

    (tmp_path / "test_nothing.py").write_text(
        "import pytest\n\n@pytest.mark.supabase_category('custom')\n"
        "def test_staging(staging_dsn):\n    assert staging_dsn\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--supabase-restore", "--supabase-demo",
         "--no-supabase-builtin-tests", "--supabase-keep-staging", "-p", "no:cacheprovider",
         "test_nothing.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    kept = re.search(r'staging left running: psql "(?P<dsn>[^"]+)"; S3 at (?P<url>\S+) '
                     r"\(its keys: (?P<env>[^)]+)\)", out)  # fmt: skip
    assert kept, out[-3000:]
    env = dict(line.split("=", 1) for line in Path(kept["env"]).read_text().splitlines() if line)
    assert stat.S_IMODE(os.stat(kept["env"]).st_mode) == 0o600
    assert env["STAGING_S3_SECRET_ACCESS_KEY"] not in out
    data_dir = None
    try:
        with psycopg.connect(kept["dsn"], connect_timeout=5) as conn:
            row = conn.execute("SELECT current_setting('data_directory')").fetchone()
        assert row is not None
        data_dir = Path(row[0])
        client = make_client(
            S3Endpoint(
                url=env["STAGING_S3_ENDPOINT"],
                region=env["STAGING_S3_REGION"],
                access_key_id=env["STAGING_S3_ACCESS_KEY_ID"],
                secret_access_key=env["STAGING_S3_SECRET_ACCESS_KEY"],
            )
        )
        assert client.list_buckets()["Buckets"], "the kept S3 server holds the restored buckets"
    finally:  # the test, not the plugin, ends what it kept
        port = kept["url"].rsplit(":", 1)[1]
        ps = subprocess.run(
            ["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True
        ).stdout  # -ww: whole command lines, whatever COLUMNS says
        for line in ps.splitlines():
            if "_server_main" in line and f" {port} " in line:
                os.kill(int(line.split()[0]), signal.SIGKILL)
                shutil.rmtree(line.split()[-1], ignore_errors=True)  # its objects' directory
        if data_dir is not None:
            pid = int((data_dir / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGQUIT)
            time.sleep(1)
            shutil.rmtree(data_dir.parent, ignore_errors=True)
        Path(kept["env"]).unlink()


def test_self_test_on_a_staging_that_loads_pg_cron_injects_every_fault(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """--supabase-self-test copies the restored database once per fault. On a staging
    target that loads pg_cron, the cron launcher stays connected to that database, and a
    template must have no other session: every copy used to fail, and the self-test was
    reported as not run."""
    from pytest_supabase_restore.pg import cron
    from pytest_supabase_restore.pg.binaries import find_server_tools

    if not cron.available(find_server_tools(15)):
        pytest.skip("this PostgreSQL installation has no pg_cron (Debian: postgresql-15-cron)")
    summary = tmp_path / "summary.json"
    result = pytester.runpytest(
        "--supabase-restore", "--supabase-demo", "--supabase-self-test", "-p",
        "no:cacheprovider", "--supabase-summary-json", str(summary),
    )  # fmt: skip
    data = json.loads(summary.read_text())
    assert data["status"] == "PASS", (data.get("reason"), result.stdout.str()[-3000:])
    faults = data["self_test"]
    assert len(faults) >= 5 and all(f["caught"] for f in faults), faults
