"""The verdict: one honest answer to "does the backup restore?", built from test reports.

:func:`build_verdict` combines the per-test outcomes the controller saw with the drill
state (what export and restore did). The rules, in words:

* PASS only if the drill itself had no error, every one of the eight categories had at
  least one test that ran and passed, and no drill test failed or errored.
* A skipped check is not a failure but is not proof either: it is listed in
  ``not_tested`` with its reason. A category whose tests were all skipped has no passing
  test, so the verdict is FAIL ("category X did not run").
* An expected failure (xfail) counts as neither passed nor failed.
* A category that has nothing to prove for this backup (``DrillState.not_applicable``: a
  Supabase CLI dump has no manifest for data_integrity and database_schema to compare with,
  and no Storage objects) needs no passing test when every one of its tests was skipped;
  it is listed in ``not_tested`` with the reason.
* A dry run restores nothing, so it needs no smoke tests; it fails only on errors.
* A category deliberately left out of the run (``--supabase-quick``, or ``-m``/``-k``
  deselected every one of its tests) needs no passing test: it is listed in ``not_tested``
  as not selected, and the run's ``scope`` is ``quick`` instead of ``full``. A quick PASS
  says so in its reason, and is not a proven restore (the GitHub notifier does not record
  it as one). A category that was selected but had no passing test still fails the run.

:meth:`Verdict.to_json` is a contract (docs/, the JSON summary, dashboards): its keys are
named in the README and must not change without a version bump.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, TypedDict

from . import CATEGORIES, __version__
from .config import Config
from .extdeps import dependents_by_extension
from .platform_health import health_lines, health_reasons
from .redact import Redactor
from .redact import one_line as one_line  # re-exported: the verdict's one-line rule
from .restore_report import (
    RESTORE_ERRORS_PREFIX,
    RestoreErrorGroup,
    causes_line,
    group_restore_errors,
)
from .results import DRILL_FAILED_SKIP, BackupSizes, DrillState
from .verdict_text import FULL, QUICK, category_status

SCHEMA_VERSION = 1
FAILURES_LIMIT = 100
COLLECTION_CATEGORY = "collection"

OUTCOMES = ("passed", "failed", "skipped", "error", "xfailed", "xpassed")


@dataclass
class CheckOutcome:
    """What happened to one drill test, combined over its setup, call and teardown."""

    nodeid: str
    category: str
    outcome: str  # one of OUTCOMES
    failures: list[str] = field(default_factory=list)  # one line each, e.g. "error in setup: .."
    skip_reason: str = ""  # for "skipped", "xfailed" and "xpassed"
    duration: float = 0.0


@dataclass
class CategoryCounts:
    """Counts of one category. ``xfail`` counts expected failures (neither pass nor fail)."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    errors: int = 0
    xfail: int = 0

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped + self.errors + self.xfail

    @property
    def ok(self) -> bool:
        return self.passed > 0 and self.failed == 0 and self.errors == 0


@dataclass
class Failure:
    """One failed or errored test (or collection error), with a one-line, redacted message."""

    test: str
    category: str
    message: str


