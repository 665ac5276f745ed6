"""pg_cron on throwaway clusters: loaded like on Supabase, but never running a job.

Every Supabase project can enable pg_cron, which needs ``shared_preload_libraries`` and
``cron.database_name`` in the server's configuration: without them a backup's
``CREATE EXTENSION pg_cron`` fails (``unrecognized configuration parameter
"cron.database_name"``) and with it every job and its history. A throwaway cluster started
with :func:`settings` loads pg_cron where the installation has it, so the extension and its
``cron.job`` rows restore exactly as backed up (the data check proves them), yet the
scheduler can never run a job: it starts each job through a libpq connection to
``cron.host``, which names a socket directory that does not exist, and it records nothing
(``cron.log_run`` off), so ``cron.job_run_details`` also stays as backed up.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .binaries import PgBinaries

# A Unix-socket directory that cannot exist: every connection the scheduler tries fails.
NOWHERE = "/nonexistent/pytest-supabase-restore/cron-never-runs"


def library_dir(binaries: PgBinaries) -> Path:
    """Where this installation keeps its extension libraries (``pg_config --pkglibdir``)."""
    pg_config = binaries.bindir / "pg_config"
    if pg_config.is_file():
        try:
            out = subprocess.run(
                [str(pg_config), "--pkglibdir"],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
            if out.returncode == 0 and out.stdout.strip():
                return Path(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    return binaries.bindir.parent / "lib"


def available(binaries: PgBinaries) -> bool:
    """True when this installation has pg_cron's library."""
    return (library_dir(binaries) / "pg_cron.so").is_file()


def settings(binaries: PgBinaries, dbname: str = "postgres") -> dict[str, str]:
    """Server settings that load pg_cron for ``dbname`` without ever running a job; empty
    when the installation has no pg_cron."""
    if not available(binaries):
        return {}
    return {
        "shared_preload_libraries": "pg_cron",
        "cron.database_name": dbname,
        "cron.host": NOWHERE,
        "cron.use_background_workers": "off",
        "cron.log_run": "off",
        "cron.log_statement": "off",
    }


def source_settings(binaries: PgBinaries, dbname: str = "postgres") -> dict[str, str]:
    """Settings of a cluster standing in for a Supabase project (the demo): pg_cron loaded
    and running its jobs, as on the platform; empty without pg_cron."""
    if not available(binaries):
        return {}
    return {"shared_preload_libraries": "pg_cron", "cron.database_name": dbname}
