"""Settings: declared once, resolved once into a frozen :class:`Config`.

Precedence is CLI > environment > ini > default, each checked with ``is None`` so that a
deliberate falsy value (``0``, ``false``) is kept. Secrets (database URLs, keys, tokens,
webhooks) come from the environment only and are never shown: the report header names
where each setting came from, and URLs are shown with their password masked.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .connections import Connection, api_client_problem, mask_url, url_passwords
from .options import Option, convert, declared_options, option

STAGING_KINDS = ("auto", "ephemeral", "container", "url", "branch")

SOURCE_ENV = (
    "SUPABASE_DB_URL",
    "SUPABASE_URL",
    "SUPABASE_SERVICE_ROLE_KEY",
    "SUPABASE_S3_ENDPOINT",
    "SUPABASE_S3_REGION",
    "SUPABASE_S3_ACCESS_KEY_ID",
    "SUPABASE_S3_SECRET_ACCESS_KEY",
)
STAGING_ENV = (
    "STAGING_DB_URL",
    "STAGING_SUPABASE_URL",
    "STAGING_SUPABASE_SERVICE_ROLE_KEY",
    "STAGING_S3_ENDPOINT",
    "STAGING_S3_REGION",
    "STAGING_S3_ACCESS_KEY_ID",
    "STAGING_S3_SECRET_ACCESS_KEY",
)
NOTIFY_ENV = ("GITHUB_TOKEN", "GITHUB_REPOSITORY", "GITHUB_API_URL", "SLACK_WEBHOOK_URL")
PLATFORM_ENV = ("SUPABASE_ACCESS_TOKEN", "SUPABASE_MANAGEMENT_API_URL", "SUPABASE_BRANCH_API_URL")
"""The Supabase Management API: a personal access token (a secret), the API's base URL, and
where a branch's own APIs are (a template with ``{ref}``)."""
MANAGEMENT_API_URL = "https://api.supabase.com"
BACKUP_ENV = ("SUPABASE_RESTORE_SIGNING_KEY", "SUPABASE_RESTORE_ENCRYPTION_KEY")
"""Keys that protect backup sets (docs: "Security model"); environment only, never a flag."""
SECRET_ENV = (
    "SUPABASE_DB_URL",
    "SUPABASE_SERVICE_ROLE_KEY",
    "SUPABASE_S3_ACCESS_KEY_ID",
    "SUPABASE_S3_SECRET_ACCESS_KEY",
    "STAGING_DB_URL",
    "STAGING_SUPABASE_SERVICE_ROLE_KEY",
    "STAGING_S3_ACCESS_KEY_ID",
    "STAGING_S3_SECRET_ACCESS_KEY",
    "GITHUB_TOKEN",
    "SLACK_WEBHOOK_URL",
    "SUPABASE_ACCESS_TOKEN",
    *BACKUP_ENV,
)
"""Environment variables whose values are secrets (URLs: the password, or the whole URL)."""