@dataclass
class Verdict:
    """The drill's result, as shown everywhere people look."""

    status: str  # "PASS" | "FAIL"
    reason: str
    reasons: list[str]
    categories: dict[str, CategoryCounts]
    failures: list[Failure]
    failures_omitted: int
    rto_seconds: float | None
    rto_budget_seconds: float | None
    phases: dict[str, float]
    backup: dict[str, Any]
    rpo: dict[str, Any]
    staging: str | None
    staging_label: str | None
    source: str | None
    mode: str
    dry_run: bool
    not_tested: list[str]
    not_restorable: list[str]
    versions: dict[str, str | None]
    run_url: str | None
    generated_at: str
    tests: dict[str, int]
    self_test: Any = None
    project: str | None = None
    scope: str = FULL  # FULL, or QUICK when categories were not selected
    not_selected: list[str] = field(default_factory=list)
    # What the restore switched off so that staging never calls out (cron jobs, webhooks).
    side_effects_off: list[str] = field(default_factory=list)
    # Every unexpected restore error, grouped by cause, with every statement (redacted).
    restore_errors: list[RestoreErrorGroup] = field(default_factory=list)
    # Per extension the target cannot load, the objects not restored because of it.
    extension_dependents: dict[str, list[str]] = field(default_factory=dict)
    # The dry run's preflight table: one {check, status, result, fix} per row.
    preflight: list[dict[str, str]] = field(default_factory=list)
    # The platform's own backups (SUPABASE_ACCESS_TOKEN), with ``lines`` in words; None
    # without a token (and then absent from the JSON).
    platform: dict[str, Any] | None = None
    # Categories that pass because this backup has nothing of theirs (category -> why); in
    # the JSON summary as their not_tested line ("storage: nothing to restore: ...").
    vacant: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "PASS"

    def category_result(self, name: str) -> str:
        """The category's result as a table shows it (see :func:`category_status`)."""
        return category_status(
            self.categories[name],
            self.dry_run,
            name not in self.not_selected,
            vacant=name in self.vacant,
        )

    @property
    def proven(self) -> bool:
        """A proven restore: a PASS of a full drill (not a dry run, not a quick check)."""
        return self.passed and not self.dry_run and self.scope == FULL

    @property
    def generated(self) -> datetime:
        return datetime.fromisoformat(self.generated_at)

    def to_json(self) -> dict[str, Any]:
        """The verdict as a JSON-ready dict (the documented contract of the summary file)."""
        data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "status": self.status,
            "reason": self.reason,
            "reasons": list(self.reasons),
            "categories": {
                name: {
                    "passed": c.passed,
                    "failed": c.failed,
                    "skipped": c.skipped,
                    "errors": c.errors,
                    "xfail": c.xfail,
                }
                for name, c in self.categories.items()
            },
            "failures": [asdict(f) for f in self.failures],
            "failures_omitted": self.failures_omitted,
            "tests": dict(self.tests),
            "rto_seconds": self.rto_seconds,
            "rto_budget_seconds": self.rto_budget_seconds,
            "phases": dict(self.phases),
            "backup": dict(self.backup),
            "rpo": dict(self.rpo),
            "staging": self.staging,
            "staging_label": self.staging_label,
            "source": self.source,
            "project": self.project,
            "mode": self.mode,
            "dry_run": self.dry_run,
            "scope": self.scope,
            "not_tested": list(self.not_tested),
            "not_restorable": list(self.not_restorable),
            "side_effects_off": list(self.side_effects_off),
            "restore_errors": [g.to_json() for g in self.restore_errors],
            "extension_dependents": {k: list(v) for k, v in self.extension_dependents.items()},
            "versions": dict(self.versions),
            "run_url": self.run_url,
            "generated_at": self.generated_at,
        }
        if self.self_test is not None:
            data["self_test"] = self.self_test
        if self.preflight:
            data["preflight"] = [dict(row) for row in self.preflight]
        if self.platform is not None:
            data["platform"] = self.platform
        return data


def run_url(env: Mapping[str, str]) -> str | None:
    """The link to this CI run (GitHub Actions), or ``None`` outside Actions."""
    server = env.get("GITHUB_SERVER_URL")
    repo = env.get("GITHUB_REPOSITORY")
    run_id = env.get("GITHUB_RUN_ID")
    if not (server and repo and run_id):
        return None
    url = f"{server.rstrip('/')}/{repo}/actions/runs/{run_id}"
    attempt = env.get("GITHUB_RUN_ATTEMPT")
    if attempt and attempt != "1":
        url += f"/attempts/{attempt}"
    return url


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _backup_sizes(state: DrillState | None) -> dict[str, Any]:
    sizes = state.backup if state is not None and state.backup is not None else BackupSizes()
    return {"snapshot_time": state.snapshot_time if state else None, **asdict(sizes)}


def _label(redactor: Redactor, text: str | None) -> str | None:
    return redactor.line(text) if text else None


