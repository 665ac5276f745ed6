"""Post the verdict to a Slack incoming webhook, as Block Kit with a plain-text fallback.

The webhook URL is the secret: it is never shown, not even in errors.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..redact import Redactor
from ..verdict import Verdict, platform_lines
from ..verdict_text import backup_line, format_seconds, rpo_line, scope_line
from .http import HttpError, RetryPolicy, request_json

MAX_FAILURES = 5
_FIELDS_PER_SECTION = 10  # Slack's limit for section fields
_TEXT_LIMIT = 2900  # section text must stay under 3000 characters
_ICONS = {"PASS": ":white_check_mark:", "FAIL": ":x:", "NOT RUN": ":warning:", "-": ""}


def escape(text: object) -> str:
    """Text made inert in Slack mrkdwn (``&``, ``<`` and ``>`` are its control characters)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    return escape(text).replace("`", "'")


def fallback_text(verdict: Verdict) -> str:
    """The one-line ``text`` Slack shows in notifications and where blocks cannot render."""
    ok = sum(1 for c in verdict.categories.values() if c.ok)
    quick = "quick check, " if verdict.not_selected else ""
    return (
        f"Supabase backup restore drill: {verdict.status}: {verdict.reason} "
        f"({ok}/{len(verdict.categories)} categories passed, {quick}"
        f"RTO {format_seconds(verdict.rto_seconds)})"
    )


def _esc(redactor: Redactor, text: object) -> str:
    """Redacted, then escaped (escaping first could hide a secret from the redactor)."""
    return escape(redactor.redact(str(text)))


def _mrkdwn_section(redactor: Redactor, text: str) -> dict[str, Any]:
    """A section of one mrkdwn text, cut to Slack's limit."""
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": redactor.shorten(text, _TEXT_LIMIT)},
    }


def _heading_blocks(verdict: Verdict, redactor: Redactor) -> list[dict[str, Any]]:
    """The header and the reason."""
    icon = _ICONS.get(verdict.status, "")
    return [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": redactor.shorten(f"{verdict.status}: Supabase backup restore drill", 150),
            },
        },
        _mrkdwn_section(redactor, f"{icon} *{verdict.status}*: {_esc(redactor, verdict.reason)}"),
    ]


def _category_blocks(verdict: Verdict, redactor: Redactor) -> list[dict[str, Any]]:
    """A field per category, in as many sections as Slack's field limit asks for."""
    fields = []
    for name, c in verdict.categories.items():
        status = verdict.category_result(name)
        fields.append(
            {
                "type": "mrkdwn",
                "text": f"*{_esc(redactor, name)}*\n{_ICONS.get(status, '')} {status}: "
                f"{c.passed} passed"
                + (f", {c.failed} failed" if c.failed else "")
                + (f", {c.errors} errors" if c.errors else "")
                + (f", {c.skipped + c.xfail} skipped" if c.skipped + c.xfail else ""),
            }
        )
    return [
        {"type": "section", "fields": fields[start : start + _FIELDS_PER_SECTION]}
        for start in range(0, len(fields), _FIELDS_PER_SECTION)
    ]


def _figures_block(verdict: Verdict, redactor: Redactor) -> dict[str, Any]:
    """RTO, RPO, backup, staging and scope."""
    rto = format_seconds(verdict.rto_seconds)
    if verdict.rto_budget_seconds is not None:
        rto += f" (budget {format_seconds(verdict.rto_budget_seconds)})"
    staging = f"{_esc(redactor, verdict.staging or 'n/a')} ({_esc(redactor, verdict.mode)})"
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": f"*RTO*\n{_esc(redactor, rto)}"},
            {"type": "mrkdwn", "text": f"*RPO*\n{_esc(redactor, rpo_line(verdict))}"},
            {"type": "mrkdwn", "text": f"*Backup*\n{_esc(redactor, backup_line(verdict))}"},
            {"type": "mrkdwn", "text": f"*Staging*\n{staging}"},
            {"type": "mrkdwn", "text": f"*Scope*\n{_esc(redactor, scope_line(verdict))}"},
        ],
    }


