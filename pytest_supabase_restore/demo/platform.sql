-- The demo project's own platform pieces, run as supabase_admin after the platform SQL of
-- a fresh Supabase project (pytest_supabase_restore/staging/platform: roles, base, event
-- triggers, auth, storage), as the dashboard and the services add them to a project: the
-- Storage policies of the demo app's buckets, Database Webhooks (supabase_functions) and the
-- CLI's migration history (supabase_migrations).

-- Storage policies for the buckets the demo app uses, as a user would write them in the
-- dashboard (created here by the superuser: only the table owner or a superuser may).
CREATE POLICY "Avatar images are publicly accessible." ON storage.objects
    FOR SELECT USING (bucket_id = 'avatars');
CREATE POLICY "Users can upload their own avatar." ON storage.objects
    FOR INSERT TO authenticated
    WITH CHECK (bucket_id = 'avatars' AND (storage.foldername(name))[1] = (SELECT auth.uid())::text);
CREATE POLICY "Users can update their own avatar." ON storage.objects
    FOR UPDATE TO authenticated
    USING (bucket_id = 'avatars' AND owner_id = (SELECT auth.uid())::text);
CREATE POLICY "Users read their own documents" ON storage.objects
    FOR SELECT TO authenticated
    USING (bucket_id = 'documents' AND (storage.foldername(name))[1] = (SELECT auth.uid())::text);
CREATE POLICY "Users upload into their own documents folder" ON storage.objects
    FOR INSERT TO authenticated
    WITH CHECK (bucket_id = 'documents' AND (storage.foldername(name))[1] = (SELECT auth.uid())::text);
CREATE POLICY "Users delete their own documents" ON storage.objects
    FOR DELETE TO authenticated
    USING (bucket_id = 'documents' AND owner_id = (SELECT auth.uid())::text);
CREATE POLICY "Signed-in users can see images" ON storage.objects
    FOR SELECT TO authenticated USING (bucket_id = 'images');
CREATE POLICY "Signed-in users can upload images" ON storage.objects
    FOR INSERT TO authenticated
    WITH CHECK (bucket_id = 'images' AND owner_id = (SELECT auth.uid())::text);
CREATE POLICY "Public buckets are visible to everyone" ON storage.buckets
    FOR SELECT USING (public);

-- ---------------------------------------------------------------------------------------
-- supabase_functions: Database Webhooks (docker/volumes/db/webhooks.sql)
-- ---------------------------------------------------------------------------------------
CREATE SCHEMA supabase_functions AUTHORIZATION supabase_admin;
GRANT USAGE ON SCHEMA supabase_functions TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA supabase_functions
    GRANT ALL ON TABLES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA supabase_functions
    GRANT ALL ON FUNCTIONS TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA supabase_functions
    GRANT ALL ON SEQUENCES TO postgres, anon, authenticated, service_role;

CREATE TABLE supabase_functions.migrations (
    version text PRIMARY KEY,
    inserted_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO supabase_functions.migrations (version, inserted_at)
VALUES ('initial', '2024-01-02 03:04:05+00'),
       ('20210809183423_update_grants', '2024-01-02 03:04:05+00');

CREATE TABLE supabase_functions.hooks (
    id bigserial PRIMARY KEY,
    hook_table_id integer NOT NULL,
    hook_name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    request_id bigint
);
CREATE INDEX supabase_functions_hooks_request_id_idx ON supabase_functions.hooks (request_id);
CREATE INDEX supabase_functions_hooks_h_table_id_h_name_idx
    ON supabase_functions.hooks (hook_table_id, hook_name);
COMMENT ON TABLE supabase_functions.hooks IS
    'Supabase Functions Hooks: Audit trail for triggered hooks.';

GRANT ALL ON SCHEMA supabase_functions TO supabase_functions_admin;
ALTER TABLE supabase_functions.migrations OWNER TO supabase_functions_admin;
ALTER TABLE supabase_functions.hooks OWNER TO supabase_functions_admin;

-- ---------------------------------------------------------------------------------------
-- supabase_migrations: the CLI's record of the migrations applied to this project
-- ---------------------------------------------------------------------------------------
CREATE SCHEMA supabase_migrations AUTHORIZATION postgres;
CREATE TABLE supabase_migrations.schema_migrations (
    version text NOT NULL PRIMARY KEY,
    statements text[],
    name text
);
ALTER TABLE supabase_migrations.schema_migrations OWNER TO postgres;
INSERT INTO supabase_migrations.schema_migrations (version, statements, name)
VALUES ('20250105090000', ARRAY['create type public.task_status as enum (...)',
                                'create table public.profiles (...)'], 'init'),
       ('20250112093000', ARRAY['create table public.projects (...)',
                                'create table public.tasks (...)'], 'projects_and_tasks'),
       ('20250201120000', ARRAY['create table public.audit_events (...) partition by range (occurred_at)'],
        'audit_events'),
       ('20250215080000', ARRAY['create table public.attachments (...)'], 'attachments');

