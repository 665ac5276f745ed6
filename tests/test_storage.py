"""Storage transfer against real S3-protocol servers (moto, in its own process, on loopback).

Faults are injected by a small TCP proxy written here (threads and sockets, loopback only)
that sits between the client and moto: it can cut a response mid-object, answer a request
itself (503 SlowDown, 403 AccessDenied) or change an object just before a GET reaches the
server. Nothing in the ``storage`` package is mocked.

The server checks every signature against its own key pair (test_sandbox shows a stranger's
key refused); the classification of InvalidAccessKeyId / SignatureDoesNotMatch here is
exercised by the 403 injected through the proxy (same code path: a permanent error, not
retried, message names what to check).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import stat
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from boto3.s3.transfer import TransferConfig

from pytest_supabase_restore.demo.project import s3_client
from pytest_supabase_restore.errors import BackupError, StorageError
from pytest_supabase_restore.pg.cluster import free_port
from pytest_supabase_restore.storage.client import iter_objects, list_buckets, make_client
from pytest_supabase_restore.storage.download import download_all
from pytest_supabase_restore.storage.endpoint import S3Endpoint
from pytest_supabase_restore.storage.records import ObjectProblem, ObjectRecord, object_path
from pytest_supabase_restore.storage.server import LocalS3Server
from pytest_supabase_restore.storage.stream import MAX_CHANGES
from pytest_supabase_restore.storage.upload import upload_all
from pytest_supabase_restore.storage.verify import store_sha256, verify_all

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1 << 20
SECRET = "s3-secret-that-must-never-be-printed"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def source() -> Iterator[LocalS3Server]:
    with LocalS3Server("storage-source") as server:
        yield server


@pytest.fixture(scope="module")
def target() -> Iterator[LocalS3Server]:
    with LocalS3Server("storage-target") as server:
        yield server


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="test-storage-") as name:
        yield Path(name)


def new_bucket(client: S3Client) -> str:
    name = f"bucket-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "local"})  # type: ignore[typeddict-item]
    return name


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- the fault proxy


@dataclass
class Cut:
    """Forward the request, then close the connection after ``after`` response bytes."""

    after: int


@dataclass
class Respond:
    """Answer the request with ``raw`` (a full HTTP response) instead of forwarding it."""

    raw: bytes


def s3_error(status: int, reason: str, code: str) -> Respond:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>{reason}</Message></Error>"
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return Respond(head + body)


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]


Hook = Callable[[Seen], "Cut | Respond | None"]


class FaultProxy:
    """A loopback TCP proxy that parses each HTTP request and lets ``hook`` inject a fault."""

    def __init__(self, upstream: LocalS3Server, hook: Hook | None = None) -> None:
        self.upstream_port = upstream.port
        self.upstream_keys = upstream.endpoint  # the server only accepts its own key pair
        self.hook = hook
        self.seen: list[Seen] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._spawn(self._accept)

    def endpoint(self, region: str = "local") -> S3Endpoint:
        keys = self.upstream_keys
        return S3Endpoint(
            f"http://127.0.0.1:{self.port}", region, keys.access_key_id, keys.secret_access_key
        )

    def gets(self, key_suffix: str) -> list[Seen]:
        return [s for s in self.seen if s.method == "GET" and s.target.endswith(key_suffix)]

    def _spawn(self, fn: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=fn, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:
                self._sockets += [client, upstream]
            state: dict[str, int | None] = {"cut_after": None, "sent": 0}
            self._spawn(self._requests, client, upstream, state)
            self._spawn(self._responses, client, upstream, state)

    def _requests(
        self, client: socket.socket, upstream: socket.socket, state: dict[str, Any]
    ) -> None:
        buf = b""
        body_left = 0
        try:
            while True:
                data = client.recv(1 << 16)
                if not data:
                    break
                buf += data
                while buf:
                    if body_left:
                        part, buf = buf[:body_left], buf[body_left:]
                        upstream.sendall(part)
                        body_left -= len(part)
                        continue
                    if b"\r\n\r\n" not in buf:
                        break
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    lines = head.decode("latin-1").split("\r\n")
                    method, target, _ = lines[0].split(" ", 2)
                    headers = {
                        k.strip().lower(): v.strip()
                        for k, v in (line.split(":", 1) for line in lines[1:])
                    }
                    assert "chunked" not in headers.get("transfer-encoding", "")
                    seen = Seen(method, target, headers)
                    with self._lock:
                        self.seen.append(seen)
                    action = self.hook(seen) if self.hook else None
                    if isinstance(action, Respond):
                        client.sendall(action.raw)
                        client.shutdown(socket.SHUT_RDWR)
                        return
                    if isinstance(action, Cut):
                        state["sent"], state["cut_after"] = 0, action.after
                    upstream.sendall(head + b"\r\n\r\n")
                    body_left = int(headers.get("content-length", "0"))
        except OSError:
            pass  # the other direction closed the connection (a cut)
        except BaseException as exc:  # a failing hook must fail the test, not hang it
            self.errors.append(exc)
        finally:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _responses(
        self, client: socket.socket, upstream: socket.socket, state: dict[str, Any]
    ) -> None:
        try:
            while data := upstream.recv(1 << 16):
                cut_after = state["cut_after"]
                if cut_after is not None:
                    room = cut_after - state["sent"]
                    if len(data) >= room:
                        client.sendall(data[:room])
                        state["cut_after"] = None
                        client.shutdown(socket.SHUT_RDWR)
                        upstream.shutdown(socket.SHUT_RDWR)
                        return
                    state["sent"] += len(data)
                client.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in threads:
            thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- records and paths


def test_object_path_is_content_addressed_and_cannot_escape(workdir: Path) -> None:
    digest = sha(b"x")
    assert object_path(workdir, digest) == workdir / "objects" / digest[:2] / digest
    for bad in ("../../etc/passwd", "/" + "a" * 63, digest.upper(), digest[:-1], "ä" * 64):
        with pytest.raises(BackupError, match="not a SHA-256"):
            object_path(workdir, bad)


def test_object_record_json_round_trip_and_validation() -> None:
    record = ObjectRecord("b", "k ü/..", 3, "etag", sha(b"abc"), "text/plain", None, None)
    assert ObjectRecord.from_json(record.to_json()) == record
    broken = [
        {**record.to_json(), "sha256": "../x"},
        {**record.to_json(), "size": -1},
        {**record.to_json(), "size": True},
        {**record.to_json(), "key": None},
    ]
    for entry in broken:
        with pytest.raises(BackupError):
            ObjectRecord.from_json(entry)


def test_problem_messages_name_the_object() -> None:
    digest = sha(b"a")
    assert ObjectProblem("b", "k 1", "missing", "3 bytes", "absent").message() == (
        "'b/k 1': missing from the target (expected 3 bytes)"
    )
    assert "content differs" in ObjectProblem("b", "k", "sha256", digest, digest).message()
    assert "Cache-Control differs" in ObjectProblem("b", "k", "cache_control", "a", "b").message()


# --------------------------------------------------------------------------- client


@pytest.mark.parametrize("build", [make_client, s3_client], ids=["storage", "demo"])
def test_client_ignores_aws_environment_and_config_files(
    build: Callable[[S3Endpoint], S3Client],
    source: LocalS3Server,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The drill's client, and the demo's (which seeds the demo project's Storage), sign
    with the endpoint's keys and nothing else: bogus AWS settings change nothing."""
    aws_config = workdir / "aws-config"
    aws_config.write_text(
        "[default]\nregion = eu-west-9\ns3 =\n  addressing_style = virtual\n"
        "[profile other]\nregion = eu-west-8\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(aws_config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(aws_config))
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_CA_BUNDLE", str(workdir / "no-such-ca.pem"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_REGION", "eu-west-7")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-7")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "env-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_supported")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "17")

    client = build(source.endpoint)
    bucket = new_bucket(client)
    assert bucket in list_buckets(client)
    client.put_object(Bucket=bucket, Key="a/b.txt", Body=b"isolated", ContentType="text/plain")
    got = client.get_object(Bucket=bucket, Key="a/b.txt")
    assert got["Body"].read() == b"isolated" and got["ContentType"] == "text/plain"
    assert client.meta.region_name == "local"
    assert client.meta.endpoint_url == source.endpoint.url
    config: Any = client.meta.config
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    assert config.s3["addressing_style"] == "path"
    internals: Any = client
    assert internals._request_signer._credentials.access_key == source.endpoint.access_key_id
    assert internals._endpoint.http_session._verify is True  # not AWS_CA_BUNDLE


