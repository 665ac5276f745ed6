"""The run as people see it, against a real source cluster: one failure said once, the
settings header before the drill, and JUnit that tells the truth."""

from __future__ import annotations

import itertools
import json
import re
import time
import xml.etree.ElementTree as ET
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


@pytest.fixture(autouse=True)
def _outside_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    # On GitHub Actions the error would also be an ::error annotation (tested on its own).
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)


def junit_suite(path: Path) -> ET.Element:
    """The ``testsuite`` element of a JUnit file this test's own pytest run wrote."""
    suite = ET.parse(path).getroot().find("testsuite")  # noqa: S314 - written by our run
    assert suite is not None
    return suite


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
    # Whole, not cut: the fix is the part people need.
    assert fail_lines[0].endswith("Fix: check the user and password in SUPABASE_DB_URL."), out
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


def test_junit_holds_the_failed_drill_as_a_failed_case(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, source: Cluster, tmp_path: Path
) -> None:
    monkeypatch.setenv("SUPABASE_DB_URL", wrong_password_url(source))
    junit = tmp_path / "junit.xml"
    result = pytester.runpytest(
        "--supabase-restore", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "PytestWarning" not in result.stdout.str()
    suite = junit_suite(junit)
    assert suite.get("failures") == "1", ET.tostring(suite)[:2000]
    assert not suite.findall("testcase/properties")  # xunit2 test cases have none
    (case,) = [c for c in suite.iter("testcase") if c.get("classname") == "supabase_restore"]
    failure = case.find("failure")
    assert case.get("name") == "verdict" and failure is not None
    assert ERROR in (failure.get("message") or "")
    assert "not-the-password" not in junit.read_text()


def test_junit_xunit1_keeps_the_category_property(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, source: Cluster, tmp_path: Path
) -> None:
    monkeypatch.setenv("SUPABASE_DB_URL", wrong_password_url(source))
    junit = tmp_path / "junit.xml"
    pytester.runpytest(
        "--supabase-restore",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
        "-o",
        "junit_family=xunit1",
    )
    names = {p.get("name") for p in junit_suite(junit).iter("property")}
    assert "supabase_category" in names


def test_github_annotations_on_actions_only(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, source: Cluster
) -> None:
    monkeypatch.setenv("SUPABASE_DB_URL", wrong_password_url(source))
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    quiet = pytester.runpytest("--supabase-restore", "-q", "-p", "no:cacheprovider")
    assert "::error" not in quiet.stdout.str()
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = pytester.runpytest("--supabase-restore", "-q", "-p", "no:cacheprovider")
    errors = [line for line in result.stdout.lines if line.startswith("::error")]
    assert len(errors) == 1, errors
    assert errors[0].startswith("::error title=supabase restore drill%3A FAIL::the drill failed")
    assert ERROR in errors[0] and "not-the-password" not in result.stdout.str()


HEARTBEAT = re.compile(r"\[supabase-restore\] (\w+): running for ([\d.]+) s")


def test_long_phases_show_progress_every_few_seconds_with_q_and_xdist(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """A scale-40 demo's start takes well over 5 s: a heartbeat line at least every 5 s
    while it runs, with -q and under xdist, through pytest's terminal reporter."""
    pytester.makepyfile(
        test_one="import pytest\n\n@pytest.mark.supabase_category('custom')\n"
        "def test_staging(staging_dsn):\n    assert staging_dsn\n"
    )
    summary = tmp_path / "summary.json"
    result = pytester.runpytest(
        "--supabase-restore",
        "--supabase-demo",
        "--supabase-demo-scale=40",
        "--no-supabase-builtin-tests",
        "-q",
        "-n",
        "2",
        "-p",
        "no:cacheprovider",
        f"--supabase-summary-json={summary}",
        "test_one.py",
    )
    result.assert_outcomes(passed=1)
    phases = json.loads(summary.read_text())["phases"]
    beats: dict[str, list[float]] = {}
    for match in HEARTBEAT.finditer(result.stdout.str()):
        beats.setdefault(match[1], []).append(float(match[2]))
    assert phases["demo_start"] > 6, phases
    # The phases that print nothing of their own while they run (the export prints a line
    # per table fingerprinted: a heartbeat comes only when those pause).
    for phase, seconds in phases.items():
        if seconds < 6 or phase not in ("demo_start", "staging_start"):
            continue
        seen = [0.0, *beats.get(phase, []), seconds]
        gaps = [b - a for a, b in itertools.pairwise(seen)]
        assert max(gaps) <= 5.0, (phase, seen)


def test_a_heartbeat_says_what_the_phase_has_written_and_how_fast(tmp_path: Path) -> None:
    from pytest_supabase_restore.progress import LiveProgress
    from pytest_supabase_restore.redact import Redactor
    from tests.test_progress import Lines

    out = Lines()
    live = LiveProgress(
        out, Redactor(["s3cr3t"]), lambda: "export", lambda: ("written", [tmp_path]), interval=0.3
    )
    live.start()
    try:
        for i in range(12):
            (tmp_path / f"part-{i}").write_bytes(b"x" * 200_000)
            time.sleep(0.15)
        live("a message with s3cr3t in it")
    finally:
        live.stop()
    beats = [line for line in out.lines if "export: running for" in line]
    assert len(beats) >= 3, out.lines
    assert any("; written " in b and "B/s)" in b for b in beats), beats
    assert out.lines[-1] == "[supabase-restore] a message with *** in it"


def test_on_a_terminal_the_heartbeat_is_one_live_line_the_next_message_replaces() -> None:
    from pytest_supabase_restore.progress import LiveProgress
    from pytest_supabase_restore.redact import Redactor

    class Screen:  # pytest's TerminalReporter API as LiveProgress uses it, on a terminal
        isatty = True

        def __init__(self) -> None:
            self.calls: list[tuple[str, str]] = []

        def write_line(self, line: str) -> None:
            self.calls.append(("line", line))

        def rewrite(self, line: str, **markup: bool) -> None:
            self.calls.append(("rewrite", line))

    screen = Screen()
    live = LiveProgress(screen, Redactor(), lambda: "restore", interval=0.2)
    live.start()
    try:
        time.sleep(1.2)
        live("restore: data in 1.0s")
    finally:
        live.stop()
    beats = [c for c in screen.calls if c[0] == "rewrite" and "running for" in c[1]]
    assert len(beats) >= 2, screen.calls  # rewritten in place, not a line each
    assert not any(c[0] == "line" and "running for" in c[1] for c in screen.calls)
    message = screen.calls.index(("line", "[supabase-restore] restore: data in 1.0s"))
    assert screen.calls[message - 1] == ("rewrite", "")  # the live line was cleared first
