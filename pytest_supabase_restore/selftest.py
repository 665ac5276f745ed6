"""``--supabase-self-test``: prove the drill's checks are alive.

After the restore, a scratch copy of the staging database is made (``CREATE DATABASE ...
TEMPLATE``), one real fault per check is injected into it, and the same comparison code the
smoke tests use must report each one. A fault that goes unnoticed fails the drill: a check
that cannot fail is worse than none. So does one that could not be injected (each is
injected with triggers and foreign-key checks off, ``session_replication_role = replica``,
as the restore loads data: a row that other rows reference can still be deleted), and a
self-test that injected nothing (see the verdict).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .errors import first_line
from .model import Manifest
from .proof.fingerprint import compare_table
from .proof.inventory import diff_inventory, schema_inventory
from .proof.rls import rls_visibility
from .proof.scope import list_tables, pin_session
from .results import FaultResult

SCRATCH_DB = "supabase_restore_selftest"


class InjectionFailed(Exception):
    """A fault's statement ran but did not change what it should have."""


# A template must have no other session. On a staging target that loads pg_cron, its
# launcher (a background worker) stays connected to the database pg_cron lives in, the
# restored one; it is ended just before the copy and the postmaster starts it again a
# second later, by when the copy holds the template's lock and the launcher waits for it.
_END_CRON_LAUNCHER = """
SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity
WHERE datname = %s AND backend_type = 'pg_cron launcher'
"""


def _copy_database(conn: psycopg.Connection[Any], source_db: str, attempts: int = 5) -> None:
    for attempt in range(1, attempts + 1):
        conn.execute(_END_CRON_LAUNCHER, (source_db,))
        try:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(SCRATCH_DB), sql.Identifier(source_db)
                )
            )
            return
        except psycopg.errors.ObjectInUse:
            if attempt == attempts:
                raise


@contextlib.contextmanager
def scratch_copy(dsn: str) -> Iterator[str]:
    """A copy of the staging database, dropped afterwards."""
    params: dict[str, Any] = conninfo_to_dict(dsn)
    source_db = str(params.get("dbname") or "postgres")
    admin = make_conninfo(dsn, dbname="template1")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(SCRATCH_DB)))
        _copy_database(conn, source_db)
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


Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class _Fault:
    """One fault to inject, and the check that must report it."""

    name: str
    category: str
    inject: Callable[[Conn], object]
    check: Callable[[Conn, Manifest], tuple[bool, str]]


def _data_check(name: str) -> Callable[[Conn, Manifest], tuple[bool, str]]:
    def check(conn: Conn, manifest: Manifest) -> tuple[bool, str]:
        recorded = manifest.tables[name]
        if recorded.fingerprint is None:
            return False, f"{name}: the backup recorded no fingerprint"
        pin_session(conn)
        ref = next(t for t in list_tables(conn, [recorded.schema]) if t.qualified == name)
        result = compare_table(conn, ref, recorded.fingerprint)
        return (not result.ok), result.message

    return check


def _schema_check(kind: str) -> Callable[[Conn, Manifest], tuple[bool, str]]:
    def check(conn: Conn, manifest: Manifest) -> tuple[bool, str]:
        pin_session(conn)
        actual = schema_inventory(conn, list(manifest.scope_schemas))
        diffs = [d for d in diff_inventory(manifest.schema, actual) if d.kind == kind]
        return bool(diffs), str(diffs[0]) if diffs else f"no {kind} difference reported"

    return check


def _rls_check(conn: Conn, manifest: Manifest) -> tuple[bool, str]:
    pin_session(conn)
    refs = list_tables(conn, list(manifest.scope_schemas))
    seen = rls_visibility(conn, refs, list(manifest.rls.users), samples=manifest.rls.samples)
    diff = [
        f"{manifest.rls.label(who)}/{table}"  # a label, never the auth.users id
        for who, counts in manifest.rls.visibility.items()
        for table, n in counts.items()
        if seen.get(who, {}).get(table) != n
    ]
    return bool(diff), f"visibility differs for {diff[0]}" if diff else "no visibility difference"