@pytest.mark.timeout(300)
def test_iter_objects_follows_every_page(source: LocalS3Server) -> None:
    """Tens of thousands of keys: every page of the listing is followed, none twice."""
    from concurrent.futures import ThreadPoolExecutor

    client = make_client(source.endpoint)
    bucket = new_bucket(client)
    keys = [f"prefix/{i // 1000:02d}/key {i:05d}" for i in range(20_000)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: client.put_object(Bucket=bucket, Key=k, Body=b"."), keys))

    pages = 0

    def count(**_: object) -> None:
        nonlocal pages
        pages += 1

    client.meta.events.register("before-call.s3.ListObjectsV2", count)
    listed = [o["Key"] for o in iter_objects(client, bucket, page_size=1000)]
    assert pages == 20
    assert sorted(listed) == sorted(keys)
    assert len(set(listed)) == 20_000


# --------------------------------------------------------------------------- round trip


ODD_KEYS = {
    "plain.txt": (b"hello", "text/plain", "max-age=3600"),
    "with space/and ünïcödé 日本.txt": (b"unicode", "text/plain; charset=utf-8", None),
    "../escape/../../etc/passwd": (b"dots", "application/octet-stream", None),
    "/leading-slash": (b"slash", "application/octet-stream", "no-cache"),
    "deep/a/b/c/d/e/f.png": (b"\x89PNG same bytes", "image/png", "public, max-age=60"),
    "copy/of/f.png": (b"\x89PNG same bytes", "image/png", None),
    "empty": (b"", "application/x-empty", None),
    "folder/.emptyFolderPlaceholder": (b"", "application/octet-stream", None),
}


