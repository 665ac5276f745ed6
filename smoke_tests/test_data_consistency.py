"""data_consistency: the restored data obeys its own rules.

Constraints are re-checked against the data rather than trusted: no foreign key has orphans,
no unique key has duplicates, no row breaks a check constraint (each counted by a query
that does not rely on the possibly damaged index or constraint), no sequence would hand
out a value its column already holds, every materialized view refreshes, and every B-tree
index agrees with its table (``bt_index_check`` with ``heapallindexed``). A constraint or
index that is missing in the restored copy is re-checked from its recorded definition.
Messages carry counts and object names only.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pytest_supabase_restore.smoke_tests._support import (
    DefinitionError,
    Facts,
    RunAsSuperuser,
    acting_as,
    check_expression,
    describe_error,
    object_key,
    owner_table,
    parse_foreign_key,
    quote_ident,
    resolve_relation,
    unprivileged_role,
    unquoted_rel,
)

pytestmark = pytest.mark.supabase_category("data_consistency")

Conn = psycopg.Connection[Any]


def _constraint(facts: Facts, ident: str) -> tuple[str, str, dict[str, Any]]:
    """(table, constraint name, inventory entry) for a ``table/name`` test id."""
    key = object_key(ident)
    split = owner_table(key, facts.inventory.get("tables", {}))
    assert split is not None, f"{ident}: no recorded table owns this constraint"
    return split[0], split[1], facts.inventory["constraints"][key]


def _from(rel: str, kind: str) -> sql.Composable:
    """``ONLY t`` for a plain table (its own rows), ``t`` for a partitioned one (all rows)."""
    return sql.SQL(rel) if kind == "p" else sql.SQL("ONLY {}").format(sql.SQL(rel))


def _count(conn: Conn, query: sql.Composed, cannot: str) -> int:
    """Run a ``SELECT count(*)``; a query the restored copy cannot run fails naming ``cannot``."""
    try:
        with conn.transaction():
            row = conn.execute(query).fetchone()
    except psycopg.Error as exc:
        pytest.fail(f"{cannot}: {describe_error(exc)}", pytrace=False)
    return int(row[0]) if row else 0


def _table_or_skip(conn: Conn, table: str, what: str) -> tuple[int, str, str, str]:
    found = resolve_relation(conn, table)
    if found is None:
        pytest.skip(
            f"not tested: {what}: table {table} is missing from the restored copy "
            "(database_schema reports it)"
        )
    return found


def test_foreign_key(foreign_key: str, facts: Facts, pinned_db: Conn) -> None:
    """No row references a row that does not exist (counted, never shown)."""
    table, _name, entry = _constraint(facts, foreign_key)
    if entry.get("validated") is False:
        pytest.skip(f"not checked: foreign key {foreign_key} is NOT VALID in the source")
    try:
        fk = parse_foreign_key(str(entry["definition"]))
    except DefinitionError as exc:
        pytest.fail(
            f"foreign key {foreign_key}: unreadable recorded definition ({exc})", pytrace=False
        )
    _oid, child_rel, kind, _schema = _table_or_skip(pinned_db, table, f"foreign key {foreign_key}")
    parent = unquoted_rel(fk.ref_schema, fk.ref_table)
    found = resolve_relation(pinned_db, parent)
    if found is None:
        pytest.fail(
            f"foreign key {foreign_key}: the referenced table {parent} is missing from the "
            "restored copy, so every non-null reference is an orphan",
            pytrace=False,
        )
    cols = [sql.Identifier("c", c) for c in fk.columns]
    match = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier("p", p), c)
        for p, c in zip(fk.ref_columns, cols, strict=True)
    )
    exists = sql.SQL("EXISTS (SELECT 1 FROM {} AS p WHERE {})").format(sql.SQL(found[1]), match)
    all_set = sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(c) for c in cols)
    if fk.match_full:
        any_set = sql.SQL(" OR ").join(sql.SQL("{} IS NOT NULL").format(c) for c in cols)
        where = sql.SQL("({any}) AND NOT (({all}) AND {exists})").format(
            any=any_set, all=all_set, exists=exists
        )
    else:
        where = sql.SQL("{all} AND NOT {exists}").format(all=all_set, exists=exists)
    query = sql.SQL("SELECT count(*) FROM {t} AS c WHERE {w}").format(
        t=_from(child_rel, kind), w=where
    )
    orphans = _count(
        pinned_db,
        query,
        f"foreign key {foreign_key}: its columns cannot be compared in the restored copy",
    )
    if orphans:
        pytest.fail(
            f"foreign key {foreign_key}: {orphans} row(s) of {table} reference no row of "
            f"{parent} ({', '.join(fk.ref_columns)})",
            pytrace=False,
        )


def test_check_constraint(check_constraint: str, facts: Facts, pinned_db: Conn) -> None:
    """No row breaks the check constraint (its recorded expression, evaluated per row)."""
    table, _name, entry = _constraint(facts, check_constraint)
    if entry.get("validated") is False:
        pytest.skip(f"not checked: check constraint {check_constraint} is NOT VALID in the source")
    try:
        expression = check_expression(str(entry["definition"]))
    except DefinitionError as exc:
        pytest.fail(
            f"check constraint {check_constraint}: unreadable recorded definition ({exc})",
            pytrace=False,
        )
    _oid, rel, kind, _schema = _table_or_skip(
        pinned_db, table, f"check constraint {check_constraint}"
    )
    # The expression was written by pg_get_constraintdef under the same pinned search_path,
    # so it names every object exactly as on the source.
    query = sql.SQL("SELECT count(*) FROM {t} WHERE NOT ({e})").format(
        t=_from(rel, kind),
        e=sql.SQL(expression),
    )
    violations = _count(
        pinned_db,
        query,
        f"check constraint {check_constraint}: its expression cannot be evaluated on the "
        "restored copy",
    )
    if violations:
        pytest.fail(
            f"check constraint {check_constraint}: {violations} row(s) of {table} violate it",
            pytrace=False,
        )


def _index_or_recorded(conn: Conn, key: str, definition: str) -> tuple[int, bool]:
    """The index's oid in the restored copy; if missing, a non-unique stand-in built from its
    recorded definition inside the caller's rolled-back transaction. (oid, stand-in?)"""
    found = resolve_relation(conn, key)
    if found is not None:
        return found[0], False
    text = definition.replace("CREATE UNIQUE INDEX ", "CREATE INDEX ", 1)
    conn.execute(sql.SQL(text))
    again = resolve_relation(conn, key)
    assert again is not None
    return again[0], True


