"""Fault injection: real servers, real processes, real faults on loopback.

Every case is bounded in time (``pytest.mark.timeout``) and checks the three promises:
the run ends in a FAIL or a clear error that names the cause, transient faults are retried
within bounded time, and nothing is left behind (no partial backup set, no process, no
cluster, no temporary directory).

Faults come from: a TCP proxy between the drill and PostgreSQL (``tcpfaults.TcpProxy``)
that cuts or stalls traffic; roles with timeouts or missing grants on the source; a small
tmpfs for "disk full"; PostgreSQL killed with a signal; signals and pytest-timeout applied
to a real ``pytest --supabase-restore`` run in a child process. S3 faults (refused, cut
mid-object, 503 SlowDown, object changing during download, pagination) are in
``test_storage.py``; damaged backup sets in ``test_export_restore.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tcpfaults import TcpProxy

from pytest_supabase_restore.connections import DISPOSABLE_MARKER
from pytest_supabase_restore.demo import DemoProject
from pytest_supabase_restore.errors import (
    BackupError,
    RestoreError,
    SourceConnectionLost,
    SourceError,
)
from pytest_supabase_restore.export import ExportOptions, export
from pytest_supabase_restore.pg.binaries import find_client_tools
from pytest_supabase_restore.pg.cluster import Cluster
from pytest_supabase_restore.restore import restore_backup_set
from pytest_supabase_restore.staging.ephemeral import EphemeralStaging

PREFIX = "supabase-restore-"


@pytest.fixture(scope="module")
def demo() -> Iterator[Any]:
    with DemoProject(scale=1) as project:
        yield project


@pytest.fixture(scope="module")
def backup(demo: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export(
        demo.db_url, tmp_path_factory.mktemp("sets"), s3=demo.s3, options=ExportOptions(jobs=2)
    )


def through(proxy: TcpProxy, dsn: str) -> str:
    """``dsn`` with its port replaced by the proxy's."""
    return re.sub(r":(\d+)/", f":{proxy.port}/", dsn, count=1)


def processes_mentioning(*needles: str) -> list[str]:
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True, check=True
    )
    return [
        line
        for line in out.stdout.splitlines()
        # A zombie (<defunct>) has exited; only its parent's bookkeeping is left.
        if any(n in line for n in needles) and "ps -eo" not in line and "<defunct>" not in line
    ]


def tools_reaching(tool: str, port: int) -> list[str]:
    """The running ``tool`` processes whose libpq environment targets ``port`` (other tests
    of the same xdist run may run pg_restore at the same time, against other ports)."""
    found = []
    for line in processes_mentioning(tool):
        pid = line.split()[0]
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"PGPORT={port}".encode() in environ:
            found.append(line)
    return found


def wait_until(predicate: Any, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def temp_entries() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob(PREFIX + "*")}


@contextlib.contextmanager
def tmpfs(size: str) -> Iterator[Path]:
    """A size-limited filesystem (needs root / CAP_SYS_ADMIN), mounted directly below the
    temp dir so that the unprivileged PostgreSQL server user can reach it."""
    path = Path(tempfile.mkdtemp(prefix="fault-disk-"))
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        path.rmdir()
        pytest.skip(f"cannot mount a size-limited tmpfs here (needs root): {result.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
        path.rmdir()


# -- the source database --------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_wrong_password_is_one_precise_error_without_the_password(
    demo: Any, tmp_path: Path
) -> None:
    """Real password authentication (SCRAM) for one role of the source."""
    hba = demo.cluster.data_dir / "pg_hba.conf"
    original = hba.read_text()
    with psycopg.connect(demo.admin_url, autocommit=True) as admin:
        admin.execute("CREATE ROLE backup_reader LOGIN PASSWORD 'right-pw-5e1'")
        hba.write_text("host all backup_reader 127.0.0.1/32 scram-sha-256\n" + original)
        admin.execute("SELECT pg_reload_conf()")
        try:
            # Not the cluster's own URL: its empty password= parameter would win over this one.
            url = f"postgresql://backup_reader:wrong-pw-93c@127.0.0.1:{demo.cluster.port}/postgres"
            with pytest.raises(SourceError) as info:
                export(url, tmp_path, s3=None)
        finally:
            hba.write_text(original)
            admin.execute("SELECT pg_reload_conf()")
            admin.execute("DROP ROLE backup_reader")
    message = str(info.value)
    assert "password authentication failed" in message, message
    assert "check the user and password in SUPABASE_DB_URL" in message
    assert "wrong-pw-93c" not in message and "right-pw" not in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.timeout(60)
