"""What the crud_operations category reads of a table from the catalog: its columns (types
with domains resolved, defaults, identities, enum labels), foreign keys, unique indexes and
partition key; and how its names are spliced into SQL that also takes parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

Conn = psycopg.Connection[Any]
Value = str | bytes | None


class CannotBuild(Exception):
    """No row satisfying the table's constraints could be built from the catalog."""


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


def _columns(conn: Conn, oid: int) -> tuple[dict[str, Column], dict[int, str]]:
    """The table's columns by name, and their names by attribute number."""
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
    return columns, attnames


def _foreign_keys(conn: Conn, oid: int, attnames: dict[int, str]) -> list[ForeignKeyInfo]:
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
    return fks


def _unique_sets(
    conn: Conn, oid: int, columns: dict[str, Column], attnames: dict[int, str]
) -> dict[str, list[str]]:
    """Per unique index, the columns it covers."""
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
    return unique_sets


def _partition_key(conn: Conn, oid: int, attnames: dict[int, str]) -> list[str]:
    row = conn.execute(
        "SELECT partattrs::int2[] FROM pg_catalog.pg_partitioned_table WHERE partrelid = %s",
        (oid,),
    ).fetchone()
    return [] if row is None else [attnames[int(n)] for n in row[0] if int(n) in attnames]


def load_table(conn: Conn, oid: int) -> TableInfo:
    """Everything the row builder needs to know about one table, from the catalog."""
    rel_row = conn.execute(
        "SELECT %s::oid::pg_catalog.regclass::text, relkind::text FROM pg_catalog.pg_class"
        " WHERE oid = %s",
        (oid, oid),
    ).fetchone()
    assert rel_row is not None
    columns, attnames = _columns(conn, oid)
    return TableInfo(
        oid=oid,
        rel=str(rel_row[0]),
        kind=str(rel_row[1]),
        columns=columns,
        fks=_foreign_keys(conn, oid, attnames),
        unique_sets=_unique_sets(conn, oid, columns, attnames),
        partition_key=_partition_key(conn, oid, attnames) if rel_row[1] == "p" else [],
    )


def identifier(name: str) -> sql.Identifier:
    """An identifier for a query that also takes parameters: psycopg reads every ``%`` of
    such a query as a placeholder, so a ``%`` in a name (legal in quoted identifiers) is
    doubled; psycopg turns ``%%`` back into ``%`` before the server sees it."""
    return sql.Identifier(name.replace("%", "%%"))


def relation_sql(table: TableInfo) -> sql.SQL:
    """The table's quoted, qualified name, for a query that also takes parameters."""
    return sql.SQL(table.rel.replace("%", "%%"))
