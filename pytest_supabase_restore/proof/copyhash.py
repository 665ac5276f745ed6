"""Row fingerprints of the backup's own bytes: an order-independent hash of COPY lines.

pg_dump writes every row of every table, in the dump's snapshot, as one line of COPY text
in the directory format's data files. The export hashes those lines (no second read of the
source); the smoke tests hash ``COPY <table> (<the same columns>) TO STDOUT`` of the restored
copy, read under pg_dump's own session settings (recorded per table), the same way. A row's
hash is its line's XXH3-64 (the ``xxhash`` package, a dependency) or, where that is missing,
the first 8 bytes of its BLAKE2b digest, as the table's ``hash`` says; a table's fingerprint is its
line count and the sum of its lines' hashes mod 2^64, as in :mod:`.fingerprint`, and key
ranges (``buckets``) split it by the primary key, so a mismatch names the ranges that differ.

Keys are ordered as Python orders their COPY text (integers as numbers, every other type by
its text's bytes): both sides classify lines with the same code, so the ranges agree even
where that order is not the database's collation.
"""

from __future__ import annotations

import bisect
import gzip
import hashlib
import importlib
import shutil
import subprocess
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from operator import itemgetter, methodcaller
from pathlib import Path
from typing import IO, Any, cast

from psycopg import sql

from ..errors import DrillError
from .records import MOD as _MOD
from .records import Fingerprint, KeyRange, Part
from .scope import Conn, scoped

COPY_HASH = "copy-blake2b64"
"""The ``hash`` of a table entry fingerprinted by this module with BLAKE2b (absent:
:mod:`.fingerprint`); :data:`XXH3_HASH` with XXH3 when the ``xxhash`` package is there."""
XXH3_HASH = "copy-xxh3-64"
HASH_SCHEMES = frozenset({COPY_HASH, XXH3_HASH})
"""Every scheme a manifest may name (whether or not this installation can compute it)."""

_CHUNK = 1 << 22
_EXACT = 20_000  # up to this many rows, key ranges are exact ntile splits; above, sampled
_KEPT_ROWS = 4_000_000  # a single integer key: keys and hashes kept in memory up to this
_KEPT_TEXT_ROWS = 1_000_000  # a single key of another type (some 100 bytes a row)
_INT_TYPES = frozenset({"smallint", "integer", "bigint", "oid"})
_digest = partial(hashlib.blake2b, digest_size=8)
_DIGEST = methodcaller("digest")


def _blake2b(lines: Iterable[bytes]) -> list[int]:
    return list(map(int.from_bytes, map(_DIGEST, map(_digest, lines))))  # all in C


Hasher = Callable[[Iterable[bytes]], list[int]]
HASHERS: dict[str, Hasher] = {COPY_HASH: _blake2b}
try:  # XXH3 hashes a line some 15 times faster than BLAKE2b (one C call returning an int)
    _xxh3: Callable[[bytes], int] = importlib.import_module("xxhash").xxh3_64_intdigest
    HASHERS[XXH3_HASH] = lambda lines: list(map(_xxh3, lines))
except ImportError:
    pass


def default_scheme() -> str:
    """The fastest scheme this installation can hash with."""
    return XXH3_HASH if XXH3_HASH in HASHERS else COPY_HASH


def hasher(scheme: str) -> Hasher:
    """The line hash of ``scheme``; a :class:`DrillError` says what to install if missing."""
    found = HASHERS.get(scheme)
    if found is None:
        raise DrillError(
            f"The backup's fingerprints use {scheme}; this installation cannot compute it. "
            "Fix: pip install xxhash (a dependency of pytest-supabase-restore)."
        )
    return found


def key_kind(type_name: str) -> str:
    """``int`` for integer key types (ordered as numbers), ``text`` for every other."""
    return "int" if type_name in _INT_TYPES else "text"


# -- COPY text escapes ------------------------------------------------------------------------
_ESC_OUT = {
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}
_ESC_IN = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def copy_escape(value: str) -> str:
    """``value`` as COPY text output writes it (what :func:`copy_unescape` undoes)."""
    return "".join(_ESC_OUT.get(ch, ch) for ch in value)


