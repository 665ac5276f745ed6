"""What every staging target offers the restore and the smoke tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..storage.endpoint import S3Endpoint


@dataclass
class StagingTarget:
    """A database (and object store) the backup set is restored into."""

    kind: str
    dsn: str = field(repr=False)
    label: str
    server_version: str = ""
    platform_present: bool = False  # auth/storage/roles already provided by Supabase itself
    prepare_sql: str | None = None  # what the platform would have created (plain PostgreSQL)
    prepare_cli_sql: str | None = None  # the same for a CLI dump, auth and storage included
    s3: S3Endpoint | None = None
    disposable: bool = True  # torn down at the end of the run
    # pg_cron's scheduler of this target can never run a job (pg.cron): jobs are restored as
    # backed up instead of being deactivated.
    cron_inert: bool = False

    def after_restore(self) -> None:
        """Anything the target must do once the restore is in (default: nothing)."""

    def stop(self) -> None:  # pragma: no cover - overridden where there is something to stop
        """Tear the target down (best effort, never raises)."""
