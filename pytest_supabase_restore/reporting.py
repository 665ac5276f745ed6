"""The reporting plugin object: test reports in, one verdict out, everywhere people look.

``plugin.py`` registers a :class:`ReportingPlugin` on the controller only (never on an
xdist worker) when ``--supabase-restore`` is on. It

* collects each drill test's outcome from its setup/call/teardown reports (a drill test is
  one whose ``user_properties`` carry ``("supabase_category", name)``) and collection errors;
* learns from a :class:`SelectionRecorder` which categories were deliberately not selected
  (``--supabase-quick``, ``-m``, ``-k``), so that the verdict can call the run a quick check
  instead of failing those categories;
* scrubs secrets from every test report before pytest's terminal, JUnit and HTML writers
  see it (it runs first);
* at the end of the session builds the :class:`~pytest_supabase_restore.verdict.Verdict`,
  writes ``--supabase-summary-json``, appends to ``GITHUB_STEP_SUMMARY``, posts to GitHub and
  Slack when enabled, and makes the exit status non-zero when the verdict is FAIL or a
  notification failed;
* prints a compact drill section in the terminal summary and puts the drill summary at
  the top of pytest-html's report.

No hook here raises: a failure inside reporting is caught, shown loudly, and turns the
exit status non-zero, so it can neither hide the real result nor pass silently.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from .ci_report import add_verdict_case, drop_drill_properties, github_annotations
from .config import Config
from .errors import first_line
from .notify.html import VERDICT_FIRST, HtmlReportHooks
from .notify.http import RetryPolicy
from .redact import Redactor
from .results import DrillState, SourceReads
from .verdict import COLLECTION_CATEGORY, CheckOutcome, Verdict, build_verdict
from .verdict_text import backup_line, format_seconds, rpo_line, scope_line

CATEGORY_PROPERTY = "supabase_category"
PLUGIN_NAME = "supabase-restore-reporting"
SELECTION_PLUGIN_NAME = "supabase-restore-selection"
SELECTION_OUTPUT = "supabase_restore_selection"  # key in an xdist worker's workeroutput


def drill_category(report: pytest.TestReport | pytest.CollectReport | pytest.Item) -> str | None:
    """The drill category a report (or a collected item) belongs to, or ``None`` for a test
    outside the drill."""
    for prop in getattr(report, "user_properties", None) or ():
        # Under xdist the property arrives as a list, not a tuple.
        if isinstance(prop, (tuple, list)) and len(prop) == 2 and prop[0] == CATEGORY_PROPERTY:
            return str(prop[1])
    return None


def report_message(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The line that says why a report failed or was skipped: not redacted, so it is not
    shortened or collapsed either (a cut through a secret could no longer be matched);
    :meth:`Redactor.line` does both, in that order, when the verdict is built."""
    longrepr = report.longrepr
    if longrepr is None:
        return ""
    if isinstance(longrepr, (tuple, list)) and len(longrepr) == 3:
        text = str(longrepr[2])
        return first_line(text.removeprefix("Skipped: "))
    crash = getattr(longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    if isinstance(message, str) and message.strip():
        return first_line(message.removeprefix("AssertionError: "))
    text = str(longrepr)
    # A plain-text traceback: its "E   ..." line says what went wrong.
    for line in text.splitlines():
        if line.startswith("E "):
            return first_line(line[1:].strip().removeprefix("AssertionError: "))
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return first_line(lines[-1]) if lines else ""


def _scrub_in_place(value: Any, redact: Callable[[str], str], depth: int = 0) -> Any:
    """``value`` with every string redacted; pytest's repr objects are changed in place."""
    if depth > 40:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_scrub_in_place(v, redact, depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(_scrub_in_place(v, redact, depth + 1) for v in value)
    if isinstance(value, dict):
        return {k: _scrub_in_place(v, redact, depth + 1) for k, v in value.items()}
    if type(value).__module__.startswith("_pytest.") and hasattr(value, "__dict__"):
        for key, item in list(vars(value).items()):
            # Some of pytest's repr dataclasses are frozen.
            object.__setattr__(value, key, _scrub_in_place(item, redact, depth + 1))
    return value


class SelectionRecorder:
    """Which drill categories had tests selected to run, and which had tests deselected.

    Register it in every process that collects: the controller, and under xdist each worker
    (the controller then collects nothing), which hands its sets over in ``workeroutput``.
    A category counts as deliberately not selected only when every one of its collected
    tests was deselected; if no worker reports (a crash), nothing counts as deselected,
    so the verdict errs towards FAIL.
    """

    def __init__(self) -> None:
        self.selected: set[str] = set()
        self.deselected: set[str] = set()

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected.update(c for c in map(drill_category, items) if c is not None)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.selected.update(c for c in map(drill_category, session.items) if c is not None)
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[SELECTION_OUTPUT] = {
                "selected": sorted(self.selected),
                "deselected": sorted(self.deselected),
            }

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """xdist, on the controller: take over what a worker selected and deselected."""
        data = (getattr(node, "workeroutput", None) or {}).get(SELECTION_OUTPUT) or {}
        self.selected.update(str(c) for c in data.get("selected", ()))
        self.deselected.update(str(c) for c in data.get("deselected", ()))

    def not_selected(self) -> list[str]:
        """Categories with tests collected and every one of them deselected."""
        return sorted(self.deselected - self.selected)


@dataclass
class _Entry:
    category: str
    outcome: str | None = None
    failures: list[str] = field(default_factory=list)
    skip_reason: str = ""
    duration: float = 0.0

    def add(self, report: pytest.TestReport) -> None:
        self.duration += float(getattr(report, "duration", 0.0) or 0.0)
        wasxfail = getattr(report, "wasxfail", None)
        when = report.when
        if report.failed:
            message = report_message(report) or "failed"
            if when == "call":
                self.failures.append(message)
                self.outcome = "failed"
            else:
                self.failures.append(f"error in {when}: {message}")
                if self.outcome != "failed":
                    self.outcome = "error"
        elif report.skipped:
            if wasxfail is not None:
                self.outcome, self.skip_reason = "xfailed", str(wasxfail)
            else:
                self.outcome, self.skip_reason = "skipped", report_message(report)
        elif report.passed and when == "call":  # not "rerun" (pytest-rerunfailures)
            if wasxfail is not None:
                self.outcome, self.skip_reason = "xpassed", str(wasxfail)
            else:
                self.outcome = "passed"

    def result(self, nodeid: str) -> CheckOutcome | None:
        if self.outcome is None:
            return None  # the test never finished (interrupted during setup)
        return CheckOutcome(
            nodeid=nodeid,
            category=self.category,
            outcome=self.outcome,
            failures=list(self.failures),
            skip_reason=self.skip_reason,
            duration=round(self.duration, 3),
        )


class ReportingPlugin(HtmlReportHooks):
    """Builds and publishes the drill verdict. Register on the controller only."""

    def __init__(
        self,
        settings: Config,
        state: Callable[[], DrillState | None],
        redactor: Redactor,
        *,
        retry: RetryPolicy | None = None,
        env: Mapping[str, str] | None = None,
        selection: SelectionRecorder | None = None,
    ) -> None:
        """``retry`` bounds the notifiers' HTTP retries (default: ``RetryPolicy()``);
        ``env`` replaces ``os.environ`` (for tests); ``selection`` says which categories
        were not selected (without it, every category counts as selected)."""
        self.settings = settings
        self._state = state
        self._source_reads: SourceReads | None = None
        self._selection = selection
        self.redactor = redactor
        self._retry = retry
        self._env = env
        self._entries: dict[str, _Entry] = {}
        self._collection_errors: dict[str, CheckOutcome] = {}
        self.verdict: Verdict | None = None
        self.notes: list[str] = []  # what was done, for the terminal
        self.problems: list[str] = []  # what went wrong in reporting itself: shown loudly
        self.notifications: dict[str, str] = {}
        self._session: pytest.Session | None = None
        self._junit: Any = None  # pytest's LogXML, when --junitxml is on

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        from _pytest.junitxml import xml_key

        self._junit = session.config.stash.get(xml_key, None)

    @property
    def _xunit2(self) -> bool:
        """JUnit's default family, whose test cases take no properties."""
        return self._junit is not None and self._junit.family == "xunit2"

    # -- collecting -----------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Record the drill test's outcome, then scrub secrets from the report."""
        try:
            category = drill_category(report)
            if category is not None:
                entry = self._entries.setdefault(report.nodeid, _Entry(category))
                entry.add(report)
                if self._xunit2 and report.when == "teardown":
                    drop_drill_properties(report)
        except Exception as exc:
            self._problem(f"could not record the report of {report.nodeid}", exc)
        self._scrub(report)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """A collection error is an error of the drill (a check that could not even load)."""
        try:
            if report.failed:
                nodeid = report.nodeid or "<session>"
                message = report_message(report) or "collection failed"
                self._collection_errors.setdefault(
                    nodeid,
                    CheckOutcome(
                        nodeid=nodeid,
                        category=COLLECTION_CATEGORY,
                        outcome="error",
                        failures=[f"collection error: {message}"],
                    ),
                )
        except Exception as exc:
            self._problem(f"could not record the collection report of {report.nodeid}", exc)
        self._scrub(report)

    def outcomes(self) -> list[CheckOutcome]:
        """Outcomes of the drill tests seen so far, then collection errors."""
        results = [entry.result(nodeid) for nodeid, entry in self._entries.items()]
        return [r for r in results if r is not None] + list(self._collection_errors.values())

    def _scrub(self, report: pytest.TestReport | pytest.CollectReport) -> None:
        """Remove secrets from what pytest will print and write (terminal, JUnit, HTML)."""
        try:
            longrepr = report.longrepr
            if isinstance(longrepr, (tuple, list)) and len(longrepr) == 3:
                path, lineno, text = longrepr
                if self.redactor.contains_secret(str(text)):
                    report.longrepr = (path, lineno, self.redactor.redact(str(text)))
            elif longrepr is not None and self.redactor.contains_secret(str(longrepr)):
                # Redact pytest's structured traceback in place, so it still prints with
                # colours and a short summary line; if anything is left, fall back to text.
                scrubbed = _scrub_in_place(longrepr, self.redactor.redact)
                if self.redactor.contains_secret(str(scrubbed)):
                    scrubbed = self.redactor.redact(str(scrubbed))
                report.longrepr = scrubbed
            report.sections = [
                (title, self.redactor.redact(content)) for title, content in report.sections
            ]
        except Exception as exc:
            self._problem(f"could not scrub secrets from the report of {report.nodeid}", exc)

    # -- publishing -----------------------------------------------------------------------
    # First: before pytest's junitxml writes its file, which gets the verdict's test case.
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Build the verdict, write it, notify, and make the exit status tell the truth."""
        if hasattr(session.config, "workerinput") or session.config.option.collectonly:
            return  # workers only run tests; a collect-only run has nothing to judge
        self._session = session
        try:
            self.verdict = self._build(exitstatus)
        except Exception as exc:
            self._problem("could not build the drill verdict", exc)
            self._fix_exitstatus()
            return
        self._write_summary_json()
        self._notify()
        self._write_summary_json()  # again, now with the notification results
        self._write_job_summary()
        self._junit_verdict()
        self._fix_exitstatus()

    def _junit_verdict(self) -> None:
        if self._junit is None or self.verdict is None:
            return
        try:
            add_verdict_case(self._junit, self.verdict, self.problems, self.redactor)
        except Exception as exc:
            self._problem("could not add the verdict to the JUnit XML", exc)

    def _build(self, exitstatus: int) -> Verdict:
        try:
            state = self._state()
        except Exception as exc:
            self._problem("could not read the drill state", exc)
            state = None
        self._source_reads = state.source_reads if state is not None else None
        return build_verdict(
            self.outcomes(),
            state,
            self.settings,
            datetime.now(timezone.utc),
            env=self._env,
            # pytest also says "interrupted" when collection failed; that is reported as
            # collection errors, not as an interruption.
            interrupted=exitstatus == pytest.ExitCode.INTERRUPTED and not self._collection_errors,
            not_selected=self._selection.not_selected() if self._selection is not None else (),
        )

    def _fix_exitstatus(self) -> None:
        session = self._session
        if session is None:
            return
        failed = self.verdict is None or not self.verdict.passed or bool(self.problems)
        if failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def summary_json(self) -> dict[str, Any]:
        """The redacted JSON document written to ``--supabase-summary-json``."""
        assert self.verdict is not None
        data = self.verdict.to_json()
        data["notifications"] = dict(self.notifications)
        data["reporting_problems"] = list(self.problems)
        # What the export read from the source, against a bare pg_dump's share.
        data["source_reads"] = asdict(self._source_reads) if self._source_reads else None
        redacted: dict[str, Any] = self.redactor.redact_obj(data)
        return redacted

    def _write_summary_json(self) -> None:
        path = self.settings.summary_json
        if path is None or self.verdict is None:
            return
        try:
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_text(json.dumps(self.summary_json(), indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, target)
            note = f"summary JSON: {target}"
            if note not in self.notes:
                self.notes.append(note)
        except Exception as exc:
            self._problem(f"could not write the summary JSON to {path}", exc)

    def _write_job_summary(self) -> None:
        env = os.environ if self._env is None else self._env
        path = env.get("GITHUB_STEP_SUMMARY")
        if not path or self.verdict is None:
            return
        try:
            from .notify.job_summary import append_job_summary, markdown, md

            text = markdown(
                self.verdict, rest_in="the JSON summary" if self.settings.summary_json else ""
            )
            if self.notifications or self.problems:
                text += "\n" + "".join(
                    f"- {md(name)}: {md(what)}\n" for name, what in self.notifications.items()
                )
                text += "".join(f"- ❗ {md(p)}\n" for p in self.problems)
            append_job_summary(path, self.redactor.redact(text))
            self.notes.append("job summary: appended to GITHUB_STEP_SUMMARY")
        except Exception as exc:
            self._problem("could not append to GITHUB_STEP_SUMMARY", exc)

    def _notify(self) -> None:
        verdict = self.verdict
        if verdict is None or not (self.settings.github_issue or self.settings.slack):
            return
        if verdict.dry_run:
            self.notes.append("dry run: GitHub and Slack were not notified")
            return
        policy = self._retry
        if self.settings.github_issue:
            try:
                from .notify.github import post_to_github

                done = post_to_github(verdict, self.settings, self.redactor, policy=policy)
                self.notifications["github"] = done
            except Exception as exc:
                self.notifications["github"] = "FAILED"
                self._problem("GitHub issue not updated", exc)
        if self.settings.slack:
            try:
                from .notify.slack import post_to_slack

                if not self.settings.slack_webhook_url:
                    raise ValueError("SLACK_WEBHOOK_URL is not set")
                done = post_to_slack(
                    verdict, self.settings.slack_webhook_url, self.redactor, policy=policy
                )
                self.notifications["slack"] = done
            except Exception as exc:
                self.notifications["slack"] = "FAILED"
                self._problem("Slack not notified", exc)

    def _problem(self, what: str, exc: BaseException) -> None:
        detail = str(exc) or type(exc).__name__
        self.problems.append(self.redactor.line(f"{what}: {detail}", 500))

    # -- showing --------------------------------------------------------------------------
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """The drill section at the end of the terminal output; reporting failures loud."""
        try:
            self._terminal_summary(terminalreporter)
        except Exception as exc:  # never hide the run's result behind a reporting bug
            self._problem("could not show the drill summary", exc)
            self._fix_exitstatus()
        if self.problems:
            terminalreporter.write_sep(
                "!", "supabase restore: REPORTING FAILED", red=True, bold=True
            )
            for problem in self.problems:
                terminalreporter.write_line(f"  {problem}", red=True, bold=True)
            terminalreporter.write_line(
                "  The drill's exit status is non-zero because of this.", red=True, bold=True
            )

    def _terminal_summary(self, tr: Any) -> None:
        verdict = self.verdict
        if verdict is None:
            return
        red = not verdict.passed
        tr.write_sep("=", f"supabase restore drill: {verdict.status}", red=red, green=not red)
        tr.write_line(
            self.redactor.redact(f"{verdict.status}: {verdict.reason}"),
            red=red,
            green=not red,
            bold=True,
        )
        lines = [
            *_category_table(verdict),
            *_measures(verdict),
            *_what_went_wrong(verdict, self.settings.summary_json is not None),
            *_what_was_left_out(verdict),
        ]
        lines += [
            f"  {name}: {what}" for name, what in self.notifications.items() if what != "FAILED"
        ]
        lines += [f"  {note}" for note in self.notes]
        if verdict.run_url:
            lines.append(f"  run: {verdict.run_url}")
        lines += github_annotations(verdict, os.environ if self._env is None else self._env)
        for line in lines:
            tr.write_line(self.redactor.redact(line))

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str]
    ) -> None:
        """pytest-html: the drill summary at the top of the HTML report."""
        try:
            if self.verdict is None:
                return
            from .notify.html import summary_html

            prefix.insert(0, self.redactor.redact(summary_html(self.verdict)))
            prefix.append(VERDICT_FIRST)
            self._html_title()
        except Exception as exc:
            self._problem("could not add the drill summary to the HTML report", exc)
            self._fix_exitstatus()


# -- the terminal summary's sections (each line redacted by the caller) -----------------------
def _category_table(verdict: Verdict) -> list[str]:
    lines = [f"  {'category':<20} {'result':<8} passed failed skipped errors"]
    for name, c in verdict.categories.items():
        status = verdict.category_result(name)
        lines.append(
            f"  {name:<20} {status:<8} {c.passed:>6} {c.failed:>6} "
            f"{c.skipped + c.xfail:>7} {c.errors:>6}"
        )
    return lines


def _measures(verdict: Verdict) -> list[str]:
    """RTO (with its budget and phases), RPO, the backup, staging and the scope."""
    rto = f"RTO {format_seconds(verdict.rto_seconds)}"
    if verdict.rto_budget_seconds is not None:
        rto += f" (budget {format_seconds(verdict.rto_budget_seconds)})"
    if verdict.phases:
        rto += "; " + ", ".join(f"{k} {format_seconds(v)}" for k, v in verdict.phases.items())
    return [
        f"  {rto}",
        f"  RPO {rpo_line(verdict)}",
        f"  backup: {backup_line(verdict)}",
        f"  staging: {verdict.staging_label or verdict.staging or 'n/a'}, mode {verdict.mode}",
        f"  scope: {scope_line(verdict)}",
        *_self_test_line(verdict),
        *_platform_measures(verdict),
    ]


def _self_test_line(verdict: Verdict) -> list[str]:
    if verdict.self_test is None:
        return []
    results = verdict.self_test
    injected = sum(1 for r in results if r.get("injected", True))
    caught = sum(1 for r in results if r.get("injected", True) and r["caught"])
    return [f"  self-test: {injected} of {len(results)} fault(s) injected, {caught} caught"]


def _platform_measures(verdict: Verdict) -> list[str]:
    """The platform's own backups (only with SUPABASE_ACCESS_TOKEN)."""
    from .verdict import platform_lines

    return [f"  {line}" for line in platform_lines(verdict)]


def _what_went_wrong(verdict: Verdict, json_summary: bool) -> list[str]:
    """Restore errors by cause, then the first 20 failures (the rest: in the JSON summary,
    when one was asked for)."""
    lines: list[str] = [
        f"  preflight {row['check']}: {row['result']}"
        + (f" (fix: {row['fix']})" if row["fix"] else "")
        for row in verdict.preflight
        if row["status"] == "FAIL"
    ]
    if verdict.restore_errors:
        from .restore_report import heading, text_lines

        where = " (every statement: the JSON summary)" if json_summary else ""
        lines.append(f"  {heading(verdict.restore_errors)}{where}:")
        lines += [f"    {line}" for line in text_lines(verdict.restore_errors)]
    if verdict.failures:
        lines.append("  failures:")
        for failure in verdict.failures[:20]:
            lines.append(f"    {failure.test} ({failure.category}): {failure.message}")
        hidden = len(verdict.failures) + verdict.failures_omitted - 20
        if hidden > 0:
            where = " (see the JSON summary)" if json_summary else ""
            lines.append(f"    ... and {hidden} more{where}")
    return lines


def _what_was_left_out(verdict: Verdict) -> list[str]:
    """What was not tested or not restorable, and what staging switched off."""
    lines: list[str] = []
    if verdict.not_tested or verdict.not_restorable:
        lines.append("  not tested:")
        lines += [f"    - {item}" for item in verdict.not_tested]
        lines += [f"    - not restorable here: {item}" for item in verdict.not_restorable]
    if verdict.side_effects_off:
        lines.append("  switched off in staging (it must never call out):")
        lines += [f"    - {item}" for item in verdict.side_effects_off]
    return lines
