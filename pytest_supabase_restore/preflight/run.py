"""The preflight's order: source, sizes, lint, storage, plan, staging, notifications."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from ..config import Config
from ..errors import DrillError, first_line
from ..storage.endpoint import S3Endpoint
from .model import FAIL, PASS, Check
from .plan import disk_checks, time_check
from .sizes import SourceSize, size_checks
from .storage import StorageSize, storage_checks

Conn = psycopg.Connection[Any]


def _database_checks(
    conn: Conn, settings: Config, db_url: str, s3: S3Endpoint | None
) -> tuple[list[Check], int, SourceSize, StorageSize]:
    from ..proof.scope import schemas_in_scope
    from .extensions import extension_check
    from .lint import lint_checks
    from .source import privilege_checks, slots_check, timeout_check, tools_check

    tools, major = tools_check(conn, settings)
    scope = schemas_in_scope(conn)
    checks = [tools, *privilege_checks(conn, scope), timeout_check(conn)]
    checks.append(slots_check(conn, settings.effective_jobs))
    sizes, db = size_checks(conn, scope)
    checks += sizes
    checks += lint_checks(conn, scope)
    checks.append(extension_check(conn, settings, major))
    stored, storage = storage_checks(conn, s3)
    checks += stored
    return checks, major, db, storage


def _guarded(name: str, fn: Callable[[], list[Check]]) -> list[Check]:
    """A check that raised is a FAIL that names it, never a crashed dry run."""
    try:
        return fn()
    except (DrillError, psycopg.Error, OSError) as exc:
        return [Check(name, FAIL, first_line(exc, type(exc).__name__), "see the message")]


def run_preflight(
    settings: Config, db_url: str | None, s3: S3Endpoint | None, sources: list[str] | None = None
) -> list[Check]:
    """Every check, in order; nothing is written anywhere. ``sources``: every URL the
    staging target must not be (the exported one and SUPABASE_DB_URL)."""
    from ..source import connect_source
    from .notify import notify_checks
    from .source import pooler_check
    from .staging import staging_checks

    if settings.from_backup is not None:  # nothing is exported: the source is not read
        return _backup_preflight(settings, sources or ([db_url] if db_url else []))
    if db_url is None:
        raise DrillError(
            "--supabase-dry-run needs a source (SUPABASE_DB_URL or --supabase-demo) "
            "or --supabase-from-backup."
        )
    checks = [pooler_check(db_url)]
    major: int | None = None
    try:
        conn = connect_source(db_url, application="pytest-supabase-restore-preflight")
    except DrillError as exc:
        checks.append(
            Check(
                "source connection",
                FAIL,
                str(exc).partition(" Fix: ")[0],
                str(exc).partition(" Fix: ")[2].rstrip(".") or "check SUPABASE_DB_URL",
            )
        )
    else:
        checks.append(Check("source connection", PASS, "connected, read-only"))
        try:
            found, major, db, storage = _database_checks(conn, settings, db_url, s3)
            checks += found
            checks += disk_checks(settings, db, storage)
            checks.append(time_check(db, storage))
        except psycopg.Error as exc:  # a catalog the role may not read: said, not crashed
            checks.append(
                Check(
                    "source catalog",
                    FAIL,
                    f"reading the source's catalog failed: {first_line(exc, type(exc).__name__)}",
                    "run the dry run with the role the export will use (it must read the catalog)",
                )
            )
        finally:
            conn.rollback()
            conn.close()
    checks += _guarded("staging", lambda: staging_checks(settings, sources or [db_url], major))
    checks += _guarded("notifications", lambda: notify_checks(settings))
    return checks


def _backup_preflight(settings: Config, sources: list[str]) -> list[Check]:
    """A given backup and no source: the backup, the staging target, the notifications."""
    from .backup import backup_checks
    from .notify import notify_checks
    from .staging import staging_checks

    checks = _guarded("backup", lambda: backup_checks(settings))
    checks += _guarded("staging", lambda: staging_checks(settings, sources, None))
    checks += _guarded("notifications", lambda: notify_checks(settings))
    return checks
