"""The drill's time limit: a timer signal that stops the drill in whatever it waits for."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .errors import DrillError


class DrillTimeout(DrillError):
    """The drill exceeded its time limit (raised in the main thread by a timer signal)."""


@contextlib.contextmanager
def deadline(seconds: float | None, phase: Callable[[], str]) -> Iterator[None]:
    """Raise :class:`DrillTimeout` in the main thread after ``seconds``, naming the drill's
    phase at that moment (``phase()``).

    A timer signal interrupts whatever the drill waits for (pg_dump, pg_restore, a query,
    a thread pool); the usual failure paths then stop child processes and remove partial
    files. Only in the main thread, where signal handlers run; elsewhere no limit applies.
    """
    usable = (
        seconds
        and hasattr(signal, "SIGALRM")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return
    assert seconds is not None

    def expire(signum: int, frame: Any) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        raise DrillTimeout(
            f"the drill did not finish within its time limit of {seconds:g} s "
            f"(--supabase-drill-timeout or pytest-timeout's session timeout); it was stopped "
            f"during the {phase()} phase and everything it started was cleaned up. "
            "Fix: raise the limit, or find out why that phase is slow (see the phase times)."
        )

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
