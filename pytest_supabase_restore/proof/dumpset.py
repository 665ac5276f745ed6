"""The export's side of :mod:`.copyhash`: which data file holds which table, pg_dump's session
settings, and the fingerprints of every table's data files, computed in worker processes.
"""

from __future__ import annotations

import codecs
import multiprocessing
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from ..pg.binaries import PgBinaries
from ..toc import list_archive
from .copyhash import DumpTable, Part, default_scheme, key_kind
from .records import CopyRead, Fingerprint
from .rlskeys import KeySample, Pick, fingerprint_and_pick
from .scope import Conn, TableRef

# pg_dump's setup_connection() sets these in every session it opens; the rest of what
# changes a value's text is the session default, read from the source (copy_settings).
_PG_DUMP_FIXED: dict[str, str] = {
    "DateStyle": "ISO",
    "IntervalStyle": "postgres",
    "extra_float_digits": "3",
    "search_path": "",  # ALWAYS_SECURE_SEARCH_PATH_SQL: reg* values are qualified
    "row_security": "off",
}
_FROM_SOURCE = ("TimeZone", "bytea_output", "lc_monetary", "xmloption")

# What pg_dump copies of each relation: every column but dropped and generated ones, in
# attnum order (pg_dump.c fmtCopyColumnList); a partitioned table's leaves are copied
# one by one, each with its own column order.
_LAYOUT = """
SELECT t.ord, c.oid::bigint, n.nspname::text, c.relname::text,
    ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
          WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
              AND a.attgenerated = '' ORDER BY a.attnum)
FROM pg_catalog.unnest(%s::text[]) WITH ORDINALITY AS t(name, ord)
JOIN pg_catalog.pg_class r ON r.oid = t.name::pg_catalog.regclass
CROSS JOIN LATERAL (
    SELECT r.oid AS relid WHERE r.relkind = 'r'
    UNION ALL
    SELECT pt.relid FROM pg_catalog.pg_partition_tree(r.oid) pt
    WHERE r.relkind = 'p' AND pt.isleaf) AS leaf
JOIN pg_catalog.pg_class c ON c.oid = leaf.relid AND c.relkind = 'r'
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
"""

_KEY_TYPES = """
SELECT pg_catalog.format_type(a.atttypid, a.atttypmod)
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = %s::pg_catalog.regclass AND a.attname = %s
"""


def _regclass(ref: TableRef) -> str:
    return '"{}"."{}"'.format(ref.schema.replace('"', '""'), ref.name.replace('"', '""'))


@dataclass(frozen=True)
class Layout:
    """What pg_dump copies of one manifest table, and its key types' order kinds."""

    parts: tuple[Part, ...]
    kinds: tuple[str, ...]


def layouts(conn: Conn, tables: Sequence[TableRef]) -> dict[str, Layout]:
    """Every table's :class:`Layout`, read from the catalog (inside the dump's snapshot)."""
    parts: dict[str, list[Part]] = {t.qualified: [] for t in tables}
    for ord_, oid, schema, name, columns in conn.execute(
        _LAYOUT, ([_regclass(t) for t in tables],)
    ).fetchall():
        part = Part(schema, name, tuple(columns), int(oid))
        parts[tables[int(ord_) - 1].qualified].append(part)
    out: dict[str, Layout] = {}
    for t in tables:
        kinds = []
        for col in t.pk:
            row = conn.execute(_KEY_TYPES, (_regclass(t), col)).fetchone()
            kinds.append(key_kind(str(row[0]) if row else "text"))
        found = sorted(parts[t.qualified], key=lambda p: (p.schema, p.name))
        out[t.qualified] = Layout(tuple(found), tuple(kinds))
    return out


def copy_settings(conn: Conn, *, quote_all_identifiers: bool) -> dict[str, str]:
    """The settings under which pg_dump's sessions wrote the COPY text: read on the source
    through a session opened like pg_dump's (role and database defaults applied)."""
    settings = dict(_PG_DUMP_FIXED)
    for name in _FROM_SOURCE:
        row = conn.execute("SELECT pg_catalog.current_setting(%s)", (name,)).fetchone()
        if row is not None:
            settings[name] = str(row[0])
    row = conn.execute("SELECT pg_catalog.current_setting('server_encoding')").fetchone()
    settings["client_encoding"] = str(row[0]) if row else "UTF8"
    settings["quote_all_identifiers"] = "on" if quote_all_identifiers else "off"
    return settings


def python_encoding(pg_encoding: str) -> str:
    """The Python codec for a server encoding (latin-1, which never fails, if unknown)."""
    name = {"UTF8": "utf-8", "SQL_ASCII": "latin-1", "WIN1252": "cp1252"}.get(pg_encoding)
    if name is not None:
        return name
    try:
        return codecs.lookup(pg_encoding.replace("_", "-")).name
    except LookupError:
        return "latin-1"


_TABLE_DATA = re.compile(r"^(\d+); 0 (\d+) TABLE DATA ", re.MULTILINE)


