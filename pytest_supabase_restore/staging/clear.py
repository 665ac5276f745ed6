"""Clearing a url staging target before a restore: the backup's own schemas are dropped in
one transaction, and only when the cascade reaches nothing outside them (:func:`clear_scope`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import psycopg
from psycopg import sql

from ..errors import RestoreError, SafetyError, first_line
from ..proof.scope import schema_excluded

PLATFORM_SCHEMAS = ("auth", "storage", "extensions")
"""Kept on a staging target where the Supabase platform is present: the platform owns them."""
SHOWN_OBJECTS = 10  # a refusal lists at most this many objects
LOCK_TIMEOUT = 60  # seconds clear_scope waits for another session's lock on staging


def _first_line(exc: BaseException) -> str:
    return first_line(exc, type(exc).__name__)


_OUTSIDE = """
WITH inside AS (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = ANY(%(drop)s::text[])),
rel AS (SELECT oid FROM pg_catalog.pg_class
        WHERE relnamespace NOT IN (SELECT oid FROM inside)
          AND relnamespace <> 'pg_toast'::pg_catalog.regnamespace),
typ AS (SELECT oid FROM pg_catalog.pg_type WHERE typnamespace NOT IN (SELECT oid FROM inside))
SELECT 'pg_namespace'::regclass::oid, oid, 0 FROM pg_catalog.pg_namespace
    WHERE oid NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_class'::regclass::oid, oid, 0 FROM rel
UNION ALL SELECT 'pg_class'::regclass::oid, attrelid, attnum FROM pg_catalog.pg_attribute
    WHERE attnum > 0 AND NOT attisdropped AND attrelid IN (SELECT oid FROM rel)
UNION ALL SELECT 'pg_attrdef'::regclass::oid, oid, 0 FROM pg_catalog.pg_attrdef
    WHERE adrelid IN (SELECT oid FROM rel)
UNION ALL SELECT 'pg_constraint'::regclass::oid, oid, 0 FROM pg_catalog.pg_constraint
    WHERE conrelid IN (SELECT oid FROM rel) OR contypid IN (SELECT oid FROM typ)
       OR (conrelid = 0 AND contypid = 0 AND connamespace NOT IN (SELECT oid FROM inside))
UNION ALL SELECT 'pg_trigger'::regclass::oid, oid, 0 FROM pg_catalog.pg_trigger
    WHERE tgrelid IN (SELECT oid FROM rel) AND NOT tgisinternal
UNION ALL SELECT 'pg_rewrite'::regclass::oid, oid, 0 FROM pg_catalog.pg_rewrite
    WHERE ev_class IN (SELECT oid FROM rel)
UNION ALL SELECT 'pg_policy'::regclass::oid, oid, 0 FROM pg_catalog.pg_policy
    WHERE polrelid IN (SELECT oid FROM rel)
UNION ALL SELECT 'pg_type'::regclass::oid, oid, 0 FROM typ
UNION ALL SELECT 'pg_proc'::regclass::oid, oid, 0 FROM pg_catalog.pg_proc
    WHERE pronamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_operator'::regclass::oid, oid, 0 FROM pg_catalog.pg_operator
    WHERE oprnamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_opclass'::regclass::oid, oid, 0 FROM pg_catalog.pg_opclass
    WHERE opcnamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_opfamily'::regclass::oid, oid, 0 FROM pg_catalog.pg_opfamily
    WHERE opfnamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_collation'::regclass::oid, oid, 0 FROM pg_catalog.pg_collation
    WHERE collnamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_conversion'::regclass::oid, oid, 0 FROM pg_catalog.pg_conversion
    WHERE connamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_statistic_ext'::regclass::oid, oid, 0 FROM pg_catalog.pg_statistic_ext
    WHERE stxnamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_ts_config'::regclass::oid, oid, 0 FROM pg_catalog.pg_ts_config
    WHERE cfgnamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_ts_dict'::regclass::oid, oid, 0 FROM pg_catalog.pg_ts_dict
    WHERE dictnamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_ts_parser'::regclass::oid, oid, 0 FROM pg_catalog.pg_ts_parser
    WHERE prsnamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_ts_template'::regclass::oid, oid, 0 FROM pg_catalog.pg_ts_template
    WHERE tmplnamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_default_acl'::regclass::oid, oid, 0 FROM pg_catalog.pg_default_acl
    WHERE defaclnamespace NOT IN (SELECT oid FROM inside)
