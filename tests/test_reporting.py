"""The reporting plugin end to end: pytester runs with a hand-made drill state.

Each run registers ``ReportingPlugin`` from a conftest (as plugin.py does) and tags
synthetic tests with ``("supabase_category", name)`` at collection. GitHub and Slack are a
real HTTP server on loopback.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pytest_supabase_restore import CATEGORIES

INNER_CONFTEST = """
import json
from pathlib import Path

import pytest

from pytest_supabase_restore.config import Config
from pytest_supabase_restore.connections import Connection
from pytest_supabase_restore.notify.http import RetryPolicy
from pytest_supabase_restore.redact import Redactor
from pytest_supabase_restore.reporting import PLUGIN_NAME, ReportingPlugin
from pytest_supabase_restore.results import DrillState, Phase, RestoreIssue

SPEC = json.loads((Path(__file__).parent / "drill.json").read_text())


def pytest_configure(config):
    config.addinivalue_line("markers", "cat(name): the drill category of a test")
    if SPEC["controller_only"] and hasattr(config, "workerinput"):
        return
    raw = dict(SPEC["settings"])
    for key in ("source", "target"):
        if key in raw:
            raw[key] = Connection(**raw[key])
    if raw.get("summary_json"):
        raw["summary_json"] = Path(raw["summary_json"])
    settings = Config(enabled=True, **raw)
    state = None
    if SPEC["state"] is not None:
        state = DrillState.from_json(SPEC["state"])

    def get_state():
        if SPEC["state_raises"]:
            raise RuntimeError("drill-state.json is unreadable")
        return state

    plugin = ReportingPlugin(
        settings, get_state, Redactor(settings.secrets()), retry=RetryPolicy(**SPEC["retry"])
    )
    config.pluginmanager.register(plugin, PLUGIN_NAME)


def pytest_collection_modifyitems(items):
    for item in items:
        marker = item.get_closest_marker("cat")
        if marker is not None:
            item.user_properties.append(("supabase_category", marker.args[0]))
"""

ALL_PASS = f"""
import pytest

CATEGORIES = {list(CATEGORIES)!r}


@pytest.mark.parametrize("cat", [pytest.param(c, marks=pytest.mark.cat(c)) for c in CATEGORIES])
def test_check(cat):
    assert cat


def test_not_part_of_the_drill():
    pass
"""

# The installed entry point (plugin.py) is blocked: these runs test the reporting object
# alone, registered by the conftest above. Unrelated heavy plugins are blocked for speed
# (pytester re-imports them in every in-process run).
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
FAST = {"attempts": 3, "base_delay": 0.05, "max_delay": 0.1, "total_seconds": 5.0, "timeout": 5.0}

STATE: dict[str, Any] = {
    "enabled": True,
    "mode": "export",
    "rto_seconds": 12.5,
    "snapshot_time": "2025-03-01T11:00:00+00:00",
    "server_version": "15.8",
    "tool_version": "15.8",
    "staging_kind": "ephemeral",
    "phases": [{"name": "export", "seconds": 3.0}, {"name": "restore", "seconds": 9.5}],
    "backup": {"tables": 4, "rows": 120, "db_bytes": 90000, "objects": 2},
}


def setup_drill(
    pytester: pytest.Pytester,
    *,
    tests: str = ALL_PASS,
    settings: dict[str, Any] | None = None,
    state: dict[str, Any] | None = STATE,
    state_raises: bool = False,
    controller_only: bool = True,
) -> Path:
    """Write the conftest, the drill spec and the tests; return the summary JSON path."""
    summary = pytester.path / "out" / "summary.json"
    spec = {
        "settings": {"summary_json": str(summary), **(settings or {})},
        "state": state,
        "state_raises": state_raises,
        "controller_only": controller_only,
        "retry": FAST,
    }
    pytester.makeconftest(INNER_CONFTEST)
    (pytester.path / "drill.json").write_text(json.dumps(spec))
    pytester.makepyfile(test_drill=tests)
    return summary


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*INNER_ARGS, *args)


def every_output(
    pytester: pytest.Pytester,
    result: pytest.RunResult,
    summary: Path,
    step_summary: Path,
    peer: Any,
) -> dict[str, str]:
    """Where a run's words end up: terminal, JSON, job summary, JUnit, HTML and every request
    the GitHub and Slack stand-in received, by name."""
    outputs = {
        "terminal": "\n".join(result.outlines + result.errlines),
        "summary json": summary.read_text(),
        "job summary": step_summary.read_text(),
        "junit": (pytester.path / "junit.xml").read_text(),
        "html": (pytester.path / "report.html").read_text(),
    }
    outputs.update({f"{m} {p}": body.decode() for m, p, body in peer.requests})
    return outputs


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_a_passing_drill_passes_everywhere(pytester: pytest.Pytester) -> None:
    summary = setup_drill(pytester)
    result = run(pytester)
    assert result.ret == 0
    result.assert_outcomes(passed=9)
    data = load(summary)
    assert data["status"] == "PASS", data["reasons"]
    assert list(data["categories"]) == list(CATEGORIES)  # the untagged test is not counted
    assert all(c["passed"] == 1 and c["failed"] == 0 for c in data["categories"].values())
    assert data["tests"]["passed"] == 8
    assert data["rto_seconds"] == 12.5 and data["phases"] == {"export": 3.0, "restore": 9.5}
    assert data["backup"]["tables"] == 4 and data["backup"]["object_bytes"] is None
    result.stdout.fnmatch_lines(
        [
            "*= supabase restore drill: PASS =*",
            "PASS: restored and verified: 8 checks passed in all 8 categories",
            "*category*result*passed failed skipped errors",
            "*api_connectivity*PASS*1*0*0*0",
            "*RTO 12.5 s; export 3.0 s, restore 9.5 s",
            "*backup: 4 tables, 120 rows, 90.0 kB database, 2 objects (n/a)",
            f"*summary JSON: {summary}",
        ]
    )


FAILING = (
    ALL_PASS
    + """

