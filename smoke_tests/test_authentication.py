"""authentication: users can still sign in and see exactly the rows they could see before.

Auth's own tables are compared row for row (users, identities, sessions); ``auth.uid()`` and
``auth.jwt()`` must return the claims PostgREST sets in ``request.jwt.claims``; and for anon
and each sampled user, row-level security must let them see exactly the sampled rows of every
table they saw in the backup's snapshot (index lookups of the keys the export sampled from
the dump; a table without a sample: as many rows), evaluated both times as PostgREST would
(same search_path and role settings, recorded in the manifest), a policy that raised there
raising the same here. Messages carry counts, table and policy names and errors, never rows,
key values or a user's id.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from pytest_supabase_restore.apijwt import role_token, user_token
from pytest_supabase_restore.config import Config
from pytest_supabase_restore.errors import DrillError
from pytest_supabase_restore.model import Manifest
from pytest_supabase_restore.proof.fingerprint import compare_table
from pytest_supabase_restore.proof.postgrest import ANON, AUTHENTICATED
from pytest_supabase_restore.proof.rls import compare_rls_visibility, rls_visibility
from pytest_supabase_restore.results import DrillState
from pytest_supabase_restore.smoke_tests._api import (
    compare_answer,
    expected_visibility,
    project_api,
    rest_count,
)
from pytest_supabase_restore.smoke_tests._support import (
    EXPOSED_SCHEMAS,
    Facts,
    Unloadable,
    api_client,
    describe_error,
    resolve_relation,
    shorten,
)
from pytest_supabase_restore.staging.api import StagingApi

pytestmark = pytest.mark.supabase_category("authentication")


def test_auth_table_restored(
    auth_table: str, facts: Facts, pinned_db: psycopg.Connection[Any]
) -> None:
    """The Auth table holds exactly the rows the backup recorded (count and fingerprint)."""
    entry = facts.tables[auth_table]
    if resolve_relation(pinned_db, auth_table) is None:
        pytest.fail(
            f"{auth_table}: missing from the restored copy ({entry.rows} rows backed up); "
            "nobody can sign in",
            pytrace=False,
        )
    if entry.fingerprint is None:
        pytest.skip(f"not tested: the backup recorded no fingerprint of {auth_table}")
    result = compare_table(pinned_db, entry.ref, entry.fingerprint)
    if not result.ok:
        pytest.fail(result.message, pytrace=False)


def _helper_exists(conn: psycopg.Connection[Any], signature: str) -> bool:
    row = conn.execute("SELECT pg_catalog.to_regprocedure(%s) IS NOT NULL", (signature,)).fetchone()
    return bool(row and row[0])


def test_jwt_helpers_return_claims(facts: Facts, pinned_db: psycopg.Connection[Any]) -> None:
    """``auth.uid()`` and ``auth.jwt()`` read the claims PostgREST sets for a request."""
    recorded = set(facts.inventory.get("functions", {}))
    wanted = [s for s in ("auth.uid()", "auth.jwt()") if s in recorded]
    if not wanted:
        pytest.skip("not tested: the backup has no auth.uid() / auth.jwt() helpers")
    missing = [s for s in wanted if not _helper_exists(pinned_db, s)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)}: missing from the restored copy; every RLS policy that "
            "uses them denies access",
            pytrace=False,
        )
    sub = str(uuid.uuid4())  # a synthetic user: the check is about the helpers, not the data
    claims = {"sub": sub, "role": AUTHENTICATED, "email": "drill@example.test"}
    problems: list[str] = []
    with pinned_db.transaction(force_rollback=True):
        pinned_db.execute(
            "SELECT pg_catalog.set_config('request.jwt.claims', %s, true),"
            " pg_catalog.set_config('request.jwt.claim.sub', '', true),"
            " pg_catalog.set_config('request.jwt.claim', '', true),"
            " pg_catalog.set_config('role', %s, true)",
            (json.dumps(claims), AUTHENTICATED),
        )
        if "auth.uid()" in wanted:
            row = pinned_db.execute("SELECT auth.uid()::text").fetchone()
            got = row[0] if row else None
            if got != sub:
                problems.append(
                    f"auth.uid() returned {'NULL' if got is None else 'another id'}, not the claim's sub"
                )
        if "auth.jwt()" in wanted:
            row = pinned_db.execute("SELECT auth.jwt()::text").fetchone()
            jwt = json.loads(row[0]) if row and row[0] else None
            if (
                not isinstance(jwt, dict)
                or jwt.get("sub") != sub
                or jwt.get("role") != claims["role"]
            ):
                problems.append("auth.jwt() did not return the request's claims")
    if problems:
        pytest.fail("JWT helpers: " + "; ".join(problems), pytrace=False)


def test_rls_visibility(
    rls_identity: str,
    facts: Facts,
    manifest: Manifest,
    pinned_db: psycopg.Connection[Any],
    drill_fact: Callable[[str, object], None],
    unloadable: Unloadable,
) -> None:
    """Under RLS this identity sees the same sampled rows of each table as in the backup's
    snapshot (as many rows, for a table without a key sample), evaluated as PostgREST would
    and under the session the export recorded; a policy that
    raised there must raise the same here. Tables that depend on an extension this staging
    target cannot load are left out (``not_compared``)."""
    left_out = {
        key: found[1]
        for key in facts.tables
        if (found := unloadable.cause([f"table {key}", f"data {key}"])) is not None
    }
    if left_out:
        drill_fact(
            "not_compared", [f"table {k} (extension {e})" for k, e in sorted(left_out.items())]
        )
    rls = manifest.rls
    expected: dict[str, Any] = {
        t: n for t, n in rls.visibility[rls_identity].items() if t not in left_out
    }
    session = rls.session
    anon = rls_identity == ANON
    role = ANON if anon else AUTHENTICATED
    who = f"{rls.label(rls_identity)} ({role})"  # never the auth.users id
    tables = [e.ref for k, e in facts.tables.items() if k not in left_out]
    try:
        actual = rls_visibility(
            pinned_db, tables, [] if anon else [rls_identity], session, rls.samples
        )[rls_identity]
    except DrillError as exc:
        pytest.fail(f"{who}: {exc}", pytrace=False)
    except psycopg.Error as exc:
        pytest.fail(
            f"{who}: counting what row-level security shows failed: {describe_error(exc)}",
            pytrace=False,
        )
    result = compare_rls_visibility(
        pinned_db, tables, expected, actual, role, session, rls.samples, rls_identity
    )
    notes = list(result.notes)
    if session.legacy:
        notes.insert(
            0,
            "the backup recorded no RLS session (an older export): counted under this "
            "session's default search_path, as it was then",
        )
    if notes:
        drill_fact("rls_notes", f"{who}: " + "; ".join(notes))
    if not result.ok:
        pytest.fail(
            f"{who}: row-level security differs in {len(result.problems)} table(s): "
            f"{shorten(result.problems)}",
            pytrace=False,
        )


def test_auth_api_lists_users(
    drill_settings: Config, drill_state: DrillState, facts: Facts, manifest: Manifest
) -> None:
    """The staging Auth API serves the restored users (needs a staging API)."""
    client = api_client(drill_settings, drill_state)
    seen = 0
    for page in range(1, 101):
        users = client.auth.admin.list_users(page=page, per_page=1000)
        seen += len(users)
        if len(users) < 1000:
            break
    users_entry = facts.tables.get("auth.users")
    expected = users_entry.rows if users_entry is not None else 0
    if seen != expected:
        pytest.fail(
            f"Auth API: lists {seen} users, the backup holds {expected} in auth.users",
            pytrace=False,
        )


def _identity_token(api: StagingApi, identity: str) -> str | None:
    """The JWT a client of this identity sends: the anon key for anon; for a sampled user
    one minted with the project's JWT secret (None: the secret is not known here)."""
    if identity == ANON and api.anon_key:
        return api.anon_key
    if api.jwt_secret is None:
        return None
    if identity == ANON:
        return role_token(api.jwt_secret, ANON)
    return user_token(api.jwt_secret, identity)


