"""The quick check: ``-m supabase_quick`` and ``--supabase-quick`` run only the cheap
categories, and the verdict says that such a run is not a full proof (pytester).

Selection is checked by collecting (no drill needed without ``--supabase-restore``); the
way the selection reaches the verdict, also from xdist workers, by a dry run against a
source that does not answer (the drill fails at once, the verdict is still built); and one
real quick drill on the demo project ends in a quick PASS.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from test_plugin import SMOKE, _clean_env  # noqa: F401 (_clean_env: autouse, env is the user's)

from pytest_supabase_restore import CATEGORIES, QUICK_CATEGORIES
from pytest_supabase_restore.builtin_tests import builtin_dir
from pytest_supabase_restore.config import Config
from pytest_supabase_restore.notify.html import summary_html
from pytest_supabase_restore.notify.job_summary import markdown
from pytest_supabase_restore.notify.slack import fallback_text, slack_payload
from pytest_supabase_restore.redact import Redactor
from pytest_supabase_restore.results import DrillState
from pytest_supabase_restore.verdict import CheckOutcome, build_verdict

EXPENSIVE = [c for c in CATEGORIES if c not in QUICK_CATEGORIES]
SMOKE_DIR = str(builtin_dir())
NOT_SELECTED = [f"{c}: not selected in this run (quick check)" for c in EXPENSIVE]

ONE_PER_CATEGORY = (
    f"""
import pytest


@pytest.mark.parametrize(
    "cat", [pytest.param(c, marks=pytest.mark.supabase_category(c)) for c in {list(CATEGORIES)!r}]
)
def test_cat(cat):
    pass


@pytest.mark.supabase_category("custom")
def test_custom():
    pass
"""
    + SMOKE  # a storage test, a test that uses a drill fixture (custom), a plain test
)


def collected(result: pytest.RunResult) -> list[str]:
    """The test ids ``--collect-only -q`` printed."""
    return [line for line in result.stdout.lines if "::" in line]


def collect_builtin(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Collect the built-in smoke tests (each once, skipped: no drill), with this test's ini
    file (else pytest would take the repository's, next to ``smoke_tests/``)."""
    ini = pytester.path / "tox.ini"
    if not ini.exists():
        pytester.makeini("[pytest]\n")
    return pytester.runpytest("-c", str(ini), "--collect-only", "-q", *args, SMOKE_DIR)


def categories_of(ids: list[str]) -> set[str]:
    """The built-in categories of smoke test ids (one module per category)."""
    return {Path(i.split("::")[0]).stem.removeprefix("test_") for i in ids}


def test_the_marker_is_on_exactly_the_cheap_categories(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_drill=ONE_PER_CATEGORY)
    quick = pytester.runpytest("--collect-only", "-q", "--strict-markers", "-m", "supabase_quick")
    assert collected(quick) == [f"test_drill.py::test_cat[{c}]" for c in QUICK_CATEGORIES]
    rest = pytester.runpytest("--collect-only", "-q", "-m", "not supabase_quick")
    assert collected(rest) == [
        *(f"test_drill.py::test_cat[{c}]" for c in EXPENSIVE),
        "test_drill.py::test_custom",
        "test_drill.py::test_marked",  # storage
        "test_drill.py::test_uses_fixture",
        "test_drill.py::test_plain",
    ]
    markers = pytester.runpytest("--markers")
    markers.stdout.fnmatch_lines(
        [f"@pytest.mark.supabase_quick: *({', '.join(QUICK_CATEGORIES)})*"]
    )


def test_the_marker_on_the_builtin_smoke_tests(pytester: pytest.Pytester) -> None:
    everything = collected(collect_builtin(pytester))
    quick = collected(collect_builtin(pytester, "-m", "supabase_quick"))
    assert categories_of(everything) == set(CATEGORIES)
    assert categories_of(quick) == set(QUICK_CATEGORIES)
    assert quick == [i for i in everything if categories_of([i]) <= set(QUICK_CATEGORIES)]


@pytest.mark.parametrize(
    ("args", "env", "ini"),
    [
        (["--supabase-quick"], {}, ""),
        ([], {"SUPABASE_RESTORE_QUICK": "1"}, ""),
        ([], {}, "supabase_quick = true"),
    ],
    ids=["cli", "env", "ini"],
)
def test_the_option_selects_what_the_marker_selects(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    ini: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    pytester.makeini(f"[pytest]\n{ini}\n")
    by_marker = collected(collect_builtin(pytester, "--no-supabase-quick", "-m", "supabase_quick"))
    result = collect_builtin(pytester, *args)
    assert collected(result) == by_marker
    everything = collected(collect_builtin(pytester, "--no-supabase-quick"))
    result.stdout.fnmatch_lines([f"*{len(everything) - len(by_marker)} deselected*"])


def test_the_option_keeps_custom_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_drill=ONE_PER_CATEGORY)
    result = pytester.runpytest("--collect-only", "-q", "--supabase-quick")
    assert collected(result) == [
        *(f"test_drill.py::test_cat[{c}]" for c in QUICK_CATEGORIES),
        "test_drill.py::test_custom",
        "test_drill.py::test_uses_fixture",
        "test_drill.py::test_plain",
    ]
    result.stdout.fnmatch_lines([f"*{len(EXPENSIVE) + 1} deselected*"])  # + test_marked


