"""storage: every bucket and every object came back, byte for byte, with its settings.

Supabase's own backups leave Storage files out; the drill copies them. Here each bucket's
settings (public, size limit, allowed MIME types) must equal the backup's, each object
must be in the staging object store with the recorded size, SHA-256, Content-Type and
Cache-Control (and nothing unexpected beside them), and every ``storage.objects`` row must
have its bytes and every object its row. Messages name buckets and object keys.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from pytest_supabase_restore.config import Config
from pytest_supabase_restore.errors import StorageError
from pytest_supabase_restore.fixtures import StagingStorage
from pytest_supabase_restore.model import BucketEntry, Manifest
from pytest_supabase_restore.results import DrillState
from pytest_supabase_restore.smoke_tests._api import project_api
from pytest_supabase_restore.smoke_tests._support import shorten
from pytest_supabase_restore.storage.api import StorageApi, without_ids
from pytest_supabase_restore.storage.records import ObjectRecord
from pytest_supabase_restore.storage.verify import verify_all

pytestmark = pytest.mark.supabase_category("storage")

_SETTINGS = BucketEntry.SETTINGS


def _recorded_bucket(manifest: Manifest, bucket: str) -> dict[str, object]:
    entry = manifest.storage.bucket(bucket)
    if entry is None:
        raise AssertionError(f"bucket {bucket} is not in the manifest")
    return entry.settings()


def _norm(name: str, value: Any) -> Any:
    if name == "allowed_mime_types" and value is not None:
        return sorted(value)
    return value


def test_bucket_settings(
    bucket: str, manifest: Manifest, pinned_db: psycopg.Connection[Any]
) -> None:
    """The bucket exists in ``storage.buckets`` with the backed-up settings."""
    expected = _recorded_bucket(manifest, bucket)
    row = pinned_db.execute(
        "SELECT public, file_size_limit, allowed_mime_types FROM storage.buckets WHERE id = %s",
        (bucket,),
    ).fetchone()
    if row is None:
        pytest.fail(
            f"bucket {bucket}: missing from storage.buckets in the restored copy", pytrace=False
        )
    actual = dict(zip(_SETTINGS, row, strict=True))
    diffs = [
        f"{name}: expected {expected.get(name)!r}, found {actual[name]!r}"
        for name in _SETTINGS
        if _norm(name, expected.get(name)) != _norm(name, actual[name])
    ]
    if diffs:
        pytest.fail(f"bucket {bucket}: settings differ: {'; '.join(diffs)}", pytrace=False)


def test_source_had_every_object(bucket: str, manifest: Manifest, drill_fact: Any) -> None:
    """Every ``storage.objects`` row of the source had bytes to back up."""
    storage = manifest.storage
    if not storage.downloaded:
        pytest.skip("not tested: the backup holds no Storage objects (no source S3 settings)")
    unknown = [k for b, k in storage.unknown_to_db if b == bucket]
    if unknown:
        # Bytes without a row are invisible to the app; worth knowing, not a restore failure.
        drill_fact("objects_without_row_in_source", len(unknown))
    missing = sorted(k for b, k in storage.missing_in_s3 if b == bucket)
    if missing:
        pytest.fail(
            f"bucket {bucket}: the backup references bytes that were missing in the source for "
            f"{len(missing)} object(s): {shorten([f'{bucket}/{k}' for k in missing])}",
            pytrace=False,
        )


def test_bucket_objects(bucket: str, staging_storage: StagingStorage, drill_fact: Any) -> None:
    """Each backed-up object is in the staging store unchanged; nothing unexpected is there."""
    records = [o for o in staging_storage.objects if o.bucket == bucket]
    problems = verify_all(staging_storage.endpoint, records, concurrency=4, buckets=[bucket])
    drill_fact("objects", len(records))
    if problems:
        pytest.fail(
            f"bucket {bucket}: {len(problems)} object problem(s): "
            f"{shorten([p.message() for p in problems])}",
            pytrace=False,
        )


def _listed(staging_storage: StagingStorage, bucket: str) -> dict[str, int]:
    found: dict[str, int] = {}
    paginator = staging_storage.client.get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                found[str(obj["Key"])] = int(obj.get("Size", 0))
    except staging_storage.client.exceptions.NoSuchBucket:
        return {}
    return found


def test_object_rows_have_bytes(
    bucket: str, staging_storage: StagingStorage, pinned_db: psycopg.Connection[Any]
) -> None:
    """Every ``storage.objects`` row has its bytes in the store, and every object its row."""
    rows = {
        str(name): size
        for name, size in pinned_db.execute(
            "SELECT name, (metadata ->> 'size')::bigint FROM storage.objects WHERE bucket_id = %s",
            (bucket,),
        ).fetchall()
    }
    listed = _listed(staging_storage, bucket)
    problems = [f"{bucket}/{k}: row without bytes" for k in sorted(set(rows) - set(listed))]
    problems += [f"{bucket}/{k}: bytes without a row" for k in sorted(set(listed) - set(rows))]
    problems += [
        f"{bucket}/{k}: row says {rows[k]} bytes, store holds {listed[k]}"
        for k in sorted(set(rows) & set(listed))
        if rows[k] is not None and rows[k] != listed[k]
    ]
    if problems:
        pytest.fail(
            f"bucket {bucket}: storage.objects and the object store disagree on "
            f"{len(problems)} object(s): {shorten(problems)}",
            pytrace=False,
        )


def shown_path(bucket: str, key: str) -> str:
    """``bucket/key`` as the Storage API check names it: never with a user's id."""
    return without_ids(f"{bucket}/{key}")