def _deleted_row(manifest: Manifest) -> _Fault | None:
    tables = manifest.tables
    public = [n for n, t in tables.items() if t.schema == "public" and t.rows > 0]
    with_pk = sorted((n for n in public if tables[n].pk), key=lambda n: -tables[n].rows)
    if not with_pk:
        return None
    big = with_pk[0]
    delete = sql.SQL("DELETE FROM {} WHERE ctid = (SELECT min(ctid) FROM {})")

    def inject(conn: Conn) -> None:
        deleted = conn.execute(delete.format(_ident(big), _ident(big))).rowcount
        if deleted != 1:
            raise InjectionFailed(f"{deleted} rows deleted from {big}, expected 1")

    return _Fault(f"deleted row in {big}", "data_integrity", inject, _data_check(big))


def _dropped_policy(manifest: Manifest) -> _Fault | None:
    policies = manifest.schema.get("policies", {})
    if not policies:
        return None
    key = sorted(policies)[0]
    pol = policies[key]
    drop = sql.SQL("DROP POLICY {} ON {}").format(
        sql.Identifier(str(pol["name"])), _ident(str(pol["table"]))
    )
    return _Fault(
        f"dropped policy {key}",
        "database_schema",
        lambda c: c.execute(drop),
        _schema_check("policies"),
    )


def _sequence_set_back(manifest: Manifest) -> _Fault | None:
    sequences = manifest.schema.get("sequences", {})
    seqs = sorted(k for k, v in sequences.items() if v.get("last_value"))
    if not seqs:
        return None
    return _Fault(
        f"sequence {seqs[0]} set back",
        "database_schema",
        lambda c: c.execute("SELECT setval(%s::regclass, 1, false)", [seqs[0]]),
        _schema_check("sequences"),
    )


def _revoked_grants(manifest: Manifest) -> _Fault | None:
    grants = sorted(
        k
        for k in manifest.schema.get("grants", {})
        if k.startswith("table public.") and k.endswith(" to anon")
    )
    if not grants:
        return None
    table = grants[0][len("table ") : -len(" to anon")]
    return _Fault(
        f"revoked grants on {table} from anon",
        "database_schema",
        lambda c: c.execute(sql.SQL("REVOKE ALL ON {} FROM anon").format(_ident(table))),
        _schema_check("grants"),
    )


def _rls_disabled(manifest: Manifest) -> _Fault | None:
    tables, samples = manifest.tables, manifest.rls.samples

    def hidden(name: str, value: Any) -> bool:  # anon sees some of the table, not all of it
        if isinstance(value, dict) and "visible" in value and name in samples:
            return len(value["visible"]) < len(samples[name].probed(None))
        return isinstance(value, int) and value >= 0 and tables[name].rows > value

    rls_tables = sorted(
        n
        for n, v in manifest.rls.visibility.get("anon", {}).items()
        if n in tables and hidden(n, v)
    )
    if not rls_tables:
        return None
    disable = sql.SQL("ALTER TABLE {} DISABLE ROW LEVEL SECURITY").format(_ident(rls_tables[0]))
    return _Fault(
        f"row-level security disabled on {rls_tables[0]}",
        "authentication",
        lambda c: c.execute(disable),
        _rls_check,
    )


# One fault per check, in the order they are injected; a fault the backup gives no object
# for (no policy, no sequence, ...) is left out.
_FAULTS: tuple[Callable[[Manifest], _Fault | None], ...] = (
    _deleted_row,
    _dropped_policy,
    _sequence_set_back,
    _revoked_grants,
    _rls_disabled,
)


def _inject(scratch: str, fault: _Fault) -> None:
    """The fault, in its own session with triggers and foreign-key checks off."""
    with psycopg.connect(scratch, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        fault.inject(conn)


def _run_one(dsn: str, fault: _Fault, manifest: Manifest) -> FaultResult:
    with scratch_copy(dsn) as scratch:
        try:
            _inject(scratch, fault)
        except (psycopg.Error, InjectionFailed) as exc:
            why = f"could not be injected: {type(exc).__name__}: {first_line(exc)}"
            return FaultResult(fault.name, fault.category, False, why, injected=False)
        with psycopg.connect(scratch, autocommit=True) as conn:
            caught, evidence = fault.check(conn, manifest)
    # Whole: the drill redacts, then shortens it (a cut first could split a secret).
    return FaultResult(fault.name, fault.category, caught, evidence)


def run_self_test(dsn: str, manifest: Manifest) -> list[FaultResult]:
    """Inject each fault into its own scratch copy and report whether the checks caught it
    (a fault that could not be injected is reported as such, and the others still run)."""
    faults = [fault for build in _FAULTS if (fault := build(manifest)) is not None]
    return [_run_one(dsn, fault, manifest) for fault in faults]
