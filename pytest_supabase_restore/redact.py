"""Redaction: nothing this plugin writes or sends may carry a secret.

Every string that leaves the process (terminal, JSON, HTML, job summary, GitHub, Slack,
logs, warnings, test ids, pytest's debug trace) goes through a :class:`Redactor`. It
replaces the run's known secret values (from ``Config.secrets()``, in every spelling they
are commonly printed in), the password of any URL or ``password=`` DSN it finds, and a few
token shapes that are secrets wherever they appear (GitHub tokens, Slack webhooks, Supabase
secret keys, JWTs), with ``***``.

Text is always redacted *before* it is shortened: a cut through a secret leaves a prefix
that no longer matches it (``postgresql://postgres:p%40ss%3Aw%2…``), so no exact match,
URL rule or token shape can catch it afterwards. :meth:`Redactor.shorten` and
:meth:`Redactor.line` do both in that order and are the only way this package shortens a
message that may hold a secret; the plain :func:`shorten` and :func:`one_line` are for text
that is already redacted.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus, unquote

from .connections import DSN_PASSWORD, mask_url
from .errors import first_line

MASK = "***"
ELLIPSIS = "…"
MESSAGE_LIMIT = 300

# A URL: scheme, then an optional userinfo that may hold anything but whitespace, "/" and
# "@" (libpq accepts unencoded quotes, "?", "#" and brackets in a password), then the rest
# up to whitespace or a quoting character.
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^\s/@]*@)?[^\s'\"<>`]*")
_SQL_PASSWORD = re.compile(r"(\bpassword\s+)'(?:[^']|'')*'?", re.IGNORECASE)
# Shapes that are secrets wherever they appear, even when the run was not told about them
# (a token pasted into a test message, a webhook in an exception text).
_TOKEN_SHAPES = (
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}\b"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}\b"),
    re.compile(r"hooks\.slack\.com/(?:services|workflows|triggers)/[^\s'\"<>`]+"),
    re.compile(r"\bsb_secret_[A-Za-z0-9_-]{8,}"),
    re.compile(r"\bsbp_[A-Za-z0-9]{16,}"),  # a Supabase personal access token
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
)
# A known secret shorter than this is masked only where it stands as a password (see
# Redactor): masking "ab" in every word that contains it would make output unreadable and
# would show which two letters the password is made of.
_MIN_SECRET = 4


def spellings(secret: str) -> set[str]:
    """The ways ``secret`` is commonly printed: as is and percent-decoded, percent-encoded
    (upper- and lower-case hex, ``+`` for spaces), JSON-escaped (``\\u00e9``, as
    ``json.dumps`` writes it), Python-escaped (``\\xe9`` from ``ascii()``/``repr()``, and
    ``\\xc3\\xa9`` from the repr of its UTF-8 bytes, as HTTP libraries log bodies) and
    HTML-escaped."""
    forms: set[str] = set()
    for value in {secret, unquote(secret)}:
        encoded = quote(value, safe="")
        forms.update(
            {
                value,
                encoded,
                re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded),
                quote_plus(value, safe=""),
                json.dumps(value)[1:-1],
                json.dumps(value, ensure_ascii=False)[1:-1],
                ascii(value)[1:-1],
                repr(value)[1:-1],
                value.encode("unicode_escape").decode("ascii"),
                repr(value.encode("utf-8"))[2:-1],
                html.escape(value),
            }
        )
    return {form for form in forms if form}


def _mask_url_match(match: re.Match[str]) -> str:
    # mask_url leaves a URL without a password as it is.
    return mask_url(match.group(0))


def _cut_end(text: str, room: int) -> str:
    """At most ``room`` characters from the start of ``text``, ending at a word boundary
    unless that would lose more than half of them (one very long word)."""
    if len(text) <= room:
        return text
    piece = text[:room]
    if text[room].isspace():
        return piece.rstrip()
    space = max(piece.rfind(" "), piece.rfind("\t"))
    return piece[:space].rstrip() if space >= room // 2 else piece


def _cut_start(text: str, room: int) -> str:
    """At most ``room`` characters from the end of ``text``, starting at a word boundary
    unless that would lose more than half of them."""
    if len(text) <= room or room <= 0:
        return text if room > 0 else ""
    piece = text[len(text) - room :]
    if text[len(text) - room - 1].isspace():
        return piece.lstrip()
    space = piece.find(" ")
    return piece[space + 1 :].lstrip() if 0 <= space <= room // 2 else piece


def shorten(text: str, limit: int, *, middle: bool = False) -> str:
    """``text`` in at most ``limit`` characters, cut at a word boundary, the cut marked
    with ``…``. With ``middle``, the start and the end are kept and the middle is left out
    (for statements, whose end says as much as their start).

    Only for text that is already redacted: use :meth:`Redactor.shorten` otherwise."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return ELLIPSIS[:limit]
    if middle and limit >= 20:
        room = limit - 3  # " … "
        head = _cut_end(text, room - room // 3)
        tail = _cut_start(text, room - len(head))
        return f"{head} {ELLIPSIS} {tail}"
    return _cut_end(text, limit - 1) + ELLIPSIS


def one_line(text: object, limit: int | None = MESSAGE_LIMIT) -> str:
    """The first non-empty line of ``text``, whitespace-collapsed and shortened to
    ``limit`` (``None``: not shortened). Only for text that is already redacted: use
    :meth:`Redactor.line` otherwise."""
    line = " ".join(first_line(text).split())
    return line if limit is None else shorten(line, limit)


def tail(text: str, limit: int) -> str:
    """The last whole lines of ``text`` that fit in ``limit`` characters (at least the last
    line, shortened from its start). Cutting between lines never splits a secret, which
    never spans lines; redact first all the same where the secrets are known."""
    lines = text.splitlines()
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        if kept and size + len(line) + 1 > limit:
            break
        kept.append(line)
        size += len(line) + 1
    if len(kept) == 1 and len(kept[0]) > limit:
        return ELLIPSIS + _cut_start(kept[0], limit - 1)
    return ("" if len(kept) == len(lines) else ELLIPSIS + "\n") + "\n".join(reversed(kept))


class Redactor:
    """Replaces secrets in text with ``***``.

    ``secrets`` are exact values to remove (``Config.secrets()``), in each of their
    :func:`spellings`. A value (or spelling) of four characters or more is removed wherever
    it appears. A shorter one is removed only where it stands as a password: between ``:``
    and ``@`` (a URL's userinfo, ``user:pw@host``) or as the value of a ``key=value`` pair
    (``password=pw``, ``PGPASSWORD=pw``, quoted or not), since masking two letters in every
    word would destroy the output. URL passwords and ``password=`` values are masked
    whether known or not.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._sources = sorted({s for s in secrets if s})
        values: set[str] = set()
        for secret in self._sources:
            values |= spellings(secret)
        # Longest first, so a URL is masked whole before its password alone is looked for.
        self._secrets = sorted((v for v in values if len(v) >= _MIN_SECRET), key=len, reverse=True)
        short = sorted((v for v in values if len(v) < _MIN_SECRET), key=len, reverse=True)
        self._short: re.Pattern[str] | None = None
        if short:
            alternatives = "|".join(re.escape(v) for v in short)
            self._short = re.compile(
                rf"(?:(?<=:)(?:{alternatives})(?=@)"  # user:pw@host
                rf"|(?<==)(?:{alternatives})(?=$|[\s&;,)\]}}])"  # key=pw
                rf"|(?<==')(?:{alternatives})(?=')"  # key='pw'
                rf"|(?<==\")(?:{alternatives})(?=\"))"  # key="pw"
            )

    def with_secrets(self, secrets: Iterable[str]) -> Redactor:
        """A redactor that also removes ``secrets``."""
        return Redactor([*self._sources, *secrets])

    def redact(self, text: str) -> str:
        """``text`` with every known secret, URL password and token shape masked."""
        if not text:
            return text
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        if self._short is not None:
            text = self._short.sub(MASK, text)
        for shape in _TOKEN_SHAPES:
            text = shape.sub(MASK, text)
        text = _URL.sub(_mask_url_match, text)
        text = _SQL_PASSWORD.sub(lambda m: f"{m.group(1)}'{MASK}'", text)
        return DSN_PASSWORD.sub(lambda m: m.group(1) + MASK, text)

    def shorten(self, text: str, limit: int, *, middle: bool = False) -> str:
        """``text`` redacted, then shortened to ``limit`` (see :func:`shorten`)."""
        return shorten(self.redact(text), limit, middle=middle)

    def line(self, text: object, limit: int | None = MESSAGE_LIMIT) -> str:
        """The first line of ``text``, redacted, then whitespace-collapsed and shortened
        (see :func:`one_line`): the one-line message of an error or a report."""
        return one_line(self.redact(str(text)), limit)

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
