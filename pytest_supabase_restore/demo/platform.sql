-- The demo project's own platform pieces, run as supabase_admin after the platform SQL of
-- a fresh Supabase project (pytest_supabase_restore/staging/platform: roles, base, event
-- triggers, auth, storage), as the dashboard and the services add them to a project: the
-- Storage policies of the demo app's buckets and the CLI's migration history
-- (supabase_migrations). Database Webhooks come from staging/platform/webhooks.sql.

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


-- A project created before supabase/postgres 20250402065937 (April 2025) still has
-- issue_pg_net_access owned by postgres: post-setup created it while postgres was a
-- superuser, and the demotion (10000000000000_demote-postgres.sql) left the owner. The demo
-- is such a project, so its dump holds ALTER EVENT TRIGGER ... OWNER TO postgres, which no
-- restore can carry out once postgres is not a superuser.
ALTER ROLE postgres SUPERUSER;
ALTER EVENT TRIGGER issue_pg_net_access OWNER TO postgres;
ALTER ROLE postgres NOSUPERUSER;