@pytest.fixture
def broken():
    raise RuntimeError("staging connection refused")


@pytest.fixture
def leaky():
    yield
    raise RuntimeError("could not drop the scratch schema")


@pytest.mark.cat("storage")
def test_storage_sha():
    assert False, "object avatars/a.png differs from the manifest\\nsecond line"


@pytest.mark.cat("crud_operations")
def test_crud(broken):
    pass


@pytest.mark.cat("authentication")
def test_auth(leaky):
    pass


@pytest.mark.cat("data_integrity")
@pytest.mark.xfail(reason="known drift in a view")
def test_known():
    assert False


@pytest.mark.cat("performance")
@pytest.mark.xfail(reason="should fail", strict=True)
def test_strict_xpass():
    pass
"""
)


def test_failures_errors_and_xfails_are_counted_the_pytest_way(pytester: pytest.Pytester) -> None:
    summary = setup_drill(pytester, tests=FAILING)
    result = run(pytester)
    assert result.ret == 1
    data = load(summary)
    assert data["status"] == "FAIL"
    cats = data["categories"]
    assert cats["storage"] == {"passed": 1, "failed": 1, "skipped": 0, "errors": 0, "xfail": 0}
    assert cats["crud_operations"]["errors"] == 1
    # A passing test whose teardown failed is an error.
    assert cats["authentication"] == {
        "passed": 1,
        "failed": 0,
        "skipped": 0,
        "errors": 1,
        "xfail": 0,
    }
    assert cats["data_integrity"]["xfail"] == 1 and cats["data_integrity"]["failed"] == 0
    assert cats["performance"]["failed"] == 1  # strict xpass is a failure
    messages = {f["test"].split("::")[1]: f["message"] for f in data["failures"]}
    assert messages == {
        "test_storage_sha": "object avatars/a.png differs from the manifest",
        "test_crud": "error in setup: RuntimeError: staging connection refused",
        "test_auth": "error in teardown: RuntimeError: could not drop the scratch schema",
        "test_strict_xpass": "[XPASS(strict)] should fail",
    }
    assert data["reason"] == "2 tests failed; 2 tests errored"
    assert "data_integrity: expected failure (known drift in a view)" in data["not_tested"]
    result.stdout.fnmatch_lines(
        [
            "*= supabase restore drill: FAIL =*",
            "*failures:",
            "*test_drill.py::test_storage_sha (storage): object avatars/a.png differs*",
        ]
    )


def test_a_category_whose_tests_all_skipped_fails_the_run(pytester: pytest.Pytester) -> None:
    tests = ALL_PASS.replace(
        "    assert cat\n",
        '    if cat == "storage":\n        pytest.skip("no S3 endpoint configured")\n',
    )
    summary = setup_drill(pytester, tests=tests)
    result = run(pytester)
    result.assert_outcomes(passed=8, skipped=1)
    assert result.ret == 1  # pytest alone would have said 0
    data = load(summary)
    assert data["reason"] == "category storage did not run (all 1 skipped)"
    assert data["not_tested"] == ["storage: no S3 endpoint configured"]
    result.stdout.fnmatch_lines(["*storage*NOT RUN*0*0*1*0", "*- storage: no S3 endpoint*"])


def test_a_collection_error_fails_the_drill(pytester: pytest.Pytester) -> None:
    summary = setup_drill(pytester)
    pytester.makepyfile(test_broken="import not_a_module_anywhere\n")
    result = run(pytester, "--continue-on-collection-errors")
    assert result.ret == 1
    data = load(summary)
    assert data["status"] == "FAIL" and data["reason"] == "1 collection error"
    (failure,) = data["failures"]
    assert failure["test"] == "test_broken.py" and failure["category"] == "collection"
    assert "ModuleNotFoundError" in failure["message"]

    interrupted = run(pytester)  # pytest stops at the collection error: still not "interrupted"
    assert interrupted.ret == 2
    assert load(summary)["reasons"] == ["1 collection error", "no smoke tests ran"]


def test_no_drill_test_ran_is_a_failure_unless_dry_run(pytester: pytest.Pytester) -> None:
    summary = setup_drill(pytester)
    result = run(pytester, "-k", "not_part_of_the_drill")
    assert result.ret == 1
    assert load(summary)["reason"] == "no smoke tests ran"

    # Slack is enabled but unreachable: a dry run must not try it (that would fail the run).
    dry = {"dry_run": True, "slack": True, "slack_webhook_url": "http://127.0.0.1:9/hook"}
    summary = setup_drill(pytester, settings=dry, state={"enabled": True, "mode": "dry-run"})
    result = run(pytester, "-k", "not_part_of_the_drill")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*dry run: GitHub and Slack were not notified"])
    data = load(summary)
    assert data["status"] == "PASS" and data["dry_run"] is True
    assert data["not_tested"][0].startswith("dry run")


def test_drill_errors_and_unreadable_state_fail_loudly(pytester: pytest.Pytester) -> None:
    state = {**STATE, "error": "pg_restore: could not connect", "error_phase": "restore"}
    summary = setup_drill(pytester, state=state)
    result = run(pytester)
    assert result.ret == 1
    assert load(summary)["reason"] == "the drill failed in restore: pg_restore: could not connect"

    summary = setup_drill(pytester, state_raises=True)
    result = run(pytester)
    assert result.ret == 1
    assert "INTERNALERROR" not in result.stdout.str()
    assert load(summary)["reason"] == "the drill did not run (no drill state)"
    result.stdout.fnmatch_lines(
        [
            "*! supabase restore: REPORTING FAILED !*",
            "*could not read the drill state: drill-state.json is unreadable",
        ]
    )


def test_the_job_summary_is_appended(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    step_summary = pytester.path / "step_summary.md"
    step_summary.write_text("# Earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/shop")
    monkeypatch.setenv("GITHUB_RUN_ID", "77")
    setup_drill(pytester, tests=FAILING)
    run(pytester)
    text = step_summary.read_text()
    assert text.startswith("# Earlier step\n\n## ❌ FAIL: Supabase backup restore drill")
    assert "| Category | Result | Passed | Failed | Skipped | Errors |" in text
    for name in CATEGORIES:
        assert f"| {name} |" in text
    assert "| storage | ❌ FAIL | 1 | 1 | 0 | 0 |" in text
    assert "<details open>\n<summary>❌ 4 failures</summary>" in text
    assert "[workflow run](https://github.com/acme/shop/actions/runs/77)" in text
    assert load(pytester.path / "out" / "summary.json")["run_url"].endswith("/runs/77")


def test_collect_only_reports_nothing(pytester: pytest.Pytester) -> None:
    summary = setup_drill(pytester)
    result = run(pytester, "--collect-only")
    assert result.ret == 0
    assert not summary.exists()
    assert "supabase restore drill" not in result.stdout.str()


class Peer:
    """GitHub and Slack on one loopback server: records every request."""

    def __init__(self, httpserver: HTTPServer, slack_status: int = 200) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        self.slack_status = slack_status
        httpserver.expect_request("/api/repos/acme/shop/issues", method="GET").respond_with_handler(
            self.handle
        )
        httpserver.expect_request(
            "/api/repos/acme/shop/issues", method="POST"
        ).respond_with_handler(self.handle)
        httpserver.expect_request(
            "/api/repos/acme/shop/issues/1/comments", method="POST"
        ).respond_with_handler(self.handle)
        httpserver.expect_request("/hooks/SECRETHOOK3333", method="POST").respond_with_handler(
            self.handle
        )
        self.api = httpserver.url_for("/api")
        self.webhook = httpserver.url_for("/hooks/SECRETHOOK3333")

    def handle(self, request: Request) -> Response:
        self.requests.append((request.method, request.path, request.get_data()))
        if request.path.startswith("/hooks/"):
            return Response("ok" if self.slack_status == 200 else "err", self.slack_status)
        if request.method == "GET":
            return Response("[]", 200, content_type="application/json")
        number = json.dumps({"number": 1, "state": "open"})
        return Response(number, 201, content_type="application/json")

    def calls(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path, _ in self.requests]


def notify_settings(peer: Peer, **extra: Any) -> dict[str, Any]:
    return {
        "github_issue": True,
        "github_token": "SECRET-gh-token-2222",
        "github_repository": "acme/shop",
        "github_api_url": peer.api,
        "slack": True,
        "slack_webhook_url": peer.webhook,
        **extra,
    }


def test_notifications_happen_once_on_the_controller_under_xdist(
    pytester: pytest.Pytester, httpserver: HTTPServer
) -> None:
    peer = Peer(httpserver)
    # The plugin is registered on the workers too here: it must stay quiet there itself.
    summary = setup_drill(pytester, settings=notify_settings(peer), controller_only=False)
    result = run(pytester, "-n", "2")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=9)
    assert sorted(peer.calls()) == sorted(
        [
            ("GET", "/api/repos/acme/shop/issues"),
            ("POST", "/api/repos/acme/shop/issues"),
            ("POST", "/api/repos/acme/shop/issues/1/comments"),
            ("POST", "/hooks/SECRETHOOK3333"),
        ]
    )
    data = load(summary)
    assert data["status"] == "PASS"
    assert all(c["passed"] == 1 for c in data["categories"].values())  # from both workers
    assert data["notifications"] == {
        "github": "issue #1 created, commented, labelled drill:pass",
        "slack": "posted to Slack",
    }
    result.stdout.fnmatch_lines(["*github: issue #1 created*", "*slack: posted to Slack"])


def test_a_failed_notification_is_loud_bounded_and_fails_the_run(
    pytester: pytest.Pytester, httpserver: HTTPServer
) -> None:
    peer = Peer(httpserver, slack_status=500)
    summary = setup_drill(pytester, settings=notify_settings(peer, github_issue=False))
    start = time.monotonic()
    result = run(pytester)
    assert time.monotonic() - start < FAST["total_seconds"] + 5
    assert result.ret == 1  # every test passed, but nobody was told
    assert peer.calls() == [("POST", "/hooks/SECRETHOOK3333")] * FAST["attempts"]
    result.stdout.fnmatch_lines(
        [
            "*! supabase restore: REPORTING FAILED !*",
            "*Slack not notified: Slack webhook: gave up after 3 attempts*HTTP 500*",
            "*exit status is non-zero*",
        ]
    )
    data = load(summary)  # the verdict is still written
    assert data["status"] == "PASS"
    assert data["notifications"] == {"slack": "FAILED"}
    assert data["reporting_problems"][0].startswith("Slack not notified")
    assert "SECRETHOOK3333" not in result.stdout.str()


SECRETS = {
    "db_password": "Pw-SECRET-db-4711",
    "service_key": "SECRET-service-role-key-0815",
    "s3_secret": "SECRET-s3-key-abc123",
    "github_token": "SECRET-gh-token-2222",
    "webhook": "SECRETHOOK3333",
}
DB_URL = f"postgresql://postgres:{SECRETS['db_password']}@db.example.supabase.co:5432/postgres"

LEAKY = (
    ALL_PASS
    + f"""

