"""Project exceptions. Each message says what was checked and how to fix it."""

from __future__ import annotations


class DrillError(Exception):
    """Base class: something stopped the drill. The message is shown to the user as is."""


class ConfigError(DrillError):
    """The configuration is invalid or incomplete."""


class ToolError(DrillError):
    """A PostgreSQL client or server binary is missing or of the wrong version."""


class ClusterError(DrillError):
    """A throwaway PostgreSQL cluster could not be started or stopped."""


class SourceError(DrillError):
    """The source project could not be read."""


class BackupError(DrillError):
    """The backup set is missing, incomplete, corrupt or of an unknown format."""


class RestoreError(DrillError):
    """The backup set could not be restored into the staging target."""


class SafetyError(DrillError):
    """A staging target was refused because writing to it could harm data."""


class StorageError(DrillError):
    """An S3 operation on Storage objects failed."""


class SourceConnectionLost(SourceError):
    """The connection to the source broke during the export (a transient fault: retried)."""


def first_line(text: object, fallback: str = "") -> str:
    """The first non-empty line of ``text`` (for an exception: of its message), stripped;
    ``fallback`` when it has none. Nothing is collapsed or cut, so that the line can still be
    redacted exactly."""
    return next((line.strip() for line in str(text).splitlines() if line.strip()), fallback)
