"""Fingerprints of the backup's own bytes (proof.copyhash) against a real export and restore.

The source is the schema of test_fingerprint.py (every common type, weird names, a
partitioned table, a generated column, a table without a primary key). A real export hashes
the COPY lines pg_dump wrote; ``dst`` is pg_restore of that set, compared table by table.
"""

from __future__ import annotations

import copy
import itertools
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pytest_supabase_restore.errors import BackupError
from pytest_supabase_restore.export import ExportOptions, export
from pytest_supabase_restore.manifest import read_manifest, validate_manifest
from pytest_supabase_restore.model import Manifest, TableEntry
from pytest_supabase_restore.pg.binaries import find_client_tools
from pytest_supabase_restore.pg.cluster import Cluster, start_cluster
from pytest_supabase_restore.proof.copyhash import (
    HASH_SCHEMES,
    copy_escape,
    copy_unescape,
    fingerprint_lines,
)
from pytest_supabase_restore.proof.fingerprint import RangeDiff, compare_table
from pytest_supabase_restore.proof.records import Fingerprint
from pytest_supabase_restore.proof.scope import TableRef, list_tables, schemas_in_scope
from pytest_supabase_restore.results import SourceReads
from tests.test_fingerprint import ROLES_SQL, SCHEMA_SQL, SECRET, WEIRD_SCHEMA, WEIRD_TABLE


@dataclass
class Env:
    cluster: Cluster
    manifest: Manifest
    tables: dict[str, TableRef]
    reads: dict[str, Any]

    def connect(self, db: str, **kw: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.cluster.dsn(db), **kw)


