"""Tables are hashed while pg_dump still writes the others: a real ``pg_dump -Fd -j 2`` of a
real cluster, one of whose workers is held (SIGSTOP) while it writes the large table."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pytest_supabase_restore.pg.binaries import PgBinaries, find_client_tools
from pytest_supabase_restore.pg.cluster import Cluster, start_cluster
from pytest_supabase_restore.proof import dumpfollow
from pytest_supabase_restore.proof.copyhash import DumpTable
from pytest_supabase_restore.proof.dumpfollow import DumpFollower, hash_while_dumping
from pytest_supabase_restore.proof.dumpset import (
    Hashing,
    Layout,
    data_entries,
    data_file,
    dump_tables,
    layouts,
)
from pytest_supabase_restore.proof.records import Fingerprint
from pytest_supabase_restore.proof.rlskeys import fingerprint_and_pick
from pytest_supabase_restore.proof.scope import TableRef, list_tables, schemas_in_scope


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with start_cluster(name="follow") as c:
        with psycopg.connect(c.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE big (id bigint PRIMARY KEY, v text)")
            conn.execute(
                "INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 600000) g"
            )
            conn.execute("CREATE TABLE small (id int PRIMARY KEY, v text)")
            conn.execute("INSERT INTO small SELECT g, g::text FROM generate_series(1, 500) g")
            conn.execute("CREATE TABLE tiny (k text PRIMARY KEY)")
            conn.execute("INSERT INTO tiny VALUES ('a'), ('b')")
        yield c


def _tables(cluster: Cluster) -> tuple[list[TableRef], dict[str, Layout]]:
    with psycopg.connect(cluster.dsn()) as conn:
        tables = list_tables(conn, schemas_in_scope(conn))
        return tables, layouts(conn, tables)


def _start_dump(cluster: Cluster, out: Path) -> subprocess.Popen[bytes]:
    tools = find_client_tools(15)
    return subprocess.Popen(
        [tools.path("pg_dump"), "-Fd", "-j", "2", f"--file={out}", f"--dbname={cluster.dsn()}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _writer_of(dumper: subprocess.Popen[bytes], name_part: str, timeout: float = 30.0) -> int:
    """The pid of pg_dump's process that holds a data file open whose name contains
    ``name_part`` (found through /proc), once one does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in dumpfollow._group(dumper.pid):
            fd_dir = Path(f"/proc/{pid}/fd")
            for fd in os.listdir(fd_dir) if fd_dir.is_dir() else []:
                try:
                    target = os.readlink(fd_dir / fd)
                except OSError:
                    continue
                if name_part in target:
                    return pid
        time.sleep(0.005)
    raise AssertionError("no pg_dump process opened the large table's data file")


def _big_file(tools: PgBinaries, out: Path, cluster: Cluster) -> str:
    with psycopg.connect(cluster.dsn()) as conn:
        row = conn.execute("SELECT 'big'::regclass::oid::bigint").fetchone()
    assert row is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (out / "toc.dat").is_file():
            entries = data_entries(tools, out)
            if entries and int(row[0]) in entries:
                return f"/{entries[int(row[0])]}.dat"
        time.sleep(0.005)
    raise AssertionError("toc.dat never listed the large table")


def _hashed_after(
    tools: PgBinaries, out: Path, tables: list[TableRef], layout: dict[str, Layout]
) -> dict[str, Fingerprint]:
    """Every table's fingerprint from the finished dump, hashed in this process."""
    entries = data_entries(tools, out)
    assert entries is not None
    files = {oid: data_file(out, dump_id) for oid, dump_id in entries.items()}
    ready, missing = dump_tables(tables, layout, {o: f for o, f in files.items() if f is not None})
    assert not missing
    return {t.qualified: fingerprint_and_pick(t, "utf-8", None)[0] for t in ready}


def test_a_table_is_hashed_while_pg_dump_still_writes_another(
    cluster: Cluster, tmp_path: Path
) -> None:
    tables, layout = _tables(cluster)
    tools = find_client_tools(15)
    out = tmp_path / "db"
    dumper = _start_dump(cluster, out)
    held: int | None = None
    try:
        big = _big_file(tools, out, cluster)
        held = _writer_of(dumper, big)
        os.kill(held, signal.SIGSTOP)  # pg_dump cannot finish the large table now
        follower = DumpFollower(tools, out, dumper.pid)
        deadline = time.monotonic() + 30
        complete: dict[int, Path] = {}
        while time.monotonic() < deadline and len(complete) < 2:
            complete = follower.complete(exited=False)
            time.sleep(0.05)
        names = {p.name for p in complete.values()}
        assert len(complete) == 2 and not any(n.startswith(big.strip("/")) for n in names), names
        assert dumper.poll() is None

        # The same while hashing: the small tables' fingerprints come in, pg_dump still runs.
        seen: dict[str, tuple[Fingerprint, bool]] = {}

        def done(t: DumpTable, fp: Fingerprint, _sample: object) -> None:
            seen[t.qualified] = (fp, dumper.poll() is None)

        hashing = Hashing("utf-8", 2, done)
        stop = threading.Event()
        worker = threading.Thread(
            target=hash_while_dumping,
            args=(dumper, tools, out, tables, layout, hashing, stop),
            kwargs={"poll": 0.05},
        )
        worker.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(seen) < 2:
            time.sleep(0.05)
        assert sorted(seen) == ["public.small", "public.tiny"]
        assert all(during for _fp, during in seen.values())
        os.kill(held, signal.SIGCONT)
        held = None
        worker.join(120)
        assert not worker.is_alive()
        assert dumper.wait(60) == 0
        assert sorted(seen) == ["public.big", "public.small", "public.tiny"]
        assert not seen["public.big"][1]  # its file was complete only when pg_dump ended

        # The fingerprints are those of the whole dump hashed after pg_dump.
        after = _hashed_after(tools, out, tables, layout)
        assert {k: v[0] for k, v in seen.items()} == after
        assert after["public.big"].rows == 600000
    finally:
        if held is not None:
            os.kill(held, signal.SIGCONT)
        if dumper.poll() is None:
            dumper.kill()
            dumper.wait()


def test_without_proc_every_table_is_hashed_once_pg_dump_has_ended(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dumpfollow, "can_follow", lambda pid: False)
    tables, layout = _tables(cluster)
    tools = find_client_tools(15)
    dumper = _start_dump(cluster, tmp_path / "db")
    seen: dict[str, bool] = {}
    hashing = Hashing(
        "utf-8", 2, lambda t, fp, _s: seen.__setitem__(t.qualified, dumper.poll() is None)
    )
    after = hash_while_dumping(
        dumper, tools, tmp_path / "db", tables, layout, hashing, threading.Event()
    )
    assert dumper.returncode == 0 and after >= 0
    assert sorted(seen) == ["public.big", "public.small", "public.tiny"]
    assert not any(seen.values())


def test_a_failed_pg_dump_hands_over_nothing_more(cluster: Cluster, tmp_path: Path) -> None:
    tables, layout = _tables(cluster)
    tools = find_client_tools(15)
    dumper = subprocess.Popen(
        [
            tools.path("pg_dump"),
            "-Fd",
            f"--file={tmp_path / 'db'}",
            "--dbname=postgresql://127.0.0.1:1/x",
        ],
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    seen: list[str] = []
    hashing = Hashing("utf-8", 2, lambda t, fp, _s: seen.append(t.qualified))
    assert (
        hash_while_dumping(
            dumper, tools, tmp_path / "db", tables, layout, hashing, threading.Event()
        )
        == 0.0
    )
    assert dumper.returncode != 0 and seen == []
