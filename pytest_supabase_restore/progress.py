"""Live progress of the drill through pytest's terminal reporter.

The drill runs before collection, in ``pytest_sessionstart``, and its long phases (the
demo's seeding, pg_dump with the fingerprints and the Storage download, the restore with
the Storage upload) used to be silent until they ended: minutes without a line on a CI log.
:class:`LiveProgress` writes each message of the drill as a line and, while a phase has had
nothing to say for :data:`HEARTBEAT_SECONDS`, a heartbeat: the phase, how long it has run,
and what it has written so far with its rate, where the drill can tell (:func:`phase_work`).
On a CI log (no terminal) a heartbeat is a plain line; on a terminal it is one live line,
rewritten in place, that the next message replaces.

It writes through pytest's terminal reporter only (``write_line``/``rewrite``), so it
composes with ``-q``, ``-v`` and xdist (the drill runs on the controller, before the
workers start); the checks' own progress is pytest's.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .redact import Redactor
from .verdict_text import format_bytes, format_seconds

log = logging.getLogger(__name__)
PREFIX = "[supabase-restore]"
HEARTBEAT_SECONDS = 3.5  # at most this long without a line while a phase runs (+ TICK)
TICK = 0.5

# What a phase is writing, for its heartbeat: (what, the directories it writes into).
Work = tuple[str, list[Path]]


def dir_bytes(paths: list[Path]) -> int:
    """The size of every file below ``paths`` (files that vanish meanwhile count 0)."""
    total = 0
    for root in paths:
        for base, _dirs, files in os.walk(root):
            for name in files:
                try:
                    total += os.lstat(os.path.join(base, name)).st_size
                except OSError:
                    continue
    return total


class LiveProgress:
    """The drill's progress messages, and a heartbeat while a phase is quiet."""

    def __init__(
        self,
        terminal: Any,
        redactor: Redactor,
        phase: Callable[[], str | None],
        work: Callable[[], Work | None] = lambda: None,
        *,
        interval: float = HEARTBEAT_SECONDS,
    ) -> None:
        """``phase`` names the running phase (None: none runs); ``work`` says what it writes."""
        self._tr = terminal
        self._redactor = redactor
        self._phase = phase
        self._work = work
        self._interval = interval
        self._live = bool(getattr(terminal, "isatty", False)) and terminal is not None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_line = time.monotonic()
        self._current: str | None = None
        self._phase_start = time.monotonic()
        self._bytes: tuple[float, int] | None = None  # (when, bytes) at the last heartbeat
        self._showing = False  # a live line is on the screen

    # -- messages -------------------------------------------------------------------------
    def __call__(self, message: str) -> None:
        """One message of the drill, as a line of its own."""
        with self._lock:
            self._write(f"{PREFIX} {self._redactor.redact(message)}")

    def _write(self, line: str) -> None:
        if self._tr is None:
            return
        if self._showing:
            self._tr.rewrite("", erase=True)
            self._tr.rewrite("")
            self._showing = False
        self._tr.write_line(line)
        self._last_line = time.monotonic()

    # -- heartbeat ------------------------------------------------------------------------
    def start(self) -> None:
        if self._tr is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="supabase-progress", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)
        with self._lock:
            if self._showing:
                self._tr.rewrite("", erase=True)
                self._tr.rewrite("")
                self._showing = False

    def _run(self) -> None:
        while not self._stop.wait(TICK):
            try:
                self._tick()
            except Exception:  # a heartbeat must never break the drill
                log.debug("progress heartbeat failed", exc_info=True)

    def _tick(self) -> None:
        now = time.monotonic()
        phase = self._phase()
        with self._lock:
            if phase != self._current:
                self._current, self._phase_start, self._bytes = phase, now, None
            if phase is None or now - self._last_line < self._interval:
                return
            line = f"{PREFIX} {phase}: running for {format_seconds(now - self._phase_start)}"
            detail = self._detail(now)
            if detail:
                line += f"; {detail}"
            line = self._redactor.redact(line)
            if self._live:
                self._tr.rewrite(line, erase=True)
                self._showing = True
                self._last_line = now
            else:
                self._write(line)

    def _detail(self, now: float) -> str:
        """What the phase has written so far, and at what rate since the last heartbeat."""
        work = self._work()
        if work is None:
            return ""
        what, paths = work
        size = dir_bytes(paths)
        text = f"{what} {format_bytes(size)}"
        if self._bytes is not None and now > self._bytes[0]:
            rate = (size - self._bytes[1]) / (now - self._bytes[0])
            if rate > 0:
                text += f" ({format_bytes(rate)}/s)"
        self._bytes = (now, size)
        return text