def test_connection_dropped_mid_export_is_named_and_leaves_no_set(
    demo: Any, tmp_path: Path
) -> None:
    """The proxy cuts every connection once ~0.5 MB have come back: pg_dump and the
    fingerprint sessions lose their server in the middle of the export."""
    sets = tmp_path / "sets"
    sets.mkdir()
    with TcpProxy(demo.cluster.port) as proxy:
        proxy.cut_after(500_000)
        with pytest.raises(SourceConnectionLost) as info:
            export(through(proxy, demo.db_url), sets, s3=None, options=ExportOptions(jobs=2))
        assert proxy.cuts == 1
    message = str(info.value)
    assert "connection to the source was lost" in message
    assert list(sets.iterdir()) == []
    assert processes_mentioning(str(tmp_path)) == []


@pytest.mark.timeout(90)
def test_statement_and_idle_timeouts_of_the_source_role_do_not_break_the_export(
    demo: Any, tmp_path: Path
) -> None:
    """Supabase sets statement timeouts on roles; teams set idle-in-transaction timeouts.
    The export turns both off for its own sessions (as pg_dump does) and still completes."""
    with psycopg.connect(demo.admin_url, autocommit=True) as admin:
        # A table whose fingerprint takes far longer than the role's statement timeout.
        admin.execute(
            "CREATE TABLE public.big_log AS SELECT g AS id, md5(g::text) AS body "
            "FROM generate_series(1, 1000000) g"
        )
        admin.execute("ALTER TABLE public.big_log ADD PRIMARY KEY (id)")
        admin.execute("ANALYZE public.big_log")
        admin.execute("ALTER ROLE postgres SET statement_timeout = '100ms'")
        admin.execute("ALTER ROLE postgres SET idle_in_transaction_session_timeout = '100ms'")
        try:
            out = export(demo.db_url, tmp_path, s3=None, options=ExportOptions(jobs=2))
        finally:
            admin.execute("ALTER ROLE postgres RESET statement_timeout")
            admin.execute("ALTER ROLE postgres RESET idle_in_transaction_session_timeout")
            admin.execute("DROP TABLE public.big_log")
    data = json.loads((out / "manifest.json").read_text())
    assert data["tables"]["public.big_log"]["rows"] == 1_000_000


@pytest.mark.timeout(60)
def test_a_table_the_source_role_may_not_read_is_named_with_the_fix(
    demo: Any, tmp_path: Path
) -> None:
    with psycopg.connect(demo.admin_url, autocommit=True) as admin:
        admin.execute("CREATE TABLE public.payroll (id int PRIMARY KEY, amount int)")
        admin.execute("INSERT INTO public.payroll VALUES (1, 100)")
        admin.execute(
            "REVOKE ALL ON public.payroll FROM PUBLIC, postgres, anon, authenticated, service_role"
        )
        # On Supabase postgres is a member of pg_read_all_data, which reads every table: a
        # role without it is what meets the denied table.
        admin.execute("REVOKE pg_read_all_data FROM postgres")
        try:
            with pytest.raises(SourceError) as info:
                export(demo.db_url, tmp_path, s3=None, options=ExportOptions(jobs=2))
            # pg_dump, the one reader of table data, names the first table it was denied.
            denied = {
                name
                for (name,) in admin.execute(
                    "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') "
                    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                    "AND NOT has_table_privilege('postgres', c.oid, 'SELECT')"
                )
            }
        finally:
            admin.execute("GRANT pg_read_all_data TO postgres")
            admin.execute("DROP TABLE public.payroll")
    message = str(info.value)
    named = re.search(r"may not read table (\S+) ", message)
    assert named is not None and named.group(1) in denied, message
    assert f"GRANT SELECT ON TABLE {named.group(1)} TO" in message
    assert not isinstance(info.value, SourceConnectionLost)
    assert list(tmp_path.iterdir()) == []


