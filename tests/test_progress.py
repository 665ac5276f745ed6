"""The progress heartbeat's totals and ETA: shown only where the total is really known.

The formatting is checked as a unit; the restore's "dump read X of Y" is checked against a
real pg_restore reading a real directory-format dump, stopped half way by a lock on staging.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_supabase_restore.pg.binaries import find_client_tools
from pytest_supabase_restore.pg.cluster import Cluster
from pytest_supabase_restore.pgtools import run_tool
from pytest_supabase_restore.progress import (
    Amount,
    LiveProgress,
    Tally,
    eta_seconds,
    format_amount,
    tool_bytes_read,
)
from pytest_supabase_restore.redact import Redactor
from pytest_supabase_restore.verdict_text import format_bytes


class Lines:  # pytest's TerminalReporter API as LiveProgress uses it, on a CI log
    isatty = False

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write_line(self, line: str) -> None:
        self.lines.append(line)

    def rewrite(self, line: str, **markup: bool) -> None:
        raise AssertionError("no live line on a CI log")


def test_an_amount_with_a_total_shows_share_rate_and_eta() -> None:
    amount = Amount("dump read", 12_000_000, 40_000_000)
    # 6 MB in the 2 s since it was first seen: 3 MB/s, 28 MB left: 9.3 s.
    eta = eta_seconds(amount, (10.0, 6_000_000), 12.0)
    assert eta == pytest.approx(28_000_000 / 3_000_000)
    assert format_amount(amount, 3_000_000, eta) == (
        "dump read 12.0 MB of 40.0 MB, 30% (3.0 MB/s, ETA 9.3 s)"
    )


def test_objects_are_counted_beside_the_bytes() -> None:
    tally = Tally(total=2_000_000, items_total=750)
    for _ in range(120):
        tally.add(5_000)
    amount = tally.amount("storage uploaded")
    assert amount == Amount("storage uploaded", 600_000, 2_000_000, 120, 750)
    assert format_amount(amount, None, None) == (
        "storage uploaded 600.0 kB of 2.0 MB, 30%, 120 of 750 objects"
    )


def test_no_total_means_no_share_and_no_eta() -> None:
    amount = Amount("written", 5_000_000)
    assert eta_seconds(amount, (0.0, 0), 10.0) is None
    assert format_amount(amount, 500_000, None) == "written 5.0 MB (500.0 kB/s)"


def test_no_eta_before_anything_moved_or_once_done() -> None:
    stalled = Amount("dump read", 1_000, 9_000)
    assert eta_seconds(stalled, (0.0, 1_000), 30.0) is None  # nothing since first seen
    done = Amount("dump read", 9_000, 9_000)
    assert eta_seconds(done, (0.0, 0), 30.0) is None
    assert format_amount(done, None, None) == "dump read 9.0 kB of 9.0 kB, 100%"


def test_the_heartbeat_shows_eta_once_progress_is_measured() -> None:
    done = {"n": 0}

    def work() -> list[Amount]:
        done["n"] += 100_000
        return [Amount("storage uploaded", done["n"], 10_000_000_000, None, None)]

    out = Lines()
    live = LiveProgress(out, Redactor(), lambda: "storage", work, interval=0.2)
    live.start()
    try:
        deadline = time.monotonic() + 30
        while sum("ETA" in line for line in out.lines) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        live.stop()
    beats = [line for line in out.lines if "storage: running for" in line]
    assert "ETA" not in beats[0], beats  # the first heartbeat has no rate yet
    assert any(", ETA " in b and " of 10.0 GB, 0%" in b for b in beats), beats


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with Cluster(name="progress") as pg:
        with pg.connect(autocommit=True) as conn:
            conn.execute("CREATE DATABASE src")
            conn.execute("CREATE DATABASE dst")
        with pg.connect("src", autocommit=True) as conn:
            for name in ("a_first", "b_locked"):
                conn.execute(
                    f"CREATE TABLE {name} AS SELECT g AS id, repeat(md5(g::text), 8) AS pad "
                    "FROM generate_series(1, 40000) g"
                )
        yield pg


def test_a_real_pg_restore_reports_how_much_of_the_dump_it_has_read(
    cluster: Cluster, tmp_path: Path
) -> None:
    """pg_restore's data section, blocked by a lock on its second table, has read part of
    the dump and not all of it; the heartbeat shows that share of the known total, and no
    ETA while nothing moves."""
    tools = find_client_tools(15)
    dump = tmp_path / "db"
    ran = run_tool([tools.path("pg_dump"), "-Fd", "-f", str(dump), "src"], cluster.dsn("src"))
    assert ran.returncode == 0, ran.stderr
    total = sum(p.stat().st_size for p in dump.iterdir())
    dst = cluster.dsn("dst")
    ran = run_tool([tools.path("pg_restore"), "--section=pre-data", "-d", "dst", str(dump)], dst)
    assert ran.returncode == 0, ran.stderr
    assert tool_bytes_read("pg_restore", "--section=data") is None  # none runs yet

    result: dict[str, int] = {}
    with cluster.connect("dst") as lock:
        lock.execute("LOCK TABLE b_locked IN ACCESS EXCLUSIVE MODE")
        args = [tools.path("pg_restore"), "--section=data", "-d", "dst", str(dump)]
        thread = threading.Thread(
            target=lambda: result.update(code=run_tool(args, dst, timeout=120).returncode)
        )
        thread.start()
        try:
            readings: list[int | None] = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # until the reads stop (blocked on the lock)
                readings.append(tool_bytes_read("pg_restore", "--section=data"))
                if len(readings) > 4 and readings[-1] and len(set(readings[-4:])) == 1:
                    break
                time.sleep(0.25)
            read = readings[-1]
            assert read is not None and 0 < read < total, (readings, total)

            out = Lines()
            amounts = lambda: [Amount("dump read", min(read, total), total)]  # noqa: E731
            live = LiveProgress(out, Redactor(), lambda: "restore", amounts, interval=0.2)
            live.start()
            time.sleep(1.0)
            live.stop()
        finally:
            lock.rollback()
            thread.join(timeout=120)
    assert result == {"code": 0}
    beats = [line for line in out.lines if "restore: running for" in line]
    assert beats and all(f" of {format_bytes(total)}, " in b for b in beats), (beats, total)
    assert not any("ETA" in b for b in beats), beats


def test_the_storage_download_counts_against_what_storage_objects_lists() -> None:
    from pytest_supabase_restore.storage.download import expected_total, progress_line

    rows: list[tuple[str, str, int | None]] = [("b", "x", 1_000_000), ("b", "y", 3_000_000)]
    assert expected_total(rows) == (2, 4_000_000)
    assert expected_total([*rows, ("b", "z", None)]) == (3, None)  # a row without a size
    started = time.monotonic() - 2.0  # 1 MB in the 2 s since the start: 6 s for 3 MB left
    line = progress_line(1, 1_000_000, (2, 4_000_000), started)
    assert line.startswith("storage: downloaded 1.0 MB of 4.0 MB, 25%, 1 of 2 objects (ETA ")
    assert line.endswith(" s) (totals from storage.objects)")
    eta = float(line.split("(ETA ")[1].split(" s)")[0])
    assert 5.0 <= eta <= 7.0
    unknown = progress_line(1, 1_000_000, (3, None), started)
    assert unknown == "storage: downloaded 1.0 MB, 1 of 3 objects (totals from storage.objects)"
    assert progress_line(1, 1_048_576, None, started) == "storage: 1 objects, 1.0 MiB downloaded"
