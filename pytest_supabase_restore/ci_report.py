"""What CI test views read: the verdict as a JUnit test case, and GitHub annotations.

A CI test view (GitHub's test reporters, GitLab, Jenkins) reads JUnit XML, not the terminal:
a drill whose smoke tests were all skipped, or whose categories did not all run, shows there
as green unless the verdict itself is a test case. :func:`add_verdict_case` adds it (a FAIL
verdict is a failed case whose message is the reason) to pytest's own ``LogXML``, which
then writes it with the rest, in whichever family the run uses.

JUnit's default family, ``xunit2``, has no properties on test cases; pytest writes a test's
``user_properties`` there all the same (and warns from ``record_property``). The drill's
own properties, its category and the checks' facts, are taken off a report before
``LogXML`` sees it (:func:`drop_drill_properties`): they have done their work by then.

On GitHub Actions, :func:`github_annotations` gives one ``::error`` workflow command per failed
check and one for a FAIL verdict, so that they show on the run's page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from .redact import Redactor
from .verdict import Verdict

FACT_PREFIX = "supabase_"  # the drill's own user properties: its category, the checks' facts
VERDICT_NODEID = "supabase_restore::verdict"  # the verdict's test case in JUnit
ANNOTATIONS_LIMIT = 20  # GitHub shows at most 10 error annotations per step; a few spare


def drop_drill_properties(report: pytest.TestReport) -> None:
    """Remove the drill's own user properties from ``report`` (a copy of the item's list,
    so the item keeps them); a team's own properties stay."""
    report.user_properties = [
        prop
        for prop in report.user_properties
        if not (isinstance(prop, (tuple, list)) and str(prop[0]).startswith(FACT_PREFIX))
    ]


def _report(outcome: str, when: str, longrepr: str | None, duration: float) -> pytest.TestReport:
    return pytest.TestReport(
        nodeid=VERDICT_NODEID,
        location=("supabase_restore", None, "verdict"),
        keywords={},
        outcome=outcome,  # type: ignore[arg-type]
        longrepr=longrepr,
        when=when,  # type: ignore[arg-type]
        duration=duration,
    )


def add_verdict_case(xml: Any, verdict: Verdict, problems: list[str], redactor: Redactor) -> None:
    """Add the verdict to pytest's ``LogXML`` as the test case ``supabase_restore.verdict``:
    passed for a PASS, failed with the reason for a FAIL (or when reporting itself failed)."""
    failed = not verdict.passed or bool(problems)
    text = None
    if failed:
        lines = [f"{verdict.status}: {verdict.reason}", *problems]
        text = redactor.redact("\n".join(lines))
    duration = float(verdict.rto_seconds or 0.0)
    xml.pytest_runtest_logreport(_report("failed" if failed else "passed", "call", text, duration))
    xml.pytest_runtest_logreport(_report("passed", "teardown", None, 0.0))


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(title: str, message: str) -> str:
    """One ``::error`` workflow command (escaped as GitHub's toolkit does)."""
    return f"::error title={_escape_property(title)}::{_escape_data(message)}"


def github_annotations(verdict: Verdict, env: Mapping[str, str]) -> list[str]:
    """The ``::error`` lines for a GitHub Actions log: each failed check, then a FAIL
    verdict's reason. None outside GitHub Actions."""
    if env.get("GITHUB_ACTIONS") != "true":
        return []
    lines = [
        annotation(f"supabase restore: {f.category}", f"{f.test}: {f.message}")
        for f in verdict.failures[:ANNOTATIONS_LIMIT]
    ]
    if not verdict.passed:
        lines.append(annotation("supabase restore drill: FAIL", verdict.reason))
    return lines
