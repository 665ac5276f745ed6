"""The Management API client and the platform's backup health, against a local stand-in
for the Supabase platform (tests/platform_standin.py): the real API cannot be reached here."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from platform_standin import REF, TOKEN, backups_answer, standin_platform

from pytest_supabase_restore.config import Config
from pytest_supabase_restore.connections import Connection
from pytest_supabase_restore.management import ManagementApi, ManagementApiError
from pytest_supabase_restore.notify.html import summary_html as verdict_html
from pytest_supabase_restore.notify.http import RetryPolicy
from pytest_supabase_restore.notify.job_summary import markdown
from pytest_supabase_restore.notify.slack import slack_payload
from pytest_supabase_restore.platform_health import read_health
from pytest_supabase_restore.redact import Redactor
from pytest_supabase_restore.results import DrillState
from pytest_supabase_restore.verdict import build_verdict, platform_lines

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, total_seconds=5.0, timeout=5.0)
NOW = datetime.now(timezone.utc)


def settings(url: str, max_age: float | None = None, token: str = TOKEN) -> Config:
    return Config(
        enabled=True,
        access_token=token,
        management_api_url=url,
        max_backup_age=max_age,
        source=Connection(api_url=f"https://{REF}.supabase.co"),
    )


def test_backups_are_read_with_the_token_and_retried_past_a_503() -> None:
    """Stands in for the platform: one 503, then GET /v1/projects/{ref}/database/backups."""
    with standin_platform(backups=backups_answer(NOW - timedelta(hours=3), pitr=True)) as api:
        api.fail_first = [503]
        client = ManagementApi(TOKEN, api.url, REF, policy=FAST)
        answer = client.backups()
    assert api.requests == [("GET", f"/v1/projects/{REF}/database/backups")] * 2
    assert api.headers_seen[-1] == f"Bearer {TOKEN}"
    assert answer.pitr_enabled and answer.latest_physical_unix == 1_767_600_000
    assert [b.status for b in answer.backups] == ["COMPLETED", "FAILED"]


def test_an_error_names_the_apis_answer_and_never_the_token() -> None:
    """Stands in for the platform: a wrong token gets 401 {"message": "Unauthorized"}."""
    with standin_platform() as api:
        client = ManagementApi(TOKEN + "x", api.url, REF, policy=FAST)
        with pytest.raises(ManagementApiError) as info:
            client.backups()
    text = str(info.value)
    assert "HTTP 401: Unauthorized" in text and "database/backups" in text
    assert TOKEN not in text and TOKEN not in repr(client)


def test_a_backup_30_hours_old_with_a_26_hour_limit_fails_naming_it() -> None:
    """Stands in for the platform: the newest COMPLETED backup is 30 h old (a newer one
    FAILED, which does not count); --supabase-max-backup-age 26 makes the verdict FAIL
    naming that backup, in the JSON, terminal lines, HTML, Markdown and Slack."""
    thirty = NOW - timedelta(hours=30)
    with standin_platform(backups=backups_answer(NOW - timedelta(hours=80), thirty)) as api:
        config = settings(api.url, max_age=26)
        health = read_health(config, NOW)
    assert health is not None and health.newest_completed_id == 2
    state = DrillState(enabled=True, platform=health)
    verdict = build_verdict([], state, config, NOW)
    assert verdict.status == "FAIL"
    (reason,) = [r for r in verdict.reasons if r.startswith("platform backups")]
    assert "id 2" in reason and "30.0 h old" in reason and "26 h" in reason
    data = verdict.to_json()["platform"]
    assert data["newest_completed_id"] == 2 and data["pitr_enabled"] is False
    lines = platform_lines(verdict)
    assert lines[0].startswith(f"platform backups of {REF}: newest COMPLETED backup")
    assert "PITR off" in lines[0]
    assert any("never contain Storage objects" in line for line in lines)
    redactor = Redactor(config.secrets())
    for rendered in (
        verdict_html(verdict),
        markdown(verdict),
        str(slack_payload(verdict, redactor)),
    ):
        assert "Platform backups" in rendered and "30.0 h old" in rendered
        assert TOKEN not in rendered


def test_a_recent_backup_passes_the_rule_and_pitr_shows_its_window() -> None:
    """Stands in for the platform: a backup 2 h old, PITR on with its physical window."""
    with standin_platform(backups=backups_answer(NOW - timedelta(hours=2), pitr=True)) as api:
        health = read_health(settings(api.url, max_age=26), NOW)
    assert health is not None and health.problems == []
    verdict = build_verdict([], DrillState(enabled=True, platform=health), settings("x"), NOW)
    assert not [r for r in verdict.reasons if r.startswith("platform")]
    assert "PITR on, window 2025-12-29" in platform_lines(verdict)[0]


def test_without_a_token_nothing_is_asked_and_the_verdict_has_no_platform_section() -> None:
    """Stands in for the platform: no token, so the stand-in receives no request."""
    with standin_platform(backups=backups_answer(NOW)) as api:
        health = read_health(settings(api.url, token=""), NOW)
    assert health is None and api.requests == []
    verdict = build_verdict([], DrillState(enabled=True), Config(enabled=True), NOW)
    assert "platform" not in verdict.to_json() and platform_lines(verdict) == []
    assert "Platform backups" not in markdown(verdict) + verdict_html(verdict)


def test_an_unreadable_api_fails_only_when_a_rule_was_asked_for() -> None:
    """Stands in for the platform: every answer is a 500, so the health cannot be read."""
    with standin_platform() as api:
        api.fail_first = [500] * 20
        informative = read_health(settings(api.url), NOW)
        ruled = read_health(settings(api.url, max_age=26), NOW)
    assert informative is not None and informative.error
    verdict = build_verdict([], DrillState(enabled=True, platform=informative), settings("x"), NOW)
    assert not [r for r in verdict.reasons if r.startswith("platform")]
    assert "could not be read" in platform_lines(verdict)[0]
    verdict = build_verdict([], DrillState(enabled=True, platform=ruled), settings("x", 26), NOW)
    assert any(r.startswith("platform backups could not be read") for r in verdict.reasons)


def test_branch_staging_or_an_age_rule_without_a_token_is_a_usage_error() -> None:
    """Checked before anything runs, naming the variable to set (no platform involved)."""
    from pytest_supabase_restore.config import validate

    base = {"enabled": True, "demo": True}
    with pytest.raises(pytest.UsageError, match="needs SUPABASE_ACCESS_TOKEN"):
        validate(Config(staging="branch", **base))  # type: ignore[arg-type]
    with pytest.raises(pytest.UsageError, match="--supabase-max-backup-age needs SUPABASE_ACC"):
        validate(Config(max_backup_age=26.0, **base))  # type: ignore[arg-type]
    with pytest.raises(pytest.UsageError, match="needs the project's ref"):
        validate(Config(staging="branch", access_token=TOKEN, **base))  # type: ignore[arg-type]
    validate(Config(staging="branch", access_token=TOKEN, project_ref=REF, **base))  # type: ignore[arg-type]


def test_the_ref_comes_from_supabase_url_or_the_option_and_the_token_is_a_secret() -> None:
    """No platform involved: how the project ref and the token are resolved."""
    from pytest_supabase_restore.config import project_ref

    config = settings("http://127.0.0.1:1")
    assert project_ref(config) == REF
    assert project_ref(Config(source=Connection(api_url="https://example.com"))) is None
    assert project_ref(Config(project_ref="zyx", source=config.source)) == "zyx"
    assert TOKEN in config.secrets() and TOKEN not in repr(config)
    # A personal access token is masked even where the run was not told about it.
    assert TOKEN not in Redactor([]).redact(f"curl -H 'Authorization: Bearer {TOKEN}'")