@dataclass(frozen=True)
class Config:
    """The plugin's settings for this run, resolved once. Never mutated."""

    enabled: bool = option(
        "Run the backup-restore drill.",
        False,
        flag="--supabase-restore",
        env="SUPABASE_RESTORE",
        ini="supabase_restore",
    )
    demo: bool = option(
        "Use the built-in demo project (a throwaway database and local S3) as the source.",
        False,
    )
    demo_scale: int = option(
        "Size of the demo project: 1 is a few thousand rows; 1000 is millions.",
        1,
        metavar="N",
    )
    staging: str = option(
        "Where to restore: auto (container if Docker answers, else ephemeral), ephemeral, "
        "container or url (STAGING_DB_URL).",
        "auto",
        choices=STAGING_KINDS,
    )
    backup_dir: Path | None = option(
        "Directory that keeps backup sets (one per run). Default: a temporary directory "
        "removed after the run.",
        None,
        metavar="PATH",
    )
    retain_count: int | None = option(
        "Keep at most N backup sets in --supabase-backup-dir (older ones are deleted; never "
        "the one just written).",
        None,
        metavar="N",
    )
    retain_days: float | None = option(
        "Delete backup sets in --supabase-backup-dir older than N days (never the one just "
        "written).",
        None,
        metavar="DAYS",
    )
    from_backup: Path | None = option(
        "Validate an existing backup set instead of exporting (a directory with "
        "manifest.json, or the Supabase CLI's roles.sql/schema.sql/data.sql).",
        None,
        metavar="PATH",
    )
    dry_run: bool = option(
        "Check configuration and connectivity, list what would be exported and checked, write"
        " nothing.",
        False,
    )
    compression: str = option(
        "pg_dump compression: none, gzip:N (1-9), lz4[:N] (1-12) or zstd[:N] (1-22) (the last"
        " two need pg_dump 16+).",
        "none",
        metavar="METHOD",
    )
    jobs: int | None = option(
        "Parallel jobs for pg_dump, pg_restore and fingerprints (default: CPU count); the "
        "export's are capped to half the source's free connection slots.",
        None,
        metavar="N",
    )
    s3_concurrency: int = option(
        "Parallel Storage object transfers.",
        8,
        metavar="N",
    )
    pg_bindir: Path | None = option(
        "Directory with PostgreSQL binaries to use (default: discovered).",
        None,
        metavar="DIR",
    )
    drill_timeout: float | None = option(
        "Stop the export and restore and FAIL when they take longer than this many seconds "
        "(default: pytest-timeout's --session-timeout when set, else no limit).",
        None,
        metavar="SECONDS",
        zero="no limit",
    )
    rto_budget: float | None = option(
        "Fail the drill when the restore takes longer than this many seconds.",
        None,
        metavar="SECONDS",
    )
    lookup_threshold_ms: float = option(
        "Performance check: a primary-key lookup must answer within this many ms.",
        200.0,
        metavar="MS",
    )
    rls_sample: int = option(
        "How many auth users to sample for row-level-security behaviour checks.",
        5,
        metavar="N",
    )
    keep_staging: bool = option(
        "Keep a throwaway staging target running after the run, and print how to connect.",
        False,
    )
    project_ref: str | None = option(
        "The Supabase project's ref for the Management API (default: taken from SUPABASE_URL,"
        " https://<ref>.supabase.co).",
        None,
        metavar="REF",
    )
    max_backup_age: float | None = option(
        "With SUPABASE_ACCESS_TOKEN: FAIL when the platform's newest completed backup is "
        "older than this many hours.",
        None,
        metavar="HOURS",
    )
    pitr_rule: str = option(
        "With SUPABASE_ACCESS_TOKEN and the GitHub tracking issue: what a change of the "
        "platform's point-in-time recovery since the previous drill is (PITR turned off, its "
        "window shorter): warn (said in the verdict's platform section), fail (a FAIL "
        "reason) or off.",
        "warn",
        choices=("warn", "fail", "off"),
    )
    branch_timeout: float = option(
        "--supabase-staging=branch: how many seconds to wait for the new branch to become healthy.",
        600.0,
        metavar="SECONDS",
    )
    self_test: bool = option(
        "After the drill, inject faults into a scratch copy and report that each one was caught.",
        False,
    )
    builtin_tests: bool = option(
        "Collect the built-in smoke tests (on by default; --no-supabase-builtin-tests leaves "
        "them out).",
        True,
    )
    quick: bool = option(
        "Quick check: run only the smoke-test categories whose cost does not grow with the "
        "data (same tests as -m supabase_quick); a PASS is then not a full proof.",
        False,
    )
    summary_json: Path | None = option(
        "Write the drill verdict as JSON to PATH.",
        None,
        metavar="PATH",
    )
    github_issue: bool = option(
        "Post the verdict to the tracking GitHub issue (GITHUB_TOKEN, GITHUB_REPOSITORY, "
        "GITHUB_API_URL).",
        False,
    )
    github_close_on_pass: bool = option(
        "Close the tracking issue when the drill passes.",
        False,
    )
    github_issue_title: str = option(
        "Title of the tracking issue.",
        "Backup restore drill",
        metavar="TITLE",
    )
    slack: bool = option(
        "Post the verdict to Slack (SLACK_WEBHOOK_URL).",
        False,
    )
    source: Connection = field(default_factory=Connection)
    target: Connection = field(default_factory=Connection)
    github_token: str | None = field(default=None, repr=False)
    github_repository: str | None = None
    github_api_url: str = "https://api.github.com"
    slack_webhook_url: str | None = field(default=None, repr=False)
    signing_key: str | None = field(default=None, repr=False)  # SUPABASE_RESTORE_SIGNING_KEY
    encryption_key: str | None = field(default=None, repr=False)  # ..._ENCRYPTION_KEY
    access_token: str | None = field(default=None, repr=False)  # SUPABASE_ACCESS_TOKEN
    management_api_url: str = MANAGEMENT_API_URL  # SUPABASE_MANAGEMENT_API_URL
    # SUPABASE_BRANCH_API_URL: a branch's API base URL with {ref} (None: the platform's).
    branch_api_url: str | None = None
    # libpq's PGPASSWORD: psycopg and every tool read it when a URL has no password.
    libpq_password: str | None = field(default=None, repr=False)
    # The drill's time limit in seconds (None: none), from drill_timeout or pytest-timeout.
    drill_time_limit: float | None = None
    origins: Mapping[str, str] = field(default_factory=dict)  # setting -> "cli"/"env:X"/...

    @property
    def effective_jobs(self) -> int:
        return self.jobs if self.jobs is not None else max(2, os.cpu_count() or 2)

    def secrets(self) -> list[str]:
        """Every secret value of this run, longest first, for redaction.

        Short values are kept: :class:`~pytest_supabase_restore.redact.Redactor` masks a
        value under four characters only where it stands as a password (in a URL's
        userinfo or after ``=``), since masking it everywhere would garble ordinary words.
        """
        values: list[str] = []
        for conn in (self.source, self.target):
            for value in (conn.service_role_key, conn.s3_access_key_id, conn.s3_secret_access_key):
                if value:
                    values.append(value)
            if conn.db_url:
                values.append(conn.db_url)
                values += url_passwords(conn.db_url)
        for value in (
            self.github_token,
            self.slack_webhook_url,
            self.signing_key,
            self.encryption_key,
            self.access_token,
            self.libpq_password,
        ):
            if value:
                values.append(value)
        return sorted({v for v in values if v}, key=len, reverse=True)


