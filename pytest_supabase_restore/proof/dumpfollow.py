"""Hash pg_dump's data files while it still writes the others (directory format).

pg_dump ``-Fd`` writes ``toc.dat`` and closes it before it dumps any data
(``_CloseArchive`` in pg_backup_directory.c: the header and the TOC, then
``WriteDataChunks``). Each TABLE DATA entry's file is then opened once by the process that
dumps it (``_StartData``), written and closed (``_EndData``). So once ``toc.dat`` exists
and no process of pg_dump's group holds it open, the archive's listing names every data
file to come; and a data file that exists and that no process of the group holds open is
complete. Its table is hashed then (:class:`.dumpset.Hashing`), while pg_dump writes the
next tables, instead of after pg_dump ends.

Where the open files cannot be read (no ``/proc``), nothing is taken early: every table is
hashed once pg_dump has exited, as before.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from ..pg.binaries import PgBinaries
from .dumpset import Hashing, Layout, data_entries, data_file, dump_bytes, dump_tables
from .scope import TableRef

_PROC = Path("/proc")


def _group(pgid: int) -> list[int]:
    """The processes of the process group ``pgid`` (pg_dump leads its own session)."""
    pids: list[int] = []
    for entry in os.scandir(_PROC):
        if not entry.name.isdigit():
            continue
        try:
            stat = (_PROC / entry.name / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[2] == str(pgid):
            pids.append(int(entry.name))
    return pids


def _open_files(pids: Sequence[int]) -> set[str]:
    """The paths the processes hold open."""
    found: set[str] = set()
    for pid in pids:
        fd_dir = _PROC / str(pid) / "fd"
        try:
            names = os.listdir(fd_dir)
        except OSError:
            continue
        for name in names:
            try:
                found.add(os.readlink(fd_dir / name))
            except OSError:
                continue
    return found


def can_follow(pid: int) -> bool:
    """True when this machine shows which files a process holds open."""
    return (_PROC / str(pid) / "fd").is_dir() and os.access(_PROC / str(pid) / "fd", os.R_OK)


class DumpFollower:
    """Which data files of a running ``pg_dump -Fd`` are complete."""

    def __init__(self, tools: PgBinaries, db_dir: Path, pgid: int) -> None:
        self.tools, self.db_dir, self.pgid = tools, db_dir, pgid
        self.entries: dict[int, int] | None = None  # table oid -> dump id, once toc.dat is

    def complete(self, exited: bool) -> dict[int, Path]:
        """Table oid -> data file, for the files complete now (``exited``: pg_dump has
        ended, so every file that exists is). What exists is looked at before what is open:
        a file seen before the scan of open files and not open during it was closed in
        between, and pg_dump never opens a data file twice."""
        if self.entries is None and not self._read_toc(exited):
            return {}
        assert self.entries is not None
        seen: dict[int, Path] = {}
        for oid, dump_id in self.entries.items():
            path = data_file(self.db_dir, dump_id)
            if path is not None:
                seen[oid] = path
        busy: set[str] = set() if exited else _open_files(_group(self.pgid))
        return {oid: path for oid, path in seen.items() if str(path.resolve()) not in busy}

    def _read_toc(self, exited: bool) -> bool:
        """Read the data entries once ``toc.dat`` is written and closed; True once read."""
        toc = self.db_dir / "toc.dat"
        if not toc.is_file():
            return False
        if not exited and str(toc.resolve()) in _open_files(_group(self.pgid)):
            return False
        self.entries = data_entries(self.tools, self.db_dir)
        return self.entries is not None


def hash_while_dumping(
    dumper: subprocess.Popen[bytes],
    tools: PgBinaries,
    db_dir: Path,
    tables: Sequence[TableRef],
    layout: dict[str, Layout],
    hashing: Hashing,
    stop: threading.Event,
    poll: float = 0.25,
) -> float:
    """Hand each table to ``hashing`` as soon as all its data files are complete, largest
    first among those ready; then wait for every fingerprint. Returns the seconds the
    hashing went on after pg_dump exited. Returns early, with nothing more submitted, when
    pg_dump fails or ``stop`` is set. Tables without a data file of their own are left to
    the caller (not in ``hashing``'s results)."""
    follower = DumpFollower(tools, db_dir, dumper.pid)
    early = can_follow(dumper.pid)
    pending = list(tables)
    exited_at: float | None = None
    while not stop.is_set():
        exited = dumper.poll() is not None
        if exited and dumper.returncode != 0:
            return 0.0  # the export reports pg_dump's failure
        if pending and (exited or early):
            ready, pending = dump_tables(pending, layout, follower.complete(exited))
            ready.sort(key=dump_bytes, reverse=True)
            for table in ready:
                hashing.submit(table)
                hashing.collect()
        if exited:
            exited_at = time.monotonic()
            break
        if hashing.pending:
            hashing.collect(timeout=poll)
        else:
            stop.wait(poll)
    if exited_at is None:  # stopped
        return 0.0
    hashing.finish()
    return time.monotonic() - exited_at


__all__ = ["DumpFollower", "can_follow", "hash_while_dumping"]
