"""Storage objects over the S3 protocol: download, upload and verify with bounded memory.

Supabase's own backups leave Storage files out, so the drill copies every object of every
bucket itself. Objects are streamed in 1 MiB chunks and hashed while they are written, so
memory does not grow with object size; files are stored by content address
(``objects/<sha[:2]>/<sha>``), so an object key never becomes a file name and identical
bytes are stored once.

Supabase's endpoint (``https://<ref>.supabase.co/storage/v1/s3``) needs path-style
addressing and SigV4, and rejects ``Content-MD5`` and ``x-amz-checksum-*``; the client is
configured for that, and takes everything (keys, region, CA) from the :class:`S3Endpoint`,
never from ``AWS_*`` variables or ``~/.aws``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol, TypeVar

import boto3.session
import botocore.loaders
import botocore.session
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.configprovider import (
    BOTOCORE_DEFAUT_SESSION_VARIABLES,
    DEFAULT_PROXIES_CONFIG_VARS,
    DEFAULT_S3_CONFIG_VARS,
    ConfigChainFactory,
    ConfigValueStore,
    SectionConfigProvider,
)
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.exceptions import SSLError as BotoSSLError
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from .config import mask_url
from .errors import BackupError, StorageError
from .s3server import S3Endpoint

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import (
        GetObjectOutputTypeDef,
        ListObjectsV2OutputTypeDef,
        ObjectTypeDef,
    )

log = logging.getLogger(__name__)

CHUNK = 1 << 20
# Parts of 8 MiB: above S3's 5 MiB minimum, and what one upload holds in memory at a time.
MULTIPART_CHUNK = 8 << 20
# How often one object may change under us before the download gives up on it.
MAX_CHANGES = 3
_BACKOFF_BASE = 0.2
_BACKOFF_CAP = 5.0
_SHA256 = re.compile(r"[0-9a-f]{64}")

T = TypeVar("T")
Problem = Literal["missing", "size", "sha256", "content_type", "cache_control", "unexpected"]


# --------------------------------------------------------------------------- client


_LOADER_LOCK = threading.Lock()
_LOADER: botocore.loaders.Loader | None = None


def _shared_loader() -> botocore.loaders.Loader:
    """One loader for all clients: each would otherwise parse its own copy of the S3 model
    (about 12 MiB of Python objects and 0.4 s)."""
    global _LOADER
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = botocore.loaders.create_loader()
        return _LOADER


def _isolated_botocore_session() -> botocore.session.Session:
    """A botocore session that reads no ``AWS_*`` variable and no ``~/.aws`` file.

    The machine's environment may point at another CA bundle, profile, endpoint or retry
    policy; a backup drill must behave the same wherever it runs, so every setting keeps
    only its built-in default unless we pass it explicitly.
    """
    session = botocore.session.Session()
    factory = ConfigChainFactory(session=session, environ={})

    def chains(variables: dict[str, tuple[Any, ...]]) -> dict[str, Any]:
        return {
            name: factory.create_config_chain(
                instance_name=name, default=spec[2], conversion_func=spec[3]
            )
            for name, spec in variables.items()
        }

    mapping = chains(BOTOCORE_DEFAUT_SESSION_VARIABLES)
    mapping["s3"] = SectionConfigProvider("s3", session, chains(DEFAULT_S3_CONFIG_VARS))
    mapping["proxies_config"] = SectionConfigProvider(
        "proxies_config", session, chains(DEFAULT_PROXIES_CONFIG_VARS)
    )
    session.register_component("config_store", ConfigValueStore(mapping=mapping))
    session.register_component("data_loader", _shared_loader())
    # Section providers still read the config file: point it (and credentials) at nothing.
    session.set_config_variable("config_file", os.devnull)
    session.set_config_variable("credentials_file", os.devnull)
    return session


def make_client(
    endpoint: S3Endpoint,
    *,
    max_attempts: int = 5,
    connect_timeout: float = 10,
    read_timeout: float = 60,
    max_pool_connections: int = 16,
    verify: bool | str = True,
) -> S3Client:
    """A thread-safe boto3 S3 client for ``endpoint``: path-style, SigV4, no optional checksums.

    ``max_attempts`` counts the first try (1 disables botocore's own retries).
    ``verify`` is True (the bundled CA certificates) or the path of a CA bundle; the
    ``AWS_CA_BUNDLE``/``REQUESTS_CA_BUNDLE`` variables are deliberately not consulted.
    """
    config = BotoConfig(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"mode": "standard", "total_max_attempts": max(1, max_attempts)},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=max_pool_connections,
        # Supabase rejects Content-MD5 and x-amz-checksum-*; botocore >= 1.36 sends them
        # by default.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    session = boto3.session.Session(botocore_session=_isolated_botocore_session())
    return session.client(
        "s3",
        endpoint_url=endpoint.url,
        region_name=endpoint.region,
        aws_access_key_id=endpoint.access_key_id,
        aws_secret_access_key=endpoint.secret_access_key,
        verify=verify,
        config=config,
    )


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class ObjectRecord:
    """One Storage object as recorded in the manifest. ``sha256`` addresses its bytes."""

    bucket: str
    key: str
    size: int
    etag: str
    sha256: str
    content_type: str | None
    cache_control: str | None
    last_modified: str | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the manifest's ``storage.objects`` entry)."""
        return {
            "bucket": self.bucket,
            "key": self.key,
            "size": self.size,
            "etag": self.etag,
            "sha256": self.sha256,
            "content_type": self.content_type,
            "cache_control": self.cache_control,
            "last_modified": self.last_modified,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ObjectRecord:
        """Parse a manifest entry. Raises BackupError naming the bad field."""

        def text(name: str, optional: bool = False) -> Any:
            value = d.get(name)
            if value is None and optional:
                return None
            if not isinstance(value, str):
                raise BackupError(f"manifest storage object: field {name!r} is not a string.")
            return value

        if not isinstance(d, dict):
            raise BackupError("manifest storage object: entry is not an object.")
        size = d.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BackupError("manifest storage object: field 'size' is not a byte count.")
        sha = text("sha256")
        if not _SHA256.fullmatch(sha):
            raise BackupError("manifest storage object: field 'sha256' is not a SHA-256.")
        return cls(
            bucket=text("bucket"),
            key=text("key"),
            size=size,
            etag=text("etag"),
            sha256=sha,
            content_type=text("content_type", optional=True),
            cache_control=text("cache_control", optional=True),
            last_modified=text("last_modified", optional=True),
        )


def object_path(root: Path, sha256: str) -> Path:
    """Where the bytes with this SHA-256 live: ``root/objects/<sha[:2]>/<sha>``.

    Only a validated hex digest ever becomes part of the path, so no object key ("..",
    a leading "/", unicode) and no tampered manifest can name a file outside ``root``.
    """
    if not _SHA256.fullmatch(sha256):
        raise BackupError(
            f"{sha256[:80]!r} is not a SHA-256 hex digest; the manifest's storage entry is corrupt."
        )
    return root / "objects" / sha256[:2] / sha256


@dataclass
class TransferResult:
    """What a download or upload did. ``errors`` name bucket and key, never secrets."""

    objects: list[ObjectRecord] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ObjectProblem:
    """One difference between the recorded objects and a target object store."""

    bucket: str
    key: str
    problem: Problem
    expected: str
    actual: str

    def message(self) -> str:
        """One line for a test failure or the verdict."""
        where = f"'{self.bucket}/{self.key}'"
        if self.problem == "missing":
            return f"{where}: missing from the target (expected {self.expected})"
        if self.problem == "unexpected":
            return f"{where}: present in the target ({self.actual}) but not in the backup"
        if self.problem == "size":
            return f"{where}: size differs (expected {self.expected} bytes, found {self.actual})"
        if self.problem == "sha256":
            return (
                f"{where}: content differs (SHA-256 expected {self.expected[:12]}…, "
                f"found {self.actual[:12]}…)"
            )
        header = "Content-Type" if self.problem == "content_type" else "Cache-Control"
        return f"{where}: {header} differs (expected {self.expected!r}, found {self.actual!r})"


# --------------------------------------------------------------------------- errors and retries


class _Changed(Exception):
    """The object's ETag is no longer the one we asked for."""


class _Stopped(Exception):
    """The transfer is being abandoned (a fatal error elsewhere, or Ctrl-C)."""


class _Fatal(StorageError):
    """The endpoint as a whole is unusable (unreachable, wrong keys): stop everything."""


_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
        "Throttling",
        "ThrottlingException",
        "TooManyRequests",
        "RequestLimitExceeded",
    }
)
_CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AuthorizationHeaderMalformed",
        "InvalidToken",
        "ExpiredToken",
        "InvalidSignature",
    }
)
# Faults of one connection or one response: worth another try.
_TRANSIENT_IO = (
    ConnectionClosedError,
    ReadTimeoutError,
    ResponseStreamingError,
    IncompleteReadError,
    Urllib3HTTPError,
    ConnectionResetError,
    BrokenPipeError,
)
# Faults of reaching the endpoint at all: retried, then fatal for the whole transfer.
_UNREACHABLE = (EndpointConnectionError, ConnectTimeoutError)


