-- The demo application in `public`: a small project tracker (profiles, projects, tasks,
-- comments, tags, attachments that point at Storage objects, an audit trail partitioned by
-- month, and a keyless import log).
--
-- Run as `postgres`, the way a Supabase user's migrations run, after platform.sql. It is
-- deliberately varied: it exercises what a restore can get wrong (enums, identity and
-- serial keys, a composite key, a table without a key, generated columns, checks, range
-- partitions with a default partition, security-invoker and definer views, a materialized
-- view, triggers including one on auth.users, foreign keys into auth, RLS everywhere,
-- comments and the Realtime publication).

-- ---------------------------------------------------------------------------------------
-- Types
-- ---------------------------------------------------------------------------------------
CREATE TYPE public.project_visibility AS ENUM ('private', 'team', 'public');
CREATE TYPE public.task_status AS ENUM ('todo', 'in_progress', 'blocked', 'done');
CREATE TYPE public.event_action AS ENUM ('insert', 'update', 'delete', 'login', 'export');

-- ---------------------------------------------------------------------------------------
-- Shared trigger function
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION public.set_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = ''
AS $$
BEGIN
    -- An UPDATE that sets updated_at itself (a data import, a sync) keeps its value.
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION public.set_updated_at() IS 'Keeps updated_at current on every update.';

