-- What the Supabase platform puts into every project before the user's first migration:
-- the `extensions`, `auth`, `storage`, `supabase_functions` and `supabase_migrations`
-- schemas, their grants, and the `supabase_realtime` publication.
--
-- Run once, as supabase_admin, after platform_roles.sql, on an empty database. The table
-- definitions follow the current Auth (supabase/auth migrations) and Storage
-- (supabase/storage migrations/tenant) schemas closely enough for a backup to carry the
-- same kinds of columns (generated columns, enums, arrays, jsonb, inet), without every
-- table the services have accumulated over the years.

-- ---------------------------------------------------------------------------------------
-- The database and `public`: postgres is the role a Supabase user works as.
-- ---------------------------------------------------------------------------------------
DO $db$
BEGIN
    EXECUTE format('GRANT ALL ON DATABASE %I TO postgres, dashboard_user', current_database());
    EXECUTE format(
        'GRANT CREATE ON DATABASE %I TO supabase_auth_admin, supabase_storage_admin, '
        'supabase_functions_admin', current_database());
END
$db$;

GRANT ALL ON SCHEMA public TO postgres;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;

-- Everything created in public, by the platform or by the user, is granted to the API
-- roles; RLS, not grants, is what keeps rows private on Supabase.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT ALL ON TABLES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT ALL ON SEQUENCES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT ALL ON FUNCTIONS TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
    GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
    GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
    GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------
-- extensions
-- ---------------------------------------------------------------------------------------
CREATE SCHEMA extensions AUTHORIZATION postgres;
CREATE EXTENSION "uuid-ossp" WITH SCHEMA extensions;
CREATE EXTENSION pgcrypto WITH SCHEMA extensions;
GRANT USAGE ON SCHEMA extensions TO anon, authenticated, service_role;
GRANT ALL ON SCHEMA extensions TO dashboard_user;

