"""A local stand-in for the Supabase Management API (the platform cannot be reached here).

It follows the shapes of the generated client in ``supabase/cli``
(``apps/cli-go/pkg/api/types.gen.go`` and ``client.gen.go``): the status codes of each
operation (201 for a created branch, 200 otherwise), error bodies ``{"message": ...}``
(401 without the token), the branch lifecycle (``BranchResponse`` with
``preview_project_status`` ``COMING_UP``; ``BranchDetailResponse.status`` ``COMING_UP`` for
the first polls, then ``ACTIVE_HEALTHY``), ``V1BackupsResponse`` for the backups and
``ApiKeyResponse`` lists for ``?reveal=true``. None of these operations is paginated in the
API, so neither is the stand-in. A branch's database is a real local PostgreSQL cluster
(:class:`~pytest_supabase_restore.pg.cluster.Cluster`) with the platform's SQL already in,
as a new Supabase project has it. Each branch's REST, Auth and Storage APIs are served by
:mod:`api_standin` (tests/api_standin.py) at ``api.template`` with ``{ref}`` the branch's.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from api_standin import BranchService, StandInApi, api_keys, standin_api

from pytest_supabase_restore.pg import cron
from pytest_supabase_restore.pg.binaries import find_server_tools
from pytest_supabase_restore.pg.cluster import Cluster
from pytest_supabase_restore.staging import platform

REF = "abcdefghijklmnopqrst"  # 20 lowercase letters, like a real project ref
TOKEN = "sbp_" + "0123456789abcdef" * 2 + "12345678"  # the shape of a personal access token


# AuthConfigResponse / StorageConfigResponse fields (a few of each, as a new project has
# them); a secret field (smtp_pass, external_*_secret) is set by the tests that need one.
FRESH_AUTH_CONFIG: dict[str, Any] = {
    "site_url": "http://localhost:3000",
    "disable_signup": False,
    "jwt_exp": 3600,
    "mailer_autoconfirm": False,
    "external_email_enabled": True,
    "external_google_enabled": False,
    "external_google_client_id": None,
    "external_google_secret": None,
    "smtp_host": None,
    "smtp_pass": None,
    "password_min_length": 6,
}
FRESH_STORAGE_CONFIG: dict[str, Any] = {
    "fileSizeLimit": 52428800,
    "features": {"imageTransformation": {"enabled": True}, "s3Protocol": {"enabled": True}},
    "migrationVersion": "fix-optimized-search-function",
    "databasePoolMode": "recycled",
}


@dataclass
class StandInBranch:
    id: str
    name: str
    ref: str
    body: dict[str, Any]
    cluster: Cluster | None = None
    password: str = ""
    jwt_secret: str = ""  # signs the branch's API keys and users' JWTs
    polls: int = 0
    deleted: bool = False
    # A new branch has a new project's settings and no Edge Function deployed.
    auth_config: dict[str, Any] = field(default_factory=lambda: dict(FRESH_AUTH_CONFIG))
    storage_config: dict[str, Any] = field(default_factory=lambda: dict(FRESH_STORAGE_CONFIG))
    functions: dict[str, bytes] = field(default_factory=dict)


@dataclass
class StandInPlatform:
    """The stand-in's state: what it answers, and every request it was sent."""

    token: str = TOKEN
    ref: str = REF
    backups: dict[str, Any] = field(default_factory=dict)
    branching_refusal: tuple[int, str] | None = None  # (status, message) for POST branches
    fail_after_create: bool = False  # make the branch, then answer 500 (a lost answer)
    polls_until_healthy: int = 2
    final_state: str = "ACTIVE_HEALTHY"  # or INIT_FAILED: what the branch settles in
    functions: dict[str, bytes] = field(default_factory=dict)  # slug -> deployed bundle
    auth_config: dict[str, Any] = field(default_factory=lambda: dict(FRESH_AUTH_CONFIG))
    storage_config: dict[str, Any] = field(default_factory=lambda: dict(FRESH_STORAGE_CONFIG))
    secret_names: list[str] = field(default_factory=list)  # Edge Function secrets
    custom_hostname: str | None = None  # GET custom-hostname: 404 without one
    allowed_cidrs: list[str] | None = None  # GET network-restrictions
    forbidden: set[str] = field(default_factory=set)  # project sub-paths answered 403
    fail_first: list[int] = field(default_factory=list)  # statuses answered before any other
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    headers_seen: list[str] = field(default_factory=list)  # Authorization values
    branches: dict[str, StandInBranch] = field(default_factory=dict)
    url: str = ""
    api: StandInApi | None = None  # the branches' REST, Auth and Storage (api_standin.py)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def live_branches(self) -> list[StandInBranch]:
        return [b for b in self.branches.values() if not b.deleted]

    def stop_all(self) -> None:
        for branch in self.branches.values():
            if branch.cluster is not None:
                branch.cluster.stop()


