"""The verdict in words: durations, sizes, the backup line, the recovery point, a
category's status and the scope, the same in every report (terminal, HTML, job summary,
issue, Slack)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import CATEGORIES

if TYPE_CHECKING:
    from .verdict import CategoryCounts, Verdict

FULL, QUICK = "full", "quick"  # the scope of a run


def format_seconds(seconds: float | None) -> str:
    """``12.3 s``, ``4 min 05 s`` or ``1 h 02 min``; ``n/a`` when unknown."""
    if seconds is None:
        return "n/a"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_bytes(size: float | None) -> str:
    """``1.2 MB`` style (decimal units); ``n/a`` when unknown."""
    if size is None:
        return "n/a"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def backup_line(verdict: Verdict) -> str:
    """One line describing the backup's size, e.g. ``12 tables, 3,400 rows, ...``."""
    b = verdict.backup

    def num(key: str) -> str:
        value = b.get(key)
        return f"{int(value):,}" if isinstance(value, (int, float)) else "n/a"

    return (
        f"{num('tables')} tables, {num('rows')} rows, {format_bytes(b.get('db_bytes'))} "
        f"database, {num('objects')} objects ({format_bytes(b.get('object_bytes'))})"
    )


def rpo_line(verdict: Verdict) -> str:
    """The recovery point: the snapshot time and its age."""
    snap = verdict.rpo.get("snapshot_time")
    if not snap:
        return "n/a"
    age = verdict.rpo.get("age_seconds")
    return f"snapshot {snap}" + (f" ({format_seconds(age)} old)" if age is not None else "")


def category_status(
    counts: CategoryCounts, dry_run: bool = False, selected: bool = True, *, vacant: bool = False
) -> str:
    """``PASS``, ``FAIL``, ``NOT RUN`` (no passing test) or ``-`` (dry run or not selected:
    nothing was meant to run). A ``vacant`` category (nothing of it in this backup, every
    test skipped) passes: there was nothing to restore."""
    if counts.failed or counts.errors:
        return "FAIL"
    if counts.passed or (vacant and not dry_run and selected):
        return "PASS"
    return "-" if dry_run or not selected else "NOT RUN"


def scope_line(verdict: Verdict) -> str:
    """``full (all 8 categories)`` or ``quick check (5 of 8 categories; ...)``."""
    total = len(CATEGORIES)
    if verdict.scope == FULL:
        return f"full (all {total} categories)"
    return (
        f"quick check ({total - len(verdict.not_selected)} of {total} categories; "
        f"not selected: {', '.join(verdict.not_selected)})"
    )
