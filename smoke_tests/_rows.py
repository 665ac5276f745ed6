"""Rows built from the catalog alone, for the crud_operations category.

A row for a table is built from what the catalog says of it: defaults and identities are
used, NOT NULL columns get type-appropriate values, foreign keys point at an existing
referenced row (or at one made for the purpose, nested a few tables deep at most), check
constraints are met by trying a few candidate values, enums get their first label and unique
columns fresh values. The values are synthetic; messages never show existing rows.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import errors, sql

from pytest_supabase_restore.smoke_tests._catalog import (
    CannotBuild,
    Column,
    Conn,
    ForeignKeyInfo,
    TableInfo,
    Value,
    identifier,
    load_table,
    relation_sql,
)
from pytest_supabase_restore.smoke_tests._support import describe_error

MAX_ATTEMPTS = 60
MAX_DEPTH = 3
PARENT_CANDIDATES = 5


class _Default:
    """Marker: leave the column out of the INSERT (its default, or NULL, applies)."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()
Candidate = Value | _Default


class SequenceBehind(Exception):
    """A default/identity key collided with an existing row."""


# ---------------------------------------------------------------------------------------------
# Candidate values
# ---------------------------------------------------------------------------------------------

_INT: tuple[Value, ...] = ("1", "0", "2", "3", "5", "10", "100", "-1")
_NUM: tuple[Value, ...] = ("1", "0", "0.5", "2", "10", "100", "-1")
_TEXT: tuple[Value, ...] = (
    "crud check",
    "abc",
    "a",
    "crud-check@example.test",
    "#000000",
    "https://example.test/crud",
    "",
)
_TIMESTAMPS: tuple[Value, ...] = (
    "2025-01-15 12:00:00+00",
    "2000-01-01 00:00:00+00",
    "2100-01-01 00:00:00+00",
)
# Candidate values per base type, tried in order until the check constraints are met.
_GENERIC: dict[str, tuple[Value, ...]] = {
    name: values
    for names, values in (
        (("int2", "int4", "int8", "oid"), _INT),
        (("numeric", "float4", "float8", "money"), _NUM),
        (("bool",), ("false", "true")),
        (("text", "varchar", "bpchar", "name", "citext"), _TEXT),
        (("date",), ("2025-01-15", "2000-01-01", "2100-01-01")),
        (("timestamp", "timestamptz"), _TIMESTAMPS),
        (("time", "timetz"), ("12:00:00",)),
        (("interval",), ("1 hour", "0", "1 day")),
        (("json", "jsonb"), ("{}", "[]", '{"crud": true}')),
        (("bytea",), (b"", bytes(32), bytes(16), bytes(20), bytes(64), b"crud")),
        (("inet",), ("127.0.0.1", "10.0.0.0/8")),
        (("cidr",), ("10.0.0.0/8",)),
        (("macaddr",), ("08:00:2b:01:02:03",)),
        (("macaddr8",), ("08:00:2b:01:02:03:04:05",)),
        (("tsvector",), ("", "crud")),
        (("tsquery",), ("crud",)),
        (("xml",), ("<crud/>",)),
        (("point",), ("(0,0)",)),
    )
    for name in names
}
_INTEGERS = {"int2", "int4", "int8"}
_TEXTS = {"text", "varchar", "bpchar", "name", "citext"}


# ---------------------------------------------------------------------------------------------
# Row building
# ---------------------------------------------------------------------------------------------


def _fit(value: Value, column: Column) -> Value:
    if isinstance(value, str) and column.length is not None:
        return value[: column.length]
    return value


def generic_values(column: Column) -> list[Value]:
    if column.typtype == "e":
        return list(column.labels)
    if column.category == "A":
        return ["{}"]
    if column.typtype == "r":
        return ["empty"]
    if column.base == "uuid":
        return [str(uuid.uuid4())]
    return [_fit(v, column) for v in _GENERIC.get(column.base, ())]


def _fresh(conn: Conn, table: TableInfo, column: Column, token: str) -> list[Value]:
    """Values no existing row has, for a column some unique index covers."""
    if column.base in _INTEGERS or column.base in ("numeric", "float4", "float8"):
        query = sql.SQL("SELECT (coalesce(max({c}), 0) + 1)::text FROM {t}").format(
            c=sql.Identifier(column.name), t=sql.SQL(table.rel)
        )
        row = conn.execute(query).fetchone()
        start = int(float(row[0])) if row and row[0] is not None else 1
        return [str(start + i) for i in range(3)]
    if column.base in _TEXTS:
        return [
            _fit(v, column)
            for v in (f"crud-{token}", f"crud-{token}@example.test", f"#{token[:6]}", token)
        ]
    if column.base == "bytea":
        return [os.urandom(32), os.urandom(16), token.encode()]
    if column.base == "uuid":
        return [str(uuid.uuid4())]
    return generic_values(column)


