"""Storage checks: every bucket ``storage.buckets`` names exists at the S3 endpoint and can
be listed with the given keys; objects and bytes per bucket; rows without bytes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from ..errors import first_line
from ..storage.endpoint import S3Endpoint
from .model import FAIL, INFO, PASS, WARN, Check, human_bytes, shortened

Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class StorageSize:
    objects: int = 0
    bytes: int = 0


def _catalog(conn: Conn) -> dict[str, set[str]] | None:
    """Bucket id -> object names, from the source's tables (None: no Storage schema)."""
    row = conn.execute(
        "SELECT to_regclass('storage.buckets') IS NOT NULL "
        "AND to_regclass('storage.objects') IS NOT NULL"
    ).fetchone()
    if not row or not row[0]:
        return None
    buckets: dict[str, set[str]] = {
        str(b): set() for (b,) in conn.execute("SELECT id FROM storage.buckets").fetchall()
    }
    for bucket, name in conn.execute("SELECT bucket_id, name FROM storage.objects"):
        buckets.setdefault(str(bucket), set()).add(str(name))
    return buckets


def storage_checks(conn: Conn, s3: S3Endpoint | None) -> tuple[list[Check], StorageSize]:
    catalog = _catalog(conn)
    if s3 is None:
        what = (
            "no storage schema"
            if catalog is None
            else f"{len(catalog)} bucket(s) in storage.buckets"
        )
        return [
            Check(
                "storage endpoint",
                WARN if catalog else INFO,
                f"no S3 settings ({what}): Storage objects would not be backed up",
                "set SUPABASE_S3_ENDPOINT, SUPABASE_S3_ACCESS_KEY_ID and "
                "SUPABASE_S3_SECRET_ACCESS_KEY (Settings > Storage > S3 access keys)"
                if catalog
                else "",
            )
        ], StorageSize()
    from ..storage.client import iter_objects, list_buckets, make_client

    client = make_client(s3, max_attempts=2, connect_timeout=5, read_timeout=30)
    try:
        at_endpoint = set(list_buckets(client))
    except Exception as exc:
        return [
            Check(
                "storage endpoint",
                FAIL,
                f"listing the buckets at {s3.url} failed: {first_line(exc, type(exc).__name__)}",
                "check SUPABASE_S3_ENDPOINT and the S3 access keys (they must list buckets)",
            )
        ], StorageSize()
    checks: list[Check] = []
    missing = sorted(set(catalog or {}) - at_endpoint)
    if missing:
        checks.append(
            Check(
                "storage buckets",
                FAIL,
                f"{len(missing)} bucket(s) of storage.buckets missing at the S3 endpoint "
                f"{s3.url}: {shortened(missing)} (the export would fail with NoSuchBucket)",
                "check that SUPABASE_S3_ENDPOINT belongs to this project, or delete the "
                "bucket rows that have no storage behind them",
            )
        )
    total = StorageSize()
    for bucket in sorted(at_endpoint):
        count = size = 0
        keys: set[str] = set()
        for obj in iter_objects(client, bucket):
            count += 1
            size += int(obj.get("Size", 0))
            keys.add(str(obj.get("Key", "")))
        total = StorageSize(total.objects + count, total.bytes + size)
        lost = sorted((catalog or {}).get(bucket, set()) - keys)
        checks.append(_bucket_check(bucket, count, size, lost))
    if not missing:
        checks.insert(0, Check("storage buckets", PASS, f"{len(at_endpoint)} bucket(s) listed"))
    return checks, total


def _bucket_check(bucket: str, count: int, size: int, lost: list[str]) -> Check:
    found = f"{count} objects, {human_bytes(size)}"
    if not lost:
        return Check(f"bucket {bucket}", INFO, found)
    return Check(
        f"bucket {bucket}",
        WARN,
        f"{found}; {len(lost)} row(s) of storage.objects have no bytes at the endpoint",
        "re-upload those objects or delete their rows (a restore cannot bring them back)",
    )
