"""The PostgreSQL engine: binary discovery and throwaway clusters, on real servers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest

from pytest_supabase_restore.errors import ToolError
from pytest_supabase_restore.pg.binaries import find_client_tools, find_server_tools
from pytest_supabase_restore.pg.cluster import Cluster, start_cluster


def _postgres_pids_for(base: Path) -> list[str]:
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in out.splitlines() if str(base) in line]


def test_client_tools_match_or_exceed_the_server_major() -> None:
    tools = find_client_tools(15)
    assert tools.major >= 15
    assert (tools.bindir / "pg_dump").is_file()
    assert tools.version.startswith(str(tools.major))


def test_no_client_tools_for_a_newer_server_says_what_to_install() -> None:
    with pytest.raises(ToolError) as info:
        find_client_tools(99)
    message = str(info.value)
    assert (
        "99" in message and "postgresql-client-99" in message and "--supabase-pg-bindir" in message
    )


def test_cluster_listens_on_loopback_only_and_stops_without_leftovers() -> None:
    with start_cluster(name="engine") as cluster:
        base = cluster.base_dir
        assert base is not None
        with cluster.connect() as conn:
            row = conn.execute(
                "SELECT current_setting('listen_addresses'), current_user, "
                "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
            ).fetchone()
        assert row == ("127.0.0.1", "postgres", True)
        if os.geteuid() == 0:
            owner = subprocess.run(
                ["ps", "-o", "user=", "-p", str(cluster.process.pid)],  # type: ignore[union-attr]
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            assert owner != "root"
        assert (base / "sock").is_dir()
        assert oct(base.stat().st_mode & 0o777) == "0o700"
    assert not base.exists()
    assert not _postgres_pids_for(base)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(cluster.dsn(), connect_timeout=2)


def test_failed_start_cleans_up(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = Cluster(name="broken", settings={"shared_buffers": "not-a-size"}, start_timeout=20)
    with pytest.raises(Exception, match="exited during start-up"):
        cluster.start()
    assert cluster.base_dir is not None and not cluster.base_dir.exists()


def test_port_already_taken_is_retried() -> None:
    import socket

    with start_cluster(name="first") as first:
        taken = first.port
        cluster = Cluster(name="second")
        ports = iter([taken, 0])
        import pytest_supabase_restore.pg.cluster as mod

        real = mod.free_port
        mod.free_port = lambda: next(ports) or real()  # first try a busy port
        try:
            cluster.start()
            assert cluster.port != taken
        finally:
            mod.free_port = real
            cluster.stop()
        del socket


def test_ctrl_c_in_a_child_process_leaves_nothing_behind(tmp_path: Path) -> None:
    """A process that started a cluster and is interrupted stops it on the way out."""
    script = tmp_path / "child.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, time
            from pytest_supabase_restore.pg.cluster import start_cluster
            with start_cluster(name="sigint") as c:
                print(c.base_dir, flush=True)
                time.sleep(60)
            """
        )
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    base = Path(proc.stdout.readline().strip())
    assert base.exists()
    proc.send_signal(2)  # SIGINT: KeyboardInterrupt in the child
    proc.wait(timeout=60)
    assert not base.exists()
    assert not _postgres_pids_for(base)


def test_server_tools_found() -> None:
    binaries = find_server_tools(15)
    assert binaries.major >= 15