def backups_answer(*completed_at: datetime, pitr: bool = False) -> dict[str, Any]:
    """A ``V1BackupsResponse`` with one COMPLETED backup per moment (and a FAILED newer one,
    which must not count)."""
    entries = [
        {
            "id": n + 1,
            "inserted_at": moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
            "is_physical_backup": pitr,
            "status": "COMPLETED",
        }
        for n, moment in enumerate(completed_at)
    ]
    entries.append(
        {
            "id": 99,
            "inserted_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            "is_physical_backup": False,
            "status": "FAILED",
        }
    )
    physical: dict[str, Any] = {}
    if pitr:
        physical = {
            "earliest_physical_backup_date_unix": 1_767_000_000,
            "latest_physical_backup_date_unix": 1_767_600_000,
        }
    return {
        "backups": entries,
        "physical_backup_data": physical,
        "pitr_enabled": pitr,
        "region": "eu-central-1",
        "walg_enabled": True,
    }


def _start_branch_database(branch: StandInBranch) -> None:
    """What the platform provisions: a database with Supabase's roles, auth and storage."""
    binaries = find_server_tools(15)
    # pg_cron is there, as on the platform (with a scheduler that never runs a job here).
    settings = cron.settings(binaries)
    cluster = Cluster(binaries, superuser="supabase_admin", name="branch", settings=settings)
    cluster.start()
    branch.cluster = cluster
    with cluster.connect(autocommit=True) as conn:
        conn.execute(platform.for_backup_set())
    branch.password = secrets.token_urlsafe(18)
    cluster.set_password("supabase_admin", branch.password)
    branch.jwt_secret = secrets.token_urlsafe(32)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _answer(self, status: int, body: Any) -> None:
        raw = isinstance(body, bytes)
        data = body if raw else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if raw else "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 429:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str) -> None:
        state = self.server.state
        with state.lock:
            state.requests.append((method, self.path))
            state.headers_seen.append(self.headers.get("Authorization", ""))
            if state.fail_first:
                status = state.fail_first.pop(0)
                self._answer(status, {"message": f"stand-in: HTTP {status}"})
                return
        if self.headers.get("Authorization") != f"Bearer {state.token}":
            self._answer(401, {"message": "Unauthorized"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        status, answer = _dispatch(state, method, self.path, body)
        self._answer(status, answer)

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")


def _dispatch(state: StandInPlatform, method: str, path: str, body: Any) -> tuple[int, Any]:
    route = path.split("?", 1)[0]
    if method == "GET" and route == f"/v1/projects/{state.ref}/database/backups":
        return 200, state.backups
    if method == "POST" and route == f"/v1/projects/{state.ref}/branches":
        status, answer = _create(state, body)
        if state.fail_after_create and status == 201:
            return 500, {"message": "Internal Server Error"}
        return status, answer
    if method == "GET" and route == f"/v1/projects/{state.ref}/branches":
        return 200, [_branch_response(state, b) for b in state.live_branches()]
    if method == "GET" and route.startswith(f"/v1/projects/{state.ref}/functions"):
        return _functions(
            state.functions, route.removeprefix(f"/v1/projects/{state.ref}/functions")
        )
    settings = _settings(state, method, route)
    if settings is not None:
        return settings
    match = re.fullmatch(r"/v1/branches/([\w-]+)", route)
    branch = state.branches.get(match.group(1)) if match else None
    if branch is not None and not branch.deleted:
        if method == "GET":
            return 200, _detail(state, branch)
        if method == "DELETE":
            branch.deleted = True
            if branch.cluster is not None:
                branch.cluster.stop()
            return 200, {"message": "ok"}
    match = re.fullmatch(r"/v1/projects/(\w+)/api-keys", route)
    if method == "GET" and match and "reveal=true" in path:
        owner = [b for b in state.branches.values() if b.ref == match.group(1) and not b.deleted]
        if owner:
            return 200, api_keys(owner[0].jwt_secret)
    return 404, {"message": f"Cannot {method} {route}"}


def _settings(state: StandInPlatform, method: str, route: str) -> tuple[int, Any] | None:
    """The project's (or a live branch's) settings, secrets, custom domain and network
    restrictions; None for another route."""
    match = re.fullmatch(r"/v1/projects/(\w+)(/.+)", route)
    if method != "GET" or match is None:
        return None
    ref, rest = match.groups()
    branch = next((b for b in state.live_branches() if b.ref == ref), None)
    if ref != state.ref and branch is None:
        return None
    if rest in state.forbidden:
        return 403, {"message": "Your account does not have the necessary privileges"}
    if rest == "/config/auth":
        return 200, dict(branch.auth_config if branch else state.auth_config)
    if rest == "/config/storage":
        return 200, dict(branch.storage_config if branch else state.storage_config)
    if branch is not None and rest.startswith("/functions"):
        return _functions(branch.functions, rest.removeprefix("/functions"))
    if branch is not None:
        return None
    if rest == "/secrets":
        digest = "0" * 64  # the API answers a digest of each value, never the value
        return 200, [{"name": n, "value": digest} for n in state.secret_names]
    if rest == "/custom-hostname":
        if state.custom_hostname is None:
            return 404, {"message": "No custom hostname configured"}
        return 200, {"custom_hostname": state.custom_hostname, "status": "5_services_reconfigured"}
    if rest == "/network-restrictions":
        cidrs = state.allowed_cidrs if state.allowed_cidrs is not None else ["0.0.0.0/0"]
        return 200, {
            "config": {"dbAllowedCidrs": cidrs, "dbAllowedCidrsV6": ["::/0"]},
            "entitlement": "allowed",
            "status": "applied",
        }
    return None


def _functions(functions: dict[str, bytes], rest: str) -> tuple[int, Any]:
    """``FunctionResponse`` list, or one function's bundle (``StreamableFile``)."""
    if rest == "":
        return 200, [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, slug)),
                "slug": slug,
                "name": slug.replace("-", " "),
                "version": 3,
                "status": "ACTIVE",
                "created_at": 1_767_000_000_000,
                "updated_at": 1_767_000_000_000,
                "entrypoint_path": f"file:///src/{slug}/index.ts",
                "verify_jwt": True,
            }
            for slug in sorted(functions)
        ]
    match = re.fullmatch(r"/([\w-]+)/body", rest)
    if match and match.group(1) in functions:
        return 200, functions[match.group(1)]
    return 404, {"message": "Function not found"}