UNION ALL SELECT 'pg_extension'::regclass::oid, oid, 0 FROM pg_catalog.pg_extension
    WHERE NOT (extname = ANY(%(recreated)s::text[]) AND extnamespace IN (SELECT oid FROM inside))
UNION ALL SELECT 'pg_cast'::regclass::oid, oid, 0 FROM pg_catalog.pg_cast
UNION ALL SELECT 'pg_event_trigger'::regclass::oid, oid, 0 FROM pg_catalog.pg_event_trigger
UNION ALL SELECT 'pg_language'::regclass::oid, oid, 0 FROM pg_catalog.pg_language
UNION ALL SELECT 'pg_foreign_data_wrapper'::regclass::oid, oid, 0
    FROM pg_catalog.pg_foreign_data_wrapper
UNION ALL SELECT 'pg_foreign_server'::regclass::oid, oid, 0 FROM pg_catalog.pg_foreign_server
UNION ALL SELECT 'pg_transform'::regclass::oid, oid, 0 FROM pg_catalog.pg_transform
UNION ALL SELECT 'pg_publication'::regclass::oid, oid, 0 FROM pg_catalog.pg_publication
UNION ALL SELECT 'pg_publication_rel'::regclass::oid, oid, 0 FROM pg_catalog.pg_publication_rel
    WHERE prrelid IN (SELECT oid FROM rel)
"""


# The reached objects, described, leaving out the parts of another reached object (the
# columns, rules, row and array types of a view, the defaults and constraints of a table).
_DESCRIBE = """
WITH r(c, o, s) AS (SELECT * FROM unnest(%s::oid[], %s::oid[], %s::int[]))
SELECT pg_catalog.pg_describe_object(r.c, r.o, r.s) FROM r
WHERE NOT EXISTS (
    SELECT 1 FROM (
        SELECT 'pg_class'::regclass::oid, r.o WHERE r.c = 'pg_class'::regclass AND r.s <> 0
        UNION ALL SELECT 'pg_class'::regclass::oid, ev_class FROM pg_catalog.pg_rewrite
            WHERE r.c = 'pg_rewrite'::regclass AND oid = r.o
        UNION ALL SELECT 'pg_class'::regclass::oid, typrelid FROM pg_catalog.pg_type
            WHERE r.c = 'pg_type'::regclass AND oid = r.o AND typrelid <> 0
        UNION ALL SELECT 'pg_type'::regclass::oid, typelem FROM pg_catalog.pg_type
            WHERE r.c = 'pg_type'::regclass AND oid = r.o AND typcategory = 'A'
        UNION ALL SELECT 'pg_class'::regclass::oid, adrelid FROM pg_catalog.pg_attrdef
            WHERE r.c = 'pg_attrdef'::regclass AND oid = r.o
        UNION ALL SELECT 'pg_class'::regclass::oid, conrelid FROM pg_catalog.pg_constraint
            WHERE r.c = 'pg_constraint'::regclass AND oid = r.o AND conrelid <> 0
        UNION ALL SELECT 'pg_type'::regclass::oid, contypid FROM pg_catalog.pg_constraint
            WHERE r.c = 'pg_constraint'::regclass AND oid = r.o AND contypid <> 0
        UNION ALL SELECT 'pg_class'::regclass::oid, tgrelid FROM pg_catalog.pg_trigger
            WHERE r.c = 'pg_trigger'::regclass AND oid = r.o
        UNION ALL SELECT 'pg_class'::regclass::oid, polrelid FROM pg_catalog.pg_policy
            WHERE r.c = 'pg_policy'::regclass AND oid = r.o
        UNION ALL SELECT 'pg_class'::regclass::oid, prrelid FROM pg_catalog.pg_publication_rel
            WHERE r.c = 'pg_publication_rel'::regclass AND oid = r.o
    ) AS parent(pc, po)
    JOIN r AS whole ON whole.c = parent.pc AND whole.o = parent.po AND whole.s = 0
)
"""


def _refused_names(schemas: Collection[str]) -> list[str]:
    """Scope entries that no backup holds: system schemas and the platform's excluded ones."""
    return sorted(
        s
        for s in schemas
        if s in ("pg_catalog", "information_schema") or s.startswith("pg_") or schema_excluded(s)
    )


