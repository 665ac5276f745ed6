"""The README's main command end to end: the demo drill PASSes in every category, its verdict
reaches every output exactly once, a FAIL reopens the tracking issue, and no secret or row
content leaves the process. GitHub and Slack are local HTTP servers (pytest-httpserver)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from test_notify_github import REPO, TOKEN, FakeGitHub
from test_run_output import junit_suite
from werkzeug import Request, Response

from pytest_supabase_restore import CATEGORIES

SLACK_PATH = "/services/T000/B000/slack-secret-path-zz"


@pytest.fixture
def outputs(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    httpserver: HTTPServer,
    tmp_path: Path,
) -> dict[str, Any]:
    github = FakeGitHub(httpserver)
    slack: list[Any] = []

    def on_slack(request: Request) -> Response:
        slack.append(request.get_json())
        return Response("ok")

    httpserver.expect_request(SLACK_PATH, method="POST").respond_with_handler(on_slack)
    summary_md = tmp_path / "step-summary.md"
    env = {
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_API_URL": github.url,
        "SLACK_WEBHOOK_URL": httpserver.url_for(SLACK_PATH),
        "GITHUB_STEP_SUMMARY": str(summary_md),
        # A recognisable secret that the drill must never print (not used to connect).
        "STAGING_SUPABASE_SERVICE_ROLE_KEY": "service-role-key-never-shown-77",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return {"github": github, "slack": slack, "summary_md": summary_md, "env": env}


def _run(
    pytester: pytest.Pytester, tmp_path: Path, *extra: str
) -> tuple[Any, dict[str, Any], Path]:
    reports = tmp_path / "reports"
    result = pytester.runpytest(
        "--supabase-restore",
        "--supabase-demo",
        "-n",
        "2",
        "-p",
        "no:cacheprovider",
        f"--html={reports / 'drill.html'}",
        "--self-contained-html",
        f"--junitxml={reports / 'junit.xml'}",
        f"--supabase-summary-json={reports / 'summary.json'}",
        "--supabase-github-issue",
        "--supabase-slack",
        *extra,
    )
    return result, json.loads((reports / "summary.json").read_text()), reports


def test_demo_drill_passes_and_reports_once_everywhere(
    pytester: pytest.Pytester, tmp_path: Path, outputs: dict[str, Any]
) -> None:
    result, verdict, reports = _run(pytester, tmp_path)
    assert verdict["status"] == "PASS", verdict["reason"] + "\n" + result.stdout.str()[-3000:]
    assert result.ret == 0
    for name in CATEGORIES:
        counts = verdict["categories"][name]
        assert counts["passed"] > 0 and counts["failed"] == 0 and counts["errors"] == 0, name
    assert verdict["rto_seconds"] > 0 and verdict["backup"]["objects"] == 30
    github: FakeGitHub = outputs["github"]
    assert len(github.comments) == 1 and len(github.issues) == 1
    assert len(outputs["slack"]) == 1
    assert "PASS" in outputs["summary_md"].read_text()
    # JUnit in its default family (xunit2): no warning, no properties, the verdict a case.
    assert (
        "PytestWarning" not in result.stdout.str() and "warnings summary" not in result.stdout.str()
    )
    suite = junit_suite(reports / "junit.xml")
    assert suite.get("failures") == "0" and suite.get("errors") == "0"
    assert not suite.findall("testcase/properties")
    (case,) = [c for c in suite.iter("testcase") if c.get("name") == "verdict"]
    assert case.get("classname") == "supabase_restore" and not list(case)

    secrets = [TOKEN, SLACK_PATH, "service-role-key-never-shown-77"]
    artifacts = [p.read_text(errors="replace") for p in reports.iterdir()]
    artifacts += [result.stdout.str(), outputs["summary_md"].read_text()]
    artifacts += [json.dumps(c.body) for c in github.calls] + [json.dumps(outputs["slack"])]
    for text in artifacts:
        for secret in secrets:
            assert secret not in text


def test_a_failing_drill_reopens_the_issue(
    pytester: pytest.Pytester,
    tmp_path: Path,
    outputs: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    github: FakeGitHub = outputs["github"]
    number = github.add_issue("Backup restore drill", ["backup-drill"], state="closed")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    # An RTO budget no restore can meet makes the drill FAIL for a real reason.
    result, verdict, reports = _run(pytester, tmp_path, "--supabase-rto-budget=0.001")
    assert verdict["status"] == "FAIL" and result.ret != 0
    assert any(f["category"] == "performance" for f in verdict["failures"])
    # A CI test view shows the failed drill as failed: the verdict is a failed test case.
    suite = junit_suite(reports / "junit.xml")
    (case,) = [c for c in suite.iter("testcase") if c.get("name") == "verdict"]
    failure = case.find("failure")
    assert failure is not None and "RTO" in (failure.get("message") or "")
    # On GitHub Actions, one ::error annotation per failed check, and one for the verdict.
    errors = [ln for ln in result.stdout.lines if ln.startswith("::error title=")]
    assert any(ln.startswith("::error title=supabase restore%3A performance::") for ln in errors)
    assert errors[-1].startswith("::error title=supabase restore drill%3A FAIL::")
    assert "RTO" in errors[-1]
    assert github.issues[number]["state"] == "open"
    assert len(github.comments) == 1 and len(outputs["slack"]) == 1