def seed(client: S3Client, bucket: str, objects: dict[str, tuple[bytes, str, str | None]]) -> None:
    for key, (body, content_type, cache_control) in objects.items():
        extra = {"CacheControl": cache_control} if cache_control else {}
        client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, **extra)  # type: ignore[arg-type]


def test_round_trip_download_upload_verify(
    source: LocalS3Server, target: LocalS3Server, workdir: Path
) -> None:
    src = make_client(source.endpoint)
    buckets = [new_bucket(src), new_bucket(src)]
    seed(src, buckets[0], ODD_KEYS)
    seed(src, buckets[1], {f"n/{i}": (f"{i % 3}".encode(), "text/plain", None) for i in range(20)})
    messages: list[str] = []

    got = download_all(
        source.endpoint, workdir, buckets, concurrency=4, progress=messages.append, page_size=3
    )

    assert got.errors == []
    assert [(o.bucket, o.key) for o in got.objects] == sorted(
        [(buckets[0], k) for k in ODD_KEYS] + [(buckets[1], f"n/{i}") for i in range(20)]
    )
    by_key = {o.key: o for o in got.objects if o.bucket == buckets[0]}
    for key, (body, content_type, cache_control) in ODD_KEYS.items():
        record = by_key[key]
        assert (record.size, record.sha256) == (len(body), sha(body))
        assert (record.content_type, record.cache_control) == (content_type, cache_control)
        assert object_path(workdir, record.sha256).read_bytes() == body
    assert got.bytes == sum(o.size for o in got.objects)
    # Content addressing: 8 + 20 objects, but only the distinct byte strings are stored.
    distinct = {sha(body) for body, _, _ in ODD_KEYS.values()} | {sha(b"0"), sha(b"1"), sha(b"2")}
    assert {p.name for p in files_under(workdir)} == distinct
    assert any("downloaded 28 objects" in m for m in messages)
    assert not any(key in m for m in messages for key in ODD_KEYS if len(key) > 6)

    put = upload_all(target.endpoint, got.objects, workdir, concurrency=4)
    assert put.errors == []
    assert len(put.objects) == 28
    assert verify_all(target.endpoint, got.objects, buckets=buckets) == []

    dst = make_client(target.endpoint)
    head = dst.head_object(Bucket=buckets[0], Key="deep/a/b/c/d/e/f.png")
    assert (head["ContentType"], head["CacheControl"]) == ("image/png", "public, max-age=60")