def _create(state: StandInPlatform, body: Any) -> tuple[int, Any]:
    if state.branching_refusal is not None:
        status, message = state.branching_refusal
        return status, {"message": message}
    if not isinstance(body, dict) or not body.get("branch_name"):
        return 400, {"message": "branch_name is required"}
    branch = StandInBranch(
        id=str(uuid.uuid4()), name=str(body["branch_name"]), ref=_ref(), body=dict(body)
    )
    _start_branch_database(branch)
    state.branches[branch.id] = branch
    return 201, _branch_response(state, branch)


def _branch_response(state: StandInPlatform, branch: StandInBranch) -> dict[str, Any]:
    """A ``BranchResponse``."""
    now = datetime.now(timezone.utc).isoformat()
    body = branch.body
    return {
        "id": branch.id,
        "name": branch.name,
        "project_ref": branch.ref,
        "parent_project_ref": state.ref,
        "is_default": False,
        "persistent": bool(body.get("persistent", False)),
        "with_data": bool(body.get("with_data", False)),
        "status": "CREATING_PROJECT",
        "preview_project_status": "COMING_UP",
        "created_at": now,
        "updated_at": now,
    }


def _detail(state: StandInPlatform, branch: StandInBranch) -> dict[str, Any]:
    branch.polls += 1
    status = "COMING_UP" if branch.polls <= state.polls_until_healthy else state.final_state
    assert branch.cluster is not None
    return {
        "ref": branch.ref,
        "status": status,
        "db_host": "127.0.0.1",
        "db_port": branch.cluster.port,
        "db_user": "supabase_admin",
        "db_pass": branch.password,
        "postgres_engine": "15",
        "postgres_version": "15",
        "release_channel": "ga",
        "jwt_secret": branch.jwt_secret,
    }


def _ref() -> str:
    return "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(20))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: StandInPlatform) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


@contextmanager
def standin_platform(**kwargs: Any) -> Iterator[StandInPlatform]:
    """Run the stand-in on a free loopback port; stops every branch database at the end."""
    state = StandInPlatform(**kwargs)
    server = _Server(state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with standin_api(partial(_service, state)) as state.api:
            yield state
    finally:
        server.shutdown()
        server.server_close()
        state.stop_all()


def _service(state: StandInPlatform, ref: str) -> BranchService | None:
    """What serves the APIs of the live branch ``ref`` (its database, its JWT secret)."""
    for branch in state.live_branches():
        if branch.ref == ref and branch.cluster is not None:
            assert state.api is not None
            return BranchService(branch.cluster.dsn(), branch.jwt_secret, state.api.subjects)
    return None
