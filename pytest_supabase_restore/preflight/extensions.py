"""Extensions the source uses that the staging target cannot load, and what depends on them.

Where the target's extensions are: for ``ephemeral``, the ``extension`` directory of the
server binaries the drill will start (PostgreSQL finds its ``share`` directory relative to
the real path of its ``postgres`` executable, by the same relative path ``pg_config``
reports between ``--bindir`` and ``--sharedir``); for ``url``, the staging server's
``pg_available_extensions``; a ``container`` target's image carries the platform's own."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import psycopg

from ..config import Config
from ..errors import DrillError
from ..staging import resolve_kind
from .model import PASS, WARN, Check, shortened

Conn = psycopg.Connection[Any]

# Objects outside any extension that depend on a member of extension %s: columns of its
# types, indexes on its operator classes, functions, views, defaults.
_DEPENDENTS = """
SELECT DISTINCT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)
FROM pg_catalog.pg_depend m
JOIN pg_catalog.pg_depend d ON d.refclassid = m.classid AND d.refobjid = m.objid
WHERE m.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND m.deptype = 'e'
  AND m.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = %s)
  AND d.deptype = 'n'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend x
      WHERE x.classid = d.classid AND x.objid = d.objid AND x.deptype = 'e')
ORDER BY 1
"""


def _ephemeral_available(settings: Config, major: int) -> set[str]:
    from ..pg.binaries import find_server_tools

    tools = find_server_tools(major, str(settings.pg_bindir) if settings.pg_bindir else None)
    postgres = Path(os.path.realpath(tools.bindir / "postgres"))
    pg_config = os.path.realpath(tools.bindir / "pg_config")
    out = subprocess.run(
        [pg_config, "--bindir", "--sharedir"], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    share = postgres.parent / os.path.relpath(out[1].strip(), out[0].strip())
    return {p.name.removesuffix(".control") for p in (share / "extension").glob("*.control")}


def _url_available(target: str) -> set[str]:
    with psycopg.connect(target, connect_timeout=15, autocommit=True) as conn:
        return {str(r[0]) for r in conn.execute("SELECT name FROM pg_available_extensions")}


def _available(settings: Config, major: int) -> tuple[set[str] | None, str]:
    kind = resolve_kind(settings.staging)
    if kind == "ephemeral":
        return _ephemeral_available(settings, major), "the throwaway staging server"
    if kind == "url" and settings.target.db_url:
        return _url_available(settings.target.db_url), "STAGING_DB_URL's server"
    return None, kind


def extension_check(conn: Conn, settings: Config, major: int) -> Check:
    used = [
        str(r[0])
        for r in conn.execute(
            "SELECT extname FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql' ORDER BY 1"
        )
    ]
    try:
        available, where = _available(settings, major)
    except (DrillError, OSError, subprocess.CalledProcessError, psycopg.Error) as exc:
        return Check("extensions", WARN, f"could not list the staging target's extensions: {exc}")
    if available is None:
        return Check("extensions", PASS, f"{len(used)} used; the {where} image carries them")
    missing = [e for e in used if e not in available]
    if not missing:
        return Check("extensions", PASS, f"all {len(used)} used are loadable by {where}")
    parts = []
    for ext in missing:
        dependents = [str(r[0]) for r in conn.execute(_DEPENDENTS, (ext,))]
        parts.append(
            f"{ext} ({len(dependents)} dependent object(s){': ' if dependents else ''}"
            f"{shortened(dependents, 5)})"
        )
    return Check(
        "extensions",
        WARN,
        f"{len(missing)} extension(s) {where} cannot load; they and their dependents will be "
        f"not restorable there and not tested: {'; '.join(parts)}",
        f"install them on the staging server (Debian: postgresql-{major}-<name>), or use a "
        "staging target that has them",
    )
