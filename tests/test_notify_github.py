"""The GitHub tracking issue, against a real HTTP server standing in for the REST API."""

from __future__ import annotations

import json
import re
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pytest_supabase_restore import CATEGORIES, QUICK_CATEGORIES
from pytest_supabase_restore.config import Config
from pytest_supabase_restore.connections import Connection
from pytest_supabase_restore.notify.github import (
    FAIL_LABEL,
    HISTORY_LIMIT,
    LABEL,
    PASS_LABEL,
    parse_history,
    post_to_github,
)
from pytest_supabase_restore.notify.http import HttpError, RetryPolicy, request_json
from pytest_supabase_restore.redact import Redactor
from pytest_supabase_restore.results import DrillState
from pytest_supabase_restore.verdict import CheckOutcome, Verdict, build_verdict

TOKEN = "SECRET-gh-token-2222"
DB_PASSWORD = "Pw-SECRET-db-4711"
DB_URL = f"postgresql://postgres:{DB_PASSWORD}@db.example.supabase.co:5432/postgres"
REPO = "acme/shop"
TITLE = "Backup restore drill"
FAST = RetryPolicy(attempts=4, base_delay=0.05, max_delay=0.2, total_seconds=5.0, timeout=5.0)
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class FakeGitHub:
    """A tiny in-memory GitHub issues API: list by label, create, comment, patch."""

    httpserver: HTTPServer
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: list[tuple[int, str]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    # Responses served before routing, e.g. [(503, {}, "")]: injected failures.
    failures: list[tuple[int, dict[str, str], str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.httpserver.expect_request(re.compile(r"^/repos/.*")).respond_with_handler(self.handle)

    @property
    def url(self) -> str:
        return self.httpserver.url_for("/").rstrip("/")

    def add_issue(self, title: str, labels: list[str], body: str = "", state: str = "open") -> int:
        number = len(self.issues) + 1
        self.issues[number] = {
            "number": number,
            "title": title,
            "body": body,
            "state": state,
            "labels": [{"name": name} for name in labels],
            "html_url": f"https://github.com/{REPO}/issues/{number}",
        }
        return number

    def handle(self, request: Request) -> Response:
        body = request.get_json(silent=True) if request.data else None
        self.calls.append(
            Call(request.method, request.path, dict(request.args), body, dict(request.headers))
        )
        if self.failures:
            status, headers, text = self.failures.pop(0)
            return Response(text, status=status, headers=headers)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._json({"message": "Bad credentials"}, 401)
        base = f"/repos/{REPO}/issues"
        if request.method == "GET" and request.path == base:
            label = request.args.get("labels")
            found = [i for i in self.issues.values() if label in [lb["name"] for lb in i["labels"]]]
            return self._json(found)
        if request.method == "POST" and request.path == base:
            number = self.add_issue(body["title"], body.get("labels", []), body.get("body", ""))
            return self._json(self.issues[number], 201)
        match = re.fullmatch(re.escape(base) + r"/(\d+)(/comments)?", request.path)
        if match and int(match.group(1)) in self.issues:
            issue = self.issues[int(match.group(1))]
            if match.group(2) and request.method == "POST":
                self.comments.append((issue["number"], body["body"]))
                return self._json({"id": len(self.comments)}, 201)
            if not match.group(2) and request.method == "PATCH":
                for key in ("body", "state"):
                    if key in body:
                        issue[key] = body[key]
                if "labels" in body:
                    issue["labels"] = [{"name": n} for n in body["labels"]]
                return self._json(issue)
        return self._json({"message": "Not Found"}, 404)

    @staticmethod
    def _json(data: Any, status: int = 200) -> Response:
        return Response(json.dumps(data), status=status, content_type="application/json")

    def summary(self) -> list[tuple[str, str]]:
        return [(c.method, c.path) for c in self.calls]


@pytest.fixture
def github(httpserver: HTTPServer) -> FakeGitHub:
    return FakeGitHub(httpserver)


def make_settings(github: FakeGitHub, **kw: Any) -> Config:
    values: dict[str, Any] = {
        "enabled": True,
        "github_issue": True,
        "github_token": TOKEN,
        "github_repository": REPO,
        "github_api_url": github.url,
        "source": Connection(db_url=DB_URL),
    }
    values.update(kw)
    return Config(**values)


def make_verdict(
    settings: Config, *, passed: bool, at: datetime = T0, quick: bool = False
) -> Verdict:
    """A full drill's verdict, or with ``quick`` one that ran only the cheap categories."""
    state = DrillState(enabled=True, rto_seconds=12.5, snapshot_time=at.isoformat())
    ran = QUICK_CATEGORIES if quick else CATEGORIES
    outcomes = [CheckOutcome(f"smoke/test_{c}.py::test_ok", c, "passed") for c in ran]
    if not passed:
        outcomes.append(
            CheckOutcome(
                "smoke/test_storage.py::test_sha",
                "storage",
                "failed",
                [f"object a.png differs; source {DB_URL}"],
            )
        )
    env = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": REPO}
    env["GITHUB_RUN_ID"] = str(int(at.timestamp()))
    not_selected = [c for c in CATEGORIES if c not in ran]
    return build_verdict(outcomes, state, settings, at, env=env, not_selected=not_selected)


def post(settings: Config, verdict: Verdict) -> str:
    return post_to_github(verdict, settings, Redactor(settings.secrets()), policy=FAST)


def test_creates_the_issue_when_missing_then_comments(github: FakeGitHub) -> None:
    settings = make_settings(github)
    done = post(settings, make_verdict(settings, passed=False))

    base = f"/repos/{REPO}/issues"
    assert github.summary() == [("GET", base), ("POST", base), ("POST", f"{base}/1/comments")]
    listing = github.calls[0]
    assert listing.query == {"labels": LABEL, "state": "all", "per_page": "100", "page": "1"}
    created = github.calls[1].body
    assert created["title"] == TITLE
    assert created["labels"] == [LABEL, FAIL_LABEL]
    assert "**Last proven restore:** never" in created["body"]
    comment = github.comments[0][1]
    assert "FAIL" in comment and "smoke/test\\_storage.py" not in comment
    assert "`smoke/test_storage.py::test_sha`" in comment
    for name in CATEGORIES:
        assert f"| {name} |" in comment
    assert done.startswith("issue #1 created, commented, labelled drill:fail")
    for call in github.calls:
        assert call.headers["Authorization"] == f"Bearer {TOKEN}"
        assert call.headers["Accept"] == "application/vnd.github+json"
        assert call.headers["X-Github-Api-Version"] == "2022-11-28"
        assert call.headers["User-Agent"].startswith("pytest-supabase-restore/")
        assert DB_PASSWORD not in json.dumps(call.body)
        assert TOKEN not in json.dumps(call.body)


def test_lifecycle_close_on_pass_reopen_on_fail_and_history(github: FakeGitHub) -> None:
    settings = make_settings(github, github_close_on_pass=True)
    # An unrelated issue with the label and a pull request with the same title are ignored.
    github.add_issue("Something else", [LABEL])
    base = f"/repos/{REPO}/issues"

    post(settings, make_verdict(settings, passed=False, at=T0))
    number = 2
    assert github.issues[number]["title"] == TITLE
    github.issues[number]["labels"].append({"name": "team:db"})  # a label people added

    github.calls.clear()
    pass_time = T0 + timedelta(days=1)
    done = post(settings, make_verdict(settings, passed=True, at=pass_time))
    assert github.summary() == [
        ("GET", base),
        ("POST", f"{base}/{number}/comments"),
        ("PATCH", f"{base}/{number}"),
    ]
    patch = github.calls[-1].body
    assert patch["state"] == "closed" and patch["state_reason"] == "completed"
    assert patch["labels"] == ["team:db", LABEL, PASS_LABEL]
    assert "closed" in done
    assert github.issues[number]["state"] == "closed"

    github.calls.clear()
    done = post(settings, make_verdict(settings, passed=False, at=T0 + timedelta(days=2)))
    patch = github.calls[-1].body
    assert github.calls[-1].method == "PATCH" and patch["state"] == "open"
    assert patch["labels"] == ["team:db", LABEL, FAIL_LABEL]
    assert "reopened" in done

    history = parse_history(github.issues[number]["body"])
    assert [d["status"] for d in history.drills] == ["FAIL", "PASS", "FAIL"]
    assert history.last_proven_restore == pass_time.isoformat(timespec="seconds")
    body = github.issues[number]["body"]
    assert f"**Last proven restore:** {pass_time.isoformat(timespec='seconds')}" in body
    assert "| ✅ PASS | 12.5 s |" in body
    assert len(github.comments) == 3

    # A second FAIL leaves an open issue open: no state change is sent.
    github.calls.clear()
    post(settings, make_verdict(settings, passed=False, at=T0 + timedelta(days=3)))
    assert "state" not in github.calls[-1].body


def test_pass_without_close_on_pass_leaves_the_issue_open(github: FakeGitHub) -> None:
    settings = make_settings(github)
    number = github.add_issue(TITLE, [LABEL, FAIL_LABEL])
    done = post(settings, make_verdict(settings, passed=True))
    patch = github.calls[-1].body
    assert "state" not in patch and patch["labels"] == [LABEL, PASS_LABEL]
    assert github.issues[number]["state"] == "open"
    assert (
        done
        == f"issue #{number} commented, labelled drill:pass (https://github.com/{REPO}/issues/{number})"
    )


def test_a_quick_pass_is_not_the_last_proven_restore(github: FakeGitHub) -> None:
    settings = make_settings(github, github_close_on_pass=True)
    post(settings, make_verdict(settings, passed=True, at=T0))  # a full PASS: proven
    number = 1
    assert github.issues[number]["state"] == "closed"
    post(settings, make_verdict(settings, passed=False, at=T0 + timedelta(days=1)))
    assert github.issues[number]["state"] == "open"

    github.calls.clear()
    quick_time = T0 + timedelta(days=2)
    done = post(settings, make_verdict(settings, passed=True, at=quick_time, quick=True))
    patch = github.calls[-1].body
    # The verdict is a PASS, but a quick check does not close the issue the FAIL reopened.
    assert "state" not in patch and patch["labels"] == [LABEL, PASS_LABEL]
    assert github.issues[number]["state"] == "open"
    assert "closed" not in done
    history = parse_history(github.issues[number]["body"])
    assert [(d["status"], d.get("scope")) for d in history.drills] == [
        ("PASS", "full"),
        ("FAIL", "full"),
        ("PASS", "quick"),
    ]
    assert history.last_proven_restore == T0.isoformat(timespec="seconds")
    body = github.issues[number]["body"]
    assert f"**Last proven restore:** {T0.isoformat(timespec='seconds')}" in body
    assert "| ✅ PASS (quick check) | 12.5 s |" in body
    comment = github.comments[-1][1]
    assert "quick check: 5 checks passed in 5 of 8 categories" in comment
    assert "**Scope**: quick check (5 of 8 categories" in comment


def test_history_keeps_the_last_ten_and_survives_a_garbled_body(github: FakeGitHub) -> None:
    settings = make_settings(github)
    number = github.add_issue(TITLE, [LABEL], body="edited by hand <!-- not our marker -->")
    for day in range(HISTORY_LIMIT + 2):
        post(settings, make_verdict(settings, passed=day % 2 == 0, at=T0 + timedelta(days=day)))
    history = parse_history(github.issues[number]["body"])
    assert len(history.drills) == HISTORY_LIMIT
    assert history.drills[-1]["date"] == (T0 + timedelta(days=11)).isoformat(timespec="seconds")
    assert history.last_proven_restore == (T0 + timedelta(days=10)).isoformat(timespec="seconds")
    assert parse_history("<!-- pytest-supabase-restore:history {not json} -->").drills == []


def test_retries_a_503_then_succeeds(github: FakeGitHub) -> None:
    settings = make_settings(github)
    github.failures = [(503, {}, "unavailable")]
    post(settings, make_verdict(settings, passed=True))
    assert github.summary()[:2] == [("GET", f"/repos/{REPO}/issues")] * 2
    assert len(github.comments) == 1


def test_secondary_rate_limit_waits_for_retry_after(github: FakeGitHub) -> None:
    settings = make_settings(github)
    message = json.dumps({"message": "You have exceeded a secondary rate limit."})
    github.failures = [(403, {"Retry-After": "1"}, message)]
    start = time.monotonic()
    post(settings, make_verdict(settings, passed=True))
    assert time.monotonic() - start >= 1.0
    assert len(github.comments) == 1


def test_exhausted_primary_rate_limit_gives_up_at_once(github: FakeGitHub) -> None:
    settings = make_settings(github)
    reset = str(int(time.time()) + 3600)
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
    github.failures = [(403, headers, json.dumps({"message": "API rate limit exceeded"}))]
    start = time.monotonic()
    with pytest.raises(HttpError, match="rate limit resets at") as info:
        post(settings, make_verdict(settings, passed=True))
    assert time.monotonic() - start < 1.0  # the hour-long wait did not fit: no sleep
    assert len(github.calls) == 1
    assert TOKEN not in str(info.value)


def test_always_500_is_bounded_and_says_what_it_tried(github: FakeGitHub) -> None:
    settings = make_settings(github)
    github.failures = [(500, {}, "oops")] * 10
    start = time.monotonic()
    with pytest.raises(HttpError) as info:
        post(settings, make_verdict(settings, passed=True))
    assert time.monotonic() - start < FAST.total_seconds
    assert len(github.calls) == FAST.attempts
    text = str(info.value)
    assert f"GitHub GET /repos/{REPO}/issues: gave up after 4 attempts" in text
    assert "HTTP 500" in text and TOKEN not in text


def test_client_errors_are_not_retried(github: FakeGitHub) -> None:
    settings = make_settings(github, github_token="SECRET-wrong-token-9999")
    with pytest.raises(HttpError, match=r"HTTP 401: Bad credentials.*issues: write") as info:
        post(settings, make_verdict(settings, passed=True))
    assert len(github.calls) == 1 and info.value.status == 401
    assert "SECRET-wrong-token-9999" not in str(info.value)


def test_connection_errors_are_retried_then_reported() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    policy = RetryPolicy(attempts=3, base_delay=0.05, max_delay=0.1, total_seconds=5, timeout=2)
    with pytest.raises(HttpError, match=r"gave up after 3 attempts.*connection failed"):
        request_json("GET", f"http://127.0.0.1:{port}/x", label="probe", policy=policy)


def test_retry_after_beyond_the_time_bound_gives_up_without_sleeping(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request("/slow").respond_with_data("", 503, {"Retry-After": "3600"})
    slept: list[float] = []
    with pytest.raises(HttpError, match="would exceed the time bound"):
        request_json(
            "GET", httpserver.url_for("/slow"), label="probe", policy=FAST, sleep=slept.append
        )
    assert slept == []


def test_bad_repository_setting_is_reported(github: FakeGitHub) -> None:
    settings = make_settings(github, github_repository="not-a-repo")
    with pytest.raises(HttpError, match="owner/name"):
        post(settings, make_verdict(settings, passed=True))
    assert github.calls == []


def test_retry_after_may_be_an_http_date(httpserver: HTTPServer) -> None:
    past = "Wed, 21 Oct 2015 07:28:00 GMT"
    httpserver.expect_ordered_request("/dated").respond_with_data("", 429, {"Retry-After": past})
    httpserver.expect_ordered_request("/dated").respond_with_json({"ok": True})
    slept: list[float] = []
    response = request_json(
        "GET", httpserver.url_for("/dated"), label="probe", policy=FAST, sleep=slept.append
    )
    assert response.json() == {"ok": True}
    assert slept == [0.0]  # a date in the past: retry at once
