-- roles.sql: the reserved roles of a fresh Supabase project, with the attributes,
-- memberships, per-role settings and database-level grants the platform gives them.
--
-- Our own rendering of the final state that these files leave behind (read, not copied):
--   supabase/postgres @ 7db7e1a9e34b9ffb9b0e3372ccf08eb4fa772f4b (develop, 2024-10-23):
--     migrations/db/init-scripts/00000000000000-initial-schema.sql,
--     00000000000001-auth-schema.sql, 00000000000002-storage-schema.sql,
--     00000000000003-post-setup.sql, migrations/db/migrate.sh,
--     ansible/files/pgbouncer_config/pgbouncer_auth_schema.sql,
--     migrations/db/migrations/10000000000000_demote-postgres.sql,
--     20220322085208_gotrue-session-limit.sql, 20221028101028_set_authenticator_timeout.sql,
--     20221103090837_revoke_admin.sql, 20230201083204_grant_auth_roles_to_postgres.sql,
--     20230306081037_grant_pg_monitor_to_postgres.sql,
--     20230529180330_alter_api_roles_for_inherit.sql,
--     20231013070755_grant_authenticator_to_supabase_storage_admin.sql,
--     20231130133139_set_lock_timeout_to_authenticator_role.sql,
--     20240124080435_alter_lo_export_lo_import_owner.sql,
--     20240606060239_grant_predefined_roles_to_postgres.sql
--   and newer files of the same repository, read one by one from the code index at these
--   commits (the fetched snapshot predates them):
--     init-scripts/00000000000003-realtime-schema.sql @ 96d8873887e1,
--     init-scripts/00000000000001-auth-schema.sql @ ce2035d9444e (supabase_auth_admin NOCREATEROLE),
--     migrations/20250421084701_revoke_admin_roles_from_postgres.sql @ 96d8873887e1,
--     migrations/20251105172723_grant_pg_reload_conf_to_postgres.sql @ 40429ec3b2b2,
--     migrations/20251121141100_supabase_auth_admin_db_grants.sql @ aca19b4aae6b,
--     migrations/20260821154147_revoke_createrole_from_auth_admin.sql @ 853417021f98
--
-- Run as the bootstrap superuser (supabase_admin, as on Supabase), in the database the
-- backup will be restored into. Safe to run any number of times: a role that is missing is
-- created, a role that exists is brought to these attributes (except the bootstrap
-- superuser and the role running this file), memberships are granted (a repeated GRANT is
-- only a notice) and memberships the platform has since taken away are revoked.
--
-- Left out, and why:
--   * passwords: staging sets its own (Cluster.set_password); the platform's come from
--     /etc/postgresql.schema.sql at boot.
--   * session_preload_libraries / local_preload_libraries = supautils, safeupdate and the
--     safeupdate.enabled settings of anon, authenticated, authenticator and postgres
--     (20220118070449, 20260403172611, 20260413000000, 20261010094800): neither library is
--     installed here, and a preload library that cannot be loaded makes every login of
--     that role fail.
--   * pgsodium_keyholder / keyiduser / keymaker and their grants to postgres and
--     service_role (20221207154255, 20230529180330): they come with the pgsodium extension.
--   * supabase_superuser and supabase_etl_admin (20251215120934): the attributes of
--     supabase_etl_admin are not in any file we could read.
--   * GRANT ... WITH ADMIN to postgres (20250605172253): PostgreSQL 16 and later only.

DO $roles$
DECLARE
    wanted record;