def test_backup_files_are_owner_only(source: LocalS3Server, workdir: Path) -> None:
    client = make_client(source.endpoint)
    bucket = new_bucket(client)
    seed(client, bucket, {"a": (b"a", "text/plain", None), "b/c": (b"bc", "text/plain", None)})
    dest = workdir / "set" / "storage"
    old = os.umask(0o022)
    try:
        result = download_all(source.endpoint, dest, [bucket])
    finally:
        os.umask(old)
    assert result.errors == []
    paths = [dest, *dest.rglob("*")]
    assert len(paths) == 1 + 1 + 2 + 2  # dest, objects/, two shards, two files
    for path in paths:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def test_verify_reports_each_kind_of_difference(
    source: LocalS3Server, target: LocalS3Server, workdir: Path
) -> None:
    src = make_client(source.endpoint)
    bucket = new_bucket(src)
    seed(
        src,
        bucket,
        {
            "same": (b"same", "text/plain", None),
            "modified": (b"original", "text/plain", None),
            "resized": (b"short", "text/plain", None),
            "deleted": (b"gone soon", "text/plain", None),
            "retyped": (b"typed", "text/plain", "max-age=1"),
        },
    )
    records = download_all(source.endpoint, workdir, [bucket]).objects
    assert upload_all(target.endpoint, records, workdir).errors == []
    dst = make_client(target.endpoint)
    assert verify_all(target.endpoint, records, buckets=[bucket]) == []

    dst.put_object(Bucket=bucket, Key="modified", Body=b"ORIGINAL", ContentType="text/plain")
    dst.put_object(Bucket=bucket, Key="resized", Body=b"longer now", ContentType="text/plain")
    dst.delete_object(Bucket=bucket, Key="deleted")
    dst.put_object(Bucket=bucket, Key="retyped", Body=b"typed", ContentType="image/gif")
    dst.put_object(Bucket=bucket, Key="extra/new", Body=b"new")

    problems = verify_all(target.endpoint, records, buckets=[bucket])
    assert [(p.key, p.problem) for p in problems] == [
        ("deleted", "missing"),
        ("extra/new", "unexpected"),
        ("modified", "sha256"),
        ("resized", "size"),
        ("retyped", "cache_control"),
        ("retyped", "content_type"),
    ]
    by_kind = {p.problem: p for p in problems}
    assert (by_kind["size"].expected, by_kind["size"].actual) == ("5", "10")
    assert by_kind["sha256"].expected == sha(b"original")
    assert by_kind["sha256"].actual == sha(b"ORIGINAL")
    assert (by_kind["content_type"].expected, by_kind["content_type"].actual) == (
        "text/plain",
        "image/gif",
    )
    # Without ``buckets``, objects the backup does not know about are not looked for.
    assert "unexpected" not in {p.problem for p in verify_all(target.endpoint, records)}


def test_verify_of_a_missing_bucket_reports_every_object_missing(target: LocalS3Server) -> None:
    record = ObjectRecord("no-such-bucket-here", "k", 1, "e", sha(b"k"), None, None, None)
    problems = verify_all(target.endpoint, [record], buckets=["no-such-bucket-here"])
    assert [(p.key, p.problem) for p in problems] == [("k", "missing")]


def _round_trip(source: LocalS3Server, target: LocalS3Server, workdir: Path) -> list[ObjectRecord]:
    """Three objects backed up from ``source`` and restored into ``target``."""
    src = make_client(source.endpoint)
    bucket = new_bucket(src)
    seed(src, bucket, {f"k{i}": (f"body {i}".encode(), "text/plain", None) for i in range(3)})
    records = download_all(source.endpoint, workdir, [bucket]).objects
    assert upload_all(target.endpoint, records, workdir).errors == []
    return records


def test_verify_trusts_the_store_checksum_and_downloads_only_a_sample(
    source: LocalS3Server, target: LocalS3Server, workdir: Path
) -> None:
    """The local server reports the SHA-256 of what it received: no object is downloaded
    again, except the sample; a replaced object is still caught, from its new checksum."""
    records = _round_trip(source, target, workdir)
    with FaultProxy(target) as proxy:
        assert verify_all(proxy.endpoint(), records, sample=0) == []
        assert [s.method for s in proxy.seen] == ["HEAD"] * 3
        assert all(s.headers.get("x-amz-checksum-mode") == "ENABLED" for s in proxy.seen)

        first = records[0]
        make_client(target.endpoint).put_object(
            Bucket=first.bucket, Key=first.key, Body=b"BODY 0", ContentType="text/plain"
        )
        proxy.seen.clear()
        problems = verify_all(proxy.endpoint(), records, sample=0)
        assert [(p.key, p.problem, p.actual) for p in problems] == [
            (first.key, "sha256", sha(b"BODY 0"))
        ]
        assert "GET" not in {s.method for s in proxy.seen}

        proxy.seen.clear()
        assert len(verify_all(proxy.endpoint(), records, sample=2)) == 1
        assert sorted(s.method for s in proxy.seen) == ["GET", "GET", "HEAD"]