def data_entries(tools: PgBinaries, db_dir: Path) -> dict[int, int] | None:
    """Source table oid -> the dump id of its TABLE DATA entry (its file is
    ``<dump id>.dat``, with the compression's suffix); None when the archive's TOC cannot
    be listed. A TABLE DATA entry carries its table's oid: names with spaces cannot break
    the match."""
    listing = list_archive(tools, db_dir)
    if listing is None:
        return None
    return {int(m.group(2)): int(m.group(1)) for m in _TABLE_DATA.finditer(listing)}


def data_file(db_dir: Path, dump_id: int) -> Path | None:
    """The data file of one entry, if it exists (one of ``<id>.dat``, ``<id>.dat.gz`` ...)."""
    found = sorted(db_dir.glob(f"{dump_id}.dat*"))
    return found[0] if len(found) == 1 else None


def dump_tables(
    tables: Sequence[TableRef],
    layout: dict[str, Layout],
    files: dict[int, Path],
) -> tuple[list[DumpTable], list[TableRef]]:
    """The tables whose every part has a data file, and the others (fingerprinted on the
    source instead)."""
    ready: list[DumpTable] = []
    missing: list[TableRef] = []
    for t in tables:
        lay = layout.get(t.qualified)
        parts = lay.parts if lay is not None else ()
        paths = [files.get(p.oid) for p in parts]
        if lay is None or (t.kind == "r" and not parts) or any(p is None for p in paths):
            missing.append(t)
            continue
        ready.append(
            DumpTable(
                t.qualified,
                t.pk,
                lay.kinds,
                tuple((p, str(path)) for p, path in zip(parts, paths, strict=True)),
                default_scheme(),
            )
        )
    return ready, missing


def copy_read(table: DumpTable, settings: Mapping[str, str]) -> CopyRead:
    """How the restored copy is read for the comparison: as pg_dump wrote ``table``."""
    return CopyRead(table.scheme, tuple(p for p, _ in table.parts), table.kinds, dict(settings))


def dump_bytes(table: DumpTable) -> int:
    """The size of a table's data files on disk."""
    return sum(Path(f).stat().st_size for _, f in table.parts)


Picked = tuple[Fingerprint, KeySample | None]
Done = Callable[[DumpTable, Fingerprint, KeySample | None], None]

# A table's files up to this size are hashed in the calling thread: starting worker
# processes (spawned: each imports the package) costs more than hashing them.
_IN_THREAD_BYTES = 8 * 1024 * 1024


class Hashing:
    """Fingerprints of dump tables handed over one by one (as their files are complete):
    each table's files hashed in one of ``jobs`` worker processes (hashing is CPU work the
    GIL would serialise in threads; the pool starts with the first table that needs it), a
    small table in the calling thread. A table in ``pick`` also gets its RLS key sample,
    from the same read of its lines. ``done`` is called in the calling thread, from
    :meth:`submit`, :meth:`collect` and :meth:`finish`."""

    def __init__(
        self, encoding: str, jobs: int, done: Done, pick: Mapping[str, Pick] | None = None
    ) -> None:
        self.encoding, self.jobs, self.done, self.pick = encoding, jobs, done, pick or {}
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[Future[Picked], DumpTable] = {}
        self._lock = threading.Lock()
        self.started: float | None = None  # monotonic time of the first table handed over

    def submit(self, table: DumpTable) -> None:
        if self.started is None:
            self.started = time.monotonic()
        pick = self.pick.get(table.qualified)
        if self.jobs <= 1 or dump_bytes(table) < _IN_THREAD_BYTES:
            self.done(table, *fingerprint_and_pick(table, self.encoding, pick))
            return
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.jobs, mp_context=multiprocessing.get_context("spawn")
                )
            future = self._pool.submit(fingerprint_and_pick, table, self.encoding, pick)
        self._futures[future] = table

    @property
    def pending(self) -> bool:
        """True while a submitted table's fingerprint is not handed over yet."""
        return bool(self._futures)

    def collect(self, timeout: float | None = 0) -> None:
        """Hand over the results that are in (waiting up to ``timeout`` for one)."""
        if not self._futures:
            return
        finished, _ = wait(self._futures, timeout=timeout, return_when=FIRST_COMPLETED)
        for future in finished:
            table = self._futures.pop(future)
            self.done(table, *future.result())

    def finish(self) -> None:
        """Wait for every submitted table; then the worker processes end."""
        while self._futures:
            self.collect(timeout=None)
        self.close()

    def close(self, cancel: bool = False) -> None:
        """End the worker processes (``cancel``: dropping the tables not started). Safe to
        call from another thread, and more than once."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=cancel)


__all__ = [
    "Hashing",
    "Layout",
    "copy_read",
    "copy_settings",
    "data_entries",
    "data_file",
    "dump_bytes",
    "dump_tables",
    "layouts",
    "python_encoding",
]
