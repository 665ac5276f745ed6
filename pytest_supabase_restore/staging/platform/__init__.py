"""What a fresh Supabase project has before any user SQL, as SQL this project owns.

Our own rendering of the final state of the public platform sources (each file names the
files and commits it was written from; ``versions.json`` records them): the reserved roles
(``roles.sql``), the ``extensions`` schema, grants, default privileges and the platform's
event-trigger functions (``base.sql``), the six event triggers (``event_triggers.sql``),
and today's ``auth`` (GoTrue) and ``storage`` (Storage API) schemas (``auth.sql``,
``storage.sql``), and the Database Webhooks schema (``webhooks.sql``).

A backup set made by this plugin carries its own ``auth`` and ``storage`` schemas and the
``CREATE EVENT TRIGGER`` statements, so staging gets only :func:`for_backup_set`; a Supabase
CLI dump assumes a Supabase target and leaves them out, so it gets :func:`for_cli_dump`.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

FILES = ("roles.sql", "base.sql", "event_triggers.sql", "auth.sql", "storage.sql", "webhooks.sql")


@cache
def load(name: str) -> str:
    """The text of one platform file."""
    if name not in FILES:
        raise ValueError(f"unknown platform file {name!r}; expected one of {FILES}")
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def roles_sql() -> str:
    """Idempotent SQL that creates Supabase's reserved roles; run it as a superuser."""
    return load("roles.sql")


def for_backup_set() -> str:
    """Run as the bootstrap superuser before restoring a backup set: roles and base."""
    return roles_sql() + "\n" + load("base.sql")


def for_cli_dump() -> str:
    """Run before restoring a CLI dump: everything a Supabase project has, auth and
    storage included (the dump's tables reference ``auth.users``), and the webhooks schema
    (the dump holds its data but not its tables)."""
    return "\n".join(load(name) for name in FILES)


@cache
def versions() -> dict[str, Any]:
    """Facts about the sources: commits, newest migrations, auth and storage columns."""
    data: dict[str, Any] = json.loads(
        resources.files(__package__).joinpath("versions.json").read_text(encoding="utf-8")
    )
    return data
