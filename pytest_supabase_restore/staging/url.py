"""The url target: an existing staging database, refused unless it is safe to overwrite."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from ..config import DISPOSABLE_MARKER, Connection, mask_url
from ..errors import SafetyError
from ..s3server import S3Endpoint
from .base import StagingTarget


def _where(dsn: str) -> tuple[str, str, str]:
    p: dict[str, Any] = conninfo_to_dict(dsn)
    host = str(p.get("host") or p.get("hostaddr") or "localhost").lower()
    if host in ("127.0.0.1", "::1", "localhost"):
        host = "localhost"
    return host, str(p.get("port") or "5432"), str(p.get("dbname") or p.get("user") or "postgres")


def _facts(conn: psycopg.Connection[Any]) -> tuple[str | None, str | None]:
    """(database comment, system identifier where visible)."""
    row = conn.execute(
        "SELECT shobj_description(d.oid, 'pg_database') FROM pg_database d WHERE d.datname = current_database()"
    ).fetchone()
    comment = row[0] if row else None
    try:
        ident = conn.execute("SELECT system_identifier::text FROM pg_control_system()").fetchone()
        system_id = ident[0] if ident else None
    except psycopg.Error:
        conn.rollback()
        system_id = None
    conn.rollback()
    return comment, system_id


def check_safe(staging_dsn: str, source_dsn: str | None) -> None:
    """Refuse a staging database that might be the source or is not marked disposable."""
    if source_dsn and _where(staging_dsn) == _where(source_dsn):
        raise SafetyError(
            f"Refusing STAGING_DB_URL {mask_url(staging_dsn)}: it has the same host, port and "
            "database as SUPABASE_DB_URL. The restore overwrites staging; it must never be the "
            "source."
        )
    try:
        with psycopg.connect(staging_dsn, connect_timeout=15) as conn:
            comment, staging_id = _facts(conn)
    except psycopg.OperationalError as exc:
        raise SafetyError(
            f"Cannot connect to STAGING_DB_URL {mask_url(staging_dsn)}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}"
        ) from exc
    if source_dsn and staging_id:
        try:
            with psycopg.connect(source_dsn, connect_timeout=15) as src:
                src.read_only = True
                _c, source_id = _facts(src)
        except psycopg.Error:
            source_id = None
        if source_id and source_id == staging_id:
            raise SafetyError(
                f"Refusing STAGING_DB_URL {mask_url(staging_dsn)}: it reports the same database "
                f"system identifier as the source ({source_id}), so it is the same server."
            )
    if not comment or DISPOSABLE_MARKER not in comment:
        raise SafetyError(
            f"Refusing STAGING_DB_URL {mask_url(staging_dsn)}: the database is not marked as "
            f"disposable. The restore overwrites it. If that is what you want, run in it: "
            f"COMMENT ON DATABASE <name> IS '{DISPOSABLE_MARKER}';"
        )


def clear_scope(dsn: str, schemas: list[str], platform_present: bool) -> None:
    """Drop what the restore will recreate: the backup's schemas (platform ones kept if present)."""
    keep = {"auth", "storage", "extensions"} if platform_present else set()
    with psycopg.connect(dsn, autocommit=True) as conn:
        existing = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace").fetchall()}
        for schema in schemas:
            if schema in existing and schema not in keep:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        if "public" in schemas:
            conn.execute("CREATE SCHEMA IF NOT EXISTS public")


@dataclass
class UrlStaging(StagingTarget):
    @classmethod
    def open(cls, target: Connection, source_dsn: str | None) -> UrlStaging:
        assert target.db_url is not None
        check_safe(target.db_url, source_dsn)
        with psycopg.connect(target.db_url) as conn:
            row = conn.execute(
                "SELECT current_setting('server_version'), "
                "EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'supabase_auth_admin')"
            ).fetchone()
        assert row is not None
        s3 = None
        if target.has_s3:
            assert target.s3_endpoint and target.s3_access_key_id and target.s3_secret_access_key
            s3 = S3Endpoint(
                target.s3_endpoint,
                target.s3_region or "us-east-1",
                target.s3_access_key_id,
                target.s3_secret_access_key,
            )
        from ..demo.project import platform_roles_sql
        from .ephemeral import PLATFORM_PREPARE

        return cls(
            kind="url",
            dsn=target.db_url,
            label=f"url {mask_url(target.db_url)}",
            server_version=str(row[0]),
            platform_present=bool(row[1]),
            prepare_sql=None if row[1] else platform_roles_sql() + "\n" + PLATFORM_PREPARE,
            s3=s3,
            disposable=False,
        )

    def stop(self) -> None:
        """Left restored on purpose: a url target is a long-lived project."""
