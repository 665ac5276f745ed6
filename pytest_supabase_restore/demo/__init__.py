"""The built-in demo project: a throwaway, seeded, Supabase-like "production" project.

``pytest --supabase-restore --supabase-demo`` runs the whole drill against it. The SQL it
loads is package data: ``platform_roles.sql`` (Supabase's reserved roles, idempotent; also
run on staging before a restore), ``platform.sql`` (what the platform creates: extensions,
auth, storage, supabase_functions, supabase_migrations, the Realtime publication) and
``app.sql`` (the application in ``public``). The data generators live in ``demo.seed``.
"""

from __future__ import annotations

from .project import DemoProject, load_sql, platform_roles_sql, s3_client
from .seed import DEMO_PASSWORD

__all__ = ["DEMO_PASSWORD", "DemoProject", "load_sql", "platform_roles_sql", "s3_client"]
