"""Best-effort cleanup: every step runs, a step that fails is logged and never stops the rest.

As pytest-postgresql's process fixture does, each cleanup step (stop a server, remove a
directory) gets its own guard: one that raises is logged as a warning naming the step and
its error (secrets redacted), and every other step still runs. What a step could not
remove stays registered with the :mod:`~pytest_supabase_restore.reaper`, whose watchdog
removes it once this process is gone.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .reaper import reaper

if TYPE_CHECKING:
    from .redact import Redactor

log = logging.getLogger(__name__)

Step = tuple[str, Callable[[], object]]
"""A cleanup step: what it does, in words ("stop the staging target"), and the callable."""


def run_steps(
    steps: Iterable[Step], *, redactor: Redactor | None = None, logger: logging.Logger = log
) -> list[str]:
    """Run every step in order, whatever the others do. Returns one line per step that
    raised ("stop the staging target: RuntimeError: ..."), each also logged as a warning."""
    from .redact import one_line

    failures: list[str] = []
    for what, step in steps:
        try:
            step()
        except Exception as exc:  # best effort: the next step must run
            text = f"{what}: {type(exc).__name__}: {exc}"
            line = redactor.line(text, 500) if redactor is not None else one_line(text, 500)
            logger.warning("cleanup step failed (the others still ran): %s", line)
            failures.append(line)
    return failures


def remove_dir(path: Path) -> None:
    """Remove a directory tree this process created and stop watching it; raises when it is
    still there (it then stays with the reaper, which removes it when this process ends)."""
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        raise OSError(f"{path} could not be removed (the reaper removes it at exit)")
    reaper.forget_path(path)
