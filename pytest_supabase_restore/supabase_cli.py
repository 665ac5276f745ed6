"""A Supabase CLI dump (``roles.sql``, ``schema.sql``, ``data.sql``, no manifest) as the
drill's input: how it is recognised, what it must hold, and what it cannot prove."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from . import manifest as mf
from .errors import BackupError
from .results import DrillState

CLI_FILES = ("roles.sql", "schema.sql", "data.sql")
CLI_NOT_TESTED = [
    "data_integrity: the Supabase CLI dump has no manifest, so row counts and fingerprints "
    "of the source are unknown (only that the data restores)",
    "storage: the Supabase CLI dump holds no Storage objects",
    "authentication: RLS visibility at backup time was not recorded",
]
# What a CLI dump cannot be checked against at all (no recorded reference, no objects).
CLI_NOT_APPLICABLE = {
    "data_integrity": "a Supabase CLI dump records no row counts or fingerprints to compare",
    "database_schema": "a Supabase CLI dump records no schema inventory to compare",
    "storage": "a Supabase CLI dump holds no Storage objects",
}


def is_cli_dump(set_dir: Path) -> bool:
    """No manifest, and the CLI's schema and data files: a Supabase CLI dump."""
    return not os.path.lexists(set_dir / mf.MANIFEST) and all(
        (set_dir / f).is_file() for f in CLI_FILES[1:]
    )


def accept_cli_dump(set_dir: Path, state: DrillState, signing_key: str | None) -> list[str]:
    """Check a CLI dump before it is used (unsigned, so refused when only signed sets are
    accepted; regular files only) and record what it cannot prove. Returns roles.sql's
    statements. Any problem is a BackupError."""
    from . import signing
    from .restore import role_statements

    state.backup_format = "supabase-cli"
    if signing_key is not None:
        raise BackupError(
            f"{set_dir.name} is a Supabase CLI dump, which has no manifest and so cannot "
            f"be signed, and with {signing.SIGNING_ENV} set only signed sets are "
            "accepted: unset the key to validate a CLI dump you trust."
        )
    _check_cli_files(set_dir)
    roles = role_statements(set_dir)
    state.not_tested.extend(CLI_NOT_TESTED)
    state.not_applicable.update(CLI_NOT_APPLICABLE)
    return roles


def _check_cli_files(dump_dir: Path) -> None:
    """A CLI dump's files must be regular files, not symbolic links (to files elsewhere
    whose lines would be run, and quoted in error messages)."""
    for name in CLI_FILES:
        path = dump_dir / name
        if os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
            raise BackupError(
                f"{path}: a symbolic link or special file; a Supabase CLI dump's files must "
                "be regular files, so copy the dump's files themselves into the directory."
            )