def test_no_quick_on_the_command_line_overrides_the_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPABASE_RESTORE_QUICK", "yes")
    pytester.makepyfile(test_drill=ONE_PER_CATEGORY)
    result = pytester.runpytest("--collect-only", "-q", "--no-supabase-quick")
    assert len(collected(result)) == len(CATEGORIES) + 4
    assert "deselected" not in result.stdout.str()


def test_every_output_shows_the_scope() -> None:
    outcomes = [CheckOutcome(f"s/test_{c}.py::test_ok", c, "passed") for c in QUICK_CATEGORIES]
    state = DrillState(enabled=True, mode="export", rto_seconds=3.0)
    now = datetime(2025, 3, 1, tzinfo=timezone.utc)
    verdict = build_verdict(
        outcomes, state, Config(enabled=True), now, env={}, not_selected=EXPENSIVE
    )
    scope = (
        "quick check (5 of 8 categories; not selected: data_integrity, storage, data_consistency)"
    )
    text = markdown(verdict)
    assert f"- **Scope**: {scope}" in text
    assert "| storage | — - | 0 | 0 | 0 | 0 |" in text  # not selected: not ⚠️ NOT RUN
    payload = json.dumps(slack_payload(verdict, Redactor([])))
    assert f"*Scope*\\n{scope}" in payload
    assert "categories passed, quick check, RTO" in fallback_text(verdict)
    assert f"<b>Scope:</b> {scope}" in summary_html(verdict)

    full = build_verdict(
        [CheckOutcome(f"s/test_{c}.py::test_ok", c, "passed") for c in CATEGORIES],
        state,
        Config(enabled=True),
        now,
        env={},
    )
    assert "- **Scope**: full (all 8 categories)" in markdown(full)
    assert "quick" not in fallback_text(full)


def dry_run(pytester: pytest.Pytester, *args: str) -> dict[str, Any]:
    """A dry run whose source refuses connections: the drill fails at once, and the verdict
    is built from the built-in tests, which are collected (and skipped) as usual."""
    summary = pytester.path / "summary.json"
    pytester.runpytest(
        "--supabase-restore",
        "--supabase-dry-run",
        f"--supabase-summary-json={summary}",
        "-p",
        "no:cacheprovider",
        *args,
    )
    data: dict[str, Any] = json.loads(summary.read_text())
    return data


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--supabase-quick"], id="option"),
        pytest.param(["-m", "supabase_quick"], id="marker"),
        pytest.param(["--supabase-quick", "-n", "2"], id="option-xdist"),
        pytest.param(["-m", "supabase_quick", "-n", "2"], id="marker-xdist"),
    ],
)
def test_the_verdict_learns_what_was_not_selected(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.setenv("SUPABASE_DB_URL", "postgresql://postgres@127.0.0.1:1/postgres")
    data = dry_run(pytester, *args)
    assert data["status"] == "FAIL"  # the source did not answer: never a PASS
    assert data["scope"] == "quick"
    assert [t for t in data["not_tested"] if "not selected" in t] == NOT_SELECTED
    for name in EXPENSIVE:
        assert data["categories"][name] == {
            "passed": 0,
            "failed": 0,
            "skipped": 0,
            "errors": 0,
            "xfail": 0,
        }
    for name in QUICK_CATEGORIES:
        assert data["categories"][name]["skipped"] > 0  # selected, skipped by the dry run


def test_a_partial_deselection_is_still_a_full_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # -k leaves some storage tests in: storage was selected, so the scope stays full.
    monkeypatch.setenv("SUPABASE_DB_URL", "postgresql://postgres@127.0.0.1:1/postgres")
    data = dry_run(pytester, "-k", "not test_bucket_settings")
    assert data["scope"] == "full"
    assert not [t for t in data["not_tested"] if "not selected" in t]


def test_a_quick_drill_of_the_demo_passes_as_a_quick_check(pytester: pytest.Pytester) -> None:
    """The one real drill here: export, restore, the cheap categories and a custom test."""
    pytester.makepyfile(
        test_mine="""
        import pytest

        @pytest.mark.supabase_category("custom")
        def test_every_task_has_its_project(staging_db):
            (orphans,) = staging_db.execute(
                "SELECT count(*) FROM public.tasks t"
                " LEFT JOIN public.projects p ON p.id = t.project_id WHERE p.id IS NULL"
            ).fetchone()
            assert orphans == 0
        """
    )
    summary = pytester.path / "summary.json"
    result = pytester.runpytest(
        "--supabase-restore",
        "--supabase-demo",
        "--supabase-quick",
        f"--supabase-summary-json={summary}",
        "-p",
        "no:cacheprovider",
        "-n",
        "2",
        str(pytester.path),
    )
    data = json.loads(summary.read_text())
    assert data["status"] == "PASS", data["reason"] + "\n" + result.stdout.str()[-3000:]
    assert result.ret == 0
    assert data["scope"] == "quick"
    assert data["reason"].startswith("quick check: ")
    assert data["reason"].endswith(
        " checks passed in 5 of 8 categories; not a full proof of the backup"
    )
    assert data["not_tested"][: len(EXPENSIVE)] == NOT_SELECTED
    for name in QUICK_CATEGORIES:
        assert data["categories"][name]["passed"] > 0, name
    for name in EXPENSIVE:
        assert sum(data["categories"][name].values()) == 0, name
    assert data["categories"]["custom"]["passed"] == 1
    result.stdout.fnmatch_lines(
        [
            "*supabase restore drill: PASS*",
            "PASS: quick check: *",
            "  data_integrity       -  *",
            "  scope: quick check (5 of 8 categories; not selected: data_integrity, storage, "
            "data_consistency)",
        ]
    )
