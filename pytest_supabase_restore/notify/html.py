"""The verdict as an HTML fragment, placed at the top of pytest-html's report.

pytest-html 4 inserts the fragment as is (no escaping of its own), so everything here is
escaped; styles are inline so a self-contained report needs nothing else.
"""

from __future__ import annotations

from html import escape
from typing import Any

import pytest

from ..verdict import Verdict, platform_lines
from ..verdict_text import backup_line, format_seconds, rpo_line, scope_line

_COLOURS = {"PASS": "#1a7f37", "FAIL": "#cf222e", "NOT RUN": "#9a6700", "-": "#57606a"}
_CELL = "padding:2px 10px;border-bottom:1px solid #d0d7de;text-align:left;color:#1f2328"


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _restore_errors_html(verdict: Verdict) -> list[str]:
    """Every unexpected restore error, grouped by cause, each statement in full (as the
    verdict holds it: redacted, long ones shortened in the middle)."""
    if not verdict.restore_errors:
        return []
    from ..restore_report import heading

    parts = [
        f'<h3 style="margin:0.3em 0">Restore errors: {_e(heading(verdict.restore_errors))}</h3>',
        '<ul class="drill-restore-errors" style="margin:0 0 0.8em 1.2em;padding:0">',
    ]
    for group in verdict.restore_errors:
        noun = "statement" if group.count == 1 else "statements"
        parts.append(
            f'<li data-count="{group.count}"><details><summary><b>{_e(group.cause)}</b>: '
            f"{group.count} {noun}</summary>"
        )
        parts += [
            f'<pre style="white-space:pre-wrap;margin:0.2em 0">{_e(stmt)}</pre>'
            for stmt in group.statements
        ]
        parts.append("</details></li>")
    parts.append("</ul>")
    return parts


_BAR_WIDTH = 520  # px for the longest phase
_ROW = 18


def _timeline_svg(phases: dict[str, float]) -> list[str]:
    """The phases as a chart (inline SVG: no script, no network): one bar per phase, its
    length the phase's time, in the order the drill ran them."""
    if not phases:
        return []
    longest = max(phases.values()) or 1.0
    label_width, text_room = 110, 80
    width = label_width + _BAR_WIDTH + text_room
    height = _ROW * len(phases) + 4
    parts = [
        f'<svg class="drill-timeline" role="img" aria-label="drill phases" width="{width}" '
        f'height="{height}" style="display:block;margin:0 0 0.8em 0;font:12px sans-serif">'
    ]
    for i, (name, seconds) in enumerate(phases.items()):
        y = i * _ROW + 2
        bar = max(1.0, _BAR_WIDTH * seconds / longest)
        parts.append(
            f'<g data-phase="{_e(name)}"><text x="{label_width - 6}" y="{y + 12}" '
            f'text-anchor="end" fill="#1f2328">{_e(name)}</text>'
            f'<rect x="{label_width}" y="{y}" width="{bar:.1f}" height="{_ROW - 4}" '
            f'fill="#0969da"><title>{_e(name)}: {_e(format_seconds(seconds))}</title></rect>'
            f'<text x="{label_width + bar + 6:.1f}" y="{y + 12}" fill="#57606a">'
            f"{_e(format_seconds(seconds))}</text></g>"
        )
    parts.append("</svg>")
    return parts


def summary_html(verdict: Verdict) -> str:
    """The drill summary: verdict, categories, RTO/RPO, sizes, failures and not-tested list."""
    colour = _COLOURS.get(verdict.status, "#57606a")
    parts = [
        '<section id="supabase-restore-drill" class="supabase-restore-drill" '
        f'data-verdict="{_e(verdict.status)}" '
        'style="margin:0 0 1.5em 0;padding:0.8em 1em;color:#1f2328;border:2px solid '
        f'{colour};border-radius:6px">',
        f'<h2 style="margin:0 0 0.3em 0">Backup restore drill: '
        f'<span class="drill-verdict" style="color:{colour}">{_e(verdict.status)}</span></h2>',
        f'<p class="drill-reason" style="margin:0 0 0.8em 0">{_e(verdict.reason)}</p>',
        '<table class="drill-categories" style="border-collapse:collapse;margin-bottom:0.8em">',
        "<thead><tr>"
        + "".join(
            f'<th style="{_CELL}">{h}</th>'
            for h in ("Category", "Result", "Passed", "Failed", "Skipped", "Errors")
        )
        + "</tr></thead><tbody>",
    ]
    for name, c in verdict.categories.items():
        status = verdict.category_result(name)
        cells = (
            f'<td style="{_CELL}">{_e(name)}</td>'
            f'<td style="{_CELL};color:{_COLOURS.get(status, "#57606a")};font-weight:bold">'
            f"{_e(status)}</td>"
            + "".join(
                f'<td style="{_CELL}">{n}</td>'
                for n in (c.passed, c.failed, c.skipped + c.xfail, c.errors)
            )
        )
        parts.append(f'<tr data-category="{_e(name)}">{cells}</tr>')
    parts.append("</tbody></table>")

    rto = format_seconds(verdict.rto_seconds)
    if verdict.rto_budget_seconds is not None:
        rto += f" (budget {format_seconds(verdict.rto_budget_seconds)})"
    facts = [
        ("RTO (restore time)", rto),
        ("RPO (recovery point)", rpo_line(verdict)),
        ("Backup", backup_line(verdict)),
        (
            "Staging",
            (verdict.staging or "n/a")
            + (f" ({verdict.staging_label})" if verdict.staging_label else "")
            + f", mode {verdict.mode}",
        ),
        ("Scope", scope_line(verdict)),
    ]
    if verdict.phases:
        facts.append(
            ("Phases", ", ".join(f"{k} {format_seconds(v)}" for k, v in verdict.phases.items()))
        )
    versions = ", ".join(f"{k} {v}" for k, v in verdict.versions.items() if v)
    facts.append(("Versions", versions))
    parts.append('<ul class="drill-facts" style="margin:0 0 0.8em 1.2em;padding:0">')
    parts += [f"<li><b>{_e(k)}:</b> {_e(v)}</li>" for k, v in facts]
    if verdict.run_url:
        parts.append(f'<li><a href="{_e(verdict.run_url)}">Workflow run</a></li>')
    parts.append("</ul>")

    parts += _platform_html(verdict)
    parts += _timeline_svg(verdict.phases)
    parts += _restore_errors_html(verdict)
    parts += _failures_html(verdict)
    if verdict.not_tested or verdict.not_restorable:
        parts.append('<h3 style="margin:0.3em 0">Not tested</h3>')
        parts.append('<ul class="drill-not-tested" style="margin:0 0 0 1.2em;padding:0">')
        parts += [f"<li>{_e(t)}</li>" for t in verdict.not_tested]
        parts += [f"<li>not restorable here: {_e(t)}</li>" for t in verdict.not_restorable]
        parts.append("</ul>")
    parts.append("</section>")
    return "\n".join(parts)


