"""Streaming one object: in 1 MiB chunks, hashed while written, resumed after a cut.

Memory does not grow with object size. Used by the download (into a file) and by the
verification (hashed only).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, IncompleteReadError
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from .faults import Retrier, is_precondition

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef

CHUNK = 1 << 20
# How often one object may change under us before the download gives up on it.
MAX_CHANGES = 3


class Changed(Exception):
    """The object's ETag is no longer the one we asked for."""


class Stopped(Exception):
    """The transfer is being abandoned (a fatal error elsewhere, or Ctrl-C)."""


@dataclass
class Fetched:
    """What one object turned out to be, once all its bytes went through."""

    size: int
    sha256: str
    etag: str
    content_type: str | None
    cache_control: str | None
    last_modified: str | None


def _total_size(response: GetObjectOutputTypeDef, offset: int) -> int | None:
    """The object's full size from a (possibly ranged) GetObject response."""
    content_range = response.get("ContentRange")
    if content_range:
        match = re.fullmatch(r"bytes (\d+)-\d+/(\d+)", content_range.strip())
        if not match or int(match.group(1)) != offset:
            return None
        return int(match.group(2))
    if offset:
        return None  # the server ignored Range: the caller starts over
    return int(response.get("ContentLength", 0))


class _Progress:
    """What was written and hashed so far: the next request asks for the rest only."""

    def __init__(self, sink: IO[bytes] | None) -> None:
        self.sink = sink
        self.restart()

    def restart(self) -> None:
        self.offset = 0
        self.digest = hashlib.sha256()
        self.meta: GetObjectOutputTypeDef | None = None
        self.total: int | None = None
        if self.sink is not None:
            self.sink.seek(0)
            self.sink.truncate()

    def request(self, bucket: str, key: str, etag: str | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if etag is not None:
            kwargs["IfMatch"] = etag
        if self.offset:
            kwargs["Range"] = f"bytes={self.offset}-"
        return kwargs

    def receive(
        self, response: GetObjectOutputTypeDef, etag: str | None, stop: threading.Event
    ) -> Fetched | None:
        """Take in one response; None when it cannot continue what came before (start over).

        Raises Changed, Stopped, or the fault that cut the body.
        """
        got_etag = response.get("ETag", "")
        if etag is not None and got_etag.strip('"') != etag.strip('"'):
            response["Body"].close()
            raise Changed  # a server that ignores If-Match
        size = _total_size(response, self.offset)
        if size is None:
            response["Body"].close()
            self.restart()
            return None
        if self.meta is None:
            self.meta, self.total = response, size
        body = response["Body"]
        try:
            while chunk := body.read(CHUNK):
                if stop.is_set():
                    raise Stopped
                self.digest.update(chunk)
                if self.sink is not None:
                    self.sink.write(chunk)
                self.offset += len(chunk)
        finally:
            body.close()
        if self.offset != self.total:
            raise IncompleteReadError(actual_bytes=self.offset, expected_bytes=self.total or 0)
        meta = self.meta
        return Fetched(
            size=self.offset,
            sha256=self.digest.hexdigest(),
            etag=meta.get("ETag", "").strip('"'),
            content_type=meta.get("ContentType"),
            cache_control=meta.get("CacheControl"),
            last_modified=meta["LastModified"].isoformat() if "LastModified" in meta else None,
        )


def fetch_object(
    client: S3Client,
    bucket: str,
    key: str,
    sink: IO[bytes] | None,
    retrier: Retrier,
    etag: str | None,
    refresh_etag: Callable[[], str] | None,
) -> Fetched:
    """Stream one object into ``sink`` (or only hash it), resuming after a cut connection.

    With ``etag``, every request carries ``If-Match``; when the object changes, the write
    starts over with the ETag ``refresh_etag()`` reports, at most MAX_CHANGES times.
    Raises ``Changed``, or the last botocore fault.
    """
    failures = 0
    changes = 0
    progress = _Progress(sink)
    while True:
        try:
            response = client.get_object(**progress.request(bucket, key, etag))
            fetched = progress.receive(response, etag, retrier.stop)
            if fetched is not None:
                return fetched
        except (Changed, ClientError) as exc:
            if isinstance(exc, ClientError) and not is_precondition(exc):
                failures += 1
                if not retrier.again(exc, failures):
                    raise
                continue
            changes += 1
            if refresh_etag is None or changes > MAX_CHANGES:
                raise Changed from None
            etag = retrier.call(refresh_etag)
            progress.restart()
        except (BotoCoreError, Urllib3HTTPError, ConnectionResetError, BrokenPipeError) as exc:
            failures += 1
            if not retrier.again(exc, failures):
                raise
