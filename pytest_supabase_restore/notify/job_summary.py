"""The verdict as GitHub-flavoured Markdown: the Actions job summary and the issue comment."""

from __future__ import annotations

import html
import os
from pathlib import Path

from ..verdict import Verdict, platform_lines
from ..verdict_text import backup_line, format_seconds, rpo_line, scope_line

# GitHub rejects a step summary over 1 MiB; stay well below it.
STEP_SUMMARY_LIMIT = 1_000_000
_ICONS = {"PASS": "✅", "FAIL": "❌", "NOT RUN": "⚠️", "-": "—"}


def md(text: object) -> str:
    """Text made inert in Markdown: no HTML, no table breaks, no emphasis or links."""
    escaped = html.escape(str(text), quote=False)
    # "_" stays: GitHub does not emphasise inside words, and names like data_integrity
    # should read (and search) as they are.
    for char in "\\|*[]`#":
        escaped = escaped.replace(char, "\\" + char)
    return " ".join(escaped.split())


def code(text: object) -> str:
    """``text`` as an inline code span (backticks inside are replaced)."""
    return "`" + " ".join(str(text).replace("`", "'").split()).replace("|", "\\|") + "`"


def status_badge(status: str) -> str:
    """``✅ PASS`` / ``❌ FAIL``."""
    return f"{_ICONS.get(status, '')} {status}".strip()


def markdown(
    verdict: Verdict,
    *,
    heading: str = "##",
    max_failures: int = 50,
    statements_per_cause: int = 10,
    statement_limit: int = 1000,
    rest_in: str = "",
) -> str:
    """The verdict as Markdown: headline, category table, RTO/RPO, failures, restore errors
    (every cause, with up to ``statements_per_cause`` statements, each within
    ``statement_limit`` characters), not tested. ``rest_in`` names where what is cut short is
    in full (``the JSON summary``, when one is written); nothing is named otherwise."""
    more = f" (see {rest_in})" if rest_in else ""
    lines = [
        f"{heading} {status_badge(verdict.status)}: Supabase backup restore drill",
        "",
        f"**{md(verdict.reason)}**",
        "",
        "| Category | Result | Passed | Failed | Skipped | Errors |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for name, c in verdict.categories.items():
        result = status_badge(verdict.category_result(name))
        lines.append(
            f"| {md(name)} | {result} | {c.passed} | {c.failed} | {c.skipped + c.xfail} "
            f"| {c.errors} |"
        )
    lines.append("")
    rto = format_seconds(verdict.rto_seconds)
    if verdict.rto_budget_seconds is not None:
        rto += f" (budget {format_seconds(verdict.rto_budget_seconds)})"
    facts = [
        f"- **RTO** (restore time): {md(rto)}",
        f"- **RPO** (recovery point): {md(rpo_line(verdict))}",
        f"- **Backup**: {md(backup_line(verdict))}",
        f"- **Staging**: {md(verdict.staging or 'n/a')}"
        + (f" ({md(verdict.staging_label)})" if verdict.staging_label else "")
        + f", mode {md(verdict.mode)}",
        f"- **Scope**: {md(scope_line(verdict))}",
    ]
    if verdict.phases:
        phases = ", ".join(f"{md(k)} {format_seconds(v)}" for k, v in verdict.phases.items())
        facts.append(f"- **Phases**: {phases}")
    versions = ", ".join(f"{md(k)} {md(v)}" for k, v in verdict.versions.items() if v)
    facts.append(f"- **Versions**: {versions}")
    lines.extend(facts)
    lines.append("")
    lines += _platform_markdown(verdict)

    lines += restore_errors_markdown(verdict, statements_per_cause, statement_limit, more)
    if verdict.failures:
        total = len(verdict.failures) + verdict.failures_omitted
        lines += ["<details open>", f"<summary>❌ {total} failure{'s' * (total != 1)}</summary>"]
        lines.append("")
        for failure in verdict.failures[:max_failures]:
            lines.append(f"- {code(failure.test)} ({md(failure.category)}): {md(failure.message)}")
        hidden = total - min(len(verdict.failures), max_failures)
        if hidden > 0:
            lines.append(f"- … and {hidden} more{more}")
        lines += ["", "</details>", ""]
    if len(verdict.reasons) > 1:  # one reason is already the headline
        lines += ["<details>", "<summary>Why the drill failed</summary>", ""]
        lines += [f"- {md(r)}" for r in verdict.reasons]
        lines += ["", "</details>", ""]
    if verdict.not_tested or verdict.not_restorable:
        n = len(verdict.not_tested) + len(verdict.not_restorable)
        lines += ["<details>", f"<summary>Not tested ({n})</summary>", ""]
        lines += [f"- {md(t)}" for t in verdict.not_tested]
        lines += [f"- not restorable here: {md(t)}" for t in verdict.not_restorable]
        lines += ["", "</details>", ""]
    if verdict.self_test is not None:
        lines += [f"- **Self-test**: {md(verdict.self_test)}", ""]
    footer = f"Generated {md(verdict.generated_at)} by pytest-supabase-restore"
    if verdict.run_url:
        footer += f" · [workflow run]({verdict.run_url})"
    lines.append(footer)
    return "\n".join(lines) + "\n"


def _platform_markdown(verdict: Verdict) -> list[str]:
    """The platform's own backups (only with SUPABASE_ACCESS_TOKEN)."""
    lines = platform_lines(verdict)
    if not lines:
        return []
    return ["**Platform backups**", "", *(f"- {md(line)}" for line in lines), ""]


def restore_errors_markdown(
    verdict: Verdict, per_cause: int, limit: int, more: str = ""
) -> list[str]:
    """The unexpected restore errors: a collapsible list of causes with their counts, each
    with its first ``per_cause`` statements as code (redacted, shortened in the middle)."""
    if not verdict.restore_errors:
        return []
    from ..redact import shorten
    from ..restore_report import heading

    lines = ["<details open>", f"<summary>❌ {md(heading(verdict.restore_errors))}</summary>", ""]
    for group in verdict.restore_errors:
        noun = "statement" if group.count == 1 else "statements"
        lines.append(f"- **{md(group.cause)}**: {group.count} {noun}")
        for statement in group.statements[:per_cause]:
            lines.append(f"  - {code(shorten(statement, limit, middle=True))}")
        hidden = group.count - min(per_cause, len(group.statements))
        if hidden > 0:
            lines.append(f"  - … and {hidden} more{more}")
    return [*lines, "", "</details>", ""]


def append_job_summary(path: str | os.PathLike[str], text: str) -> None:
    """Append ``text`` to the Actions step summary file, cut to GitHub's size limit.

    ``text`` must be redacted already: it is cut here, and a cut through a secret would
    leave a prefix no rule matches."""
    target = Path(path)
    existing = target.stat().st_size if target.exists() else 0
    data = text.encode("utf-8")
    room = STEP_SUMMARY_LIMIT - existing
    if len(data) > room:
        note = b"\n\n*(summary truncated: over GitHub's step summary limit)*\n"
        data = data[: max(0, room - len(note))].decode("utf-8", "ignore").encode() + note
    with target.open("ab") as fh:
        if existing:
            fh.write(b"\n")
        fh.write(data)