def test_rest_api_rls_counts(
    rls_identity: str,
    drill_settings: Config,
    drill_state: DrillState,
    facts: Facts,
    manifest: Manifest,
    unloadable: Unloadable,
    pinned_db: psycopg.Connection[Any],
    drill_fact: Callable[[str, object], None],
) -> None:
    """Through PostgREST, with this identity's JWT (the anon key, or one minted for the
    sampled user with the project's JWT secret), each exposed table counts the rows the
    identity saw in the backup's snapshot (a table the backup recorded as a key sample: the
    rows the restored copy's row-level security shows it, see ``expected_visibility``); a
    table the role may not read is refused."""
    api = project_api(drill_settings, drill_state)
    who = manifest.rls.label(rls_identity)  # never the auth.users id
    token = _identity_token(api, rls_identity)
    if token is None:
        pytest.skip(f"not tested: {who} via PostgREST: no JWT secret for the staging API")
    expected, from_restored = expected_visibility(manifest, rls_identity, pinned_db, facts.tables)
    if from_restored:
        drill_fact("postgrest_counts_from_restored_rls", len(from_restored))
    problems: list[str] = []
    compared = 0
    for key in sorted(expected):
        entry = facts.tables.get(key)
        if entry is None or entry.schema not in EXPOSED_SCHEMAS:
            continue
        if unloadable.cause([f"table {key}", f"data {key}"]) is not None:
            continue
        answer = rest_count(api, token, entry.schema, entry.name)
        compared += 1
        why = compare_answer(expected[key], answer)
        if why is not None:
            problems.append(f"{key}: {why}")
    drill_fact("postgrest_tables", compared)
    if problems:
        pytest.fail(
            f"{who}: PostgREST differs from the backup in {len(problems)} of {compared} "
            f"table(s): {shorten(problems)}",
            pytrace=False,
        )
