"""Parametrization of the smoke tests from the backup, and the fixtures they share.

Every parametrized argument below is filled at collection time from the manifest of this
run's backup set (the controller exports before collection), so a failing test's id names
exactly what broke. Without a drill (no ``--supabase-restore``) each test is collected
once and skipped with the reason naming the flag; when the drill failed, once, and the
drill fixtures fail it with the drill's error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pytest_supabase_restore.ci_report import FACT_PREFIX
from pytest_supabase_restore.errors import first_line
from pytest_supabase_restore.fixtures import FLAG_REASON, BackupSet, collection_manifest, get_state
from pytest_supabase_restore.model import Manifest
from pytest_supabase_restore.proof.inventory import INVENTORY_KINDS, Inventory, schema_inventory
from pytest_supabase_restore.proof.postgrest import ANON
from pytest_supabase_restore.proof.scope import pin_session
from pytest_supabase_restore.results import DrillState
from pytest_supabase_restore.smoke_tests._support import (
    API_ROLES,
    AUTH_TABLES,
    EXPOSED_SCHEMAS,
    LOOKUP_CAP,
    NO_MANIFEST,
    PLATFORM_SCHEMAS,
    Facts,
    Unloadable,
    authenticator_conninfo,
    object_id,
    object_key,
)

_FACTS_KEY = pytest.StashKey[Facts | str]()
_HERE = Path(__file__).parent


# ---------------------------------------------------------------------------------------------
# Collection
# ---------------------------------------------------------------------------------------------


def _collection_facts(config: pytest.Config) -> Facts | str:
    """The facts to parametrize from, or the reason there are none (cached per run)."""
    cached = config.stash.get(_FACTS_KEY, None)
    if cached is not None:
        return cached
    result: Facts | str
    state = get_state(config)
    manifest = collection_manifest(config)
    if state is None or not state.enabled:
        result = FLAG_REASON
    elif state.mode == "dry-run":
        result = "--supabase-dry-run: nothing was restored"
    elif manifest is not None:
        result = Facts.from_manifest(manifest)
    elif state.error or not state.staging_dsn:
        # Not a skip: the drill fixtures fail the test with the drill's own error.
        result = ""
    else:
        try:
            with psycopg.connect(state.staging_dsn, connect_timeout=15) as conn:
                result = Facts.from_staging(conn)
        except psycopg.Error as exc:
            first = first_line(exc, type(exc).__name__)
            result = f"the restored staging database could not be read at collection: {first}"
    config.stash[_FACTS_KEY] = result
    return result


def _tables(facts: Facts) -> list[str]:
    return sorted(facts.tables)


def _crud_tables(facts: Facts) -> list[str]:
    return sorted(
        key
        for key, entry in facts.tables.items()
        if entry.schema not in PLATFORM_SCHEMAS and entry.kind in ("r", "p")
    )


def _auth_tables(facts: Facts) -> list[str]:
    return [t for t in AUTH_TABLES if t in facts.tables]


def _identities(facts: Facts) -> list[str]:
    assert facts.reference is not None
    rls = facts.reference.rls
    return [i for i in [ANON, *rls.users] if i in rls.visibility]


def _buckets(facts: Facts) -> list[str]:
    assert facts.reference is not None
    return sorted(facts.reference.storage.bucket_ids)


def _kinds(facts: Facts) -> list[str]:
    return [kind for kind in INVENTORY_KINDS if kind in facts.inventory]


def _schema_tables(facts: Facts) -> list[str]:
    return sorted(facts.inventory.get("tables", {}))


def _policies(facts: Facts) -> list[str]:
    tables = list(facts.inventory.get("tables", {}))
    return sorted(object_id(key, tables) for key in facts.inventory.get("policies", {}))


def _constraints_of(contype: str) -> Callable[[Facts], list[str]]:
    def pick(facts: Facts) -> list[str]:
        tables = list(facts.inventory.get("tables", {}))
        return sorted(
            object_id(key, tables)
            for key, entry in facts.inventory.get("constraints", {}).items()
            if entry.get("type") == contype
        )

    return pick


def _unique_indexes(facts: Facts) -> list[str]:
    return sorted(k for k, v in facts.inventory.get("indexes", {}).items() if v.get("unique"))


def _btree_indexes(facts: Facts) -> list[str]:
    return sorted(
        k
        for k, v in facts.inventory.get("indexes", {}).items()
        if " USING btree " in str(v.get("definition", ""))
    )


def _owned_sequences(facts: Facts) -> list[str]:
    return sorted(k for k, v in facts.inventory.get("sequences", {}).items() if v.get("owned_by"))


def _matviews(facts: Facts) -> list[str]:
    return sorted(facts.inventory.get("matviews", {}))


def _nonempty_tables(facts: Facts) -> list[str]:
    return sorted(k for k, v in facts.tables.items() if v.rows > 0)


def _lookup_tables(facts: Facts) -> list[str]:
    candidates = [(v.rows, v.bytes, k) for k, v in facts.tables.items() if v.pk and v.rows > 0]
    candidates.sort(key=lambda c: (-c[0], -c[1], c[2]))
    return [k for _rows, _bytes, k in candidates[:LOOKUP_CAP]]


def _exposed_schemas(facts: Facts) -> list[str]:
    return [s for s in EXPOSED_SCHEMAS if s in facts.scope]


def _api_relations(facts: Facts) -> list[str]:
    names: set[str] = set()
    for kind in ("tables", "views", "matviews"):
        names.update(facts.inventory.get(kind, {}))
    return sorted(n for n in names if any(n.startswith(s + ".") for s in EXPOSED_SCHEMAS))


# argname -> (values from the facts, needs the manifest as reference, reason when empty)
_PARAMS: dict[str, tuple[Callable[[Facts], list[str]], bool, str]] = {
    "integrity_table": (_tables, True, "not tested: the backup holds no tables"),
    "schema_kind": (_kinds, True, "not tested: the backup recorded no schema inventory"),
    "schema_table": (_schema_tables, True, "not tested: the backup recorded no tables"),
    "schema_policy": (_policies, True, "not tested: the backup has no RLS policies"),
    "crud_table": (_crud_tables, False, "not tested: the backup has no application tables"),
    "auth_table": (_auth_tables, True, "not tested: the backup holds no auth tables"),
    "rls_identity": (_identities, True, "not tested: no RLS visibility was recorded"),
    "bucket": (_buckets, True, "not tested: the backup has no Storage buckets"),
    "stats_table": (_nonempty_tables, False, "not tested: every table of the backup is empty"),
    "lookup_table": (
        _lookup_tables,
        False,
        "not tested: no non-empty table with a primary key",
    ),
    "foreign_key": (_constraints_of("foreign key"), False, "not tested: no foreign keys"),
    "check_constraint": (_constraints_of("check"), False, "not tested: no check constraints"),
    "unique_index": (_unique_indexes, False, "not tested: no unique indexes"),
    "owned_sequence": (_owned_sequences, False, "not tested: no sequences owned by a column"),
    "matview": (_matviews, False, "not tested: no materialized views"),
    "btree_index": (_btree_indexes, False, "not tested: no B-tree indexes"),
    "exposed_schema": (_exposed_schemas, False, "not tested: no exposed schema (public)"),
    "api_relation": (_api_relations, True, "not tested: no relations in the exposed schemas"),
}


def _identity_id(facts: Facts, identity: str) -> str:
    assert facts.reference is not None
    return facts.reference.rls.label(identity)


# argname -> the test id of a value, where the value itself must not be shown (default: as is)
_IDS: dict[str, Callable[[Facts, str], str]] = {"rls_identity": _identity_id}


def _table_objects(value: str, _facts: Facts) -> list[str]:
    return [f"table {value}"]


def _data_objects(value: str, _facts: Facts) -> list[str]:
    return [f"table {value}", f"data {value}"]


def _table_member(kind: str, inventory_kind: str) -> Callable[[str, Facts], list[str]]:
    def objects(value: str, facts: Facts) -> list[str]:
        entry = facts.inventory.get(inventory_kind, {}).get(object_key(value), {})
        return Unloadable().entry_labels(
            inventory_kind, object_key(value), entry, facts.inventory.get("tables", {})
        ) or [f"{kind} {value}"]

    return objects


def _inventory_objects(inventory_kind: str) -> Callable[[str, Facts], list[str]]:
    def objects(value: str, facts: Facts) -> list[str]:
        entry = facts.inventory.get(inventory_kind, {}).get(value, {})
        return Unloadable().entry_labels(
            inventory_kind, value, entry, facts.inventory.get("tables", {})
        )

    return objects


def _relation_objects(value: str, _facts: Facts) -> list[str]:
    return [f"{kind} {value}" for kind in ("table", "view", "materialized view")]


# argname -> the objects a check of that value needs: when one of them depends on an
# extension the staging target cannot load, the check is not tested (it says which).
_OBJECTS: dict[str, Callable[[str, Facts], list[str]]] = {
    "integrity_table": _data_objects,
    "schema_table": _table_objects,
    "schema_policy": _table_member("policy", "policies"),
    "crud_table": _table_objects,
    "auth_table": _data_objects,
    "stats_table": _data_objects,
    "lookup_table": _data_objects,
    "foreign_key": _table_member("constraint", "constraints"),
    "check_constraint": _table_member("constraint", "constraints"),
    "unique_index": _inventory_objects("indexes"),
    "owned_sequence": _inventory_objects("sequences"),
    "matview": _inventory_objects("matviews"),
    "btree_index": _inventory_objects("indexes"),
    "exposed_schema": _inventory_objects("schemas"),
    "api_relation": _relation_objects,
}
_UNLOADABLE_KEY = pytest.StashKey[Unloadable]()


def _collection_unloadable(config: pytest.Config, facts: Facts) -> Unloadable:
    """What the restore could not bring back because of an unloadable extension (cached)."""
    cached = config.stash.get(_UNLOADABLE_KEY, None)
    if cached is None:
        cached = Unloadable.from_state(get_state(config), facts.reference)
        config.stash[_UNLOADABLE_KEY] = cached
    return cached


def _param(name: str, value: str, facts: Facts, unloadable: Unloadable) -> Any:
    """One case; skipped, with the reason, when its object depends on an extension this
    staging target cannot load."""
    id_of = _IDS.get(name)
    objects_of = _OBJECTS.get(name)
    reason = unloadable.reason(objects_of(value, facts)) if objects_of and unloadable else None
    marks = [pytest.mark.skip(reason=reason)] if reason else []
    return pytest.param(value, id=id_of(facts, value) if id_of else value, marks=marks)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize each smoke test from the backup: one case per object, named after it."""
    if metafunc.definition.path.parent != _HERE:
        return  # registered for the whole run (builtin_tests.py): only the smoke tests here
    if "api_role" in metafunc.fixturenames:
        metafunc.parametrize("api_role", list(API_ROLES))
    wanted = [name for name in _PARAMS if name in metafunc.fixturenames]
    if not wanted:
        return
    facts = _collection_facts(metafunc.config)
    for name in wanted:
        values_of, needs_reference, empty_reason = _PARAMS[name]
        if isinstance(facts, str):
            marks = [pytest.mark.skip(reason=facts)] if facts else []
            params = [pytest.param(None, id="drill", marks=marks)]
        elif needs_reference and not facts.has_reference:
            params = [pytest.param(None, id="no-manifest", marks=pytest.mark.skip(NO_MANIFEST))]
        else:
            values = values_of(facts)
            unloadable = _collection_unloadable(metafunc.config, facts)
            params = [_param(name, v, facts, unloadable) for v in values] or [
                pytest.param(None, id="none", marks=pytest.mark.skip(reason=empty_reason))
            ]
        metafunc.parametrize(name, params)


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def drill_fact(request: pytest.FixtureRequest) -> Callable[[str, object], None]:
    """Record a fact a check measured (rows compared, a plan, a timing) on its report, as
    ``record_property`` does but without its warning under JUnit's default ``xunit2``
    family: JUnit gets the facts with ``xunit1`` and leaves them out with ``xunit2``, whose
    test cases have no properties."""

    def record(name: str, value: object) -> None:
        request.node.user_properties.append((FACT_PREFIX + name, value))

    return record


