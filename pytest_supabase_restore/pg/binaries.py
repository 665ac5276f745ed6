"""Find PostgreSQL binaries of a suitable major version.

Search order: an explicit directory (``--supabase-pg-bindir``), ``pg_config --bindir``,
``PATH``, then ``/usr/lib/postgresql/*/bin`` (Debian/Ubuntu layout). Client tools for a
server of major version N must be of major >= N (``pg_dump`` refuses newer servers); the
lowest such major is preferred, because a newer ``pg_dump`` writes statements an older
server does not understand (``SET transaction_timeout`` from 17, for example).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import ToolError

CLIENT_TOOLS = ("pg_dump", "pg_dumpall", "pg_restore", "psql")
SERVER_TOOLS = ("initdb", "postgres", "pg_ctl")

_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class PgBinaries:
    """A directory holding PostgreSQL binaries of one version."""

    bindir: Path
    major: int
    version: str

    def path(self, tool: str) -> str:
        return str(self.bindir / tool)


def _version_of(executable: Path) -> tuple[int, str] | None:
    try:
        out = subprocess.run(
            [str(executable), "--version"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION_RE.search(out)
    if not match:
        return None
    return int(match.group(1)), out.strip()[match.start(1) :].split()[0]


def candidate_dirs(explicit: str | None = None) -> list[Path]:
    """Directories to look in, in order, without duplicates."""
    dirs: list[Path] = []
    if explicit:
        dirs.append(Path(explicit))
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=20, check=False
            ).stdout.strip()
            if out:
                dirs.append(Path(out))
        except (OSError, subprocess.SubprocessError):
            pass
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry:
            dirs.append(Path(entry))
    dirs.extend(Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True))
    dirs.extend(Path(p) for p in sorted(glob.glob("/usr/local/pgsql*/bin"), reverse=True))
    seen: set[Path] = set()
    unique: list[Path] = []
    for d in dirs:
        try:
            key = d.resolve()
        except OSError:
            continue
        if key not in seen:
            seen.add(key)
            unique.append(d)
    return unique


def available(tools: tuple[str, ...], explicit: str | None = None) -> list[PgBinaries]:
    """Every directory that holds all of ``tools``, with the version of the first."""
    found: list[PgBinaries] = []
    for d in candidate_dirs(explicit):
        if not all((d / t).is_file() and os.access(d / t, os.X_OK) for t in tools):
            continue
        real = (d / tools[0]).resolve()
        if "pg_wrapper" in real.name:
            # Debian's /usr/bin/pg_dump is a wrapper that picks a version by itself;
            # use the versioned directories it points at instead.
            continue
        version = _version_of(d / tools[0])
        if version is not None:
            found.append(PgBinaries(bindir=d, major=version[0], version=version[1]))
    return found


def _install_hint(major: int, kind: str) -> str:
    pkg = f"postgresql-client-{major}" if kind == "client" else f"postgresql-{major}"
    return (
        f"Install PostgreSQL {major} {kind} tools (Debian/Ubuntu: add the PGDG apt repository and "
        f"`apt-get install {pkg}`; macOS: `brew install postgresql@{major}`), or point "
        f"--supabase-pg-bindir / SUPABASE_RESTORE_PG_BINDIR at a directory that holds them."
    )


def find_client_tools(server_major: int, explicit: str | None = None) -> PgBinaries:
    """Client tools (pg_dump, pg_restore, ...) able to talk to a server of ``server_major``."""
    found = available(CLIENT_TOOLS, explicit)
    if explicit and not any(b.bindir == Path(explicit) for b in found):
        raise ToolError(
            f"--supabase-pg-bindir={explicit} does not hold working {', '.join(CLIENT_TOOLS)}. "
            + _install_hint(server_major, "client")
        )
    usable = sorted((b for b in found if b.major >= server_major), key=lambda b: b.major)
    if explicit:
        usable = [b for b in usable if b.bindir == Path(explicit)] or usable
    if not usable:
        have = ", ".join(f"{b.major} in {b.bindir}" for b in found) or "none"
        raise ToolError(
            f"The source server runs PostgreSQL {server_major}; its backup needs pg_dump and "
            f"pg_restore of major version {server_major} or newer (found: {have}). "
            + _install_hint(server_major, "client")
        )
    return usable[0]


def find_server_tools(min_major: int | None = None, explicit: str | None = None) -> PgBinaries:
    """Server binaries (initdb, postgres, pg_ctl) of at least ``min_major``, the lowest such."""
    found = available(SERVER_TOOLS, explicit)
    usable = sorted(
        (b for b in found if min_major is None or b.major >= min_major), key=lambda b: b.major
    )
    if explicit:
        usable = [b for b in usable if b.bindir == Path(explicit)] or usable
    if not usable:
        have = ", ".join(f"{b.major} in {b.bindir}" for b in found) or "none"
        need = f"of major version {min_major} or newer " if min_major else ""
        raise ToolError(
            f"No PostgreSQL server binaries (initdb, postgres, pg_ctl) {need}were found "
            f"(found: {have}). " + _install_hint(min_major or 15, "server")
        )
    return usable[0]