def _restore_errors_block(verdict: Verdict, redactor: Redactor) -> dict[str, Any]:
    """The unexpected restore errors by cause, each with its first statement."""
    from ..restore_report import heading

    lines = []
    for group in verdict.restore_errors:
        cause = _esc(redactor, group.cause)
        lines.append(f"• {cause}: {group.count} statement{'s' * (group.count != 1)}")
        if group.statements:  # the first, shortened in the middle (after redaction)
            first = redactor.shorten(group.statements[0], 200, middle=True)
            lines.append(f"    `{_code(first)}`")
    text = f"*{_esc(redactor, heading(verdict.restore_errors))}*\n" + "\n".join(lines)
    return _mrkdwn_section(redactor, text)


def _failures_block(verdict: Verdict, redactor: Redactor, max_failures: int) -> dict[str, Any]:
    """The first failures, and how many more there are."""
    total = len(verdict.failures) + verdict.failures_omitted
    shown = verdict.failures[:max_failures]
    lines = [
        f"• `{_code(redactor.redact(f.test))}` ({_esc(redactor, f.category)}): "
        f"{_esc(redactor, f.message)}"
        for f in shown
    ]
    if total > len(shown):
        lines.append(f"… and {total - len(shown)} more")
    text = f"*{total} failure{'s' * (total != 1)}*\n" + "\n".join(lines)
    return _mrkdwn_section(redactor, text)


def _not_tested_block(verdict: Verdict, redactor: Redactor) -> dict[str, Any]:
    """What the drill cannot test, as a context line."""
    text = "*Not tested:* " + "; ".join(_esc(redactor, t) for t in verdict.not_tested)
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": redactor.shorten(text, _TEXT_LIMIT)}],
    }


def _platform_blocks(verdict: Verdict, redactor: Redactor) -> list[dict[str, Any]]:
    """The platform's own backups (only with SUPABASE_ACCESS_TOKEN), as a context line."""
    lines = platform_lines(verdict)
    if not lines:
        return []
    text = "*Platform backups:* " + "; ".join(_esc(redactor, line) for line in lines)
    return [
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": redactor.shorten(text, _TEXT_LIMIT)}],
        }
    ]


def _run_link_block(run_url: str) -> dict[str, Any]:
    """A button to the CI run."""
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "View run"},
                "url": run_url,
            }
        ],
    }


def slack_payload(verdict: Verdict, redactor: Redactor, max_failures: int = MAX_FAILURES) -> Any:
    """The webhook payload: header, reason, category fields, RTO/RPO, failures, run link.

    Every text is redacted before it is escaped (escaping ``&`` or ``<`` inside a secret
    would hide it from the redactor) and before it is cut to Slack's limits (a cut
    through a secret would leave a prefix no rule matches)."""
    blocks = [
        *_heading_blocks(verdict, redactor),
        *_category_blocks(verdict, redactor),
        _figures_block(verdict, redactor),
    ]
    blocks += _platform_blocks(verdict, redactor)
    if verdict.restore_errors:
        blocks.append(_restore_errors_block(verdict, redactor))
    if verdict.failures:
        blocks.append(_failures_block(verdict, redactor, max_failures))
    if verdict.not_tested:
        blocks.append(_not_tested_block(verdict, redactor))
    if verdict.run_url:
        blocks.append(_run_link_block(verdict.run_url))
    payload = {"text": redactor.shorten(fallback_text(verdict), _TEXT_LIMIT), "blocks": blocks}
    # Everything above is redacted already; once more over the whole, for what was not.
    return redactor.redact_obj(payload)


def post_to_slack(
    verdict: Verdict,
    webhook_url: str,
    redactor: Redactor,
    *,
    policy: RetryPolicy | None = None,
) -> str:
    """Post the verdict to the webhook; returns what was done. Raises :class:`HttpError`."""
    try:
        request_json(
            "POST",
            webhook_url,
            label="Slack webhook",
            payload=slack_payload(verdict, redactor),
            policy=policy,
        )
    except HttpError as exc:
        # The webhook URL is itself the secret, and its path is the secret part of it (an
        # error body may echo the path alone).
        path = urlsplit(webhook_url).path
        hidden = redactor.with_secrets([webhook_url, path, path.strip("/")])
        raise HttpError(hidden.redact(str(exc)), exc.status) from None
    return "posted to Slack"