BEGIN
    FOR wanted IN
        SELECT *
        FROM (VALUES
            -- The bootstrap superuser: listed so that a cluster bootstrapped under another
            -- name still gets it; never altered while it is the one doing the work.
            ('supabase_admin',
             'SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS'),
            -- The role a Supabase user works as. Created a superuser by migrate.sh, then
            -- "demoted" by 10000000000000_demote-postgres.sql.
            ('postgres',
             'NOSUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS'),
            -- The API roles PostgREST switches to; INHERIT since 20230529180330.
            ('anon',
             'NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS'),
            ('authenticated',
             'NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS'),
            ('service_role',
             'NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION BYPASSRLS'),
            -- PostgREST logs in as authenticator and SET ROLEs to one of the three above.
            ('authenticator',
             'NOSUPERUSER NOINHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS'),
            -- Auth (GoTrue): NOCREATEROLE since 20260821154147.
            ('supabase_auth_admin',
             'NOSUPERUSER NOINHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS'),
            ('supabase_storage_admin',
             'NOSUPERUSER NOINHERIT CREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS'),
            -- Realtime (init-scripts/00000000000003-realtime-schema.sql).
            ('supabase_realtime_admin',
             'NOSUPERUSER NOINHERIT CREATEROLE NOCREATEDB LOGIN REPLICATION NOBYPASSRLS'),
            -- Database Webhooks: created by extensions.grant_pg_net_access() the first time
            -- pg_net is enabled, with these attributes. A backup of a project that used
            -- webhooks has objects owned by it, so staging always has it.
            ('supabase_functions_admin',
             'NOSUPERUSER NOINHERIT CREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS'),
            ('supabase_replication_admin',
             'NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN REPLICATION NOBYPASSRLS'),
            ('supabase_read_only_user',
             'NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION BYPASSRLS'),
            -- The dashboard's role (post-setup) and the pooler's auth-query role.
            ('dashboard_user',
             'NOSUPERUSER INHERIT CREATEROLE CREATEDB NOLOGIN REPLICATION NOBYPASSRLS'),
            ('pgbouncer',
             'NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS')
        ) AS w (name, attributes)
    LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = wanted.name) THEN
            EXECUTE format('CREATE ROLE %I WITH %s', wanted.name, wanted.attributes);
        ELSIF EXISTS (
            SELECT FROM pg_catalog.pg_roles
            WHERE rolname = wanted.name
              AND oid <> 10                  -- the bootstrap superuser
              AND rolname <> current_user    -- whoever runs this file
        ) THEN
            EXECUTE format('ALTER ROLE %I WITH %s', wanted.name, wanted.attributes);
        END IF;
    END LOOP;
END
$roles$;

-- Memberships as they stand after every migration.
GRANT anon, authenticated, service_role TO authenticator;
GRANT anon, authenticated, service_role TO postgres;
GRANT pg_monitor, pg_read_all_data, pg_signal_backend TO postgres;
GRANT pg_read_all_data TO supabase_read_only_user;
GRANT authenticator TO supabase_storage_admin;
GRANT anon, authenticated, service_role TO supabase_realtime_admin;

-- Memberships the platform gave once and has since taken away (a REVOKE of a membership
-- that does not exist is only a warning): supabase_admin from authenticator
-- (20221103090837), the API roles from supabase_storage_admin (20231013070755), and the
-- service admins from postgres (20220609081115, undone by 20250421084701).
REVOKE supabase_admin FROM authenticator;
REVOKE anon, authenticated, service_role FROM supabase_storage_admin;
REVOKE supabase_auth_admin, supabase_storage_admin, supabase_realtime_admin FROM postgres;

-- Per-role settings (ALTER ROLE ... SET replaces the earlier value).
ALTER ROLE anon SET statement_timeout = '3s';
ALTER ROLE authenticated SET statement_timeout = '8s';
ALTER ROLE authenticator SET statement_timeout = '8s';
ALTER ROLE authenticator SET lock_timeout = '8s';
ALTER ROLE supabase_auth_admin SET search_path = auth;
ALTER ROLE supabase_auth_admin SET idle_in_transaction_session_timeout = 60000;
ALTER ROLE supabase_storage_admin SET search_path = storage;
ALTER ROLE supabase_realtime_admin SET search_path = public, extensions, realtime;
-- migrate.sh feeds post-setup to psql, which passes "\$user" through untouched: on a real
-- project the first entry of these search paths is the identifier \$user (which names no
-- schema), not $user. We keep that quirk so that SHOW search_path matches the platform.
ALTER ROLE postgres SET search_path = "\$user", public, extensions;
DO $admin_path$
BEGIN
    -- Only when supabase_admin is not the role running this file: a role's own settings
    -- are better changed by someone else (and staging's bootstrap superuser keeps its own).
    IF current_user <> 'supabase_admin' THEN
        ALTER ROLE supabase_admin SET search_path = "\$user", public, auth, extensions;
    END IF;
END
$admin_path$;

-- Database-level: migrate.sh makes postgres the owner of the project's database (so it
-- owns `public` through pg_database_owner); post-setup and demote-postgres grant ALL on
-- it to dashboard_user and postgres; Realtime and Auth may create schemas in it.
DO $database$
BEGIN
    EXECUTE format('ALTER DATABASE %I OWNER TO postgres', current_database());
    EXECUTE format('GRANT ALL ON DATABASE %I TO postgres, dashboard_user', current_database());
    EXECUTE format(
        'GRANT CREATE ON DATABASE %I TO supabase_realtime_admin, supabase_auth_admin',
        current_database());
END
$database$;
GRANT SET ON PARAMETER log_min_messages TO supabase_realtime_admin;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_reload_conf() TO postgres;
ALTER FUNCTION pg_catalog.lo_export(oid, text) OWNER TO supabase_admin;
ALTER FUNCTION pg_catalog.lo_import(text) OWNER TO supabase_admin;
ALTER FUNCTION pg_catalog.lo_import(text, oid) OWNER TO supabase_admin;
