"""What every staging target offers the restore and the smoke tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..model import Manifest
from ..storage.endpoint import S3Endpoint

if TYPE_CHECKING:
    from pathlib import Path

    from ..storage.records import ObjectRecord, TransferResult


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

    def prepare(self, manifest: Manifest | None) -> None:
        """Make the target ready for the backup set's restore (default: nothing; a fresh
        target holds nothing to clear). ``manifest`` is None for a Supabase CLI dump."""

    def s3_state(self) -> dict[str, str] | None:
        """How xdist workers reach the restored objects, kept in the drill state (in the
        run's 0700 directory): by default with the throwaway object store's own random key
        pair, since it accepts no other."""
        if self.s3 is None:
            return None
        return {
            "url": self.s3.url,
            "region": self.s3.region,
            "kind": self.kind,
            "access_key_id": self.s3.access_key_id,
            "secret_access_key": self.s3.secret_access_key,
        }

    def api_state(self) -> dict[str, str] | None:
        """The target's own REST, Auth and Storage APIs (:class:`.api.StagingApi`), kept in
        the drill state for the smoke tests; None: it has none of its own."""
        return None

    def restore_objects(
        self,
        set_dir: Path,
        objects: Sequence[ObjectRecord],
        *,
        concurrency: int,
        progress: Callable[[str], None],
    ) -> TransferResult | None:
        """Restore Storage objects by the target's own means, when it has no S3 endpoint
        the drill can upload to (None: it has none either)."""
        return None

    def after_restore(self) -> None:
        """Anything the target must do once the restore is in (default: nothing)."""

    def platform_differences(self, set_dir: Path, manifest: Manifest) -> list[str]:
        """What the target, a Supabase project, runs differently from the backup's settings
        and Edge Functions, by name (default: nothing to compare: a plain database)."""
        return []

    def release(self) -> None:
        """Hand the target over (--supabase-keep-staging): nothing this process set up to
        stop it at exit may do so (default: nothing to hand over)."""

    def stop_hint(self) -> str:
        """How a person stops the target once it was kept (--supabase-keep-staging)."""
        return (
            "kill the postgres process and remove its directory, or simply end this "
            "machine's session."
        )

    def stop(self) -> None:  # pragma: no cover - overridden where there is something to stop
        """Tear the target down (best effort, never raises)."""
