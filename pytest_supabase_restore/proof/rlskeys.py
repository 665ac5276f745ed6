"""A bounded sample of keys per RLS table, taken from the dump's own COPY lines, and the
index lookups that say which of them an identity sees.

Counting every row each identity sees costs a full scan per identity and table; this costs
at most :data:`SPREAD` + :data:`PER_USER` index lookups per identity and table (or a read of
a table of at most :data:`WHOLE` rows, sampled whole). The keys are picked while the export
hashes the dump's lines (:func:`fingerprint_and_pick`), so picking reads nothing from the
source. Two strata: a spread of :data:`SPREAD` keys over the whole table in dump order, and
the first :data:`PER_USER` rows whose line holds a sampled user's id (``owner_id =
auth.uid()`` and its kin). Each side then asks, as each identity, which of the spread and
of its own rows' keys it can read (:func:`lookup_query`): the export in its snapshot,
staging in the restored copy, and the two index lists must be equal.

Key values stay in the manifest (the backup's own file); messages name only counts.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg import sql

from .copyhash import DumpTable, copy_unescape, file_lines, fingerprint_lines
from .records import Fingerprint, Part
from .scope import Conn, TableRef, relation, scoped

SPREAD = 48
"""Keys spread over each table (every key of a smaller one)."""
PER_USER = 8
"""Keys of rows holding each sampled user's id, per table."""
WHOLE = 256
"""A table of at most this many rows is sampled whole: every key, and the planner may read
it as it likes (a scan of a few pages costs fewer block reads than a probe per key)."""
_KEPT = WHOLE  # spread candidates kept while reading: halved (stride doubled) past it


@dataclass(frozen=True)
class KeySample:
    """The sampled keys of one table: ``keys`` (each the text of its ``columns``, as COPY
    wrote it; distinct, never NULL), the first ``spread`` of them spread over the table;
    ``hits``: per sampled user, the indexes of the keys of rows holding its id (searched
    for in tables with a uuid column), appended after the spread. Each identity is asked
    about the spread and its own hits (:meth:`probed`). ``by``: the index the columns are
    the key of, ``primary key`` or, for a table without one, ``index "<name>"`` (a key that
    need not be unique: a sampled key is visible when some row with it is). ``whole``: the
    keys are those of every row (a table of at most :data:`WHOLE` rows), so the planner
    may read it as it likes instead of probing key by key."""

    columns: tuple[str, ...]
    keys: tuple[tuple[str, ...], ...]
    spread: int
    by: str = "primary key"
    whole: bool = False
    hits: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def probed(self, identity: str | None) -> list[int]:
        """The indexes of the keys ``identity`` (a user id; None or anon: the spread only)
        is asked about, ascending."""
        own = self.hits.get(identity, ()) if identity is not None else ()
        return sorted(set(range(self.spread)).union(own))

    def to_json(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "columns": list(self.columns),
            "keys": [list(k) for k in self.keys],
            "spread": self.spread,
            "hits": {u: list(i) for u, i in self.hits.items()},
            "whole": self.whole,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KeySample:
        return cls(
            columns=tuple(str(c) for c in data["columns"]),
            keys=tuple(tuple(str(v) for v in k) for k in data["keys"]),
            spread=int(data["spread"]),
            by=str(data.get("by", "primary key")),
            whole=bool(data.get("whole", False)),
            hits={str(u): tuple(int(i) for i in v) for u, v in (data.get("hits") or {}).items()},
        )


def _is_index_list(value: Any, size: int) -> bool:
    return (
        isinstance(value, list)
        and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < size for i in value)
        and value == sorted(set(value))
    )


def sample_problem(data: Any) -> str | None:
    """Why ``data`` is not a :meth:`KeySample.to_json` (None when it is)."""
    if not isinstance(data, dict):
        return "must be an object"
    if not isinstance(data.get("by", ""), str):
        return "by must name the key's index"
    if not isinstance(data.get("whole", False), bool):
        return "whole must be true or false"
    columns, keys, spread = data.get("columns"), data.get("keys"), data.get("spread")
    if not (isinstance(columns, list) and columns and all(isinstance(c, str) for c in columns)):
        return "columns must be the key's column names"
    if not (
        isinstance(keys, list)
        and all(
            isinstance(k, list) and len(k) == len(columns) and all(isinstance(v, str) for v in k)
            for k in keys
        )
    ):
        return "keys must be lists of one text per key column"
    if len({tuple(k) for k in keys}) != len(keys):
        return "keys must not repeat"
    if not (isinstance(spread, int) and not isinstance(spread, bool) and 0 <= spread <= len(keys)):
        return "spread must count the first keys"
    hits = data.get("hits", {})
    if not (
        isinstance(hits, dict)
        and all(isinstance(u, str) and _is_index_list(v, len(keys)) for u, v in hits.items())
    ):
        return "hits must map user ids to ascending indexes of keys"
    return None