# -- the backup set ---------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_disk_full_while_writing_the_set_is_named_and_nothing_is_kept(
    demo: Any, tmp_path: Path
) -> None:
    """The set (~2 MB of dump, 3 MB of objects) does not fit into a 2 MB tmpfs."""
    with tmpfs("2m") as small:
        with pytest.raises(BackupError) as info:
            export(demo.db_url, small, s3=demo.s3, options=ExportOptions(jobs=2))
        assert list(small.iterdir()) == []
    message = str(info.value)
    assert "ran out of space" in message and "--supabase-backup-dir" in message
    assert processes_mentioning(str(tmp_path)) == []


# -- the staging target -----------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_staging_server_killed_during_the_restore_is_named(backup: Path) -> None:
    target = EphemeralStaging.start(15)
    try:
        cluster = target.cluster  # type: ignore[attr-defined]

        def kill_after_schema(message: str) -> None:
            if message.startswith("restore: schema"):
                assert cluster.process is not None
                os.kill(cluster.process.pid, signal.SIGKILL)
                cluster.process.wait(timeout=10)

        with pytest.raises(RestoreError) as info:
            restore_backup_set(
                backup,
                target.dsn,
                find_client_tools(15),
                jobs=2,
                prepare_sql=target.prepare_sql,
                progress=kill_after_schema,
            )
    finally:
        target.stop()
    message = str(info.value)
    assert "stopped answering during the restore (data)" in message
    assert not Path(str(cluster.base_dir)).exists()


@pytest.mark.timeout(120)
def test_staging_out_of_disk_is_named(backup: Path, tmp_path: Path) -> None:
    """A staging server on a 64 MB tmpfs, filled up to 1 MB before the restore."""
    with tmpfs("64m") as disk:
        cluster = Cluster(superuser="supabase_admin", name="staging-small", parent=disk)
        try:
            cluster.start()
        except Exception as exc:  # pragma: no cover - depends on initdb's size
            pytest.skip(f"initdb does not fit into the small disk: {exc}")
        try:
            with cluster.connect(autocommit=True) as conn:
                conn.execute(f"COMMENT ON DATABASE postgres IS '{DISPOSABLE_MARKER}'")
                conn.execute("CHECKPOINT")
            # Leave about 1 MB free: the restore's data (~3 MB) cannot fit.
            st = os.statvfs(disk)
            with open(disk / "filler", "wb") as fh:
                fh.truncate(0)
                fh.write(b"\0" * max(0, st.f_bavail * st.f_frsize - 1_000_000))
            from pytest_supabase_restore.staging import platform

            with pytest.raises(RestoreError) as info:
                restore_backup_set(
                    backup,
                    cluster.dsn(),
                    find_client_tools(15),
                    jobs=2,
                    prepare_sql=platform.for_backup_set(),
                )
        finally:
            cluster.stop()
    message = str(info.value)
    assert "ran out of disk space" in message and "No space left on device" in message


# -- the run itself: a real `pytest --supabase-restore` in a child process -------------------
SMOKE = """
import time
import psycopg
import pytest


@pytest.mark.supabase_category("custom")
def test_staging_answers(staging_dsn):
    with psycopg.connect(staging_dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.supabase_category("custom")
def test_hangs(staging_dsn):
    if __import__("os").environ.get("FAULT_HANG"):
        time.sleep(120)
"""


