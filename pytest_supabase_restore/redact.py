"""Redaction: nothing this plugin writes or sends may carry a secret.

Every string that leaves the process (terminal, JSON, HTML, job summary, GitHub, Slack)
goes through a :class:`Redactor`. It replaces the run's known secret values (from
``Config.secrets()``), the password of any URL or ``password=`` DSN it finds, and a few
token shapes that are secrets wherever they appear (GitHub tokens, Slack webhooks,
Supabase secret keys, JWTs), with ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote

from .config import mask_url

MASK = "***"

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>`]+")
_DSN_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('[^']*'|\"[^\"]*\"|[^\s&;'\"]+)", re.IGNORECASE)
# Shapes that are secrets wherever they appear, even when the run was not told about them
# (a token pasted into a test message, a webhook in an exception text).
_TOKEN_SHAPES = (
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}\b"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}\b"),
    re.compile(r"hooks\.slack\.com/(?:services|workflows|triggers)/[^\s'\"<>`]+"),
    re.compile(r"\bsb_secret_[A-Za-z0-9_-]{8,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
)
_MIN_SECRET = 4  # shorter values would mask ordinary words


def _mask_url_match(match: re.Match[str]) -> str:
    url = match.group(0)
    authority = url.split("://", 1)[1].split("/", 1)[0]
    # Only URLs that carry a password are rewritten: mask_url normalises what it touches.
    if ("@" in authority and ":" in authority.rsplit("@", 1)[0]) or "password=" in url:
        return mask_url(url)
    return url


class Redactor:
    """Replaces secrets in text with ``***``.

    ``secrets`` are exact values to remove (``Config.secrets()``); their URL-quoted and
    unquoted spellings are removed too, since a password often appears percent-encoded.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values: set[str] = set()
        for secret in secrets:
            if not secret:
                continue
            for variant in (secret, quote(secret, safe=""), unquote(secret)):
                if len(variant) >= _MIN_SECRET:
                    values.add(variant)
        # Longest first, so a URL is masked whole before its password alone is looked for.
        self._secrets = sorted(values, key=len, reverse=True)

    def with_secrets(self, secrets: Iterable[str]) -> Redactor:
        """A redactor that also removes ``secrets``."""
        return Redactor([*self._secrets, *secrets])

    def redact(self, text: str) -> str:
        """``text`` with every known secret, URL password and token shape masked."""
        if not text:
            return text
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        for shape in _TOKEN_SHAPES:
            text = shape.sub(MASK, text)
        text = _URL.sub(_mask_url_match, text)
        return _DSN_PASSWORD.sub(lambda m: m.group(1) + MASK, text)

    def redact_obj(self, value: Any) -> Any:
        """A copy of a JSON-like structure with every string (keys included) redacted."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {self.redact_obj(k): self.redact_obj(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact_obj(v) for v in value]
        return value

    def contains_secret(self, text: str) -> bool:
        """Whether ``text`` would be changed by :meth:`redact`."""
        return self.redact(text) != text
