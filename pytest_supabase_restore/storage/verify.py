"""Verify: compare every recorded object on a target with its record.

Where the target reports, for an object, a full-object SHA-256 of the bytes it received
(``ChecksumSHA256`` on a HEAD with ``ChecksumMode=ENABLED``: S3 for an object uploaded with
that checksum, verified by S3 on arrival; the local S3 server for every object, computed as
it stores them), the object is checked from that HEAD: size, SHA-256, Content-Type and
Cache-Control, without downloading it. The proof is then that the store received exactly the
backed-up bytes under that key, and holds that object now (an object replaced, resized or
deleted through the S3 API since is caught: its checksum, size or presence changes). It is
not a re-read of the stored bytes: a change made to them behind the S3 API (on the server's
disk) would not show. So a random sample of ``sample`` objects is also downloaded and hashed
on every call, which proves the store serves the bytes it vouches for. Objects without such a
checksum (Supabase's endpoint computes none) are downloaded and hashed, as before.
"""

from __future__ import annotations

import base64
import binascii
import random
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from ..errors import StorageError
from .client import iter_objects, make_client
from .endpoint import S3Endpoint
from .faults import Retrier, describe, endpoint_error, error_code, hint, is_gone
from .pool import bounded_map
from .records import ObjectProblem, ObjectRecord, Problem
from .stream import fetch_object

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import HeadObjectOutputTypeDef

# Attempts named in messages: the first try and the retrier's five retries.
_ATTEMPTS = 6
# Objects downloaded and hashed on each call even when the store vouches for their checksum.
SAMPLE = 8


@dataclass
class _Seen:
    """What the target says of one object."""

    size: int
    sha256: str
    content_type: str | None
    cache_control: str | None


def store_sha256(head: HeadObjectOutputTypeDef) -> str | None:
    """The hex SHA-256 of the whole object that a HEAD reports, if it reports one.

    A composite checksum (``<base64>-<parts>``, a hash of the parts' hashes) is not a hash
    of the object's bytes, so it counts as none.
    """
    value = head.get("ChecksumSHA256")
    if not value or head.get("ChecksumType", "FULL_OBJECT") != "FULL_OBJECT":
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest.hex() if len(digest) == 32 else None


@dataclass
class _Checker:
    client: S3Client
    endpoint: S3Endpoint
    retrier: Retrier
    # Set once the target refuses ChecksumMode: every object is then downloaded.
    no_checksums: threading.Event = field(default_factory=threading.Event)

    def from_head(self, record: ObjectRecord) -> _Seen | None:
        """The object as its HEAD describes it; None when it carries no SHA-256 (or the
        target refuses the request), so it must be downloaded."""
        if self.no_checksums.is_set():
            return None
        try:
            head = self.retrier.call(
                lambda: self.client.head_object(
                    Bucket=record.bucket, Key=record.key, ChecksumMode="ENABLED"
                )
            )
        except ClientError as exc:
            if is_gone(exc) or error_code(exc)[1] == 404:
                raise
            if error_code(exc)[1] in (400, 501):  # a server that does not know the header
                self.no_checksums.set()
            return None  # the download proves the object, or says precisely what is wrong
        digest = store_sha256(head)
        if digest is None:
            return None
        return _Seen(
            int(head.get("ContentLength", 0)),
            digest,
            head.get("ContentType"),
            head.get("CacheControl"),
        )

    def download(self, record: ObjectRecord) -> _Seen:
        got = fetch_object(self.client, record.bucket, record.key, None, self.retrier, None, None)
        return _Seen(got.size, got.sha256, got.content_type, got.cache_control)


def _check(checker: _Checker, record: ObjectRecord, download: bool) -> list[ObjectProblem]:
    """How the target's copy of ``record`` differs from it (nothing when it matches)."""

    def problem(kind: Problem, expected: str, actual: str) -> ObjectProblem:
        return ObjectProblem(record.bucket, record.key, kind, expected, actual)

    endpoint = checker.endpoint
    where = f"bucket {record.bucket!r}, key {record.key!r}"
    try:
        got = None if download else checker.from_head(record)
        if got is None:
            got = checker.download(record)
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
    sample: int = SAMPLE,
) -> list[ObjectProblem]:
    """Compare every recorded object on ``endpoint`` with its record.

    Compares size, SHA-256, Content-Type and Cache-Control (headers only where recorded):
    from the store's own checksum where it reports one, and from a download of the object
    otherwise and for ``sample`` objects picked at random (see the module's docstring).
    With ``buckets``, objects in those buckets that are not recorded are "unexpected".
    Raises StorageError when the endpoint cannot be read at all (unreachable, denied).
    """
    stop = threading.Event()
    retrier = Retrier(_ATTEMPTS - 1, None, stop)
    client = make_client(endpoint, max_attempts=1, max_pool_connections=max(16, concurrency))
    checker = _Checker(client, endpoint, retrier)
    chosen = set(random.sample(range(len(objects)), min(max(0, sample), len(objects))))
    downloads = (i in chosen for i in range(len(objects)))

    problems: list[ObjectProblem] = []
    try:
        with ThreadPoolExecutor(
            max_workers=max(1, concurrency), thread_name_prefix="s3-verify"
        ) as pool:
            pairs = zip(objects, downloads, strict=True)
            for found in bounded_map(
                pool, lambda pair: _check(checker, *pair), pairs, window=4 * concurrency
            ):
                problems.extend(found)
    except BaseException:
        stop.set()
        raise

    if buckets is not None:
        problems.extend(_unexpected(client, endpoint, retrier, objects, buckets))
    problems.sort(key=lambda p: (p.bucket, p.key, p.problem))
    return problems