class Run:
    """``python -m pytest --supabase-restore ...`` in a child process with a private TMPDIR,
    its output read line by line so that a fault can be injected at the right moment."""

    def __init__(self, tmp_path: Path, args: list[str], env: dict[str, str]) -> None:
        self.dir = tmp_path
        tmp_path.mkdir()
        (tmp_path / "test_smoke.py").write_text(SMOKE)
        # Directly below /tmp, reachable by the unprivileged PostgreSQL user.
        self.tmpdir = Path(tempfile.mkdtemp(prefix="fault-run-"))
        os.chmod(self.tmpdir, 0o755)  # noqa: S103 - holds no secrets; PostgreSQL must enter
        self.summary = tmp_path / "summary.json"
        self.backups = tmp_path / "sets"
        self.backups.mkdir()
        full_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SUPABASE_", "STAGING_", "PYTEST_", "GITHUB_", "SLACK_"))
        }
        full_env.update(env, TMPDIR=str(self.tmpdir), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pytest",
                "--supabase-restore",
                *([] if "--supabase-builtin-tests" in args else ["--no-supabase-builtin-tests"]),
                "-p",
                "no:cacheprovider",
                "-p",
                "no:randomly",
                "--supabase-summary-json",
                str(self.summary),
                "--supabase-backup-dir",
                str(self.backups),
                *args,
                "test_smoke.py",
            ],
            cwd=tmp_path,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []

    def wait_for_line(self, needle: str, timeout: float = 60) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if needle in line:
                return
        raise AssertionError(f"never saw {needle!r}:\n{''.join(self.lines)}")

    def finish(self, timeout: float = 90) -> str:
        out, _ = self.proc.communicate(timeout=timeout)
        self.lines.append(out)
        return "".join(self.lines)

    def verdict(self) -> dict[str, Any]:
        return json.loads(self.summary.read_text()) if self.summary.exists() else {}

    def leftovers(self, wait: float = 0) -> list[str]:
        """Processes or files of this run still there (after up to ``wait`` seconds)."""

        def found() -> list[str]:
            return (
                processes_mentioning(str(self.tmpdir), str(self.backups))
                + [str(p) for p in self.tmpdir.iterdir()]
                + [str(p) for p in self.backups.iterdir() if p.name.startswith(".partial")]
            )

        wait_until(lambda: not found(), wait)
        return found()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(OSError):
            self.tmpdir.rmdir()


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Any]:
    runs: list[Run] = []

    def start(args: list[str], env: dict[str, str]) -> Run:
        r = Run(tmp_path / f"run{len(runs)}", args, env)
        runs.append(r)
        return r

    yield start
    for r in runs:
        r.close()


PASSWORD = "fault-pw-4f1c9e"  # the source role's real password here; it must never be shown


@pytest.mark.timeout(120)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_export_stops_everything(demo: Any, run: Any, signum: int) -> None:
    """The source stalls in the middle of the export (pg_dump and the fingerprints wait on
    the network); the signal must still end the run at once, leaving nothing behind. While
    it runs, no process shows the password from SUPABASE_DB_URL."""
    demo.cluster.set_password("postgres", PASSWORD)
    with TcpProxy(demo.cluster.port) as proxy:
        url = through(proxy, demo.db_url).replace("postgres@", f"postgres:{PASSWORD}@")
        r = run([], {"SUPABASE_DB_URL": url})
        proxy.stall_after(500_000)
        r.wait_for_line("export ...")
        assert wait_until(lambda: proxy.stalled, 60), "the export never stalled"
        assert processes_mentioning("pg_dump"), "pg_dump is not running"
        assert processes_mentioning(PASSWORD) == []
        started = time.monotonic()
        r.proc.send_signal(signum)
        out = r.finish(timeout=60)
    assert time.monotonic() - started < 30, out
    assert r.proc.returncode not in (0, None), out
    assert PASSWORD not in out
    assert r.leftovers(wait=10) == [], out


@pytest.mark.timeout(150)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_restore_stops_pg_restore_and_leaves_nothing(
    demo: Any, run: Any, signum: int
) -> None:
    """Staging is a disposable database behind the proxy, stalled in the middle of the data
    phase; Ctrl-C or SIGTERM (a cancelled CI job) ends the run and pg_restore with it."""
    staging = Cluster(name="fault-staging").start()
    try:
        with staging.connect(autocommit=True) as conn:
            conn.execute(f"COMMENT ON DATABASE postgres IS '{DISPOSABLE_MARKER}'")
        with TcpProxy(staging.port) as proxy:
            r = run(
                ["--supabase-staging", "url"],
                {"SUPABASE_DB_URL": demo.db_url, "STAGING_DB_URL": through(proxy, staging.dsn())},
            )
            r.wait_for_line("restore: schema in", timeout=90)
            proxy.stall_after(200_000, down=False)
            assert wait_until(lambda: proxy.stalled, 30), "the restore never stalled"
            assert tools_reaching("pg_restore", proxy.port), "pg_restore is not running"
            r.proc.send_signal(signum)
            out = r.finish(timeout=60)
    finally:
        staging.stop()
    assert r.proc.returncode not in (0, None), out
    assert tools_reaching("pg_restore", proxy.port) == [], out
    assert r.leftovers(wait=10) == [], out


