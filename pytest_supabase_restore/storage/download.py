"""Download: every object of every bucket into the backup set, with bounded memory.

Supabase's own backups leave Storage files out, so the drill copies every object itself.
Objects stream through :mod:`.stream` and land under their content address (see
:mod:`.records`); files are 0600 and directories 0700. Transient faults are retried with
backoff, within a deadline; an endpoint that cannot be reached or refuses the keys stops
the whole download at once.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import StorageError
from .client import iter_objects, list_buckets, make_client
from .endpoint import S3Endpoint
from .faults import (
    FAULTS,
    TRANSIENT_IO,
    Retrier,
    describe,
    endpoint_error,
    hint,
    is_fatal,
    is_gone,
    is_transient,
)
from .records import ObjectRecord, TransferResult, object_path
from .stream import MAX_CHANGES, Changed, Stopped, fetch_object

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectTypeDef

log = logging.getLogger(__name__)


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


class _Skipped:
    """The deadline passed before this object's turn came."""


_SKIPPED = _Skipped()

# What downloading one object comes to: its record, an error message, skipped, or None
# when it was deleted meanwhile.
_Outcome = ObjectRecord | str | _Skipped | None


def expected_total(rows: Sequence[tuple[str, str, int | None]]) -> tuple[int, int | None]:
    """The progress total of a download from the source's ``storage.objects`` rows (bucket,
    key, size): their count, and their bytes when every row records a size (None otherwise)."""
    sizes = [size for _bucket, _key, size in rows]
    known = [int(n) for n in sizes if n is not None]
    return len(rows), sum(known) if len(known) == len(sizes) else None


def progress_line(
    objects: int, size: int, expected: tuple[int, int | None] | None, started: float
) -> str:
    """What is downloaded so far; with the totals ``storage.objects`` lists, the share and
    the time left at the average rate since ``started`` (a monotonic time)."""
    from ..progress import Amount, eta_seconds, format_amount

    if expected is None:
        return f"storage: {objects} objects, {size / (1 << 20):.1f} MiB downloaded"
    amount = Amount("downloaded", size, expected[1], objects, expected[0])
    eta = eta_seconds(amount, (started, 0), time.monotonic())
    return f"storage: {format_amount(amount, None, eta)} (totals from storage.objects)"


class _Fatal(StorageError):
    """The endpoint as a whole is unusable (unreachable, wrong keys): stop everything."""


