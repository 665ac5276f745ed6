"""A small client of the Supabase Management API (``https://api.supabase.com``).

Only what the drill needs, with the shapes of the generated client in ``supabase/cli``
(``pkg/api/types.gen.go``): the project's backups (``V1BackupsResponse``), creating,
reading and deleting a preview branch (``CreateBranchBody``, ``BranchResponse``,
``BranchDetailResponse``) and a branch's API keys (``ApiKeyResponse``). No restore, PITR
or in-place endpoint exists here, so none can be called by mistake.

Requests go through :func:`~.notify.http.request_json` (bounded retries on 429 and 5xx,
``Retry-After`` honoured, the whole exchange time-bounded). Errors name the request and
the API's own answer (its ``message``); the token is only ever sent in the
``Authorization`` header and never appears in an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .errors import DrillError
from .notify.http import HttpError, Response, RetryPolicy, request_json

API_POLICY = RetryPolicy(attempts=4, base_delay=1.0, max_delay=10.0, total_seconds=60.0)
# Creating a branch is never retried: a 5xx may come after the branch was made, and a retry
# would make a second one (the caller looks for the first by its name instead).
ONCE = RetryPolicy(attempts=1, total_seconds=120.0, timeout=120.0)


class ManagementApiError(DrillError):
    """The Management API refused or did not answer; the message quotes its answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Backup:
    """One entry of ``V1BackupsResponse.backups``."""

    id: int
    inserted_at: str
    status: str  # COMPLETED | PENDING | FAILED | REMOVED | ARCHIVED | CANCELLED
    is_physical_backup: bool


@dataclass(frozen=True)
class Backups:
    """``GET /v1/projects/{ref}/database/backups``."""

    backups: tuple[Backup, ...]
    pitr_enabled: bool
    walg_enabled: bool
    region: str
    earliest_physical_unix: int | None
    latest_physical_unix: int | None


@dataclass(frozen=True)
class Branch:
    """``BranchResponse``: a branch as created or listed."""

    id: str
    name: str
    project_ref: str  # the branch's own project ref
    parent_project_ref: str
    persistent: bool
    status: str


@dataclass(frozen=True)
class BranchDetail:
    """``BranchDetailResponse``: how to reach a branch's database, and its state."""

    ref: str
    status: str  # ACTIVE_HEALTHY | COMING_UP | INIT_FAILED | ...
    db_host: str
    db_port: int
    db_user: str | None = None
    db_pass: str | None = field(default=None, repr=False)
    jwt_secret: str | None = field(default=None, repr=False)  # signs the branch's API JWTs


def _backups(data: Any) -> Backups:
    physical = data.get("physical_backup_data") or {}
    return Backups(
        backups=tuple(
            Backup(
                id=int(b["id"]),
                inserted_at=str(b["inserted_at"]),
                status=str(b["status"]),
                is_physical_backup=bool(b.get("is_physical_backup", False)),
            )
            for b in data.get("backups") or []
        ),
        pitr_enabled=bool(data.get("pitr_enabled", False)),
        walg_enabled=bool(data.get("walg_enabled", False)),
        region=str(data.get("region") or ""),
        earliest_physical_unix=physical.get("earliest_physical_backup_date_unix"),
        latest_physical_unix=physical.get("latest_physical_backup_date_unix"),
    )


def _branch(data: Any) -> Branch:
    return Branch(
        id=str(data["id"]),
        name=str(data["name"]),
        project_ref=str(data["project_ref"]),
        parent_project_ref=str(data.get("parent_project_ref") or ""),
        persistent=bool(data.get("persistent", False)),
        status=str(data.get("preview_project_status") or data.get("status") or ""),
    )


def _detail(data: Any) -> BranchDetail:
    return BranchDetail(
        ref=str(data["ref"]),
        status=str(data["status"]),
        db_host=str(data["db_host"]),
        db_port=int(data["db_port"]),
        db_user=data.get("db_user"),
        db_pass=data.get("db_pass"),
        jwt_secret=data.get("jwt_secret"),
    )


