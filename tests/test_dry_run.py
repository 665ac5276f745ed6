"""``--supabase-dry-run`` through pytest, as a user runs it: the preflight's table in the
output and in the JSON summary, the exit status, nothing exported and nothing written."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pytest_supabase_restore.pg.cluster import Cluster

APP_SQL = """
CREATE TABLE public.accounts (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO public.accounts SELECT g, 'account ' || g FROM generate_series(1, 500) g;
"""


@pytest.fixture(scope="module")
def source() -> Iterator[Cluster]:
    with Cluster(name="dry-run-src") as cluster:
        with cluster.connect(autocommit=True) as admin:
            admin.execute("CREATE DATABASE app")
        with psycopg.connect(cluster.dsn("app"), autocommit=True) as app:
            app.execute(APP_SQL)
        yield cluster


def _rows(data: dict[str, object]) -> dict[str, dict[str, str]]:
    rows = data["preflight"]
    assert isinstance(rows, list) and rows
    return {r["check"]: r for r in rows}


@pytest.mark.timeout(120)
def test_a_clean_demo_passes_with_sizes_disk_and_time_in_human_units(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    summary = tmp_path / "summary.json"
    t0 = time.monotonic()
    result = pytester.runpytest(
        "--supabase-restore", "--supabase-demo", "--supabase-dry-run",
        f"--supabase-backup-dir={backups}", "--supabase-summary-json", str(summary),
        "-p", "no:cacheprovider",
    )  # fmt: skip
    elapsed = time.monotonic() - t0
    out = result.stdout.str()
    assert result.ret == 0, out[-3000:]
    assert elapsed < 60, f"the demo's dry run took {elapsed:.1f} s"
    data = json.loads(summary.read_text())
    assert data["status"] == "PASS" and data["dry_run"] is True
    assert re.fullmatch(
        r"dry run: preflight passed \(\d+ checks, \d+ warning\(s\)\); nothing was exported",
        data["reason"],
    )
    rows = _rows(data)
    assert not [r for r in rows.values() if r["status"] == "FAIL"], rows
    assert re.search(r"\d+ tables \([\d.]+ [KMG]iB of rows", rows["source size"]["result"])
    assert re.search(r"~\d+ rows, [\d.]+ KiB of rows", rows["table public.tasks"]["result"])
    assert re.search(r"needs up to [\d.]+ MiB in \S+, [\d.]+ [MGT]iB free", rows["disk"]["result"])
    assert re.search(r"about \d+ s for", rows["estimated time"]["result"])
    assert re.search(r"^\d+ objects, [\d.]+ KiB$", rows["bucket avatars"]["result"])
    assert "preflight: PASS" in out and "estimated time" in out
    assert not backups.exists()


@pytest.mark.timeout(120)
def test_staging_equal_to_the_source_fails_before_anything_is_exported(
    pytester: pytest.Pytester, tmp_path: Path, source: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_url = source.dsn("app")
    monkeypatch.setenv("SUPABASE_DB_URL", db_url)
    monkeypatch.setenv("STAGING_DB_URL", db_url)
    backups = tmp_path / "backups"
    summary = tmp_path / "summary.json"
    result = pytester.runpytest(
        "--supabase-restore", "--supabase-dry-run", "--supabase-staging=url",
        f"--supabase-backup-dir={backups}", "--supabase-summary-json", str(summary),
        "-p", "no:cacheprovider",
    )  # fmt: skip
    out = result.stdout.str()
    assert result.ret != 0, out[-3000:]
    data = json.loads(summary.read_text())
    assert data["status"] == "FAIL"
    assert "staging safety" in data["reason"] and "same host, port and database" in data["reason"]
    assert "Fix: point STAGING_DB_URL at a separate, disposable database" in data["reason"]
    row = _rows(data)["staging safety"]
    assert row["status"] == "FAIL" and row["fix"]
    assert "preflight staging safety: " in out  # the verdict block names it with its fix
    assert not backups.exists()
    with source.connect("app") as conn:
        assert conn.execute("SELECT count(*) FROM public.accounts").fetchone() == (500,)
