"""Benchmark: the drill against the raw tools, side by side, on the same data, at growing sizes.

``python -m bench.run --scales 1,2,4 --base-scale 1000 --objects 3000 [--jobs N] [--json F]``

For each scale the demo project is started once (scale ``base * s``, ``objects * s``
Storage objects), then on that same data:

* the source is settled first: ``VACUUM (ANALYZE)`` once, and no autovacuum worker running
  before each measured step (:mod:`bench.settle`);
* baseline: ``pg_dump -Fd -j N`` (same compression and scope flags as the drill) into a
  temporary directory, a fresh cluster prepared with the platform SQL the drill's staging
  gets (pg_cron loaded as there), the project's roles (``pg_dumpall --roles-only`` applied
  with psql), ``pg_restore -j N``;
* ``rclone copy`` of every bucket from the same S3 endpoint into a directory, and from there
  into a fresh local S3 server (the backup and the restore of Storage), when rclone is
  installed; the baseline time is the database's plus rclone's;
* the drill: ``python -m pytest --supabase-restore -n auto`` (as the monthly workflow runs
  it; ``--drill-workers 0`` for no xdist) in a subprocess, from an empty directory, against
  the running demo as an external source (``SUPABASE_DB_URL``, ``SUPABASE_S3_*``);
* ``COPY (SELECT * FROM t) TO STDOUT`` of the tables the drill fingerprinted.

It prints every figure and ratio, and the growth factor from the smallest to the largest
scale. It asserts no timing (benchmarks are not tests), but it exits 1, saying so last, when
a drill was not a full PASS. See bench/README.md for measured results.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import psycopg
from psycopg import sql

from bench.memory import TreePeak
from bench.settle import autovacuum_idle, vacuum_all
from pytest_supabase_restore import source_reads
from pytest_supabase_restore.config import OPTIONS
from pytest_supabase_restore.demo import DemoProject, s3_client
from pytest_supabase_restore.export import compression_args
from pytest_supabase_restore.pg import cron
from pytest_supabase_restore.pg.binaries import PgBinaries, find_client_tools, find_server_tools
from pytest_supabase_restore.pg.cluster import Cluster
from pytest_supabase_restore.proof.scope import EXCLUDED_TABLE_DATA, SCOPE_EXCLUDED_SCHEMAS
from pytest_supabase_restore.staging.platform import for_backup_set
from pytest_supabase_restore.storage.endpoint import S3Endpoint
from pytest_supabase_restore.storage.server import LocalS3Server

MB = 1_000_000
S3_CONCURRENCY = 8  # the drill's default --supabase-s3-concurrency; rclone gets the same
COMPRESSION = next(o.default for o in OPTIONS if o.name == "compression")

# The pytest subprocess runs through this wrapper: pytest.main() in-process, then the
# wrapper's own peak RSS (getrusage(RUSAGE_SELF).ru_maxrss, KiB on Linux) is written to the
# file named by argv[1]. RUSAGE_CHILDREN in this process would instead give the maximum
# over *all* children ever reaped (pg_dump, rclone, moto, ...), not the pytest process.
_RSS_WRAPPER = """\
import resource, sys
import pytest
out = sys.argv[1]
sys.argv = ["pytest"] + sys.argv[2:]
try:
    code = pytest.main(sys.argv[1:])
finally:
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with open(out, "w") as fh:
        fh.write(f"{self_kib} {kids_kib}\\n")
sys.exit(int(code))
"""

LABELS = (
    "drill time / baseline time",
    "storage export / rclone time",
    "peak RSS of the pytest process",
    "peak RSS of the largest process",
    "fingerprint throughput",
    "COPY TO throughput",
    "source read amplification (rows / blocks)",
    "growth factor",
)
"""Figure labels the summary always prints (the suite checks them)."""


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- processes that always stop ---------------------------------------------------------------
def _run(
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    stdout: Path | None = None,
    on_start: Callable[[int], None] | None = None,
) -> tuple[int, float, str]:
    """Run ``args``; (exit code, wall seconds, stderr). Ctrl-C stops the child first.
    ``on_start`` is called with the child's pid once it runs."""
    t0 = time.monotonic()
    out = open(stdout, "w") if stdout is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        proc = subprocess.Popen(
            list(args),
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            # Own process group: Ctrl-C reaches only us, and we stop the child in order.
            start_new_session=True,
        )
    finally:
        if stdout is not None and not isinstance(out, int):
            out.close()
    try:
        if on_start is not None:
            on_start(proc.pid)
        _, err = proc.communicate()
    except BaseException:
        _stop(proc)
        raise
    return proc.returncode, time.monotonic() - t0, err or ""