def copy_unescape(text: str) -> str:
    """A COPY text field's value (backslash escapes as COPY TO writes them, and octal/hex)."""
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\" or i + 1 == len(text):
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt in _ESC_IN:
            out.append(_ESC_IN[nxt])
            i += 2
        elif nxt == "x" and i + 2 < len(text) and text[i + 2] in "0123456789abcdefABCDEF":
            j = i + 2
            while j < min(i + 4, len(text)) and text[j] in "0123456789abcdefABCDEF":
                j += 1
            out.append(chr(int(text[i + 2 : j], 16)))
            i = j
        elif nxt in "01234567":
            j = i + 1
            while j < min(i + 4, len(text)) and text[j] in "01234567":
                j += 1
            out.append(chr(int(text[i + 1 : j], 8)))
            i = j
        else:
            out.append(nxt)
            i += 2
    return "".join(out)


# -- layout: which lines, which columns, where the key is -------------------------------------
Key = tuple[Any, ...]


def _key_reader(positions: Sequence[int], kinds: Sequence[str]) -> Callable[[bytes], Key]:
    convs: list[Callable[[bytes], Any]] = [int if k == "int" else bytes for k in kinds]
    if len(positions) == 1:
        pos, conv = positions[0], convs[0]
        return lambda line: (conv(line.split(b"\t", pos + 1)[pos]),)
    pick = itemgetter(*positions)
    return lambda line: tuple(c(v) for c, v in zip(convs, pick(line.split(b"\t")), strict=True))


def key_of_text(values: Sequence[str], kinds: Sequence[str]) -> Key:
    """A recorded key (display text) as the sort key :func:`_key_reader` gives its line."""
    return tuple(
        int(v) if k == "int" else copy_escape(v).encode()
        for v, k in zip(values, kinds, strict=True)
    )


def _key_text(key: Key, encoding: str) -> tuple[str, ...]:
    return tuple(
        str(v) if isinstance(v, int) else copy_unescape(v.decode(encoding, "replace")) for v in key
    )


# -- reading COPY lines ------------------------------------------------------------------------
def _split_lines(chunks: Iterable[bytes]) -> Iterator[list[bytes]]:
    """Lists of complete lines (no newline) up to the ``\\.`` end marker."""
    rest = b""
    for chunk in chunks:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        try:
            end = lines.index(b"\\.")
        except ValueError:
            yield lines
            continue
        yield lines[:end]
        return
    if rest and rest != b"\\.":
        yield [rest]


class DecompressorMissing(RuntimeError):
    """The data file's compression needs a program that is not installed."""