def _code(exc: ClientError) -> tuple[str, int]:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(error.get("Code", "")), int(status or 0)


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        code, status = _code(exc)
        return code in _TRANSIENT_CODES or status in (429, 500, 502, 503, 504)
    return isinstance(exc, _TRANSIENT_IO + _UNREACHABLE)


def _is_precondition(exc: BaseException) -> bool:
    if not isinstance(exc, ClientError):
        return False
    code, status = _code(exc)
    return code == "PreconditionFailed" or status == 412


def _is_gone(exc: BaseException) -> bool:
    if not isinstance(exc, ClientError):
        return False
    code, status = _code(exc)
    return code in ("NoSuchKey", "NotFound") or (code == "404" and status == 404)


def _describe(exc: BaseException, endpoint: S3Endpoint) -> str:
    """The exception as text with the secret key removed (botocore never includes it, but a
    proxy's or server's error body might echo request headers)."""
    text = f"{type(exc).__name__}: {exc}"
    secret = endpoint.secret_access_key
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text


def _hint(exc: BaseException, endpoint: S3Endpoint) -> str:
    """What to check, for an error that retrying will not fix."""
    where = f"endpoint {mask_url(endpoint.url)}, region {endpoint.region!r}"
    if isinstance(exc, ClientError):
        code, status = _code(exc)
        if code in _CREDENTIAL_CODES:
            return (
                f"Check the S3 access key id and secret key (Storage > S3 access keys) "
                f"and the region ({where})."
            )
        if code in ("AccessDenied", "Forbidden") or status == 403:
            return (
                f"Access was denied: check that the S3 access keys belong to this project "
                f"and may read every bucket, and the region ({where})."
            )
        if code == "NoSuchBucket":
            return f"The bucket does not exist at {where}: check the bucket name and endpoint."
        if code in ("PermanentRedirect", "IllegalLocationConstraintException"):
            return f"Check the region: the server refused {where}."
        return f"Check the endpoint, keys and region ({where})."
    if isinstance(exc, BotoSSLError):
        return f"TLS failed: check the endpoint URL and its certificate ({where})."
    if isinstance(exc, _UNREACHABLE):
        return f"Could not connect: check the endpoint URL and network access ({where})."
    return f"Check the endpoint and network ({where})."