def _dedupe(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        if item and item not in seen:
            seen[item] = None
    return list(seen)


@dataclass
class _Tally:
    """The drill tests' outcomes, counted per category, with their failures (redacted)."""

    categories: dict[str, CategoryCounts]
    failures: list[Failure] = field(default_factory=list)
    skipped_reasons: list[str] = field(default_factory=list)
    collection_errors: int = 0
    tests: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))

    @property
    def ran(self) -> int:
        return self.tests["passed"] + self.tests["failed"] + self.tests["error"]

    def add(self, item: CheckOutcome, redactor: Redactor) -> None:
        msgs = [redactor.line(m) for m in item.failures] or ["failed"]
        # A test id can carry a parametrized value (a URL, a key): never in a report.
        test = redactor.redact(item.nodeid)
        if item.category == COLLECTION_CATEGORY:
            self.collection_errors += 1
            self.failures.extend(Failure(test, item.category, m) for m in msgs)
            return
        counts = self.categories.setdefault(item.category, CategoryCounts())
        self.tests[item.outcome] = self.tests.get(item.outcome, 0) + 1
        reason = redactor.line(item.skip_reason) if item.skip_reason else ""
        if item.outcome == "passed":
            counts.passed += 1
        elif item.outcome in ("failed", "error"):
            if item.outcome == "failed":
                counts.failed += 1
            else:
                counts.errors += 1
            self.failures.extend(Failure(test, item.category, m) for m in msgs)
        elif item.outcome == "skipped":
            counts.skipped += 1
            self.skipped_reasons.append(f"{item.category}: {reason or 'skipped without a reason'}")
        elif item.outcome in ("xfailed", "xpassed"):
            counts.xfail += 1
            what = "expected failure" if item.outcome == "xfailed" else "unexpectedly passing"
            self.skipped_reasons.append(
                f"{item.category}: {what}" + (f" ({reason})" if reason else "")
            )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def _drill_reasons(
    state: DrillState | None, redactor: Redactor, restore_errors: list[RestoreErrorGroup]
) -> list[str]:
    """What went wrong in the drill itself: its error, the backup's integrity, the restore."""
    reasons: list[str] = []
    if state is None:
        reasons.append("the drill did not run (no drill state)")
    elif state.error:
        phase = f" in {state.error_phase}" if state.error_phase else ""
        reasons.append(f"the drill failed{phase}: {redactor.line(state.error)}")
    if state is not None and state.integrity_problems:
        n = len(state.integrity_problems)
        first = redactor.line(state.integrity_problems[0])
        reasons.append(f"backup integrity check found {_plural(n, 'problem')}: {first}")
    # The drill's own error already is this summary when nothing else went wrong first.
    summarised = state is not None and (state.error or "").startswith(RESTORE_ERRORS_PREFIX)
    if restore_errors and not summarised:
        n, k = sum(g.count for g in restore_errors), len(restore_errors)
        reasons.append(
            f"restore reported {_plural(n, 'unexpected error')}"
            + (f" of {k} causes" if k > 1 else "")
            + f": {causes_line(restore_errors)}"
        )
    return reasons


def _test_reasons(tally: _Tally, state: DrillState | None, dry_run: bool) -> list[str]:
    """What went wrong in the tests: collection errors, none run, failures and errors."""
    reasons: list[str] = []
    if tally.collection_errors:
        reasons.append(_plural(tally.collection_errors, "collection error"))
    if not dry_run and tally.ran == 0 and state is not None and not state.error:
        reasons.append("no smoke tests ran")
    if tally.tests["failed"]:
        reasons.append(f"{_plural(tally.tests['failed'], 'test')} failed")
    if tally.tests["error"]:
        reasons.append(f"{_plural(tally.tests['error'], 'test')} errored")
    return reasons


def _vacant(counts: CategoryCounts) -> bool:
    """Every test of the category was skipped (or xfailed), none failed."""
    return counts.failed + counts.errors == 0 and counts.skipped + counts.xfail == counts.total


def _vacant_categories(state: DrillState | None, tally: _Tally) -> dict[str, str]:
    """The categories with nothing to prove for this backup (category -> why), as the drill
    found them (:attr:`DrillState.not_applicable`: a CLI dump's, a backup without Storage)."""
    if state is None or state.error:
        return {}
    return {n: why for n, why in state.not_applicable.items() if n in tally.categories}


def _category_reasons(
    categories: Mapping[str, CategoryCounts], left_out: list[str], vacant: Mapping[str, str]
) -> list[str]:
    """The categories that needed a passing test and had none."""
    reasons: list[str] = []
    if len(left_out) == len(CATEGORIES):
        reasons.append(f"none of the {len(CATEGORIES)} categories was selected")
    # A category with nothing to prove for this backup (a CLI dump has no manifest to
    # compare the schema and rows with, and no Storage objects) needs no passing test
    # when none of its tests ran: it is listed under not tested with the reason.
    for name in CATEGORIES:
        c = categories[name]
        if c.passed or name in left_out or (name in vacant and _vacant(c)):
            continue
        if c.total == 0:
            why = "no tests"
        elif c.skipped + c.xfail == c.total:
            why = f"all {c.total} skipped"
        else:
            why = "none passed"
        reasons.append(f"category {name} did not run ({why})")
    return reasons


def _rto(state: DrillState | None, settings: Config) -> tuple[float | None, float | None]:
    """The measured RTO and the budget it is held to (the drill's, else the setting)."""
    rto = state.rto_seconds if state is not None else None
    budget = state.rto_budget_seconds if state and state.rto_budget_seconds else None
    return rto, budget if budget is not None else settings.rto_budget


