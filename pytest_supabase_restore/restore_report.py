"""Unexpected restore errors for people: grouped by cause, each with its whole statement.

``schema "auth" does not exist`` for 89 statements is one cause with 89 statements, not 89
lines and not one. Every string is redacted first and shortened after (a cut must never
split a secret so that the redactor no longer recognises it: :func:`.redact.shorten`); a
long statement is shortened in the middle, keeping its head, which names the object, and its
tail. Statements never
carry row contents: a ``COPY`` is its header line, an ``INSERT`` its column list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .errors import first_line
from .redact import Redactor, shorten
from .results import RestoreIssue

STATEMENT_LIMIT = 2000
"""Characters of one statement in the JSON summary and the HTML report."""
RESTORE_ERRORS_PREFIX = "restore: "
"""How the drill's error starts when the restore had unexpected errors (:func:`error_summary`)."""

_DETAIL = re.compile(r"\s+(?:LINE \d+:|DETAIL:|HINT:|CONTEXT:|QUERY:|WHERE:)\s.*$", re.S)
_ERROR_PREFIX = re.compile(r"^(?P<label>[\w.]+: )?(?:ERROR|FATAL):\s+")
_QUOTES_VALUE = re.compile(
    r"(?P<what>(?:invalid input (?:syntax|value) for (?:type|enum) [^:]+|"
    r"malformed \w+ literal|invalid byte sequence for encoding \S+|"
    r"invalid input syntax for [^:]+)): .*$"
)


def message_cause(message: str) -> str:
    """The cause an error message states, as one line: without ``ERROR:``, the statement
    excerpt (``LINE 3: ...``), DETAIL, HINT and CONTEXT (which may quote rows), and with a
    value the message quotes withheld (``invalid input syntax for type integer: ...``)."""
    text = " ".join(str(message).split())
    text = _DETAIL.sub("", text)
    for _ in range(2):  # "COPY failed for table "t": ERROR:  ..." carries a second prefix
        m = _ERROR_PREFIX.match(text)
        if m:
            text = (m.group("label") or "") + text[m.end() :]
    text = text.replace(": ERROR: ", ": ")
    return _QUOTES_VALUE.sub(lambda m: f"{m.group('what')}: (value withheld)", text).strip()


_INSERT_VALUES = re.compile(
    r"^(?P<head>INSERT\s+INTO\s+.*?)\s+(?:VALUES|SELECT|OVERRIDING)\b", re.I | re.S
)


def report_statement(statement: str) -> str:
    """``statement`` as one line, without row contents: a ``COPY ... FROM stdin`` is only its
    header line, an ``INSERT`` only its target and column list."""
    text = str(statement).strip()
    if re.match(r"COPY\b", text, re.I):
        text = first_line(text)
    else:
        m = _INSERT_VALUES.match(text)
        if m:
            text = m.group("head") + " VALUES … (values withheld)"
    return " ".join(text.split())


@dataclass
class RestoreErrorGroup:
    """The unexpected restore errors of one cause: how many, each statement, their objects."""

    cause: str
    count: int
    statements: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "cause": self.cause,
            "count": self.count,
            "statements": list(self.statements),
            "objects": list(self.objects),
        }


def group_restore_errors(
    issues: Iterable[RestoreIssue],
    redactor: Redactor | None = None,
    *,
    limit: int = STATEMENT_LIMIT,
) -> list[RestoreErrorGroup]:
    """The unexpected errors among ``issues``, grouped by cause (most frequent first, then in
    the order they happened), every string redacted and then shortened to ``limit`` (a
    statement in the middle)."""
    redact = (redactor or Redactor()).redact
    groups: dict[str, RestoreErrorGroup] = {}
    for issue in issues:
        if issue.expected:
            continue
        cause = shorten(message_cause(redact(issue.message)), limit) or "unknown error"
        group = groups.setdefault(cause, RestoreErrorGroup(cause=cause, count=0))
        group.count += 1
        statement = report_statement(redact(issue.statement))
        if statement:
            group.statements.append(shorten(statement, limit, middle=True))
        obj = redact(issue.object) if issue.object else ""
        if obj and obj not in group.objects:
            group.objects.append(obj)
    order = {cause: i for i, cause in enumerate(groups)}
    return sorted(groups.values(), key=lambda g: (-g.count, order[g.cause]))


def causes_line(groups: Sequence[RestoreErrorGroup], limit: int = 400) -> str:
    """``schema "auth" does not exist (89 statements); role "x" does not exist``, within ``limit``
    characters (the rest counted)."""
    parts: list[str] = []
    for i, group in enumerate(groups):
        part = group.cause + (f" ({group.count} statements)" if group.count > 1 else "")
        rest = len(groups) - i
        if parts and len("; ".join([*parts, part])) > limit:
            return "; ".join(parts) + f"; and {rest} more cause{'s' * (rest != 1)}"
        parts.append(shorten(part, limit, middle=True))
    return "; ".join(parts)


def heading(groups: Sequence[RestoreErrorGroup]) -> str:
    """``90 unexpected restore errors of 2 causes``."""
    n, k = sum(g.count for g in groups), len(groups)
    return f"{n} unexpected restore error{'s' * (n != 1)} of {k} cause{'s' * (k != 1)}"


def text_lines(
    groups: Sequence[RestoreErrorGroup], *, per_group: int = 3, limit: int = 300
) -> list[str]:
    """Every group as plain text lines for the terminal: the cause with its count, then
    the first ``per_group`` statements (each within ``limit``) and how many more there are.
    The strings are already redacted (:func:`group_restore_errors`)."""
    lines: list[str] = []
    for group in groups:
        noun = "statement" if group.count == 1 else "statements"
        lines.append(f"- {group.cause}: {group.count} {noun}")
        for statement in group.statements[:per_group]:
            lines.append(f"    {shorten(statement, limit, middle=True)}")
        hidden = group.count - min(per_group, len(group.statements))
        if hidden > 0:
            lines.append(f"    ... and {hidden} more")
    return lines


def error_summary(issues: Sequence[RestoreIssue]) -> str:
    """The drill's error for a restore with unexpected errors: how many, of how many causes,
    which (every statement is in the verdict's ``restore_errors``)."""
    groups = group_restore_errors(issues)
    n = sum(g.count for g in groups)
    return (
        f"{RESTORE_ERRORS_PREFIX}{n} unexpected error{'s' * (n != 1)} of {len(groups)} "
        f"cause{'s' * (len(groups) != 1)}: {causes_line(groups, 300)} (every statement is "
        "listed under restore errors)"
    )


__all__ = [
    "RESTORE_ERRORS_PREFIX",
    "STATEMENT_LIMIT",
    "RestoreErrorGroup",
    "causes_line",
    "error_summary",
    "group_restore_errors",
    "heading",
    "message_cause",
    "report_statement",
    "text_lines",
]