class _Retrier:
    """Exponential backoff with full jitter, bounded by attempts and by a deadline."""

    def __init__(self, retries: int, deadline: float | None, stop: threading.Event) -> None:
        self.retries = max(0, retries)
        self.deadline = deadline
        self.stop = stop

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def pause(self, failures: int) -> bool:
        """Sleep before retry number ``failures``; False when no retry is left."""
        if failures > self.retries or self.stop.is_set():
            return False
        delay = random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** (failures - 1)))
        if self.deadline is not None and time.monotonic() + delay >= self.deadline:
            return False
        # Event.wait, not sleep: a fatal error elsewhere ends the wait at once.
        return not self.stop.wait(delay)

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()``, retried on transient faults. Re-raises the last fault."""
        failures = 0
        while True:
            try:
                return fn()
            except (ClientError, BotoCoreError, Urllib3HTTPError, OSError) as exc:
                if not _is_transient(exc):
                    raise
                failures += 1
                if not self.pause(failures):
                    raise


# --------------------------------------------------------------------------- listing


def list_buckets(client: S3Client) -> list[str]:
    """Names of every bucket the keys can see, sorted."""
    return sorted(b["Name"] for b in client.list_buckets().get("Buckets", []) if "Name" in b)


class _Call(Protocol):
    def __call__(self, fn: Callable[[], T], /) -> T: ...


def _direct(fn: Callable[[], T], /) -> T:
    return fn()


def _pages(
    client: S3Client, bucket: str, page_size: int | None, call: _Call
) -> Iterator[ObjectTypeDef]:
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if page_size is not None:
            kwargs["MaxKeys"] = page_size
        if token is not None:
            kwargs["ContinuationToken"] = token

        def request(kwargs: dict[str, Any] = kwargs) -> ListObjectsV2OutputTypeDef:
            return client.list_objects_v2(**kwargs)

        # Each page is retried on its own: a fault on page 40 does not restart the listing.
        page = call(request)
        yield from page.get("Contents", [])
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return


def iter_objects(
    client: S3Client, bucket: str, *, page_size: int | None = None
) -> Iterator[ObjectTypeDef]:
    """Every object of ``bucket`` (ListObjectsV2 entries), following continuation tokens.

    ``page_size`` caps the keys per page (the server's default, usually 1000, otherwise).
    """
    return _pages(client, bucket, page_size, _direct)


# --------------------------------------------------------------------------- streaming one object


@dataclass
class _Fetched:
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


def _fetch(
    client: S3Client,
    bucket: str,
    key: str,
    sink: IO[bytes] | None,
    retrier: _Retrier,
    etag: str | None,
    refresh_etag: Callable[[], str] | None,
) -> _Fetched:
    """Stream one object into ``sink`` (or only hash it), resuming after a cut connection.

    With ``etag``, every request carries ``If-Match``; when the object changes, the write
    starts over with the ETag ``refresh_etag()`` reports, at most MAX_CHANGES times.
    Raises ``_Changed``, or the last botocore fault.
    """
    failures = 0
    changes = 0
    offset = 0
    digest = hashlib.sha256()
    meta: GetObjectOutputTypeDef | None = None
    total: int | None = None

    def restart() -> None:
        nonlocal offset, digest, meta, total
        offset, digest, meta, total = 0, hashlib.sha256(), None, None
        if sink is not None:
            sink.seek(0)
            sink.truncate()

    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if etag is not None:
            kwargs["IfMatch"] = etag
        if offset:
            kwargs["Range"] = f"bytes={offset}-"
        try:
            response = client.get_object(**kwargs)
            got_etag = response.get("ETag", "")
            if etag is not None and got_etag.strip('"') != etag.strip('"'):
                response["Body"].close()
                raise _Changed  # a server that ignores If-Match
            size = _total_size(response, offset)
            if size is None:
                response["Body"].close()
                restart()
                continue
            if meta is None:
                meta, total = response, size
            body = response["Body"]
            try:
                while chunk := body.read(CHUNK):
                    if retrier.stop.is_set():
                        raise _Stopped
                    digest.update(chunk)
                    if sink is not None:
                        sink.write(chunk)
                    offset += len(chunk)
            finally:
                body.close()
            if offset != total:
                raise IncompleteReadError(actual_bytes=offset, expected_bytes=total or 0)
            return _Fetched(
                size=offset,
                sha256=digest.hexdigest(),
                etag=meta.get("ETag", "").strip('"'),
                content_type=meta.get("ContentType"),
                cache_control=meta.get("CacheControl"),
                last_modified=meta["LastModified"].isoformat() if "LastModified" in meta else None,
            )
        except (_Changed, ClientError) as exc:
            if isinstance(exc, ClientError) and not _is_precondition(exc):
                if not _is_transient(exc):
                    raise
                failures += 1
                if not retrier.pause(failures):
                    raise
                continue
            changes += 1
            if refresh_etag is None or changes > MAX_CHANGES:
                raise _Changed from None
            etag = retrier.call(refresh_etag)
            restart()
        except (BotoCoreError, Urllib3HTTPError, ConnectionResetError, BrokenPipeError) as exc:
            if not _is_transient(exc):
                raise
            failures += 1
            if not retrier.pause(failures):
                raise
            # Keep what was written and hashed: the next request asks for the rest only.


# --------------------------------------------------------------------------- download


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


class _Skipped:
    """The deadline passed before this object's turn came."""


_SKIPPED = _Skipped()


class _Downloader:
    def __init__(
        self, endpoint: S3Endpoint, dest: Path, client: S3Client, retrier: _Retrier
    ) -> None:
        self.endpoint = endpoint
        self.dest = dest
        self.client = client
        self.retrier = retrier
        self.objects_dir = _private_dir(dest / "objects")
        self._dirs: set[str] = set()
        self._lock = threading.Lock()

    def _shard(self, sha: str) -> Path:
        path = object_path(self.dest, sha).parent
        with self._lock:
            if sha[:2] not in self._dirs:
                _private_dir(path)
                self._dirs.add(sha[:2])
        return path

    def one(self, bucket: str, listed: ObjectTypeDef) -> ObjectRecord | str | _Skipped | None:
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

                fetched = _fetch(
                    self.client, bucket, key, sink, self.retrier, listed.get("ETag"), head
                )
            target = self._shard(fetched.sha256) / fetched.sha256
            # Same bytes, same name: replacing an identical file is harmless and atomic.
            os.replace(tmp, target)
        except _Stopped:
            return _SKIPPED
        except _Changed:
            return (
                f"{where}: the object kept changing during the download "
                f"({MAX_CHANGES + 1} ETags seen); run the drill again when writes to it "
                f"have settled."
            )
        except (ClientError, BotoCoreError, Urllib3HTTPError, OSError) as exc:
            if _is_gone(exc):
                log.info("storage: an object was deleted during the download (%s)", bucket)
                return None
            if isinstance(exc, _UNREACHABLE) or (
                isinstance(exc, ClientError) and _code(exc)[0] in _CREDENTIAL_CODES
            ):
                raise _Fatal(
                    f"Storage download stopped at {where}: {_describe(exc, self.endpoint)}. "
                    f"{_hint(exc, self.endpoint)}"
                ) from None
            if isinstance(exc, OSError) and not isinstance(exc, _TRANSIENT_IO):
                return f"{where}: could not write the backup file under {self.dest}: {exc}"
            retried = " after retries" if _is_transient(exc) else ""
            return (
                f"{where}: download failed{retried}: {_describe(exc, self.endpoint)}. "
                f"{_hint(exc, self.endpoint)}"
            )
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


def _endpoint_error(action: str, exc: BaseException, endpoint: S3Endpoint, attempts: int) -> str:
    tries = f" ({attempts} attempts)" if _is_transient(exc) else ""
    return f"{action} failed{tries}: {_describe(exc, endpoint)}. {_hint(exc, endpoint)}"


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
) -> TransferResult:
    """Download every object of ``buckets`` (default: all buckets) into ``dest``.

    Setting ``cancel`` (from another thread) stops the download with a StorageError.

    Bytes go to ``dest/objects/<sha[:2]>/<sha>`` (files 0600, directories 0700). Objects
    that fail are listed in ``errors`` with bucket, key and what to check; an endpoint that
    cannot be reached or refuses the keys raises StorageError. Transient faults are retried
    ``retries`` times with backoff, never past ``deadline_seconds`` from the start.
    """
    started = time.monotonic()
    deadline = None if deadline_seconds is None else started + deadline_seconds
    stop = threading.Event()
    retrier = _Retrier(retries, deadline, stop)
    # botocore's own retries are off: this module retries, so attempts do not multiply and
    # the deadline holds.
    client = make_client(endpoint, max_attempts=1, max_pool_connections=max(16, concurrency))
    _private_dir(dest)
    downloader = _Downloader(endpoint, dest, client, retrier)
    result = TransferResult()
    say = progress or (lambda _msg: None)

    try:
        names = list(buckets) if buckets is not None else retrier.call(lambda: list_buckets(client))
    except (ClientError, BotoCoreError, Urllib3HTTPError, OSError) as exc:
        raise StorageError(
            _endpoint_error("Listing the Storage buckets", exc, endpoint, retries + 1)
        ) from None

    skipped = 0
    last_report = started
    pending: set[Future[ObjectRecord | str | _Skipped | None]] = set()

    def collect(done: Iterable[Future[ObjectRecord | str | _Skipped | None]]) -> None:
        nonlocal skipped
        for future in done:
            outcome = future.result()  # _Fatal propagates from here
            if isinstance(outcome, ObjectRecord):
                result.objects.append(outcome)
                result.bytes += outcome.size
            elif isinstance(outcome, str):
                result.errors.append(outcome)
            elif isinstance(outcome, _Skipped):
                skipped += 1

    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="s3-download")
    try:
        for bucket in names:
            say(f"storage: downloading bucket {bucket!r}")
            listing = _pages(client, bucket, page_size, retrier.call)
            try:
                for listed in listing:
                    if cancel is not None and cancel.is_set():
                        raise StorageError("The Storage download was cancelled.")
                    if retrier.expired():
                        skipped += 1
                        continue
                    pending.add(pool.submit(downloader.one, bucket, listed))
                    # Bounded in-flight work: memory follows the listing, not a backlog.
                    if len(pending) >= 2 * max(1, concurrency):
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        collect(done)
                    if time.monotonic() - last_report >= 2:
                        last_report = time.monotonic()
                        say(
                            f"storage: {len(result.objects)} objects, "
                            f"{result.bytes / (1 << 20):.1f} MiB downloaded"
                        )
            except (ClientError, BotoCoreError, Urllib3HTTPError, OSError) as exc:
                message = _endpoint_error(f"Listing bucket {bucket!r}", exc, endpoint, retries + 1)
                if isinstance(exc, _UNREACHABLE) or (
                    isinstance(exc, ClientError) and _code(exc)[0] in _CREDENTIAL_CODES
                ):
                    raise StorageError(message) from None
                result.errors.append(message)
        collect(pending)
        pending = set()
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

    if skipped:
        result.errors.append(
            f"The storage deadline of {deadline_seconds or 0:g} s passed: {skipped} objects were "
            f"not downloaded. Raise the deadline or lower the load on the endpoint."
        )
    result.objects.sort(key=lambda o: (o.bucket, o.key))
    result.seconds = time.monotonic() - started
    say(
        f"storage: downloaded {len(result.objects)} objects "
        f"({result.bytes / (1 << 20):.1f} MiB) from {len(names)} buckets "
        f"in {result.seconds:.1f} s"
    )
    return result