-- ---------------------------------------------------------------------------------------
-- profiles: one per auth user, created by a trigger on auth.users
-- ---------------------------------------------------------------------------------------
CREATE TABLE public.profiles (
    id uuid NOT NULL PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
    username text UNIQUE CONSTRAINT username_length CHECK (char_length(username) >= 3),
    full_name text,
    avatar_url text,
    thumbhash bytea,
    bio text,
    website text,
    locale text NOT NULL DEFAULT 'en',
    settings jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE public.profiles IS 'Public profile of each user; created by on_auth_user_created.';
COMMENT ON COLUMN public.profiles.avatar_url IS 'Path of the avatar inside the avatars bucket.';
COMMENT ON COLUMN public.profiles.thumbhash IS 'ThumbHash of the avatar, for blurred placeholders.';
CREATE TRIGGER profiles_set_updated_at BEFORE UPDATE ON public.profiles
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

CREATE FUNCTION public.handle_new_user() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = ''
AS $$
BEGIN
    INSERT INTO public.profiles
        (id, username, full_name, avatar_url, thumbhash, bio, website, locale, settings,
         created_at, updated_at)
    VALUES (
        NEW.id,
        NEW.raw_user_meta_data ->> 'user_name',
        NEW.raw_user_meta_data ->> 'full_name',
        NEW.raw_user_meta_data ->> 'avatar_url',
        decode(NEW.raw_user_meta_data ->> 'thumbhash', 'base64'),
        NEW.raw_user_meta_data ->> 'bio',
        NEW.raw_user_meta_data ->> 'website',
        coalesce(NEW.raw_user_meta_data ->> 'locale', 'en'),
        coalesce(NEW.raw_user_meta_data -> 'settings', '{}'::jsonb),
        coalesce(NEW.created_at, now()),
        coalesce(NEW.created_at, now())
    );
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION public.handle_new_user() IS
    'Creates the public profile of a new auth user from its user metadata.';
CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users
    FOR EACH ROW EXECUTE FUNCTION public.handle_new_user();

-- ---------------------------------------------------------------------------------------
-- projects (identity key, generated slug, checks)
-- ---------------------------------------------------------------------------------------
CREATE TABLE public.projects (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    name text NOT NULL CONSTRAINT project_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    slug text GENERATED ALWAYS AS (lower(regexp_replace(name, '[^[:alnum:]]+', '-', 'g'))) STORED,
    description text,
    visibility public.project_visibility NOT NULL DEFAULT 'private',
    budget numeric(12, 2) CONSTRAINT project_budget_positive CHECK (budget >= 0),
    color text CONSTRAINT project_color_hex CHECK (color ~ '^#[0-9a-f]{6}$'),
    starts_on date,
    archived boolean NOT NULL DEFAULT false,
    metadata jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX projects_owner_id_idx ON public.projects (owner_id);
COMMENT ON TABLE public.projects IS 'A project groups tasks; public projects are readable by anyone.';
COMMENT ON COLUMN public.projects.slug IS 'URL-safe name, derived from name.';
CREATE TRIGGER projects_set_updated_at BEFORE UPDATE ON public.projects
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- ---------------------------------------------------------------------------------------
-- tasks (serial key, arrays, interval, double precision, generated columns)
-- ---------------------------------------------------------------------------------------
CREATE TABLE public.tasks (
    id bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES public.projects (id) ON DELETE CASCADE,
    creator_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    assignee_id uuid REFERENCES auth.users (id) ON DELETE SET NULL,
    title text NOT NULL CONSTRAINT task_title_length CHECK (char_length(title) BETWEEN 1 AND 500),
    body text,
    status public.task_status NOT NULL DEFAULT 'todo',
    priority smallint NOT NULL DEFAULT 3 CONSTRAINT task_priority_range CHECK (priority BETWEEN 1 AND 5),
    labels text[] NOT NULL DEFAULT '{}',
    estimate interval,
    progress double precision NOT NULL DEFAULT 0
        CONSTRAINT task_progress_fraction CHECK (progress >= 0 AND progress <= 1),
    due_on date,
    completed_at timestamptz,
    is_done boolean GENERATED ALWAYS AS (completed_at IS NOT NULL) STORED,
    search tsvector GENERATED ALWAYS AS (
        to_tsvector('simple'::regconfig, coalesce(title, '') || ' ' || coalesce(body, ''))
    ) STORED,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT task_done_has_completed_at CHECK (status <> 'done' OR completed_at IS NOT NULL)
);
CREATE INDEX tasks_project_id_idx ON public.tasks (project_id);
CREATE INDEX tasks_creator_id_idx ON public.tasks (creator_id);
CREATE INDEX tasks_assignee_id_idx ON public.tasks (assignee_id) WHERE assignee_id IS NOT NULL;
CREATE INDEX tasks_search_idx ON public.tasks USING gin (search);
COMMENT ON TABLE public.tasks IS 'Work items; visible to their creator and their assignee.';
COMMENT ON COLUMN public.tasks.progress IS 'Fraction done, 0 to 1.';
CREATE TRIGGER tasks_set_updated_at BEFORE UPDATE ON public.tasks
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- ---------------------------------------------------------------------------------------
-- comments (identity BY DEFAULT)
-- ---------------------------------------------------------------------------------------
CREATE TABLE public.comments (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    task_id bigint NOT NULL REFERENCES public.tasks (id) ON DELETE CASCADE,
    author_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    body text NOT NULL,
    edited boolean NOT NULL DEFAULT false,
    reactions jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX comments_task_id_idx ON public.comments (task_id);
COMMENT ON TABLE public.comments IS 'Discussion on a task.';

-- ---------------------------------------------------------------------------------------
-- tags and task_tags (serial key; composite primary key)
-- ---------------------------------------------------------------------------------------
CREATE TABLE public.tags (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    color text,
    created_by uuid REFERENCES auth.users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE public.tags IS 'Labels shared by everyone.';

CREATE TABLE public.task_tags (
    task_id bigint NOT NULL REFERENCES public.tasks (id) ON DELETE CASCADE,
    tag_id integer NOT NULL REFERENCES public.tags (id) ON DELETE CASCADE,
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, tag_id)
);
CREATE INDEX task_tags_tag_id_idx ON public.task_tags (tag_id);
COMMENT ON TABLE public.task_tags IS 'Which tags a task carries.';

-- ---------------------------------------------------------------------------------------
-- attachments: rows that point at objects in Storage
-- ---------------------------------------------------------------------------------------
CREATE TABLE public.attachments (
    id uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    owner_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    task_id bigint REFERENCES public.tasks (id) ON DELETE SET NULL,
    bucket_id text NOT NULL,
    object_path text NOT NULL,
    byte_size bigint NOT NULL CONSTRAINT attachment_size_positive CHECK (byte_size >= 0),
    sha256 bytea NOT NULL CONSTRAINT attachment_sha256_length CHECK (octet_length(sha256) = 32),
    mime_type text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT attachments_object_unique UNIQUE (bucket_id, object_path)
);
COMMENT ON TABLE public.attachments IS 'Files uploaded to Storage, with the SHA-256 the app computed on upload.';

-- ---------------------------------------------------------------------------------------
-- audit_events: partitioned by month, with a default partition for everything else
-- ---------------------------------------------------------------------------------------
CREATE TABLE public.audit_events (
    id bigserial NOT NULL,
    occurred_at timestamptz NOT NULL,
    actor_id uuid REFERENCES auth.users (id) ON DELETE SET NULL,
    action public.event_action NOT NULL,
    entity text NOT NULL,
    entity_id text,
    details jsonb,
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE TABLE public.audit_events_2025_01 PARTITION OF public.audit_events
    FOR VALUES FROM ('2025-01-01 00:00:00+00') TO ('2025-02-01 00:00:00+00');
CREATE TABLE public.audit_events_2025_02 PARTITION OF public.audit_events
    FOR VALUES FROM ('2025-02-01 00:00:00+00') TO ('2025-03-01 00:00:00+00');
CREATE TABLE public.audit_events_2025_03 PARTITION OF public.audit_events
    FOR VALUES FROM ('2025-03-01 00:00:00+00') TO ('2025-04-01 00:00:00+00');
CREATE TABLE public.audit_events_default PARTITION OF public.audit_events DEFAULT;
CREATE INDEX audit_events_actor_id_idx ON public.audit_events (actor_id, occurred_at);
COMMENT ON TABLE public.audit_events IS 'Who did what, partitioned by month.';

-- ---------------------------------------------------------------------------------------
-- import_log: append-only, deliberately without a primary key
-- ---------------------------------------------------------------------------------------
CREATE TABLE public.import_log (
    imported_at timestamptz NOT NULL,
    imported_by uuid REFERENCES auth.users (id) ON DELETE SET NULL,
    source text NOT NULL,
    line_no integer NOT NULL,
    raw_line text,
    payload_digest bytea,
    ok boolean NOT NULL,
    error text,
    duration interval
);
CREATE INDEX import_log_imported_at_idx ON public.import_log (imported_at);
COMMENT ON TABLE public.import_log IS 'One row per imported CSV line; no primary key.';

-- ---------------------------------------------------------------------------------------
-- Views and a materialized view
-- ---------------------------------------------------------------------------------------
CREATE VIEW public.project_overview WITH (security_invoker = true) AS
SELECT p.id,
       p.name,
       p.owner_id,
       p.visibility,
       count(t.id) AS task_count,
       count(t.id) FILTER (WHERE t.is_done) AS done_count,
       sum(t.estimate) AS total_estimate
FROM public.projects AS p
LEFT JOIN public.tasks AS t ON t.project_id = p.id
GROUP BY p.id;
COMMENT ON VIEW public.project_overview IS 'Per-project task counts, under the caller''s RLS.';

CREATE VIEW public.public_projects AS
SELECT id, name, slug, description, created_at
FROM public.projects
WHERE visibility = 'public' AND NOT archived;
COMMENT ON VIEW public.public_projects IS 'Public, unarchived projects (runs as the view owner).';

CREATE MATERIALIZED VIEW public.daily_task_stats AS
SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
       count(*) AS created,
       count(*) FILTER (WHERE is_done) AS completed
FROM public.tasks
GROUP BY 1
WITH DATA;
CREATE UNIQUE INDEX daily_task_stats_day_idx ON public.daily_task_stats (day);
COMMENT ON MATERIALIZED VIEW public.daily_task_stats IS 'Tasks created and completed per day.';

CREATE FUNCTION public.project_progress(p_project_id bigint) RETURNS double precision
    LANGUAGE sql STABLE
    SET search_path = ''
AS $$
    SELECT coalesce(avg(progress), 0)
    FROM public.tasks
    WHERE project_id = p_project_id
$$;
COMMENT ON FUNCTION public.project_progress(bigint) IS 'Mean progress of the tasks the caller can see.';

-- ---------------------------------------------------------------------------------------
-- Row-level security on every table, with policies on auth.uid()
-- ---------------------------------------------------------------------------------------
ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.comments ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.tags ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.task_tags ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.attachments ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.audit_events_2025_01 ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.audit_events_2025_02 ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.audit_events_2025_03 ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.audit_events_default ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.import_log ENABLE ROW LEVEL SECURITY;

-- A SECURITY DEFINER helper whose body names its table without a schema, as many apps
-- write it (used by a Storage policy, see demo.project.APP_STORAGE_POLICY).
CREATE FUNCTION public.owns_attachment(p_bucket text, p_path text) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    AS $$
        SELECT EXISTS (
            SELECT 1 FROM attachments a
            WHERE a.bucket_id = p_bucket AND a.object_path = p_path AND a.owner_id = auth.uid()
        )
    $$;

CREATE POLICY "Public profiles are viewable by everyone." ON public.profiles
    FOR SELECT USING (true);
CREATE POLICY "Users can insert their own profile." ON public.profiles
    FOR INSERT TO authenticated WITH CHECK ((SELECT auth.uid()) = id);
CREATE POLICY "Users can update own profile." ON public.profiles
    FOR UPDATE TO authenticated USING ((SELECT auth.uid()) = id);

CREATE POLICY "Anyone can read public projects" ON public.projects
    FOR SELECT TO anon, authenticated USING (visibility = 'public');
CREATE POLICY "Owners can read their projects" ON public.projects
    FOR SELECT TO authenticated USING ((SELECT auth.uid()) = owner_id);
CREATE POLICY "Owners can create projects" ON public.projects
    FOR INSERT TO authenticated WITH CHECK ((SELECT auth.uid()) = owner_id);
CREATE POLICY "Owners can update their projects" ON public.projects
    FOR UPDATE TO authenticated
    USING ((SELECT auth.uid()) = owner_id) WITH CHECK ((SELECT auth.uid()) = owner_id);
CREATE POLICY "Owners can delete their projects" ON public.projects
    FOR DELETE TO authenticated USING ((SELECT auth.uid()) = owner_id);

CREATE POLICY "Creators and assignees can read tasks" ON public.tasks
    FOR SELECT TO authenticated USING ((SELECT auth.uid()) IN (creator_id, assignee_id));
CREATE POLICY "Project owners can create tasks" ON public.tasks
    FOR INSERT TO authenticated
    WITH CHECK (
        (SELECT auth.uid()) = creator_id
        AND EXISTS (SELECT 1 FROM public.projects AS p
                    WHERE p.id = project_id AND p.owner_id = (SELECT auth.uid()))
    );
CREATE POLICY "Creators and assignees can update tasks" ON public.tasks
    FOR UPDATE TO authenticated USING ((SELECT auth.uid()) IN (creator_id, assignee_id));
CREATE POLICY "Creators can delete tasks" ON public.tasks
    FOR DELETE TO authenticated USING ((SELECT auth.uid()) = creator_id);

CREATE POLICY "Comments on visible tasks are readable" ON public.comments
    FOR SELECT TO authenticated
    USING (
        (SELECT auth.uid()) = author_id
        OR EXISTS (SELECT 1 FROM public.tasks AS t WHERE t.id = task_id)
    );
CREATE POLICY "Users can comment as themselves" ON public.comments
    FOR INSERT TO authenticated WITH CHECK ((SELECT auth.uid()) = author_id);
CREATE POLICY "Authors can edit their comments" ON public.comments
    FOR UPDATE TO authenticated USING ((SELECT auth.uid()) = author_id);
CREATE POLICY "Authors can delete their comments" ON public.comments
    FOR DELETE TO authenticated USING ((SELECT auth.uid()) = author_id);

CREATE POLICY "Tags are readable by everyone" ON public.tags
    FOR SELECT TO anon, authenticated USING (true);
CREATE POLICY "Signed-in users can create tags" ON public.tags
    FOR INSERT TO authenticated WITH CHECK ((SELECT auth.uid()) = created_by);

CREATE POLICY "Tags of visible tasks are readable" ON public.task_tags
    FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM public.tasks AS t WHERE t.id = task_id));
CREATE POLICY "Task creators can tag their tasks" ON public.task_tags
    FOR INSERT TO authenticated
    WITH CHECK (EXISTS (SELECT 1 FROM public.tasks AS t
                        WHERE t.id = task_id AND t.creator_id = (SELECT auth.uid())));

CREATE POLICY "Owners can read their attachments" ON public.attachments
    FOR SELECT TO authenticated USING ((SELECT auth.uid()) = owner_id);
CREATE POLICY "Owners can add attachments" ON public.attachments
    FOR INSERT TO authenticated WITH CHECK ((SELECT auth.uid()) = owner_id);
CREATE POLICY "Owners can delete their attachments" ON public.attachments
    FOR DELETE TO authenticated USING ((SELECT auth.uid()) = owner_id);

-- Partitions are tables in their own right: a query that names a partition directly gets
-- that partition's policies, not the parent's, so each carries the same one.
CREATE POLICY "Users can read their own audit events" ON public.audit_events
    FOR SELECT TO authenticated USING ((SELECT auth.uid()) = actor_id);
CREATE POLICY "Users can read their own audit events" ON public.audit_events_2025_01
    FOR SELECT TO authenticated USING ((SELECT auth.uid()) = actor_id);
CREATE POLICY "Users can read their own audit events" ON public.audit_events_2025_02
    FOR SELECT TO authenticated USING ((SELECT auth.uid()) = actor_id);
CREATE POLICY "Users can read their own audit events" ON public.audit_events_2025_03
    FOR SELECT TO authenticated USING ((SELECT auth.uid()) = actor_id);
CREATE POLICY "Users can read their own audit events" ON public.audit_events_default
    FOR SELECT TO authenticated USING ((SELECT auth.uid()) = actor_id);

CREATE POLICY "Users can read their own imports" ON public.import_log
    FOR SELECT TO authenticated USING ((SELECT auth.uid()) = imported_by);

-- ---------------------------------------------------------------------------------------
-- Project invitations. The token's default is a SQL function calling pgcrypto's
-- gen_random_bytes without a schema, as many apps write it (basejump does): pgcrypto lives
-- in `extensions`, which postgres's search_path holds, and the function works only there.
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION public.generate_token(length integer) RETURNS text
    LANGUAGE sql AS $$ SELECT encode(gen_random_bytes(length), 'hex') $$;

CREATE TABLE public.project_invitations (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES public.projects (id) ON DELETE CASCADE,
    token text NOT NULL UNIQUE DEFAULT public.generate_token(16),
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE public.project_invitations ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Project owners manage their invitations" ON public.project_invitations
    FOR ALL TO authenticated
    USING (EXISTS (SELECT 1 FROM public.projects p
                   WHERE p.id = project_id AND p.owner_id = (SELECT auth.uid())));

-- ---------------------------------------------------------------------------------------
-- Realtime: the tables the app's clients subscribe to
-- ---------------------------------------------------------------------------------------
ALTER PUBLICATION supabase_realtime ADD TABLE public.projects, public.tasks, public.comments;

-- One custom login role, as teams create for reporting tools: the backup keeps it (without
-- its password) and the restore must bring it back with its grants.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'reporting_reader') THEN
    CREATE ROLE reporting_reader LOGIN NOINHERIT CONNECTION LIMIT 5;
  END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO reporting_reader;
GRANT SELECT ON public.projects, public.tasks TO reporting_reader;