@pytest.fixture(scope="session")
def facts(
    pytestconfig: pytest.Config,
    drill_state: DrillState,
    supabase_backup: BackupSet,
    staging_dsn: str,
) -> Facts:
    """The facts the tests of this run were parametrized from."""
    collected = _collection_facts(pytestconfig)
    if isinstance(collected, Facts):
        return collected
    if supabase_backup.format == "manifest" and supabase_backup.manifest:
        return Facts.from_manifest(supabase_backup.manifest)
    with psycopg.connect(staging_dsn, connect_timeout=15) as conn:
        return Facts.from_staging(conn)


@pytest.fixture(scope="session")
def unloadable(drill_state: DrillState, facts: Facts) -> Unloadable:
    """What could not be restored because it depends on an extension this staging target
    cannot load: the checks of those objects are not tested, and schema comparisons leave
    them out (saying so)."""
    return Unloadable.from_state(drill_state, facts.reference)


@pytest.fixture(scope="session")
def manifest(facts: Facts) -> Manifest:
    """The manifest of the backup set; skips when the backup has none."""
    if facts.reference is None:
        pytest.skip(NO_MANIFEST)
    return facts.reference


@pytest.fixture(scope="session")
def staging_inventory(staging_dsn: str, facts: Facts, drill_state: DrillState) -> Inventory:
    """The schema inventory of the restored copy, over the backup's schemas.

    Triggers the restore disabled on purpose (they call out: webhooks, pg_net, http) are
    compared with the state the backup recorded for them: being off in staging is the
    drill's doing, and is listed in the verdict's neutralised side effects."""
    with psycopg.connect(staging_dsn, connect_timeout=15) as conn:
        inventory = schema_inventory(conn, facts.scope)
        conn.rollback()
    triggers = inventory.get("triggers", {})
    recorded = facts.inventory.get("triggers", {})
    for key in drill_state.disabled_triggers:
        if key in triggers and key in recorded and triggers[key].get("enabled") == "disabled":
            triggers[key] = {**triggers[key], "enabled": recorded[key].get("enabled")}
    return inventory


