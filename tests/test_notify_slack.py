"""Slack: the Block Kit payload and posting to a real HTTP server standing in for a webhook."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pytest_supabase_restore import CATEGORIES
from pytest_supabase_restore.config import Config
from pytest_supabase_restore.connections import Connection
from pytest_supabase_restore.notify.http import HttpError, RetryPolicy
from pytest_supabase_restore.notify.slack import MAX_FAILURES, post_to_slack, slack_payload
from pytest_supabase_restore.redact import Redactor
from pytest_supabase_restore.results import BackupSizes, DrillState
from pytest_supabase_restore.verdict import CheckOutcome, Verdict, build_verdict

HOOK_PATH = "/services/T000/B000/SECRETHOOK3333"
SERVICE_KEY = "SECRET-service-role-key-0815"
FAST = RetryPolicy(attempts=3, base_delay=0.05, max_delay=0.1, total_seconds=5.0, timeout=5.0)
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
ENV = {
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/shop",
    "GITHUB_RUN_ID": "42",
}


def verdict_with(failures: int, webhook: str = "") -> tuple[Verdict, Redactor]:
    settings = Config(
        enabled=True,
        slack=True,
        slack_webhook_url=webhook or None,
        source=Connection(service_role_key=SERVICE_KEY),
    )
    state = DrillState(
        enabled=True,
        rto_seconds=75.0,
        snapshot_time="2025-03-01T11:00:00+00:00",
        staging_kind="ephemeral",
        not_tested=["realtime: not part of a database backup"],
        backup=BackupSizes(tables=3, rows=1200, db_bytes=5_000_000),
    )
    outcomes = [CheckOutcome(f"smoke/test_{c}.py::test_ok", c, "passed") for c in CATEGORIES]
    outcomes += [
        CheckOutcome(
            f"smoke/test_data_integrity.py::test_fp[t{i}]",
            "data_integrity",
            "failed",
            [f"fingerprint of <public.t{i}> & friends differs (key {SERVICE_KEY})"],
        )
        for i in range(failures)
    ]
    return build_verdict(outcomes, state, settings, NOW, env=ENV), Redactor(settings.secrets())


def texts(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False)


def test_payload_has_header_fields_rto_rpo_failures_link_and_fallback() -> None:
    verdict, redactor = verdict_with(failures=MAX_FAILURES + 2)
    payload = slack_payload(verdict, redactor)
    blocks = payload["blocks"]
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "FAIL: Supabase backup restore drill"},
    }
    assert payload["text"].startswith("Supabase backup restore drill: FAIL: ")
    assert "7/8 categories passed" in payload["text"] and "RTO 1 min 15 s" in payload["text"]

    fields = [f["text"] for b in blocks if b["type"] == "section" for f in b.get("fields", [])]
    for name in CATEGORIES:
        assert any(f.startswith(f"*{name}*\n") for f in fields), name
    integrity = next(f for f in fields if f.startswith("*data_integrity*"))
    assert "FAIL: 1 passed, 7 failed" in integrity
    assert any(f.startswith("*RTO*\n1 min 15 s") for f in fields)
    assert any(
        f.startswith("*RPO*\nsnapshot 2025-03-01T11:00:00+00:00 (1 h 00 min old)") for f in fields
    )
    assert any("3 tables, 1,200 rows, 5.0 MB database" in f for f in fields)
    assert all(len(b.get("fields", [])) <= 10 for b in blocks)

    failures = next(
        b["text"]["text"]
        for b in blocks
        if b["type"] == "section" and "failures*" in b.get("text", {}).get("text", "")
    )
    assert failures.startswith(f"*{MAX_FAILURES + 2} failures*")
    assert failures.count("• ") == MAX_FAILURES and "… and 2 more" in failures
    # Slack's control characters are escaped; secrets are gone.
    assert "&lt;public.t0&gt; &amp; friends" in failures
    assert SERVICE_KEY not in texts(payload) and "***" in failures

    context = next(b for b in blocks if b["type"] == "context")
    assert "realtime: not part of a database backup" in context["elements"][0]["text"]
    actions = next(b for b in blocks if b["type"] == "actions")
    assert actions["elements"][0]["url"] == "https://github.com/acme/shop/actions/runs/42"


def test_passing_payload_has_no_failures_block() -> None:
    verdict, redactor = verdict_with(failures=0)
    payload = slack_payload(verdict, redactor)
    assert payload["blocks"][0]["text"]["text"] == "PASS: Supabase backup restore drill"
    assert ":white_check_mark: *PASS*" in payload["blocks"][1]["text"]["text"]
    assert "failures*" not in texts(payload)


def test_posts_once_with_the_payload(httpserver: HTTPServer) -> None:
    url = httpserver.url_for(HOOK_PATH)
    verdict, redactor = verdict_with(failures=1, webhook=url)
    httpserver.expect_oneshot_request(HOOK_PATH, method="POST").respond_with_data("ok")
    assert post_to_slack(verdict, url, redactor, policy=FAST) == "posted to Slack"
    httpserver.check_assertions()
    ((request, _),) = httpserver.log
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.get_json() == slack_payload(verdict, redactor)


def test_retries_503_then_succeeds(httpserver: HTTPServer) -> None:
    url = httpserver.url_for(HOOK_PATH)
    verdict, redactor = verdict_with(failures=0, webhook=url)
    httpserver.expect_ordered_request(HOOK_PATH, method="POST").respond_with_data("", 503)
    httpserver.expect_ordered_request(HOOK_PATH, method="POST").respond_with_data("ok")
    post_to_slack(verdict, url, redactor, policy=FAST)
    httpserver.check_assertions()
    assert len(httpserver.log) == 2


def test_429_honours_retry_after(httpserver: HTTPServer) -> None:
    url = httpserver.url_for(HOOK_PATH)
    verdict, redactor = verdict_with(failures=0, webhook=url)
    httpserver.expect_ordered_request(HOOK_PATH, method="POST").respond_with_data(
        "rate_limited", 429, {"Retry-After": "1"}
    )
    httpserver.expect_ordered_request(HOOK_PATH, method="POST").respond_with_data("ok")
    start = time.monotonic()
    post_to_slack(verdict, url, redactor, policy=FAST)
    assert time.monotonic() - start >= 1.0
    assert len(httpserver.log) == 2


def test_always_500_gives_up_bounded_and_never_shows_the_webhook(
    httpserver: HTTPServer,
) -> None:
    url = httpserver.url_for(HOOK_PATH)
    verdict, redactor = verdict_with(failures=0, webhook=url)
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("boom", 500)
    start = time.monotonic()
    with pytest.raises(HttpError) as info:
        post_to_slack(verdict, url, redactor, policy=FAST)
    assert time.monotonic() - start < FAST.total_seconds
    assert len(httpserver.log) == FAST.attempts
    message = str(info.value)
    assert message.startswith("Slack webhook: gave up after 3 attempts")
    assert "SECRETHOOK3333" not in message and "T000" not in message


def test_a_gone_webhook_fails_at_once_without_showing_it(httpserver: HTTPServer) -> None:
    url = httpserver.url_for(HOOK_PATH)
    verdict, redactor = verdict_with(failures=0, webhook=url)

    def gone(request: Request) -> Response:
        # Echo the path back, as some proxies do: the error must still not carry it.
        return Response(f"no_service {request.path}", status=404)

    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_handler(gone)
    with pytest.raises(HttpError, match="Slack webhook: HTTP 404: no_service") as info:
        post_to_slack(verdict, url, redactor, policy=FAST)
    assert len(httpserver.log) == 1 and info.value.status == 404
    assert "SECRETHOOK3333" not in str(info.value)
