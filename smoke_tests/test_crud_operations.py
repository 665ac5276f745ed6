"""crud_operations: every application table accepts an INSERT, a read, an UPDATE and a DELETE.

For each table in ``public`` and the other user schemas (partitioned tables through their
root; views, partitions and the platform's own tables are left out) a row is built from the
catalog alone: defaults and identities are used, NOT NULL columns get type-appropriate
values, foreign keys point at an existing referenced row (or at one made for the purpose),
check constraints are met by trying a few candidate values, enums get their first label and
unique columns fresh values. The row is inserted, read back, updated and deleted inside a
transaction that is rolled back, so nothing of it survives.

A duplicate key on a column filled by its own default or identity means the sequence behind
it was restored behind the data: every new row would collide. The values used here are
synthetic; messages never show the contents of existing rows.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from smoke_tests import (
    Facts,
    RunAsSuperuser,
    acting_as,
    describe_error,
    resolve_relation,
    unprivileged_role,
)

pytestmark = pytest.mark.supabase_category("crud_operations")

Conn = psycopg.Connection[Any]
Value = str | bytes | None

MAX_ATTEMPTS = 60
MAX_DEPTH = 3
PARENT_CANDIDATES = 5


class _Default:
    """Marker: leave the column out of the INSERT (its default, or NULL, applies)."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()
Candidate = Value | _Default


class CannotBuild(Exception):
    """No row satisfying the table's constraints could be built from the catalog."""


class SequenceBehind(Exception):
    """A default/identity key collided with an existing row."""


# ---------------------------------------------------------------------------------------------
# Catalog
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


@dataclass
class Column:
    name: str
    type_sql: str  # format_type(), qualified: safe to splice after "::"
    base: str  # typname of the type, domains resolved
    typtype: str  # of the base type
    category: str  # typcategory of the base type
    not_null: bool
    default: str | None
    identity: str  # "", "a" (always), "d" (by default)
    generated: bool
    labels: list[str] = field(default_factory=list)  # enum labels, in order
    length: int | None = None  # varchar(n)/char(n)

    @property
    def sequence_fed(self) -> bool:
        """Filled by a sequence when left out: an identity or a nextval() default."""
        return bool(self.identity) or "nextval(" in (self.default or "")


@dataclass
class ForeignKeyInfo:
    name: str
    columns: list[str]
    parent_oid: int
    parent_rel: str  # regclass text
    parent_columns: list[str]


@dataclass
class TableInfo:
    oid: int
    rel: str  # regclass text: quoted, qualified
    kind: str
    columns: dict[str, Column]
    fks: list[ForeignKeyInfo]
    unique_sets: dict[str, list[str]]  # index name -> columns it covers
    partition_key: list[str]

    @property
    def unique_columns(self) -> set[str]:
        return {c for cols in self.unique_sets.values() for c in cols}


def _type_info(conn: Conn, type_oid: int, typmod: int) -> tuple[str, str, str, list[str], int]:
    """(base typname, typtype, typcategory, enum labels, typmod) with domains resolved."""
    for _ in range(10):
        row = conn.execute(
            "SELECT typname::text, typtype::text, typcategory::text, typbasetype::bigint,"
            " typtypmod FROM pg_catalog.pg_type WHERE oid = %s",
            (type_oid,),
        ).fetchone()
        assert row is not None
        name, typtype, category, basetype, base_typmod = row
        if typtype != "d":
            labels: list[str] = []
            if typtype == "e":
                labels = [
                    r[0]
                    for r in conn.execute(
                        "SELECT enumlabel::text FROM pg_catalog.pg_enum WHERE enumtypid = %s"
                        " ORDER BY enumsortorder",
                        (type_oid,),
                    )
                ]
            return str(name), str(typtype), str(category), labels, typmod
        type_oid, typmod = int(basetype), int(base_typmod) if typmod < 0 else typmod
    raise CannotBuild(f"type {type_oid}: domains nested too deep")


