"""``--supabase-self-test`` injects every fault or fails naming the one it could not: on the
demo project (a real cluster) whose largest public table is referenced by a foreign key,
the "deleted row" fault used to break the whole self-test ("could not make a scratch copy")
while the verdict still said PASS with zero faults injected."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pytest_supabase_restore import CATEGORIES
from pytest_supabase_restore import manifest as mf
from pytest_supabase_restore.config import Config
from pytest_supabase_restore.demo import DemoProject
from pytest_supabase_restore.export import ExportOptions, export
from pytest_supabase_restore.results import DrillState
from pytest_supabase_restore.selftest import run_self_test
from pytest_supabase_restore.verdict import CheckOutcome, build_verdict

REFERENCED = """
CREATE TABLE public.zz_big (id int PRIMARY KEY, pad text);
INSERT INTO public.zz_big SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
CREATE TABLE public.zz_ref (id int PRIMARY KEY, big int NOT NULL REFERENCES public.zz_big);
INSERT INTO public.zz_ref SELECT g, g FROM generate_series(1, 10) g;
"""
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoProject, Any]]:
    with DemoProject(scale=1) as demo:
        with psycopg.connect(demo.admin_url, autocommit=True) as admin:
            admin.execute(REFERENCED)
        set_dir = export(
            demo.db_url, tmp_path_factory.mktemp("sets"), s3=None, options=ExportOptions(jobs=2)
        )
        yield demo, mf.read_manifest(Path(set_dir))


def _verdict(state: DrillState, **settings: Any) -> Any:
    passing = [CheckOutcome(f"smoke/test_{c}.py::test_ok", c, "passed") for c in CATEGORIES]
    return build_verdict(passing, state, Config(enabled=True, **settings), NOW, env={})


@pytest.mark.timeout(300)
def test_a_row_other_rows_reference_is_deleted_and_caught(
    project: tuple[DemoProject, Any],
) -> None:
    demo, manifest = project
    results = run_self_test(demo.admin_url, manifest)
    deleted = next(r for r in results if r.fault.startswith("deleted row"))
    assert deleted.fault == "deleted row in public.zz_big", results
    assert deleted.injected and deleted.caught, deleted
    assert len(results) >= 5 and all(r.injected and r.caught for r in results), results
    state = DrillState(enabled=True, self_test=results)
    verdict = _verdict(state, self_test=True)
    assert verdict.status == "PASS", verdict.reasons
    with psycopg.connect(demo.admin_url) as conn:  # the fault went into the copy only
        assert conn.execute("SELECT count(*) FROM public.zz_big").fetchone() == (5000,)


@pytest.mark.timeout(300)
def test_a_fault_that_cannot_be_injected_fails_naming_it_and_the_others_still_run(
    project: tuple[DemoProject, Any],
) -> None:
    """The staging copy lost the rows the manifest counts: nothing to delete, so the fault
    is not injected (a check "catching" a fault never put in would prove nothing)."""
    demo, manifest = project
    with psycopg.connect(demo.admin_url, autocommit=True) as admin:
        admin.execute("CREATE TABLE public.zz_keep AS TABLE public.zz_big")
        admin.execute("TRUNCATE public.zz_big CASCADE")
    try:
        results = run_self_test(demo.admin_url, manifest)
    finally:
        with psycopg.connect(demo.admin_url, autocommit=True) as admin:
            admin.execute("INSERT INTO public.zz_big TABLE public.zz_keep")
            admin.execute("INSERT INTO public.zz_ref SELECT g, g FROM generate_series(1, 10) g")
            admin.execute("DROP TABLE public.zz_keep")
    deleted = results[0]
    assert deleted.fault == "deleted row in public.zz_big" and not deleted.injected
    assert not deleted.caught and "0 rows deleted" in deleted.evidence
    assert all(r.injected and r.caught for r in results[1:]) and len(results) >= 5, results
    verdict = _verdict(DrillState(enabled=True, self_test=results), self_test=True)
    assert verdict.status == "FAIL"
    assert "could not be injected: deleted row in public.zz_big" in verdict.reason


def test_no_fault_injected_never_passes() -> None:
    none_at_all = _verdict(DrillState(enabled=True, self_test=[]), self_test=True)
    assert none_at_all.status == "FAIL" and "no fault was injected" in none_at_all.reason
    not_run = _verdict(DrillState(enabled=True), self_test=True)
    assert not_run.status == "FAIL" and "no fault was injected" in not_run.reason
    assert _verdict(DrillState(enabled=True)).status == "PASS"  # not asked for: no reason


def test_the_verdict_block_counts_the_faults_injected_and_caught(
    pytester: pytest.Pytester,
) -> None:
    from test_reporting import STATE, run, setup_drill

    faults = [
        {"fault": "deleted row in public.t", "category": "data_integrity", "caught": False,
         "evidence": "could not be injected: InjectionFailed: 0 rows deleted", "injected": False},
        {"fault": "dropped policy public.t.p", "category": "database_schema", "caught": True,
         "evidence": "policy missing", "injected": True},
    ]  # fmt: skip
    summary = setup_drill(
        pytester, settings={"self_test": True}, state={**STATE, "self_test": faults}
    )
    result = run(pytester)
    out = result.stdout.str()
    assert "self-test: 1 of 2 fault(s) injected, 1 caught" in out, out[-2000:]
    assert "could not be injected: deleted row in public.t" in out
    assert result.ret != 0 and '"injected": false' in summary.read_text()
