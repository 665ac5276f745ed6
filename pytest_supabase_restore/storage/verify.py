"""Verify: stream every recorded object back from a target and compare it with its record."""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from ..errors import StorageError
from .client import iter_objects, make_client
from .endpoint import S3Endpoint
from .faults import Retrier, describe, endpoint_error, error_code, hint, is_gone
from .records import ObjectProblem, ObjectRecord, Problem
from .stream import fetch_object

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Attempts named in messages: the first try and the retrier's five retries.
_ATTEMPTS = 6


def _check(
    client: S3Client, endpoint: S3Endpoint, retrier: Retrier, record: ObjectRecord
) -> list[ObjectProblem]:
    """How the target's copy of ``record`` differs from it (nothing when it matches)."""

    def problem(kind: Problem, expected: str, actual: str) -> ObjectProblem:
        return ObjectProblem(record.bucket, record.key, kind, expected, actual)

    where = f"bucket {record.bucket!r}, key {record.key!r}"
    try:
        got = fetch_object(client, record.bucket, record.key, None, retrier, None, None)
    except ClientError as exc:
        if is_gone(exc) or error_code(exc)[0] == "NoSuchBucket":
            return [problem("missing", f"{record.size} bytes", "absent")]
        raise StorageError(
            f"Verifying {where} failed: {describe(exc, endpoint)}. {hint(exc, endpoint)}"
        ) from None
    except (BotoCoreError, Urllib3HTTPError, OSError) as exc:
        raise StorageError(endpoint_error(f"Verifying {where}", exc, endpoint, _ATTEMPTS)) from None
    found: list[ObjectProblem] = []
    if got.size != record.size:
        found.append(problem("size", str(record.size), str(got.size)))
    elif got.sha256 != record.sha256:
        found.append(problem("sha256", record.sha256, got.sha256))
    if record.content_type is not None and got.content_type != record.content_type:
        found.append(problem("content_type", record.content_type, str(got.content_type)))
    if record.cache_control is not None and got.cache_control != record.cache_control:
        found.append(problem("cache_control", record.cache_control, str(got.cache_control)))
    return found


def _unexpected(
    client: S3Client,
    endpoint: S3Endpoint,
    retrier: Retrier,
    objects: Sequence[ObjectRecord],
    buckets: Sequence[str],
) -> list[ObjectProblem]:
    """The objects of ``buckets`` on the target that the backup does not record."""
    expected = {(o.bucket, o.key) for o in objects}
    problems: list[ObjectProblem] = []
    for bucket in buckets:
        try:
            for listed in iter_objects(client, bucket, call=retrier.call):
                if (bucket, listed["Key"]) not in expected:
                    problems.append(
                        ObjectProblem(
                            bucket,
                            listed["Key"],
                            "unexpected",
                            "absent",
                            f"{listed.get('Size', 0)} bytes",
                        )
                    )
        except ClientError as exc:
            if error_code(exc)[0] == "NoSuchBucket":
                continue  # its recorded objects are already reported missing
            raise StorageError(
                endpoint_error(f"Listing bucket {bucket!r}", exc, endpoint, _ATTEMPTS)
            ) from None
        except (BotoCoreError, Urllib3HTTPError, OSError) as exc:
            raise StorageError(
                endpoint_error(f"Listing bucket {bucket!r}", exc, endpoint, _ATTEMPTS)
            ) from None
    return problems


def verify_all(
    endpoint: S3Endpoint,
    objects: Sequence[ObjectRecord],
    *,
    concurrency: int = 8,
    buckets: Sequence[str] | None = None,
) -> list[ObjectProblem]:
    """Stream every recorded object back from ``endpoint`` and compare it with its record.

    Compares size, SHA-256, Content-Type and Cache-Control (headers only where recorded).
    With ``buckets``, objects in those buckets that are not recorded are "unexpected".
    Raises StorageError when the endpoint cannot be read at all (unreachable, denied).
    """
    stop = threading.Event()
    retrier = Retrier(_ATTEMPTS - 1, None, stop)
    client = make_client(endpoint, max_attempts=1, max_pool_connections=max(16, concurrency))
    check = functools.partial(_check, client, endpoint, retrier)

    problems: list[ObjectProblem] = []
    try:
        with ThreadPoolExecutor(
            max_workers=max(1, concurrency), thread_name_prefix="s3-verify"
        ) as pool:
            for found in pool.map(check, objects):
                problems.extend(found)
    except BaseException:
        stop.set()
        raise

    if buckets is not None:
        problems.extend(_unexpected(client, endpoint, retrier, objects, buckets))
    problems.sort(key=lambda p: (p.bucket, p.key, p.problem))
    return problems