-- ---------------------------------------------------------------------------------------
-- auth (owned by supabase_auth_admin, as GoTrue's migrations leave it)
-- ---------------------------------------------------------------------------------------
CREATE SCHEMA auth AUTHORIZATION supabase_auth_admin;
SET ROLE supabase_auth_admin;

CREATE TYPE auth.aal_level AS ENUM ('aal1', 'aal2', 'aal3');
CREATE TYPE auth.factor_type AS ENUM ('totp', 'webauthn', 'phone');
CREATE TYPE auth.factor_status AS ENUM ('unverified', 'verified');

CREATE TABLE auth.instances (
    id uuid NOT NULL PRIMARY KEY,
    uuid uuid,
    raw_base_config text,
    created_at timestamptz,
    updated_at timestamptz
);
COMMENT ON TABLE auth.instances IS 'Auth: Manages users across multiple sites.';

CREATE TABLE auth.users (
    instance_id uuid,
    id uuid NOT NULL PRIMARY KEY,
    aud varchar(255),
    role varchar(255),
    email varchar(255),
    encrypted_password varchar(255),
    email_confirmed_at timestamptz,
    invited_at timestamptz,
    confirmation_token varchar(255),
    confirmation_sent_at timestamptz,
    recovery_token varchar(255),
    recovery_sent_at timestamptz,
    email_change_token_new varchar(255),
    email_change varchar(255),
    email_change_sent_at timestamptz,
    last_sign_in_at timestamptz,
    raw_app_meta_data jsonb,
    raw_user_meta_data jsonb,
    is_super_admin boolean,
    created_at timestamptz,
    updated_at timestamptz,
    phone text UNIQUE DEFAULT NULL,
    phone_confirmed_at timestamptz,
    phone_change text DEFAULT '',
    phone_change_token varchar(255) DEFAULT '',
    phone_change_sent_at timestamptz,
    confirmed_at timestamptz GENERATED ALWAYS AS (least(email_confirmed_at, phone_confirmed_at)) STORED,
    email_change_token_current varchar(255) DEFAULT '',
    email_change_confirm_status smallint DEFAULT 0
        CHECK (email_change_confirm_status >= 0 AND email_change_confirm_status <= 2),
    banned_until timestamptz,
    reauthentication_token varchar(255) DEFAULT '',
    reauthentication_sent_at timestamptz,
    is_sso_user boolean NOT NULL DEFAULT false,
    deleted_at timestamptz,
    is_anonymous boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX users_email_partial_key ON auth.users (email) WHERE (is_sso_user = false);
CREATE INDEX users_instance_id_email_idx ON auth.users (instance_id, lower((email)::text));
CREATE INDEX users_instance_id_idx ON auth.users (instance_id);
CREATE INDEX users_is_anonymous_idx ON auth.users (is_anonymous);
COMMENT ON TABLE auth.users IS 'Auth: Stores user login data within a secure schema.';
COMMENT ON COLUMN auth.users.is_sso_user IS
    'Auth: Set this column to true when the account comes from SSO. These accounts can have duplicate emails.';

CREATE TABLE auth.identities (
    provider_id text NOT NULL,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    identity_data jsonb NOT NULL,
    provider text NOT NULL,
    last_sign_in_at timestamptz,
    created_at timestamptz,
    updated_at timestamptz,
    email text GENERATED ALWAYS AS (lower((identity_data ->> 'email'::text))) STORED,
    id uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    CONSTRAINT identities_provider_id_provider_unique UNIQUE (provider_id, provider)
);
CREATE INDEX identities_user_id_idx ON auth.identities (user_id);
CREATE INDEX identities_email_idx ON auth.identities (email text_pattern_ops);
COMMENT ON TABLE auth.identities IS 'Auth: Stores identities associated to a user.';
COMMENT ON COLUMN auth.identities.email IS
    'Auth: Email is a generated column that references the optional email property in the identity_data';

CREATE TABLE auth.sessions (
    id uuid NOT NULL PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    created_at timestamptz,
    updated_at timestamptz,
    factor_id uuid,
    aal auth.aal_level,
    not_after timestamptz,
    refreshed_at timestamp without time zone,
    user_agent text,
    ip inet,
    tag text
);
CREATE INDEX sessions_user_id_idx ON auth.sessions (user_id);
CREATE INDEX user_id_created_at_idx ON auth.sessions (user_id, created_at);
CREATE INDEX sessions_not_after_idx ON auth.sessions (not_after DESC);
COMMENT ON TABLE auth.sessions IS 'Auth: Stores session data associated to a user.';
COMMENT ON COLUMN auth.sessions.not_after IS
    'Auth: Not after is a nullable column that contains a timestamp after which the session should be regarded as expired.';

CREATE TABLE auth.refresh_tokens (
    instance_id uuid,
    id bigserial NOT NULL PRIMARY KEY,
    token varchar(255) UNIQUE,
    user_id varchar(255),
    revoked boolean,
    created_at timestamptz,
    updated_at timestamptz,
    parent varchar(255),
    session_id uuid REFERENCES auth.sessions (id) ON DELETE CASCADE
);
CREATE INDEX refresh_tokens_instance_id_idx ON auth.refresh_tokens (instance_id);
CREATE INDEX refresh_tokens_instance_id_user_id_idx ON auth.refresh_tokens (instance_id, user_id);
CREATE INDEX refresh_tokens_parent_idx ON auth.refresh_tokens (parent);
CREATE INDEX refresh_tokens_session_id_revoked_idx ON auth.refresh_tokens (session_id, revoked);
COMMENT ON TABLE auth.refresh_tokens IS 'Auth: Store of tokens used to refresh JWT tokens once they expire.';

CREATE TABLE auth.mfa_factors (
    id uuid NOT NULL PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    friendly_name text,
    factor_type auth.factor_type NOT NULL,
    status auth.factor_status NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    secret text,
    phone text,
    last_challenged_at timestamptz UNIQUE
);
CREATE UNIQUE INDEX mfa_factors_user_friendly_name_unique
    ON auth.mfa_factors (friendly_name, user_id) WHERE trim(friendly_name) <> '';
CREATE INDEX mfa_factors_user_id_idx ON auth.mfa_factors (user_id);
COMMENT ON TABLE auth.mfa_factors IS 'auth: stores metadata about factors';

CREATE TABLE auth.audit_log_entries (
    instance_id uuid,
    id uuid NOT NULL PRIMARY KEY,
    payload json,
    created_at timestamptz,
    ip_address varchar(64) NOT NULL DEFAULT ''
);
CREATE INDEX audit_logs_instance_id_idx ON auth.audit_log_entries (instance_id);
COMMENT ON TABLE auth.audit_log_entries IS 'Auth: Audit trail for user actions.';

CREATE TABLE auth.schema_migrations (
    version text NOT NULL PRIMARY KEY
);
COMMENT ON TABLE auth.schema_migrations IS 'Auth: Manages updates to the auth system.';
INSERT INTO auth.schema_migrations (version)
VALUES ('20171026211738'), ('20171026211808'), ('20171026211834'), ('20180103212743'),
       ('20180108183307'), ('20180119214651'), ('20180125194653'), ('00'),
       ('20210710035447'), ('20210722035447'), ('20210730183235'), ('20210909172000'),
       ('20210927181326'), ('20211122151130'), ('20211124214934'), ('20211202183645'),
       ('20220114185221'), ('20220114185340'), ('20220224000811'), ('20220323170000'),
       ('20220429102000'), ('20220531120530'), ('20220614074223'), ('20220811173540'),
       ('20221003041349'), ('20221215195500'), ('20221215195800'), ('20240214120130');

-- The JWT helpers exactly as GoTrue's migrations 20220224000811 and 20220531120530 define
-- them: PostgREST sets request.jwt.claims (and, before v9, request.jwt.claim.*).
CREATE FUNCTION auth.uid() RETURNS uuid
    LANGUAGE sql STABLE
AS $$
  select
  coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;
COMMENT ON FUNCTION auth.uid() IS 'Deprecated. Use auth.jwt() -> ''sub'' instead.';

CREATE FUNCTION auth.role() RETURNS text
    LANGUAGE sql STABLE
AS $$
  select
  coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;
COMMENT ON FUNCTION auth.role() IS 'Deprecated. Use auth.jwt() -> ''role'' instead.';

CREATE FUNCTION auth.email() RETURNS text
    LANGUAGE sql STABLE
AS $$
  select
  coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;
COMMENT ON FUNCTION auth.email() IS 'Deprecated. Use auth.jwt() -> ''email'' instead.';

CREATE FUNCTION auth.jwt() RETURNS jsonb
    LANGUAGE sql STABLE
AS $$
  select
    coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;

RESET ROLE;

GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role, postgres;
GRANT ALL ON SCHEMA auth TO dashboard_user;
-- postgres and the dashboard may read and write every auth table (that is how users
-- manage users from SQL, and how `pg_dump` as postgres can dump them) ...
GRANT ALL ON ALL TABLES IN SCHEMA auth TO postgres, dashboard_user;
GRANT ALL ON ALL SEQUENCES IN SCHEMA auth TO postgres, dashboard_user;
GRANT ALL ON ALL ROUTINES IN SCHEMA auth TO postgres, dashboard_user;
-- ... except the service's own migration history, which is read-only to them since the
-- 2024 lock-down (20240319072844_lock_down_postgres_access_to_auth_migrations.sql).
REVOKE ALL ON auth.schema_migrations FROM postgres;
GRANT SELECT ON auth.schema_migrations TO postgres;

-- ---------------------------------------------------------------------------------------
-- storage (owned by supabase_storage_admin, as the Storage API's migrations leave it)
-- ---------------------------------------------------------------------------------------
CREATE SCHEMA storage AUTHORIZATION supabase_storage_admin;
SET ROLE supabase_storage_admin;

ALTER DEFAULT PRIVILEGES IN SCHEMA storage
    GRANT ALL ON TABLES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA storage
    GRANT ALL ON SEQUENCES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA storage
    GRANT ALL ON FUNCTIONS TO postgres, anon, authenticated, service_role;
GRANT USAGE ON SCHEMA storage TO postgres, anon, authenticated, service_role;

CREATE TABLE storage.migrations (
    id integer NOT NULL PRIMARY KEY,
    name varchar(100) NOT NULL UNIQUE,
    hash varchar(40) NOT NULL,
    executed_at timestamp DEFAULT current_timestamp
);
INSERT INTO storage.migrations (id, name, hash, executed_at)
VALUES (0, 'create-migrations-table', 'e18db593bcde2aca2a408c4d1100f6abba2195df', '2024-01-02 03:04:05'),
       (1, 'initialmigration', '6ab16121fbaa08bbd11b712d05f358f9b555d777', '2024-01-02 03:04:05'),
       (2, 'storage-schema', '5c7968fd083fcea04050c1b7f6253c9771b99011', '2024-01-02 03:04:05'),
       (3, 'pathtoken-column', '2cb1b0004b817b29d5b0a971af16bafeede4b70d', '2024-01-02 03:04:05'),
       (4, 'add-migrations-rls', '427c5b63fe1c5937495d9c635c263ee7a5905058', '2024-01-02 03:04:05'),
       (5, 'add-size-functions', '79e081a1455b63666c1294a440f8ad4b1e6a7f84', '2024-01-02 03:04:05'),
       (6, 'change-column-name-in-get-size', 'f93f62afdf6613ee5e7e815b30d02dc990201044', '2024-01-02 03:04:05'),
       (7, 'add-rls-to-buckets', 'e7e7f86adbc51049f341dfe8d30256c1abca17aa', '2024-01-02 03:04:05'),
       (8, 'add-public-to-buckets', 'fd670db39ed65f9d08b01db09d6202503ca2bab3', '2024-01-02 03:04:05'),
       (9, 'fix-search-function', '3a0af29f42e35a4d101c259ed955b67e1bee6825', '2024-01-02 03:04:05'),
       (10, 'search-files-search-function', '68dc14822daad0ffac3746a502234f486182ef6e', '2024-01-02 03:04:05'),
       (11, 'add-trigger-to-auto-update-updated_at-column', '7425bdb14366d1739fa8a18c83100636d74dcaa2', '2024-01-02 03:04:05'),
       (12, 'add-automatic-avif-detection-flag', '8e92e1266eb29518b6a4c5313ab8f29dd0d08df9', '2024-01-02 03:04:05'),
       (13, 'add-bucket-custom-limits', 'cce962054138135cd9a8c4bcd531598684b25e7d', '2024-01-02 03:04:05'),
       (14, 'use-bytes-for-max-size', '941c41b346f9802b411f06f30e972ad4744dad27', '2024-01-02 03:04:05'),
       (15, 'add-can-insert-object-function', '934146bc38ead475f4ef4b555c524ee5d66799e5', '2024-01-02 03:04:05'),
       (16, 'add-version', '76debf38d3fd07dcfc747ca49096457d95b1221b', '2024-01-02 03:04:05'),
       (17, 'drop-owner-foreign-key', 'f1cbb288f1b7a4c1eb8c38504b80ae2a0153d101', '2024-01-02 03:04:05'),
       (18, 'add_owner_id_column_deprecate_owner', 'e7a511b379110b08e2f214be852c35414749fe66', '2024-01-02 03:04:05'),
       (19, 'alter-default-value-objects-id', '02e5e22a78626187e00d173dc45f58fa66a4f043', '2024-01-02 03:04:05'),
       (25, 'custom-metadata', 'd974c6057c3db1c1f847afa0e291e6165693b990', '2024-01-02 03:04:05');

CREATE TABLE storage.buckets (
    id text NOT NULL PRIMARY KEY,
    name text NOT NULL,
    owner uuid,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(),
    public boolean DEFAULT false,
    avif_autodetection boolean DEFAULT false,
    file_size_limit bigint,
    allowed_mime_types text[],
    owner_id text
);
CREATE UNIQUE INDEX bname ON storage.buckets (name);
COMMENT ON COLUMN storage.buckets.owner IS 'Field is deprecated, use owner_id instead';

CREATE TABLE storage.objects (
    id uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    bucket_id text CONSTRAINT "objects_bucketId_fkey" REFERENCES storage.buckets (id),
    name text,
    owner uuid,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(),
    last_accessed_at timestamptz DEFAULT now(),
    metadata jsonb,
    path_tokens text[] GENERATED ALWAYS AS (string_to_array(name, '/'::text)) STORED,
    version text,
    owner_id text,
    user_metadata jsonb
);
CREATE UNIQUE INDEX bucketid_objname ON storage.objects (bucket_id, name);
CREATE INDEX name_prefix_search ON storage.objects (name text_pattern_ops);
CREATE INDEX idx_objects_bucket_id_name ON storage.objects (bucket_id, name COLLATE "C");
COMMENT ON COLUMN storage.objects.owner IS 'Field is deprecated, use owner_id instead';

CREATE FUNCTION storage.foldername(name text) RETURNS text[]
    LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
_parts text[];
BEGIN
	select string_to_array(name, '/') into _parts;
	return _parts[1:array_length(_parts,1)-1];
END
$$;

CREATE FUNCTION storage.filename(name text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
_parts text[];
BEGIN
	select string_to_array(name, '/') into _parts;
	return _parts[array_length(_parts,1)];
END
$$;

CREATE FUNCTION storage.extension(name text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
_parts text[];
_filename text;
BEGIN
	select string_to_array(name, '/') into _parts;
	select _parts[array_length(_parts,1)] into _filename;
	return reverse(split_part(reverse(_filename), '.', 1));
END
$$;

CREATE FUNCTION storage.update_updated_at_column() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END;
$$;
CREATE TRIGGER update_objects_updated_at BEFORE UPDATE ON storage.objects
    FOR EACH ROW EXECUTE FUNCTION storage.update_updated_at_column();

ALTER TABLE storage.migrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.buckets ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.objects ENABLE ROW LEVEL SECURITY;

RESET ROLE;

GRANT ALL ON SCHEMA storage TO dashboard_user;
GRANT ALL ON ALL SEQUENCES IN SCHEMA storage TO dashboard_user;
GRANT ALL ON ALL ROUTINES IN SCHEMA storage TO dashboard_user;
-- The Storage API's migration history is read-only to postgres since the 2024 lock-down.
REVOKE ALL ON storage.migrations FROM postgres;
GRANT SELECT ON storage.migrations TO postgres;

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

-- ---------------------------------------------------------------------------------------
-- Realtime: an empty publication the app adds its tables to. Supabase hands it to
-- postgres so that the user can add and remove their own tables.
-- ---------------------------------------------------------------------------------------
CREATE PUBLICATION supabase_realtime;
ALTER PUBLICATION supabase_realtime OWNER TO postgres;