def test_unique_key(unique_index: str, facts: Facts, pinned_db: Conn, drill_fact: Any) -> None:
    """No two rows share a value of the unique key (grouped from the table, not the index)."""
    entry = facts.inventory["indexes"][unique_index]
    table = str(entry["table"])
    _table_or_skip(pinned_db, table, f"unique index {unique_index}")
    with pinned_db.transaction(force_rollback=True):
        try:
            oid, stand_in = _index_or_recorded(pinned_db, unique_index, str(entry["definition"]))
        except psycopg.Error as exc:
            pytest.fail(
                f"unique index {unique_index}: missing from the restored copy, and its recorded "
                f"definition cannot be rebuilt to check the data: {describe_error(exc)}",
                pytrace=False,
            )
        drill_fact("rebuilt_from_backup", stand_in)
        nulls_distinct = "true"
        if pinned_db.info.server_version >= 150000:
            nulls_distinct = "NOT i.indnullsnotdistinct"
        row = pinned_db.execute(
            sql.SQL(
                """
                SELECT i.indrelid::pg_catalog.regclass::text, c.relkind::text, c.relispopulated,
                    pg_catalog.pg_get_expr(i.indpred, i.indrelid), {nd},
                    ARRAY(SELECT pg_catalog.pg_get_indexdef(i.indexrelid, k, false)
                          FROM pg_catalog.generate_series(1, i.indnkeyatts) AS k ORDER BY k)
                FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
                WHERE i.indexrelid = %s
                """
            ).format(nd=sql.SQL(nulls_distinct)),
            (oid,),
        ).fetchone()
        assert row is not None
        rel, kind, populated, predicate, nulls_are_distinct, keys = row
        if not populated:
            pytest.skip(
                f"not checked: unique index {unique_index}: materialized view {table} holds no "
                "data until it is refreshed"
            )
        exprs = [sql.SQL("({})").format(sql.SQL(k)) for k in keys]
        conds: list[sql.Composable] = []
        if predicate:
            conds.append(sql.SQL("({})").format(sql.SQL(predicate)))
        if nulls_are_distinct:
            conds += [sql.SQL("{} IS NOT NULL").format(e) for e in exprs]
        where = sql.SQL(" AND ").join(conds) if conds else sql.SQL("true")
        # Read the table itself: a damaged index must not hide the duplicates it should catch.
        for setting in ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan"):
            pinned_db.execute("SELECT pg_catalog.set_config(%s, 'off', true)", (setting,))
        query = sql.SQL(
            "SELECT count(*), coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM {t} WHERE {w}"
            " GROUP BY {g} HAVING count(*) > 1) AS d"
        ).format(t=_from(rel, kind), w=where, g=sql.SQL(", ").join(exprs))
        dup = pinned_db.execute(query).fetchone()
    groups, rows = (int(dup[0]), int(dup[1])) if dup else (0, 0)
    if groups:
        pytest.fail(
            f"unique index {unique_index}: {groups} key value(s) of {table} occur more than once "
            f"({rows} rows)"
            + (" (the index itself is missing from the restored copy)" if stand_in else ""),
            pytrace=False,
        )


