"""Staging targets: where a backup set is restored.

- ``ephemeral``: a throwaway cluster from :mod:`pg.cluster` plus a local S3 server.
- ``container``: testcontainers running ``supabase/postgres`` of the source's major version.
- ``url``: an existing database (``STAGING_DB_URL``), refused unless marked disposable and
  provably not the source.
- ``auto``: container when a Docker engine answers, else ephemeral.
"""

from __future__ import annotations

import shutil
import subprocess

from .base import StagingTarget
from .container import ContainerStaging
from .ephemeral import EphemeralStaging
from .url import UrlStaging


def docker_available() -> bool:
    """True when a Docker engine answers (not only the client binary)."""
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


def resolve_kind(requested: str) -> str:
    if requested != "auto":
        return requested
    return "container" if docker_available() else "ephemeral"


__all__ = [
    "ContainerStaging",
    "EphemeralStaging",
    "StagingTarget",
    "UrlStaging",
    "docker_available",
    "resolve_kind",
]
