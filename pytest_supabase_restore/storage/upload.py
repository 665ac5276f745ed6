"""Upload: the backed-up objects into a target object store, with their headers."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from ..errors import BackupError, StorageError
from .client import make_client
from .endpoint import S3Endpoint
from .faults import UNREACHABLE, describe, endpoint_error, error_code, hint
from .pool import bounded_map
from .records import ObjectRecord, TransferResult, object_path

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from ..progress import Tally

# Parts of 8 MiB: above S3's 5 MiB minimum, and what one upload holds in memory at a time.
MULTIPART_CHUNK = 8 << 20


def _ensure_bucket(client: S3Client, endpoint: S3Endpoint, bucket: str) -> None:
    try:
        client.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        code, status = error_code(exc)
        if code not in ("404", "NoSuchBucket", "NotFound") and status != 404:
            raise
    try:
        if endpoint.region in ("", "us-east-1"):
            client.create_bucket(Bucket=bucket)
        else:
            try:
                client.create_bucket(
                    Bucket=bucket,
                    CreateBucketConfiguration={"LocationConstraint": endpoint.region},  # type: ignore[typeddict-item]
                )
            except ClientError as exc:
                # Some S3-compatible servers reject region names they do not know.
                if error_code(exc)[0] not in ("InvalidLocationConstraint", "MalformedXML"):
                    raise
                client.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if error_code(exc)[0] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise


def _usable_buckets(
    client: S3Client,
    endpoint: S3Endpoint,
    objects: Sequence[ObjectRecord],
    create_buckets: bool,
    errors: list[str],
) -> set[str]:
    """The buckets of ``objects`` that exist (or were created); the others go to ``errors``."""
    usable: set[str] = set()
    for bucket in sorted({o.bucket for o in objects}):
        try:
            if create_buckets:
                _ensure_bucket(client, endpoint, bucket)
            usable.add(bucket)
        except (ClientError, BotoCoreError) as exc:
            if isinstance(exc, UNREACHABLE):
                raise StorageError(
                    endpoint_error("Preparing the staging buckets", exc, endpoint, 5)
                ) from None
            errors.append(
                f"bucket {bucket!r}: could not be created: {describe(exc, endpoint)}. "
                f"{hint(exc, endpoint)}"
            )
    return usable


def backed_up_file(src: Path, record: ObjectRecord) -> Path | str:
    """The backup set's file of ``record`` under ``src``, or why it cannot be uploaded."""
    where = f"bucket {record.bucket!r}, key {record.key!r}"
    try:
        path = object_path(src, record.sha256)
        size = path.stat().st_size
    except (BackupError, OSError) as exc:
        return f"{where}: the backup set has no file for this object ({exc})."
    if size != record.size:
        return (
            f"{where}: the backup file {path.name} is {size} bytes, the manifest says "
            f"{record.size}; the backup set is damaged."
        )
    return path


def upload_all(
    endpoint: S3Endpoint,
    objects: Sequence[ObjectRecord],
    src: Path,
    *,
    concurrency: int = 8,
    progress: Callable[[str], None] | None = None,
    create_buckets: bool = True,
    tally: Tally | None = None,
) -> TransferResult:
    """Upload each recorded object from the content-addressed files under ``src``.

    Keeps Content-Type and Cache-Control; objects above 8 MiB go up in 8 MiB multipart
    parts, one part in memory at a time. Missing buckets are created unless
    ``create_buckets`` is False. Failures are listed in ``errors`` with bucket and key.
    ``tally`` counts each object uploaded, for the progress heartbeat.
    """
    started = time.monotonic()
    client = make_client(endpoint, max_pool_connections=max(16, concurrency))
    transfer = TransferConfig(
        multipart_threshold=MULTIPART_CHUNK,
        multipart_chunksize=MULTIPART_CHUNK,
        # Parallelism is across objects; within one object parts go one by one, which
        # keeps memory at one part per worker.
        use_threads=False,
    )
    result = TransferResult()
    say = progress or (lambda _msg: None)
    usable = _usable_buckets(client, endpoint, objects, create_buckets, result.errors)

    def one(record: ObjectRecord) -> str | None:
        where = f"bucket {record.bucket!r}, key {record.key!r}"
        path = backed_up_file(src, record)
        if isinstance(path, str):
            return path
        extra: dict[str, str] = {}
        if record.content_type:
            extra["ContentType"] = record.content_type
        if record.cache_control:
            extra["CacheControl"] = record.cache_control
        try:
            client.upload_file(
                str(path), record.bucket, record.key, ExtraArgs=extra, Config=transfer
            )
        except Exception as exc:  # s3transfer wraps failures in its own types
            cause = exc.__cause__ or exc.__context__ or exc
            return f"{where}: upload failed: {describe(exc, endpoint)}. {hint(cause, endpoint)}"
        if tally is not None:
            tally.add(record.size)
        return None

    todo = [o for o in objects if o.bucket in usable]
    result.errors.extend(
        f"bucket {o.bucket!r}, key {o.key!r}: not uploaded (bucket unavailable)"
        for o in objects
        if o.bucket not in usable
    )
    with ThreadPoolExecutor(
        max_workers=max(1, concurrency), thread_name_prefix="s3-upload"
    ) as pool:
        errors = bounded_map(pool, one, todo, window=4 * concurrency)
        for record, error in zip(todo, errors, strict=True):
            if error is None:
                result.objects.append(record)
                result.bytes += record.size
            else:
                result.errors.append(error)
    result.seconds = time.monotonic() - started
    say(
        f"storage: uploaded {len(result.objects)} objects "
        f"({result.bytes / (1 << 20):.1f} MiB) in {result.seconds:.1f} s"
    )
    return result
