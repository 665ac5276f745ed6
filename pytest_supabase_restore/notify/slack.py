"""Post the verdict to a Slack incoming webhook, as Block Kit with a plain-text fallback.

The webhook URL is the secret: it is never shown, not even in errors.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..redact import Redactor
from ..verdict import Verdict, backup_line, category_status, format_seconds, rpo_line, scope_line
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


def slack_payload(verdict: Verdict, redactor: Redactor, max_failures: int = MAX_FAILURES) -> Any:
    """The webhook payload: header, reason, category fields, RTO/RPO, failures, run link.

    Every text is redacted before it is escaped (escaping ``&`` or ``<`` inside a secret
    would hide it from the redactor) and before it is cut to Slack's limits (a cut
    through a secret would leave a prefix no rule matches)."""
    icon = _ICONS.get(verdict.status, "")

    def esc(text: object) -> str:
        return escape(redactor.redact(str(text)))

    def cut(text: str, limit: int) -> str:
        return redactor.shorten(text, limit)

    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": cut(f"{verdict.status}: Supabase backup restore drill", 150),
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": cut(f"{icon} *{verdict.status}*: {esc(verdict.reason)}", _TEXT_LIMIT),
            },
        },
    ]
    fields = []
    for name, c in verdict.categories.items():
        status = category_status(c, verdict.dry_run, name not in verdict.not_selected)
        fields.append(
            {
                "type": "mrkdwn",
                "text": f"*{esc(name)}*\n{_ICONS.get(status, '')} {status}: {c.passed} passed"
                + (f", {c.failed} failed" if c.failed else "")
                + (f", {c.errors} errors" if c.errors else "")
                + (f", {c.skipped + c.xfail} skipped" if c.skipped + c.xfail else ""),
            }
        )
    for start in range(0, len(fields), _FIELDS_PER_SECTION):
        blocks.append({"type": "section", "fields": fields[start : start + _FIELDS_PER_SECTION]})
    rto = format_seconds(verdict.rto_seconds)
    if verdict.rto_budget_seconds is not None:
        rto += f" (budget {format_seconds(verdict.rto_budget_seconds)})"
    blocks.append(
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*RTO*\n{esc(rto)}"},
                {"type": "mrkdwn", "text": f"*RPO*\n{esc(rpo_line(verdict))}"},
                {"type": "mrkdwn", "text": f"*Backup*\n{esc(backup_line(verdict))}"},
                {
                    "type": "mrkdwn",
                    "text": f"*Staging*\n{esc(verdict.staging or 'n/a')} ({esc(verdict.mode)})",
                },
                {"type": "mrkdwn", "text": f"*Scope*\n{esc(scope_line(verdict))}"},
            ],
        }
    )
    if verdict.restore_errors:
        from ..restore_report import heading

        lines = []
        for group in verdict.restore_errors:
            lines.append(f"• {esc(group.cause)}: {group.count} statement{'s' * (group.count != 1)}")
            if group.statements:  # the first, shortened in the middle (after redaction)
                first = redactor.shorten(group.statements[0], 200, middle=True)
                lines.append(f"    `{_code(first)}`")
        text = f"*{esc(heading(verdict.restore_errors))}*\n" + "\n".join(lines)
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, _TEXT_LIMIT)}}
        )
    if verdict.failures:
        total = len(verdict.failures) + verdict.failures_omitted
        shown = verdict.failures[:max_failures]
        lines = [
            f"• `{_code(redactor.redact(f.test))}` ({esc(f.category)}): {esc(f.message)}"
            for f in shown
        ]
        if total > len(shown):
            lines.append(f"… and {total - len(shown)} more")
        text = f"*{total} failure{'s' * (total != 1)}*\n" + "\n".join(lines)
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, _TEXT_LIMIT)}}
        )
    if verdict.not_tested:
        text = "*Not tested:* " + "; ".join(esc(t) for t in verdict.not_tested)
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": cut(text, _TEXT_LIMIT)}]}
        )
    if verdict.run_url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "View run"},
                        "url": verdict.run_url,
                    }
                ],
            }
        )
    payload = {"text": cut(fallback_text(verdict), _TEXT_LIMIT), "blocks": blocks}
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
