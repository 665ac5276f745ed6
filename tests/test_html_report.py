"""The drill summary in pytest-html's report, rendered by a real (headless) browser."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pytest_supabase_restore import CATEGORIES
from pytest_supabase_restore.config import Config
from pytest_supabase_restore.notify.html import summary_html
from pytest_supabase_restore.results import DrillState
from pytest_supabase_restore.verdict import CheckOutcome, build_verdict

CHROMIUM = Path("/usr/bin/chromium")
SERVICE_KEY = "SECRET-service-role-key-0815"

INNER_CONFTEST = f"""
import pytest

from pytest_supabase_restore.config import Config
from pytest_supabase_restore.connections import Connection
from pytest_supabase_restore.redact import Redactor
from pytest_supabase_restore.reporting import PLUGIN_NAME, ReportingPlugin
from pytest_supabase_restore.results import BackupSizes, DrillState, Phase


def pytest_configure(config):
    config.addinivalue_line("markers", "cat(name): the drill category of a test")
    settings = Config(
        enabled=True, source=Connection(service_role_key={SERVICE_KEY!r})
    )
    state = DrillState(
        enabled=True,
        rto_seconds=31.0,
        snapshot_time="2025-03-01T11:00:00+00:00",
        staging_kind="ephemeral",
        not_tested=["realtime: <not> part of a database backup"],
        backup=BackupSizes(tables=7, rows=4200, db_bytes=3000000),
        phases=[Phase("export", 12.5), Phase("staging_start", 3.0), Phase("data", 25.0)],
    )
    plugin = ReportingPlugin(settings, lambda: state, Redactor(settings.secrets()))
    config.pluginmanager.register(plugin, PLUGIN_NAME)


def pytest_collection_modifyitems(items):
    for item in items:
        marker = item.get_closest_marker("cat")
        if marker is not None:
            item.user_properties.append(("supabase_category", marker.args[0]))
"""

TESTS = f"""
import pytest

CATEGORIES = {list(CATEGORIES)!r}


@pytest.mark.parametrize("cat", [pytest.param(c, marks=pytest.mark.cat(c)) for c in CATEGORIES])
def test_check(cat):
    assert cat


@pytest.mark.cat("performance")
def test_budget():
    pytest.skip("not tested: no RTO budget set (--supabase-rto-budget)")


@pytest.mark.cat("storage")
def test_object_checksums():
    assert False, "object <img src=x onerror=alert(1)> differs (key {SERVICE_KEY})"
"""

INNER_ARGS = (
    "-p",
    "no:supabase_restore",
    "-p",
    "no:cacheprovider",
    "-p",
    "no:hypothesispytest",
    "-p",
    "no:benchmark",
    "-p",
    "no:anyio",
    "-p",
    "no:pytest_httpserver",
)


def test_summary_html_escapes_everything() -> None:
    outcomes = [CheckOutcome(f"t.py::test_{c}", c, "passed") for c in CATEGORIES]
    outcomes.append(
        CheckOutcome("t.py::test_<x>", "<b>mine</b>", "failed", ['<script>alert("x")</script>'])
    )
    state = DrillState(enabled=True, staging_label='<i onclick="x">label</i>')
    now = datetime(2025, 3, 1, tzinfo=timezone.utc)
    env = {"GITHUB_SERVER_URL": 'https://x"><script>', "GITHUB_REPOSITORY": "a/b"}
    env["GITHUB_RUN_ID"] = "1"
    html = summary_html(build_verdict(outcomes, state, Config(enabled=True), now, env=env))
    assert "<script" not in html and "<b>mine" not in html and "<i onclick" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert 'data-category="&lt;b&gt;mine&lt;/b&gt;"' in html
    assert 'href="https://x&quot;&gt;&lt;script&gt;/a/b/actions/runs/1"' in html
    assert 'data-verdict="FAIL"' in html
    for name in CATEGORIES:
        assert f'<tr data-category="{name}">' in html


def _stop_group(pgid: int) -> None:
    """Kill what is left of the browser's process group and wait until it is gone."""
    deadline = time.monotonic() + 10
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
        while time.monotonic() < deadline:
            os.killpg(pgid, 0)  # raises ProcessLookupError once the group is empty
            time.sleep(0.05)