class ManagementApi:
    """The Management API for one project, authenticated with a personal access token."""

    def __init__(
        self, token: str, base_url: str, ref: str, *, policy: RetryPolicy | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.ref = ref
        self._headers = {"Authorization": f"Bearer {token}"}
        self._policy = policy or API_POLICY

    def __repr__(self) -> str:  # never the token
        return f"ManagementApi({self.base_url!r}, ref={self.ref!r})"

    def _send(
        self,
        method: str,
        path: str,
        payload: Any = None,
        accept: str = "",
        policy: RetryPolicy | None = None,
    ) -> Response:
        headers = {**self._headers, **({"Accept": accept} if accept else {})}
        try:
            return request_json(
                method,
                self.base_url + path,
                label=f"Supabase Management API {method} {path}",
                payload=payload,
                headers=headers,
                policy=policy or self._policy,
            )
        except HttpError as exc:
            raise ManagementApiError(str(exc), exc.status) from None

    def call(
        self, method: str, path: str, payload: Any = None, policy: RetryPolicy | None = None
    ) -> Any:
        """The parsed JSON answer of one request, or :class:`ManagementApiError`."""
        label = f"Supabase Management API {method} {path}"
        response = self._send(method, path, payload, policy=policy)
        try:
            return response.json()
        except ValueError:
            raise ManagementApiError(f"{label}: the answer is not JSON") from None

    def _project(self, suffix: str) -> str:
        return f"/v1/projects/{quote(self.ref, safe='')}{suffix}"

    def project_path(self, suffix: str) -> str:
        """``/v1/projects/{ref}<suffix>`` for this project."""
        return self._project(suffix)

    def for_project(self, ref: str) -> ManagementApi:
        """The same API and token for another project (a branch's own ref)."""
        other = ManagementApi("", self.base_url, ref, policy=self._policy)
        other._headers = dict(self._headers)
        return other

    def backups(self) -> Backups:
        """The platform's own backups of the project, and whether PITR is on."""
        data = self.call("GET", self._project("/database/backups"))
        try:
            return _backups(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ManagementApiError(
                f"Supabase Management API GET {self._project('/database/backups')}: "
                f"unexpected answer ({type(exc).__name__}: {exc})"
            ) from None

    def create_branch(self, name: str) -> Branch:
        """A new preview branch of the project: not persistent, without the source's data."""
        body = {"branch_name": name, "persistent": False, "with_data": False}
        return _branch(self.call("POST", self._project("/branches"), body, policy=ONCE))

    def branches(self) -> list[Branch]:
        """The project's branches (``GET /v1/projects/{ref}/branches``)."""
        return [_branch(b) for b in self.call("GET", self._project("/branches")) or []]

    def branch_detail(self, branch_id: str) -> BranchDetail:
        return _detail(self.call("GET", f"/v1/branches/{quote(branch_id, safe='')}"))

    def delete_branch(self, branch_id: str) -> None:
        """Delete the branch now (``force=true``: no grace period)."""
        self.call("DELETE", branch_delete_path(branch_id))

    def api_keys(self, project_ref: str) -> dict[str, str]:
        """The ``anon`` and ``service_role`` keys (and any other revealed key) by name."""
        path = f"/v1/projects/{quote(project_ref, safe='')}/api-keys?reveal=true"
        data = self.call("GET", path)
        return {
            str(k["name"]): str(k["api_key"])
            for k in data or []
            if isinstance(k, dict) and k.get("api_key")
        }

    def functions(self) -> list[dict[str, Any]]:
        """The project's Edge Functions (``FunctionResponse``: slug, name, version, status,
        entrypoint_path, ...)."""
        data = self.call("GET", self._project("/functions"))
        return [f for f in data or [] if isinstance(f, dict)]

    def function_body(self, slug: str) -> bytes:
        """The deployed source bundle of one Edge Function, as the API stores it."""
        path = self._project(f"/functions/{quote(slug, safe='')}/body")
        return self._send("GET", path, accept="*/*").body

    def delete_request(self, branch_id: str) -> tuple[str, dict[str, str]]:
        """The URL and headers that delete ``branch_id``: what the watchdog sends if this
        process dies before its teardown (see :mod:`.reaper`)."""
        return self.base_url + branch_delete_path(branch_id), dict(self._headers)


def branch_delete_path(branch_id: str) -> str:
    return f"/v1/branches/{quote(branch_id, safe='')}?force=true"
