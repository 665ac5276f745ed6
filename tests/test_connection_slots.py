"""--supabase-jobs against the source's connection slots, on a real server started with a
small ``max_connections``: the export never takes more than half the free slots (other
clients keep connecting while it runs), and a server that refuses connections is named as
such and not retried as a lost connection."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pytest_supabase_restore import manifest
from pytest_supabase_restore.config import Config
from pytest_supabase_restore.connections import Connection
from pytest_supabase_restore.drill import EXPORT_RETRY_DELAY, Drill
from pytest_supabase_restore.errors import SourceConnectionLost, SourceError
from pytest_supabase_restore.export import ExportOptions, export
from pytest_supabase_restore.pg.binaries import find_client_tools
from pytest_supabase_restore.pg.cluster import Cluster
from pytest_supabase_restore.pgtools import run_tool
from pytest_supabase_restore.slots import export_connections
from pytest_supabase_restore.source import source_failure

MAX_CONNECTIONS = 30
RESERVED = 3  # superuser_reserved_connections' default
CAPPED = re.compile(r"jobs capped from (\d+) to (\d+): the source has (\d+) free connection slots")


@pytest.fixture(scope="module")
def source() -> Iterator[Cluster]:
    with Cluster(name="slots", settings={"max_connections": str(MAX_CONNECTIONS)}) as cluster:
        with cluster.connect(autocommit=True) as admin:
            for i in range(8):  # several tables: the fingerprint workers run in parallel
                admin.execute(
                    f"CREATE TABLE public.t{i} AS SELECT g AS id, md5(g::text) AS v "
                    "FROM generate_series(1, 20000) g"
                )
                admin.execute(f"ALTER TABLE public.t{i} ADD PRIMARY KEY (id)")
            admin.execute("CREATE ROLE exporter LOGIN NOSUPERUSER")
            admin.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO exporter")
            admin.execute("CREATE ROLE app_client LOGIN NOSUPERUSER")
        cluster.set_password("exporter")  # the cluster is SCRAM-only
        cluster.set_password("app_client")
        yield cluster


@contextlib.contextmanager
def clients(cluster: Cluster, n: int) -> Iterator[list[psycopg.Connection[object]]]:
    """``n`` idle sessions of another client of the source, held open."""
    held: list[psycopg.Connection[object]] = []
    try:
        for _ in range(n):
            held.append(psycopg.connect(cluster.dsn(user="app_client"), autocommit=True))
        yield held
    finally:
        for conn in held:
            conn.close()


class Watch:
    """Samples, from a superuser session (reserved slots), the exporter's sessions; and keeps
    connecting as another client to prove that the export leaves room for others."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.peak = 0
        self.refused: list[str] = []
        self.connected = 0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._count),
            threading.Thread(target=self._canary),
        ]

    def _count(self) -> None:
        with self.cluster.connect(autocommit=True) as conn:
            while not self._stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = 'exporter'"
                ).fetchone()
                self.peak = max(self.peak, int(row[0]) if row else 0)
                time.sleep(0.005)

    def _canary(self) -> None:
        while not self._stop.is_set():
            try:
                psycopg.connect(self.cluster.dsn(user="app_client"), connect_timeout=5).close()
                self.connected += 1
            except psycopg.OperationalError as exc:
                self.refused.append(str(exc).strip())
            time.sleep(0.01)

    def __enter__(self) -> Watch:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()


@pytest.mark.timeout(120)
def test_jobs_are_capped_to_half_the_free_slots(source: Cluster, tmp_path: Path) -> None:
    """150 jobs against max_connections = 30 with 10 other clients connected: the export
    runs with what half the free slots allow, nobody else is refused meanwhile, and the
    held sessions of the other client survive (before: pg_dump -j 150 took every slot,
    other clients got "too many clients", and that was retried as a lost connection)."""
    lines: list[str] = []
    with clients(source, 10) as held, Watch(source) as watch:
        out = export(
            source.dsn(user="exporter"),
            tmp_path,
            s3=None,
            progress=lines.append,
            options=ExportOptions(jobs=150),
        )
        for conn in held:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    capped = [m for m in map(CAPPED.search, lines) if m]
    assert len(capped) == 1, lines
    requested, jobs, free = (int(g) for g in capped[0].groups())
    assert requested == 150
    # 10 held, the watcher's session and at most a canary; superusers' 3 slots held back.
    assert MAX_CONNECTIONS - RESERVED - 12 <= free <= MAX_CONNECTIONS - RESERVED - 10, free
    assert export_connections(jobs) <= free // 2 < export_connections(jobs + 1), (jobs, free)
    assert manifest.read_manifest(out).pg_dump.jobs == jobs
    assert 0 < watch.peak <= free // 2, (watch.peak, free)
    assert watch.refused == [] and watch.connected > 0, watch.refused[:3]