OPTIONS: tuple[Option, ...] = declared_options(Config)
"""Every option of the plugin, in the order of :class:`Config`'s fields: the one table the
command line, the environment, the ini file, ``--help`` and the header are built from. The
docs' configuration reference is checked against it."""


def resolve(pytest_config: pytest.Config, env: Mapping[str, str] | None = None) -> Config:
    """Resolve every setting once. Raises ``pytest.UsageError`` on invalid configuration."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for opt in OPTIONS:
        cli = pytest_config.getoption(opt.name, default=None)
        if cli is not None:
            values[opt.name], origins[opt.name] = convert(opt, cli, "cli"), "command line"
            continue
        if opt.env and env.get(opt.env) not in (None, ""):
            values[opt.name] = convert(opt, env[opt.env], f"env {opt.env}")
            origins[opt.name] = f"env {opt.env}"
            continue
        ini_raw = _ini(pytest_config, opt)
        if ini_raw is not None:
            values[opt.name] = convert(opt, ini_raw, f"ini {opt.ini}")
            origins[opt.name] = f"ini {opt.ini}"
            continue
        values[opt.name], origins[opt.name] = opt.default, "default"

    api_url = env.get("GITHUB_API_URL") or "https://api.github.com"
    config = Config(
        **values,
        source=Connection.from_env(env, "SUPABASE"),
        target=Connection.from_env(env, "STAGING"),
        github_token=env.get("GITHUB_TOKEN") or None,
        github_repository=env.get("GITHUB_REPOSITORY") or None,
        github_api_url=api_url.rstrip("/"),
        slack_webhook_url=env.get("SLACK_WEBHOOK_URL") or None,
        # Surrounding whitespace (a newline pasted into a CI secret) is not part of a key.
        signing_key=(env.get("SUPABASE_RESTORE_SIGNING_KEY") or "").strip() or None,
        encryption_key=(env.get("SUPABASE_RESTORE_ENCRYPTION_KEY") or "").strip() or None,
        access_token=(env.get("SUPABASE_ACCESS_TOKEN") or "").strip() or None,
        management_api_url=(env.get("SUPABASE_MANAGEMENT_API_URL") or MANAGEMENT_API_URL).rstrip(
            "/"
        ),
        branch_api_url=(env.get("SUPABASE_BRANCH_API_URL") or "").strip() or None,
        drill_time_limit=_drill_time_limit(pytest_config, values["drill_timeout"]),
        libpq_password=env.get("PGPASSWORD") or None,
        origins=origins,
    )
    validate(config)
    if config.enabled and not hasattr(pytest_config, "workerinput"):
        _check_installed(config)
    return config


def _check_installed(config: Config) -> None:
    """What the settings ask for is installed (an extra each): at start, not after minutes
    of export; once, on the controller (xdist workers restore nothing)."""
    problem = None
    if config.staging == "container":
        from .staging import container_problem

        problem = container_problem()
    if problem is None and config.target.has_api:
        problem = api_client_problem()
    if problem is not None:
        raise pytest.UsageError(problem)


def _drill_time_limit(pytest_config: pytest.Config, drill_timeout: float | None) -> float | None:
    """--supabase-drill-timeout (0: no limit), else pytest-timeout's session timeout (which
    on its own only acts between tests, so it would never stop a drill that hangs)."""
    if drill_timeout is not None:
        return drill_timeout or None
    try:
        session = pytest_config.getoption("session_timeout", None)
        if session is None:
            session = pytest_config.getini("session_timeout")
    except ValueError:  # pytest-timeout is not installed
        return None
    try:
        seconds = float(session)
    except (TypeError, ValueError):  # unset ("" from the ini) or not a number
        return None
    # inf or nan would overflow the timer (an INTERNALERROR); neither is a limit.
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def _ini(pytest_config: pytest.Config, opt: Option) -> str | None:
    if not opt.ini:
        return None
    try:
        raw = pytest_config.getini(opt.ini)
    except (ValueError, KeyError):
        return None
    if raw is None or raw == "" or raw == []:
        return None
    return str(raw)


def validate(config: Config) -> None:
    """Cross-setting checks, each naming the setting and the fix."""
    if not config.enabled:
        return
    _check_source(config)
    _check_staging(config)
    _check_s3(config)
    _check_compression(config.compression)
    if config.jobs == 0 or config.s3_concurrency == 0:
        raise pytest.UsageError("--supabase-jobs and --supabase-s3-concurrency must be at least 1.")
    _check_notifiers(config)
    _check_keys(config)
    _check_platform(config)


def _check_source(config: Config) -> None:
    if config.demo and config.from_backup is not None:
        raise pytest.UsageError(
            "--supabase-demo and --supabase-from-backup exclude each other: the demo exports "
            "a fresh backup of its own project. Drop one of them."
        )
    if not config.demo and config.from_backup is None and not config.source.db_url:
        raise pytest.UsageError(
            "No source to back up: set SUPABASE_DB_URL to the project's database URL "
            "(Supabase dashboard > Connect > Session pooler), or use --supabase-demo to run "
            "the drill against the built-in demo project, or --supabase-from-backup PATH to "
            "validate an existing backup set."
        )
    if config.source.db_url and not config.source.db_url.startswith(
        ("postgres://", "postgresql://")
    ):
        raise pytest.UsageError(
            f"SUPABASE_DB_URL must be a postgresql:// URL (got {mask_url(config.source.db_url)!r})."
        )
    if config.from_backup is not None and not config.from_backup.exists():
        raise pytest.UsageError(
            f"--supabase-from-backup: {config.from_backup} does not exist. Give the directory of "
            "a backup set (it holds manifest.json) or of the Supabase CLI's dump files."
        )


def _check_staging(config: Config) -> None:
    if config.staging == "url" and not config.target.db_url:
        raise pytest.UsageError(
            "--supabase-staging=url needs STAGING_DB_URL: the database URL of a disposable "
            "staging project (see docs/BACKUP_VALIDATION.md, 'Staging targets')."
        )
    if config.target.db_url and not config.target.db_url.startswith(
        ("postgres://", "postgresql://")
    ):
        raise pytest.UsageError(
            f"STAGING_DB_URL must be a postgresql:// URL (got {mask_url(config.target.db_url)!r})."
        )


def _check_s3(config: Config) -> None:
    partial = [
        name
        for name, conn, prefix in (
            ("source", config.source, "SUPABASE"),
            ("staging", config.target, "STAGING"),
        )
        if bool(conn.s3_endpoint) != bool(conn.s3_access_key_id and conn.s3_secret_access_key)
    ]
    if partial and not config.demo:
        which = partial[0]
        prefix = "SUPABASE" if which == "source" else "STAGING"
        raise pytest.UsageError(
            f"Incomplete {which} S3 settings: set all of {prefix}_S3_ENDPOINT, "
            f"{prefix}_S3_ACCESS_KEY_ID and {prefix}_S3_SECRET_ACCESS_KEY (Supabase dashboard > "
            "Storage > S3 Connection), or none of them."
        )


def _check_notifiers(config: Config) -> None:
    if config.github_issue and not (config.github_token and config.github_repository):
        raise pytest.UsageError(
            "--supabase-github-issue needs GITHUB_TOKEN and GITHUB_REPOSITORY in the environment "
            "(GitHub Actions sets GITHUB_REPOSITORY; pass secrets.GITHUB_TOKEN as GITHUB_TOKEN)."
        )
    if config.slack and not config.slack_webhook_url:
        raise pytest.UsageError(
            "--supabase-slack needs SLACK_WEBHOOK_URL in the environment (a Slack incoming "
            "webhook; keep it in a repository secret)."
        )


def _check_keys(config: Config) -> None:
    if config.signing_key is not None:
        from .signing import key_problem

        problem = key_problem(config.signing_key)
        if problem:
            raise pytest.UsageError(problem + ".")
    if config.encryption_key is not None:
        from .encryption import parse_key

        try:
            parse_key(config.encryption_key)
        except ValueError as exc:
            raise pytest.UsageError(f"{exc}.") from None


def project_ref(config: Config) -> str | None:
    """The project's ref: --supabase-project-ref, else the first label of SUPABASE_URL's host
    when it is a ``<ref>.supabase.co`` (or ``.supabase.in``) address."""
    if config.project_ref:
        return config.project_ref
    host = urlsplit(config.source.api_url or "").hostname or ""
    ref, _, domain = host.partition(".")
    return ref if domain in ("supabase.co", "supabase.in") and ref else None


def _check_platform(config: Config) -> None:
    if config.staging != "branch" and config.max_backup_age is None:
        return
    needs = (
        "--supabase-staging=branch" if config.staging == "branch" else "--supabase-max-backup-age"
    )
    if not config.access_token:
        raise pytest.UsageError(
            f"{needs} needs SUPABASE_ACCESS_TOKEN in the environment: a Supabase personal "
            "access token (dashboard > Account > Access Tokens; keep it in a secret)."
        )
    if project_ref(config) is None:
        raise pytest.UsageError(
            f"{needs} needs the project's ref: set SUPABASE_URL to https://<ref>.supabase.co "
            "or give --supabase-project-ref REF."
        )
    template = config.branch_api_url
    if template is not None and (
        "{ref}" not in template or not template.lower().startswith(("http://", "https://"))
    ):
        raise pytest.UsageError(
            "SUPABASE_BRANCH_API_URL must be an http(s) URL with {ref} where the branch's ref "
            "goes (the platform's is https://{ref}.supabase.co); or leave it unset."
        )
    if not config.management_api_url.lower().startswith(("http://", "https://")):
        raise pytest.UsageError(
            f"SUPABASE_MANAGEMENT_API_URL must be an http(s) URL (default {MANAGEMENT_API_URL})."
        )


# pg_dump's compression levels (PostgreSQL's compression specification): gzip 1-9,
# lz4 1-12, zstd 1-22 (zstd's negative "fast" levels are not offered).
COMPRESSION_LEVELS = {"gzip": (1, 9), "lz4": (1, 12), "zstd": (1, 22)}


def _check_compression(value: str) -> None:
    """A UsageError naming the flag unless ``value`` is a compression pg_dump accepts."""
    if value == "none":
        return
    match = re.fullmatch(r"(gzip|lz4|zstd)(?::(\d+))?", value)
    if match is None:
        raise pytest.UsageError(
            f"--supabase-compression: {value!r} is not one of none, gzip:N (1-9), lz4[:N] "
            "(1-12), zstd[:N] (1-22); fix the method name."
        )
    method, level = match.group(1), match.group(2)
    low, high = COMPRESSION_LEVELS[method]
    if level is not None and not low <= int(level) <= high:
        raise pytest.UsageError(
            f"--supabase-compression: {method} level {int(level)} is out of range; give "
            f"{method}:N with N from {low} to {high}."
        )


def header_lines(config: Config) -> list[str]:
    """What the report header shows: each setting's value and origin, never a secret."""
    shown = []
    for opt in OPTIONS:
        origin = config.origins.get(opt.name, "default")
        if origin == "default" and opt.name not in ("staging", "compression"):
            continue
        shown.append(f"{opt.name}={getattr(config, opt.name)} ({origin})")
    lines = ["supabase-restore: " + ", ".join(shown)]
    if config.source.db_url:
        via = ""
        if config.libpq_password and not url_passwords(config.source.db_url):
            via = "; its password: env PGPASSWORD"
        lines.append(
            f"supabase-restore source: {mask_url(config.source.db_url)} (env SUPABASE_DB_URL{via})"
        )
    if config.target.db_url:
        lines.append(
            f"supabase-restore staging: {mask_url(config.target.db_url)} (env STAGING_DB_URL)"
        )
    return lines