@pytest.fixture
def pinned_db(staging_db: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """``staging_db`` with :data:`proof.scope.SESSION_SETTINGS` applied for this test's
    transaction: search_path is ``pg_catalog``, so every recorded definition (written under
    the same setting) means exactly what it meant on the source."""
    pin_session(staging_db)
    staging_db.execute("SELECT pg_catalog.set_config('statement_timeout', '60s', true)")
    staging_db.execute("SELECT pg_catalog.set_config('lock_timeout', '15s', true)")
    return staging_db


@pytest.fixture(scope="session")
def authenticator_dsn(staging_dsn: str, drill_state: DrillState) -> str:
    """The staging DSN with the user switched to ``authenticator`` (PostgREST's login)."""
    dsn = authenticator_conninfo(staging_dsn, drill_state.staging_kind)
    if dsn is None:
        pytest.skip(
            "not tested: logging in as authenticator needs its own password, which a url "
            "staging target does not provide"
        )
    return dsn


@pytest.fixture
def authenticator_db(authenticator_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to staging logged in as ``authenticator``; rolled back afterwards."""
    try:
        conn = psycopg.connect(authenticator_dsn, connect_timeout=15)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        pytest.fail(
            f"cannot log in to the restored copy as authenticator (PostgREST's role): {first}",
            pytrace=False,
        )
    try:
        yield conn
    finally:
        try:
            conn.rollback()
        finally:
            conn.close()
