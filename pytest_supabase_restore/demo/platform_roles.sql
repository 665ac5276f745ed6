-- The roles every Supabase project has, with Supabase's attributes and memberships.
--
-- Run as a superuser (the bootstrap superuser `supabase_admin`, as on Supabase). Safe to
-- run any number of times, and on a cluster that has nothing else in it: the restore code
-- runs this on a fresh staging cluster before the backup is restored, because pg_dump does
-- not dump roles and a Supabase dump is full of grants to and objects owned by these roles.
--
-- A role that does not exist is created; one that exists is brought back to Supabase's
-- attributes, except the bootstrap superuser and the role running this script (demoting
-- either would break the session that is doing the work).
--
-- Sources: supabase/postgres migrations/db/init-scripts/0000000000000{0,1,2,3}-*.sql,
-- migrations/db/migrations/10000000000000_demote-postgres.sql,
-- ansible/files/pgbouncer_config/pgbouncer_auth_schema.sql. No passwords: the demo and
-- staging clusters use trust authentication on loopback only.

DO $roles$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT *
        FROM (
            VALUES
                -- The role a Supabase user works as: not a superuser since the platform
                -- "demoted" it, but allowed to bypass RLS, replicate and create roles.
                ('postgres',
                 'NOSUPERUSER INHERIT CREATEDB CREATEROLE LOGIN REPLICATION BYPASSRLS'),
                -- API roles that PostgREST switches to for each request.
                ('anon',
                 'NOSUPERUSER NOINHERIT NOCREATEDB NOCREATEROLE NOLOGIN NOREPLICATION NOBYPASSRLS'),
                ('authenticated',
                 'NOSUPERUSER NOINHERIT NOCREATEDB NOCREATEROLE NOLOGIN NOREPLICATION NOBYPASSRLS'),
                ('service_role',
                 'NOSUPERUSER NOINHERIT NOCREATEDB NOCREATEROLE NOLOGIN NOREPLICATION BYPASSRLS'),
                -- PostgREST logs in as authenticator and SET ROLEs to one of the above.
                ('authenticator',
                 'NOSUPERUSER NOINHERIT NOCREATEDB NOCREATEROLE LOGIN NOREPLICATION NOBYPASSRLS'),
                -- Service roles: Auth (GoTrue), Storage, Database Webhooks.
                ('supabase_auth_admin',
                 'NOSUPERUSER NOINHERIT NOCREATEDB CREATEROLE LOGIN NOREPLICATION NOBYPASSRLS'),
                ('supabase_storage_admin',
                 'NOSUPERUSER NOINHERIT NOCREATEDB CREATEROLE LOGIN NOREPLICATION NOBYPASSRLS'),
                ('supabase_functions_admin',
                 'NOSUPERUSER NOINHERIT NOCREATEDB CREATEROLE LOGIN NOREPLICATION NOBYPASSRLS'),
                ('supabase_replication_admin',
                 'NOSUPERUSER INHERIT NOCREATEDB NOCREATEROLE LOGIN REPLICATION NOBYPASSRLS'),
                ('supabase_read_only_user',
                 'NOSUPERUSER INHERIT NOCREATEDB NOCREATEROLE LOGIN NOREPLICATION BYPASSRLS'),
                -- The dashboard's role and the connection pooler's auth-query role.
                ('dashboard_user',
                 'NOSUPERUSER INHERIT CREATEDB CREATEROLE NOLOGIN REPLICATION NOBYPASSRLS'),
                ('pgbouncer',
                 'NOSUPERUSER INHERIT NOCREATEDB NOCREATEROLE LOGIN NOREPLICATION NOBYPASSRLS')
        ) AS wanted (name, attributes)
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r.name) THEN
            EXECUTE format('CREATE ROLE %I WITH %s', r.name, r.attributes);
        ELSIF EXISTS (
            SELECT 1
            FROM pg_catalog.pg_roles
            WHERE rolname = r.name
              AND oid <> 10                 -- the bootstrap superuser
              AND rolname <> current_user   -- whoever runs this script
        ) THEN
            EXECUTE format('ALTER ROLE %I WITH %s', r.name, r.attributes);
        END IF;
    END LOOP;
END
$roles$;

-- Memberships. GRANT of an existing membership is a NOTICE, not an error, so these are
-- idempotent as they stand.
GRANT anon, authenticated, service_role TO authenticator;
-- Supabase grants the API roles to postgres so that it can SET ROLE to test policies.
GRANT anon, authenticated, service_role TO postgres;
GRANT pg_read_all_data TO supabase_read_only_user;

-- Per-role settings (ALTER ROLE ... SET replaces the previous value: idempotent).
ALTER ROLE anon SET statement_timeout = '3s';
ALTER ROLE authenticated SET statement_timeout = '8s';
ALTER ROLE postgres SET search_path TO "$user", public, extensions;
ALTER ROLE supabase_auth_admin SET search_path TO auth;
ALTER ROLE supabase_storage_admin SET search_path TO storage;