def _failures_html(verdict: Verdict) -> list[str]:
    if not verdict.failures:
        return []
    total = len(verdict.failures) + verdict.failures_omitted
    parts = [
        f'<h3 style="margin:0.3em 0">Failures ({total})</h3>',
        '<ul class="drill-failures" style="margin:0 0 0.8em 1.2em;padding:0">',
        *(
            f"<li><code>{_e(f.test)}</code> ({_e(f.category)}): {_e(f.message)}</li>"
            for f in verdict.failures
        ),
    ]
    if verdict.failures_omitted:
        parts.append(f"<li>… and {verdict.failures_omitted} more</li>")
    parts.append("</ul>")
    return parts


def _platform_html(verdict: Verdict) -> list[str]:
    """The platform's own backups (only with SUPABASE_ACCESS_TOKEN)."""
    lines = platform_lines(verdict)
    if not lines:
        return []
    return [
        '<h3 style="margin:0.3em 0">Platform backups</h3>',
        '<ul class="drill-platform" style="margin:0 0 0.8em 1.2em;padding:0">',
        *(f"<li>{_e(line)}</li>" for line in lines),
        "</ul>",
    ]


# Moves the drill summary, once the page is parsed, from pytest-html's Summary block to
# right under the title, above the environment table (constant: no data of the run in it).
VERDICT_FIRST = (
    "<script>(function(){var s=document.getElementById('supabase-restore-drill'),"
    "e=document.getElementById('environment-header');"
    "if(s&&e){e.parentNode.insertBefore(s,e);}})();</script>"
)
CATEGORY_HEADER = '<th class="sortable" data-column-type="category">Category</th>'


def report_title(verdict: Verdict) -> str:
    """``Backup restore drill: FAIL · acme/shop · 2026-12-02 02:55 UTC``."""
    project = verdict.project or verdict.source or "Supabase project"
    when = verdict.generated.strftime("%Y-%m-%d %H:%M UTC")
    return f"Backup restore drill: {verdict.status} · {project} · {when}"


def skip_sentence(reason: str) -> str:
    """A skip reason as a sentence: ``Skipped: not tested: no RTO budget set.``"""
    reason = reason.strip() or "no reason given"
    end = "" if reason.endswith((".", "!", "?")) else "."
    return f"Skipped: {reason}{end}"


class HtmlReportHooks:
    """pytest-html's hooks for the reporting plugin (a mixin: it has ``verdict``,
    ``redactor`` and ``problems``): the title names the verdict, the project and the date,
    the drill summary comes first, the results table gets a Category column, and a drill
    test's skip reason reads as a sentence instead of pytest's (path, line, text) tuple."""

    verdict: Verdict | None
    problems: list[str]
    _html_report: Any = None

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report: Any) -> None:
        self._html_report = report  # its title is set once the verdict is known

    def _html_title(self) -> None:
        if self._html_report is not None and self.verdict is not None:
            self._html_report.title = report_title(self.verdict)

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells.insert(2, CATEGORY_HEADER)

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        from ..reporting import drill_category

        cells.insert(2, f'<td class="col-category">{_e(drill_category(report) or "")}</td>')

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_html(self, report: pytest.TestReport, data: list[str]) -> None:
        from ..reporting import drill_category, report_message

        if report.skipped and drill_category(report) is not None and data:
            # Redacted by the reporting plugin before pytest-html saw the report.
            data[0] = _e(skip_sentence(report_message(report))) + "\n"
