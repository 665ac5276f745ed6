"""The environment of every process this plugin starts: an allow-list, never a copy.

The pytest process holds production secrets in its environment (``SUPABASE_DB_URL`` with
its password, the S3 secret, the service-role key, ``GITHUB_TOKEN``,
``SLACK_WEBHOOK_URL`` ...). A child inherits all of that unless told otherwise, and a
restored trigger or function that runs on a staging server can read its server's
environment (``COPY ... TO PROGRAM 'env'``). So servers and tools get only the variables
they need to run, named here; a tool that must reach a database gets its connection
parameters added explicitly by :mod:`pgtools`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# What any program needs to start and behave predictably: where programs and shared
# libraries are (the embedded PostgreSQL builds need LD_LIBRARY_PATH), the locale, the time
# zone and the temporary directory. None of these carries a secret.
BASE = ("PATH", "LD_LIBRARY_PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM")
BASE_PREFIXES = ("LC_",)

# PostgreSQL client tools (pg_dump, pg_restore, psql, vacuumdb, ...) also read the user's
# home for ~/.pgpass and ~/.pg_service.conf.
CLIENT = ("HOME",)

# The local S3 server is a Python program.
PYTHON = ("HOME", "PYTHONHASHSEED", "VIRTUAL_ENV")


def allowed_env(
    names: tuple[str, ...] = (),
    extra: Mapping[str, str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The allow-listed part of ``environ`` (default: this process's), plus ``extra``."""
    source = os.environ if environ is None else environ
    keep = set(BASE) | set(names)
    env = {
        key: value
        for key, value in source.items()
        if key in keep or any(key.startswith(p) for p in BASE_PREFIXES)
    }
    env.update(extra or {})
    return env


def server_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """For a PostgreSQL server and its initdb: nothing but the basics and a fixed locale."""
    return allowed_env(extra={"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", **(extra or {})})


def client_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """For a PostgreSQL client tool: the basics, HOME, and the given libpq variables."""
    return allowed_env(CLIENT, extra)


def python_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """For a helper Python program (the local S3 server, the watchdog)."""
    return allowed_env(PYTHON, extra)