def load_table(conn: Conn, oid: int) -> TableInfo:
    """Everything the row builder needs to know about one table, from the catalog."""
    rel_row = conn.execute(
        "SELECT %s::oid::pg_catalog.regclass::text, relkind::text FROM pg_catalog.pg_class"
        " WHERE oid = %s",
        (oid, oid),
    ).fetchone()
    assert rel_row is not None
    columns: dict[str, Column] = {}
    attnames: dict[int, str] = {}
    for (
        attnum,
        name,
        type_sql,
        type_oid,
        typmod,
        not_null,
        default,
        identity,
        generated,
    ) in conn.execute(
        """
        SELECT a.attnum, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod),
            a.atttypid::bigint, a.atttypmod, a.attnotnull,
            pg_catalog.pg_get_expr(d.adbin, d.adrelid), a.attidentity::text,
            a.attgenerated::text
        FROM pg_catalog.pg_attribute a
        LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        (oid,),
    ).fetchall():
        base, typtype, category, labels, base_typmod = _type_info(conn, int(type_oid), int(typmod))
        length = base_typmod - 4 if base in ("varchar", "bpchar") and base_typmod >= 4 else None
        attnames[int(attnum)] = str(name)
        columns[str(name)] = Column(
            name=str(name),
            type_sql=str(type_sql),
            base=base,
            typtype=typtype,
            category=category,
            not_null=bool(not_null),
            default=default if generated == "" else None,
            identity=str(identity),
            generated=generated != "",
            labels=labels,
            length=length,
        )
    fks: list[ForeignKeyInfo] = []
    for name, conkey, parent_oid, parent_rel, parent_cols in conn.execute(
        """
        SELECT co.conname::text, co.conkey, co.confrelid::bigint,
            co.confrelid::pg_catalog.regclass::text,
            ARRAY(SELECT a.attname::text
                  FROM pg_catalog.unnest(co.confkey) WITH ORDINALITY AS k(attnum, ord)
                  JOIN pg_catalog.pg_attribute a
                      ON a.attrelid = co.confrelid AND a.attnum = k.attnum
                  ORDER BY k.ord)
        FROM pg_catalog.pg_constraint co
        WHERE co.conrelid = %s AND co.contype = 'f'
        ORDER BY co.conname
        """,
        (oid,),
    ).fetchall():
        fks.append(
            ForeignKeyInfo(
                name=str(name),
                columns=[attnames[int(n)] for n in conkey],
                parent_oid=int(parent_oid),
                parent_rel=str(parent_rel),
                parent_columns=list(parent_cols),
            )
        )
    unique_sets: dict[str, list[str]] = {}
    for index_name, indkey, exprs in conn.execute(
        """
        SELECT ic.relname::text, i.indkey::int2[],
            coalesce(pg_catalog.pg_get_expr(i.indexprs, i.indrelid), '')
        FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
        WHERE i.indrelid = %s AND i.indisunique
        """,
        (oid,),
    ).fetchall():
        cols = [attnames[int(n)] for n in indkey if int(n) in attnames]
        # Columns used inside an expression key (lower(email)) count as unique too.
        cols += [c for c in columns if exprs and c in exprs and c not in cols]
        unique_sets[str(index_name)] = cols
    partition_key: list[str] = []
    if rel_row[1] == "p":
        row = conn.execute(
            "SELECT partattrs::int2[] FROM pg_catalog.pg_partitioned_table WHERE partrelid = %s",
            (oid,),
        ).fetchone()
        if row is not None:
            partition_key = [attnames[int(n)] for n in row[0] if int(n) in attnames]
    return TableInfo(
        oid=oid,
        rel=str(rel_row[0]),
        kind=str(rel_row[1]),
        columns=columns,
        fks=fks,
        unique_sets=unique_sets,
        partition_key=partition_key,
    )


# ---------------------------------------------------------------------------------------------
# Row building
# ---------------------------------------------------------------------------------------------


def _fit(value: Value, column: Column) -> Value:
    if isinstance(value, str) and column.length is not None:
        return value[: column.length]
    return value


def _generic(column: Column) -> list[Value]:
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
    return _generic(column)


def _first_value(conn: Conn, table: TableInfo, column: Column) -> Value:
    """A value the column already holds (to route a row into an existing partition)."""
    query = sql.SQL("SELECT {c}::text FROM {t} WHERE {c} IS NOT NULL LIMIT 1").format(
        c=sql.Identifier(column.name), t=sql.SQL(table.rel)
    )
    row = conn.execute(query).fetchone()
    return None if row is None else str(row[0])


def _ident(name: str) -> sql.Identifier:
    """An identifier for a query that also takes parameters: psycopg reads every ``%`` of
    such a query as a placeholder, so a ``%`` in a name (legal in quoted identifiers) is
    doubled; psycopg turns ``%%`` back into ``%`` before the server sees it."""
    return sql.Identifier(name.replace("%", "%%"))


def _rel(table: TableInfo) -> sql.SQL:
    """The table's quoted, qualified name, for a query that also takes parameters."""
    return sql.SQL(table.rel.replace("%", "%%"))


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
                _fresh(self.conn, table, col, token) if col.name in unique else _generic(col)
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
        """Insert one row; (tableoid, ctid, ``returning`` columns as text)."""
        needed = [fk for fk in table.fks if any(table.columns[c].not_null for c in fk.columns)]
        needed_cols = {c for fk in needed for c in fk.columns}
        token = uuid.uuid4().hex[:16]
        cands = self._candidates(table, needed_cols, token)
        idx = dict.fromkeys(cands, 0)
        parents = {fk.name: self._parents(table, fk) for fk in needed}
        choice = dict.fromkeys(parents, 0)
        last = ""
        for _attempt in range(MAX_ATTEMPTS):
            row: dict[str, Value] = {}
            for fk in needed:
                if choice[fk.name] >= len(parents[fk.name]):
                    parents[fk.name].append(self._new_parent(fk))
                    choice[fk.name] = len(parents[fk.name]) - 1
                row.update(zip(fk.columns, parents[fk.name][choice[fk.name]], strict=True))
            for name, values in cands.items():
                value = values[idx[name]]
                if not isinstance(value, _Default):
                    row[name] = value
            try:
                with self.conn.transaction():
                    return self._execute_insert(table, row, returning)
            except errors.CheckViolation as exc:
                last = describe_error(exc)
                cols = self._constraint_columns(table, exc.diag.constraint_name)
                if not cols and exc.diag.constraint_name is None:
                    cols = list(table.partition_key)  # no partition accepts the row
                if not cols and exc.diag.datatype_name:  # a domain's check
                    cols = [
                        c
                        for c in cands
                        if table.columns[c].type_sql.endswith(exc.diag.datatype_name)
                    ]
                if not self._advance(idx, cands, [c for c in cols if c in cands]):
                    raise CannotBuild(
                        f"no candidate values satisfy check constraint "
                        f"{exc.diag.constraint_name or '(partition bounds)'}"
                    ) from None
            except errors.NotNullViolation as exc:
                last = describe_error(exc)
                name = exc.diag.column_name or ""
                if (
                    name in cands
                    and isinstance(cands[name][idx[name]], _Default)
                    and len(cands[name]) > 1
                ):
                    idx[name] += 1
                else:
                    raise CannotBuild(f"column {name} stays NULL: {last}") from None
            except errors.UniqueViolation as exc:
                last = describe_error(exc)
                cols = self._index_columns(table, exc.diag.schema_name, exc.diag.constraint_name)
                if (
                    cols
                    and all(c not in row for c in cols)
                    and any(table.columns[c].sequence_fed for c in cols if c in table.columns)
                ):
                    raise SequenceBehind(self._behind(table, cols, exc)) from None
                handled = False
                for fk in needed:
                    if set(fk.columns) & set(cols):
                        choice[fk.name] += 1
                        handled = True
                token = uuid.uuid4().hex[:16]
                for c in cols:
                    if c in cands and not table.columns[c].sequence_fed:
                        fresh: list[Candidate] = list(
                            _fresh(self.conn, table, table.columns[c], token)
                        )
                        if isinstance(cands[c][0], _Default):
                            fresh.insert(0, DEFAULT)
                        cands[c] = fresh
                        idx[c] = min(
                            max(idx[c], 1 if isinstance(fresh[0], _Default) else 0), len(fresh) - 1
                        )
                        handled = True
                if not handled:
                    raise CannotBuild(
                        f"no fresh values for unique key ({', '.join(cols)})"
                    ) from None
        raise CannotBuild(f"gave up after {MAX_ATTEMPTS} attempts; last error: {last}")

    def _execute_insert(
        self, table: TableInfo, row: dict[str, Value], returning: Sequence[str]
    ) -> tuple[int, str, list[str | None]]:
        ret = sql.SQL("tableoid::bigint, ctid::text, ARRAY[{}]::text[]").format(
            sql.SQL(", ").join(sql.SQL("{}::text").format(_ident(c)) for c in returning)
            if returning
            else sql.SQL("")
        )
        if row:
            query = sql.SQL("INSERT INTO {t} ({cols}) VALUES ({vals}) RETURNING {ret}").format(
                t=_rel(table),
                cols=sql.SQL(", ").join(_ident(c) for c in row),
                vals=sql.SQL(", ").join(
                    sql.SQL("%s::{}").format(sql.SQL(table.columns[c].type_sql.replace("%", "%%")))
                    for c in row
                ),
                ret=ret,
            )
        else:
            query = sql.SQL("INSERT INTO {t} DEFAULT VALUES RETURNING {ret}").format(
                t=_rel(table), ret=ret
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


# ---------------------------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------------------------


def _refused(step: str, table: str, exc: psycopg.Error) -> None:
    """Skip for refusals that are the table's own rules, fail for everything else."""
    if isinstance(exc, errors.RaiseException):
        pytest.skip(
            f"not tested: {table}: {step} refused by the table's own trigger ({describe_error(exc)})"
        )
    if isinstance(exc, errors.InsufficientPrivilege):
        pytest.skip(f"not tested: {table}: the staging role may not {step} ({describe_error(exc)})")
    pytest.fail(f"{table}: {step} failed: {describe_error(exc)}", pytrace=False)


def _update(
    conn: Conn, table: TableInfo, pk: Sequence[str], where: tuple[int, str]
) -> tuple[str, tuple[int, str]]:
    """UPDATE one non-key column of the row; (column, new location)."""
    keyish = set(pk) | table.unique_columns | {c for fk in table.fks for c in fk.columns}
    keyish |= set(table.partition_key)
    for col in table.columns.values():
        if col.generated or col.identity or col.name in keyish:
            continue
        values: list[Value] = _generic(col) + ([None] if not col.not_null else [])
        for value in values:
            query = sql.SQL(
                "UPDATE {t} SET {c} = %s::{ty} WHERE tableoid = %s AND ctid = %s::tid"
                " AND {c} IS DISTINCT FROM %s::{ty} RETURNING tableoid::bigint, ctid::text"
            ).format(t=_rel(table), c=_ident(col.name), ty=sql.SQL(col.type_sql.replace("%", "%%")))
            try:
                with conn.transaction():
                    got = conn.execute(query, (value, where[0], where[1], value)).fetchone()
            except (psycopg.IntegrityError, psycopg.DataError):
                continue
            if got is not None:
                return col.name, (int(got[0]), str(got[1]))
    # Nothing but keys: rewrite a column with its own value (still a full UPDATE: triggers,
    # constraints and indexes all see it).
    for col in table.columns.values():
        if col.generated or col.identity == "a":
            continue
        query = sql.SQL(
            "UPDATE {t} SET {c} = {c} WHERE tableoid = %s AND ctid = %s::tid"
            " RETURNING tableoid::bigint, ctid::text"
        ).format(t=_rel(table), c=_ident(col.name))
        got = conn.execute(query, where).fetchone()
        if got is None:
            pytest.fail(f"{table.rel}: UPDATE of the new row matched no row", pytrace=False)
        return col.name, (int(got[0]), str(got[1]))
    pytest.skip(f"not tested: {table.rel}: no column can be updated")


def _count_at(conn: Conn, table: TableInfo, where: tuple[int, str]) -> int:
    query = sql.SQL("SELECT count(*) FROM {t} WHERE tableoid = %s AND ctid = %s::tid").format(
        t=_rel(table)
    )
    row = conn.execute(query, where).fetchone()
    return int(row[0]) if row else 0


def test_crud(
    crud_table: str, facts: Facts, pinned_db: psycopg.Connection[Any], record_property: Any
) -> None:
    """INSERT (defaults, constraints, foreign keys), read back, UPDATE and DELETE one row.

    The statements run as the table's owner (or the source's login role), never as the
    staging superuser: restored triggers, defaults and checks execute with no more privilege
    than they had on the source."""
    found = resolve_relation(pinned_db, crud_table)
    if found is None:
        pytest.fail(f"{crud_table}: missing from the restored copy", pytrace=False)
    try:
        role = unprivileged_role(pinned_db, found[0], facts)
    except RunAsSuperuser as exc:
        pytest.skip(
            f"not tested: {crud_table}: CRUD would run its restored code as a superuser: {exc}"
        )
    builder = RowBuilder(pinned_db)
    table = builder.table(found[0])
    pk = list(facts.tables[crud_table].get("pk") or [])
    record_property("acting_role", role or pinned_db.info.user)
    with pinned_db.transaction(force_rollback=True), acting_as(pinned_db, role):
        try:
            oid, ctid, _ = builder.insert(table)
        except SequenceBehind as exc:
            pytest.fail(str(exc), pytrace=False)
        except CannotBuild as exc:
            pytest.skip(f"not tested: {crud_table}: could not build a valid row ({exc})")
        except psycopg.Error as exc:
            _refused("INSERT", crud_table, exc)
        where = (oid, ctid)
        if _count_at(pinned_db, table, where) != 1:
            pytest.fail(f"{crud_table}: the inserted row cannot be read back", pytrace=False)
        try:
            with pinned_db.transaction():
                column, where = _update(pinned_db, table, pk, where)
        except psycopg.Error as exc:
            _refused("UPDATE", crud_table, exc)
        record_property("updated_column", column)
        if _count_at(pinned_db, table, where) != 1:
            pytest.fail(f"{crud_table}: the updated row cannot be read back", pytrace=False)
        delete = sql.SQL("DELETE FROM {t} WHERE tableoid = %s AND ctid = %s::tid").format(
            t=_rel(table)
        )
        try:
            with pinned_db.transaction():
                deleted = pinned_db.execute(delete, where).rowcount
        except psycopg.Error as exc:
            _refused("DELETE", crud_table, exc)
        if deleted != 1:
            pytest.fail(
                f"{crud_table}: DELETE of the new row removed {deleted} rows", pytrace=False
            )
        if _count_at(pinned_db, table, where) != 0:
            pytest.fail(f"{crud_table}: the deleted row is still visible", pytrace=False)