def _self_test_reason(state: DrillState | None, requested: bool) -> str | None:
    """Why the self-test fails the verdict: a fault not injected or not caught, or none
    injected at all (a self-test that proved nothing cannot pass)."""
    if state is None or state.error or state.mode == "dry-run":
        return None
    results = state.self_test
    if results is None:
        return "self-test: no fault was injected (it did not run)" if requested else None
    lost = [f"{r.fault} ({r.category})" for r in results if not r.injected]
    if lost:
        return f"self-test: {len(lost)} fault(s) could not be injected: {lost[0]}"
    missed = [f"{r.fault} ({r.category})" for r in results if not r.caught]
    if missed:
        return f"self-test: {len(missed)} injected fault(s) went unnoticed: {missed[0]}"
    if not results:
        return "self-test: no fault was injected (the backup offers nothing to inject into)"
    return None


def _pass_reason(
    categories: Mapping[str, CategoryCounts],
    dry_run: bool,
    left_out: list[str],
    vacant: Mapping[str, str],
) -> str:
    """The one-line reason of a PASS: what was proven, and what was not part of it."""
    checks = sum(c.passed for c in categories.values())
    total = len(CATEGORIES)
    if dry_run:
        return "dry run: configuration and connectivity checked"
    if left_out:
        return (
            f"quick check: {checks} checks passed in {total - len(left_out)} of "
            f"{total} categories; not a full proof of the backup"
        )
    vacant_now = [n for n in CATEGORIES if categories[n].passed == 0 and n in vacant]
    if vacant_now:
        return (
            f"restored and verified: {checks} checks passed in "
            f"{total - len(vacant_now)} of {total} categories; "
            f"nothing to check in {', '.join(vacant_now)} for this backup "
            "(see not tested)"
        )
    return f"restored and verified: {checks} checks passed in all {total} categories"


def _not_tested(
    state: DrillState | None,
    redactor: Redactor,
    tally: _Tally,
    left_out: list[str],
    dry_run: bool,
    vacant: Mapping[str, str],
) -> list[str]:
    skipped = tally.skipped_reasons
    if any(DRILL_FAILED_SKIP in r for r in skipped):
        # Every smoke test points at the drill's error: one line for all of them.
        n = sum(DRILL_FAILED_SKIP in r for r in skipped)
        skipped = [r for r in skipped if DRILL_FAILED_SKIP not in r]
        skipped.insert(0, f"{_plural(n, 'smoke test')}: not run, the drill failed (see the reason)")
    not_tested = _dedupe(
        [f"{name}: not selected in this run (quick check)" for name in left_out]
        + [
            f"{name}: nothing to restore: {why}"
            for name, why in vacant.items()
            if _vacant(tally.categories[name])
        ]
        + [redactor.line(t, 500) for t in (state.not_tested if state else [])]
        + skipped
    )
    if dry_run:
        not_tested.insert(0, "dry run: nothing was exported or restored, no smoke test ran")
    return not_tested


def _rpo(state: DrillState | None, now: datetime) -> dict[str, Any]:
    snapshot = state.snapshot_time if state is not None else None
    snapshot_at = _parse_time(snapshot)
    return {
        "snapshot_time": snapshot,
        "age_seconds": round((now - snapshot_at).total_seconds(), 1) if snapshot_at else None,
    }


def _side_effects_off(state: DrillState | None, redactor: Redactor) -> list[str]:
    return [
        redactor.line(str(t), 500)
        for t in (state.neutralised if state else [])
        if not str(t).split(": ", 1)[-1].startswith("0 ")
    ]


def _versions(state: DrillState | None) -> dict[str, str | None]:
    return {
        "server": state.server_version if state else None,
        "staging_server": state.staging_server_version if state else None,
        "tools": state.tool_version if state else None,
        "plugin": __version__,
        "python": platform.python_version(),
    }