# -- picking, beside the fingerprint of the dump's lines (runs in a worker process) ----------
class KeyPicker:
    """Collects the two strata from batches of COPY lines of one table."""

    def __init__(self, columns: Sequence[str], users: Sequence[str], encoding: str) -> None:
        self.columns, self.encoding = tuple(columns), encoding
        self.users = tuple(users)
        self.needles = [u.encode(encoding) for u in users]
        self.hits: list[list[tuple[str, ...]]] = [[] for _ in users]
        self.kept: list[tuple[str, ...]] = []
        self.stride, self.seen = 1, 0

    def _key(self, line: bytes, positions: Sequence[int]) -> tuple[str, ...] | None:
        fields = line.split(b"\t")
        if any(fields[p] == b"\\N" for p in positions):
            return None  # a NULL key (of a non-unique index) matches nothing
        return tuple(copy_unescape(fields[p].decode(self.encoding, "replace")) for p in positions)

    def _keys(self, lines: Sequence[bytes], positions: Sequence[int]) -> list[tuple[str, ...]]:
        return [k for k in (self._key(x, positions) for x in lines) if k is not None]

    def feed(self, part: Part, lines: list[bytes]) -> None:
        positions = part.key_positions(self.columns)
        # Widen the stride before reading keys, so a batch never has more than _KEPT read.
        while (
            len(self.kept) + len(range((-self.seen) % self.stride, len(lines), self.stride)) > _KEPT
        ):
            self.kept, self.stride = self.kept[::2], self.stride * 2
        self.kept += self._keys(lines[(-self.seen) % self.stride :: self.stride], positions)
        self.seen += len(lines)
        wanted = [i for i, h in enumerate(self.hits) if len(h) < PER_USER]
        if not wanted or not lines:
            return
        blob = b"\n".join(lines)  # one C search per user over the batch, not one per line
        starts: list[int] | None = None
        for i in wanted:
            at = blob.find(self.needles[i])
            while at >= 0 and len(self.hits[i]) < PER_USER:
                if starts is None:
                    starts = _line_starts(lines)
                n = _line_at(starts, at)
                self.hits[i] += self._keys(lines[n : n + 1], positions)
                at = blob.find(self.needles[i], starts[n + 1] if n + 1 < len(starts) else len(blob))

    def sample(self, by: str) -> KeySample:
        n = len(self.kept)
        whole = self.stride == 1 and n == self.seen <= WHOLE
        pick = whole or n <= SPREAD
        spread = self.kept if pick else [self.kept[i * n // SPREAD] for i in range(SPREAD)]
        keys = list(dict.fromkeys(spread))
        first = len(keys)
        index = {k: i for i, k in enumerate(keys)}
        hits: dict[str, tuple[int, ...]] = {}
        for user, found in zip(self.users, self.hits, strict=True):
            for k in found:
                if k not in index:
                    index[k] = len(keys)
                    keys.append(k)
            if found:
                hits[user] = tuple(sorted({index[k] for k in found}))
        return KeySample(self.columns, tuple(keys), first, by, whole, hits)


def _line_starts(lines: Sequence[bytes]) -> list[int]:
    starts, pos = [], 0
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    return starts


def _line_at(starts: Sequence[int], offset: int) -> int:
    return bisect.bisect_right(starts, offset) - 1


@dataclass(frozen=True)
class Pick:
    """What to sample of one table: its lookup key (:func:`lookup_key`) and the users."""

    columns: tuple[str, ...]
    by: str
    users: tuple[str, ...]


def fingerprint_and_pick(
    table: DumpTable, encoding: str, pick: Pick | None
) -> tuple[Fingerprint, KeySample | None]:
    """The table's fingerprint (:func:`.copyhash.fingerprint_lines` of its data files) and,
    with ``pick`` (None: no sample wanted), its key sample, from one read of its files."""
    picker = KeyPicker(pick.columns, pick.users, encoding) if pick is not None else None
    passes = 0

    def source() -> Iterator[tuple[Part, list[bytes]]]:
        nonlocal passes
        passes += 1
        for part, path in table.parts:
            for lines in file_lines(Path(path)):
                if picker is not None and passes == 1:
                    picker.feed(part, lines)
                yield part, lines

    fp = fingerprint_lines(source, table.pk, table.kinds, encoding=encoding, scheme=table.scheme)
    return fp, picker.sample(pick.by) if picker is not None and pick is not None else None


# -- the lookups (both sides) ----------------------------------------------------------------
# A table without a primary key is looked up by the columns of one of its plain B-tree
# indexes (every column dumped, no expression, no predicate), unique ones first.
_INDEX_KEYS = """
SELECT ic.relname::text, ARRAY(
    SELECT a.attname::text FROM pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    ORDER BY k.ord)
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
WHERE i.indrelid = %s::pg_catalog.regclass AND i.indpred IS NULL AND i.indexprs IS NULL
    AND NOT (0 = ANY(i.indkey::int2[]))
ORDER BY i.indisunique DESC, i.indnkeyatts, ic.relname COLLATE "C"
"""


_UUID_COLUMN = """
SELECT EXISTS (
    SELECT FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = %s::pg_catalog.regclass AND a.attnum > 0 AND NOT a.attisdropped
        AND a.atttypid = 'pg_catalog.uuid'::pg_catalog.regtype)
"""


def holds_user_ids(conn: Conn, table: TableRef) -> bool:
    """Whether ``table`` has a uuid column, the type of ``auth.users.id``: only then are its
    lines searched for the sampled users' ids (a search that finds nothing reads every line)."""
    name = sql.Identifier(table.schema, table.name).as_string(conn)
    row = conn.execute(_UUID_COLUMN, (name,)).fetchone()
    return bool(row and row[0])


def lookup_key(
    conn: Conn, table: TableRef, dumped: Sequence[str]
) -> tuple[tuple[str, ...], str] | None:
    """The columns a table's sampled keys are looked up by and the index that makes each
    lookup a probe: the primary key, else a plain B-tree index on ``dumped`` columns (the
    ones COPY writes); None: no such index (the table is counted in full)."""
    if table.pk:
        return table.pk, "primary key"
    name = sql.Identifier(table.schema, table.name).as_string(conn)
    for index, columns in conn.execute(_INDEX_KEYS, (name,)).fetchall():
        if columns and all(c in dumped for c in columns):
            return tuple(columns), f'index "{index}"'
    return None


_TYPES = """
SELECT pg_catalog.format_type(a.atttypid, a.atttypmod)
FROM pg_catalog.unnest(%s::text[]) WITH ORDINALITY AS c(name, ord)
JOIN pg_catalog.pg_attribute a
    ON a.attrelid = %s::pg_catalog.regclass AND a.attname = c.name AND NOT a.attisdropped
ORDER BY c.ord
"""


def plan_picks(
    conn: Conn,
    tables: Sequence[TableRef],
    dumped: Mapping[str, Collection[str]],
    users: Sequence[str],
) -> dict[str, Pick]:
    """What to sample of each of ``tables`` (those with RLS): its lookup key among the
    ``dumped`` columns, and the users to search its lines for; a table without a key is
    left out (counted in full)."""
    picks: dict[str, Pick] = {}
    for t in tables:
        key = lookup_key(conn, t, sorted(dumped.get(t.qualified, ())))
        if key is not None:
            search = tuple(users) if holds_user_ids(conn, t) else ()
            picks[t.qualified] = Pick(key[0], key[1], search)
    return picks


def key_types(conn: Conn, table: TableRef, columns: Sequence[str]) -> list[str] | None:
    """The key columns' types, schema-qualified (None when a column is gone)."""
    name = sql.Identifier(table.schema, table.name).as_string(conn)
    with scoped(conn, {"search_path": ""}):
        rows = conn.execute(_TYPES, (list(columns), name)).fetchall()
    return [str(t) for (t,) in rows] if len(rows) == len(columns) else None


def lookup_query(table: TableRef, columns: Sequence[str], types: Sequence[str]) -> sql.Composed:
    """Which of the sampled keys (``$1`` their indexes, then one text array per key column)
    a row of ``table`` has: one index probe each, under whatever policies apply."""
    cols = [sql.Identifier(f"k{i}") for i in range(len(columns))]
    arrays = sql.SQL(", ").join(
        sql.SQL("pg_catalog.unnest({}::{}[])").format(sql.Placeholder(), sql.SQL(t)) for t in types
    )
    match = sql.SQL(" AND ").join(
        sql.SQL("t.{} = k.{}").format(sql.Identifier(c), k)
        for c, k in zip(columns, cols, strict=True)
    )
    return sql.SQL(
        "SELECT k.i FROM ROWS FROM (pg_catalog.unnest({}::pg_catalog.int4[]), {}) AS k(i, {}) "
        "WHERE EXISTS (SELECT FROM {} AS t WHERE {}) ORDER BY k.i"
    ).format(
        sql.Placeholder(),
        arrays,
        sql.SQL(", ").join(cols),
        relation(table.schema, table.name),
        match,
    )


def lookup_params(sample: KeySample, indexes: Sequence[int]) -> list[list[Any]]:
    """The parameters of :func:`lookup_query` for the sampled keys at ``indexes``."""
    params: list[list[Any]] = [list(indexes)]
    for c in range(len(sample.columns)):
        params.append([sample.keys[i][c] for i in indexes])
    return params


__all__ = [
    "PER_USER",
    "SPREAD",
    "WHOLE",
    "KeyPicker",
    "KeySample",
    "Pick",
    "fingerprint_and_pick",
    "holds_user_ids",
    "key_types",
    "lookup_key",
    "lookup_params",
    "lookup_query",
    "plan_picks",
    "sample_problem",
]
