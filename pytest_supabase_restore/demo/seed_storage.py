"""The demo's Storage: buckets and objects uploaded through the S3 protocol and described
in ``storage.objects`` the way Supabase's Storage API describes them. Their ``lastModified``
comes from the S3 server, so it is the one part of the demo that differs between runs.
"""

from __future__ import annotations

import hashlib
import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.types.json import Jsonb

from .seed import sync_sequences

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

CACHE_CONTROL = "max-age=3600"
MIB = 1024 * 1024


@dataclass(frozen=True)
class BucketSpec:
    """A Storage bucket as the demo creates it, in storage.buckets and in S3."""

    id: str
    public: bool
    file_size_limit: int | None = None
    allowed_mime_types: tuple[str, ...] | None = None


BUCKETS: tuple[BucketSpec, ...] = (
    BucketSpec("avatars", public=True),
    BucketSpec("documents", public=False),
    BucketSpec(
        "images",
        public=False,
        file_size_limit=2 * MIB,
        allowed_mime_types=("image/png", "image/jpeg", "image/webp"),
    ),
)


@dataclass(frozen=True)
class PlannedObject:
    """One Storage object to upload: where, what type, how big, whose."""

    bucket: str
    name: str
    mimetype: str
    size: int
    owner: str


_MAGIC: dict[str, bytes] = {
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "image/webp": b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    "application/pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
}


def default_object_count(scale: int) -> int:
    """About 30 objects at scale 1, growing with the square root of the scale."""
    return max(1, round(30 * math.sqrt(scale)))


def _fraction(seed: int, key: str) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:7], "big") / float(1 << 56)


def _uuid(seed: int, key: str) -> str:
    digest = hashlib.md5(f"{seed}:{key}".encode(), usedforsecurity=False).digest()
    return str(uuid.UUID(bytes=digest, version=4))


def _log_uniform(fraction: float, low: int, high: int) -> int:
    return round(low * math.exp(math.log(high / low) * fraction))


# 30% avatars, 40% documents, 30% images, interleaved so that even three objects cover
# every bucket.
_BUCKET_CYCLE = (
    "avatars", "documents", "images", "documents", "avatars",
    "images", "documents", "avatars", "images", "documents",
)  # fmt: skip


def _document_name(i: int, variant: int) -> tuple[str, str]:
    """(path below the owner's folder, MIME type) of the i-th object when it is a document."""
    kinds = (
        (f"reports/{2024 + i % 2}/Q{1 + i % 4} report {i}.pdf", "application/pdf"),
        (f"notes/Résumé {i}.txt", "text/plain"),
        (f"exports/data-{i}.csv", "text/csv"),
        (f"archive/2025/deep/nested/blob-{i}.bin", "application/octet-stream"),
    )
    return kinds[variant % len(kinds)]


def _image_name(i: int, variant: int) -> tuple[str, str]:
    """(key, MIME type) of the i-th object when it is an image."""
    kinds = (
        (f"gallery/{2024 + i % 2}/{1 + i % 12:02d}/photo-{i}.jpg", "image/jpeg"),
        (f"gallery/東京/夜景 {i}.webp", "image/webp"),
        (f"products/{i}/main.png", "image/png"),
    )
    return kinds[variant % len(kinds)]


def plan_objects(count: int, owners: Sequence[str], seed: int = 42) -> list[PlannedObject]:
    """The objects to upload: 30% avatars, 40% documents, 30% images, deterministic.

    Keys have nested folders, and some have spaces and non-ASCII characters. One document
    is exactly 1 MiB and one is 3 bytes, so the extremes are always there.
    """
    if not owners:
        raise ValueError("no users to own the Storage objects: seed the database first")
    planned: list[PlannedObject] = []
    avatars_of: dict[str, int] = {}
    for i in range(count):
        owner = owners[(i * 7 + 3) % len(owners)]
        fraction = _fraction(seed, f"size:{i}")
        bucket = _BUCKET_CYCLE[i % len(_BUCKET_CYCLE)]
        variant = i // len(_BUCKET_CYCLE) + i
        if bucket == "avatars":
            n = avatars_of.get(owner, 0)
            avatars_of[owner] = n + 1
            name = f"{owner}/avatar.png" if n == 0 else f"{owner}/avatar-{n}.png"
            planned.append(
                PlannedObject(
                    "avatars", name, "image/png", _log_uniform(fraction, 64, 256 * 1024), owner
                )
            )
        elif bucket == "documents":
            path, mime = _document_name(i, variant)
            size = _log_uniform(fraction, 3, MIB)
            planned.append(PlannedObject("documents", f"{owner}/{path}", mime, size, owner))
        else:
            name, mime = _image_name(i, variant)
            planned.append(
                PlannedObject("images", name, mime, _log_uniform(fraction, 100, MIB), owner)
            )
    # The extremes, whatever the count: the first document 1 MiB, the second 3 bytes.
    documents = [k for k, o in enumerate(planned) if o.bucket == "documents"]
    for position, size in zip(documents, (MIB, 3), strict=False):
        o = planned[position]
        planned[position] = PlannedObject(o.bucket, o.name, o.mimetype, size, o.owner)
    return planned


