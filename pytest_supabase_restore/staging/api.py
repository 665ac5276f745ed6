"""A staging project's HTTP APIs (REST, Auth, Storage): where they are and their keys.

A ``url`` target has them when ``STAGING_SUPABASE_URL`` and
``STAGING_SUPABASE_SERVICE_ROLE_KEY`` are set; a ``branch`` target always has them: the
Management API gives the branch's ``anon`` and ``service_role`` keys and its JWT secret,
and its base URL is ``https://<branch ref>.<project host>`` (see :func:`branch_api_url`).
The keys and the secret are credentials: they travel only in the drill state (in the run's
0700 directory, as the throwaway object store's keys do) and never in a report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from ..config import Config
    from ..results import DrillState

DEFAULT_PROJECT_HOST = "supabase.co"
REF_FIELD = "{ref}"


@dataclass(frozen=True)
class StagingApi:
    """The base URL of a project's APIs (``<url>/rest/v1``, ``/auth/v1``, ``/storage/v1``),
    its keys, and (for a branch) the secret its JWTs are signed with."""

    url: str
    service_role_key: str = field(repr=False)
    anon_key: str | None = field(default=None, repr=False)
    jwt_secret: str | None = field(default=None, repr=False)

    def to_state(self) -> dict[str, str]:
        out = {"url": self.url, "service_role_key": self.service_role_key}
        if self.anon_key:
            out["anon_key"] = self.anon_key
        if self.jwt_secret:
            out["jwt_secret"] = self.jwt_secret
        return out

    @classmethod
    def from_state(cls, data: dict[str, str]) -> StagingApi:
        return cls(
            url=data["url"],
            service_role_key=data["service_role_key"],
            anon_key=data.get("anon_key"),
            jwt_secret=data.get("jwt_secret"),
        )


def branch_api_url(template: str | None, source_api_url: str | None, ref: str) -> str:
    """The base URL of branch ``ref``'s APIs.

    ``template`` (``SUPABASE_BRANCH_API_URL``, with ``{ref}`` where the branch's ref goes)
    when set, for a proxy or a stand-in of the platform. Otherwise the Supabase CLI's rule
    (``https://`` + ref + ``.`` + the profile's project host): the project host is the
    source's own (``SUPABASE_URL`` ``https://<ref>.<host>``), else ``supabase.co``. The
    Management API's branch answers carry no URL of their own (``BranchDetailResponse``)."""
    if template:
        return template.replace(REF_FIELD, ref).rstrip("/")
    host = urlsplit(source_api_url or "").hostname or ""
    _, _, project_host = host.partition(".")
    if "." not in project_host:
        project_host = DEFAULT_PROJECT_HOST
    return f"https://{ref}.{project_host}"


def staging_api(settings: Config, state: DrillState) -> StagingApi | None:
    """The staging project's APIs for this run, or None when it has none to call."""
    if state.staging_api:
        return StagingApi.from_state(state.staging_api)
    target = settings.target
    if state.staging_kind != "branch" and target.api_url and target.service_role_key:
        return StagingApi(url=target.api_url.rstrip("/"), service_role_key=target.service_role_key)
    return None


__all__ = ["StagingApi", "branch_api_url", "staging_api"]
