"""Staging targets: where a backup set is restored.

- ``ephemeral`` (:mod:`.ephemeral`): a throwaway cluster from :mod:`pg.cluster` plus a local
  S3 server.
- ``container`` (:mod:`.container`): testcontainers running ``supabase/postgres`` of the
  source's major version.
- ``url`` (:mod:`.url`): an existing database (``STAGING_DB_URL``), refused unless marked
  disposable and provably not the source.
- ``auto``: container when a Docker engine answers, else ephemeral.

Each target prepares itself for the restore (:meth:`.base.StagingTarget.prepare`). This
module imports none of them: asking which kind to use costs no server module.
"""

from __future__ import annotations

import functools
import importlib.util
import shutil
import subprocess


@functools.cache
def docker_available() -> bool:
    """True when a Docker engine answers (not only the client binary). Asked once per
    process: ``docker info`` can take seconds when no engine answers."""
    if shutil.which("docker") is None:
        return False
    try:
        return (
            subprocess.run(
                ["docker", "info"], capture_output=True, timeout=10, check=False
            ).returncode
            == 0
        )
    except (OSError, subprocess.SubprocessError):
        return False


def container_problem() -> str | None:
    """Why ``--supabase-staging=container`` cannot work here, with the fix; None when it can."""
    try:
        found = importlib.util.find_spec("testcontainers.postgres") is not None
    except (ImportError, ValueError):  # its parent package is missing or broken
        found = False
    if not found:
        return (
            "--supabase-staging=container needs testcontainers, which is not installed: "
            "pip install 'pytest-supabase-restore[container]', or use "
            "--supabase-staging=ephemeral (or auto)."
        )
    if not docker_available():
        return (
            "--supabase-staging=container needs a running Docker engine, and `docker info` "
            "did not answer. Start Docker, or use --supabase-staging=ephemeral (or auto)."
        )
    return None


def resolve_kind(requested: str) -> str:
    if requested != "auto":
        return requested
    return "container" if docker_available() else "ephemeral"


__all__ = ["container_problem", "docker_available", "resolve_kind"]
