"""The dry run (``--supabase-dry-run``): what the drill would export, restore into and
check, from the source's catalog and object store, with nothing written."""

from __future__ import annotations

from . import CATEGORIES
from .config import Config
from .errors import DrillError
from .staging import resolve_kind
from .storage.endpoint import S3Endpoint


def dry_run_lines(settings: Config, db_url: str | None, s3: S3Endpoint | None) -> list[str]:
    """The lines a dry run reports: the source's server and tools, the tables in scope, the
    Storage buckets, the staging kind and the checks."""
    from .pg.binaries import find_client_tools
    from .proof.scope import list_tables, schemas_in_scope
    from .source import connect_source, server_version

    lines: list[str] = []
    if db_url is None:
        raise DrillError("--supabase-dry-run needs a source (SUPABASE_DB_URL or --supabase-demo).")
    conn = connect_source(db_url)
    try:
        major, version = server_version(conn)
        tools = find_client_tools(major, str(settings.pg_bindir) if settings.pg_bindir else None)
        lines.append(f"source: PostgreSQL {version}; pg_dump {tools.version} ({tools.bindir})")
        scope = schemas_in_scope(conn)
        tables = list_tables(conn, scope)
        lines.append(f"schemas in scope: {', '.join(scope)}")
        for t in sorted(tables, key=lambda t: t.bytes, reverse=True):
            lines.append(f"  table {t.qualified}: ~{t.est_rows} rows, {t.bytes} bytes")
        conn.rollback()
    finally:
        conn.close()
    if s3 is not None:
        from .storage.client import iter_objects, list_buckets, make_client

        client = make_client(s3)
        for bucket in list_buckets(client):
            count = size = 0
            for obj in iter_objects(client, bucket):
                count += 1
                size += int(obj.get("Size", 0))
            lines.append(f"  bucket {bucket}: {count} objects, {size} bytes")
    else:
        lines.append("storage: no S3 settings; objects would not be backed up")
    lines.append(f"staging target: {resolve_kind(settings.staging)}")
    lines.append(f"checks: {', '.join(CATEGORIES)}")
    return lines
