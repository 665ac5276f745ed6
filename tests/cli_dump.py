"""Make a Supabase CLI dump (``supabase db dump``) the way the CLI makes one.

Our own implementation of what the CLI documents (``supabase/cli``,
``apps/cli-go/pkg/migration/dump.go`` and ``pkg/migration/scripts/dump_{role,schema,data}.sh``,
read at commit 1d1e7191268e068fe9cb6aba524d1c619a9c727b): the same pg_dump / pg_dumpall flags,
the same schema lists, and the same line rewrites, applied here with Python regular
expressions instead of sed. Defaults as ``supabase db dump`` has them: comments dropped from
the schema and roles dumps, data as column INSERTs of up to 100,000 rows each.
"""

from __future__ import annotations

import re
from pathlib import Path

from pytest_supabase_restore.pg.binaries import PgBinaries
from pytest_supabase_restore.pgtools import run_tool

INTERNAL_SCHEMAS = (
    "information_schema|pg_*|_analytics|_realtime|_supavisor|auth|etl|extensions|pgbouncer|"
    "realtime|storage|supabase_functions|supabase_migrations|cron|dbdev|graphql|"
    "graphql_public|net|pgmq|pgsodium|pgsodium_masks|pgtle|repack|tiger|tiger_data|"
    "timescaledb_*|_timescaledb_*|topology|vault"
)
DATA_EXCLUDED_SCHEMAS = (
    "information_schema|pg_*|graphql|graphql_public|pgsodium|pgsodium_masks|pgtle|repack|"
    "tiger|tiger_data|timescaledb_*|_timescaledb_*|topology|vault|etl|extensions|pgbouncer|"
    "realtime|supabase_migrations|_analytics|_realtime|_supavisor"
)
RESERVED_ROLES = (
    "anon|authenticated|authenticator|cli_login_.*|dashboard_user|pgbouncer|postgres|"
    "service_role|supabase_.*|pgsodium_keyholder|pgsodium_keyiduser|pgsodium_keymaker|"
    "pgtle_admin"
)
ALLOWED_CONFIGS = "pgaudit.*|pgrst.*|session_replication_role|statement_timeout|track_io_timing"

_RESTRICT = (r"^\\(un)?restrict .*$", r"-- \g<0>")

ROLE_RULES = [
    _RESTRICT,
    (rf'^CREATE ROLE "({RESERVED_ROLES})"', r"-- \g<0>"),
    (rf'^ALTER ROLE "({RESERVED_ROLES})"', r"-- \g<0>"),
    (r" (NOSUPERUSER|NOREPLICATION)", ""),
    (rf'^-- (.* SET "({ALLOWED_CONFIGS})" .*)', r"\1"),
    (rf'GRANT ".*" TO "({RESERVED_ROLES})"', r"-- \g<0>"),
    (r"^--.*\n?", ""),  # EXTRA_SED=/^--/d (comments not kept)
]

