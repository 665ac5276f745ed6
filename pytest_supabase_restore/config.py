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
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

import pytest

STAGING_KINDS = ("auto", "ephemeral", "container", "url")
DISPOSABLE_MARKER = "pytest-supabase-restore:disposable"


@dataclass(frozen=True)
class Option:
    """One plugin option: its flag, environment variable and ini key, derived from the
    :class:`Config` field that declares it (see :func:`option`)."""

    name: str  # attribute on Config
    flag: str
    help: str
    kind: str  # "bool" | "int" | "float" | "str" | "path" | "choice"
    default: Any
    choices: tuple[str, ...] = ()
    env: str | None = None
    ini: str | None = None
    metavar: str | None = None
    zero: str | None = None  # for a float: what 0 means, when 0 is allowed at all


_OPTION = "supabase_restore_option"  # the key of a Config field's metadata


def option(
    help: str,
    default: Any,
    *,
    choices: tuple[str, ...] = (),
    metavar: str | None = None,
    zero: str | None = None,
    flag: str | None = None,
    env: str | None = None,
    ini: str | None = None,
) -> Any:
    """Declare a :class:`Config` field as an option: its help and default, the one place
    either is written. The flag, environment variable and ini key follow from the field's
    name (``demo_scale``: ``--supabase-demo-scale``, ``SUPABASE_RESTORE_DEMO_SCALE``,
    ``supabase_demo_scale``) unless given; the kind, from its type."""
    spec = {
        "help": help,
        "default": default,
        "choices": choices,
        "metavar": metavar,
        "zero": zero,
        "flag": flag,
        "env": env,
        "ini": ini,
    }
    return field(default=default, metadata={_OPTION: spec})


_KINDS = {"bool": "bool", "int": "int", "float": "float", "str": "str", "Path": "path"}


def _option(f: Field[Any]) -> Option:
    spec = f.metadata[_OPTION]
    kind = "choice" if spec["choices"] else _KINDS[str(f.type).removesuffix(" | None")]
    return Option(
        name=f.name,
        flag=spec["flag"] or "--supabase-" + f.name.replace("_", "-"),
        help=spec["help"],
        kind=kind,
        default=spec["default"],
        choices=spec["choices"],
        env=spec["env"] or "SUPABASE_RESTORE_" + f.name.upper(),
        ini=spec["ini"] or "supabase_" + f.name,
        metavar=spec["metavar"],
        zero=spec["zero"],
    )


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
    *BACKUP_ENV,
)
"""Environment variables whose values are secrets (URLs: the password, or the whole URL)."""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


# A ``password=`` value in a libpq key=value string (or a URL query, a log line, an env
# dump such as ``PGPASSWORD=...``): quoted with libpq's backslash escapes, or bare up to
# whitespace or a separator. The key may carry a prefix (``PGPASSWORD``, ``sslpassword``).
DSN_PASSWORD = re.compile(
    r"(\b\w*password\s*=\s*)('(?:[^'\\]|\\.)*'?|\"(?:[^\"\\]|\\.)*\"?|[^\s&;'\"]+)",
    re.IGNORECASE,
)
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)


def _userinfo_end(rest: str) -> int:
    """Where the userinfo of a URL's remainder (after ``scheme://``) ends: the index of the
    ``@`` that closes it, or -1 when the URL has none.

    libpq takes everything up to the first ``@`` before any ``/`` as ``user[:password]``,
    unencoded ``?``, ``#``, ``:``, quotes and brackets included (Python's ``urlsplit`` would
    stop at ``?`` or ``#`` and show the rest of the password as query or fragment). The last
    ``@`` before the first ``/`` is used, so a password with an unencoded ``@`` (which libpq
    cuts short, but Python's parsers keep whole) is masked whole too."""
    slash = rest.find("/")
    return (rest if slash < 0 else rest[:slash]).rfind("@")


def mask_url(url: str | None) -> str:
    """The URL with any password replaced by ``***`` (also for ``key=value`` DSNs).

    The whole password of the userinfo is masked, whatever characters it holds (see
    :func:`_userinfo_end`), and so is a ``password=`` query parameter, up to the next ``&``
    (libpq gives ``#`` no meaning there either)."""
    if not url:
        return ""
    if "://" not in url:
        return DSN_PASSWORD.sub(lambda m: m.group(1) + "***", url)
    scheme, rest = url.split("://", 1)
    at = _userinfo_end(rest)
    if at >= 0:
        user, colon, _password = rest[:at].partition(":")
        rest = f"{user}:***{rest[at:]}" if colon else rest
    return f"{scheme}://{_QUERY_PASSWORD.sub(lambda m: m.group(1) + '***', rest)}"


def url_passwords(url: str) -> list[str]:
    """Every password a database URL or DSN carries, as written and as libpq reads it: the
    userinfo password and a ``password=`` query parameter (or key=value pair)."""
    found: list[str] = []
    if "://" in url:
        rest = url.split("://", 1)[1]
        at = _userinfo_end(rest)
        if at >= 0 and ":" in rest[:at]:
            found.append(rest[:at].split(":", 1)[1])
        found += [m.group(0)[len(m.group(1)) :] for m in _QUERY_PASSWORD.finditer(rest)]
    else:
        found += [m.group(2) for m in DSN_PASSWORD.finditer(url)]
    try:
        from psycopg.conninfo import conninfo_to_dict

        parsed = conninfo_to_dict(url).get("password")
    except Exception:  # not parseable by libpq: what was found textually is all there is
        parsed = None
    if parsed:
        found.append(str(parsed))
    return [p for p in dict.fromkeys(found) if p]