def object_bytes(obj: PlannedObject, seed: int = 42) -> bytes:
    """Deterministic content: a file-type signature (so sniffers agree) then filler."""
    if obj.mimetype.startswith("text/"):
        line = f"{obj.name},{seed},Zoë;Łukasz;東京\n".encode()
        body = line * (obj.size // len(line) + 1)
        # Cut on a line boundary when possible so the text stays valid UTF-8.
        data = body[: obj.size]
        return data.decode("utf-8", errors="ignore").encode().ljust(obj.size, b".")
    magic = _MAGIC.get(obj.mimetype, b"")
    filler = hashlib.shake_256(f"{seed}:{obj.bucket}/{obj.name}".encode()).digest(obj.size)
    return (magic + filler)[: obj.size]


def _iso_millis(moment: datetime) -> str:
    """``2025-01-02T03:04:05.000Z``: how Storage writes lastModified into metadata."""
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _create_buckets(s3_client: S3Client) -> None:
    region = s3_client.meta.region_name
    for bucket in BUCKETS:
        if region in (None, "us-east-1"):
            # us-east-1 is the one region S3 refuses an explicit LocationConstraint for.
            s3_client.create_bucket(Bucket=bucket.id)
        else:
            s3_client.create_bucket(
                Bucket=bucket.id,
                CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
            )


def _last_modified(s3_client: S3Client) -> dict[tuple[str, str], datetime]:
    """LastModified as the S3 server recorded it, for the metadata and the row timestamps."""
    modified: dict[tuple[str, str], datetime] = {}
    paginator = s3_client.get_paginator("list_objects_v2")
    for bucket in BUCKETS:
        for page in paginator.paginate(Bucket=bucket.id):
            for item in page.get("Contents", []):
                modified[(bucket.id, item["Key"])] = item["LastModified"]
    return modified


def _owners(conn: psycopg.Connection[Any]) -> list[str]:
    """The users who own the objects: every signed-up user still there, oldest first."""
    return [
        str(row[0])
        for row in conn.execute(
            "SELECT id FROM auth.users WHERE NOT is_anonymous AND deleted_at IS NULL "
            "ORDER BY created_at, id"
        )
    ]


def _upload(
    s3_client: S3Client, planned: Sequence[PlannedObject], seed: int
) -> list[tuple[PlannedObject, str, bytes]]:
    """Put every planned object; (object, ETag as S3 returned it, SHA-256 of the bytes)."""
    uploaded: list[tuple[PlannedObject, str, bytes]] = []
    for obj in planned:
        data = object_bytes(obj, seed)
        response = s3_client.put_object(
            Bucket=obj.bucket,
            Key=obj.name,
            Body=data,
            ContentType=obj.mimetype,
            CacheControl=CACHE_CONTROL,
        )
        uploaded.append((obj, response["ETag"], hashlib.sha256(data).digest()))
    return uploaded


def _bucket_rows(created: datetime) -> list[tuple[Any, ...]]:
    """The storage.buckets rows of :data:`BUCKETS`."""
    return [
        (
            b.id,
            b.id,
            b.public,
            b.file_size_limit,
            list(b.allowed_mime_types) if b.allowed_mime_types else None,
            created,
            created,
        )
        for b in BUCKETS
    ]


def _object_row(
    index: int, obj: PlannedObject, etag: str, last_modified: datetime, seed: int
) -> tuple[Any, ...]:
    """The storage.objects row of an uploaded object, with the metadata the Storage API writes."""
    metadata = {
        "eTag": etag,
        "size": obj.size,
        "mimetype": obj.mimetype,
        "cacheControl": CACHE_CONTROL,
        "lastModified": _iso_millis(last_modified),
        "contentLength": obj.size,
        "httpStatusCode": 200,
    }
    user_metadata = (
        Jsonb({"source": "demo", "label": f"Ünïcödé {index}"}) if index % 5 == 0 else None
    )
    return (
        _uuid(seed, f"object:{obj.bucket}/{obj.name}"),
        obj.bucket,
        obj.name,
        obj.owner,
        obj.owner,
        last_modified,
        last_modified,
        last_modified,
        Jsonb(metadata),
        _uuid(seed, f"version:{obj.bucket}/{obj.name}"),
        user_metadata,
    )


@dataclass
class _Rows:
    """What the uploaded objects become in the database."""

    objects: list[tuple[Any, ...]]
    avatars: list[tuple[Any, ...]]
    attachments: list[tuple[Any, ...]]


def _rows(
    uploaded: Sequence[tuple[PlannedObject, str, bytes]],
    modified: dict[tuple[str, str], datetime],
    seed: int,
) -> _Rows:
    """storage.objects rows, the owners' first avatars, and attachments for the others."""
    rows = _Rows([], [], [])
    for index, (obj, etag, digest) in enumerate(uploaded):
        last_modified = modified[(obj.bucket, obj.name)]
        rows.objects.append(_object_row(index, obj, etag, last_modified, seed))
        if obj.bucket == "avatars":
            if obj.name == f"{obj.owner}/avatar.png":
                rows.avatars.append((obj.name, last_modified, obj.owner))
        else:
            rows.attachments.append(
                (
                    _uuid(seed, f"attachment:{obj.bucket}/{obj.name}"),
                    obj.owner,
                    obj.bucket,
                    obj.name,
                    obj.size,
                    digest,
                    obj.mimetype,
                    last_modified,
                )
            )
    return rows


def _insert(conn: psycopg.Connection[Any], buckets: list[tuple[Any, ...]], rows: _Rows) -> None:
    """Write the buckets, the objects, the avatar URLs and the attachments."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO storage.buckets (id, name, owner, owner_id, public, avif_autodetection, "
            "file_size_limit, allowed_mime_types, created_at, updated_at) "
            "VALUES (%s, %s, NULL, NULL, %s, false, %s, %s, %s, %s)",
            buckets,
        )
        cur.executemany(
            "INSERT INTO storage.objects (id, bucket_id, name, owner, owner_id, created_at, "
            "updated_at, last_accessed_at, metadata, version, user_metadata) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows.objects,
        )
        # The explicit updated_at is kept by public.set_updated_at (it only fills in now()
        # when an UPDATE leaves updated_at alone).
        cur.executemany(
            "UPDATE public.profiles SET avatar_url = %s, updated_at = %s WHERE id = %s",
            rows.avatars,
        )
        cur.executemany(
            "INSERT INTO public.attachments (id, owner_id, task_id, bucket_id, object_path, "
            "byte_size, sha256, mime_type, created_at) "
            "VALUES (%s, %s, (SELECT min(t.id) FROM public.tasks AS t WHERE t.creator_id = %s), "
            "%s, %s, %s, %s, %s, %s)",
            [(r[0], r[1], r[1], *r[2:]) for r in rows.attachments],
        )


def seed_storage(
    conn: psycopg.Connection[Any],
    s3_client: S3Client,
    scale: int = 1,
    *,
    objects: int | None = None,
    seed: int = 42,
) -> dict[str, int]:
    """Create the buckets and objects in S3 and in storage.*; return objects per bucket.

    Buckets: ``avatars`` (public), ``documents`` (private), ``images`` (private, with a
    size limit and allowed MIME types). Each object is uploaded with ContentType and
    CacheControl, then described in ``storage.objects`` with the metadata the Storage API
    writes (eTag exactly as S3 returned it, quotes included). Avatars become the owner's
    ``profiles.avatar_url``; documents and images get a ``public.attachments`` row.
    """
    count = default_object_count(scale) if objects is None else objects
    if count < 0:
        raise ValueError(f"objects must be >= 0, not {count}")
    owners = _owners(conn)
    planned = plan_objects(count, owners, seed) if count else []

    bucket_created = datetime(2024, 10, 1, 12, 0, tzinfo=timezone.utc)
    _create_buckets(s3_client)
    uploaded = _upload(s3_client, planned, seed)
    modified = _last_modified(s3_client)

    with conn.transaction():
        _insert(conn, _bucket_rows(bucket_created), _rows(uploaded, modified, seed))
        sync_sequences(conn)
        conn.execute(
            "ANALYZE storage.buckets, storage.objects, public.profiles, public.attachments"
        )

    per_bucket = {b.id: 0 for b in BUCKETS}
    for obj, _, _ in uploaded:
        per_bucket[obj.bucket] += 1
    log.info("uploaded %s Storage objects: %s", len(uploaded), per_bucket)
    return per_bucket
