"""Storage objects into a branch, through its Storage API with the service_role key.

Why the Storage API and not S3: a branch's S3 endpoint (``/storage/v1/s3``) takes access
keys made on the dashboard, which the Management API does not hand out; the service_role
key it does hand out is what Storage's REST API takes. Storage keeps its own row of every
object in ``storage.objects``: an upload through its API (or its S3 endpoint) writes that
row anew (a new version, its own metadata, ``updated_at`` now), while the database restore
already brought back the backed-up rows. So the rows are saved before the upload and put
back exactly as backed up afterwards (triggers off for that one transaction, as for the
restore's data), and a row the upload made for bytes the source had no row for is removed:
the database stays the backup's, the bytes are Storage's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
from psycopg import sql

from ..errors import StorageError
from ..storage.api import StorageApi, without_ids
from ..storage.pool import bounded_map
from ..storage.records import ObjectRecord, TransferResult
from ..storage.upload import backed_up_file

SAVED = "supabase_restore_saved_objects"

_COLUMNS = """
SELECT a.attname::text FROM pg_catalog.pg_attribute a
WHERE a.attrelid = 'storage.objects'::regclass AND a.attnum > 0 AND NOT a.attisdropped
    AND a.attgenerated = ''
ORDER BY a.attnum
"""


def _upload_one(api: StorageApi, src: Path, record: ObjectRecord) -> str | None:
    path = backed_up_file(src, record)
    if isinstance(path, str):
        return without_ids(path)
    where = without_ids(f"bucket {record.bucket!r}, key {record.key!r}")
    try:
        api.upload(record.bucket, record.key, path, record.content_type, record.cache_control)
    except StorageError as exc:
        return f"{where}: {exc}"
    return None


def _put_rows_back(conn: psycopg.Connection[tuple[object, ...]], columns: list[str]) -> int:
    """Make ``storage.objects`` the saved rows again; how many rows it changed."""
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    saved = sql.SQL(", ").join(sql.SQL("s.") + sql.Identifier(c) for c in columns)
    mine = sql.SQL(", ").join(sql.SQL("o.") + sql.Identifier(c) for c in columns)
    key = sql.SQL("s.bucket_id = o.bucket_id AND s.name = o.name")
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        removed = conn.execute(
            sql.SQL(
                "DELETE FROM storage.objects o WHERE NOT EXISTS "
                "(SELECT 1 FROM pg_temp.{} s WHERE {})"
            ).format(sql.Identifier(SAVED), key)
        ).rowcount
        changed = conn.execute(
            sql.SQL(
                "UPDATE storage.objects o SET ({}) = ROW({}) FROM pg_temp.{} s "
                "WHERE {} AND ROW({}) IS DISTINCT FROM ROW({})"
            ).format(cols, saved, sql.Identifier(SAVED), key, mine, saved)
        ).rowcount
    return removed + changed


def restore_objects(
    dsn: str,
    api: StorageApi,
    objects: Sequence[ObjectRecord],
    src: Path,
    *,
    concurrency: int,
    progress: Callable[[str], None],
) -> TransferResult:
    """Upload ``objects`` (the content-addressed files under ``src``) through the Storage
    API, then put the backed-up ``storage.objects`` rows back. Failures are listed in the
    result's ``errors`` with bucket and key."""
    result = TransferResult()
    with psycopg.connect(dsn, connect_timeout=15, autocommit=True) as conn:
        columns = [str(r[0]) for r in conn.execute(_COLUMNS).fetchall()]
        conn.execute(
            sql.SQL("CREATE TEMP TABLE {} AS SELECT * FROM storage.objects").format(
                sql.Identifier(SAVED)
            )
        )
        records = list(objects)
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            errors = bounded_map(
                pool, lambda r: _upload_one(api, src, r), records, window=4 * concurrency
            )
            for record, error in zip(records, errors, strict=True):
                if error is None:
                    result.objects.append(record)
                    result.bytes += record.size
                else:
                    result.errors.append(error)
        put_back = _put_rows_back(conn, columns)
    progress(
        f"storage: uploaded {len(result.objects)} objects through the branch's Storage API "
        f"({result.bytes / (1 << 20):.1f} MiB); {put_back} storage.objects row(s) put back "
        "as backed up"
    )
    return result


__all__ = ["restore_objects"]
