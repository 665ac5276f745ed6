-- Database Webhooks: the `supabase_functions` schema a Supabase project gets when webhooks
-- are enabled (our own rendering of the supabase/postgres docker setup's webhooks.sql:
-- the schema, its migrations record and the hooks audit table, owned by
-- supabase_functions_admin). Not part of every fresh project, so a backup set carries it
-- itself; a CLI dump leaves the schema out but dumps its data, so staging creates it first.
-- The trigger function supabase_functions.http_request (which calls pg_net) is left out:
-- a restore must never call out, and a backup that has it brings its own.

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

