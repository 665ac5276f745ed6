"""Post the verdict to one tracking issue per project on GitHub.

The issue is found by the label ``backup-drill`` and its title (so renaming the title in
settings starts a new issue). Each run:

* creates the issue if there is none;
* adds a comment with the verdict;
* rewrites the issue body: the latest verdict, the date of the last proven restore and a
  short history of the last drills. The history is kept in the body itself, as JSON in an
  HTML comment, and parsed back on the next run, so no other storage is needed. Only a full
  PASS proves a restore: a quick check's PASS (``--supabase-quick``) does not move the date;
* sets the labels ``backup-drill`` and ``drill:pass``/``drill:fail`` (other labels stay);
* reopens the issue on FAIL, and closes it on a full PASS when ``github_close_on_pass`` is
  set.

Needs a token allowed to write issues (in Actions: ``permissions: issues: write``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from .. import __version__
from ..config import Config
from ..redact import Redactor
from ..verdict import Verdict
from ..verdict_text import QUICK, format_seconds
from .http import HttpError, Response, RetryPolicy, request_json
from .job_summary import code, markdown, md, status_badge

LABEL = "backup-drill"
PASS_LABEL = "drill:pass"  # noqa: S105 (a label, not a password)
FAIL_LABEL = "drill:fail"
HISTORY_LIMIT = 10
PLATFORM_FACTS = ("pitr_enabled", "pitr_earliest", "pitr_latest")
COMMENT_LIMIT = 60_000  # GitHub rejects bodies over 65,536 characters
_PAGES = 10
_MARKER = "pytest-supabase-restore:history"
_SAFE_URL = re.compile(r"https?://[^\s()<>\[\]]+")
_HISTORY_RE = re.compile(r"<!--\s*" + re.escape(_MARKER) + r"\s*(\{.*?\})\s*-->", re.DOTALL)


@dataclass
class History:
    """What the issue body remembers between runs."""

    drills: list[dict[str, Any]]
    last_proven_restore: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"v": 1, "last_proven_restore": self.last_proven_restore, "drills": self.drills}


def parse_history(body: str | None) -> History:
    """The history stored in an issue body; empty when missing or unreadable."""
    match = _HISTORY_RE.search(body or "")
    if not match:
        return History(drills=[])
    try:
        data = json.loads(match.group(1))
    except ValueError:
        return History(drills=[])
    if not isinstance(data, dict):
        return History(drills=[])
    drills = [d for d in data.get("drills", []) if isinstance(d, dict)]
    last = data.get("last_proven_restore")
    return History(drills=drills[-HISTORY_LIMIT:], last_proven_restore=last if last else None)


def updated_history(previous: History, verdict: Verdict) -> History:
    """``previous`` plus this run, cut to the last :data:`HISTORY_LIMIT` drills."""
    entry: dict[str, Any] = {
        "date": verdict.generated_at,
        "status": verdict.status,
        "rto_seconds": verdict.rto_seconds,
        "run_url": verdict.run_url,
        "scope": verdict.scope,
    }
    platform = verdict.platform or {}
    if isinstance(platform.get("pitr_enabled"), bool):
        # What the next drill compares with: PITR on or off, and its window.
        entry["platform"] = {k: platform.get(k) for k in PLATFORM_FACTS}
    drills = [*previous.drills, entry][-HISTORY_LIMIT:]
    proven = previous.last_proven_restore
    if verdict.proven:
        proven = verdict.generated_at
    return History(drills=drills, last_proven_restore=proven)


def render_body(verdict: Verdict, history: History, repository: str) -> str:
    """The issue body: latest verdict, last proven restore, recent drills, stored history."""
    proven = md(history.last_proven_restore) if history.last_proven_restore else "never"
    latest = f"{status_badge(verdict.status)}: {md(verdict.reason)} ({md(verdict.generated_at)})"
    if verdict.run_url:
        latest += f" · [run]({verdict.run_url})"
    lines = [
        f"This issue tracks the backup restore drill of {code(repository)}. "
        "It is maintained by pytest-supabase-restore: the body is rewritten after every "
        "drill and each drill adds a comment.",
        "",
        f"**Latest drill:** {latest}",
        "",
        f"**Last proven restore:** {proven}",
        "",
        f"### Last {HISTORY_LIMIT} drills",
        "",
        "| Date | Verdict | RTO | Run |",
        "|---|---|--:|---|",
    ]
    for drill in reversed(history.drills):
        rto = drill.get("rto_seconds")
        link = drill.get("run_url")
        run = f"[run]({link})" if isinstance(link, str) and _SAFE_URL.fullmatch(link) else ""
        quick = " (quick check)" if drill.get("scope") == QUICK else ""
        lines.append(
            f"| {md(drill.get('date', '?'))} | {status_badge(str(drill.get('status', '?')))}"
            f"{quick} | {format_seconds(rto if isinstance(rto, (int, float)) else None)} | {run} |"
        )
    # "--" would end the HTML comment early; JSON never needs it outside strings.
    stored = json.dumps(history.to_json(), separators=(",", ":")).replace("--", "-\\u002d")
    lines += ["", f"<!-- {_MARKER} {stored} -->", ""]
    return "\n".join(lines)


class _GitHub:
    def __init__(self, settings: Config, policy: RetryPolicy | None) -> None:
        if not settings.github_token or not settings.github_repository:
            raise HttpError("GitHub: GITHUB_TOKEN and GITHUB_REPOSITORY must both be set")
        owner, _, name = settings.github_repository.partition("/")
        if not owner or not name or "/" in name:
            raise HttpError(
                f"GitHub: GITHUB_REPOSITORY must be owner/name (got {settings.github_repository!r})"
            )
        self.base = settings.github_api_url.rstrip("/")
        self.repo_path = f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"
        self.headers = {
            "Authorization": f"Bearer {settings.github_token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": f"pytest-supabase-restore/{__version__}",
        }
        self.policy = policy

    def call(
        self, method: str, path: str, payload: Any = None, query: dict[str, Any] | None = None
    ) -> Response:
        full = self.repo_path + path
        url = self.base + full + (f"?{urlencode(query)}" if query else "")
        return request_json(
            method,
            url,
            label=f"GitHub {method} {full}",
            payload=payload,
            headers=self.headers,
            policy=self.policy,
        )

    def find_issue(self, title: str) -> dict[str, Any] | None:
        matches: list[dict[str, Any]] = []
        for page in range(1, _PAGES + 1):
            query = {"labels": LABEL, "state": "all", "per_page": 100, "page": page}
            items = self.call("GET", "/issues", query=query).json()
            if not isinstance(items, list):
                raise HttpError("GitHub: listing issues did not return a list")
            matches += [
                i
                for i in items
                if isinstance(i, dict) and i.get("title") == title and "pull_request" not in i
            ]
            if len(items) < 100:
                break
        # Several issues with the same title: keep using the oldest, so history stays in one.
        return min(matches, key=lambda i: int(i.get("number", 0))) if matches else None


def _labels(issue: dict[str, Any] | None, verdict: Verdict) -> list[str]:
    current = [
        str(label.get("name") if isinstance(label, dict) else label)
        for label in (issue or {}).get("labels", [])
    ]
    keep = [name for name in current if name not in (LABEL, PASS_LABEL, FAIL_LABEL)]
    return [*keep, LABEL, PASS_LABEL if verdict.passed else FAIL_LABEL]


def previous_platform(
    settings: Config, *, policy: RetryPolicy | None = None
) -> tuple[str, dict[str, Any]] | None:
    """The date and platform facts (:data:`PLATFORM_FACTS`) of the newest drill in the
    tracking issue's history that recorded them; None without such a drill. Raises
    :class:`HttpError` when GitHub cannot be read."""
    gh = _GitHub(settings, policy)
    issue = gh.find_issue(settings.github_issue_title)
    if issue is None:
        return None
    for drill in reversed(parse_history(issue.get("body")).drills):
        platform = drill.get("platform")
        if isinstance(platform, dict) and isinstance(platform.get("pitr_enabled"), bool):
            return str(drill.get("date") or "?"), platform
    return None


def post_to_github(
    verdict: Verdict,
    settings: Config,
    redactor: Redactor,
    *,
    policy: RetryPolicy | None = None,
) -> str:
    """Update the tracking issue with this verdict; returns what was done, for the terminal.

    Raises :class:`HttpError` (message already redacted) when GitHub cannot be updated.
    """
    try:
        return _post(verdict, settings, redactor, policy)
    except HttpError as exc:
        message = str(exc)
        if exc.status in (401, 403, 404):
            message += (
                f" (check that GITHUB_TOKEN may read and write issues of "
                f"{settings.github_repository}: in Actions, 'permissions: issues: write')"
            )
        raise HttpError(redactor.redact(message), exc.status) from None


def _post(
    verdict: Verdict, settings: Config, redactor: Redactor, policy: RetryPolicy | None
) -> str:
    gh = _GitHub(settings, policy)
    repository = settings.github_repository or ""
    title = settings.github_issue_title
    issue = gh.find_issue(title)
    history = updated_history(parse_history(issue.get("body") if issue else None), verdict)
    body = redactor.redact(render_body(verdict, history, repository))
    labels = _labels(issue, verdict)
    actions: list[str] = []

    if issue is None:
        created = gh.call(
            "POST", "/issues", {"title": title, "body": body, "labels": labels}
        ).json()
        issue = created if isinstance(created, dict) else {}
        number = issue.get("number")
        if not isinstance(number, int):
            raise HttpError("GitHub: creating the tracking issue returned no issue number")
        actions.append("created")
        state = str(issue.get("state", "open"))
        patch: dict[str, Any] = {}
    else:
        number = int(issue["number"])
        state = str(issue.get("state", "open"))
        patch = {"body": body, "labels": labels}

    # Redacted before it is cut: a cut through a secret would leave a prefix no rule matches.
    comment = redactor.redact(
        markdown(
            verdict,
            heading="###",
            statements_per_cause=3,
            statement_limit=300,
            rest_in="the JSON summary" if settings.summary_json else "",
        )
    )
    if len(comment) > COMMENT_LIMIT:
        comment = redactor.shorten(comment, COMMENT_LIMIT) + (
            "\n\n*(truncated; see the JSON summary)*\n"
            if settings.summary_json
            else "\n\n*(truncated)*\n"
        )
    gh.call("POST", f"/issues/{number}/comments", {"body": comment})
    actions.append("commented")

    if not verdict.passed and state == "closed":
        patch["state"] = "open"
        actions.append("reopened")
    elif verdict.proven and settings.github_close_on_pass and state != "closed":
        patch["state"] = "closed"
        patch["state_reason"] = "completed"
        actions.append("closed")
    if patch:
        gh.call("PATCH", f"/issues/{number}", patch)
    actions.append("labelled " + labels[-1])
    url = issue.get("html_url")
    where = f" ({url})" if isinstance(url, str) else ""
    return redactor.redact(f"issue #{number} {', '.join(actions)}{where}")
