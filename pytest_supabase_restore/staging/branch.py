"""The branch target: a disposable Supabase branch of the project, for one drill.

``--supabase-staging=branch`` asks the Management API for a new preview branch of the
source project (``POST /v1/projects/{ref}/branches``: not persistent, without the source's
data, named ``supabase-restore-drill-<UTC time>-<random>``), waits a bounded, visible time
until it reports ``ACTIVE_HEALTHY``, reads its database URL and API keys, and restores into
it with the ``url`` target's procedure and refusals (:mod:`.url`): the drill marks the
branch's database disposable itself, since it created it, and the identity check still has
to show that it is not the source. The branch is deleted at the end, also after a failure,
Ctrl-C, SIGTERM or a time limit (teardown), and after ``kill -9`` (the watchdog of
:mod:`..reaper` holds the DELETE request); ``--supabase-keep-staging`` keeps it.

The source project is never touched other than creating and deleting that branch: no
restore, PITR or in-place endpoint exists in :mod:`..management`.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import psycopg

from ..config import Config, project_ref
from ..connections import DISPOSABLE_MARKER, Connection
from ..errors import ConfigError, DrillError
from ..management import Branch, BranchDetail, ManagementApi, ManagementApiError
from ..model import Manifest
from ..reaper import reaper
from .api import StagingApi, branch_api_url
from .url import UrlStaging

if TYPE_CHECKING:
    from pathlib import Path

    from ..storage.records import ObjectRecord, TransferResult

log = logging.getLogger(__name__)
Progress = Callable[[str], None]

BRANCH_PREFIX = "supabase-restore-drill-"
HEALTHY = "ACTIVE_HEALTHY"
# States a new branch never leaves by itself (BranchDetailResponse.status).
FAILED_STATES = frozenset(
    {"INIT_FAILED", "RESTORE_FAILED", "PAUSE_FAILED", "REMOVED", "INACTIVE", "GOING_DOWN"}
)
POLL_FIRST, POLL_MAX = 1.0, 10.0  # seconds between polls: doubling from the first to the max


def branch_name(now: datetime | None = None) -> str:
    """``supabase-restore-drill-20260102T030405Z-1a2b3c``: recognisable as the drill's."""
    moment = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return f"{BRANCH_PREFIX}{moment}-{secrets.token_hex(3)}"


def _refusal(ref: str, exc: ManagementApiError) -> ConfigError:
    # The API's answer first (the request's label after it): a verdict line is shortened.
    label, _, answer = str(exc).partition(": ")
    return ConfigError(
        f"--supabase-staging=branch: no branch of project {ref}: {answer or label} "
        f"({label.removeprefix('Supabase ')}). Branching needs a paid plan with branching "
        "enabled for "
        "the project and a token whose account may create branches; or use another "
        "--supabase-staging target."
    )


def wait_healthy(
    api: ManagementApi,
    branch: Branch,
    timeout: float,
    progress: Progress,
) -> BranchDetail:
    """Poll the branch until it is ``ACTIVE_HEALTHY`` (1 s after creation, then twice as long
    each time up to 10 s); a failed state or ``timeout`` seconds without health is a
    :class:`DrillError` naming the last state seen."""
    start = time.monotonic()
    polls, poll = 0, POLL_FIRST
    while True:
        detail = api.branch_detail(branch.id)
        polls += 1
        waited = time.monotonic() - start
        if detail.status == HEALTHY:
            progress(f"branch {branch.name}: {HEALTHY} after {polls} poll(s), {waited:.0f} s")
            return detail
        if detail.status in FAILED_STATES:
            raise DrillError(
                f"branch {branch.name} ({branch.project_ref}) reached {detail.status} instead "
                f"of {HEALTHY}; see the project's Branches page on the dashboard."
            )
        if waited + poll > timeout:
            raise DrillError(
                f"branch {branch.name} ({branch.project_ref}) was not {HEALTHY} within "
                f"{timeout:.0f} s (last state {detail.status} after {polls} polls). Raise "
                "--supabase-branch-timeout, or look at the branch on the dashboard."
            )
        progress(f"branch {branch.name}: {detail.status}, waited {waited:.0f} s of {timeout:.0f} s")
        time.sleep(poll)
        poll = min(POLL_MAX, poll * 2)


def branch_dsn(detail: BranchDetail) -> str:
    """The branch database's URL (its password is a secret: the URL is never shown)."""
    if not detail.db_user or not detail.db_pass:
        raise DrillError(
            f"branch {detail.ref}: the Management API gave no database user or password "
            "(GET /v1/branches/{id}), so the drill cannot log in to it."
        )
    user, password = quote(detail.db_user, safe=""), quote(detail.db_pass, safe="")
    return f"postgresql://{user}:{password}@{detail.db_host}:{detail.db_port}/postgres"


def mark_disposable(dsn: str) -> None:
    """The drill created the branch, so it marks the branch's database disposable itself
    (the url target's first guard); the identity check still runs."""
    with psycopg.connect(dsn, connect_timeout=15, autocommit=True) as conn:
        conn.execute(f"COMMENT ON DATABASE postgres IS '{DISPOSABLE_MARKER}'")


