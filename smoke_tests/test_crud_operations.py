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

from collections.abc import Sequence
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from pytest_supabase_restore.smoke_tests._catalog import (
    CannotBuild,
    Conn,
    TableInfo,
    Value,
    identifier,
    relation_sql,
)
from pytest_supabase_restore.smoke_tests._rows import RowBuilder, SequenceBehind, generic_values
from pytest_supabase_restore.smoke_tests._support import (
    Facts,
    RunAsSuperuser,
    acting_as,
    describe_error,
    resolve_relation,
    unprivileged_role,
)

pytestmark = pytest.mark.supabase_category("crud_operations")


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
        values: list[Value] = generic_values(col) + ([None] if not col.not_null else [])
        for value in values:
            query = sql.SQL(
                "UPDATE {t} SET {c} = %s::{ty} WHERE tableoid = %s AND ctid = %s::tid"
                " AND {c} IS DISTINCT FROM %s::{ty} RETURNING tableoid::bigint, ctid::text"
            ).format(
                t=relation_sql(table),
                c=identifier(col.name),
                ty=sql.SQL(col.type_sql.replace("%", "%%")),
            )
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
        ).format(t=relation_sql(table), c=identifier(col.name))
        got = conn.execute(query, where).fetchone()
        if got is None:
            pytest.fail(f"{table.rel}: UPDATE of the new row matched no row", pytrace=False)
        return col.name, (int(got[0]), str(got[1]))
    pytest.skip(f"not tested: {table.rel}: no column can be updated")


def _count_at(conn: Conn, table: TableInfo, where: tuple[int, str]) -> int:
    query = sql.SQL("SELECT count(*) FROM {t} WHERE tableoid = %s AND ctid = %s::tid").format(
        t=relation_sql(table)
    )
    row = conn.execute(query, where).fetchone()
    return int(row[0]) if row else 0


def test_crud(
    crud_table: str, facts: Facts, pinned_db: psycopg.Connection[Any], drill_fact: Any
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
    pk = list(facts.tables[crud_table].pk)
    drill_fact("acting_role", role or pinned_db.info.user)
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
        drill_fact("updated_column", column)
        if _count_at(pinned_db, table, where) != 1:
            pytest.fail(f"{crud_table}: the updated row cannot be read back", pytrace=False)
        delete = sql.SQL("DELETE FROM {t} WHERE tableoid = %s AND ctid = %s::tid").format(
            t=relation_sql(table)
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
