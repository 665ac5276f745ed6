"""How to reach a Supabase project: its :class:`Connection` (read from the environment),
and its database URL shown with the password masked (:func:`mask_url`) or the passwords it
carries found for redaction (:func:`url_passwords`); whether the Supabase API client its
API checks use is installed (:func:`api_client_problem`)."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

DISPOSABLE_MARKER = "pytest-supabase-restore:disposable"
API_EXTRA = "install pytest-supabase-restore[api]"
"""The fix when the ``supabase`` client is missing (an extra: the default drill needs none)."""


# A ``password=`` value in a libpq key=value string (or a URL query, a log line, an env
# dump such as ``PGPASSWORD=...``): quoted with libpq's backslash escapes, or bare up to
# whitespace or a separator. The key may carry a prefix (``PGPASSWORD``, ``sslpassword``).
DSN_PASSWORD = re.compile(
    r"(\b\w*password\s*=\s*)('(?:[^'\\]|\\.)*'?|\"(?:[^\"\\]|\\.)*\"?|[^\s&;'\"]+)",
    re.IGNORECASE,
)
# An empty password= (a throwaway cluster's URL: "use the password file") hides nothing.
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]+", re.IGNORECASE)


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


def api_client_problem() -> str | None:
    """Why the staging API checks (REST, Auth, Storage endpoints) cannot call the staging
    API, with the fix; None when the ``supabase`` client is installed."""
    try:
        found = importlib.util.find_spec("supabase") is not None
    except (ImportError, ValueError):  # a broken or half-removed install
        found = False
    if found:
        return None
    return (
        "STAGING_SUPABASE_URL and STAGING_SUPABASE_SERVICE_ROLE_KEY are set, and the staging "
        "API checks call that API through the supabase client, which is not installed: "
        f"{API_EXTRA}, or unset STAGING_SUPABASE_URL to leave those checks not tested."
    )