@dataclass
class BranchStaging(UrlStaging):
    """A branch the drill created; :meth:`stop` deletes it."""

    api: ManagementApi | None = field(default=None, repr=False)
    branch: Branch | None = None
    api_keys: dict[str, str] = field(default_factory=dict, repr=False)
    project_api: StagingApi | None = field(default=None, repr=False)

    @classmethod
    def create(
        cls,
        settings: Config,
        sources: Sequence[str],
        *,
        progress: Progress,
        warn: Progress,
    ) -> BranchStaging:
        ref = project_ref(settings)
        if ref is None or not settings.access_token:
            raise ConfigError("--supabase-staging=branch needs SUPABASE_ACCESS_TOKEN and a ref")
        api = ManagementApi(settings.access_token, settings.management_api_url, ref)
        name = branch_name()
        progress(f"branch: creating {name} of project {ref}")
        try:
            branch = api.create_branch(name)
        except ManagementApiError as exc:
            if exc.status is None or exc.status >= 500:  # it may exist all the same
                _delete_named(api, name, progress)
            raise _refusal(ref, exc) from None
        url, headers = api.delete_request(branch.id)
        reaper.watch_request("DELETE", url, headers)
        try:
            return cls._open(api, branch, settings, sources, progress, warn)
        except BaseException:
            _delete(api, branch, progress)
            raise

    @classmethod
    def _open(
        cls,
        api: ManagementApi,
        branch: Branch,
        settings: Config,
        sources: Sequence[str],
        progress: Progress,
        warn: Progress,
    ) -> BranchStaging:
        detail = wait_healthy(api, branch, settings.branch_timeout, progress)
        dsn = branch_dsn(detail)
        keys = api.api_keys(branch.project_ref)
        project_api = _project_api(settings, detail, keys, warn)
        mark_disposable(dsn)
        url = UrlStaging.open(Connection(db_url=dsn), sources, progress=progress, warn=warn)
        return cls(
            kind="branch",
            dsn=dsn,
            label=f"branch {branch.name} ({branch.project_ref}) of project {api.ref}",
            server_version=url.server_version,
            platform_present=url.platform_present,
            prepare_sql=url.prepare_sql,
            prepare_cli_sql=url.prepare_cli_sql,
            s3=None,
            disposable=True,
            api=api,
            branch=branch,
            api_keys=keys,
            project_api=project_api,
        )

    def prepare(self, manifest: Manifest | None) -> None:
        """Nothing to clear: the drill created the branch a moment ago, so it holds no earlier
        restore (dropping and creating ``public`` again would only change its owner)."""

    def api_state(self) -> dict[str, str] | None:
        return self.project_api.to_state() if self.project_api is not None else None

    def restore_objects(
        self,
        set_dir: Path,
        objects: Sequence[ObjectRecord],
        *,
        concurrency: int,
        progress: Progress,
    ) -> TransferResult | None:
        """Through the branch's Storage API (see :mod:`.branch_storage` for why not S3)."""
        if self.project_api is None:
            return None
        from ..storage.api import StorageApi
        from .branch_storage import restore_objects

        storage = StorageApi(self.project_api.url, self.project_api.service_role_key)
        return restore_objects(
            self.dsn, storage, objects, set_dir, concurrency=concurrency, progress=progress
        )

    def release(self) -> None:
        """Kept (--supabase-keep-staging): the watchdog must not delete it either."""
        if self.api is not None and self.branch is not None:
            reaper.forget_request(self.api.delete_request(self.branch.id)[0])

    def stop_hint(self) -> str:
        branch = self.branch
        assert branch is not None
        where = ""
        if self.project_api is not None:  # its keys are on the branch's API settings page
            where = f" Its REST, Auth and Storage APIs are at {self.project_api.url}."
        return (
            f"delete branch {branch.name} ({branch.project_ref}) on the dashboard's Branches "
            f"page, or: supabase branches delete {branch.project_ref} (it costs compute "
            f"time while it exists).{where}"
        )

    def stop(self) -> None:
        """Delete the branch (best effort: a failure is logged with the branch's name)."""
        if self.api is not None and self.branch is not None:
            _delete(self.api, self.branch, log.info)

    def platform_differences(self, set_dir: Path, manifest: Manifest) -> list[str]:
        """The branch's Auth and Storage settings and Edge Functions against the backup's."""
        if self.api is None or self.branch is None:
            return []
        if not manifest.project_settings and not manifest.functions:
            return []
        from ..project_settings import compare_branch

        return compare_branch(
            self.api,
            self.branch.project_ref,
            set_dir,
            manifest.project_settings,
            manifest.functions,
        )


def _project_api(
    settings: Config, detail: BranchDetail, keys: dict[str, str], warn: Progress
) -> StagingApi | None:
    """The branch's REST, Auth and Storage APIs: its base URL, keys and JWT secret."""
    service = keys.get("service_role")
    if not service:
        warn(
            f"api: the Management API gave no service_role key for branch {detail.ref}, so "
            "its REST, Auth and Storage APIs are not tested"
        )
        return None
    url = branch_api_url(settings.branch_api_url, settings.source.api_url, detail.ref)
    return StagingApi(
        url=url, service_role_key=service, anon_key=keys.get("anon"), jwt_secret=detail.jwt_secret
    )


def _delete_named(api: ManagementApi, name: str, progress: Progress) -> None:
    """Delete the branch called ``name`` if the failed create made it after all."""
    try:
        made = [b for b in api.branches() if b.name == name]
    except ManagementApiError as exc:
        log.warning("could not list the branches to look for %s: %s", name, exc)
        return
    for branch in made:
        _delete(api, branch, progress)


def _delete(api: ManagementApi, branch: Branch, progress: Progress) -> None:
    """Delete ``branch`` now; the watchdog keeps the request until it succeeded."""
    try:
        api.delete_branch(branch.id)
    except ManagementApiError as exc:
        log.warning(
            "could not delete branch %s (%s): %s; delete it on the dashboard",
            branch.name,
            branch.project_ref,
            exc,
        )
        return
    reaper.forget_request(api.delete_request(branch.id)[0])
    progress(f"branch {branch.name} deleted")


__all__ = ["BRANCH_PREFIX", "BranchStaging", "branch_name", "wait_healthy"]
