"""The public fixtures. Each is an override point: replace it in your own ``conftest.py``.

- ``drill_settings``: the resolved :class:`~pytest_supabase_restore.config.Config`.
- ``drill_state``: what the drill did (:class:`~pytest_supabase_restore.results.DrillState`).
- ``supabase_backup``: the backup set (``.path``, ``.manifest``, ``.format``).
- ``staging_dsn``: connection string of the restored staging database.
- ``staging_db``: a psycopg connection to it, fresh per test, rolled back afterwards.
- ``staging_storage``: the restored Storage objects (``.endpoint``, ``.client``, ``.objects``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .config import Config
from .results import STATE_FILE, DrillState, drill_failed_skip
from .storage.endpoint import LOCAL_REGION, S3Endpoint, connection_endpoint

if TYPE_CHECKING:
    import psycopg

    from .model import Manifest
    from .storage.records import ObjectRecord

SETTINGS_KEY = pytest.StashKey[Config]()
STATE_KEY = pytest.StashKey[DrillState]()
RUN_DIR_KEY = pytest.StashKey[Path]()
HEADER_SHOWN_KEY = pytest.StashKey[bool]()  # the settings header was printed at drill start
FLAG_REASON = "the backup-restore drill is off: run pytest with --supabase-restore"


@dataclass(frozen=True)
class BackupSet:
    """A backup set on disk: its directory, checked manifest (None for a Supabase CLI dump,
    which has none) and format (``"manifest"`` or ``"supabase-cli"``)."""

    path: Path
    manifest: Manifest | None = field(repr=False)
    format: str = "manifest"


@dataclass
class StagingStorage:
    """The staging object store and the objects restored into it."""

    endpoint: S3Endpoint
    client: Any = field(repr=False)
    objects: list[ObjectRecord] = field(default_factory=list)


def get_state(config: pytest.Config) -> DrillState | None:
    """The drill state of this run (controller: in memory; xdist worker: from the run dir)."""
    state = config.stash.get(STATE_KEY, None)
    if state is not None:
        return state
    run_dir = config.stash.get(RUN_DIR_KEY, None)
    if run_dir is None or not (run_dir / STATE_FILE).is_file():
        return None
    state = DrillState.load(run_dir)
    config.stash[STATE_KEY] = state
    return state


# This run's manifest, read once per run (kept with the run's config, never across runs).
MANIFEST_KEY = pytest.StashKey[tuple[str, "Manifest"]]()


def collection_manifest(config: pytest.Config) -> Manifest | None:
    """The manifest of this run's backup set, read once per process (at collection, then
    by :func:`supabase_backup`); None when there is none."""
    state = get_state(config)
    if state is None or state.error or not state.backup_dir or state.backup_format != "manifest":
        return None
    cached = config.stash.get(MANIFEST_KEY, None)
    if cached is None or cached[0] != state.backup_dir:
        cached = (state.backup_dir, _read_manifest(Path(state.backup_dir)))
        config.stash[MANIFEST_KEY] = cached
    return cached[1]


def _read_manifest(set_dir: Path) -> Manifest:
    from .manifest import read_manifest  # here: the entry point imports this module always

    return read_manifest(set_dir)


@pytest.fixture(scope="session")
def drill_settings(pytestconfig: pytest.Config) -> Config:
    """The plugin's resolved settings."""
    settings = pytestconfig.stash.get(SETTINGS_KEY, None)
    if settings is None or not settings.enabled:
        pytest.skip(FLAG_REASON)
    return settings


@pytest.fixture(scope="session")
def drill_state(pytestconfig: pytest.Config, drill_settings: Config) -> DrillState:
    """What the drill did; skips when it could not run (the verdict says why, once)."""
    state = get_state(pytestconfig)
    if state is None:
        pytest.skip(FLAG_REASON)
    if state.mode == "dry-run":
        pytest.skip("--supabase-dry-run: nothing was restored")
    if state.error:
        # Skipped with a pointer, not failed with the error: one error said once (in the
        # verdict) reads better than the same error once per smoke test.
        pytest.skip(drill_failed_skip(state.error_phase))
    return state


@pytest.fixture(scope="session")
def supabase_backup(pytestconfig: pytest.Config, drill_state: DrillState) -> BackupSet:
    """The backup set this run exported (or validated) and its parsed manifest (the one
    collection read: a manifest is read and checked once per process)."""
    assert drill_state.backup_dir is not None
    path = Path(drill_state.backup_dir)
    manifest = collection_manifest(pytestconfig)
    return BackupSet(path=path, manifest=manifest, format=drill_state.backup_format or "manifest")


@pytest.fixture(scope="session")
def staging_dsn(drill_state: DrillState) -> str:
    """Connection string of the restored staging database (a superuser on throwaway targets)."""
    if not drill_state.staging_dsn:
        pytest.fail("the drill restored nothing", pytrace=False)
    return drill_state.staging_dsn


@pytest.fixture
def staging_db(staging_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A fresh connection to staging for one test; whatever it did is rolled back."""
    import psycopg  # here, not at the top: the entry point imports this module on every run

    conn = psycopg.connect(staging_dsn, connect_timeout=15)
    try:
        yield conn
    finally:
        try:
            conn.rollback()
        finally:
            conn.close()


@pytest.fixture(scope="session")
def staging_storage(
    drill_state: DrillState, drill_settings: Config, supabase_backup: BackupSet
) -> StagingStorage:
    """The restored Storage objects; skipped when the backup holds none."""
    from .storage.client import make_client

    s3 = drill_state.staging_s3
    manifest = supabase_backup.manifest
    objects = list(manifest.storage.objects) if manifest else []
    if not s3 and objects and drill_state.staging_api:
        pytest.skip(
            "not tested through S3: the staging project's object store is reached through "
            "its Storage API (test_objects_through_storage_api), not with S3 keys"
        )
    if not s3 or not objects:
        pytest.skip(
            "not tested: the backup set holds no Storage objects or staging has no object store"
        )
    if s3.get("kind") == "url":
        endpoint = connection_endpoint(drill_settings.target)
    else:
        # The throwaway object store only accepts the key pair it generated at start.
        endpoint = S3Endpoint(
            s3["url"], s3.get("region", LOCAL_REGION), s3["access_key_id"], s3["secret_access_key"]
        )
    assert endpoint is not None
    return StagingStorage(
        endpoint=endpoint,
        client=make_client(endpoint),
        objects=objects,
    )
