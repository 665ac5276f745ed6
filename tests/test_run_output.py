"""The run as people see it, against a real source cluster: one failure said once, the
settings header before the drill, and JUnit that tells the truth."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_supabase_restore.pg.cluster import Cluster

ERROR = 'password authentication failed for user "postgres"'


@pytest.fixture(scope="module")
def source() -> Iterator[Cluster]:
    with Cluster(name="run-output") as cluster:
        cluster.set_password("postgres", "the-right-one")  # the cluster is SCRAM-only
        yield cluster


def wrong_password_url(cluster: Cluster) -> str:
    return f"postgresql://postgres:not-the-password@127.0.0.1:{cluster.port}/postgres"


def test_a_wrong_password_is_one_error_and_one_fail_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, source: Cluster
) -> None:
    monkeypatch.setenv("SUPABASE_DB_URL", wrong_password_url(source))
    result = pytester.runpytest("--supabase-restore", "-q", "-p", "no:cacheprovider")
    out = result.stdout.str()
    assert out.count(ERROR) == 1, out
    fail_lines = [line for line in out.splitlines() if line.startswith("FAIL: ")]
    assert len(fail_lines) == 1 and ERROR in fail_lines[0], out
    assert "the drill failed in export" in fail_lines[0]
    # Every smoke test is skipped with a pointer, none errors with the error again.
    outcomes = result.parseoutcomes()
    assert outcomes.get("skipped", 0) > 10 and "errors" not in outcomes, outcomes
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "see the JSON summary" not in out and "not-the-password" not in out
    assert "smoke tests: not run, the drill failed (see the reason)" in out
    # The settings header comes first, also with -q, and is printed once.
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("supabase-restore: "))
    export = next(i for i, line in enumerate(lines) if "[supabase-restore] export ..." in line)
    assert header < export and out.count("supabase-restore source: ") == 1, out


def test_the_header_prints_once_without_q(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, source: Cluster, tmp_path: Path
) -> None:
    monkeypatch.setenv("SUPABASE_DB_URL", wrong_password_url(source))
    result = pytester.runpytest("--supabase-restore", "-p", "no:cacheprovider")
    out = result.stdout.str()
    assert out.count("supabase-restore: enabled=True (command line)") == 1, out
    assert out.index("supabase-restore: enabled=") < out.index("[supabase-restore] export")
    assert out.count(ERROR) == 1, out
