-- event_triggers.sql: the six event triggers every Supabase project has, pointing at the
-- functions base.sql creates in `extensions`. Kept apart from base.sql because a pg_dump
-- of a Supabase database already holds these CREATE EVENT TRIGGER statements: a restore
-- of such a dump runs base.sql, restores, and needs this file only when the dump did not
-- bring them.
--
-- Our own rendering of the final state left by (read, not copied):
--   supabase/postgres @ 7db7e1a9e34b9ffb9b0e3372ccf08eb4fa772f4b:
--     migrations/db/init-scripts/00000000000003-post-setup.sql,
--     migrations/db/migrations/20220126121436_finer-postgrest-triggers.sql,
--     20220317095840_pg_graphql.sql, 20231020085357_revoke_writes_on_cron_job_from_postgres.sql;
--   from the code index: migrations/20250402065937_alter_internal_event_triggers_owner_to_supabase_admin.sql
--     @ 3fb8a3b5bc9b, migrations/schema-17.sql @ 832e2cb3ca99 (the tags each trigger filters on).
--
-- Run as supabase_admin (only a superuser may create an event trigger; all six are owned
-- by supabase_admin, as on the platform). Safe to run again: a trigger that exists is
-- left alone.

DO $triggers$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT *
        FROM (VALUES
            ('issue_pg_cron_access', 'ddl_command_end', 'CREATE EXTENSION',
             'extensions.grant_pg_cron_access'),
            ('issue_pg_net_access', 'ddl_command_end', 'CREATE EXTENSION',
             'extensions.grant_pg_net_access'),
            ('issue_pg_graphql_access', 'ddl_command_end', 'CREATE FUNCTION',
             'extensions.grant_pg_graphql_access'),
            ('issue_graphql_placeholder', 'sql_drop', 'DROP EXTENSION',
             'extensions.set_graphql_placeholder'),
            ('pgrst_ddl_watch', 'ddl_command_end', NULL, 'extensions.pgrst_ddl_watch'),
            ('pgrst_drop_watch', 'sql_drop', NULL, 'extensions.pgrst_drop_watch')
        ) AS wanted (name, event, tag, func)
    LOOP
        CONTINUE WHEN EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtname = t.name);
        IF t.tag IS NULL THEN
            EXECUTE format('CREATE EVENT TRIGGER %I ON %s EXECUTE FUNCTION %s()',
                           t.name, t.event, t.func);
        ELSE
            EXECUTE format('CREATE EVENT TRIGGER %I ON %s WHEN TAG IN (%L) EXECUTE FUNCTION %s()',
                           t.name, t.event, t.tag, t.func);
        END IF;
        EXECUTE format('ALTER EVENT TRIGGER %I OWNER TO supabase_admin', t.name);
    END LOOP;
END
$triggers$;