def test_sequence_not_behind(owned_sequence: str, facts: Facts, pinned_db: Conn) -> None:
    """The sequence's next value is past every value its column already holds."""
    entry = facts.inventory["sequences"][owned_sequence]
    owned_by = str(entry["owned_by"])
    split = owner_table(owned_by, facts.inventory.get("tables", {}))
    assert split is not None, f"{owned_sequence}: no recorded table owns {owned_by}"
    table, column = split
    seq = resolve_relation(pinned_db, owned_sequence)
    if seq is None:
        pytest.fail(f"sequence {owned_sequence}: missing from the restored copy", pytrace=False)
    _oid, rel, _kind, _schema = _table_or_skip(pinned_db, table, f"sequence {owned_sequence}")
    increment = int(entry.get("increment") or 1)
    ascending = increment > 0
    try:
        with pinned_db.transaction():
            state = pinned_db.execute(
                sql.SQL("SELECT last_value::numeric, is_called FROM {}").format(sql.SQL(seq[1]))
            ).fetchone()
            top = pinned_db.execute(
                sql.SQL("SELECT {f}({c})::numeric FROM {t}").format(
                    f=sql.SQL("max" if ascending else "min"),
                    c=sql.Identifier(column),
                    t=sql.SQL(rel),
                )
            ).fetchone()
    except psycopg.Error as exc:
        pytest.fail(
            f"sequence {owned_sequence}: cannot compare it with {table}.{column}: "
            f"{describe_error(exc)}",
            pytrace=False,
        )
    assert state is not None and top is not None
    if top[0] is None:
        return
    last, is_called = int(state[0]), bool(state[1])
    following = last + increment if is_called else last
    extreme = int(top[0])
    behind = following <= extreme if ascending else following >= extreme
    if behind:
        pytest.fail(
            f"sequence {owned_sequence}: next value {following} is not "
            f"{'above max' if ascending else 'below min'}({table}.{column}) = {extreme}: the "
            "sequence is behind the data, so inserts that use the default will collide "
            f"(fix: SELECT setval('{owned_sequence}', {extreme}))",
            pytrace=False,
        )


def test_materialized_view_refreshes(matview: str, facts: Facts, pinned_db: Conn) -> None:
    """``REFRESH MATERIALIZED VIEW`` succeeds (inside a transaction that is rolled back), run
    as the view's owner: its query is restored code and gets no superuser rights here."""
    found = resolve_relation(pinned_db, matview)
    if found is None:
        pytest.fail(f"materialized view {matview}: missing from the restored copy", pytrace=False)
    try:
        role = unprivileged_role(pinned_db, found[0], facts, owner_only=True)
    except RunAsSuperuser as exc:
        pytest.skip(
            f"not tested: materialized view {matview}: REFRESH would run as a superuser: {exc}"
        )
    try:
        with pinned_db.transaction(force_rollback=True), acting_as(pinned_db, role):
            pinned_db.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(sql.SQL(found[1])))
    except psycopg.Error as exc:
        pytest.fail(
            f"materialized view {matview}: REFRESH fails: {describe_error(exc)}", pytrace=False
        )


def _amcheck_schema(conn: Conn) -> str:
    """The schema holding amcheck's functions; installs it for this transaction if needed."""
    row = conn.execute(
        "SELECT n.nspname::text FROM pg_catalog.pg_extension e"
        " JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'amcheck'"
    ).fetchone()
    if row is not None:
        return str(row[0])
    schema = f"smoke_amcheck_{uuid.uuid4().hex[:12]}"
    try:
        with conn.transaction():
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            conn.execute(
                sql.SQL("CREATE EXTENSION amcheck SCHEMA {}").format(sql.Identifier(schema))
            )
    except psycopg.Error as exc:
        pytest.skip(
            f"not tested: amcheck is not available on this staging target ({describe_error(exc)})"
        )
    return schema


def test_btree_index(btree_index: str, pinned_db: Conn) -> None:
    """``bt_index_check(index, heapallindexed => true)``: the index matches its table."""
    found = resolve_relation(pinned_db, btree_index)
    if found is None:
        pytest.skip(
            f"not tested: index {btree_index} is missing from the restored copy "
            "(database_schema reports it)"
        )
    oid, _rel, kind, _schema = found
    with pinned_db.transaction(force_rollback=True):
        schema = _amcheck_schema(pinned_db)
        indexes = [oid]
        if kind == "I":  # a partitioned index: its partitions' indexes hold the entries
            indexes = [
                int(r[0])
                for r in pinned_db.execute(
                    "SELECT t.relid::bigint FROM pg_catalog.pg_partition_tree(%s) t"
                    " JOIN pg_catalog.pg_class c ON c.oid = t.relid WHERE c.relkind = 'i'",
                    (oid,),
                )
            ]
        check = sql.SQL("SELECT {}.bt_index_check(%s::oid::pg_catalog.regclass, true)").format(
            sql.SQL(quote_ident(schema))
        )
        for index in indexes:
            try:
                with pinned_db.transaction():
                    pinned_db.execute(check, (index,))
            except psycopg.Error as exc:
                name_row = pinned_db.execute(
                    "SELECT %s::oid::pg_catalog.regclass::text", (index,)
                ).fetchone()
                name = name_row[0] if name_row else btree_index
                pytest.fail(
                    f"index {name}: bt_index_check reports: {describe_error(exc)}", pytrace=False
                )
