"""The staging project's APIs as the API-level smoke tests call them.

:func:`project_api` says where they are (``STAGING_SUPABASE_URL`` for a url target, the
Management API's answer for a branch); :func:`rest_count` asks PostgREST for a table's row
count as a client with a given JWT would (``HEAD``, ``Prefer: count=exact``, the total of
``Content-Range``); :func:`expected_visibility` is what the backup recorded that identity
seeing. Tokens and keys go into request headers only: no message here carries one, nor an
``auth.users`` id.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import pytest

from pytest_supabase_restore.config import Config
from pytest_supabase_restore.model import Manifest, TableEntry
from pytest_supabase_restore.proof.rls import rls_visibility
from pytest_supabase_restore.proof.scope import Conn
from pytest_supabase_restore.results import DrillState
from pytest_supabase_restore.staging.api import StagingApi, staging_api

NO_API = "not tested: no staging API configured (STAGING_SUPABASE_URL)"
TIMEOUT = 60.0


def project_api(settings: Config, state: DrillState) -> StagingApi:
    """The staging APIs of this run; skips the test when there are none."""
    api = staging_api(settings, state)
    if api is None:
        pytest.skip(NO_API)
    return api


@dataclass(frozen=True)
class RestAnswer:
    """PostgREST's answer to a count: the total, or the error status and its ``code``."""

    status: int
    count: int | None = None
    code: str = ""
    message: str = ""

    def describe(self) -> str:
        if self.count is not None:
            return f"{self.count} rows"
        return f"HTTP {self.status} {self.code} {self.message}".strip()


def rest_count(api: StagingApi, token: str, schema: str, table: str) -> RestAnswer:
    """``HEAD /rest/v1/<table>`` as the holder of ``token`` (``apikey``: the anon key, as a
    browser sends it, else the service_role key)."""
    request = urllib.request.Request(  # noqa: S310 (StagingApi URLs are http(s))
        f"{api.url}/rest/v1/{quote(table, safe='')}?select=*",
        method="HEAD",
        headers={
            "apikey": api.anon_key or api.service_role_key,
            "Authorization": f"Bearer {token}",
            "Prefer": "count=exact",
            "Accept-Profile": schema,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            total = (response.headers.get("Content-Range") or "").rpartition("/")[2]
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return _error_answer(exc)
    if not total.isdigit():
        return RestAnswer(status, code="no count", message="Content-Range has no total")
    return RestAnswer(status, count=int(total))


def _error_answer(exc: urllib.error.HTTPError) -> RestAnswer:
    """The status, and PostgREST's ``code`` and ``message`` when the answer has a body (a
    HEAD answer has none: its status says it all)."""
    try:
        body = json.loads(exc.read(4096) or b"{}")
    except (ValueError, OSError):
        body = {}
    if not isinstance(body, dict):
        body = {}
    return RestAnswer(
        int(exc.code),
        code=str(body.get("code") or ""),
        message=str(body.get("message") or "")[:200],
    )


def expected_visibility(
    manifest: Manifest, identity: str, conn: Conn, tables: Mapping[str, TableEntry]
) -> tuple[dict[str, int | dict[str, str]], list[str]]:
    """What ``identity`` (``anon`` or a sampled user) should see through PostgREST: table ->
    rows visible, ``-1`` (no SELECT privilege), or ``{"error": "<SQLSTATE> ..."}``; and the
    tables whose count comes from the restored copy.

    A table the backup counted in full carries the backup's count. A table the backup
    recorded as a key sample (``{"visible": [...]}``: which sampled keys the identity could
    read) has no count to compare with: its expectation is the count the restored copy's own
    row-level security gives the same identity under the same session. The authentication
    category's ``test_rls_visibility`` proves that restored security equal to the backup's
    on the sample, so the two checks together tie PostgREST's answer to the backup."""
    recorded = manifest.rls.visibility.get(identity, {})
    expected: dict[str, int | dict[str, str]] = {}
    sampled: list[str] = []
    for name, value in recorded.items():
        if isinstance(value, dict) and "visible" in value:
            if name in tables:
                sampled.append(name)
            continue
        expected[name] = value
    if sampled:
        users = [] if identity == "anon" else [identity]
        refs = [tables[name].ref for name in sampled]
        counted = rls_visibility(conn, refs, users, manifest.rls.session)
        for name, value in counted.get(identity, {}).items():
            if isinstance(value, int) or "error" in value:
                expected[name] = value
        conn.rollback()
    return expected, sorted(sampled)


def compare_answer(expected: int | dict[str, str], answer: RestAnswer) -> str | None:
    """Why PostgREST's answer is not what the backup recorded, or None when it is."""
    if isinstance(expected, dict):
        state = str(expected.get("error", "")).split(" ", 1)[0]
        if answer.count is None and answer.status >= 400:
            return None  # the policy raised there, and the request fails here
        return f"the backup's policies raised {state}, PostgREST answers {answer.describe()}"
    if expected == -1:
        if answer.status in (401, 403):
            return None
        return f"the role may not read it in the backup, PostgREST answers {answer.describe()}"
    if answer.count == expected:
        return None
    return f"PostgREST answers {answer.describe()}, the backup's snapshot showed {expected}"


__all__ = [
    "NO_API",
    "RestAnswer",
    "compare_answer",
    "expected_visibility",
    "project_api",
    "rest_count",
]