def _first_value(conn: Conn, table: TableInfo, column: Column) -> Value:
    """A value the column already holds (to route a row into an existing partition)."""
    query = sql.SQL("SELECT {c}::text FROM {t} WHERE {c} IS NOT NULL LIMIT 1").format(
        c=sql.Identifier(column.name), t=sql.SQL(table.rel)
    )
    row = conn.execute(query).fetchone()
    return None if row is None else str(row[0])


def _set_replication_role(conn: Conn, value: str) -> None:
    """``session_replication_role`` may only be set by a superuser: step back to the session
    user (the staging superuser) for the ``set_config`` alone, then resume the acting role.
    No restored code runs in between."""
    row = conn.execute("SELECT pg_catalog.current_setting('role')").fetchone()
    acting = str(row[0]) if row else "none"
    if acting != "none":
        conn.execute("SELECT pg_catalog.set_config('role', 'none', true)")
    conn.execute("SELECT pg_catalog.set_config('session_replication_role', %s, true)", (value,))
    if acting != "none":
        conn.execute("SELECT pg_catalog.set_config('role', %s, true)", (acting,))


@contextlib.contextmanager
def _replica(conn: Conn) -> Iterator[None]:
    """Triggers and foreign-key checks off while a helper parent row is made: its own side
    effects (an auth.users trigger creating a profile, say) are not what is being tested."""
    row = conn.execute("SELECT pg_catalog.current_setting('session_replication_role')").fetchone()
    previous = str(row[0]) if row else "origin"
    _set_replication_role(conn, "replica")
    try:
        yield
    finally:
        _set_replication_role(conn, previous)


@dataclass
class _Search:
    """What one row's insert tries: candidate values per column (``idx`` picks the current
    one) and, per needed foreign key, the referenced keys found or made (``choice``)."""

    cands: dict[str, list[Candidate]]
    idx: dict[str, int]
    needed: list[ForeignKeyInfo]
    parents: dict[str, list[list[str | None]]]
    choice: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.choice = dict.fromkeys(self.parents, 0)


def _after_not_null_violation(search: _Search, exc: errors.NotNullViolation, last: str) -> None:
    """A column left to its default came out NULL: give it its first real value."""
    name = exc.diag.column_name or ""
    cands, idx = search.cands, search.idx
    if name in cands and isinstance(cands[name][idx[name]], _Default) and len(cands[name]) > 1:
        idx[name] += 1
    else:
        raise CannotBuild(f"column {name} stays NULL: {last}") from None