@pytest.mark.cat("authentication")
def test_leaks_in_its_message():
    assert False, "could not log in via {DB_URL} with key {SECRETS["service_key"]}"


@pytest.mark.cat("storage")
def test_leaks_in_its_output():
    print("using S3 secret {SECRETS["s3_secret"]}")
    raise ValueError("S3 said no to {SECRETS["s3_secret"]}")


@pytest.mark.cat("custom")
def test_leaks_in_its_skip_reason():
    pytest.skip("token {SECRETS["github_token"]} has no access")
"""
)


def test_no_secret_leaves_the_process(
    pytester: pytest.Pytester, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer = Peer(httpserver)
    step_summary = pytester.path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    settings = notify_settings(
        peer,
        source={
            "db_url": DB_URL,
            "service_role_key": SECRETS["service_key"],
            "s3_endpoint": "http://127.0.0.1:9/storage/v1/s3",
            "s3_access_key_id": "AKIDEXAMPLE",
            "s3_secret_access_key": SECRETS["s3_secret"],
        },
    )
    state = {
        **STATE,
        "source_label": DB_URL,  # a label someone forgot to mask
        "not_tested": [f"edge functions: key {SECRETS['service_key']} lacks access"],
    }
    summary = setup_drill(pytester, tests=LEAKY, settings=settings, state=state)
    result = run(
        pytester,
        "-rA",
        "--junitxml=junit.xml",
        "-o",
        "junit_logging=all",
        "--html=report.html",
        "--self-contained-html",
    )
    assert result.ret == 1

    outputs = every_output(pytester, result, summary, step_summary, peer)
    assert len(peer.requests) == 4  # GitHub list, create, comment; Slack
    for where, text in outputs.items():
        for name, secret in SECRETS.items():
            assert secret not in text, f"{name} leaked into {where}"
    # It was there to leak, and was replaced.
    data = load(summary)
    messages = " ".join(f["message"] for f in data["failures"])
    assert "could not log in via *** with key ***" in messages  # the whole URL is a secret
    assert "S3 said no to ***" in messages
    assert "custom: token *** has no access" in data["not_tested"]
    assert "***" in outputs["terminal"] and "***" in outputs["junit"]
    # pytest's own report keeps its shape: the short summary still names the error.
    result.stdout.fnmatch_lines(
        ["FAILED test_drill.py::test_leaks_in_its_output - ValueError: S3 said no to ***"]
    )


# A password the length limits of messages can cut through: before the fix a message was
# cut first and redacted after, so "postgresql://postgres:p%40ss%3Aw%2…" no longer matched
# the known URL, had no "@" left for the URL rule, and went out as it was.
ACROSS_URL = "postgresql://postgres:p%40ss%3Aw%2Frd-4711@db.example.supabase.co:5432/postgres"
ACROSS_PREFIX = "p%40ss"


def across(limit: int, what: str) -> str:
    """A one-line message whose ``limit`` falls inside the password of ACROSS_URL."""
    start = limit - len("postgresql://postgres:p%40ss%3Aw")  # the cut lands in the password
    head = f"{what}: could not connect to"
    return f"{head} {'x' * (start - len(head) - 2)} {ACROSS_URL} (gave up)"


ACROSS = (
    ALL_PASS
    + f"""