@dataclass(frozen=True)
class Connection:
    """How to reach one Supabase project (source or staging). Values are secrets."""

    db_url: str | None = field(default=None, repr=False)
    api_url: str | None = None
    service_role_key: str | None = field(default=None, repr=False)
    s3_endpoint: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = field(default=None, repr=False)
    s3_secret_access_key: str | None = field(default=None, repr=False)

    @property
    def has_s3(self) -> bool:
        return bool(self.s3_endpoint and self.s3_access_key_id and self.s3_secret_access_key)

    @property
    def has_api(self) -> bool:
        return bool(self.api_url and self.service_role_key)

    @classmethod
    def from_env(cls, env: Mapping[str, str], prefix: str) -> Connection:
        def get(name: str) -> str | None:
            value = env.get(name)
            return value if value else None

        api = "SUPABASE_URL" if prefix == "SUPABASE" else "STAGING_SUPABASE_URL"
        key = (
            "SUPABASE_SERVICE_ROLE_KEY"
            if prefix == "SUPABASE"
            else "STAGING_SUPABASE_SERVICE_ROLE_KEY"
        )
        return cls(
            db_url=get(f"{prefix}_DB_URL"),
            api_url=get(api),
            service_role_key=get(key),
            s3_endpoint=get(f"{prefix}_S3_ENDPOINT"),
            s3_region=get(f"{prefix}_S3_REGION"),
            s3_access_key_id=get(f"{prefix}_S3_ACCESS_KEY_ID"),
            s3_secret_access_key=get(f"{prefix}_S3_SECRET_ACCESS_KEY"),
        )


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
        ):
            if value:
                values.append(value)
        return sorted({v for v in values if v}, key=len, reverse=True)


OPTIONS: tuple[Option, ...] = tuple(_option(f) for f in fields(Config) if _OPTION in f.metadata)
"""Every option of the plugin, in the order of :class:`Config`'s fields: the one table the
command line, the environment, the ini file, ``--help`` and the header are built from. The
docs' configuration reference is checked against it."""


def _to_bool(opt: Option, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected one of {sorted(_TRUE | _FALSE - {''})}")


def _to_int(opt: Option, raw: Any) -> int:
    value = int(str(raw).strip())
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _to_float(opt: Option, raw: Any) -> float:
    value = float(str(raw).strip())
    unit = opt.metavar or "number"
    # float() accepts nan and inf: a time limit of inf never fires (or overflows the timer),
    # and nothing compares greater than nan, so a check against either could never fail.
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number of {unit}")
    if value < 0 or (value == 0 and opt.zero is None):
        raise ValueError(
            f"must be {unit} greater than 0"
            + (f", or 0 for {opt.zero}" if opt.zero is not None else "")
        )
    return value


def _to_path(opt: Option, raw: Any) -> Path:
    text = str(raw).strip()
    if not text:
        raise ValueError("empty path")
    return Path(text).expanduser()


def _to_choice(opt: Option, raw: Any) -> str:
    text = str(raw).strip().lower()
    if text not in opt.choices:
        raise ValueError(f"expected one of {', '.join(opt.choices)}")
    return text


_CONVERTERS: dict[str, Callable[[Option, Any], Any]] = {
    "bool": _to_bool,
    "int": _to_int,
    "float": _to_float,
    "path": _to_path,
    "choice": _to_choice,
    "str": lambda opt, raw: str(raw),
}


def _convert(opt: Option, raw: Any, origin: str) -> Any:
    """Turn a raw value (string from env/ini, or parsed CLI value) into the option's type."""
    if raw is None:
        return None
    try:
        return _CONVERTERS[opt.kind](opt, raw)
    except ValueError as exc:
        where = {"cli": opt.flag}.get(origin, origin)
        raise pytest.UsageError(
            f"{opt.name}: invalid value {str(raw)!r} from {where} ({exc}). "
            f"Fix {opt.flag} / {opt.env} / ini {opt.ini}."
        ) from exc


def resolve(pytest_config: pytest.Config, env: Mapping[str, str] | None = None) -> Config:
    """Resolve every setting once. Raises ``pytest.UsageError`` on invalid configuration."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for opt in OPTIONS:
        cli = pytest_config.getoption(opt.name, default=None)
        if cli is not None:
            values[opt.name], origins[opt.name] = _convert(opt, cli, "cli"), "command line"
            continue
        if opt.env and env.get(opt.env) not in (None, ""):
            values[opt.name] = _convert(opt, env[opt.env], f"env {opt.env}")
            origins[opt.name] = f"env {opt.env}"
            continue
        ini_raw = _ini(pytest_config, opt)
        if ini_raw is not None:
            values[opt.name] = _convert(opt, ini_raw, f"ini {opt.ini}")
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
        drill_time_limit=_drill_time_limit(pytest_config, values["drill_timeout"]),
        origins=origins,
    )
    validate(config)
    if (
        config.enabled
        and config.staging == "container"
        and not hasattr(pytest_config, "workerinput")
    ):
        from .staging import container_problem

        # At start, not after minutes of export; once, on the controller (xdist workers
        # restore nothing).
        problem = container_problem()
        if problem is not None:
            raise pytest.UsageError(problem)
    return config


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
        lines.append(
            f"supabase-restore source: {mask_url(config.source.db_url)} (env SUPABASE_DB_URL)"
        )
    if config.target.db_url:
        lines.append(
            f"supabase-restore staging: {mask_url(config.target.db_url)} (env STAGING_DB_URL)"
        )
    return lines