class _Download:
    """One download: objects fetched on a pool of threads, their outcomes gathered here."""

    def __init__(
        self,
        endpoint: S3Endpoint,
        dest: Path,
        client: S3Client,
        retrier: Retrier,
        concurrency: int,
        say: Callable[[str], None],
        expected: tuple[int, int | None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.expected = expected  # (objects, bytes) storage.objects lists: the progress total
        self.started = time.monotonic()
        self.dest = dest
        self.client = client
        self.retrier = retrier
        self.concurrency = max(1, concurrency)
        self.say = say
        self.objects_dir = _private_dir(dest / "objects")
        self.result = TransferResult()
        self.skipped = 0
        self._dirs: set[str] = set()
        self._lock = threading.Lock()
        self._pending: set[Future[_Outcome]] = set()
        self._last_report = time.monotonic()

    # -- on the pool's threads

    def _shard(self, sha: str) -> Path:
        path = object_path(self.dest, sha).parent
        with self._lock:
            if sha[:2] not in self._dirs:
                _private_dir(path)
                self._dirs.add(sha[:2])
        return path

    def one(self, bucket: str, listed: ObjectTypeDef) -> _Outcome:
        """Download one object: its record, an error message, or None if it was deleted."""
        if self.retrier.expired():
            return _SKIPPED
        key = listed["Key"]
        where = f"bucket {bucket!r}, key {key!r}"
        fd, tmp_name = tempfile.mkstemp(prefix=".download-", dir=self.objects_dir)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "w+b") as sink:

                def head() -> str:
                    return self.client.head_object(Bucket=bucket, Key=key)["ETag"]

                fetched = fetch_object(
                    self.client, bucket, key, sink, self.retrier, listed.get("ETag"), head
                )
            target = self._shard(fetched.sha256) / fetched.sha256
            # Same bytes, same name: replacing an identical file is harmless and atomic.
            os.replace(tmp, target)
        except Stopped:
            return _SKIPPED
        except Changed:
            return (
                f"{where}: the object kept changing during the download "
                f"({MAX_CHANGES + 1} ETags seen); run the drill again when writes to it "
                f"have settled."
            )
        except FAULTS as exc:
            return self._failure(bucket, where, exc)
        finally:
            tmp.unlink(missing_ok=True)
        return ObjectRecord(
            bucket=bucket,
            key=key,
            size=fetched.size,
            etag=fetched.etag,
            sha256=fetched.sha256,
            content_type=fetched.content_type,
            cache_control=fetched.cache_control,
            last_modified=fetched.last_modified,
        )

    def _failure(self, bucket: str, where: str, exc: BaseException) -> str | None:
        """The error message for one object's fault; None if it was deleted meanwhile.
        Raises _Fatal when the fault ends the whole download."""
        if is_gone(exc):
            log.info("storage: an object was deleted during the download (%s)", bucket)
            return None
        if is_fatal(exc):
            raise _Fatal(
                f"Storage download stopped at {where}: {describe(exc, self.endpoint)}. "
                f"{hint(exc, self.endpoint)}"
            ) from None
        if isinstance(exc, OSError) and not isinstance(exc, TRANSIENT_IO):
            return f"{where}: could not write the backup file under {self.dest}: {exc}"
        retried = " after retries" if is_transient(exc) else ""
        return (
            f"{where}: download failed{retried}: {describe(exc, self.endpoint)}. "
            f"{hint(exc, self.endpoint)}"
        )

    # -- on the calling thread

    def collect(self, done: Iterable[Future[_Outcome]]) -> None:
        for future in done:
            outcome = future.result()  # _Fatal propagates from here
            if isinstance(outcome, ObjectRecord):
                self.result.objects.append(outcome)
                self.result.bytes += outcome.size
            elif isinstance(outcome, str):
                self.result.errors.append(outcome)
            elif isinstance(outcome, _Skipped):
                self.skipped += 1

    def submit(self, pool: ThreadPoolExecutor, bucket: str, listed: ObjectTypeDef) -> None:
        self._pending.add(pool.submit(self.one, bucket, listed))
        # Bounded in-flight work: memory follows the listing, not a backlog.
        if len(self._pending) >= 2 * self.concurrency:
            done, self._pending = wait(self._pending, return_when=FIRST_COMPLETED)
            self.collect(done)
        if time.monotonic() - self._last_report >= 2:
            self._last_report = time.monotonic()
            self.say(self.progress_line())

    def progress_line(self) -> str:
        return progress_line(
            len(self.result.objects), self.result.bytes, self.expected, self.started
        )

    def bucket(
        self,
        pool: ThreadPoolExecutor,
        bucket: str,
        page_size: int | None,
        cancel: threading.Event | None,
    ) -> None:
        """Hand every object of ``bucket`` to the pool as the listing goes."""
        self.say(f"storage: downloading bucket {bucket!r}")
        listing = iter_objects(self.client, bucket, page_size=page_size, call=self.retrier.call)
        try:
            for listed in listing:
                if cancel is not None and cancel.is_set():
                    raise StorageError("The Storage download was cancelled.")
                if self.retrier.expired():
                    self.skipped += 1
                    continue
                self.submit(pool, bucket, listed)
        except FAULTS as exc:
            message = endpoint_error(
                f"Listing bucket {bucket!r}", exc, self.endpoint, self.retrier.retries + 1
            )
            if is_fatal(exc):
                raise StorageError(message) from None
            self.result.errors.append(message)

    def finish(self) -> None:
        self.collect(self._pending)
        self._pending = set()


def _bucket_names(
    client: S3Client, endpoint: S3Endpoint, buckets: Sequence[str] | None, retrier: Retrier
) -> list[str]:
    if buckets is not None:
        return list(buckets)
    try:
        return retrier.call(lambda: list_buckets(client))
    except FAULTS as exc:
        raise StorageError(
            endpoint_error("Listing the Storage buckets", exc, endpoint, retrier.retries + 1)
        ) from None


def download_all(
    endpoint: S3Endpoint,
    dest: Path,
    buckets: Sequence[str] | None = None,
    *,
    concurrency: int = 8,
    progress: Callable[[str], None] | None = None,
    retries: int = 5,
    deadline_seconds: float | None = None,
    page_size: int | None = None,
    cancel: threading.Event | None = None,
    expected: tuple[int, int | None] | None = None,
) -> TransferResult:
    """Download every object of ``buckets`` (default: all buckets) into ``dest``.

    Setting ``cancel`` (from another thread) stops the download with a StorageError.
    ``expected`` (objects, bytes; bytes None when unknown) is what the progress lines count
    against: what the source's ``storage.objects`` lists.

    Bytes go to ``dest/objects/<sha[:2]>/<sha>`` (files 0600, directories 0700). Objects
    that fail are listed in ``errors`` with bucket, key and what to check; an endpoint that
    cannot be reached or refuses the keys raises StorageError. Transient faults are retried
    ``retries`` times with backoff, never past ``deadline_seconds`` from the start.
    """
    started = time.monotonic()
    deadline = None if deadline_seconds is None else started + deadline_seconds
    stop = threading.Event()
    retrier = Retrier(retries, deadline, stop)
    # botocore's own retries are off: this package retries, so attempts do not multiply and
    # the deadline holds.
    client = make_client(endpoint, max_attempts=1, max_pool_connections=max(16, concurrency))
    _private_dir(dest)
    say = progress or (lambda _msg: None)
    download = _Download(endpoint, dest, client, retrier, concurrency, say, expected)
    names = _bucket_names(client, endpoint, buckets, retrier)

    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="s3-download")
    try:
        for bucket in names:
            download.bucket(pool, bucket, page_size, cancel)
        download.finish()
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

    result = download.result
    if download.skipped:
        result.errors.append(
            f"The storage deadline of {deadline_seconds or 0:g} s passed: {download.skipped} "
            f"objects were not downloaded. Raise the deadline or lower the load on the endpoint."
        )
    result.objects.sort(key=lambda o: (o.bucket, o.key))
    result.seconds = time.monotonic() - started
    say(
        f"storage: downloaded {len(result.objects)} objects "
        f"({result.bytes / (1 << 20):.1f} MiB) from {len(names)} buckets "
        f"in {result.seconds:.1f} s"
    )
    return result
