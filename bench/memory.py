"""Peak resident memory of every process in a tree, sampled from /proc (Linux).

The drill starts many processes: the pytest process, the local S3 servers, pg_dump and
pg_restore, the throwaway PostgreSQL clusters. ``TreePeak`` walks the tree below one pid
every ``interval`` seconds and keeps, per process, the largest resident size it saw:

* for most processes the kernel's own high-water mark (``VmHWM``), exact however briefly
  the peak lasted;
* for PostgreSQL servers (``postgres``) the sampled ``RssAnon + RssFile``: their shared
  buffers (``RssShmem``) are counted once per backend by VmHWM and are sized by
  ``shared_buffers``, not by the drill, so they are set aside.

A process that lives shorter than one interval may be missed; the benchmark also reports
``RUSAGE_CHILDREN`` for those.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

MB = 1_000_000
_PROC = Path("/proc")


@dataclass
class ProcessPeak:
    """The largest resident size seen for one process, in bytes."""

    pid: int
    label: str
    peak: int = 0


def _status(pid: int) -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        text = (_PROC / str(pid) / "status").read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return fields


def _kib(fields: dict[str, str], name: str) -> int:
    value = fields.get(name, "0 kB").split()
    return int(value[0]) * 1024 if value else 0


def resident(fields: dict[str, str]) -> int:
    """The peak resident bytes of one process from its /proc status fields."""
    if fields.get("Name") == "postgres":
        return _kib(fields, "RssAnon") + _kib(fields, "RssFile")
    return max(_kib(fields, "VmHWM"), _kib(fields, "VmRSS"))


# Python programs the drill starts, by script, as the report names them.
_SCRIPTS = {"_server_main.py": "S3 server", "reaper.py": "watchdog"}


def _cmdline(pid: int) -> bytes:
    try:
        return (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return b""


def label(pid: int, name: str) -> str:
    """What a process is, for the report: the script or module a Python process runs."""
    words = [a.decode(errors="replace") for a in _cmdline(pid).split(b"\0") if a]
    if not name.startswith("python") or len(words) < 2:
        return name
    for i, word in enumerate(words[1:], start=1):
        if word == "-m" and i + 1 < len(words):
            return f"python -m {words[i + 1]}"
        if word.endswith(".py"):
            script = os.path.basename(word)
            return _SCRIPTS.get(script, f"python {script}")
        if word == "-c":
            return "python -c"
    return name


def _children(pid: int) -> list[int]:
    """The live children of ``pid``, from each of its threads' ``children`` list."""
    found: list[int] = []
    try:
        tasks = list((_PROC / str(pid) / "task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(root: int) -> dict[int, int | None]:
    """``root`` and every live process below it, each with its parent (None for ``root``)."""
    found: dict[int, int | None] = {}
    todo: list[tuple[int, int | None]] = [(root, None)]
    while todo:
        pid, parent = todo.pop()
        if pid not in found:
            found[pid] = parent
            todo += [(child, pid) for child in _children(pid)]
    return found


@dataclass
class TreePeak:
    """Samples the tree below ``root`` in a thread until ``stop()``."""

    root: int
    root_label: str = "pytest"  # the benchmark's wrapper around pytest.main()
    interval: float = 0.1
    peaks: dict[int, ProcessPeak] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        for pid, parent in descendants(self.root).items():
            # A child forked but not yet exec'd still shares its parent's pages (and cmdline):
            # its memory is the parent's, already counted.
            if parent is not None and _cmdline(pid) == _cmdline(parent):
                continue
            fields = _status(pid)
            if "VmRSS" not in fields:  # gone, or a zombie: no memory of its own any more
                continue
            seen = self.peaks.get(pid)
            name = self.root_label if pid == self.root else label(pid, fields.get("Name", "?"))
            if seen is None or seen.label != name:  # new, or it has exec'd since
                seen = self.peaks[pid] = ProcessPeak(pid, name)
            seen.peak = max(seen.peak, resident(fields))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> TreePeak:
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="bench-rss", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def largest(self) -> ProcessPeak | None:
        """The process with the largest peak (the root included)."""
        return max(self.peaks.values(), key=lambda p: p.peak, default=None)

    def by_label(self) -> dict[str, float]:
        """The largest peak per kind of process, in MB, largest first."""
        out: dict[str, int] = {}
        for p in self.peaks.values():
            out[p.label] = max(out.get(p.label, 0), p.peak)
        return {k: v / MB for k, v in sorted(out.items(), key=lambda kv: -kv[1])}