@pytest.mark.timeout(120)
def test_drill_time_limit_stops_a_stalled_export_with_a_fail(demo: Any, run: Any) -> None:
    """pytest-timeout's --session-timeout (which alone acts only between tests) bounds the
    drill: a source that stops answering ends in a FAIL naming the phase."""
    with TcpProxy(demo.cluster.port) as proxy:
        proxy.stall_after(500_000)
        r = run(
            ["-p", "timeout", "--session-timeout", "8"],
            {"SUPABASE_DB_URL": through(proxy, demo.db_url)},
        )
        started = time.monotonic()
        out = r.finish(timeout=90)
    assert time.monotonic() - started < 60, out
    verdict = r.verdict()
    assert verdict["status"] == "FAIL", out
    assert "time limit of 8 s" in verdict["reason"] and "export" in verdict["reason"], verdict
    assert r.proc.returncode != 0
    assert r.leftovers(wait=10) == [], out


@pytest.mark.timeout(150)
def test_a_dropped_source_connection_is_retried_once(demo: Any, run: Any) -> None:
    with TcpProxy(demo.cluster.port) as proxy:
        proxy.cut_after(500_000)
        r = run([], {"SUPABASE_DB_URL": through(proxy, demo.db_url)})
        out = r.finish(timeout=120)
        assert proxy.cuts == 1
    assert "export attempt 1 failed" in out and "connection to the source was lost" in out, out
    assert "2 passed" in out, out  # the retry exported, restored and the tests ran
    assert r.leftovers(wait=10) == [], out


@pytest.mark.timeout(150)
def test_a_source_connection_that_keeps_dropping_fails_naming_the_cause(
    demo: Any, run: Any
) -> None:
    with TcpProxy(demo.cluster.port) as proxy:
        proxy.cut_after(500_000, repeat=True)
        r = run([], {"SUPABASE_DB_URL": through(proxy, demo.db_url)})
        out = r.finish(timeout=120)
    verdict = r.verdict()
    assert verdict["status"] == "FAIL", out
    assert "connection to the source was lost" in verdict["reason"], verdict
    assert "gave up after 2 attempts" in verdict["reason"], verdict
    assert r.leftovers(wait=10) == [], out


@pytest.mark.timeout(150)
def test_pytest_timeout_in_a_smoke_test_fails_it_and_cleans_up(demo: Any, run: Any) -> None:
    """pytest-timeout's default (signal) method: the hanging test fails, the verdict is
    FAIL naming it, teardown runs."""
    r = run(
        ["-p", "timeout", "--timeout", "5"], {"SUPABASE_DB_URL": demo.db_url, "FAULT_HANG": "1"}
    )
    out = r.finish(timeout=120)
    verdict = r.verdict()
    assert verdict["status"] == "FAIL", out
    assert any(
        "test_hangs" in f["test"] and "Timeout" in f["message"] for f in verdict["failures"]
    ), verdict
    assert r.leftovers(wait=10) == [], out


@pytest.mark.timeout(150)
def test_pytest_timeout_thread_method_exit_is_cleaned_up_by_the_watchdog(
    demo: Any, run: Any
) -> None:
    """pytest-timeout's thread method ends the process with os._exit: no teardown runs.
    The watchdog must still stop the staging servers and remove every directory."""
    r = run(
        ["-p", "timeout", "--timeout", "5", "--timeout-method", "thread"],
        {"SUPABASE_DB_URL": demo.db_url, "FAULT_HANG": "1"},
    )
    out = r.finish(timeout=120)
    assert "Timeout" in out and r.proc.returncode != 0, out
    assert r.leftovers(wait=30) == [], out


@pytest.mark.timeout(120)
def test_kill_9_during_the_export_is_cleaned_up_by_the_watchdog(demo: Any, run: Any) -> None:
    """SIGKILL cannot be caught: no teardown runs at all. The watchdog stops pg_dump and
    its workers and removes the partial set and the run's directories."""
    with TcpProxy(demo.cluster.port) as proxy:
        proxy.stall_after(500_000)
        r = run([], {"SUPABASE_DB_URL": through(proxy, demo.db_url)})
        r.wait_for_line("export ...")
        assert wait_until(lambda: proxy.stalled, 60), "the export never stalled"
        assert any(p.name.startswith(".partial") for p in r.backups.iterdir())
        r.proc.kill()
        out = r.finish(timeout=30)
        assert r.leftovers(wait=30) == [], out