class RowBuilder:
    """Builds and inserts rows that satisfy a table's constraints, from the catalog alone."""

    def __init__(self, conn: Conn, depth: int = 0, cache: dict[int, TableInfo] | None = None):
        self.conn = conn
        self.depth = depth
        self.cache: dict[int, TableInfo] = {} if cache is None else cache

    def table(self, oid: int) -> TableInfo:
        if oid not in self.cache:
            self.cache[oid] = load_table(self.conn, oid)
        return self.cache[oid]

    # -- catalog look-ups on errors ----------------------------------------------------------
    def _constraint_columns(self, table: TableInfo, name: str | None) -> list[str]:
        if not name:
            return []
        rows = self.conn.execute(
            """
            SELECT DISTINCT a.attname::text
            FROM pg_catalog.pg_constraint co
            JOIN pg_catalog.pg_attribute a
                ON a.attrelid = co.conrelid AND a.attnum = ANY(co.conkey)
            WHERE co.conname = %s
                AND (co.conrelid = %s
                     OR co.conrelid IN (SELECT relid FROM pg_catalog.pg_partition_tree(%s)))
            """,
            (name, table.oid, table.oid),
        ).fetchall()
        return [r[0] for r in rows]

    def _index_columns(self, table: TableInfo, schema: str | None, name: str | None) -> list[str]:
        if not name:
            return []
        rows = self.conn.execute(
            """
            SELECT a.attname::text
            FROM pg_catalog.pg_class ic
            JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
            JOIN pg_catalog.pg_index i ON i.indexrelid = ic.oid
            JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE ic.relname = %s AND (%s::text IS NULL OR n.nspname = %s)
            """,
            (name, schema, schema),
        ).fetchall()
        found = [r[0] for r in rows]
        if name in table.unique_sets:
            found += [c for c in table.unique_sets[name] if c not in found]
        return found

    # -- foreign keys --------------------------------------------------------------------------
    def _parents(self, table: TableInfo, fk: ForeignKeyInfo) -> list[list[str | None]]:
        """Up to a few referenced keys; ones no row of ``table`` uses yet when the foreign
        key is (part of) a unique key of ``table``."""
        refs = [sql.Identifier("p", c) for c in fk.parent_columns]
        conds = [sql.SQL("{} IS NOT NULL").format(r) for r in refs]
        if set(fk.columns) & table.unique_columns:
            same = sql.SQL(" AND ").join(
                sql.SQL("{} = {}").format(sql.Identifier("c", c), r)
                for c, r in zip(fk.columns, refs, strict=True)
            )
            conds.append(
                sql.SQL("NOT EXISTS (SELECT 1 FROM {child} AS c WHERE {same})").format(
                    child=sql.SQL(table.rel), same=same
                )
            )
        query = sql.SQL("SELECT ARRAY[{keys}] FROM {parent} AS p WHERE {conds} LIMIT {n}").format(
            keys=sql.SQL(", ").join(sql.SQL("{}::text").format(r) for r in refs),
            parent=sql.SQL(fk.parent_rel),
            conds=sql.SQL(" AND ").join(conds),
            n=sql.Literal(PARENT_CANDIDATES),
        )
        return [list(r[0]) for r in self.conn.execute(query).fetchall()]

    def _new_parent(self, fk: ForeignKeyInfo) -> list[str | None]:
        if self.depth >= MAX_DEPTH:
            raise CannotBuild(
                f"foreign key {fk.name}: no usable row in {fk.parent_rel}, and making one "
                f"nests deeper than {MAX_DEPTH} tables"
            )
        parent = self.table(fk.parent_oid)
        nested = RowBuilder(self.conn, self.depth + 1, self.cache)
        with _replica(self.conn):
            _oid, _ctid, values = nested.insert(parent, returning=fk.parent_columns)
        return values

    # -- the row -------------------------------------------------------------------------------
    def _candidates(
        self, table: TableInfo, needed_fk: set[str], token: str
    ) -> dict[str, list[Candidate]]:
        cands: dict[str, list[Candidate]] = {}
        unique = table.unique_columns
        for col in table.columns.values():
            if col.generated or col.identity == "a" or col.name in needed_fk:
                continue
            if col.sequence_fed:
                cands[col.name] = [DEFAULT]
                continue
            values: list[Candidate] = list(
                _fresh(self.conn, table, col, token) if col.name in unique else generic_values(col)
            )
            if col.name in table.partition_key and table.columns[col.name].default is None:
                existing = _first_value(self.conn, table, col)
                if existing is not None:
                    values.insert(0, existing)
            if col.default is not None or not col.not_null:
                values.insert(0, DEFAULT)
            if not values:
                raise CannotBuild(
                    f"column {col.name} is NOT NULL without a default, and there is no "
                    f"value generator for its type {col.type_sql}"
                )
            cands[col.name] = values
        return cands

    @staticmethod
    def _advance(
        idx: dict[str, int], cands: dict[str, list[Candidate]], cols: Sequence[str]
    ) -> bool:
        """Next combination of candidates for ``cols`` (an odometer); False when exhausted."""
        for c in cols:
            idx[c] += 1
            if idx[c] < len(cands[c]):
                return True
            idx[c] = 0
        return False

    def insert(
        self, table: TableInfo, returning: Sequence[str] = ()
    ) -> tuple[int, str, list[str | None]]:
        """Insert one row; (tableoid, ctid, ``returning`` columns as text).

        Each attempt that a constraint refuses moves on to the next candidate values (or
        parent keys) for exactly the columns the error names."""
        needed = [fk for fk in table.fks if any(table.columns[c].not_null for c in fk.columns)]
        needed_cols = {c for fk in needed for c in fk.columns}
        cands = self._candidates(table, needed_cols, uuid.uuid4().hex[:16])
        search = _Search(
            cands=cands,
            idx=dict.fromkeys(cands, 0),
            needed=needed,
            parents={fk.name: self._parents(table, fk) for fk in needed},
        )
        last = ""
        for _attempt in range(MAX_ATTEMPTS):
            row = self._row(search)
            try:
                with self.conn.transaction():
                    return self._execute_insert(table, row, returning)
            except errors.CheckViolation as exc:
                last = describe_error(exc)
                self._after_check_violation(table, search, exc)
            except errors.NotNullViolation as exc:
                last = describe_error(exc)
                _after_not_null_violation(search, exc, last)
            except errors.UniqueViolation as exc:
                last = describe_error(exc)
                self._after_unique_violation(table, search, row, exc)
        raise CannotBuild(f"gave up after {MAX_ATTEMPTS} attempts; last error: {last}")

    def _row(self, search: _Search) -> dict[str, Value]:
        """The values of the next attempt: parent keys first, then the chosen candidates."""
        row: dict[str, Value] = {}
        for fk in search.needed:
            keys = search.parents[fk.name]
            if search.choice[fk.name] >= len(keys):
                keys.append(self._new_parent(fk))
                search.choice[fk.name] = len(keys) - 1
            row.update(zip(fk.columns, keys[search.choice[fk.name]], strict=True))
        for name, values in search.cands.items():
            value = values[search.idx[name]]
            if not isinstance(value, _Default):
                row[name] = value
        return row

    def _after_check_violation(
        self, table: TableInfo, search: _Search, exc: errors.CheckViolation
    ) -> None:
        """Next candidates for the columns of the violated check (or partition bounds)."""
        cands = search.cands
        cols = self._constraint_columns(table, exc.diag.constraint_name)
        if not cols and exc.diag.constraint_name is None:
            cols = list(table.partition_key)  # no partition accepts the row
        if not cols and exc.diag.datatype_name:  # a domain's check
            cols = [c for c in cands if table.columns[c].type_sql.endswith(exc.diag.datatype_name)]
        if not self._advance(search.idx, cands, [c for c in cols if c in cands]):
            raise CannotBuild(
                f"no candidate values satisfy check constraint "
                f"{exc.diag.constraint_name or '(partition bounds)'}"
            ) from None

    def _after_unique_violation(
        self, table: TableInfo, search: _Search, row: dict[str, Value], exc: errors.UniqueViolation
    ) -> None:
        """Other parent keys or fresh values for the duplicated key; a key the table's own
        default or identity generated means its sequence is behind the data."""
        cols = self._index_columns(table, exc.diag.schema_name, exc.diag.constraint_name)
        if (
            cols
            and all(c not in row for c in cols)
            and any(table.columns[c].sequence_fed for c in cols if c in table.columns)
        ):
            raise SequenceBehind(self._behind(table, cols, exc)) from None
        handled = False
        for fk in search.needed:
            if set(fk.columns) & set(cols):
                search.choice[fk.name] += 1
                handled = True
        token = uuid.uuid4().hex[:16]
        cands, idx = search.cands, search.idx
        for c in cols:
            if c in cands and not table.columns[c].sequence_fed:
                fresh: list[Candidate] = list(_fresh(self.conn, table, table.columns[c], token))
                if isinstance(cands[c][0], _Default):
                    fresh.insert(0, DEFAULT)
                cands[c] = fresh
                idx[c] = min(
                    max(idx[c], 1 if isinstance(fresh[0], _Default) else 0), len(fresh) - 1
                )
                handled = True
        if not handled:
            raise CannotBuild(f"no fresh values for unique key ({', '.join(cols)})") from None

    def _execute_insert(
        self, table: TableInfo, row: dict[str, Value], returning: Sequence[str]
    ) -> tuple[int, str, list[str | None]]:
        ret = sql.SQL("tableoid::bigint, ctid::text, ARRAY[{}]::text[]").format(
            sql.SQL(", ").join(sql.SQL("{}::text").format(identifier(c)) for c in returning)
            if returning
            else sql.SQL("")
        )
        if row:
            query = sql.SQL("INSERT INTO {t} ({cols}) VALUES ({vals}) RETURNING {ret}").format(
                t=relation_sql(table),
                cols=sql.SQL(", ").join(identifier(c) for c in row),
                vals=sql.SQL(", ").join(
                    sql.SQL("%s::{}").format(sql.SQL(table.columns[c].type_sql.replace("%", "%%")))
                    for c in row
                ),
                ret=ret,
            )
        else:
            query = sql.SQL("INSERT INTO {t} DEFAULT VALUES RETURNING {ret}").format(
                t=relation_sql(table), ret=ret
            )
        result = self.conn.execute(query, list(row.values())).fetchone()
        assert result is not None
        return int(result[0]), str(result[1]), list(result[2] or [])

    def _behind(self, table: TableInfo, cols: Sequence[str], exc: psycopg.Error) -> str:
        """Why a default/identity key collided: the sequence against the column's maximum."""
        details = []
        for c in cols:
            if c not in table.columns or not table.columns[c].sequence_fed:
                continue
            with self.conn.transaction():
                row = self.conn.execute(
                    "SELECT pg_catalog.pg_get_serial_sequence(%s, %s)", (table.rel, c)
                ).fetchone()
            seq = row[0] if row else None
            if not seq:
                continue
            state = self.conn.execute(
                sql.SQL("SELECT last_value::text FROM {}").format(sql.SQL(seq))
            ).fetchone()
            top = self.conn.execute(
                sql.SQL("SELECT max({c})::text FROM {t}").format(
                    c=sql.Identifier(c), t=sql.SQL(table.rel)
                )
            ).fetchone()
            details.append(
                f"sequence {seq} last value {state[0] if state else '?'}, "
                f"max({c}) = {top[0] if top else '?'}"
            )
        where = "; ".join(details) or describe_error(exc)
        return (
            f"{table.rel}: INSERT collided on the key ({', '.join(cols)}) that its default/identity "
            f"generates: the sequence is behind the data ({where}); every new row will fail until "
            "it is moved past the maximum with setval()"
        )
