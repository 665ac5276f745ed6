"""The dry run (``--supabase-dry-run``): the preflight's table (see :mod:`.preflight`), shown
and kept in the drill state; any check that would make the drill fail fails the dry run,
naming the check and its fix. Nothing is exported and nothing is written."""

from __future__ import annotations

from collections.abc import Callable

from .config import Config
from .preflight import Check, failed, run_preflight, table_lines
from .results import DrillState
from .storage.endpoint import S3Endpoint


def failure_message(bad: list[Check]) -> str:
    """The drill's error for a failed preflight: how many, and the first with its fix."""
    first = bad[0]
    text = (
        f"preflight: {len(bad)} check(s) would make the drill fail; {first.check}: {first.result}"
    )
    return text + (f". Fix: {first.fix}" if first.fix else "")


def dry_run(
    settings: Config,
    db_url: str | None,
    s3: S3Endpoint | None,
    sources: list[str],
    state: DrillState,
    progress: Callable[[str], None],
) -> None:
    checks = run_preflight(settings, db_url, s3, sources)
    state.preflight = [c.to_json() for c in checks]
    state.dry_run = table_lines(checks)
    for line in state.dry_run:
        progress(line)
    bad = failed(checks)
    if bad:
        state.error = failure_message(bad)
        state.error_phase = "dry-run"
