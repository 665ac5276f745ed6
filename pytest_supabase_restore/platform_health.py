"""The platform's own backups of the project, read once per run when a token is set.

With ``SUPABASE_ACCESS_TOKEN`` the drill asks the Management API
(``GET /v1/projects/{ref}/database/backups``) for the newest COMPLETED backup and its age,
and whether point-in-time recovery is on with its window. ``--supabase-max-backup-age``
turns an old backup into a FAIL reason that names it. Without a token nothing is asked and
the verdict is exactly as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone

from .config import Config, project_ref
from .management import Backups, ManagementApi, ManagementApiError
from .results import PlatformHealth

NEVER_CONTAINED = (
    "the platform's backups never contain Storage objects (only their metadata rows in "
    "storage.objects) nor the passwords of custom roles; this drill's backup set holds the "
    "objects (each with its SHA-256) and the roles with their attributes and grants, but "
    "not their passwords either: set them again after a restore"
)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def _parse(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _from_unix(value: int | None) -> str | None:
    return _iso(datetime.fromtimestamp(value, timezone.utc)) if value is not None else None


def assess(backups: Backups, now: datetime, max_age_hours: float | None) -> PlatformHealth:
    """What the backups answer says, with the FAIL reasons of the age rule."""
    completed = [
        (moment, b)
        for b in backups.backups
        if b.status == "COMPLETED" and (moment := _parse(b.inserted_at)) is not None
    ]
    health = PlatformHealth(
        completed_count=len(completed),
        pitr_enabled=backups.pitr_enabled,
        pitr_earliest=_from_unix(backups.earliest_physical_unix) if backups.pitr_enabled else None,
        pitr_latest=_from_unix(backups.latest_physical_unix) if backups.pitr_enabled else None,
        max_age_hours=max_age_hours,
    )
    if completed:
        moment, newest = max(completed, key=lambda pair: pair[0])
        health.newest_completed_at = _iso(moment)
        health.newest_completed_id = newest.id
        health.newest_age_seconds = round((now - moment).total_seconds(), 1)
    if max_age_hours is None:
        return health
    if health.newest_age_seconds is None:
        health.problems.append(
            f"platform backups: no COMPLETED backup at all (the limit is {max_age_hours:g} h)"
        )
    elif health.newest_age_seconds > max_age_hours * 3600:
        health.problems.append(
            f"platform backups: the newest COMPLETED backup (id {health.newest_completed_id}, "
            f"{health.newest_completed_at}) is {health.newest_age_seconds / 3600:.1f} h old, "
            f"older than --supabase-max-backup-age {max_age_hours:g} h"
        )
    return health


def _window_hours(earliest: object, latest: object) -> float | None:
    start = _parse(earliest) if isinstance(earliest, str) else None
    end = _parse(latest) if isinstance(latest, str) else None
    if start is None or end is None:
        return None
    return (end - start).total_seconds() / 3600


def compare_previous(health: PlatformHealth, date: str, previous: Mapping[str, object]) -> None:
    """The PITR rules against the previous drill (``date``, its recorded platform facts):
    PITR turned off since then, or its physical backup window shorter (by more than an hour:
    the window's ends move as backups are taken and expire)."""
    if health.error is not None or health.pitr_rule == "off":
        return
    if previous.get("pitr_enabled") is True and health.pitr_enabled is False:
        health.warnings.append(
            f"platform backups: point-in-time recovery was on at the previous drill ({date}) "
            "and is off now"
        )
        return
    before = _window_hours(previous.get("pitr_earliest"), previous.get("pitr_latest"))
    now = _window_hours(health.pitr_earliest, health.pitr_latest)
    if health.pitr_enabled and before is not None and now is not None and now < before - 1:
        health.warnings.append(
            f"platform backups: the point-in-time recovery window is {now:.1f} h, "
            f"{before:.1f} h at the previous drill ({date})"
        )


def _previous_drill(settings: Config, health: PlatformHealth) -> None:
    """Compare with the tracking issue's history when GitHub is configured (never raises:
    a history that cannot be read is said in the platform section)."""
    if health.pitr_rule == "off" or not (settings.github_token and settings.github_repository):
        return
    from .notify.github import previous_platform
    from .notify.http import HttpError

    try:
        found = previous_platform(settings)
    except HttpError as exc:
        health.warnings.append(f"platform backups: the previous drill could not be read: {exc}")
        return
    if found is not None:
        compare_previous(health, found[0], found[1])


def read_health(settings: Config, now: datetime | None = None) -> PlatformHealth | None:
    """The platform's view of the project's backups; None without a token. A failure to read
    is kept as the health's ``error`` (a FAIL reason: the check was asked for)."""
    if not settings.access_token:
        return None
    ref = project_ref(settings)
    if ref is None:
        return PlatformHealth(
            error="no project ref: set SUPABASE_URL (https://<ref>.supabase.co) or "
            "--supabase-project-ref",
            max_age_hours=settings.max_backup_age,
        )
    api = ManagementApi(settings.access_token, settings.management_api_url, ref)
    try:
        backups = api.backups()
    except ManagementApiError as exc:
        return PlatformHealth(
            project_ref=ref, error=str(exc), max_age_hours=settings.max_backup_age
        )
    health = assess(backups, now or datetime.now(timezone.utc), settings.max_backup_age)
    health.project_ref = ref
    health.pitr_rule = settings.pitr_rule
    _previous_drill(settings, health)
    return health


def health_lines(health: PlatformHealth) -> list[str]:
    """The platform-health section in words, one line each (the same in every report)."""
    where = f" of {health.project_ref}" if health.project_ref else ""
    if health.error is not None:
        return [f"platform backups{where}: could not be read: {health.error}", NEVER_CONTAINED]
    if health.newest_completed_at is None:
        newest = "no COMPLETED backup"
    else:
        hours = (health.newest_age_seconds or 0.0) / 3600
        newest = (
            f"newest COMPLETED backup {health.newest_completed_at} ({hours:.1f} h old, "
            f"id {health.newest_completed_id})"
        )
    if health.max_age_hours is not None:
        newest += f", limit {health.max_age_hours:g} h"
    pitr = "PITR off"
    if health.pitr_enabled:
        pitr = f"PITR on, window {health.pitr_earliest or 'n/a'} to {health.pitr_latest or 'n/a'}"
    lines = [f"platform backups{where}: {newest}; {pitr}", *health.problems, *health.warnings]
    lines += [f"the branch differs from the backup: {d}" for d in health.branch_differences]
    lines += [f"to do by hand after a full restore: {m}" for m in health.manual_restore]
    return [*lines, NEVER_CONTAINED]


def health_reasons(health: PlatformHealth | None) -> list[str]:
    """The verdict's FAIL reasons from the platform's health (none without a token)."""
    if health is None:
        return []
    if health.error is not None:
        # A FAIL only when a rule was asked for; otherwise the section says it.
        if health.max_age_hours is None:
            return []
        return [f"platform backups could not be read: {health.error}"]
    return [*health.problems, *(health.warnings if health.pitr_rule == "fail" else [])]