def test_watchdog_stops_servers_of_a_process_that_exits_without_teardown(tmp_path: Path) -> None:
    script = tmp_path / "owner.py"
    script.write_text(
        "import os\n"
        "from pytest_supabase_restore.pg.cluster import Cluster\n"
        "from pytest_supabase_restore.storage.server import LocalS3Server\n"
        "c = Cluster(name='orphan').start()\n"
        "s = LocalS3Server(name='orphan-s3').start()\n"
        "print(c.base_dir, c.process.pid, s.process.pid, flush=True)\n"
        "os._exit(3)\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 3, out.stderr
    base_dir, pg_pid, s3_pid = out.stdout.split()

    def gone() -> bool:
        alive = [p for p in (pg_pid, s3_pid) if Path(f"/proc/{p}").exists()]
        return not alive and not Path(base_dir).exists()

    assert wait_until(gone, 30), (base_dir, processes_mentioning(base_dir))


# -- hostile names and values -----------------------------------------------------------------
HOSTILE_SQL = '''
CREATE TABLE public."select" ("from" int PRIMARY KEY, "order" text, "user" text);
INSERT INTO public."select" SELECT g, 'o' || g, NULL FROM generate_series(1, 50) g;
CREATE TABLE public."Ünï ""quoted"" name; DROP TABLE x" (
    "id with space" bigint PRIMARY KEY, "naïve ""col""" text, "日本" jsonb
);
INSERT INTO public."Ünï ""quoted"" name; DROP TABLE x"
    SELECT g, E'tab\\there, quote \'\' and "dq"', jsonb_build_object('k', g) FROM generate_series(1, 30) g;
CREATE TABLE public."rate%s %(x)s" ("50%" int PRIMARY KEY, "discount%" text NOT NULL);
INSERT INTO public."rate%s %(x)s" SELECT g, g || '%' FROM generate_series(1, 20) g;
CREATE TABLE public.nullish (id int PRIMARY KEY, a text, b int, c bytea, d jsonb, e timestamptz);
INSERT INTO public.nullish (id) SELECT g FROM generate_series(1, 500) g;
CREATE TABLE public.huge_rows (id int PRIMARY KEY, body text, blob bytea);
INSERT INTO public.huge_rows
    SELECT g, repeat(md5(g::text), 400000), decode(repeat(md5(g::text), 200000), 'hex')
    FROM generate_series(1, 2) g;
'''


def _wide_table_sql(columns: int) -> str:
    cols = ", ".join(f'"c{i} wide" text' for i in range(columns))
    values = ", ".join(
        f"CASE WHEN g % {i % 7 + 2} = 0 THEN NULL ELSE 'v{i}' END" for i in range(columns)
    )
    return (
        f"CREATE TABLE public.very_wide (id int PRIMARY KEY, {cols});\n"
        f"INSERT INTO public.very_wide SELECT g, {values} FROM generate_series(1, 40) g;\n"
    )


@pytest.mark.timeout(300)
def test_hostile_names_and_values_pass_every_category(run: Any) -> None:
    """Reserved words, quotes, spaces, unicode and an SQL-injection-shaped table name, a
    500-column table, a NULL-only table and 25 MB rows (text and bytea): the whole drill,
    all eight categories, ends in PASS, and no row value reaches the summary."""
    with DemoProject(scale=1) as project:
        with psycopg.connect(project.admin_url, autocommit=True) as admin:
            admin.execute(HOSTILE_SQL)
            admin.execute(_wide_table_sql(500))
            admin.execute(
                "GRANT ALL ON ALL TABLES IN SCHEMA public TO postgres, anon, authenticated, service_role"
            )
        r = run(["--supabase-builtin-tests"], {"SUPABASE_DB_URL": project.db_url})
        out = r.finish(timeout=280)
    verdict = r.verdict()
    assert verdict["status"] == "PASS", (
        verdict.get("reason"),
        verdict.get("failures"),
        out[-3000:],
    )
    assert verdict["backup"]["tables"] >= 24, verdict["backup"]  # the demo's 19 and these 5
    assert "very_wide" in out and "huge_rows" in out, out[-3000:]
    summary = r.summary.read_text()
    assert "tab\\there" not in summary and "v499" not in summary
    assert r.leftovers(wait=10) == [], out