def _outside(
    conn: psycopg.Connection[Any], drop: list[str], recreated: list[str]
) -> set[tuple[int, int, int]]:
    rows = conn.execute(_OUTSIDE, {"drop": drop, "recreated": recreated}).fetchall()
    return {(int(c), int(o), int(s)) for c, o, s in rows}


def _shorten(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN_OBJECTS])
    more = len(items) - SHOWN_OBJECTS
    return shown + (f" (+{more} more)" if more > 0 else "")


def _schemas_to_drop(
    conn: psycopg.Connection[Any], schemas: list[str], keep: set[str]
) -> list[str]:
    """The schemas of ``schemas`` that exist here and are dropped: not in ``keep``, not an
    extension's. Refused (:class:`SafetyError`) when this role may not drop one of them."""
    rows = conn.execute(
        "SELECT n.nspname::text, pg_catalog.pg_has_role(n.nspowner, 'USAGE'), "
        "pg_catalog.pg_get_userbyid(n.nspowner)::text, EXISTS (SELECT 1 FROM "
        "pg_catalog.pg_depend d WHERE d.classid = 'pg_namespace'::regclass "
        "AND d.objid = n.oid AND d.deptype = 'e') "
        "FROM pg_catalog.pg_namespace n WHERE n.nspname = ANY(%s::text[]) ORDER BY 1",
        [list(schemas)],
    ).fetchall()
    drop = [name for name, _, _, member in rows if name not in keep and not member]
    role = conn.execute("SELECT current_user::text").fetchone()
    denied = [
        f"{name} (owned by {owner})" for name, may, owner, _ in rows if name in drop and not may
    ]
    if denied:
        raise SafetyError(
            f"Refusing to clear the staging database: the role {role[0] if role else '?'} "
            f"of STAGING_DB_URL may not drop the schema(s) {', '.join(denied)}; nothing "
            "was changed. Fix: connect STAGING_DB_URL as the schemas' owner (on Supabase: "
            "the postgres user), or give the schemas to this role (ALTER SCHEMA ... OWNER "
            "TO ...)."
        )
    return drop


def _require_create(conn: psycopg.Connection[Any]) -> None:
    """Refused (:class:`SafetyError`) when this role may not create schemas in the database."""
    allowed = conn.execute(
        "SELECT pg_catalog.has_database_privilege(current_database(), 'CREATE')"
    ).fetchone()
    if not allowed or not allowed[0]:
        raise SafetyError(
            "Refusing to clear the staging database: the role of STAGING_DB_URL may not "
            "create schemas in it (no CREATE privilege on the database), so the restore "
            "could not recreate what would be dropped; nothing was changed. Fix: "
            "connect as the database owner (on Supabase: the postgres user)."
        )