@pytest.mark.timeout(120)
def test_the_roles_connection_limit_caps_the_jobs(source: Cluster, tmp_path: Path) -> None:
    """CONNECTION LIMIT 5 on the export's role and 4 jobs asked for (10 connections): one job
    (3 connections) is used (before: "too many connections for role", read as a lost
    connection)."""
    with source.connect(autocommit=True) as admin:
        admin.execute("ALTER ROLE exporter CONNECTION LIMIT 5")
    lines: list[str] = []
    try:
        with Watch(source) as watch:
            out = export(
                source.dsn(user="exporter"),
                tmp_path,
                s3=None,
                progress=lines.append,
                options=ExportOptions(jobs=4),
            )
    finally:
        with source.connect(autocommit=True) as admin:
            admin.execute("ALTER ROLE exporter CONNECTION LIMIT -1")
    assert any(
        "jobs capped from 4 to 1: the source has 5 free connection slots (the role's "
        "connection limit 5, 0 in use)" in line
        for line in lines
    ), lines
    assert manifest.read_manifest(out).pg_dump.jobs == 1
    assert watch.peak <= 3, watch.peak


@pytest.mark.timeout(60)
def test_a_full_server_is_named_with_the_fix(source: Cluster, tmp_path: Path) -> None:
    """Every slot a non-superuser may use is taken: the export's first connection is refused
    ("remaining connection slots are reserved ...") and that is what the error says."""
    with clients(source, MAX_CONNECTIONS - RESERVED), pytest.raises(SourceError) as info:
        export(source.dsn(user="exporter"), tmp_path, s3=None, options=ExportOptions(jobs=2))
    assert not isinstance(info.value, SourceConnectionLost)
    message = str(info.value)
    assert "connection slots are taken" in message, message
    assert "remaining connection slots are reserved" in message, message
    assert "lower --supabase-jobs" in message and "not retried" in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.timeout(60)
def test_pg_dump_refused_a_slot_is_not_a_lost_connection(source: Cluster) -> None:
    """pg_dump's own message for a refused connection ("connection to server ... failed:
    FATAL: ...") is classified as no free slot, not as a lost connection (which the drill
    would retry with as many connections)."""
    with clients(source, MAX_CONNECTIONS - RESERVED):
        result = run_tool(
            [find_client_tools(15).path("pg_dump"), "--schema-only"],
            source.dsn(user="exporter"),
            timeout=60,
        )
    assert result.returncode != 0 and "connection slots are reserved" in result.stderr
    error = source_failure("pg_dump failed (exit 1)", result.stderr)
    assert not isinstance(error, SourceConnectionLost), error
    assert "connection slots are taken" in str(error), error


@pytest.mark.timeout(90)
def test_too_few_free_slots_fail_the_drill_once_without_a_retry(
    source: Cluster, tmp_path: Path
) -> None:
    """Two free slots: the export needs three. The drill fails at once with the reason
    (before: the snapshot session got a slot, pg_dump did not, and the refusal was retried
    as a lost connection after 5 s)."""
    settings = Config(
        enabled=True,
        staging="ephemeral",
        jobs=2,
        source=Connection(db_url=source.dsn(user="exporter")),
    )
    lines: list[str] = []
    with clients(source, MAX_CONNECTIONS - RESERVED - 2):
        drill = Drill(settings, tmp_path, lines.append)
        started = time.monotonic()
        try:
            state = drill.run()
        finally:
            drill.teardown()
    assert time.monotonic() - started < EXPORT_RETRY_DELAY, lines
    assert state.error_phase == "export", state.error
    assert state.error is not None and "2 free connection slot(s)" in state.error, state.error
    assert "needs at least 3" in state.error and "--supabase-jobs" in state.error
    assert state.export_retries == [], state.export_retries