def _seq_reads(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        row = conn.execute(
            "SELECT coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0)"
            " FROM pg_stat_user_tables WHERE relname = 'all_types'"
        ).fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tools = find_client_tools(15)
    with start_cluster(name="fpcopy") as cluster:
        with cluster.connect(autocommit=True) as conn:
            conn.execute(ROLES_SQL)
            conn.execute("CREATE DATABASE src")
            conn.execute("CREATE DATABASE dst")
        with psycopg.connect(cluster.dsn("src"), autocommit=True) as conn:
            conn.execute(SCHEMA_SQL)
            conn.execute("ALTER DATABASE src SET TimeZone = 'Asia/Kolkata'")
            conn.execute("ALTER DATABASE src SET bytea_output = 'escape'")
        with psycopg.connect(cluster.dsn("dst"), autocommit=True) as conn:
            conn.execute("CREATE SCHEMA extensions")  # the export leaves it to the platform
        measured: list[SourceReads] = []
        before = _seq_reads(cluster.dsn("src"))
        out = export(
            cluster.dsn("src"),
            tmp_path_factory.mktemp("sets"),
            s3=None,
            options=ExportOptions(jobs=2, compression="gzip:1"),
            source_reads=measured.append,
        )
        time.sleep(1.2)  # other backends flush their statistics within a second
        assert len(measured) == 1
        reads: dict[str, Any] = asdict(measured[0])
        reads["all_types_seq"] = _seq_reads(cluster.dsn("src")) - before
        proc = subprocess.run(
            [tools.path("pg_restore"), "--dbname", cluster.dsn("dst"), str(out / "db")],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert "ERROR" not in proc.stderr.replace("already exists", ""), proc.stderr[-2000:]
        manifest = read_manifest(out)
        with psycopg.connect(cluster.dsn("dst")) as conn:
            tables = {t.qualified: t for t in list_tables(conn, schemas_in_scope(conn))}
        yield Env(cluster, manifest, tables, reads)


def _fp(entry: TableEntry) -> Fingerprint:
    assert entry.fingerprint is not None, entry.qualified
    return entry.fingerprint


def test_every_table_is_fingerprinted_from_the_dump_and_matches(env: Env) -> None:
    recorded = env.manifest.tables
    assert sorted(recorded) == sorted(env.tables)
    odd = "-c TimeZone=America/New_York -c DateStyle=SQL,DMY -c extra_float_digits=0"
    with env.connect("dst", options=odd) as conn:
        for name, table in env.tables.items():
            entry = _fp(recorded[name])
            assert entry.copy is not None and entry.copy.scheme in HASH_SCHEMES, (name, entry)
            result = compare_table(conn, table, entry)
            assert result.ok, result.message
    types = _fp(recorded["public.all_types"])
    assert types.rows == 2000 and [b.rows for b in types.ranges] == [125] * 16
    assert types.ranges[0].lo == ("1",) and types.ranges[-1].hi == ("2000",)
    assert types.copy is not None
    assert "doubled" not in types.copy.parts[0].columns  # generated: pg_dump leaves it out
    assert types.copy.settings["TimeZone"] == "Asia/Kolkata"
    assert types.copy.settings["bytea_output"] == "escape"
    measurements = _fp(recorded["public.measurements"])
    assert measurements.copy is not None
    parts = [p.name for p in measurements.copy.parts]
    assert parts == ["measurements_2023", "measurements_2024", "measurements_other"]
    assert recorded["public.measurements"].rows == 900
    events = _fp(recorded["public.events_log"])
    assert events.ranges == () and events.rows == 400


def test_the_export_reads_no_table_twice(env: Env) -> None:
    # pg_dump's COPY reads all_types once; the proof no longer reads it again.
    assert env.reads["all_types_seq"] == 2000
    assert env.reads["rows"] >= 2000 and env.reads["blocks"] > 0
    assert env.reads["ratio_rows"] is not None and env.reads["ratio_rows"] < 1.5


def test_changed_value_and_moved_rows_name_their_key_ranges(env: Env) -> None:
    table = env.tables["public.all_types"]
    expected = _fp(env.manifest.tables["public.all_types"])
    bucket = next(b for b in expected.ranges if int(b.lo[0]) <= 778 <= int(b.hi[0]))
    gone = next(b for b in expected.ranges if int(b.lo[0]) <= 1500 <= int(b.hi[0]))
    with env.connect("dst") as conn:
        conn.execute("UPDATE public.all_types SET t = %s WHERE id = 778", (SECRET,))
        changed = compare_table(conn, table, expected)
        conn.execute("DELETE FROM public.all_types WHERE id = 1500")
        conn.execute(
            "INSERT INTO public.all_types (id, t) VALUES (5000, %s), (-3, %s)", (SECRET, SECRET)
        )
        moved = compare_table(conn, table, expected)
        conn.rollback()
    assert not changed.ok and len(changed.differing) == 1
    assert (
        f"id {bucket.lo[0]}..{bucket.hi[0]}: 125 rows expected, 125 found, contents differ"
        in changed.message
    )
    assert SECRET not in changed.message
    assert "2000 rows expected, 2001 found" in moved.message
    assert "id below 1" in moved.message and "id above 2000" in moved.message
    assert f"id {gone.lo[0]}..{gone.hi[0]}: 125 rows expected, 124 found" in moved.message


def test_composite_key_between_ranges_and_partitions(env: Env) -> None:
    weird = env.tables[f"{WEIRD_SCHEMA}.{WEIRD_TABLE}"]
    expected = _fp(env.manifest.tables[weird.qualified])
    first, second = expected.ranges[0], expected.ranges[1]
    assert first.hi[0] == second.lo[0]
    between = int(first.hi[1]) + 5
    measurements = env.tables["public.measurements"]
    with env.connect("dst") as conn:
        conn.execute(
            sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, 0)").format(
                sql.Identifier(WEIRD_SCHEMA, WEIRD_TABLE)
            ),
            (between, first.hi[0], SECRET),
        )
        result = compare_table(conn, weird, expected)
        conn.execute("UPDATE public.measurements SET v = -1 WHERE id = 450")
        m_result = compare_table(
            conn, measurements, _fp(env.manifest.tables["public.measurements"])
        )
        conn.rollback()
    assert result.differing == [RangeDiff(list(first.hi), list(second.lo), 0, 1, outside=True)]
    assert "(from, Order) between" in result.message and SECRET not in result.message
    (m_diff,) = m_result.differing
    assert m_diff.lo is not None and m_diff.hi is not None
    assert int(m_diff.lo[0]) <= 450 <= int(m_diff.hi[0])


def test_a_duplicate_in_a_table_without_key_and_a_dropped_column_fail(env: Env) -> None:
    events = env.tables["public.events_log"]
    todos = env.tables["public.todos"]
    with env.connect("dst") as conn:
        conn.execute(
            "DELETE FROM public.events_log WHERE ctid = (SELECT min(ctid) FROM public.events_log WHERE n = 3)"
        )
        lost = compare_table(conn, events, _fp(env.manifest.tables["public.events_log"]))
        conn.rollback()
        conn.execute("ALTER TABLE public.todos DROP COLUMN title CASCADE")
        dropped = compare_table(conn, todos, _fp(env.manifest.tables["public.todos"]))
        conn.rollback()
    assert not lost.ok and "400 rows expected, 399 found" in lost.message
    assert "cannot be narrowed" in lost.message
    assert not dropped.ok and "public.todos" in dropped.message and "title" in dropped.message


