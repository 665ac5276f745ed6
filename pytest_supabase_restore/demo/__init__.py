"""The built-in demo project: a throwaway, seeded, Supabase-like "production" project.

``pytest --supabase-restore --supabase-demo`` runs the whole drill against it. The SQL it
starts from what a fresh Supabase project has (``staging.platform``: the reserved roles,
extensions, the platform's event triggers, today's auth and storage schemas; the same SQL
staging uses), then adds ``platform.sql`` (the demo's Storage policies, Database Webhooks,
the CLI's migration history) and ``app.sql`` (the application in ``public``). The data
generators live in ``demo.seed`` (the entry), ``demo.seed_users``, ``demo.seed_app`` and
``demo.seed_storage``.
"""

from __future__ import annotations

from .project import DemoProject, load_sql, s3_client
from .seed import DEMO_PASSWORD

__all__ = ["DEMO_PASSWORD", "DemoProject", "load_sql", "s3_client"]