def build_verdict(
    outcomes: Iterable[CheckOutcome],
    state: DrillState | None,
    settings: Config,
    now: datetime,
    *,
    env: Mapping[str, str] | None = None,
    interrupted: bool = False,
    not_selected: Iterable[str] = (),
) -> Verdict:
    """Build the verdict of this run from the drill tests' outcomes and the drill state.

    ``outcomes`` holds only drill tests (and collection errors, category ``collection``).
    ``not_selected`` names the categories whose every test was deselected (a quick check).
    Every message in the result is one line and redacted with ``settings.secrets()``.
    """
    env = os.environ if env is None else env
    redactor = Redactor(settings.secrets())
    now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
    dry_run = settings.dry_run or (state is not None and state.mode == "dry-run")
    tally = _Tally({name: CategoryCounts() for name in CATEGORIES})
    for item in outcomes:
        tally.add(item, redactor)
    categories = tally.categories
    # A category that ran anything was selected, whatever the caller says.
    deselected = set(not_selected)
    left_out = [n for n in CATEGORIES if n in deselected and categories[n].total == 0]
    vacant = _vacant_categories(state, tally)
    restore_errors = group_restore_errors(state.restore_issues if state else [], redactor)

    rto, budget = _rto(state, settings)
    reasons = _drill_reasons(state, redactor, restore_errors)
    if interrupted:
        reasons.append("the run was interrupted before the drill finished")
    reasons += _test_reasons(tally, state, dry_run)
    if not dry_run and tally.ran:
        reasons += _category_reasons(categories, left_out, vacant)
    if rto is not None and budget is not None and rto > budget:
        reasons.append(f"RTO {rto:.1f} s exceeded the budget of {budget:.1f} s")
    missed = _self_test_reason(state, settings.self_test)
    if missed:
        reasons.append(missed)
    reasons += [redactor.line(r, 500) for r in health_reasons(state.platform if state else None)]
    status = "FAIL" if reasons else "PASS"
    passed = _preflight_pass(state) if dry_run else None
    passed = passed or _pass_reason(categories, dry_run, left_out, vacant)
    reason = "; ".join(reasons) if reasons else passed

    return Verdict(
        status=status,
        reason=redactor.line(reason, 500),
        reasons=reasons,
        # The eight categories in their order, then the custom ones by name.
        categories={
            n: categories[n] for n in [*CATEGORIES, *sorted(set(categories) - set(CATEGORIES))]
        },
        failures=tally.failures[:FAILURES_LIMIT],
        failures_omitted=max(0, len(tally.failures) - FAILURES_LIMIT),
        rto_seconds=rto,
        rto_budget_seconds=budget,
        rpo=_rpo(state, now),
        mode=state.mode if state is not None else ("dry-run" if dry_run else "export"),
        dry_run=dry_run,
        not_tested=_not_tested(state, redactor, tally, left_out, dry_run, vacant),
        run_url=run_url(env),
        generated_at=now.isoformat(timespec="seconds"),
        tests=tally.tests,
        project=settings.github_repository,
        scope=QUICK if left_out else FULL,
        not_selected=left_out,
        restore_errors=restore_errors,
        preflight=redactor.redact_obj(state.preflight) if state is not None else [],
        platform=_platform(state, redactor),
        vacant={n: why for n, why in vacant.items() if _vacant(categories[n])},
        **_from_state(state, redactor),
    )


def _preflight_pass(state: DrillState | None) -> str | None:
    """A passing dry run's reason: how many preflight checks ran and warned."""
    if state is None or not state.preflight:
        return None
    warned = sum(1 for row in state.preflight if row.get("status") == "WARN")
    return (
        f"dry run: preflight passed ({len(state.preflight)} checks, {warned} warning(s)); "
        "nothing was exported"
    )


def _platform(state: DrillState | None, redactor: Redactor) -> dict[str, Any] | None:
    """The platform-health section (redacted), or None when no token was configured."""
    if state is None or state.platform is None:
        return None
    data: dict[str, Any] = redactor.redact_obj(
        {**asdict(state.platform), "lines": health_lines(state.platform)}
    )
    return data


def platform_lines(verdict: Verdict) -> list[str]:
    """The platform-health section in words, for every report (none without a token)."""
    return [str(line) for line in (verdict.platform or {}).get("lines", [])]


class _StateFields(TypedDict):
    phases: dict[str, float]
    backup: dict[str, Any]
    staging: str | None
    staging_label: str | None
    source: str | None
    not_restorable: list[str]
    side_effects_off: list[str]
    versions: dict[str, str | None]
    self_test: Any
    extension_dependents: dict[str, list[str]]


def _from_state(state: DrillState | None, redactor: Redactor) -> _StateFields:
    """The verdict's fields that only restate the drill state (redacted)."""
    self_test = (
        [asdict(r) for r in state.self_test]
        if state is not None and state.self_test is not None
        else None
    )
    return {
        "phases": state.phase_seconds() if state is not None else {},
        "backup": _backup_sizes(state),
        "staging": state.staging_kind if state is not None else None,
        "staging_label": _label(redactor, state.staging_label if state else None),
        "source": _label(redactor, state.source_label if state else None),
        "not_restorable": [redactor.line(t, 500) for t in state.not_restorable] if state else [],
        "side_effects_off": _side_effects_off(state, redactor),
        "versions": _versions(state),
        "self_test": redactor.redact_obj(self_test) if self_test is not None else None,
        "extension_dependents": redactor.redact_obj(
            dependents_by_extension(state.extension_dependents if state else {})
        ),
    }
