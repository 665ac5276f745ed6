"""Notification checks: the GitHub token reads the repository and may write its issues (one
GET, nothing posted); the Slack webhook URL is well-formed (nothing is sent in a dry run)."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..config import Config
from .model import FAIL, PASS, Check


def notify_checks(settings: Config) -> list[Check]:
    checks = []
    if settings.github_issue:
        checks.append(github_check(settings))
    if settings.slack:
        checks.append(slack_check(settings.slack_webhook_url))
    return checks


def github_check(settings: Config) -> Check:
    from ..notify.github import _GitHub
    from ..notify.http import HttpError, RetryPolicy

    try:
        # A dropped connection is tried again; a 4xx answer is not (nothing is written).
        gh = _GitHub(settings, RetryPolicy(attempts=3, base_delay=0.2, total_seconds=20))
        repo = gh.call("GET", "").json()
    except HttpError as exc:
        return Check(
            "github",
            FAIL,
            str(exc),
            "set GITHUB_TOKEN (with issues: write) and GITHUB_REPOSITORY=owner/name",
        )
    if not isinstance(repo, dict):
        return Check("github", FAIL, "the repository request did not return an object")
    if repo.get("has_issues") is False:
        return Check(
            "github",
            FAIL,
            f"{settings.github_repository} has issues turned off",
            "turn on Issues in the repository's settings",
        )
    perms = repo.get("permissions")
    # Present for user tokens; an Actions GITHUB_TOKEN's repository answer has none.
    if isinstance(perms, dict) and not (perms.get("triage") or perms.get("push")):
        return Check(
            "github",
            FAIL,
            f"the token can read {settings.github_repository} but not write its issues",
            "give the token issues: write (workflow: permissions: issues: write)",
        )
    return Check("github", PASS, f"the token reads {settings.github_repository}")


def slack_check(url: str | None) -> Check:
    if not url:
        return Check("slack", FAIL, "SLACK_WEBHOOK_URL is not set", "set SLACK_WEBHOOK_URL")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or not parts.path.strip("/"):
        return Check(
            "slack",
            FAIL,
            "SLACK_WEBHOOK_URL is not a webhook URL (https://hooks.slack.com/services/...)",
            "copy the Incoming Webhook URL from the Slack app's settings",
        )
    return Check("slack", PASS, f"webhook URL on {parts.hostname} is well-formed (nothing sent)")
