-- storage.sql: the `storage` schema of a Supabase project as Supabase Storage leaves it
-- after all of its tenant migrations, on top of what the platform image puts there first,
-- with the platform's grants and one storage.migrations row per applied migration.
--
-- Our own rendering of the FINAL state (not a replay of each step), written from (read,
-- not copied):
--   supabase/storage @ 4fa61fba9371c4bd40cbb81509f07bcb3af21683 (2026-08-21):
--     migrations/tenant/*.sql (63 files, 0001-initialmigration .. 0063-fix-search-name-relative-to-prefix),
--     src/internal/database/migrations/migrate.ts and files.ts (how they run and what is
--     recorded), package-lock.json (postgres-migrations 5.3.0, whose loader adds its own
--     migration 0 "create-migrations-table" and hashes each file);
--   supabase/postgres @ 7db7e1a9e34b9ffb9b0e3372ccf08eb4fa772f4b:
--     migrations/db/init-scripts/00000000000002-storage-schema.sql (schema, first tables,
--     default privileges for postgres), 00000000000003-post-setup.sql,
--     migrations/10000000000000_demote-postgres.sql;
--   and from the code index: migrations/20250421084701_revoke_admin_roles_from_postgres.sql
--     @ 96d8873887e1 (storage.migrations closed to the API roles and postgres),
--     migrations/20250709135250_grant_storage_schema_to_postgres_with_grant_option.sql @ 3d31e9caf947.
--
-- Run as supabase_admin after roles.sql and base.sql (auth.sql is not needed: no storage
-- object refers to auth any more), on a database without a `storage` schema.
--
-- storage.migrations.hash: postgres-migrations computes it as the hex SHA-1 of the file
-- name followed by the file's contents (UTF-8), e.g. sha1("0001-initialmigration.sql" ||
-- <contents>); migration 0 hashes "0_create-migrations-table.sql" with the library's own
-- CREATE TABLE text. The values below were computed that way from the files at the commit
-- above (storage-api's concurrent-index transformer changes the SQL it runs, not the hash),
-- so a Storage server of that version accepts this history as its own. executed_at is the
-- time this file runs.
--
-- Function bodies: the table definitions, constraints, indexes, triggers, grants and
-- signatures below are Storage's; the bodies are ours. The small helpers behave as
-- Storage's do. The listing functions (search, search_v2, search_by_timestamp,
-- list_objects_with_delimiter, list_multipart_uploads_with_delimiter) are plain
-- set-based versions with the same arguments and result columns, without Storage's
-- seek-and-batch optimisations: staging serves no Storage traffic, and a backup that
-- holds the storage schema brings Storage's own bodies with it.
--
-- Left out: nothing of the schema. (Objects the migrations create only in multitenant or
-- vector-store setups are not in a project's database.)

CREATE SCHEMA storage AUTHORIZATION supabase_admin;
GRANT USAGE ON SCHEMA storage TO anon, authenticated, service_role;
GRANT USAGE ON SCHEMA storage TO postgres WITH GRANT OPTION;
GRANT ALL ON SCHEMA storage TO supabase_storage_admin, dashboard_user;
-- postgres had ALL on the schema (demote-postgres); 20250421084701 took CREATE back.
GRANT USAGE ON SCHEMA storage TO postgres;

-- The image sets these for postgres (it ran its init scripts as postgres); they apply to
-- nothing in a fresh project but show up in every dump.
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA storage
    GRANT ALL ON TABLES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA storage
    GRANT ALL ON SEQUENCES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA storage
    GRANT ALL ON FUNCTIONS TO postgres, anon, authenticated, service_role;

SET ROLE supabase_storage_admin;

CREATE TYPE storage.buckettype AS ENUM ('STANDARD', 'ANALYTICS', 'VECTOR');

-- ---------------------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------------------
CREATE TABLE storage.migrations (
    id integer NOT NULL,
    name varchar(100) NOT NULL,
    hash varchar(40) NOT NULL,
    executed_at timestamp without time zone DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT migrations_pkey PRIMARY KEY (id),
    CONSTRAINT migrations_name_key UNIQUE (name)
);

CREATE TABLE storage.buckets (
    id text NOT NULL,
    name text NOT NULL,
    owner uuid,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(),
    public boolean DEFAULT false,
    avif_autodetection boolean DEFAULT false,
    file_size_limit bigint,
    allowed_mime_types text[],
    owner_id text,
    type storage.buckettype NOT NULL DEFAULT 'STANDARD',
    versioning_status text NOT NULL DEFAULT 'DISABLED',
    CONSTRAINT buckets_pkey PRIMARY KEY (id),
    CONSTRAINT buckets_versioning_status_check
        CHECK (versioning_status IN ('DISABLED', 'ENABLED', 'SUSPENDED')),
    CONSTRAINT buckets_versioning_standard_only_check
        CHECK (type = 'STANDARD' OR versioning_status = 'DISABLED'),
    -- Versioning is not switched on for anyone yet ("dark" launch).
    CONSTRAINT buckets_versioning_dark_check CHECK (versioning_status = 'DISABLED')
);
CREATE UNIQUE INDEX bname ON storage.buckets (name);
COMMENT ON COLUMN storage.buckets.owner IS 'Field is deprecated, use owner_id instead';

CREATE TABLE storage.objects (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    bucket_id text,
    name text,
    owner uuid,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(),
    last_accessed_at timestamptz DEFAULT now(),
    metadata jsonb,
    path_tokens text[] GENERATED ALWAYS AS (string_to_array(name, '/')) STORED,
    version text,
    owner_id text,
    user_metadata jsonb,
    archived_at timestamptz,
    is_delete_marker boolean NOT NULL DEFAULT false,
    is_versioned boolean NOT NULL DEFAULT false,
    CONSTRAINT objects_pkey PRIMARY KEY (id),
    CONSTRAINT "objects_bucketId_fkey" FOREIGN KEY (bucket_id) REFERENCES storage.buckets (id)
);
CREATE UNIQUE INDEX bucketid_objname ON storage.objects (bucket_id, name);
CREATE INDEX name_prefix_search ON storage.objects (name text_pattern_ops);
CREATE INDEX idx_objects_bucket_id_name ON storage.objects (bucket_id, name COLLATE "C");
CREATE INDEX idx_objects_bucket_id_name_lower ON storage.objects (bucket_id, lower(name) COLLATE "C");
COMMENT ON COLUMN storage.objects.owner IS 'Field is deprecated, use owner_id instead';

CREATE TABLE storage.s3_multipart_uploads (
    id text NOT NULL,
    in_progress_size bigint NOT NULL DEFAULT 0,
    upload_signature text NOT NULL,
    bucket_id text NOT NULL REFERENCES storage.buckets (id),
    key text COLLATE "C" NOT NULL,
    version text NOT NULL,
    owner_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    user_metadata jsonb,
    metadata jsonb,
    CONSTRAINT s3_multipart_uploads_pkey PRIMARY KEY (id)
);
CREATE INDEX idx_multipart_uploads_list ON storage.s3_multipart_uploads (bucket_id, key, created_at);

CREATE TABLE storage.s3_multipart_uploads_parts (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    upload_id text NOT NULL REFERENCES storage.s3_multipart_uploads (id) ON DELETE CASCADE,
    size bigint NOT NULL DEFAULT 0,
    part_number integer NOT NULL,
    bucket_id text NOT NULL REFERENCES storage.buckets (id),
    key text COLLATE "C" NOT NULL,
    etag text NOT NULL,
    owner_id text,
    version text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT s3_multipart_uploads_parts_pkey PRIMARY KEY (id)
);

CREATE TABLE storage.buckets_analytics (
    name text NOT NULL,
    type storage.buckettype NOT NULL DEFAULT 'ANALYTICS',
    format text NOT NULL DEFAULT 'ICEBERG',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    deleted_at timestamptz,
    CONSTRAINT buckets_analytics_pkey PRIMARY KEY (id)
);
CREATE UNIQUE INDEX buckets_analytics_unique_name_idx ON storage.buckets_analytics (name)
    WHERE deleted_at IS NULL;

CREATE TABLE storage.iceberg_namespaces (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    bucket_name text NOT NULL,
    name text COLLATE "C" NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    catalog_id uuid NOT NULL REFERENCES storage.buckets_analytics (id) ON DELETE CASCADE,
    CONSTRAINT iceberg_namespaces_pkey PRIMARY KEY (id)
);
CREATE UNIQUE INDEX idx_iceberg_namespaces_bucket_id ON storage.iceberg_namespaces (catalog_id, name);

CREATE TABLE storage.iceberg_tables (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    namespace_id uuid NOT NULL REFERENCES storage.iceberg_namespaces (id) ON DELETE CASCADE,
    bucket_name text NOT NULL,
    name text COLLATE "C" NOT NULL,
    location text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    remote_table_id text,
    shard_key text,
    shard_id text,
    catalog_id uuid NOT NULL REFERENCES storage.buckets_analytics (id) ON DELETE CASCADE,
    CONSTRAINT iceberg_tables_pkey PRIMARY KEY (id)
);
CREATE UNIQUE INDEX idx_iceberg_tables_namespace_id ON storage.iceberg_tables (catalog_id, namespace_id, name);
CREATE UNIQUE INDEX idx_iceberg_tables_location ON storage.iceberg_tables (location);

CREATE TABLE storage.buckets_vectors (
    id text NOT NULL,
    type storage.buckettype NOT NULL DEFAULT 'VECTOR',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT buckets_vectors_pkey PRIMARY KEY (id)
);

CREATE TABLE storage.vector_indexes (
    id text NOT NULL DEFAULT gen_random_uuid(),
    name text COLLATE "C" NOT NULL,
    bucket_id text NOT NULL REFERENCES storage.buckets_vectors (id),
    data_type text NOT NULL,
    dimension integer NOT NULL,
    distance_metric text NOT NULL,
    metadata_configuration jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT vector_indexes_pkey PRIMARY KEY (id)
);
CREATE UNIQUE INDEX vector_indexes_name_bucket_id_idx ON storage.vector_indexes (name, bucket_id);

-- ---------------------------------------------------------------------------------------
-- Helpers policies use: path pieces of an object name
-- ---------------------------------------------------------------------------------------
-- 'a/b/c.png' -> {a,b}
CREATE FUNCTION storage.foldername(name text) RETURNS text[]
    LANGUAGE plpgsql IMMUTABLE
AS $fn$
DECLARE
    parts text[] := string_to_array(name, '/');
BEGIN
    RETURN parts[1 : array_length(parts, 1) - 1];
END
$fn$;

-- 'a/b/c.png' -> 'c.png'
CREATE FUNCTION storage.filename(name text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
AS $fn$
DECLARE
    parts text[] := string_to_array(name, '/');
BEGIN
    RETURN parts[array_length(parts, 1)];
END
$fn$;

-- 'a/b/c.tar.gz' -> 'gz' (what follows the last dot of the last segment; the whole
-- segment when it has no dot)
CREATE FUNCTION storage.extension(name text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
AS $fn$
DECLARE
    parts text[] := string_to_array(name, '/');
    last_segment text := parts[array_length(parts, 1)];
BEGIN
    RETURN reverse(split_part(reverse(last_segment), '.', 1));
END
$fn$;

-- ---------------------------------------------------------------------------------------
-- Operations: the Storage server sets storage.operation per request; policies may test it.
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION storage.operation() RETURNS text
    LANGUAGE plpgsql STABLE
AS $fn$
BEGIN
    RETURN current_setting('storage.operation', true);
END
$fn$;

-- True when the current operation is the given one ('storage.' prefix optional on either
-- side); false for an empty or missing expectation.
CREATE FUNCTION storage.allow_only_operation(expected_operation text) RETURNS boolean
    LANGUAGE sql STABLE
AS $fn$
    SELECT CASE
        WHEN coalesce(expected_operation, '') = '' THEN false
        ELSE coalesce(
            regexp_replace(storage.operation(), '^storage\.', '')
                = regexp_replace(expected_operation, '^storage\.', ''),
            false)
    END
$fn$;

-- True when the current operation is any of the given ones.
CREATE FUNCTION storage.allow_any_operation(expected_operations text[]) RETURNS boolean
    LANGUAGE sql STABLE
AS $fn$
    SELECT EXISTS (
        SELECT FROM unnest(expected_operations) AS expected(op)
        WHERE coalesce(expected.op, '') <> ''
          AND regexp_replace(storage.operation(), '^storage\.', '')
              = regexp_replace(expected.op, '^storage\.', '')
    )
$fn$;

-- ---------------------------------------------------------------------------------------
-- Server-side checks and triggers
-- ---------------------------------------------------------------------------------------
-- Tries the insert under the caller's policies and always undoes it: the Storage server
-- reads SQLSTATE PT200 as "allowed".
CREATE FUNCTION storage.can_insert_object(bucketid text, name text, owner uuid, metadata jsonb)
    RETURNS void
    LANGUAGE plpgsql
AS $fn$
BEGIN
    INSERT INTO storage.objects (bucket_id, name, owner, metadata)
    VALUES (bucketid, name, owner, metadata);
    RAISE SQLSTATE 'PT200' USING MESSAGE = 'ROLLBACK', DETAIL = 'rollback successful insert';
END
$fn$;

CREATE FUNCTION storage.enforce_bucket_name_length() RETURNS trigger
    LANGUAGE plpgsql
AS $fn$
BEGIN
    IF length(NEW.name) > 100 THEN
        RAISE EXCEPTION 'bucket name "%" is too long (% characters). Max is 100.',
            NEW.name, length(NEW.name);
    END IF;
    RETURN NEW;
END
$fn$;

-- Deleting rows of buckets/objects directly would orphan the files in the object store:
-- only a session that set storage.allow_delete_query = 'true' (the Storage server) may.
CREATE FUNCTION storage.protect_delete() RETURNS trigger
    LANGUAGE plpgsql
AS $fn$
BEGIN
    IF coalesce(current_setting('storage.allow_delete_query', true), 'false') <> 'true' THEN
        RAISE EXCEPTION 'Direct deletion from storage tables is not allowed. Use the Storage API instead.'
            USING HINT = 'This prevents accidental data loss from orphaned objects.',
                  ERRCODE = '42501';
    END IF;
    RETURN NULL;
END
$fn$;

CREATE FUNCTION storage.update_updated_at_column() RETURNS trigger
    LANGUAGE plpgsql
AS $fn$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$fn$;

CREATE FUNCTION storage.get_size_by_bucket() RETURNS TABLE (size bigint, bucket_id text)
    LANGUAGE plpgsql STABLE
AS $fn$
BEGIN
    RETURN QUERY
        SELECT sum((o.metadata ->> 'size')::bigint)::bigint, o.bucket_id
        FROM storage.objects AS o
        GROUP BY o.bucket_id;
END
$fn$;

-- The part of p_key after p_prefix up to and including the next delimiter, or NULL when
-- no delimiter follows (the key is a leaf at this level).
CREATE FUNCTION storage.get_common_prefix(p_key text, p_prefix text, p_delimiter text) RETURNS text
    LANGUAGE sql IMMUTABLE
AS $fn$
    SELECT CASE
        WHEN strpos(substr(p_key, length(p_prefix) + 1), p_delimiter) > 0
        THEN left(p_key, length(p_prefix) + strpos(substr(p_key, length(p_prefix) + 1), p_delimiter))
    END
$fn$;

-- ---------------------------------------------------------------------------------------
-- Listing (our own set-based versions; see the note at the top)
-- ---------------------------------------------------------------------------------------
-- S3 ListObjectsV2: the entries one level below prefix_param, folders ("common prefixes",
-- returned without their trailing delimiter, every other column NULL) and objects, in byte
-- order, after the continuation token (or start_after), at most max_keys of them.
CREATE FUNCTION storage.list_objects_with_delimiter(
    _bucket_id text, prefix_param text, delimiter_param text, max_keys integer DEFAULT 100,
    start_after text DEFAULT '', next_token text DEFAULT '', sort_order text DEFAULT 'asc')
    RETURNS TABLE (name text, id uuid, metadata jsonb, updated_at timestamptz,
                   created_at timestamptz, last_accessed_at timestamptz)
    LANGUAGE plpgsql STABLE
AS $fn$
DECLARE
    pfx text := coalesce(prefix_param, '');
    cursor_key text := coalesce(nullif(next_token, ''), start_after, '');
    ascending boolean := lower(coalesce(sort_order, 'asc')) = 'asc';
BEGIN
    RETURN QUERY
    WITH level AS (
        SELECT storage.get_common_prefix(o.name, pfx, delimiter_param) AS folder, o.*
        FROM storage.objects AS o
        WHERE o.bucket_id = _bucket_id AND left(o.name, length(pfx)) = pfx
    ), entries AS (
        SELECT DISTINCT ON (e.entry)
            e.entry,
            CASE WHEN e.folder IS NULL THEN e.id END AS id,
            CASE WHEN e.folder IS NULL THEN e.metadata END AS metadata,
            CASE WHEN e.folder IS NULL THEN e.updated_at END AS updated_at,
            CASE WHEN e.folder IS NULL THEN e.created_at END AS created_at,
            CASE WHEN e.folder IS NULL THEN e.last_accessed_at END AS last_accessed_at
        FROM (SELECT coalesce(rtrim(l.folder, delimiter_param), l.name) AS entry, l.*
              FROM level AS l) AS e
        ORDER BY e.entry
    )
    SELECT x.entry, x.id, x.metadata, x.updated_at, x.created_at, x.last_accessed_at
    FROM entries AS x
    WHERE cursor_key = ''
       OR (ascending AND x.entry COLLATE "C" > cursor_key)
       OR (NOT ascending AND x.entry COLLATE "C" < cursor_key)
    ORDER BY CASE WHEN ascending THEN x.entry END COLLATE "C" ASC,
             CASE WHEN NOT ascending THEN x.entry END COLLATE "C" DESC
    LIMIT max_keys;
END
$fn$;

-- S3 ListMultipartUploads: keys folded to their common prefix, one row per key, after the
-- key marker (or, within it, the upload-id marker).
CREATE FUNCTION storage.list_multipart_uploads_with_delimiter(
    bucket_id text, prefix_param text, delimiter_param text, max_keys integer DEFAULT 100,
    next_key_token text DEFAULT '', next_upload_token text DEFAULT '')
    RETURNS TABLE (key text, id text, created_at timestamptz)
    LANGUAGE plpgsql
AS $fn$
DECLARE
    pfx text := coalesce(prefix_param, '');
    want_bucket text := bucket_id;
BEGIN
    RETURN QUERY
    SELECT DISTINCT ON (folded.k COLLATE "C") folded.k, folded.upload_id, folded.started
    FROM (
        SELECT coalesce(storage.get_common_prefix(u.key, pfx, delimiter_param), u.key) AS k,
               u.id AS upload_id, u.created_at AS started
        FROM storage.s3_multipart_uploads AS u
        WHERE u.bucket_id = want_bucket
          AND lower(left(u.key, length(pfx))) = lower(pfx)
    ) AS folded
    WHERE (coalesce(next_key_token, '') = '' OR coalesce(next_upload_token, '') <> ''
           OR folded.k COLLATE "C" > next_key_token)
      AND (coalesce(next_upload_token, '') = '' OR folded.upload_id COLLATE "C" > next_upload_token)
    ORDER BY folded.k COLLATE "C", folded.started
    LIMIT max_keys;
END
$fn$;

-- The dashboard's folder view: entries one level below prefix, named relative to it,
-- optionally filtered by a search string, sorted by name / updated_at / created_at /
-- last_accessed_at, paged by limits and offsets. (levels is accepted and not needed.)
CREATE FUNCTION storage.search(
    prefix text, bucketname text, limits integer DEFAULT 100, levels integer DEFAULT 1,
    offsets integer DEFAULT 0, search text DEFAULT '', sortcolumn text DEFAULT 'name',
    sortorder text DEFAULT 'asc')
    RETURNS TABLE (name text, id uuid, updated_at timestamptz, created_at timestamptz,
                   last_accessed_at timestamptz, metadata jsonb)
    LANGUAGE plpgsql STABLE
AS $fn$
DECLARE
    pfx text := coalesce(prefix, '');
    col text := lower(coalesce(sortcolumn, 'name'));
    ascending boolean := lower(coalesce(sortorder, 'asc')) <> 'desc';
BEGIN
    RETURN QUERY
    WITH level AS (
        SELECT split_part(substr(o.name, length(pfx) + 1), '/', 1) AS entry,
               strpos(substr(o.name, length(pfx) + 1), '/') > 0 AS is_folder,
               o.id AS oid, o.updated_at AS upd, o.created_at AS crt,
               o.last_accessed_at AS acc, o.metadata AS meta
        FROM storage.objects AS o
        WHERE o.bucket_id = bucketname
          AND lower(left(o.name, length(pfx))) = lower(pfx)
    ), entries AS (
        SELECT DISTINCT ON (l.entry, l.is_folder)
            l.entry,
            CASE WHEN l.is_folder THEN NULL ELSE l.oid END AS oid,
            CASE WHEN l.is_folder THEN NULL ELSE l.upd END AS upd,
            CASE WHEN l.is_folder THEN NULL ELSE l.crt END AS crt,
            CASE WHEN l.is_folder THEN NULL ELSE l.acc END AS acc,
            CASE WHEN l.is_folder THEN NULL ELSE l.meta END AS meta
        FROM level AS l
        WHERE l.entry <> '' AND l.entry ILIKE '%' || coalesce(search, '') || '%'
        ORDER BY l.entry, l.is_folder
    )
    SELECT e.entry, e.oid, e.upd, e.crt, e.acc, e.meta
    FROM entries AS e
    ORDER BY
        CASE WHEN ascending THEN
            CASE col WHEN 'updated_at' THEN e.upd WHEN 'created_at' THEN e.crt
                     WHEN 'last_accessed_at' THEN e.acc END END ASC,
        CASE WHEN NOT ascending THEN
            CASE col WHEN 'updated_at' THEN e.upd WHEN 'created_at' THEN e.crt
                     WHEN 'last_accessed_at' THEN e.acc END END DESC,
        CASE WHEN ascending THEN e.entry END COLLATE "C" ASC,
        CASE WHEN NOT ascending THEN e.entry END COLLATE "C" DESC
    LIMIT limits OFFSET offsets;
END
$fn$;

-- Keyset-paged listing: entries one level below prefix with their full key (folders end
-- in '/'), sorted by name or a timestamp column, after (sort_column_after, start_after).
CREATE FUNCTION storage.search_v2(
    prefix text, bucket_name text, limits integer DEFAULT 100, levels integer DEFAULT 1,
    start_after text DEFAULT '', sort_order text DEFAULT 'asc', sort_column text DEFAULT 'name',
    sort_column_after text DEFAULT '')
    RETURNS TABLE (key text, name text, id uuid, updated_at timestamptz, created_at timestamptz,
                   last_accessed_at timestamptz, metadata jsonb)
    LANGUAGE plpgsql STABLE
AS $fn$
DECLARE
    pfx text := coalesce(prefix, '');
    col text := lower(coalesce(sort_column, 'name'));
    ascending boolean := lower(coalesce(sort_order, 'asc')) <> 'desc';
    after_key text := coalesce(start_after, '');
    after_ts timestamptz := CASE WHEN coalesce(sort_column_after, '') <> ''
                                 THEN sort_column_after::timestamptz END;
BEGIN
    RETURN QUERY
    WITH level AS (
        SELECT coalesce(storage.get_common_prefix(o.name, pfx, '/'), o.name) AS k,
               storage.get_common_prefix(o.name, pfx, '/') IS NOT NULL AS is_folder, o.*
        FROM storage.objects AS o
        WHERE o.bucket_id = bucket_name AND left(o.name, length(pfx)) = pfx
    ), entries AS (
        SELECT DISTINCT ON (l.k)
            l.k,
            CASE WHEN l.is_folder THEN NULL ELSE l.id END AS oid,
            CASE WHEN l.is_folder THEN NULL ELSE l.updated_at END AS upd,
            CASE WHEN l.is_folder THEN NULL ELSE l.created_at END AS crt,
            CASE WHEN l.is_folder THEN NULL ELSE l.last_accessed_at END AS acc,
            CASE WHEN l.is_folder THEN NULL ELSE l.metadata END AS meta
        FROM level AS l
        ORDER BY l.k
    ), keyed AS (
        SELECT e.*, CASE col WHEN 'updated_at' THEN e.upd WHEN 'created_at' THEN e.crt
                             WHEN 'last_accessed_at' THEN e.acc END AS ts
        FROM entries AS e
    )
    SELECT x.k, x.k, x.oid, x.upd, x.crt, x.acc, x.meta
    FROM keyed AS x
    WHERE after_key = ''
       OR (col = 'name' AND ascending AND x.k COLLATE "C" > after_key)
       OR (col = 'name' AND NOT ascending AND x.k COLLATE "C" < after_key)
       OR (col <> 'name' AND ascending
           AND (x.ts > after_ts OR (x.ts IS NOT DISTINCT FROM after_ts AND x.k COLLATE "C" > after_key)))
       OR (col <> 'name' AND NOT ascending
           AND (x.ts < after_ts OR (x.ts IS NOT DISTINCT FROM after_ts AND x.k COLLATE "C" < after_key)))
    ORDER BY CASE WHEN ascending THEN x.ts END ASC,
             CASE WHEN NOT ascending THEN x.ts END DESC,
             CASE WHEN ascending THEN x.k END COLLATE "C" ASC,
             CASE WHEN NOT ascending THEN x.k END COLLATE "C" DESC
    LIMIT limits;
END
$fn$;

-- The timestamp-sorted variant search_v2 hands off to on the platform; here the same
-- listing with its arguments in this order.
CREATE FUNCTION storage.search_by_timestamp(
    p_prefix text, p_bucket_id text, p_limit integer, p_level integer, p_start_after text,
    p_sort_order text, p_sort_column text, p_sort_column_after text)
    RETURNS TABLE (key text, name text, id uuid, updated_at timestamptz, created_at timestamptz,
                   last_accessed_at timestamptz, metadata jsonb)
    LANGUAGE plpgsql STABLE
AS $fn$
BEGIN
    RETURN QUERY
        SELECT * FROM storage.search_v2(p_prefix, p_bucket_id, p_limit, p_level, p_start_after,
                                        p_sort_order, p_sort_column, p_sort_column_after);
END
$fn$;

-- ---------------------------------------------------------------------------------------
-- Triggers
-- ---------------------------------------------------------------------------------------
CREATE TRIGGER update_objects_updated_at BEFORE UPDATE ON storage.objects
    FOR EACH ROW EXECUTE FUNCTION storage.update_updated_at_column();
CREATE TRIGGER enforce_bucket_name_length_trigger BEFORE INSERT OR UPDATE OF name ON storage.buckets
    FOR EACH ROW EXECUTE FUNCTION storage.enforce_bucket_name_length();
CREATE TRIGGER protect_buckets_delete BEFORE DELETE ON storage.buckets
    FOR EACH STATEMENT EXECUTE FUNCTION storage.protect_delete();
CREATE TRIGGER protect_objects_delete BEFORE DELETE ON storage.objects
    FOR EACH STATEMENT EXECUTE FUNCTION storage.protect_delete();

-- ---------------------------------------------------------------------------------------
-- Row level security: on for every table; policies are the project's own.
-- ---------------------------------------------------------------------------------------
ALTER TABLE storage.migrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.buckets ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.objects ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.s3_multipart_uploads ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.s3_multipart_uploads_parts ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.buckets_analytics ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.iceberg_namespaces ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.iceberg_tables ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.buckets_vectors ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.vector_indexes ENABLE ROW LEVEL SECURITY;

-- ---------------------------------------------------------------------------------------
-- The applied migrations: postgres-migrations' own migration 0, then the 63 tenant files.
-- ---------------------------------------------------------------------------------------
INSERT INTO storage.migrations (id, name, hash) VALUES
    (0, 'create-migrations-table', 'e18db593bcde2aca2a408c4d1100f6abba2195df'),
    (1, 'initialmigration', '6ab16121fbaa08bbd11b712d05f358f9b555d777'),
    (2, 'storage-schema', 'f6a1fa2c93cbcd16d4e487b362e45fca157a8dbd'),
    (3, 'pathtoken-column', '2cb1b0004b817b29d5b0a971af16bafeede4b70d'),
    (4, 'add-migrations-rls', '427c5b63fe1c5937495d9c635c263ee7a5905058'),
    (5, 'add-size-functions', '79e081a1455b63666c1294a440f8ad4b1e6a7f84'),
    (6, 'change-column-name-in-get-size', 'ded78e2f1b5d7e616117897e6443a925965b30d2'),
    (7, 'add-rls-to-buckets', 'e7e7f86adbc51049f341dfe8d30256c1abca17aa'),
    (8, 'add-public-to-buckets', 'fd670db39ed65f9d08b01db09d6202503ca2bab3'),
    (9, 'fix-search-function', 'af597a1b590c70519b464a4ab3be54490712796b'),
    (10, 'search-files-search-function', 'b595f05e92f7e91211af1bbfe9c6a13bb3391e16'),
    (11, 'add-trigger-to-auto-update-updated_at-column', '7425bdb14366d1739fa8a18c83100636d74dcaa2'),
    (12, 'add-automatic-avif-detection-flag', '8e92e1266eb29518b6a4c5313ab8f29dd0d08df9'),
    (13, 'add-bucket-custom-limits', 'cce962054138135cd9a8c4bcd531598684b25e7d'),
    (14, 'use-bytes-for-max-size', '941c41b346f9802b411f06f30e972ad4744dad27'),
    (15, 'add-can-insert-object-function', '934146bc38ead475f4ef4b555c524ee5d66799e5'),
    (16, 'add-version', '76debf38d3fd07dcfc747ca49096457d95b1221b'),
    (17, 'drop-owner-foreign-key', 'f1cbb288f1b7a4c1eb8c38504b80ae2a0153d101'),
    (18, 'add_owner_id_column_deprecate_owner', 'e7a511b379110b08e2f214be852c35414749fe66'),
    (19, 'alter-default-value-objects-id', '02e5e22a78626187e00d173dc45f58fa66a4f043'),
    (20, 'list-objects-with-delimiter', 'cd694ae708e51ba82bf012bba00caf4f3b6393b7'),
    (21, 's3-multipart-uploads', '8c804d4a566c40cd1e4cc5b3725a664a9303657f'),
    (22, 's3-multipart-uploads-big-ints', '9737dc258d2397953c9953d9b86920b8be0cdb73'),
    (23, 'optimize-search-function', '9d7e604cddc4b56a5422dc68c9313f4a1b6f132c'),
    (24, 'operation-function', '8312e37c2bf9e76bbe841aa5fda889206d2bf8aa'),
    (25, 'custom-metadata', 'd974c6057c3db1c1f847afa0e291e6165693b990'),
    (26, 'objects-prefixes', '215cabcb7f78121892a5a2037a09fedf9a1ae322'),
    (27, 'search-v2', '859ba38092ac96eb3964d83bf53ccc0b141663a6'),
    (28, 'object-bucket-name-sorting', 'c73a2b5b5d4041e39705814fd3a1b95502d38ce4'),
    (29, 'create-prefixes', 'ad2c1207f76703d11a9f9007f821620017a66c21'),
    (30, 'update-object-levels', '2be814ff05c8252fdfdc7cfb4b7f5c7e17f0bed6'),
    (31, 'objects-level-index', 'b40367c14c3440ec75f19bbce2d71e914ddd3da0'),
    (32, 'backward-compatible-index-on-objects', 'e0c37182b0f7aee3efd823298fb3c76f1042c0f7'),
    (33, 'backward-compatible-index-on-prefixes', 'b480e99ed951e0900f033ec4eb34b5bdcb4e3d49'),
    (34, 'optimize-search-function-v1', 'ca80a3dc7bfef894df17108785ce29a7fc8ee456'),
    (35, 'add-insert-trigger-prefixes', '458fe0ffd07ec53f5e3ce9df51bfdf4861929ccc'),
    (36, 'optimise-existing-functions', '6ae5fca6af5c55abe95369cd4f93985d1814ca8f'),
    (37, 'add-bucket-name-length-trigger', '3944135b4e3e8b22d6d4cbb568fe3b0b51df15c1'),
    (38, 'iceberg-catalog-flag-on-buckets', '02716b81ceec9705aed84aa1501657095b32e5c5'),
    (39, 'add-search-v2-sort-support', '6706c5f2928846abee18461279799ad12b279b78'),
    (40, 'fix-prefix-race-conditions-optimized', '7ad69982ae2d372b21f48fc4829ae9752c518f6b'),
    (41, 'add-object-level-update-trigger', '07fcf1a22165849b7a029deed059ffcde08d1ae0'),
    (42, 'rollback-prefix-triggers', '771479077764adc09e2ea2043eb627503c034cd4'),
    (43, 'fix-object-level', '84b35d6caca9d937478ad8a797491f38b8c2979f'),
    (44, 'vector-bucket-type', '99c20c0ffd52bb1ff1f32fb992f3b351e3ef8fb3'),
    (45, 'vector-buckets', '049e27196d77a7cb76497a85afae669d8b230953'),
    (46, 'buckets-objects-grants', 'fedeb96d60fefd8e02ab3ded9fbde05632f84aed'),
    (47, 'iceberg-table-metadata', '649df56855c24d8b36dd4cc1aeb8251aa9ad42c2'),
    (48, 'iceberg-catalog-ids', 'e0e8b460c609b9999ccd0df9ad14294613eed939'),
    (49, 'buckets-objects-grants-postgres', '072b1195d0d5a2f888af6b2302a1938dd94b8b3d'),
    (50, 'search-v2-optimised', '6323ac4f850aa14e7387eb32102869578b5bd478'),
    (51, 'index-backward-compatible-search', '2ee395d433f76e38bcd3856debaf6e0e5b674011'),
    (52, 'drop-not-used-indexes-and-functions', '5cc44c8696749ac11dd0dc37f2a3802075f3a171'),
    (53, 'drop-index-lower-name', 'd0cb18777d9e2a98ebe0bc5cc7a42e57ebe41854'),
    (54, 'drop-index-object-level', '6289e048b1472da17c31a7eba1ded625a6457e67'),
    (55, 'prevent-direct-deletes', '262a4798d5e0f2e7c8970232e03ce8be695d5819'),
    (56, 'fix-optimized-search-function', 'b823ed1e418101032fa01374edc9a436e54e3ed4'),
    (57, 's3-multipart-uploads-metadata', 'f127886e00d1b374fadbc7c6b31e09336aad5287'),
    (58, 'operation-ergonomics', '00ca5d483b3fe0d522133d9002ccc5df98365120'),
    (59, 'drop-unused-functions', '38456f13e39691c2bbb4b5151d0d1cdbabd4a8c4'),
    (60, 'optimize-existing-functions-again', 'db35e1c91a9201e59f4fef8d972c2f277d68b157'),
    (61, 'mark-filename-immutable', 'fe0096517ae9d60aaec1d110172ba9036dc66bb7'),
    (62, 'object-versioning-core', '0b855f00ff3be0bfca91efee02a9858912491a9a'),
    (63, 'fix-search-name-relative-to-prefix', 'c7485e417624f795ce8bb2da21927f48e088904d');

RESET ROLE;

-- ---------------------------------------------------------------------------------------
-- Grants as they end up
-- ---------------------------------------------------------------------------------------
GRANT ALL ON storage.buckets, storage.objects TO anon, authenticated, service_role;
GRANT ALL ON storage.buckets, storage.objects TO postgres WITH GRANT OPTION;
GRANT ALL ON storage.buckets_analytics TO anon, authenticated, service_role;
GRANT ALL ON storage.s3_multipart_uploads, storage.s3_multipart_uploads_parts,
             storage.iceberg_namespaces, storage.iceberg_tables TO service_role;
GRANT SELECT ON storage.s3_multipart_uploads, storage.s3_multipart_uploads_parts,
                storage.iceberg_namespaces, storage.iceberg_tables TO anon, authenticated;
GRANT SELECT ON storage.buckets_vectors, storage.vector_indexes
    TO anon, authenticated, service_role;
-- storage.migrations: nobody but its owner since 20250421084701.
GRANT ALL ON FUNCTION storage.foldername(text), storage.filename(text), storage.extension(text)
    TO anon, authenticated, service_role, dashboard_user, postgres;
