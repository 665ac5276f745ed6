"""Staging checks: which target the drill will restore into, and whether it can.

For ``url`` the url target's own guard runs (:func:`..staging.url.check_safe`: read-only
sessions, nothing written): same host, port and database, the probe session, the system
identifier and start time, the disposable marker. Then its PostgreSQL major and its S3
endpoint."""

from __future__ import annotations

import subprocess

import psycopg

from ..config import Config
from ..connections import mask_url
from ..errors import DrillError, first_line
from ..staging import container_problem, docker_available
from ..storage.endpoint import connection_endpoint
from .model import FAIL, INFO, PASS, Check


def _split_fix(message: str) -> tuple[str, str]:
    """A project error's text as (what, fix): its messages end with "Fix: ..."."""
    what, sep, fix = message.partition(" Fix: ")
    return (what, fix.rstrip(".")) if sep else (message, "")


def staging_checks(settings: Config, sources: list[str], source_major: int | None) -> list[Check]:
    kind = settings.staging
    if kind == "auto":
        kind = "container" if docker_available() else "ephemeral"
        why = "a Docker engine answers" if kind == "container" else "no Docker engine answers"
        if settings.target.db_url:
            return [
                Check(
                    "staging target",
                    FAIL,
                    f"--supabase-staging=auto will use a {kind} target ({why}), not "
                    f"STAGING_DB_URL {mask_url(settings.target.db_url)}, which is set but "
                    "used only with --supabase-staging=url",
                    "pass --supabase-staging=url to restore into STAGING_DB_URL, or unset "
                    f"STAGING_DB_URL (or pass --supabase-staging={kind}) to use a throwaway target",
                )
            ]
        head = Check("staging target", INFO, f"auto: {kind} ({why})")
    else:
        head = Check("staging target", INFO, kind)
    if kind == "url":
        return [head, *_url_checks(settings, sources, source_major)]
    if kind == "container":
        return [head, _container_check(source_major)]
    return [head, _ephemeral_check(settings, source_major)]


def _ephemeral_check(settings: Config, major: int | None) -> Check:
    from ..pg.binaries import find_server_tools

    try:
        tools = find_server_tools(major, str(settings.pg_bindir) if settings.pg_bindir else None)
    except DrillError as exc:
        what, fix = _split_fix(str(exc))
        return Check("staging server", FAIL, what, fix or "install the PostgreSQL server packages")
    return Check(
        "staging server", PASS, f"PostgreSQL {tools.version} server binaries ({tools.bindir})"
    )


def _container_check(major: int | None) -> Check:
    from ..staging.container import IMAGES

    problem = container_problem()
    if problem is not None:
        return Check("staging docker", FAIL, problem.split(". ")[0], problem.split(". ", 1)[-1])
    image = IMAGES.get(major or 0)
    if image is None:
        return Check(
            "staging docker",
            FAIL,
            f"no supabase/postgres image is known for PostgreSQL {major}",
            "use --supabase-staging=ephemeral or url",
        )
    local = subprocess.run(
        ["docker", "image", "inspect", image], capture_output=True, timeout=30, check=False
    )
    where = "present locally" if local.returncode == 0 else "not local: it will be pulled"
    return Check("staging docker", PASS, f"Docker answers; image {image} {where}")


def _url_checks(settings: Config, sources: list[str], source_major: int | None) -> list[Check]:
    from ..staging.url import check_safe

    target = settings.target.db_url
    assert target is not None  # the configuration refuses url without STAGING_DB_URL
    try:
        proofs = check_safe(target, sources)
    except DrillError as exc:
        what, fix = _split_fix(str(exc))
        fix = fix or (
            "check STAGING_DB_URL's host, port, database, user and password, and that the "
            "server accepts connections from here"
            if what.startswith("Cannot connect")
            else "point STAGING_DB_URL at a separate, disposable database"
        )
        return [Check("staging safety", FAIL, what, fix)]
    checks = [
        Check("staging safety", PASS, "marked disposable; " + "; ".join(proofs or ["no source"]))
    ]
    checks.append(_major_check(target, source_major))
    endpoint = connection_endpoint(settings.target)
    if endpoint is None:
        checks.append(
            Check(
                "staging storage", INFO, "no STAGING_S3_* settings: objects would not be restored"
            )
        )
    else:
        from ..storage.client import list_buckets, make_client

        try:
            n = len(list_buckets(make_client(endpoint, max_attempts=2, connect_timeout=5)))
            checks.append(Check("staging storage", PASS, f"{endpoint.url} answers ({n} buckets)"))
        except Exception as exc:
            checks.append(
                Check(
                    "staging storage",
                    FAIL,
                    f"{endpoint.url}: {first_line(exc, type(exc).__name__)}",
                    "check STAGING_S3_ENDPOINT and its access keys",
                )
            )
    return checks


def _major_check(target: str, source_major: int | None) -> Check:
    with psycopg.connect(target, connect_timeout=15, autocommit=True) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version_num')::int / 10000, "
            "current_setting('server_version')"
        ).fetchone()
    assert row is not None
    major, version = int(row[0]), str(row[1])
    if source_major is not None and major < source_major:
        return Check(
            "staging version",
            FAIL,
            f"PostgreSQL {version} is older than the source's {source_major}: a dump does "
            "not restore into an older major",
            f"use a staging database on PostgreSQL {source_major} or newer",
        )
    return Check("staging version", PASS, f"PostgreSQL {version}")