def render(report: Path, profile: Path) -> str:
    """The report's DOM after a headless Chromium ran its scripts."""
    proc = subprocess.Popen(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-breakpad",
            "--disable-crash-reporter",
            f"--user-data-dir={profile}",
            "--dump-dom",
            report.as_uri(),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its helpers share the group, so they can all be stopped
    )
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()  # it timed out
        proc.wait()
        _stop_group(proc.pid)
    assert proc.returncode == 0, f"chromium exited with {proc.returncode}"
    return out


def test_the_html_report_opens_with_the_drill_summary(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    if not CHROMIUM.exists():
        pytest.skip("needs /usr/bin/chromium to render the report (apt-get install chromium)")
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_drill=TESTS)
    result = pytester.runpytest(*INNER_ARGS, "--html=report.html", "--self-contained-html")
    assert result.ret == 1
    report = pytester.path / "report.html"
    raw = report.read_text()
    # At the top: the first thing inside pytest-html's prefix summary block.
    assert re.search(
        r'class="additional-summary prefix">\s*<section id="supabase-restore-drill"', raw
    )

    dom = render(report, tmp_path / "chromium-profile")
    section = re.search(r'<section id="supabase-restore-drill".*?</section>', dom, re.DOTALL)
    assert section, "the drill summary is not in the rendered page"
    text = section.group(0)
    assert re.search(r"Backup restore drill: <span[^>]*>FAIL</span>", text)
    assert "1 test failed" in text
    for name in CATEGORIES:
        assert re.search(rf'<tr data-category="{name}"><td[^>]*>{name}</td>', text), name
    assert re.search(r'<tr data-category="storage">.*?>FAIL</td>', text)
    assert "RTO (restore time):</b> 31.0 s" in text
    assert "7 tables, 4,200 rows, 3.0 MB database" in text
    assert "realtime: &lt;not&gt; part of a database backup" in text
    assert "object &lt;img src=x onerror=alert(1)&gt; differs (key ***)" in text
    # pytest-html's own table was rendered by its script, below the drill summary.
    assert "test_drill.py::test_object_checksums" in dom
    assert dom.index('id="supabase-restore-drill"') < dom.index('id="results-table"')
    assert SERVICE_KEY not in dom and SERVICE_KEY not in raw
    # Above the fold: a title with the verdict, the drill summary before the environment.
    assert re.search(r"<title[^>]*>Backup restore drill: FAIL · Supabase project · 20\d\d-", dom)
    assert dom.index('id="supabase-restore-drill"') < dom.index('id="environment-header"')
    # The phases as a chart, inline, one bar each, the longest the widest.
    svg = re.search(r'<svg class="drill-timeline".*?</svg>', text, re.DOTALL)
    assert svg, "no phase chart"
    bars = re.findall(r'<g data-phase="(\w+)">.*?<rect [^>]*width="([\d.]+)"', svg.group(0))
    assert [b[0] for b in bars] == ["export", "staging_start", "data"]
    assert max(bars, key=lambda b: float(b[1]))[0] == "data"
    # The results table has a Category column; a skip reason reads as a sentence.
    assert 'data-column-type="category"' in dom
    assert '<td class="col-category">storage</td>' in dom
    assert "Skipped: not tested: no RTO budget set (--supabase-rto-budget)." in dom
    assert "Skipped: not tested: no RTO budget set (--supabase-rto-budget)&#x27;)" not in dom
    assert "Skipped: not tested: no RTO budget set (--supabase-rto-budget)')" not in dom


def test_runs_without_pytest_html(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_drill=TESTS.replace("assert False", "assert True"))
    result = pytester.runpytest(*INNER_ARGS, "-p", "no:html", "-p", "no:html_fixtures")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*= supabase restore drill: PASS =*"])
