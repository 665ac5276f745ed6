"""Live progress of the drill through pytest's terminal reporter.

The drill runs before collection, in ``pytest_sessionstart``, and its long phases (the
demo's seeding, pg_dump with the fingerprints and the Storage download, the restore with
the Storage upload) used to be silent until they ended: minutes without a line on a CI log.
:class:`LiveProgress` writes each message of the drill as a line and, while a phase has had
nothing to say for :data:`HEARTBEAT_SECONDS`, a heartbeat: the phase, how long it has run,
and what it has done so far with its rate, where the drill can tell (``Drill.work``). Where
the total is known (the restore reads a dump of known size; the Storage upload knows every
object's size) the heartbeat adds done/total, the percentage and an ETA from the average
rate so far; where it is not (pg_dump cannot tell how much it will write) it shows no total
and no ETA rather than a guess.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Amount:
    """How far one part of a phase is: ``done`` of ``total`` bytes (``total`` None: not known,
    so no percentage and no ETA), and ``items`` of ``items_total`` where they are counted."""

    what: str
    done: int
    total: int | None = None
    items: int | None = None
    items_total: int | None = None
    noun: str = "objects"


def eta_seconds(amount: Amount, first: tuple[float, int], now: float) -> float | None:
    """The time left at the average rate since ``first`` (when, done); None without a known
    total, when it is reached, or before anything progressed."""
    if amount.total is None or amount.done >= amount.total:
        return None
    elapsed, progressed = now - first[0], amount.done - first[1]
    if elapsed <= 0 or progressed <= 0:
        return None
    return (amount.total - amount.done) * elapsed / progressed


def format_amount(amount: Amount, rate: float | None, eta: float | None) -> str:
    """``dump read 12.0 MB of 40.0 MB, 30% (3.0 MB/s, ETA 9.3 s)``; the parts not known are
    left out (no total: no percentage, no ETA)."""
    text = f"{amount.what} {format_bytes(amount.done)}"
    if amount.total is not None:
        share = 100 * min(amount.done, amount.total) / amount.total if amount.total else 100
        text += f" of {format_bytes(amount.total)}, {share:.0f}%"
    if amount.items is not None:
        text += f", {amount.items}"
        if amount.items_total is not None:
            text += f" of {amount.items_total}"
        text += f" {amount.noun}"
    extra = []
    if rate is not None and rate > 0:
        extra.append(f"{format_bytes(rate)}/s")
    if eta is not None:
        extra.append(f"ETA {format_seconds(eta)}")
    return text + (f" ({', '.join(extra)})" if extra else "")


class Tally:
    """Bytes and items done, counted by worker threads and read by the heartbeat."""

    def __init__(self, total: int | None = None, items_total: int | None = None) -> None:
        self.total, self.items_total = total, items_total
        self.done = self.items = 0
        self._lock = threading.Lock()

    def add(self, size: int, items: int = 1) -> None:
        with self._lock:
            self.done += size
            self.items += items

    def amount(self, what: str, noun: str = "objects") -> Amount:
        with self._lock:
            return Amount(what, self.done, self.total, self.items, self.items_total, noun)


def _proc_table() -> dict[int, tuple[int, str]]:
    """Every process this user can see: pid -> (parent pid, command name)."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        table[int(entry.name)] = (ppid, comm)
    return table


def tool_bytes_read(name: str, argument: str) -> int | None:
    """The bytes read so far by this process's descendants named ``name`` whose command line
    holds ``argument`` (``pg_restore`` with ``--section=data`` and its parallel workers), from
    Linux's ``/proc/<pid>/io``; None when none runs or this is not Linux."""
    if not Path("/proc/self/io").exists():
        return None
    table = _proc_table()
    ours: set[int] = {os.getpid()}
    changed = True
    while changed:
        more = {pid for pid, (ppid, _comm) in table.items() if ppid in ours} - ours
        ours |= more
        changed = bool(more)
    total, found = 0, False
    for pid in ours:
        if table.get(pid, (0, ""))[1] != name:
            continue
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if argument.encode() not in args:
                continue
            io = Path(f"/proc/{pid}/io").read_text()
        except OSError:
            continue
        fields = dict(line.split(": ", 1) for line in io.splitlines() if ": " in line)
        total += int(fields.get("rchar", "0"))
        found = True
    return total if found else None


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


def dump_bytes(db_dir: Path) -> int:
    """The size of a directory-format dump: what pg_restore's data section reads in all."""
    return sum(p.stat().st_size for p in db_dir.iterdir() if p.is_file())


def restore_amounts(
    phase: str | None, dump: int | None, data_dir: Path | None, upload: Tally | None
) -> list[Amount] | None:
    """The restore's progress: the bytes pg_restore's data section has read of the dump
    (``dump`` bytes in all), what the staging data directory holds (no total), and the
    Storage upload (beside the restore, then in its own ``storage`` phase)."""
    amounts: list[Amount] = []
    if phase == "restore":
        read = tool_bytes_read("pg_restore", "--section=data") if dump is not None else None
        if dump is not None and read is not None:
            amounts.append(Amount("dump read", min(read, dump), dump))
        if data_dir is not None:
            amounts.append(Amount("staging holds", dir_bytes([data_dir])))
    if phase in ("restore", "storage") and upload is not None:
        amounts.append(upload.amount("storage uploaded"))
    return amounts or None


class LiveProgress:
    """The drill's progress messages, and a heartbeat while a phase is quiet."""

    def __init__(
        self,
        terminal: Any,
        redactor: Redactor,
        phase: Callable[[], str | None],
        work: Callable[[], Work | Sequence[Amount] | None] = lambda: None,
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
        # Per amount: (when, done) at the last heartbeat, and when it was first seen.
        self._last: dict[str, tuple[float, int]] = {}
        self._first: dict[str, tuple[float, int]] = {}
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
                self._current, self._phase_start = phase, now
                self._last, self._first = {}, {}
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
        """What the phase has done so far, at what rate since the last heartbeat, and, where
        the total is known, how much of it and the time left."""
        work = self._work()
        if work is None:
            return ""
        if isinstance(work, tuple):
            what, paths = work
            work = [Amount(what, dir_bytes(paths))]
        parts = []
        for amount in work:
            last = self._last.get(amount.what)
            first = self._first.setdefault(amount.what, (now, amount.done))
            rate = None
            if last is not None and now > last[0]:
                rate = (amount.done - last[1]) / (now - last[0])
            self._last[amount.what] = (now, amount.done)
            parts.append(format_amount(amount, rate, eta_seconds(amount, first, now)))
        return "; ".join(parts)
