"""--supabase-staging=branch with the branch's own APIs: PostgREST, Auth and Storage,
against local stand-ins for the Supabase platform (tests/platform_standin.py for the
Management API, tests/api_standin.py for each branch's REST, Auth and Storage; the real
platform cannot be reached here). Each branch database is a real local PostgreSQL cluster,
its Storage a real local S3 server, its JWTs verified with its own secret; each run is a
real ``pytest`` process with the demo project as the source."""

from __future__ import annotations

import json
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import jwt
import pytest
from api_standin import api_keys
from platform_standin import REF, TOKEN, StandInBranch, StandInPlatform, standin_platform
from test_platform_branch import _args, _env

from pytest_supabase_restore.apijwt import role_token, user_token
from pytest_supabase_restore.config import Config, validate
from pytest_supabase_restore.smoke_tests.test_storage import shown_path
from pytest_supabase_restore.staging.api import branch_api_url

CATEGORIES = (
    "api_connectivity", "authentication", "crud_operations", "data_consistency",
    "data_integrity", "database_schema", "performance", "storage",
)  # fmt: skip
# The checks that go through the branch's HTTP APIs (not its database).
API_TESTS = (
    "test_rest_api", "test_auth_api", "test_storage_api", "test_auth_api_lists_users",
    "test_rest_api_rls_counts", "test_objects_through_storage_api",
)  # fmt: skip
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+")


def _drill(api: StandInPlatform, tmp_path: Path) -> tuple[str, dict[str, object]]:
    proc = subprocess.run(
        _args(tmp_path, builtin=True), cwd=tmp_path, env=_env(api, tmp_path), capture_output=True,
        text=True, timeout=600, check=False,
    )  # fmt: skip
    data = json.loads((tmp_path / "summary.json").read_text())
    return proc.stdout + proc.stderr, data


def _outcomes(tmp_path: Path) -> dict[str, list[str]]:
    """Test name (without parameters) -> the outcomes of its cases, from the JUnit XML."""
    found: dict[str, list[str]] = {}
    for case in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase"):  # noqa: S314
        name = case.get("name", "").split("[", 1)[0]
        kids = {child.tag for child in case}
        outcome = (
            "failed"
            if kids & {"failure", "error"}
            else "skipped"
            if "skipped" in kids
            else "passed"
        )
        found.setdefault(name, []).append(outcome)
    return found


def _no_secret(out: str, tmp_path: Path, branch: StandInBranch, subjects: set[str]) -> None:
    """No token, key, JWT, database password, JWT secret or auth.users id in any output or
    artifact of the run."""
    secrets = [TOKEN, branch.password, branch.jwt_secret, *subjects]
    secrets += [k["api_key"] for k in api_keys(branch.jwt_secret)]
    texts = [("output", out)]
    texts += [(str(p), p.read_text(errors="replace")) for p in tmp_path.rglob("*") if p.is_file()]
    for where, text in texts:
        for secret in secrets:
            assert secret not in text, where
        assert not JWT.search(text), where


def test_every_category_passes_through_the_branchs_apis(tmp_path: Path) -> None:
    """Stands in for the platform: the full built-in drill against a branch whose REST, Auth
    and Storage APIs answer; Storage objects are restored through its Storage API (which
    rewrites their storage.objects rows as Storage does: data_integrity passes only because
    the drill puts the backed-up rows back); every API-level check runs (none skipped) and
    all eight categories PASS; the branch is deleted; no secret in any output or artifact."""
    with standin_platform() as api:
        out, data = _drill(api, tmp_path)
        (branch,) = api.branches.values()
        assert api.api is not None
        seen, subjects = list(api.api.requests), set(api.api.subjects)
    assert data["status"] == "PASS", (data["reasons"], out[-3000:])
    for name in CATEGORIES:
        counts = data["categories"][name]
        assert counts["failed"] == counts["errors"] == 0 and counts["passed"] > 0, name
    outcomes = _outcomes(tmp_path)
    for name in API_TESTS:
        assert outcomes.get(name) and set(outcomes[name]) == {"passed"}, (name, outcomes.get(name))
    assert not [t for t in data["not_tested"] if "staging API" in t]
    uploads = [p for m, p in seen if m == "POST" and "/storage/v1/object/" in p]
    downloads = [p for m, p in seen if m == "GET" and "/object/authenticated/" in p]
    assert uploads and len(downloads) >= len(uploads)
    assert all(p.startswith(f"/{branch.ref}/") for _, p in seen)
    assert len(subjects) >= 1  # a JWT was minted for each sampled user
    assert branch.deleted
    _no_secret(out, tmp_path, branch, subjects)


