"""One preflight check's row, and the table they print as."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

PASS = "PASS"  # noqa: S105 (a status, not a password)
FAIL = "FAIL"  # the drill would fail: the dry run fails too
WARN = "WARN"  # the drill runs, but something needs attention (listed by name)
INFO = "INFO"  # a fact the user should know (sizes, estimates)


@dataclass(frozen=True)
class Check:
    """One row: what was checked, what was found, and how to fix a failure."""

    check: str
    status: str  # PASS | FAIL | WARN | INFO
    result: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def failed(checks: Sequence[Check]) -> list[Check]:
    """The checks that would make the drill fail."""
    return [c for c in checks if c.status == FAIL]


def human_bytes(n: float) -> str:
    """``n`` bytes in binary units: ``512 B``, ``8.0 KiB``, ``1.6 GiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_seconds(seconds: float) -> str:
    """A duration for a person: ``45 s``, ``3 min 20 s``, ``2 h 5 min``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def shortened(items: Sequence[str], limit: int = 10) -> str:
    """``items`` joined, at most ``limit`` of them, with how many were left out."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def table_lines(checks: Sequence[Check]) -> list[str]:
    """The checks as a plain-text table: check | result | fix (the fix only where one is
    needed), each row's result prefixed with its status."""
    width = max((len(c.check) for c in checks), default=5)
    lines = [f"{'check'.ljust(width)}  result  (fix)"]
    for c in checks:
        line = f"{c.check.ljust(width)}  {c.status} {c.result}"
        if c.fix:
            line += f"  -- fix: {c.fix}"
        lines.append(line)
    bad = failed(checks)
    lines.append(
        f"preflight: {len(bad)} check(s) would make the drill fail" if bad else "preflight: PASS"
    )
    return lines