def test_ranges_are_exact_for_small_and_sampled_for_large_tables() -> None:
    from pytest_supabase_restore.proof.copyhash import Part

    part = Part("s", "t", ("id", "v"))
    lines = [f"{i}\tv{i}".encode() for i in range(100_000, 0, -1)]

    def source() -> Iterator[tuple[Part, list[bytes]]]:
        for start in range(0, len(lines), 7000):
            yield part, lines[start : start + 7000]

    fp = fingerprint_lines(source, ("id",), ("int",), encoding="utf-8")
    assert fp.rows == 100_000 and sum(b.rows for b in fp.ranges) == 100_000
    assert 8 <= len(fp.ranges) <= 16
    assert all(5_000 <= b.rows <= 8_000 for b in fp.ranges)
    assert fp.ranges[0].lo == ("1",) and fp.ranges[-1].hi == ("100000",)
    # A composite key takes the two-pass path: sampled bounds, then every line into its range.
    both = fingerprint_lines(source, ("v", "id"), ("text", "int"), encoding="utf-8")
    assert both.value == fp.value and len(both.ranges) > 8
    assert sum(b.rows for b in both.ranges) == 100_000
    # One text key: one pass, ranges from their first key to the largest key in them.
    text = fingerprint_lines(source, ("v",), ("text",), encoding="utf-8")
    assert text.value == fp.value
    assert sum(b.rows for b in text.ranges) == 100_000 and len(text.ranges) > 8
    bounds = [(b.lo[0].encode(), b.hi[0].encode()) for b in text.ranges]
    assert all(lo <= hi < nxt for (lo, hi), (nxt, _) in itertools.pairwise(bounds))
    shuffled = fingerprint_lines(
        lambda: iter([(part, sorted(lines))]), ("id",), ("int",), encoding="utf-8"
    )
    assert shuffled.value == fp.value


@pytest.mark.parametrize("value", ["plain", "tab\there", "back\\slash", "nl\nx", "\b\f\r\v", "ü"])
def test_copy_escapes_round_trip(value: str) -> None:
    assert copy_unescape(copy_escape(value)) == value
    assert copy_unescape("\\101\\x42") == "AB"


def test_gzip_lz4_zstd_and_plain_files_hash_alike(tmp_path: Path) -> None:
    import gzip
    import shutil

    from pytest_supabase_restore.proof.copyhash import file_lines

    body = b"".join(f"{i}\tx{i}\n".encode() for i in range(50_000)) + b"\\.\n\n\n"
    (tmp_path / "1.dat").write_bytes(body)
    (tmp_path / "2.dat.gz").write_bytes(gzip.compress(body))
    names = ["1.dat", "2.dat.gz"]
    for tool, suffix in (("lz4", ".lz4"), ("zstd", ".zst")):
        if shutil.which(tool):
            target = tmp_path / f"3.dat{suffix}"
            subprocess.run(
                [tool, "-q", "-c", str(tmp_path / "1.dat")], stdout=target.open("wb"), check=True
            )
            names.append(target.name)
    seen = [[line for batch in file_lines(tmp_path / n) for line in batch] for n in names]
    assert all(s == seen[0] for s in seen) and len(seen[0]) == 50_000


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (lambda t: t.update(hash="md5-row"), "hash"),
        (lambda t: t["copy"][0].update(columns="id"), "copy"),
        (lambda t: t.update(key_kinds=["float"]), "key_kinds"),
        (lambda t: t["copy_settings"].update(TimeZone=1), "copy_settings"),
    ],
)
def test_manifest_refuses_malformed_copy_fields(env: Env, edit: Any, where: str) -> None:
    data = copy.deepcopy(env.manifest.to_json())
    edit(data["tables"]["public.todos"])
    with pytest.raises(BackupError, match=re.escape(f"tables['public.todos'].{where}")):
        validate_manifest(data, Path("manifest.json"))
    validate_manifest(copy.deepcopy(env.manifest.to_json()), Path("manifest.json"))


def test_both_line_hashes_fingerprint_alike_and_a_missing_one_says_what_to_install() -> None:
    from pytest_supabase_restore.errors import DrillError
    from pytest_supabase_restore.proof.copyhash import HASHERS, XXH3_HASH, Part, hasher

    part = Part("s", "t", ("id", "v"))
    lines = [f"{i}\tv{i}".encode() for i in range(1, 5001)]
    results = {
        scheme: fingerprint_lines(
            lambda: iter([(part, lines)]), ("id",), ("int",), encoding="utf-8", scheme=scheme
        )
        for scheme in HASHERS
    }
    for fp in results.values():  # same rows and ranges whatever the line hash
        assert fp.rows == 5000 and [b.rows for b in fp.ranges] == [313] * 8 + [312] * 8
    if len(results) == 2:
        assert len({fp.value for fp in results.values()}) == 2
    with pytest.raises(DrillError, match="pip install xxhash"):
        hasher("copy-unknown")
    assert XXH3_HASH in {"copy-xxh3-64"}