def _open_data(path: Path) -> tuple[IO[bytes], subprocess.Popen[bytes] | None]:
    if path.suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb")), None
    tool = {".lz4": "lz4", ".zst": "zstd"}.get(path.suffix)
    if tool is None:
        return open(path, "rb"), None
    program = shutil.which(tool)
    if program is None:
        raise DecompressorMissing(f"{tool} is not installed (needed to read {path.name})")
    proc = subprocess.Popen(
        [program, "-d", "-c", "-q", str(path)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    return proc.stdout, proc


def file_lines(path: Path) -> Iterator[list[bytes]]:
    """The COPY lines of one pg_dump data file, in batches (compression by its suffix)."""
    stream, proc = _open_data(path)
    try:
        yield from _split_lines(iter(partial(stream.read, _CHUNK), b""))
    finally:
        stream.close()
        if proc is not None:
            proc.kill()
            proc.wait()


# -- fingerprint of a table's lines -----------------------------------------------------------
def _fmt(rows: int, acc: int) -> str:
    return f"{rows}:{acc % _MOD:016x}"


@dataclass
class _Bucket:
    rows: int = 0
    acc: int = 0
    lo: Key | None = None
    hi: Key | None = None

    def add(self, key: Key, h: int) -> None:
        self.rows += 1
        self.acc += h
        if self.lo is None or key < self.lo:
            self.lo = key
        if self.hi is None or key > self.hi:
            self.hi = key


Source = Callable[[], Iterator[tuple[Part, list[bytes]]]]


def _ntile_starts(keys: Sequence[Any], buckets: int) -> list[Any]:
    """The first key of buckets 2..n of ``ntile(buckets)`` over ``keys`` (sorted, unique)."""
    n = len(keys)
    q, r = divmod(n, buckets)
    starts: list[Any] = []
    pos = 0
    for b in range(buckets - 1):
        pos += q + (1 if b < r else 0)
        if 0 < pos < n:
            starts.append(keys[pos])
    return starts


class _Sample:
    """Every key up to ``2 * _EXACT``, then every other one, and so on: spread over the
    table, bounded in size."""

    def __init__(self) -> None:
        self.keys: list[Any] = []
        self.stride, self.seen = 1, 0

    def add(self, keys: Sequence[Any]) -> None:
        self.keys.extend(keys[(-self.seen) % self.stride :: self.stride])
        self.seen += len(keys)
        while len(self.keys) > 2 * _EXACT:
            self.keys, self.stride = self.keys[::2], self.stride * 2


def _int_keys(lines: Sequence[bytes], pos: int) -> list[int]:
    split = methodcaller("split", b"\t", pos + 1)
    return list(map(int, map(itemgetter(pos), map(split, lines))))  # all in C


def _text_keys(lines: Sequence[bytes], pos: int) -> list[bytes]:
    return list(map(itemgetter(pos), map(methodcaller("split", b"\t", pos + 1), lines)))


Kept = tuple[int, int, Any, "array[int]", _Sample]


def _keep(
    source: Source,
    pk: str,
    _hashes: Hasher,
    extract: Callable[[Sequence[bytes], int], list[Any]],
    keys: Any,
    limit: int,
) -> Kept | None:
    """One pass keeping every line's key and hash (None past ``limit`` rows): (rows, sum of
    hashes, keys, hashes, key sample)."""
    rows, acc = 0, 0
    hashes: array[int] = array("Q")
    sample = _Sample()
    for part, lines in source():
        hs = _hashes(lines)
        ks = extract(lines, part.key_positions([pk])[0])
        rows += len(hs)
        if rows > limit:
            return None
        acc += sum(hs)
        keys.extend(ks)
        hashes.extend(hs)
        sample.add(ks)
    return rows, acc, keys, hashes, sample


def _one_key_fingerprint(
    source: Source, pk: str, kind: str, buckets: int, _hashes: Hasher, encoding: str
) -> Fingerprint | None:
    """:func:`fingerprint_lines` for one key column, in one pass: keys and hashes are kept
    (None for a table too large to keep them). Integer ranges are contiguous (``hi`` is the
    next ``lo`` - 1); others (uuid, text, ...) run from their first key to their largest."""
    ints = kind == "int"
    kept = (
        _keep(source, pk, _hashes, _int_keys, array("q"), _KEPT_ROWS)
        if ints
        else _keep(source, pk, _hashes, _text_keys, [], _KEPT_TEXT_ROWS)
    )
    if kept is None:
        return None
    rows, acc, keys, hashes, sample = kept
    if rows == 0:
        return Fingerprint(rows, _fmt(rows, acc))
    starts: list[Any] = _ntile_starts(sorted(sample.keys), buckets)
    counts = [0] * (len(starts) + 1)
    sums = [0] * (len(starts) + 1)
    his: list[Any] = [s - 1 for s in starts] + [max(keys)] if ints else [b""] * len(counts)
    bucket_of = map(partial(bisect.bisect_right, starts), keys)
    if ints:
        for j, h in zip(bucket_of, hashes, strict=True):
            counts[j] += 1
            sums[j] += h
    else:
        for j, h, k in zip(bucket_of, hashes, keys, strict=True):
            counts[j] += 1
            sums[j] += h
            if k > his[j]:
                his[j] = k
    los = [min(keys), *starts]
    ranges = tuple(
        KeyRange(_key_text((lo,), encoding), _key_text((hi,), encoding), n, _fmt(n, a))
        for lo, hi, n, a in zip(los, his, counts, sums, strict=True)
        if n
    )
    return Fingerprint(rows, _fmt(rows, acc), ranges)


def fingerprint_lines(
    source: Source,
    pk: Sequence[str],
    kinds: Sequence[str],
    *,
    encoding: str,
    buckets: int = 16,
    scheme: str = COPY_HASH,
) -> Fingerprint:
    """Row count and fingerprint of the lines ``source()`` yields, with key ranges.

    ``source`` is called once, or twice for a table of more than a few thousand rows: the
    first pass samples the keys for the range bounds, the second fills the ranges (one pass
    for a single key column: :func:`_one_key_fingerprint`).
    """
    _hashes = hasher(scheme)
    if len(pk) == 1:
        fast = _one_key_fingerprint(source, pk[0], kinds[0], buckets, _hashes, encoding)
        if fast is not None:
            return fast
    rows, acc = 0, 0
    sample = _Sample()
    small: list[tuple[Key, int]] = []
    for part, lines in source():
        hs = _hashes(lines)
        rows += len(hs)
        acc += sum(hs)
        if not pk:
            continue
        read = _key_reader(part.key_positions(pk), kinds)
        keys = list(map(read, lines))
        if rows <= _EXACT:
            small.extend(zip(keys, hs, strict=True))
        sample.add(keys)
    if not pk or rows == 0:
        return Fingerprint(rows, _fmt(rows, acc))
    starts = _ntile_starts(sorted(sample.keys), buckets)
    filled = [_Bucket() for _ in range(len(starts) + 1)]
    if rows <= _EXACT:
        pairs: Iterable[tuple[Key, int]] = small
    else:
        pairs = _keyed(source, pk, kinds, _hashes)
    for key, h in pairs:
        filled[bisect.bisect_right(starts, key)].add(key, h)
    ranges = tuple(
        KeyRange(_key_text(b.lo, encoding), _key_text(b.hi, encoding), b.rows, _fmt(b.rows, b.acc))
        for b in filled
        if b.lo is not None and b.hi is not None
    )
    return Fingerprint(rows, _fmt(rows, acc), ranges)


def _keyed(
    source: Source, pk: Sequence[str], kinds: Sequence[str], _hashes: Hasher
) -> Iterator[tuple[Key, int]]:
    for part, lines in source():
        read = _key_reader(part.key_positions(pk), kinds)
        yield from zip(map(read, lines), _hashes(lines), strict=True)


# -- the dump's files (export side) -----------------------------------------------------------
@dataclass(frozen=True)
class DumpTable:
    """What the export hashes for one manifest table: its parts and their data files."""

    qualified: str
    pk: tuple[str, ...]
    kinds: tuple[str, ...]
    parts: tuple[tuple[Part, str], ...]  # (part, data file path)
    scheme: str = COPY_HASH


# -- the restored copy (staging side) ---------------------------------------------------------
def _copy_query(part: Part) -> sql.Composed:
    return sql.SQL("COPY {} ({}) TO STDOUT").format(
        sql.Identifier(part.schema, part.name),
        sql.SQL(", ").join(sql.Identifier(c) for c in part.columns),
    )


def copy_lines(conn: Conn, parts: Sequence[Part], settings: Mapping[str, str]) -> Source:
    """A :data:`Source` of ``COPY <part> (<columns>) TO STDOUT`` under ``settings``."""

    def source() -> Iterator[tuple[Part, list[bytes]]]:
        with scoped(conn, settings):
            for part in parts:
                with conn.cursor() as cur, cur.copy(_copy_query(part)) as copy:
                    batch: list[bytes] = []
                    for row in copy:  # one CopyData message per row, newline included
                        batch.append(bytes(row[:-1]))
                        if len(batch) >= 10_000:
                            yield part, batch
                            batch = []
                    if batch:
                        yield part, batch

    return source


def copy_whole(
    conn: Conn, parts: Sequence[Part], settings: Mapping[str, str], scheme: str = COPY_HASH
) -> tuple[int, int]:
    """(rows, sum of line hashes mod 2^64) of the parts as the restored copy holds them."""
    _hashes = hasher(scheme)
    rows, acc = 0, 0
    for _part, lines in copy_lines(conn, parts, settings)():
        hs = _hashes(lines)
        rows += len(hs)
        acc += sum(hs)
    return rows, acc % _MOD


def copy_ranges(
    conn: Conn,
    parts: Sequence[Part],
    settings: Mapping[str, str],
    pk: Sequence[str],
    kinds: Sequence[str],
    buckets: Sequence[KeyRange],
    scheme: str = COPY_HASH,
) -> dict[int, tuple[int, int]]:
    """(rows, hash) per recorded range ``i`` (1-based) and per gap ``-i`` before range ``i``
    (``-(n + 1)``: past the last), as :func:`.fingerprint._ranges` takes them."""
    bounds: list[Key] = []
    for b in buckets:
        bounds += [key_of_text(b.lo, kinds), key_of_text(b.hi, kinds)]
    found: dict[int, list[int]] = {}
    for key, h in _keyed(copy_lines(conn, parts, settings), pk, kinds, hasher(scheme)):
        j = bisect.bisect_left(bounds, key)
        if (j < len(bounds) and bounds[j] == key) or j % 2 == 1:
            slot = j // 2 + 1 if j % 2 == 0 else (j + 1) // 2
        else:
            slot = -(j // 2 + 1)
        entry = found.setdefault(slot, [0, 0])
        entry[0] += 1
        entry[1] += h
    return {slot: (n, acc % _MOD) for slot, (n, acc) in found.items()}


__all__ = [
    "COPY_HASH",
    "HASHERS",
    "HASH_SCHEMES",
    "XXH3_HASH",
    "DecompressorMissing",
    "DumpTable",
    "Part",
    "copy_escape",
    "copy_lines",
    "copy_ranges",
    "copy_unescape",
    "copy_whole",
    "default_scheme",
    "file_lines",
    "fingerprint_lines",
    "hasher",
    "key_kind",
    "key_of_text",
]