@pytest.mark.cat("authentication")
def test_fails_across_the_limit():
    assert False, {across(300, "failure")!r}


@pytest.mark.cat("custom")
def test_skips_across_the_limit():
    pytest.skip({across(300, "skip")!r})
"""
)


def test_a_secret_across_a_length_limit_is_masked_not_cut(
    pytester: pytest.Pytester, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer = Peer(httpserver)
    step_summary = pytester.path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    settings = notify_settings(peer, source={"db_url": ACROSS_URL})
    state = {
        **STATE,
        "error": across(300, "drill"),
        "error_phase": "export",
        "not_tested": [across(500, "not tested")],
    }
    summary = setup_drill(pytester, tests=ACROSS, settings=settings, state=state)
    result = run(pytester, "-rA", "--junitxml=junit.xml", "--html=report.html")
    assert result.ret == 1
    outputs = every_output(pytester, result, summary, step_summary, peer)
    assert len(peer.requests) == 4  # GitHub list, create, comment; Slack
    for where, text in outputs.items():
        assert ACROSS_PREFIX not in text, f"the start of the password leaked into {where}"
    data = load(summary)
    # Each message is there, with the whole URL masked (it was redacted before its limit).
    (failure,) = [f for f in data["failures"] if "test_fails_across_the_limit" in f["test"]]
    assert failure["message"].startswith("failure: could not connect to xxx")
    assert failure["message"].endswith("*** (gave up)")
    assert "the drill failed in export: drill: could not connect to" in data["reason"]
    assert any(t.startswith("custom: skip: could not connect") for t in data["not_tested"])
    assert any(t.endswith("*** (gave up)") for t in data["not_tested"])