# --------------------------------------------------------------------------- upload


def _ensure_bucket(client: S3Client, endpoint: S3Endpoint, bucket: str) -> None:
    try:
        client.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        code, status = _code(exc)
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
                if _code(exc)[0] not in ("InvalidLocationConstraint", "MalformedXML"):
                    raise
                client.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if _code(exc)[0] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise


def upload_all(
    endpoint: S3Endpoint,
    objects: Sequence[ObjectRecord],
    src: Path,
    *,
    concurrency: int = 8,
    progress: Callable[[str], None] | None = None,
    create_buckets: bool = True,
) -> TransferResult:
    """Upload each recorded object from the content-addressed files under ``src``.

    Keeps Content-Type and Cache-Control; objects above 8 MiB go up in 8 MiB multipart
    parts, one part in memory at a time. Missing buckets are created unless
    ``create_buckets`` is False. Failures are listed in ``errors`` with bucket and key.
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

    usable: set[str] = set()
    for bucket in sorted({o.bucket for o in objects}):
        try:
            if create_buckets:
                _ensure_bucket(client, endpoint, bucket)
            usable.add(bucket)
        except (ClientError, BotoCoreError) as exc:
            if isinstance(exc, _UNREACHABLE):
                raise StorageError(
                    _endpoint_error("Preparing the staging buckets", exc, endpoint, 5)
                ) from None
            result.errors.append(
                f"bucket {bucket!r}: could not be created: {_describe(exc, endpoint)}. "
                f"{_hint(exc, endpoint)}"
            )

    def one(record: ObjectRecord) -> str | None:
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
            return f"{where}: upload failed: {_describe(exc, endpoint)}. {_hint(cause, endpoint)}"
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
        for record, error in zip(todo, pool.map(one, todo), strict=True):
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


# --------------------------------------------------------------------------- verify


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
    retrier = _Retrier(5, None, stop)
    client = make_client(endpoint, max_attempts=1, max_pool_connections=max(16, concurrency))

    def check(record: ObjectRecord) -> list[ObjectProblem]:
        def problem(kind: Problem, expected: str, actual: str) -> ObjectProblem:
            return ObjectProblem(record.bucket, record.key, kind, expected, actual)

        try:
            got = _fetch(client, record.bucket, record.key, None, retrier, None, None)
        except ClientError as exc:
            if _is_gone(exc) or _code(exc)[0] == "NoSuchBucket":
                return [problem("missing", f"{record.size} bytes", "absent")]
            raise StorageError(
                f"Verifying bucket {record.bucket!r}, key {record.key!r} failed: "
                f"{_describe(exc, endpoint)}. {_hint(exc, endpoint)}"
            ) from None
        except (BotoCoreError, Urllib3HTTPError, OSError) as exc:
            raise StorageError(
                _endpoint_error(
                    f"Verifying bucket {record.bucket!r}, key {record.key!r}", exc, endpoint, 6
                )
            ) from None
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
        expected = {(o.bucket, o.key) for o in objects}
        for bucket in buckets:
            try:
                for listed in _pages(client, bucket, None, retrier.call):
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
                if _code(exc)[0] == "NoSuchBucket":
                    continue  # its recorded objects are already reported missing
                raise StorageError(
                    _endpoint_error(f"Listing bucket {bucket!r}", exc, endpoint, 6)
                ) from None
            except (BotoCoreError, Urllib3HTTPError, OSError) as exc:
                raise StorageError(
                    _endpoint_error(f"Listing bucket {bucket!r}", exc, endpoint, 6)
                ) from None
    problems.sort(key=lambda p: (p.bucket, p.key, p.problem))
    return problems