SCHEMA_RULES = [
    _RESTRICT,
    (r'^CREATE SCHEMA "', 'CREATE SCHEMA IF NOT EXISTS "'),
    (r'^CREATE TABLE "', 'CREATE TABLE IF NOT EXISTS "'),
    (r'^CREATE SEQUENCE "', 'CREATE SEQUENCE IF NOT EXISTS "'),
    (r'^CREATE VIEW "', 'CREATE OR REPLACE VIEW "'),
    (r'^CREATE FUNCTION "', 'CREATE OR REPLACE FUNCTION "'),
    (r'^CREATE TRIGGER "', 'CREATE OR REPLACE TRIGGER "'),
    (r'^CREATE PUBLICATION "supabase_realtime', r"-- \g<0>"),
    (r"^CREATE EVENT TRIGGER ", r"-- \g<0>"),
    (r"^         WHEN TAG IN ", r"-- \g<0>"),
    (r"^   EXECUTE FUNCTION ", r"-- \g<0>"),
    (r"^ALTER EVENT TRIGGER ", r"-- \g<0>"),
    (r'^ALTER PUBLICATION "supabase_realtime_', r"-- \g<0>"),
    (r"^ALTER FOREIGN DATA WRAPPER (.+) OWNER TO ", r"-- \g<0>"),
    (r'^ALTER DEFAULT PRIVILEGES FOR ROLE "supabase_admin"', r"-- \g<0>"),
    (r'^GRANT ALL ON FOREIGN DATA WRAPPER (.+) TO "postgres" WITH GRANT OPTION', r"-- \g<0>"),
    (rf'^GRANT (.+) ON (.+) "({INTERNAL_SCHEMAS})"', r"-- \g<0>"),
    (rf'^REVOKE (.+) ON (.+) "({INTERNAL_SCHEMAS})"', r"-- \g<0>"),
    (r'^(CREATE EXTENSION IF NOT EXISTS "pg_tle").+', r"\1;"),
    (r'^(CREATE EXTENSION IF NOT EXISTS "pgsodium").+', r"\1;"),
    (r'^(CREATE EXTENSION IF NOT EXISTS "pgmq").+', r"\1;"),
    (r"^COMMENT ON EXTENSION (.+)", r"-- \g<0>"),
    (r'^CREATE POLICY "cron_job_', r"-- \g<0>"),
    (r'^ALTER TABLE "cron"', r"-- \g<0>"),
    (r"^SET transaction_timeout = 0;", r"-- \g<0>"),
    (r"^--.*\n?", ""),
]


def _sed(text: str, rules: list[tuple[str, str]]) -> str:
    # sed applies its expressions line by line, in order; so do these (POSIX ERE and
    # Python's syntax agree for every pattern above once '&' is written as \g<0>).
    for pattern, replacement in rules:
        text = re.sub(pattern, replacement, text, flags=re.M)
    return text


def _excluded(schemas: str) -> list[str]:
    return [f"--exclude-schema={schemas}"]


def cli_dump(tools: PgBinaries, db_url: str, out: Path) -> Path:
    """Write roles.sql, schema.sql and data.sql of ``db_url`` into ``out``, as
    ``supabase db dump --role-only`` / (default) / ``--data-only`` write them."""
    out.mkdir(parents=True, exist_ok=True)
    roles = run_tool(
        [
            tools.path("pg_dumpall"),
            "--roles-only",
            "--role",
            "postgres",
            "--quote-all-identifier",
            "--no-role-passwords",
            "--no-comments",
        ],
        db_url,
    )
    schema = run_tool(
        [
            tools.path("pg_dump"),
            "--schema-only",
            "--quote-all-identifier",
            "--role",
            "postgres",
            *_excluded(INTERNAL_SCHEMAS),
        ],
        db_url,
    )
    data = run_tool(
        [
            tools.path("pg_dump"),
            "--data-only",
            "--quote-all-identifier",
            "--role",
            "postgres",
            *_excluded(DATA_EXCLUDED_SCHEMAS),
            "--exclude-table",
            "auth.schema_migrations",
            "--exclude-table",
            "storage.migrations",
            "--exclude-table",
            "supabase_functions.migrations",
            "--schema",
            "*",
            "--column-inserts",
            "--rows-per-insert",
            "100000",
        ],
        db_url,
    )
    for name, result in (("roles", roles), ("schema", schema), ("data", data)):
        if result.returncode != 0:
            raise AssertionError(f"the {name} dump failed: {result.stderr}")
    # dump_role.sh: sed ... | uniq, then "RESET ALL;"
    role_lines = _sed(roles.stdout, ROLE_RULES).splitlines()
    unique = [line for i, line in enumerate(role_lines) if i == 0 or line != role_lines[i - 1]]
    (out / "roles.sql").write_text("\n".join(unique) + "\nRESET ALL;\n")
    (out / "schema.sql").write_text(_sed(schema.stdout, SCHEMA_RULES))
    data_text = _sed(data.stdout, [_RESTRICT])
    (out / "data.sql").write_text(
        "SET session_replication_role = replica;\n\n" + data_text + "RESET ALL;\n"
    )
    return out
