"""``--supabase-self-test``: prove the drill's checks are alive.

After the restore, a scratch copy of the staging database is made (``CREATE DATABASE ...
TEMPLATE``), one real fault per check is injected into it, and the same comparison code the
smoke tests use must report each one. A fault that goes unnoticed fails the drill: a check
that cannot fail is worse than none.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .manifest import identity_label
from .proof.fingerprint import compare_table
from .proof.inventory import diff_inventory, schema_inventory
from .proof.rls import rls_visibility
from .proof.scope import list_tables, pin_session

SCRATCH_DB = "supabase_restore_selftest"


@dataclass
class FaultResult:
    fault: str
    category: str
    caught: bool
    evidence: str


@contextlib.contextmanager
def scratch_copy(dsn: str) -> Iterator[str]:
    """A copy of the staging database, dropped afterwards."""
    params: dict[str, Any] = conninfo_to_dict(dsn)
    source_db = str(params.get("dbname") or "postgres")
    admin = make_conninfo(dsn, dbname="template1")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(SCRATCH_DB)))
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(SCRATCH_DB), sql.Identifier(source_db)
            )
        )
    try:
        yield make_conninfo(dsn, dbname=SCRATCH_DB)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(SCRATCH_DB)
                )
            )


def _ident(qualified: str) -> sql.Composable:
    schema, _, name = qualified.partition(".")
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def run_self_test(dsn: str, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Inject each fault into its own scratch copy and report whether the checks caught it."""
    tables = manifest["tables"]
    schema = manifest["schema"]
    public = [n for n, t in tables.items() if t["schema"] == "public" and t["rows"] > 0]
    with_pk = sorted((n for n in public if tables[n]["pk"]), key=lambda n: -tables[n]["rows"])
    results: list[FaultResult] = []

    def data_check(conn: psycopg.Connection[Any], name: str) -> tuple[bool, str]:
        pin_session(conn)
        ref = next(t for t in list_tables(conn, [tables[name]["schema"]]) if t.qualified == name)
        result = compare_table(conn, ref, tables[name])
        return (not result.ok), result.message

    def schema_check(conn: psycopg.Connection[Any], kind: str) -> tuple[bool, str]:
        pin_session(conn)
        actual = schema_inventory(conn, manifest["scope_schemas"])
        diffs = [d for d in diff_inventory(schema, actual) if d.kind == kind]
        return bool(diffs), str(diffs[0]) if diffs else f"no {kind} difference reported"

    def rls_check(conn: psycopg.Connection[Any], _: str) -> tuple[bool, str]:
        pin_session(conn)
        refs = list_tables(conn, manifest["scope_schemas"])
        seen = rls_visibility(conn, refs, manifest["rls"]["users"])
        expected = manifest["rls"]["visibility"]
        diff = [
            f"{identity_label(who, manifest)}/{table}"  # a label, never the auth.users id
            for who, counts in expected.items()
            for table, n in counts.items()
            if seen.get(who, {}).get(table) != n
        ]
        return bool(
            diff
        ), f"visibility differs for {diff[0]}" if diff else "no visibility difference"

    faults: list[tuple[str, str, Callable[..., str], Callable[..., tuple[bool, str]], str]] = []
    if with_pk:
        big = with_pk[0]
        pk = tables[big]["pk"]
        faults.append(
            (
                f"deleted row in {big}",
                "data_integrity",
                lambda c, t=big, k=pk: str(
                    c.execute(
                        sql.SQL("DELETE FROM {} WHERE ctid = (SELECT min(ctid) FROM {})").format(
                            _ident(t), _ident(t)
                        )
                    ).rowcount
                ),
                data_check,
                big,
            )
        )
        del pk
    policies = sorted(schema.get("policies", {}))
    if policies:
        key = policies[0]
        pol = schema["policies"][key]
        faults.append(
            (
                f"dropped policy {key}",
                "database_schema",
                lambda c, p=pol: str(
                    c.execute(
                        sql.SQL("DROP POLICY {} ON {}").format(
                            sql.Identifier(p["name"]), _ident(p["table"])
                        )
                    ).rowcount
                ),
                schema_check,
                "policies",
            )
        )
    seqs = sorted(k for k, v in schema.get("sequences", {}).items() if v.get("last_value"))
    if seqs:
        faults.append(
            (
                f"sequence {seqs[0]} set back",
                "database_schema",
                lambda c, s=seqs[0]: str(
                    c.execute("SELECT setval(%s::regclass, 1, false)", [s]).fetchone()
                ),
                schema_check,
                "sequences",
            )
        )
    grants = sorted(
        k
        for k in schema.get("grants", {})
        if k.startswith("table public.") and k.endswith(" to anon")
    )
    if grants:
        table = grants[0][len("table ") : -len(" to anon")]
        faults.append(
            (
                f"revoked grants on {table} from anon",
                "database_schema",
                lambda c, t=table: str(
                    c.execute(sql.SQL("REVOKE ALL ON {} FROM anon").format(_ident(t))).rowcount
                ),
                schema_check,
                "grants",
            )
        )
    rls_tables = sorted(
        n
        for n, v in manifest["rls"].get("visibility", {}).get("anon", {}).items()
        if v >= 0 and n in tables and tables[n]["rows"] > v
    )
    if rls_tables:
        faults.append(
            (
                f"row-level security disabled on {rls_tables[0]}",
                "authentication",
                lambda c, t=rls_tables[0]: str(
                    c.execute(
                        sql.SQL("ALTER TABLE {} DISABLE ROW LEVEL SECURITY").format(_ident(t))
                    ).rowcount
                ),
                rls_check,
                "",
            )
        )

    for fault, category, inject, check, arg in faults:
        with scratch_copy(dsn) as scratch, psycopg.connect(scratch, autocommit=True) as conn:
            inject(conn)
            caught, evidence = check(conn, arg)
            # Whole: the drill redacts, then shortens it (a cut first could split a secret).
            results.append(FaultResult(fault, category, caught, evidence))
    return [asdict(r) for r in results]