def test_verify_downloads_every_object_where_the_store_refuses_checksums(
    source: LocalS3Server, target: LocalS3Server, workdir: Path
) -> None:
    """A target that rejects ``x-amz-checksum-mode`` (as a store without checksums may) gets
    the full download of every object, and a changed object is caught from its bytes."""
    records = _round_trip(source, target, workdir)
    first = records[0]
    make_client(target.endpoint).put_object(
        Bucket=first.bucket, Key=first.key, Body=b"BODY 0", ContentType="text/plain"
    )

    def refuse(seen: Seen) -> Respond | None:
        if "x-amz-checksum-mode" in seen.headers:
            return s3_error(400, "Bad Request", "InvalidArgument")
        return None

    with FaultProxy(target, refuse) as proxy:
        problems = verify_all(proxy.endpoint(), records, sample=0, concurrency=1)
        methods = [s.method for s in proxy.seen]
    assert [(p.key, p.problem) for p in problems] == [(first.key, "sha256")]
    # One refusal (botocore's region probe repeats the HEAD), then downloads only.
    assert methods[methods.index("GET") :] == ["GET"] * 3, methods


def test_the_local_server_reports_its_own_hash_of_what_it_received(
    target: LocalS3Server, workdir: Path
) -> None:
    """A checksum a client claims is not what the server reports: it hashes the bytes it got,
    for a plain upload and for the whole of a multipart one."""
    client = make_client(target.endpoint)
    bucket = new_bucket(client)
    claimed = base64.b64encode(hashlib.sha256(b"something else").digest()).decode()
    client.put_object(Bucket=bucket, Key="claimed", Body=b"payload", ChecksumSHA256=claimed)
    head = client.head_object(Bucket=bucket, Key="claimed", ChecksumMode="ENABLED")
    assert store_sha256(head) == sha(b"payload")
    assert "ChecksumSHA256" not in client.head_object(Bucket=bucket, Key="claimed")

    local = workdir / "big.bin"
    digest = _write_file(local, 12 * MiB)
    client.upload_file(
        str(local),
        bucket,
        "multipart",
        Config=TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB),
    )
    head = client.head_object(Bucket=bucket, Key="multipart", ChecksumMode="ENABLED")
    assert head["ETag"].strip('"').endswith("-2")
    assert store_sha256(head) == digest
    assert store_sha256({"ChecksumSHA256": claimed + "-2"}) is None  # type: ignore[typeddict-item]


# --------------------------------------------------------------------------- memory


