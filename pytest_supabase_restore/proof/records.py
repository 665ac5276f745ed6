"""The proof engine's records: a table's fingerprint, its key ranges and how it was read.

A :class:`Fingerprint` is what :func:`.fingerprint.fingerprint_table` (a server-side pass)
and :func:`.copyhash.fingerprint_lines` (the dump's COPY lines) produce and what
:func:`.fingerprint.compare_table` checks the restored copy against. The manifest keeps it in
each table entry, in the flat JSON layout written since the first format (``rows``,
``fingerprint``, ``buckets`` and, for the COPY-line schemes, ``hash``, ``copy``,
``key_kinds``, ``copy_settings``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MOD = 1 << 64


def fmt(rows: Any, acc: Any) -> str:
    """``rows:hash`` as recorded. sum(bigint) arrives as Decimal; Python's % makes a negative
    sum positive mod 2^64."""
    return f"{int(rows)}:{int(acc) % MOD:016x}"


def acc_of(fingerprint: str) -> int:
    """The hash part of a :func:`fmt` value."""
    return int(fingerprint.partition(":")[2], 16)


@dataclass(frozen=True)
class Part:
    """One relation pg_dump wrote a COPY of (the table, or one leaf partition of it)."""

    schema: str
    name: str
    columns: tuple[str, ...]  # in the COPY statement's order (no generated columns)
    oid: int = field(default=0, compare=False)  # on the source (names its TOC entry)

    def key_positions(self, pk: Sequence[str]) -> tuple[int, ...]:
        return tuple(self.columns.index(col) for col in pk)

    def to_json(self) -> dict[str, Any]:
        return {"schema": self.schema, "name": self.name, "columns": list(self.columns)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Part:
        return cls(str(data["schema"]), str(data["name"]), tuple(str(c) for c in data["columns"]))


@dataclass(frozen=True)
class KeyRange:
    """Rows whose primary key lies in ``lo``..``hi`` (inclusive; key values as text, one per
    key column), their count and fingerprint."""

    lo: tuple[str, ...]
    hi: tuple[str, ...]
    rows: int
    fingerprint: str

    def to_json(self) -> dict[str, Any]:
        return {
            "lo": list(self.lo),
            "hi": list(self.hi),
            "rows": self.rows,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> KeyRange:
        return cls(
            lo=tuple(str(v) for v in d["lo"]),
            hi=tuple(str(v) for v in d["hi"]),
            rows=int(d["rows"]),
            fingerprint=str(d["fingerprint"]),
        )


@dataclass(frozen=True)
class CopyRead:
    """How a table's COPY lines were hashed, so the restored copy is read the same way:
    the line-hash ``scheme``, the copied ``parts`` with their columns, the key columns' sort
    kinds (``int``/``text``) and pg_dump's session ``settings``."""

    scheme: str
    parts: tuple[Part, ...]
    key_kinds: tuple[str, ...]
    settings: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "hash": self.scheme,
            "copy": [p.to_json() for p in self.parts],
            "key_kinds": list(self.key_kinds),
            "copy_settings": dict(self.settings),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CopyRead:
        return cls(
            scheme=str(d["hash"]),
            parts=tuple(Part.from_json(p) for p in d["copy"]),
            key_kinds=tuple(str(k) for k in d["key_kinds"]),
            settings={str(k): str(v) for k, v in d["copy_settings"].items()},
        )


@dataclass(frozen=True)
class Fingerprint:
    """A table's row count and order-independent fingerprint, per key range.

    ``ranges`` is empty for a table without a primary key (or with no rows); ``copy`` is None
    for a server-side fingerprint (``md5`` of each row's text, a set written before the
    COPY-line schemes)."""

    rows: int
    value: str
    ranges: tuple[KeyRange, ...] = ()
    copy: CopyRead | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rows": self.rows,
            "fingerprint": self.value,
            "buckets": [r.to_json() for r in self.ranges],
        }
        if self.copy is not None:
            out.update(self.copy.to_json())
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Fingerprint:
        return cls(
            rows=int(d["rows"]),
            value=str(d["fingerprint"]),
            ranges=tuple(KeyRange.from_json(b) for b in d.get("buckets") or ()),
            copy=CopyRead.from_json(d) if "hash" in d else None,
        )


__all__ = ["MOD", "CopyRead", "Fingerprint", "KeyRange", "Part", "acc_of", "fmt"]
