"""api_connectivity: the Data API could serve the restored database.

PostgREST logs in as ``authenticator`` and switches to ``anon``, ``authenticated`` or
``service_role`` for each request; it needs USAGE on the exposed schemas and the table
privileges the project granted. Each is checked against the restored copy, and every
relation the API roles could read is read as those roles (zero rows: it is the privilege
path that is tested). With a staging API (STAGING_SUPABASE_URL and
STAGING_SUPABASE_SERVICE_ROLE_KEY, or a branch's own from the Management API) its REST,
Auth and Storage endpoints are called through the ``supabase`` client.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from pytest_supabase_restore.config import Config
from pytest_supabase_restore.model import Manifest
from pytest_supabase_restore.proof.inventory import Inventory
from pytest_supabase_restore.results import DrillState
from pytest_supabase_restore.smoke_tests._support import (
    API_ROLES,
    EXPOSED_SCHEMAS,
    Facts,
    Unloadable,
    api_client,
    authenticator_conninfo,
    describe_error,
    describe_privileges,
    grants_of_kind,
    relation_grants,
    resolve_relation,
    shorten,
)

pytestmark = pytest.mark.supabase_category("api_connectivity")


def test_authenticator_assumes_role(
    api_role: str, facts: Facts, authenticator_db: psycopg.Connection[Any]
) -> None:
    """``authenticator`` can ``SET ROLE`` to the API role, as PostgREST does per request."""
    try:
        with authenticator_db.transaction(force_rollback=True):
            authenticator_db.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(api_role)))
            row = authenticator_db.execute("SELECT current_user::text").fetchone()
    except psycopg.Error as exc:
        pytest.fail(
            f"authenticator cannot switch to {api_role}: {describe_error(exc)}", pytrace=False
        )
    if row is None or row[0] != api_role:
        pytest.fail(f"authenticator: SET ROLE {api_role} left the session as {row}", pytrace=False)


def test_exposed_schema_usage(
    exposed_schema: str, api_role: str, facts: Facts, pinned_db: psycopg.Connection[Any]
) -> None:
    """The API role may use the exposed schema (else every request is ``permission denied``)."""
    row = pinned_db.execute(
        "SELECT pg_catalog.has_schema_privilege(%s, %s, 'USAGE')", (api_role, exposed_schema)
    ).fetchone()
    if row is not None and row[0]:
        return
    recorded = facts.inventory.get("grants", {}).get(f"schema {exposed_schema} to {api_role}")
    had = recorded is not None and "USAGE" in recorded.get("privileges", [])
    pytest.fail(
        f"schema {exposed_schema}: {api_role} has no USAGE in the restored copy"
        + (" (the backup had it)" if had else " (nor did the backup)"),
        pytrace=False,
    )


def _probe(dsn: str, rel: str, roles: list[str]) -> list[str]:
    """Read ``rel`` (zero rows) as each role, through an ``authenticator`` login."""
    problems: list[str] = []
    try:
        conn = psycopg.connect(dsn, connect_timeout=15)
    except psycopg.OperationalError as exc:
        return [f"cannot log in as authenticator: {describe_error(exc)}"]
    with conn:
        for role in roles:
            try:
                with conn.transaction(force_rollback=True):
                    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
                    conn.execute(sql.SQL("SELECT 1 FROM {} LIMIT 0").format(sql.SQL(rel)))
            except psycopg.Error as exc:
                problems.append(f"{role}: reading it fails: {describe_error(exc)}")
    return problems


def test_relation_grants(
    api_relation: str,
    facts: Facts,
    staging_inventory: Inventory,
    staging_dsn: str,
    drill_state: DrillState,
    pinned_db: psycopg.Connection[Any],
    drill_fact: Any,
) -> None:
    """The API roles hold the same privileges on the relation as in the backup, and those
    that may read it can (read as the role through an ``authenticator`` login)."""
    expected = relation_grants(facts.inventory.get("grants", {}), api_relation, API_ROLES)
    actual = relation_grants(staging_inventory.get("grants", {}), api_relation, API_ROLES)
    problems = [
        f"{role}: {describe_privileges(expected[role], actual[role])}"
        for role in API_ROLES
        if expected[role] != actual[role]
    ]
    found = resolve_relation(pinned_db, api_relation)
    if found is None:
        pytest.fail(f"{api_relation}: missing from the restored copy", pytrace=False)
    readers = [role for role in API_ROLES if "SELECT" in expected[role]]
    dsn = authenticator_conninfo(staging_dsn, drill_state.staging_kind)
    if dsn is None:
        drill_fact("read_as_role", "not tested: no authenticator login on a url target")
    elif readers:
        problems += _probe(dsn, found[1], readers)
    if problems:
        pytest.fail(
            f"{api_relation}: API role privileges differ from the backup: {shorten(problems)}",
            pytrace=False,
        )


def test_sequence_and_function_grants(
    facts: Facts,
    manifest: Manifest,
    staging_inventory: Inventory,
    unloadable: Unloadable,
    drill_fact: Any,
) -> None:
    """The API roles keep their privileges on the exposed schemas' sequences (serial
    inserts) and functions (RPC); those of objects that depend on an extension this staging
    target cannot load are left out."""
    schemas = [s for s in EXPOSED_SCHEMAS if s in facts.scope]
    problems: list[str] = []
    left_out: list[str] = []
    for label in ("sequence", "function"):
        expected = grants_of_kind(facts.inventory.get("grants", {}), label, schemas, API_ROLES)
        actual = grants_of_kind(staging_inventory.get("grants", {}), label, schemas, API_ROLES)
        for key in sorted(set(expected) | set(actual)):
            found = unloadable.cause([f"{label} {key.rpartition(' to ')[0]}"])
            if found is not None:
                left_out.append(f"{label} {key} (extension {found[1]})")
                continue
            want, got = expected.get(key, set()), actual.get(key, set())
            if want != got:
                problems.append(f"{label} {key}: {describe_privileges(want, got)}")
    if left_out:
        drill_fact("not_compared", left_out)
    if problems:
        pytest.fail(
            f"API role privileges on sequences/functions differ from the backup: {shorten(problems)}",
            pytrace=False,
        )


def test_rest_api(
    drill_settings: Config,
    drill_state: DrillState,
    facts: Facts,
    manifest: Manifest,
    unloadable: Unloadable,
) -> None:
    """PostgREST answers with the restored row count of the largest exposed table (of those
    restored: a table that depends on an unloadable extension is not there)."""
    client = api_client(drill_settings, drill_state)
    exposed = [
        (entry.rows, key, entry)
        for key, entry in facts.tables.items()
        if entry.schema in EXPOSED_SCHEMAS
        and unloadable.cause([f"table {key}", f"data {key}"]) is None
    ]
    if not exposed:
        pytest.skip("not tested: the backup has no table in the exposed schemas")
    rows, key, entry = max(exposed, key=lambda e: (e[0], e[1]))
    try:
        response = client.table(entry.name).select("*", count="exact", head=True).execute()
    except Exception as exc:  # the client raises its own error types per endpoint
        pytest.fail(f"REST API: reading {key} fails: {type(exc).__name__}: {exc}", pytrace=False)
    if response.count != rows:
        pytest.fail(
            f"REST API: {key} counts {response.count} rows, the backup holds {rows}", pytrace=False
        )


def test_auth_api(drill_settings: Config, drill_state: DrillState, manifest: Manifest) -> None:
    """The Auth API answers an admin request."""
    client = api_client(drill_settings, drill_state)
    try:
        client.auth.admin.list_users(page=1, per_page=1)
    except Exception as exc:  # the client raises its own error types per endpoint
        pytest.fail(f"Auth API: listing users fails: {type(exc).__name__}: {exc}", pytrace=False)


def test_storage_api(drill_settings: Config, drill_state: DrillState, manifest: Manifest) -> None:
    """The Storage API lists every backed-up bucket."""
    client = api_client(drill_settings, drill_state)
    try:
        buckets = client.storage.list_buckets()
    except Exception as exc:  # the client raises its own error types per endpoint
        pytest.fail(
            f"Storage API: listing buckets fails: {type(exc).__name__}: {exc}", pytrace=False
        )
    listed = {str(getattr(b, "id", "")) for b in buckets}
    expected = set(manifest.storage.bucket_ids)
    missing = sorted(expected - listed)
    if missing:
        pytest.fail(f"Storage API: bucket(s) not listed: {', '.join(missing)}", pytrace=False)