def _drop_schemas(conn: psycopg.Connection[Any], drop: list[str], recreated: list[str]) -> None:
    """``DROP SCHEMA ... CASCADE`` each of ``drop`` in a savepoint, rolled back and refused
    (:class:`SafetyError`) when the cascade reached any object outside them."""
    before = _outside(conn, drop, recreated)
    conn.execute("SAVEPOINT clear_scope")
    try:
        for schema in drop:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as exc:
        raise RestoreError(
            f"Clearing the staging database was stopped while waiting for another "
            f"session's lock ({_first_line(exc)}); nothing was changed. Fix: end the other "
            "sessions on the staging database, then run the drill again."
        ) from exc
    except psycopg.Error as exc:
        raise SafetyError(
            f"Refusing to clear the staging database: DROP SCHEMA failed "
            f"({_first_line(exc)}); nothing was changed."
        ) from exc
    reached = before - _outside(conn, drop, recreated)
    if reached:
        conn.execute("ROLLBACK TO SAVEPOINT clear_scope")
        names = sorted(
            str(r[0])
            for r in conn.execute(
                _DESCRIBE,
                [[r[0] for r in reached], [r[1] for r in reached], [r[2] for r in reached]],
            ).fetchall()
        )
        raise SafetyError(
            f"Refusing to clear the staging database: dropping the backup's schemas "
            f"({', '.join(drop)}) would also drop {len(names)} object(s) outside them: "
            f"{_shorten(names)}; nothing was changed. Fix: remove those objects, or their "
            "dependency on the backup's schemas, from the staging database (or use a "
            "staging database that holds nothing else)."
        )


def clear_scope(
    dsn: str,
    schemas: list[str],
    platform_present: bool,
    *,
    recreated_extensions: Collection[str] = (),
) -> list[str]:
    """Drop the backup's own schemas from staging, in one transaction; returns those dropped.

    Dropped: each schema of ``schemas`` that exists here, except the platform's own where
    the platform is present, and a schema that belongs to an extension. Refused before
    anything changes (:class:`SafetyError`): a scope entry that is a system or platform
    schema (no backup holds one: the manifest is damaged or edited), a schema this role
    may not drop, and a cascade that would reach any object outside the dropped schemas
    (a view, foreign key, default, column, function ... elsewhere, or an extension, unless
    the backup itself installs that extension into the dropped schema:
    ``recreated_extensions``). ``public`` is created again in the same transaction.
    """
    refused = _refused_names(schemas)
    if refused:
        raise SafetyError(
            f"Refusing to clear the staging database: the backup's list of schemas names "
            f"{', '.join(refused)}, which no backup holds (system or platform schemas); the "
            "manifest is damaged or was edited, and nothing was changed. Fix: export a new "
            "backup set."
        )
    keep = set(PLATFORM_SCHEMAS) if platform_present else set()
    with psycopg.connect(dsn, connect_timeout=15) as conn:  # one transaction, committed last
        conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}s'")
        drop = _schemas_to_drop(conn, schemas, keep)
        if not drop:
            return []
        _require_create(conn)
        _drop_schemas(conn, drop, sorted(recreated_extensions))
        if "public" in schemas:
            _recreate_public(conn)
        conn.commit()
    return drop


def _recreate_public(conn: psycopg.Connection[Any]) -> None:
    """``public`` as a new database has it, so that the restore, which applies only what the
    backup's ``public`` has beyond that, ends with the backup's owner and grants: on
    PostgreSQL 15+ owned by ``pg_database_owner`` with USAGE for PUBLIC. A role that is not
    the database's owner cannot give it that owner; it keeps ``public`` as its own."""
    row = conn.execute(
        "SELECT current_setting('server_version_num')::int >= 150000 "
        "AND pg_has_role('pg_database_owner', 'MEMBER')"
    ).fetchone()
    if row is not None and row[0]:
        conn.execute("CREATE SCHEMA IF NOT EXISTS public AUTHORIZATION pg_database_owner")
        conn.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
        conn.execute("COMMENT ON SCHEMA public IS 'standard public schema'")
    else:
        conn.execute("CREATE SCHEMA IF NOT EXISTS public")