def test_a_changed_object_and_a_table_postgrest_lacks_fail_their_categories(
    tmp_path: Path,
) -> None:
    """Stands in for the platform: the branch's Storage API serves one restored object with
    a changed byte, and its PostgREST lacks the largest exposed table. storage FAILs naming
    the object (a user id in its path shown as <id>), api_connectivity and authentication
    FAIL naming the table; the database categories still pass; the branch is deleted; no
    secret or user id in any output or artifact."""
    with standin_platform() as api:
        assert api.api is not None
        api.api.change_first_download = api.api.hide_first_counted = True
        out, data = _drill(api, tmp_path)
        (branch,) = api.branches.values()
        changed, missing = set(api.api.changed_objects), set(api.api.missing_tables)
        subjects = set(api.api.subjects)
    statuses = {name: data["categories"][name]["failed"] for name in CATEGORIES}
    assert statuses["storage"] > 0 and statuses["api_connectivity"] > 0, statuses
    assert statuses["authentication"] > 0, statuses
    for name in ("data_integrity", "database_schema", "crud_operations"):
        assert statuses[name] == 0, (name, statuses)
    messages = {f["category"]: f["message"] for f in data["failures"]}
    (obj,) = changed
    (table,) = missing
    assert shown_path(*obj.split("/", 1)) in messages["storage"]
    assert "SHA-256 differs" in messages["storage"]
    assert table in messages["api_connectivity"] and table in messages["authentication"]
    assert data["status"] == "FAIL" and branch.deleted, out[-2000:]
    _no_secret(out, tmp_path, branch, subjects)


def test_a_storage_api_that_refuses_uploads_fails_the_restore_and_deletes_the_branch(
    tmp_path: Path,
) -> None:
    """Stands in for the platform: the branch's Storage API answers every upload 403. The
    drill FAILs in the restore naming the bucket and Storage's answer (a user id in an
    object's path shown as <id>), runs no smoke test against a half-restored branch, and
    deletes the branch; no secret in any output or artifact."""
    with standin_platform() as api:
        assert api.api is not None
        api.api.refuse_uploads = True
        out, data = _drill(api, tmp_path)
        (branch,) = api.branches.values()
    (reason,) = [r for r in data["reasons"] if "Storage restore failed" in r]
    assert "HTTP 403: new row violates row-level security policy" in reason
    assert "bucket 'avatars', key '<id>/" in reason
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", reason), reason
    assert data["status"] == "FAIL" and branch.deleted
    assert all(c["passed"] == 0 for c in data["categories"].values()), data["categories"]
    _no_secret(out, tmp_path, branch, set())


def test_the_branch_api_url_follows_the_project_host_or_the_setting() -> None:
    """No platform involved: the Supabase CLI's rule (https://<ref>.<project host>), the
    project host taken from SUPABASE_URL; SUPABASE_BRANCH_API_URL overrides it, and one
    without {ref} is a usage error naming the variable."""
    assert (
        branch_api_url(None, f"https://{REF}.supabase.co", "b" * 20)
        == f"https://{'b' * 20}.supabase.co"
    )
    assert branch_api_url(None, f"https://{REF}.supabase.red/", "bb") == "https://bb.supabase.red"
    assert branch_api_url(None, None, "bb") == "https://bb.supabase.co"
    assert branch_api_url("http://127.0.0.1:9/{ref}/", None, "bb") == "http://127.0.0.1:9/bb"
    base = {"enabled": True, "demo": True, "staging": "branch", "access_token": TOKEN}
    with pytest.raises(pytest.UsageError, match="SUPABASE_BRANCH_API_URL must be an http"):
        validate(Config(project_ref=REF, branch_api_url="http://127.0.0.1:9/", **base))  # type: ignore[arg-type]
    validate(Config(project_ref=REF, branch_api_url="http://127.0.0.1:9/{ref}", **base))  # type: ignore[arg-type]


def test_minted_jwts_verify_with_the_secret_only() -> None:
    """A user's token is HS256 with the project's secret, role and aud authenticated, sub
    the user's id, and short-lived; PyJWT (not the plugin's code) verifies it."""
    token = user_token("s" * 40, "00000000-0000-4000-8000-000000000001", now=time.time())
    claims = jwt.decode(token, "s" * 40, algorithms=["HS256"], audience="authenticated")
    assert claims["role"] == "authenticated" and claims["sub"].endswith("0001")
    assert 0 < claims["exp"] - claims["iat"] <= 600
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "t" * 40, algorithms=["HS256"], audience="authenticated")
    assert (
        jwt.decode(role_token("k" * 40, "anon"), "k" * 40, algorithms=["HS256"])["role"] == "anon"
    )