def _stop(proc: subprocess.Popen[Any]) -> None:
    for sig, wait in ((signal.SIGINT, 60.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        if proc.poll() is not None:
            return
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)


def _pg_env(dsn_password: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if dsn_password:
        env["PGPASSWORD"] = dsn_password
    return env


# -- baseline: pg_dump + pg_restore -----------------------------------------------------------
def _server_major(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    return int(row[0]) // 10000


def baseline_pg(demo: DemoProject, tools: PgBinaries, jobs: int, work: Path) -> dict[str, Any]:
    """pg_dump -Fd -j N of the demo, then pg_restore -j N into a fresh prepared cluster."""
    dump_dir = work / "baseline-dump"
    args = [
        tools.path("pg_dump"),
        "--format=directory",
        f"--jobs={jobs}",
        f"--file={dump_dir}",
        "--no-password",
        "--quote-all-identifiers",
        *compression_args(tools, COMPRESSION),
        *(f"--exclude-schema={s}" for s in SCOPE_EXCLUDED_SCHEMAS),
        *(
            f'--exclude-table-data="{t.partition(".")[0]}"."{t.partition(".")[2]}"'
            for t in EXCLUDED_TABLE_DATA
        ),
        f"--dbname={demo.db_url}",
    ]
    before = source_reads.counters(demo.db_url)
    code, dump_s, err = _run(args, env=_pg_env())
    if code != 0:
        raise RuntimeError(f"baseline pg_dump failed (exit {code}): {err[-2000:]}")
    after = source_reads.settled(demo.db_url)
    reads = (
        {"rows": after.rows - before.rows, "blocks": after.blocks - before.blocks}
        if before is not None and after is not None
        else None
    )
    dump_bytes = sum(p.stat().st_size for p in dump_dir.rglob("*") if p.is_file())
    # The project's own roles, as a manual restore takes them (Supabase's restore guide:
    # pg_dumpall --roles-only, applied with psql before the data; the platform's roles
    # already exist there, and their CREATE ROLE errors are ignored as psql does by default).
    roles_file = work / "baseline-roles.sql"
    code, roles_dump_s, err = _run(
        [
            tools.path("pg_dumpall"),
            "--roles-only",
            "--no-role-passwords",
            "--quote-all-identifiers",
            f"--dbname={demo.db_url}",
            f"--file={roles_file}",
        ],
        env=_pg_env(),
    )
    if code != 0:
        raise RuntimeError(f"baseline pg_dumpall --roles-only failed (exit {code}): {err[-2000:]}")

    t0 = time.monotonic()
    # The drill's ephemeral staging: the source's major or above, pg_cron loaded where the
    # installation has it (a restore of a project with pg_cron needs it).
    binaries = find_server_tools(_server_major(demo.admin_url))
    cluster = Cluster(
        binaries,
        superuser="supabase_admin",
        name="bench-baseline",
        settings=cron.settings(binaries),
    )
    try:
        cluster.start()
        # What a Supabase project already has before anything is restored into it: the
        # platform's roles, schemas and functions, the SQL the drill's staging gets too.
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute(for_backup_set())
        start_s = time.monotonic() - t0
        code, roles_apply_s, err = _run(
            [
                tools.path("psql"),
                "--no-psqlrc",
                "-q",
                f"--dbname={cluster.dsn()}",
                "-f",
                str(roles_file),
            ],
            env=_pg_env(),
        )
        role_errors = err.count("ERROR:")
        args = [
            tools.path("pg_restore"),
            f"--jobs={jobs}",
            "--no-password",
            f"--dbname={cluster.dsn()}",
            str(dump_dir),
        ]
        code, restore_s, err = _run(args, env=_pg_env())
        errors = err.count("pg_restore: error:")
        first_error = next((line for line in err.splitlines() if "pg_restore: error:" in line), "")
    finally:
        cluster.stop()
        shutil.rmtree(dump_dir, ignore_errors=True)
        roles_file.unlink(missing_ok=True)
    roles_s = roles_dump_s + roles_apply_s
    return {
        "pg_dump_reads": reads,
        "pg_dump_s": dump_s,
        "cluster_start_s": start_s,
        "pg_restore_s": restore_s,
        "pg_restore_exit": code,
        "pg_restore_errors": errors,
        "pg_restore_first_error": first_error[:200],
        "dump_bytes": dump_bytes,
        "roles_s": roles_s,
        "roles_errors": role_errors,
        "total_s": dump_s + roles_s + start_s + restore_s,
    }


# -- baseline: rclone -------------------------------------------------------------------------
def _rclone_env(name: str, s3: S3Endpoint) -> dict[str, str]:
    prefix = f"RCLONE_CONFIG_{name}_"
    return {
        prefix + "TYPE": "s3",
        prefix + "PROVIDER": "Other",
        prefix + "ENDPOINT": s3.url,
        prefix + "REGION": s3.region,
        prefix + "ACCESS_KEY_ID": s3.access_key_id,
        prefix + "SECRET_ACCESS_KEY": s3.secret_access_key,
        prefix + "FORCE_PATH_STYLE": "true",
    }


def baseline_rclone(s3: S3Endpoint, buckets: Sequence[str], work: Path) -> dict[str, Any] | None:
    """``rclone copy`` of every bucket into a directory (the backup), then from there into a
    fresh local S3 server (the restore), one bucket after the other; None when rclone is
    missing."""
    rclone = shutil.which("rclone")
    if rclone is None:
        return None
    # Configured through the environment only, so no secret lands on argv or on disk.
    # AWS_CA_BUNDLE makes rclone's S3 backend fail to build its HTTP client; the endpoint
    # is plain HTTP on loopback, so no CA bundle is needed.
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    env.update({**_rclone_env("BENCHSRC", s3), "RCLONE_CONFIG": "/dev/null"})
    dest = work / "rclone"
    seconds = {"down": 0.0, "up": 0.0}

    def copy(direction: str, src: str, dst: str) -> None:
        code, took, err = _run(
            [
                rclone,
                "copy",
                src,
                dst,
                f"--transfers={S3_CONCURRENCY}",
                f"--checkers={S3_CONCURRENCY}",
            ],
            env=env,
        )
        seconds[direction] += took
        if code != 0:
            raise RuntimeError(f"rclone copy {src} {dst} failed (exit {code}): {err[-2000:]}")

    try:
        for bucket in buckets:
            copy("down", f"benchsrc:{bucket}", str(dest / bucket))
        copied = sum(1 for p in dest.rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
        with LocalS3Server(name="bench-rclone-s3") as target:
            env.update(_rclone_env("BENCHDST", target.endpoint))
            for bucket in buckets:
                copy("up", str(dest / bucket), f"benchdst:{bucket}")
    finally:
        shutil.rmtree(dest, ignore_errors=True)
    return {
        "seconds": seconds["down"] + seconds["up"],
        "down_s": seconds["down"],
        "up_s": seconds["up"],
        "objects": copied,
        "bytes": size,
    }


# -- the drill --------------------------------------------------------------------------------
def run_drill(demo: DemoProject, jobs: int, work: Path, workers: str = "auto") -> dict[str, Any]:
    """The full drill in a pytest subprocess, the demo as an external source, with
    ``-n workers`` (none for ``"0"``)."""
    empty = work / "drill-cwd"
    empty.mkdir()
    backups = work / "drill-backups"
    summary = work / "summary.json"
    rss_file = work / "rss.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "STAGING_"))}
    env.update(
        {
            "SUPABASE_DB_URL": demo.db_url,
            "SUPABASE_S3_ENDPOINT": demo.s3.url,
            "SUPABASE_S3_REGION": demo.s3.region,
            "SUPABASE_S3_ACCESS_KEY_ID": demo.s3.access_key_id,
            "SUPABASE_S3_SECRET_ACCESS_KEY": demo.s3.secret_access_key,
            "SUPABASE_RESTORE_JOBS": str(jobs),
        }
    )
    args = [
        sys.executable,
        "-c",
        _RSS_WRAPPER,
        str(rss_file),
        "--supabase-restore",
        "--supabase-staging=ephemeral",
        f"--supabase-summary-json={summary}",
        f"--supabase-backup-dir={backups}",
        "-p",
        "no:cacheprovider",
        "-q",
        # A free profile: pytest's own list of the slowest test phases.
        "--durations=8",
        *(["-n", workers] if workers != "0" else []),
        # pytest's temporary directories (xdist makes one per worker) go with the work dir.
        f"--basetemp={work / 'drill-basetemp'}",
    ]
    log = work / "drill.log"
    tree: list[TreePeak] = []
    try:
        code, seconds, err = _run(
            args,
            env=env,
            cwd=str(empty),
            stdout=log,
            on_start=lambda pid: tree.append(TreePeak(pid).start()),
        )
    finally:
        for sampler in tree:
            sampler.stop()
    result: dict[str, Any] = {"exit": code, "wall_s": seconds, "slowest": _slowest(log)}
    result.update(_tree_peaks(tree[0] if tree else None))
    if summary.is_file():
        data = json.loads(summary.read_text())
        result.update(
            status=data.get("status"),
            reason=data.get("reason"),
            phases=data.get("phases", {}),
            rto_s=data.get("rto_seconds"),
            tests=data.get("tests", {}),
            source_reads=data.get("source_reads"),
        )
    else:
        result.update(status="NO SUMMARY", reason=err.strip().splitlines()[-1:] or "")
    if rss_file.is_file():
        self_kib, kids_kib = (int(v) for v in rss_file.read_text().split())
        result["peak_rss_mb"] = self_kib * 1024 / MB
        result["children_peak_rss_mb"] = kids_kib * 1024 / MB
    manifests = sorted(backups.glob("*/manifest.json"))
    if manifests:
        manifest = json.loads(manifests[-1].read_text())
        result["timings"] = manifest.get("timings", {})
        result["tables"] = [
            (t["schema"], t["name"], int(t.get("bytes", 0)))
            for t in manifest.get("tables", {}).values()
        ]
        storage = manifest.get("storage", {})
        result["objects"] = len(storage.get("objects", []))
    shutil.rmtree(backups, ignore_errors=True)
    return result


def _tree_peaks(tree: TreePeak | None) -> dict[str, Any]:
    """The largest process of the drill's tree and the peak of each kind of process."""
    largest = tree.largest() if tree is not None else None
    if tree is None or largest is None:
        return {}
    return {
        "tree_peak_rss_mb": largest.peak / MB,
        "tree_peak_process": largest.label,
        "tree_peaks_mb": tree.by_label(),
    }


def _slowest(log: Path) -> list[str]:
    """The lines of pytest's ``--durations`` section (test ids and seconds only)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    start = next((i for i, line in enumerate(lines) if "slowest" in line and "=" in line), None)
    if start is None:
        return []
    picked: list[str] = []
    for line in lines[start + 1 :]:
        if not line.strip() or line.startswith("="):
            break
        if re.match(r"\d+(\.\d+)?s\s+(setup|call|teardown)\s", line.strip()):
            picked.append(line.strip())
    return picked


# -- COPY TO throughput -----------------------------------------------------------------------
def copy_throughput(dsn: str, tables: Sequence[tuple[str, str, int]], jobs: int) -> dict[str, Any]:
    """COPY (SELECT * FROM t) TO STDOUT of each table, ``jobs`` at a time; bytes discarded.

    The same worker count as the drill's fingerprints, largest tables first (as it does).
    """
    queue: Queue[tuple[str, str, int]] = Queue()
    for item in sorted(tables, key=lambda t: t[2], reverse=True):
        queue.put(item)
    streamed = [0]
    lock = threading.Lock()

    def worker() -> None:
        with psycopg.connect(dsn) as conn:
            while True:
                try:
                    schema, name, _ = queue.get_nowait()
                except Empty:
                    return
                query = sql.SQL("COPY (SELECT * FROM {}.{}) TO STDOUT").format(
                    sql.Identifier(schema), sql.Identifier(name)
                )
                n = 0
                with conn.cursor() as cur, cur.copy(query) as copy:
                    for chunk in copy:
                        n += len(chunk)
                conn.rollback()
                with lock:
                    streamed[0] += n

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for f in [pool.submit(worker) for _ in range(max(1, jobs))]:
            f.result()
    return {"seconds": time.monotonic() - t0, "copy_bytes": streamed[0]}


# -- one scale --------------------------------------------------------------------------------
def bench_scale(scale: int, objects: int, jobs: int, workers: str = "auto") -> dict[str, Any]:
    """Every measurement at one scale, on one demo project that is always stopped."""
    result: dict[str, Any] = {"scale": scale, "objects_requested": objects, "workers": workers}
    work = Path(tempfile.mkdtemp(prefix="supabase-bench-"))
    demo = DemoProject(scale=scale, objects=objects)
    try:
        _log(f"scale {scale}: starting the demo project ({objects} objects)")
        demo.start()
        result["demo_start_s"] = demo.startup_seconds
        result["rows"] = sum(demo.counts.values())
        result["objects"] = sum(demo.objects_per_bucket.values())
        with psycopg.connect(demo.admin_url) as conn:
            row = conn.execute("SELECT pg_database_size('postgres')").fetchone()
        result["db_bytes"] = int(row[0]) if row else 0
        _log(
            f"scale {scale}: demo ready in {demo.startup_seconds or 0:.0f}s, "
            f"{result['db_bytes'] / MB:.0f} MB database, {result['rows']} rows"
        )
        tools = find_client_tools(_server_major(demo.admin_url))
        result["vacuum_s"] = vacuum_all(demo.admin_url)
        _log(f"scale {scale}: source settled: VACUUM (ANALYZE) in {result['vacuum_s']:.0f}s")

        result["autovacuum_wait_s"] = {"baseline": autovacuum_idle(demo.admin_url)}
        _log(f"scale {scale}: baseline pg_dump + pg_restore (-j {jobs})")
        result["baseline"] = baseline_pg(demo, tools, jobs, work)

        buckets = [b["Name"] for b in s3_client(demo.s3).list_buckets().get("Buckets", [])]
        _log(f"scale {scale}: rclone copy of {len(buckets)} buckets")
        result["rclone"] = baseline_rclone(demo.s3, buckets, work)
        if result["rclone"] is None:
            _log("rclone not installed")

        result["autovacuum_wait_s"]["drill"] = autovacuum_idle(demo.admin_url)
        _log(f"scale {scale}: the drill (pytest --supabase-restore -n {workers})")
        before = source_reads.counters(demo.db_url)
        result["drill"] = run_drill(demo, jobs, work, workers)
        after = source_reads.settled(demo.db_url)
        if before is not None and after is not None:  # the drill reads the source only to export
            result["drill"]["source_reads_whole_drill"] = {
                "rows": after.rows - before.rows,
                "blocks": after.blocks - before.blocks,
            }
        _log(f"scale {scale}: drill {result['drill'].get('status')}")

        tables = result["drill"].pop("tables", [])
        if tables:
            _log(f"scale {scale}: COPY TO of {len(tables)} tables")
            result["copy"] = copy_throughput(demo.db_url, tables, jobs)
            result["copy"]["table_bytes"] = sum(t[2] for t in tables)
    finally:
        demo.stop()
        shutil.rmtree(work, ignore_errors=True)
    return result


# -- report -----------------------------------------------------------------------------------
def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "n/a"


def _secs(v: float | None) -> str:
    return f"{v:.1f}s" if v is not None else "n/a"


def figures(r: dict[str, Any]) -> dict[str, Any]:
    """The derived figures of one scale (None where not measured)."""
    drill = r.get("drill", {})
    timings = drill.get("timings", {})
    base = r.get("baseline", {})
    rclone = r.get("rclone")
    copy = r.get("copy", {})
    table_mb = copy.get("table_bytes", 0) / MB
    fp_s = timings.get("fingerprint")
    return {
        "drill_s": drill.get("wall_s"),
        "baseline_s": base["total_s"] + rclone["seconds"]
        if rclone and base.get("total_s") is not None
        else base.get("total_s"),
        "baseline_db_s": base.get("total_s"),
        "storage_s": timings.get("storage_export"),
        "rclone_s": rclone["down_s"] if rclone else None,
        "peak_rss_mb": drill.get("peak_rss_mb"),
        "tree_peak_rss_mb": drill.get("tree_peak_rss_mb"),
        "tree_peak_process": drill.get("tree_peak_process"),
        "fingerprint_mb_s": table_mb / fp_s if fp_s and table_mb else None,
        "copy_mb_s": table_mb / copy["seconds"] if copy.get("seconds") and table_mb else None,
        "read_ratio": _read_ratio(
            drill.get("source_reads") or drill.get("source_reads_whole_drill"),
            base.get("pg_dump_reads"),
        ),
        "copy_stream_mb_s": copy["copy_bytes"] / MB / copy["seconds"]
        if copy.get("seconds")
        else None,
    }


def _read_ratio(drill: dict[str, Any] | None, bare: dict[str, Any] | None) -> str:
    """What the drill's export read from the source over what the bare pg_dump read."""
    if not drill or not bare:
        return "n/a"
    return f"{_ratio(drill.get('rows'), bare.get('rows'))} / {_ratio(drill.get('blocks'), bare.get('blocks'))}"


def _report_scale(r: dict[str, Any], p: Callable[..., None]) -> None:
    """The details of one scale."""
    drill, base = r.get("drill", {}), r.get("baseline", {})
    p()
    p(
        f"== scale {r['scale']}: {r.get('db_bytes', 0) / MB:.0f} MB database, "
        f"{r.get('rows', 0)} rows, {r.get('objects', 0)} Storage objects"
    )
    p(
        f"  baseline: pg_dump {_secs(base.get('pg_dump_s'))} "
        f"({base.get('dump_bytes', 0) / MB:.0f} MB), roles {_secs(base.get('roles_s'))} "
        f"({base.get('roles_errors')} errors on existing roles), cluster start "
        f"{_secs(base.get('cluster_start_s'))}, pg_restore {_secs(base.get('pg_restore_s'))} "
        f"(exit {base.get('pg_restore_exit')}, {base.get('pg_restore_errors')} errors); "
        f"total {_secs(base.get('total_s'))}"
    )
    if base.get("pg_restore_first_error"):
        p(f"  baseline pg_restore first error: {base['pg_restore_first_error']}")
    rclone = r.get("rclone")
    p(
        f"  rclone copy: {_secs(rclone['down_s'])} down, {_secs(rclone['up_s'])} up, for "
        f"{rclone['objects']} objects"
        if rclone
        else "  rclone copy: rclone not installed (the baseline is the database's alone)"
    )
    p(
        f"  drill: {drill.get('status')} (exit {drill.get('exit')}) in "
        f"{_secs(drill.get('wall_s'))}, RTO {_secs(drill.get('rto_s'))}; "
        f"tests {drill.get('tests')}"
    )
    if drill.get("status") != "PASS":
        p(f"  drill verdict reason: {str(drill.get('reason'))[:300]}")
    phases = drill.get("phases", {})
    if phases:
        p("  drill phases: " + ", ".join(f"{k} {v:.1f}s" for k, v in phases.items()))
    reads, bare = drill.get("source_reads"), base.get("pg_dump_reads")
    whole = drill.get("source_reads_whole_drill")
    if reads or bare or whole:
        p(
            f"  source reads: drill export {reads and reads.get('rows')} rows, "
            f"{reads and reads.get('blocks')} blocks (whole drill {whole}); bare pg_dump "
            f"{bare and bare.get('rows')} rows, {bare and bare.get('blocks')} blocks"
        )
    timings = drill.get("timings", {})
    if timings:
        p("  export timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    for line in drill.get("slowest", []):
        p(f"  slowest: {line}")
    p(
        f"  children peak RSS (largest single child of pytest): "
        f"{drill.get('children_peak_rss_mb', 0):.0f} MB"
    )
    peaks = drill.get("tree_peaks_mb", {})
    if peaks:
        p(
            "  peak RSS per kind of process (PostgreSQL servers without shared memory): "
            + ", ".join(f"{k} {v:.0f} MB" for k, v in list(peaks.items())[:8])
        )
    p(
        f"  copy: {_secs(r.get('copy', {}).get('seconds'))}, "
        f"{r.get('copy', {}).get('copy_bytes', 0) / MB:.0f} MB of COPY text streamed, "
        f"{r.get('copy', {}).get('table_bytes', 0) / MB:.0f} MB of table data "
        f"(pg_total_relation_size, as the manifest counts it)"
    )


def report(results: Sequence[dict[str, Any]], out: Any = sys.stdout) -> None:
    """Print per-scale details, the ratio table and the growth factor."""

    def p(line: str = "") -> None:
        print(line, file=out)

    for r in results:
        _report_scale(r, p)
    p()
    p("== figures")
    header = f"{'figure':<36}" + "".join(f"{'scale ' + str(r['scale']):>16}" for r in results)
    p(header)
    rows: list[tuple[str, list[str]]] = []
    fs = [figures(r) for r in results]
    rows.append(("drill time", [_secs(f["drill_s"]) for f in fs]))
    rows.append(("baseline time (database + rclone)", [_secs(f["baseline_s"]) for f in fs]))
    rows.append((LABELS[0], [_ratio(f["drill_s"], f["baseline_s"]) for f in fs]))
    rows.append(("  baseline, database only", [_secs(f["baseline_db_s"]) for f in fs]))
    rows.append(
        ("  drill / database-only baseline", [_ratio(f["drill_s"], f["baseline_db_s"]) for f in fs])
    )
    rows.append(
        (
            LABELS[1],
            [
                _ratio(f["storage_s"], f["rclone_s"]) if f["rclone_s"] else "rclone not installed"
                for f in fs
            ],
        )
    )
    rows.append(
        (
            LABELS[2],
            [f"{f['peak_rss_mb']:.0f} MB" if f["peak_rss_mb"] else "n/a" for f in fs],
        )
    )
    rows.append(
        (
            LABELS[3],
            [f"{f['tree_peak_rss_mb']:.0f} MB" if f["tree_peak_rss_mb"] else "n/a" for f in fs],
        )
    )
    rows.append(("  (that process)", [str(f["tree_peak_process"] or "n/a") for f in fs]))
    rows.append(
        (
            LABELS[4],
            [f"{f['fingerprint_mb_s']:.1f} MB/s" if f["fingerprint_mb_s"] else "n/a" for f in fs],
        )
    )
    rows.append(
        (LABELS[5], [f"{f['copy_mb_s']:.1f} MB/s" if f["copy_mb_s"] else "n/a" for f in fs])
    )
    rows.append((LABELS[6], [f["read_ratio"] for f in fs]))
    for label, cells in rows:
        p(f"{label:<36}" + "".join(f"{c:>16}" for c in cells))
    first, last = fs[0], fs[-1]
    size = (results[-1]["scale"] / results[0]["scale"]) if results else 1
    p(
        f"{LABELS[7]} (scale {results[0]['scale']} -> {results[-1]['scale']}, "
        f"{size:.0f}x data): drill {_ratio(last['drill_s'], first['drill_s'])}, "
        f"baseline {_ratio(last['baseline_s'], first['baseline_s'])}, "
        f"peak RSS {_ratio(last['peak_rss_mb'], first['peak_rss_mb'])}, "
        f"largest process {_ratio(last['tree_peak_rss_mb'], first['tree_peak_rss_mb'])}"
    )


# -- entry point ------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when every scale was measured (whatever the drill's verdict)."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--scales", default="1,2,4", help="multipliers, comma separated")
    parser.add_argument("--base-scale", type=int, default=1000, help="demo scale at 1x")
    parser.add_argument("--objects", type=int, default=3000, help="Storage objects at 1x")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--drill-workers",
        default="auto",
        help="the drill's pytest -n (auto, as the monthly workflow runs it; 0: no xdist)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write raw results here")
    opts = parser.parse_args(argv)
    scales = [int(s) for s in opts.scales.split(",") if s.strip()]
    results: list[dict[str, Any]] = []
    try:
        for s in scales:
            results.append(
                bench_scale(opts.base_scale * s, opts.objects * s, opts.jobs, opts.drill_workers)
            )
    except KeyboardInterrupt:
        _log("interrupted; everything started was stopped")
        return 130
    report(results)
    if opts.json is not None:
        opts.json.write_text(json.dumps(results, indent=2, default=str))
    failed = [r for r in results if r.get("drill", {}).get("status") != "PASS"]
    for r in failed:
        drill = r.get("drill", {})
        print(
            f"BENCHMARK FAILED: the drill at scale {r['scale']} was not a full PASS "
            f"(status {drill.get('status')}, exit {drill.get('exit')}): its figures measure "
            "a drill that did not prove the restore",
            file=sys.stderr,
        )
    return 1 if failed else 0


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    # A SIGTERM (CI cancel) unwinds like Ctrl-C, so the finally blocks stop what we started.
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    with _sigterm_as_interrupt():
        sys.exit(main())