def _through_api(client: StorageApi, record: ObjectRecord) -> str | None:
    where = shown_path(record.bucket, record.key)
    try:
        got = client.download(record.bucket, record.key)
    except StorageError as exc:
        return f"{where}: {exc}"
    if got.sha256 != record.sha256 or got.size != record.size:
        return f"{where}: {got.size} bytes, SHA-256 differs from the backup's" + (
            "" if got.size != record.size else " (same size)"
        )
    if record.content_type and got.content_type != record.content_type:
        return f"{where}: Content-Type {got.content_type!r}, backed up {record.content_type!r}"
    return None


def test_objects_through_storage_api(
    bucket: str,
    drill_settings: Config,
    drill_state: DrillState,
    manifest: Manifest,
    pinned_db: psycopg.Connection[Any],
    drill_fact: Any,
) -> None:
    """Through the staging Storage API (the service_role key, as the app's server would),
    each backed-up object of the bucket downloads with its SHA-256, size and Content-Type,
    and every other ``storage.objects`` row of the bucket has its bytes there. Objects are
    named with any user id in their path shown as ``<id>``."""
    api = project_api(drill_settings, drill_state)
    if drill_state.staging_kind not in ("branch", "url"):
        pytest.skip(
            "not tested through the Storage API: the objects were restored into this run's "
            f"own {drill_state.staging_kind} object store, not the staging project's"
        )
    storage = manifest.storage
    if not storage.downloaded:
        pytest.skip("not tested: the backup holds no Storage objects (no source S3 settings)")
    client = StorageApi(api.url, api.service_role_key)
    records = [o for o in storage.objects if o.bucket == bucket]
    known = {o.key for o in records} | {k for b, k in storage.missing_in_s3 if b == bucket}
    rows = [
        str(r[0])
        for r in pinned_db.execute(
            "SELECT name FROM storage.objects WHERE bucket_id = %s ORDER BY name", (bucket,)
        ).fetchall()
    ]
    extra = [k for k in rows if k not in known]
    with ThreadPoolExecutor(max_workers=4) as pool:
        problems = [p for p in pool.map(lambda r: _through_api(client, r), records) if p]
        problems += [p for p in pool.map(_row_has_bytes(client, bucket), extra) if p]
    drill_fact("objects_downloaded", len(records))
    if problems:
        pytest.fail(
            f"bucket {bucket}: {len(problems)} object problem(s) through the Storage API: "
            f"{shorten(problems)}",
            pytrace=False,
        )


def _row_has_bytes(client: StorageApi, bucket: str) -> Callable[[str], str | None]:
    def check(key: str) -> str | None:
        try:
            client.download(bucket, key)
        except StorageError as exc:
            return f"{shown_path(bucket, key)}: row without bytes ({exc})"
        return None

    return check
