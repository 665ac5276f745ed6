"""The built-in smoke tests live in the plugin's own namespace: a project's own
``smoke_tests/`` package (what the docs invite users to write) runs beside them, and their
test ids do not depend on where the plugin is installed (pytester, child processes: the way
users run pytest, with the project directory first on ``sys.path``)."""

from __future__ import annotations

import json

import pytest
from test_plugin import _clean_env  # noqa: F401 (autouse: the environment is the user's)

from pytest_supabase_restore import CATEGORIES, QUICK_CATEGORIES

# Same package name and same module name as the built-in database_schema category.
OWN_CONFTEST = """
import pytest

@pytest.fixture
def expected_buckets():
    return {"avatars"}
"""
OWN_TESTS = """
import pytest

@pytest.mark.supabase_category("custom")
def test_the_projects_came_back(staging_db):
    assert staging_db.execute("SELECT count(*) FROM public.projects").fetchone()[0] > 0

@pytest.mark.supabase_category("custom")
def test_the_buckets_are_there(staging_db, expected_buckets):
    rows = staging_db.execute("SELECT id FROM storage.buckets").fetchall()
    assert expected_buckets <= {r[0] for r in rows}
"""


@pytest.fixture
def own_smoke_tests(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project with its own ``smoke_tests`` package, a database_schema module among them."""
    package = pytester.mkpydir("smoke_tests")
    (package / "conftest.py").write_text(OWN_CONFTEST)
    (package / "test_database_schema.py").write_text(OWN_TESTS)
    pytester.makeini("[pytest]\n")
    return pytester


def test_a_projects_own_smoke_tests_are_collected_beside_the_builtin_ones(
    own_smoke_tests: pytest.Pytester,
) -> None:
    """Collection only: the drill fails at once (the backup set is empty), and every test
    is still collected, under an id that names where it comes from."""
    (own_smoke_tests.path / "empty-set").mkdir()
    result = own_smoke_tests.runpytest_subprocess(
        "--supabase-restore",
        "--supabase-from-backup=empty-set",
        "--collect-only",
        "-q",
        "-p",
        "no:cacheprovider",
        "smoke_tests",
    )
    ids = [line for line in result.stdout.lines if "::" in line]
    assert [i for i in ids if i.startswith("smoke_tests/")] == [
        "smoke_tests/test_database_schema.py::test_the_projects_came_back",
        "smoke_tests/test_database_schema.py::test_the_buckets_are_there",
    ], result.stdout.str()
    builtin = [i for i in ids if not i.startswith("smoke_tests/")]
    modules = {i.split("::")[0] for i in builtin}
    assert modules == {f"pytest_supabase_restore/smoke_tests/test_{c}.py" for c in CATEGORIES}
    assert "ModuleNotFoundError" not in result.stdout.str() + result.stderr.str()


def test_a_projects_own_smoke_tests_run_beside_the_builtin_ones_and_the_drill_passes(
    own_smoke_tests: pytest.Pytester,
) -> None:
    """A real quick drill of the demo, under xdist: the built-in categories and the
    project's own tests of the same package and module name all run, and the verdict is
    PASS (before: ``FAIL: no smoke tests ran`` or a ``ModuleNotFoundError``)."""
    summary = own_smoke_tests.path / "summary.json"
    result = own_smoke_tests.runpytest_subprocess(
        "--supabase-restore",
        "--supabase-demo",
        "--supabase-quick",
        "--supabase-builtin-tests",
        f"--supabase-summary-json={summary}",
        "-rA",
        "-p",
        "no:cacheprovider",
        "-n",
        "2",
        "smoke_tests",
        timeout=600,
    )
    data = json.loads(summary.read_text())
    assert data["status"] == "PASS", data["reason"] + "\n" + result.stdout.str()[-3000:]
    assert result.ret == 0
    assert data["categories"]["custom"]["passed"] == 2
    for name in QUICK_CATEGORIES:
        assert data["categories"][name]["passed"] > 0, name
    passed = {
        line.split()[1].split("::")[0] for line in result.stdout.lines if line.startswith("PASSED ")
    }
    assert "smoke_tests/test_database_schema.py" in passed
    assert "pytest_supabase_restore/smoke_tests/test_database_schema.py" in passed