def _write_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(MiB)
    with open(path, "wb") as fh:
        for i in range(size // MiB):
            chunk = block[:-8] + i.to_bytes(8, "big")
            digest.update(chunk)
            fh.write(chunk)
    return digest.hexdigest()


def _peak_python_memory(fn: Callable[[], Any]) -> tuple[Any, int]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        value = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return value, peak


def test_a_40_mib_object_streams_with_bounded_memory(
    source: LocalS3Server, target: LocalS3Server, workdir: Path
) -> None:
    size = 40 * MiB
    src = make_client(source.endpoint)
    bucket = new_bucket(src)
    local = workdir / "big.bin"
    digest = _write_file(local, size)
    src.upload_file(str(local), bucket, "big.bin")
    local.unlink()
    dest = workdir / "backup"

    got, peak = _peak_python_memory(lambda: download_all(source.endpoint, dest, [bucket]))
    assert got.errors == []
    assert (got.objects[0].size, got.objects[0].sha256) == (size, digest)
    assert peak < 8 * MiB, f"download peak {peak / MiB:.1f} MiB for a 40 MiB object"

    put, peak = _peak_python_memory(lambda: upload_all(target.endpoint, got.objects, dest))
    assert put.errors == []
    assert peak < 8 * MiB, f"upload peak {peak / MiB:.1f} MiB for a 40 MiB object"
    head = make_client(target.endpoint).head_object(Bucket=bucket, Key="big.bin")
    assert head["ETag"].strip('"').endswith("-5")  # five 8 MiB multipart parts

    problems, peak = _peak_python_memory(lambda: verify_all(target.endpoint, got.objects))
    assert problems == []
    assert peak < 8 * MiB, f"verify peak {peak / MiB:.1f} MiB for a 40 MiB object"
    # From the store's checksum of the whole multipart object, without the download.
    assert verify_all(target.endpoint, got.objects, sample=0) == []


def _resident(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_the_local_server_keeps_object_bytes_on_disk() -> None:
    """100 MB of objects leave the server's memory nearly where it was: the bytes are in
    files under its private directory, removed when it stops."""
    with LocalS3Server("disk-store") as server:
        assert server.process is not None and server._store is not None
        store = server._store
        assert stat.S_IMODE(store.stat().st_mode) == 0o700
        client = make_client(server.endpoint)
        bucket = new_bucket(client)
        client.put_object(Bucket=bucket, Key="warm-up", Body=os.urandom(MiB))
        before = _resident(server.process.pid)
        for i in range(100):
            client.put_object(Bucket=bucket, Key=f"k{i}", Body=os.urandom(MiB))
        grown = _resident(server.process.pid) - before
        on_disk = sum(f.stat().st_size for f in store.iterdir())
        body = client.get_object(Bucket=bucket, Key="k7")["Body"].read()
        assert len(body) == MiB
        client.delete_object(Bucket=bucket, Key="k7")
        after_delete = sum(f.stat().st_size for f in store.iterdir())
    assert grown < 30 * MiB, f"the server grew by {grown / MiB:.0f} MiB for 100 MiB of objects"
    assert on_disk >= 101 * MiB
    assert after_delete <= on_disk - MiB  # a deleted object's file goes with it
    assert not store.exists()


def test_the_local_server_holds_only_live_objects_and_keeps_each_ones_settings(
    target: LocalS3Server,
) -> None:
    """The server's lean per-object records (``_lean_keys``): 3,000 writes to one key leave
    its memory nearly where it was (moto alone keeps every object it ever made, some 4 kB
    each), and the ACL, tags and metadata that are now shared or left out still read back
    per object: a changed ACL or a tag set on one object is not seen on another."""
    assert target.process is not None
    client = make_client(target.endpoint)
    bucket = new_bucket(client)
    client.put_object(Bucket=bucket, Key="warm-up", Body=b"x")
    for i in range(200):
        client.put_object(Bucket=bucket, Key="same", Body=b"%d" % i)
    before = _resident(target.process.pid)
    for i in range(3000):
        client.put_object(Bucket=bucket, Key="same", Body=b"%d" % i, ContentType="image/png")
    grown = _resident(target.process.pid) - before
    assert grown < 4 * MiB, f"3,000 overwrites of one object grew the server by {grown} bytes"
    assert client.get_object(Bucket=bucket, Key="same")["Body"].read() == b"2999"

    client.put_object(Bucket=bucket, Key="tagged", Body=b"t", Tagging="kind=photo")
    client.put_object(Bucket=bucket, Key="plain", Body=b"p", CacheControl="max-age=60")
    client.put_object_acl(Bucket=bucket, Key="tagged", ACL="public-read")

    def grants(key: str) -> list[str]:
        acl = client.get_object_acl(Bucket=bucket, Key=key)
        return sorted(g["Permission"] for g in acl["Grants"])

    assert grants("tagged") == ["FULL_CONTROL", "READ"]
    assert grants("plain") == ["FULL_CONTROL"]
    assert client.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"] == [
        {"Key": "kind", "Value": "photo"}
    ]
    assert client.get_object_tagging(Bucket=bucket, Key="plain")["TagSet"] == []
    plain = client.head_object(Bucket=bucket, Key="plain")
    assert (plain["CacheControl"], plain["ContentType"]) == ("max-age=60", "binary/octet-stream")
    assert client.head_object(Bucket=bucket, Key="same")["ContentType"] == "image/png"


# --------------------------------------------------------------------------- faults


def test_closed_port_fails_fast_with_a_precise_message(workdir: Path) -> None:
    port = free_port()
    endpoint = S3Endpoint(f"http://127.0.0.1:{port}", "eu-central-1", "key-id", SECRET)
    record = ObjectRecord("bucket", "key", 1, "e", sha(b"k"), None, None, None)

    started = time.monotonic()
    with pytest.raises(StorageError) as excinfo:
        download_all(endpoint, workdir, retries=3)
    assert time.monotonic() - started < 10
    message = str(excinfo.value)
    assert f"127.0.0.1:{port}" in message
    assert "4 attempts" in message
    assert "check the endpoint URL" in message
    assert "eu-central-1" in message
    assert SECRET not in message

    started = time.monotonic()
    with pytest.raises(StorageError) as excinfo:
        verify_all(endpoint, [record])
    assert time.monotonic() - started < 15
    assert "'bucket'" in str(excinfo.value)
    assert SECRET not in str(excinfo.value)


def test_a_connection_cut_mid_object_is_resumed(source: LocalS3Server, workdir: Path) -> None:
    src = make_client(source.endpoint)
    bucket = new_bucket(src)
    body = os.urandom(3 * MiB)
    src.put_object(Bucket=bucket, Key="cut/me.bin", Body=body)
    cuts: list[Seen] = []

    def hook(seen: Seen) -> Cut | None:
        if seen.method == "GET" and seen.target.endswith("/cut/me.bin") and not cuts:
            cuts.append(seen)
            return Cut(after=300_000)  # headers plus part of the body
        return None

    with FaultProxy(source, hook) as proxy:
        got = download_all(proxy.endpoint(), workdir, [bucket], retries=2)
        assert proxy.errors == []
        gets = proxy.gets("/cut/me.bin")
    assert got.errors == []
    assert (got.objects[0].size, got.objects[0].sha256) == (len(body), sha(body))
    assert object_path(workdir, sha(body)).read_bytes() == body
    assert len(gets) == 2
    assert "range" not in gets[0].headers
    resumed_at = int(gets[1].headers["range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at < len(body)
    assert gets[1].headers["if-match"] == gets[0].headers["if-match"]
    assert [p.name for p in (workdir / "objects").iterdir() if p.is_file()] == []


def test_slowdown_is_retried_and_access_denied_is_not(source: LocalS3Server, workdir: Path) -> None:
    src = make_client(source.endpoint)
    bucket = new_bucket(src)
    seed(
        src,
        bucket,
        {"busy": (b"busy", "text/plain", None), "secret/denied": (b"no", "text/plain", None)},
    )
    slowed: list[Seen] = []

    def hook(seen: Seen) -> Respond | None:
        if seen.method != "GET":
            return None
        if seen.target.endswith("/busy") and len(slowed) < 2:
            slowed.append(seen)
            return s3_error(503, "Slow Down", "SlowDown")
        if seen.target.endswith("/denied"):
            return s3_error(403, "Access Denied", "AccessDenied")
        return None

    with FaultProxy(source, hook) as proxy:
        got = download_all(proxy.endpoint(), workdir, [bucket], retries=3)
        assert proxy.errors == []
        assert len(proxy.gets("/busy")) == 3
        assert len(proxy.gets("/denied")) == 1
    assert [o.key for o in got.objects] == ["busy"]
    assert len(got.errors) == 1
    error = got.errors[0]
    assert f"bucket {bucket!r}, key 'secret/denied'" in error
    assert "AccessDenied" in error
    assert "access keys" in error
    assert source.endpoint.secret_access_key not in error


def test_retries_give_up_within_bounds(source: LocalS3Server, workdir: Path) -> None:
    src = make_client(source.endpoint)
    bucket = new_bucket(src)
    seed(src, bucket, {"always-busy": (b"x", "text/plain", None)})

    def hook(seen: Seen) -> Respond | None:
        if seen.method == "GET" and seen.target.endswith("/always-busy"):
            return s3_error(500, "Internal Error", "InternalError")
        return None

    with FaultProxy(source, hook) as proxy:
        started = time.monotonic()
        got = download_all(proxy.endpoint(), workdir, [bucket], retries=2)
        assert time.monotonic() - started < 5
        assert len(proxy.gets("/always-busy")) == 3
    assert got.objects == []
    assert "key 'always-busy': download failed after retries" in got.errors[0]
    assert files_under(workdir) == []


def test_objects_changed_or_deleted_during_the_download(
    source: LocalS3Server, workdir: Path
) -> None:
    src = make_client(source.endpoint)
    bucket = new_bucket(src)
    seed(
        src,
        bucket,
        {
            "once": (b"v0", "text/plain", None),
            "always": (b"v0", "text/plain", None),
            "vanishing": (b"v0", "text/plain", None),
        },
    )
    writes = {"once": 0, "always": 0}

    def hook(seen: Seen) -> None:
        # Another writer updates (or deletes) the object between our listing and our GET.
        if seen.method == "GET" and seen.target.endswith("/vanishing"):
            src.delete_object(Bucket=bucket, Key="vanishing")
        for key in writes:
            if seen.method == "GET" and seen.target.endswith(f"/{key}"):
                if key == "once" and writes[key]:
                    return
                writes[key] += 1
                src.put_object(Bucket=bucket, Key=key, Body=f"v{writes[key]}".encode())

    with FaultProxy(source, hook) as proxy:
        got = download_all(proxy.endpoint(), workdir, [bucket])
        assert proxy.errors == []
    # "vanishing" was deleted after the listing: not an error, just no longer there.
    assert [(o.key, o.sha256) for o in got.objects] == [("once", sha(b"v1"))]
    assert writes["always"] == MAX_CHANGES + 1
    assert len(got.errors) == 1
    assert f"bucket {bucket!r}, key 'always'" in got.errors[0]
    assert "kept changing" in got.errors[0]


def test_a_missing_bucket_is_a_precise_error_without_retries(
    source: LocalS3Server, workdir: Path
) -> None:
    with FaultProxy(source) as proxy:
        got = download_all(proxy.endpoint(), workdir, ["no-such-bucket-abc"], retries=5)
        assert len(proxy.seen) == 1
    assert got.objects == []
    assert len(got.errors) == 1
    assert "'no-such-bucket-abc'" in got.errors[0]
    assert "NoSuchBucket" in got.errors[0]
    assert "does not exist" in got.errors[0]


def test_the_deadline_bounds_the_download(source: LocalS3Server, workdir: Path) -> None:
    client = make_client(source.endpoint)
    bucket = new_bucket(client)
    seed(client, bucket, {f"k{i}": (b"k", "text/plain", None) for i in range(3)})
    got = download_all(source.endpoint, workdir, [bucket], deadline_seconds=0)
    assert got.objects == []
    assert got.errors == [
        "The storage deadline of 0 s passed: 3 objects were not downloaded. "
        "Raise the deadline or lower the load on the endpoint."
    ]


def test_no_checksum_or_md5_headers_are_sent(
    source: LocalS3Server, target: LocalS3Server, workdir: Path
) -> None:
    src = make_client(source.endpoint)
    bucket = new_bucket(src)
    local = workdir / "nine.bin"
    _write_file(local, 9 * MiB)
    src.upload_file(str(local), bucket, "nine.bin")
    local.unlink()
    with FaultProxy(source) as down, FaultProxy(target) as up:
        got = download_all(down.endpoint(), workdir, [bucket])
        assert got.errors == []
        assert upload_all(up.endpoint(), got.objects, workdir).errors == []
        seen = down.seen + up.seen
    assert {s.method for s in up.seen} >= {"PUT", "POST"}  # multipart: create, parts, complete
    for request in seen:
        for name in request.headers:
            assert name != "content-md5", request
            assert not name.startswith(("x-amz-checksum", "x-amz-sdk-checksum")), request
            assert name != "x-amz-trailer", request


def test_upload_reports_damaged_or_missing_backup_files(
    target: LocalS3Server, workdir: Path
) -> None:
    missing = ObjectRecord("bucket-upload", "gone", 4, "e", sha(b"gone"), None, None, None)
    short = ObjectRecord("bucket-upload", "short", 10, "e", sha(b"short"), None, None, None)
    path = object_path(workdir, short.sha256)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"short")
    result = upload_all(target.endpoint, [missing, short], workdir)
    assert result.objects == []
    assert len(result.errors) == 2
    assert "key 'gone': the backup set has no file" in result.errors[0]
    assert "key 'short'" in result.errors[1]
    assert "5 bytes, the manifest says 10" in result.errors[1]
