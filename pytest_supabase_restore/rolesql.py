"""``roles.sql`` is checked before it runs: only role statements, and only as written.

The restore runs ``roles.sql`` as the staging superuser, so a changed file could run anything
there (``COPY ... TO PROGRAM`` is a shell). :func:`parse_roles` accepts only what
``pg_dumpall --roles-only`` writes (also after the export's and the Supabase CLI's filters):

* ``SET <setting> = <value>`` preamble lines for a few session settings (``client_encoding``
  only ``UTF8``, ``standard_conforming_strings`` only ``on``) and ``RESET ALL``;
* ``CREATE ROLE``, ``ALTER ROLE ... WITH <role attributes>``, ``ALTER ROLE ... [IN DATABASE
  ...] SET <setting> TO <values>``, ``COMMENT ON ROLE``, ``SECURITY LABEL ON ROLE`` and
  ``GRANT <role> TO <role> [WITH ...] [GRANTED BY <role>]``; ``GRANT SET | ALTER SYSTEM ON
  PARAMETER ...`` (pg_dumpall 15+ writes parameter privileges with the roles);
* comments, and psql's ``\\restrict`` / ``\\unrestrict`` lines (not executed).

Within those it refuses what neither writer produces and what would reach beyond role
definitions: a password (both write roles with ``--no-role-passwords``; a known password is a
login) and role settings that load code or switch identity (``session_preload_libraries``,
``role``, ...).

Each accepted statement is rewritten from its tokens into one canonical statement (every
name quoted, every value a literal), and the restore runs exactly those: nothing the lexer
here and the server's lexer could read differently reaches the server.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import BackupError

MAX_BYTES = 64 << 20  # a roles dump is kilobytes; this bounds what is read into memory
EXCERPT = 80

# Session settings a roles dump's preamble may set, with the values allowed (None: any one).
PREAMBLE_SETTINGS: dict[str, frozenset[str] | None] = {
    "client_encoding": frozenset({"utf8", "utf-8", "unicode"}),
    "standard_conforming_strings": frozenset({"on", "true", "yes", "1"}),
    "default_transaction_read_only": frozenset(
        {"on", "off", "true", "false", "yes", "no", "0", "1"}
    ),
    "statement_timeout": None,
    "lock_timeout": None,
    "idle_in_transaction_session_timeout": None,
    "transaction_timeout": None,
    "client_min_messages": None,
    "check_function_bodies": None,
    "row_security": None,
    "xmloption": None,
}
# Role settings that load code into, or change the identity of, the role's future sessions.
UNSAFE_ROLE_SETTINGS = frozenset(
    {
        "session_preload_libraries",
        "local_preload_libraries",
        "shared_preload_libraries",
        "dynamic_library_path",
        "jit_provider",
        "role",
        "session_authorization",
        "allow_system_table_mods",
        "allow_in_place_tablespaces",
        "ignore_checksum_failure",
        "ignore_system_indexes",
        "zero_damaged_pages",
    }
)
_ATTRIBUTES = (
    "superuser",
    "createdb",
    "createrole",
    "inherit",
    "login",
    "replication",
    "bypassrls",
)
ROLE_FLAGS = frozenset(prefix + flag for flag in _ATTRIBUTES for prefix in ("", "no"))
# Role names that unquoted are keywords with another meaning (CURRENT_USER is whoever runs it).
ROLE_KEYWORDS = frozenset({"current_user", "current_role", "session_user", "public", "none", "all"})
_META = re.compile(r"\\(un)?restrict [A-Za-z0-9]+\s*")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")


@dataclass(frozen=True)
class Token:
    kind: str  # word (lower-cased) | name (quoted identifier) | string | number | op | meta
    value: str
    start: int
    end: int


class _Refused(Exception):
    def __init__(self, reason: str, at: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.at = at


def _tokens(text: str) -> list[Token]:
    """The tokens of ``text`` (comments and whitespace dropped). Raises :class:`_Refused`."""
    out: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in " \t\n\r\f\v":
            i += 1
        elif text.startswith("--", i):
            eol = text.find("\n", i)
            i = n if eol < 0 else eol + 1
        elif text.startswith("/*", i):
            i = _block_comment_end(text, i)
        else:
            token = _token_at(text, i)
            out.append(token)
            i = token.end
    return out


def _block_comment_end(text: str, start: int) -> int:
    """The offset after the ``/* ... */`` comment at ``start``; PostgreSQL's block comments
    nest."""
    depth, j, n = 1, start + 2, len(text)
    while depth and j < n:
        if text.startswith("/*", j):
            depth, j = depth + 1, j + 2
        elif text.startswith("*/", j):
            depth, j = depth - 1, j + 2
        else:
            j += 1
    if depth:
        raise _Refused("an unterminated /* comment", start)
    return j


def _token_at(text: str, i: int) -> Token:
    """The token that starts at ``i`` (not whitespace, not a comment)."""
    ch, n = text[i], len(text)
    if ch in "'\"":
        return _quoted(text, i)
    if ch == "\\":
        eol = text.find("\n", i)
        end = n if eol < 0 else eol
        return Token("meta", text[i:end], i, end)
    if ch in "eE" and text.startswith("'", i + 1):
        value, end = _escape_string(text, i)
        return Token("string", value, i, end)
    if m := _WORD.match(text, i):
        if m.end() < n and text[m.end()] in "'\"&":
            raise _Refused("a prefixed string or name (U&'', B'', X'' ...)", i)
        return Token("word", m.group().lower(), i, m.end())
    if m := _NUMBER.match(text, i):
        if m.end() < n and (text[m.end()].isalnum() or text[m.end()] in "_.$"):
            raise _Refused("a malformed number", i)
        return Token("number", m.group(), i, m.end())
    # any other character: the grammar accepts only ; , = . - of them
    return Token("op", ch, i, i + 1)


def _quoted(text: str, start: int) -> Token:
    """The ``'string'`` or ``"name"`` at ``start``, a doubled quote standing for itself."""
    ch = text[start]
    j, parts = start + 1, []
    while True:
        k = text.find(ch, j)
        if k < 0:
            raise _Refused("an unterminated quoted string or name", start)
        parts.append(text[j:k])
        if not text.startswith(ch * 2, k):
            break
        parts.append(ch)
        j = k + 2
    value = "".join(parts)
    if "\x00" in value:
        raise _Refused("a NUL character", start)
    if ch == '"' and not value:
        raise _Refused('an empty quoted name ("")', start)
    return Token("string" if ch == "'" else "name", value, start, k + 1)


def _escape_string(text: str, start: int) -> tuple[str, int]:
    """An ``E'...'`` string at ``start``: its value and the offset after it. pg_dumpall writes
    one for a value holding a backslash, with ``\\\\`` and ``''`` as its only escapes."""
    parts: list[str] = []
    j, n = start + 2, len(text)
    while True:
        k = min((x for x in (text.find("'", j), text.find("\\", j)) if x >= 0), default=-1)
        if k < 0:
            raise _Refused("an unterminated quoted string or name", start)
        parts.append(text[j:k])
        if text[k] == "\\":
            if k + 1 >= n or text[k + 1] not in "\\'":
                raise _Refused("an escape in an E'' string that pg_dumpall never writes", start)
            parts.append(text[k + 1])
            j = k + 2
        elif text.startswith("''", k):
            parts.append("'")
            j = k + 2
        else:
            value = "".join(parts)
            if "\x00" in value:
                raise _Refused("a NUL character", start)
            return value, k + 1


def quote_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    # An E'' literal means the same whatever standard_conforming_strings is.
    if "\\" in value:
        return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
    return "'" + value.replace("'", "''") + "'"


class _Statement:
    """A cursor over one statement's tokens that rebuilds it in canonical form."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def _peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _next(self, wanted: str) -> Token:
        tok = self._peek()
        if tok is None:
            raise _Refused(f"it ends where {wanted} should follow")
        self.pos += 1
        return tok

    def word(self, wanted: str = "a keyword") -> str:
        tok = self._next(wanted)
        if tok.kind != "word":
            raise _Refused(f"{wanted} was expected, not {_show(tok)}", tok.start)
        return tok.value

    def expect(self, *words: str) -> None:
        for w in words:
            got = self.word(w.upper())
            if got != w:
                raise _Refused(f"{w.upper()} was expected, not {got.upper()}")

    def accept(self, word: str) -> bool:
        tok = self._peek()
        if tok is not None and tok.kind == "word" and tok.value == word:
            self.pos += 1
            return True
        return False

    def accept_op(self, op: str) -> bool:
        tok = self._peek()
        if tok is not None and tok.kind == "op" and tok.value == op:
            self.pos += 1
            return True
        return False

    def name(self) -> str:
        """A role (or database, provider) name, unquoted and case-folded as PostgreSQL does."""
        tok = self._next("a name")
        if tok.kind == "word":
            if tok.value in ROLE_KEYWORDS:
                raise _Refused(f"the keyword {tok.value.upper()} where a role name belongs")
            return tok.value
        if tok.kind == "name":
            return tok.value
        raise _Refused(f"a name was expected, not {_show(tok)}", tok.start)

    def listed(self, read: Callable[[], str]) -> list[str]:
        """``read`` once, then again after each comma."""
        items = [read()]
        while self.accept_op(","):
            items.append(read())
        return items

    def setting_name(self) -> str:
        parts = [self.name()]
        while self.accept_op("."):
            parts.append(self.name())
        return ".".join(parts)

    def string(self, wanted: str) -> str:
        tok = self._next(wanted)
        if tok.kind != "string":
            raise _Refused(f"{wanted} was expected, not {_show(tok)}", tok.start)
        return tok.value

    def integer(self) -> str:
        sign = "-" if self.accept_op("-") else ""
        tok = self._next("a number")
        if tok.kind != "number" or "." in tok.value:
            raise _Refused(f"a whole number was expected, not {_show(tok)}", tok.start)
        return sign + tok.value

    def values(self) -> tuple[list[str], list[str]]:
        """A SET's value list: (canonical SQL, plain values for checks)."""
        sql, plain = [], []
        while True:
            sign = "-" if self.accept_op("-") else ""
            tok = self._next("a value")
            if tok.kind == "number":
                sql.append(sign + tok.value)
            elif sign:
                raise _Refused(f"a number was expected after '-', not {_show(tok)}", tok.start)
            elif tok.kind == "word" and tok.value == "default":
                raise _Refused("SET ... TO DEFAULT, which pg_dumpall never writes", tok.start)
            elif tok.kind in ("word", "name", "string"):
                # A word, a quoted name and a string are the same value to SET (a string).
                sql.append(quote_literal(tok.value))
            else:
                raise _Refused(f"a value was expected, not {_show(tok)}", tok.start)
            plain.append(sign + tok.value)
            if not self.accept_op(","):
                return sql, plain

    def end(self) -> None:
        tok = self._peek()
        if tok is not None:
            raise _Refused(f"unexpected {_show(tok)} where the statement should end", tok.start)


def _show(tok: Token) -> str:
    if tok.kind == "word":
        return tok.value.upper()
    if tok.kind == "op":
        return repr(tok.value)
    return f"a {'quoted name' if tok.kind == 'name' else tok.kind}"


def _setting(st: _Statement, role: str | None) -> str:
    """``<setting> {TO | =} <values>`` for a SET (``role`` None) or an ALTER ROLE ... SET."""
    name = st.setting_name()
    if not st.accept_op("="):
        st.expect("to")
    sql, plain = st.values()
    st.end()
    key = name.lower()
    if role is None:
        if key not in PREAMBLE_SETTINGS:
            raise _Refused(f"SET {name}, which is not a setting of a roles dump's preamble")
        allowed = PREAMBLE_SETTINGS[key]
        if len(plain) != 1 or (allowed is not None and plain[0].lower() not in allowed):
            raise _Refused(f"SET {name} = {', '.join(plain)}, a value pg_dumpall never writes")
    elif key in UNSAFE_ROLE_SETTINGS:
        raise _Refused(f"the role setting {name}, which loads code or changes identity")
    return f"{quote_name(name)} TO {', '.join(sql)}"


def _role_options(st: _Statement) -> list[str]:
    out: list[str] = []
    while st._peek() is not None:
        word = st.word("a role attribute")
        if word in ROLE_FLAGS:
            out.append(word.upper())
        elif word == "connection":
            st.expect("limit")
            out.append(f"CONNECTION LIMIT {st.integer()}")
        elif word == "valid":
            st.expect("until")
            out.append(f"VALID UNTIL {quote_literal(st.string('a timestamp'))}")
        elif word == "password" and st.accept("null"):
            out.append("PASSWORD NULL")
        elif word in ("password", "encrypted", "unencrypted"):
            raise _Refused(
                "a password: exports write roles without passwords (--no-role-passwords), "
                "and a known password is a login to the staging database"
            )
        else:
            raise _Refused(f"the role attribute {word.upper()}, which pg_dumpall never writes")
    return out


def _parameter_privileges(st: _Statement) -> list[str] | None:
    """``SET``, ``ALTER SYSTEM`` or ``ALL [PRIVILEGES]``, comma-separated; None when the list
    is not one of those (the statement may be a role grant)."""
    privileges: list[str] = []
    while True:
        word = st.word("SET or ALTER SYSTEM")
        if word == "alter" and st.accept("system"):
            privileges.append("ALTER SYSTEM")
        elif word == "set":
            privileges.append("SET")
        elif word == "all":
            st.accept("privileges")
            privileges.append("ALL")
        else:
            return None
        if not st.accept_op(","):
            return privileges


def _granted_by(st: _Statement) -> str:
    """A grant's optional ``GRANTED BY <role>``, canonical ("" when absent)."""
    if not st.accept("granted"):
        return ""
    st.expect("by")
    return f" GRANTED BY {quote_name(st.name())}"


def _parameter_grant(st: _Statement) -> str | None:
    """``GRANT {SET | ALTER SYSTEM} [, ...] ON PARAMETER p [, ...] TO r [, ...] [WITH GRANT
    OPTION] [GRANTED BY r]``, which pg_dumpall 15+ writes with the roles; None (and the cursor
    unmoved) when the statement is a role grant. A parameter that loads code or changes
    identity is refused, like such a role setting."""
    tok = st._peek()
    if tok is None or tok.kind != "word" or tok.value not in ("set", "alter", "all"):
        return None
    start = st.pos
    privileges = _parameter_privileges(st)
    if privileges is None or not st.accept("on"):
        st.pos = start
        return None
    st.expect("parameter")
    parameters = st.listed(st.setting_name)
    for parameter in parameters:
        if parameter.lower() in UNSAFE_ROLE_SETTINGS:
            raise _Refused(
                f"a grant on the parameter {parameter}, which loads code or changes identity"
            )
    st.expect("to")
    members = st.listed(st.name)
    sql = (
        f"GRANT {', '.join(privileges)} ON PARAMETER {', '.join(map(quote_name, parameters))} "
        f"TO {', '.join(map(quote_name, members))}"
    )
    if st.accept("with"):
        st.expect("grant", "option")
        sql += " WITH GRANT OPTION"
    sql += _granted_by(st)
    st.end()
    return sql


def _grant_options(st: _Statement) -> list[str]:
    """A role grant's ``WITH {ADMIN | INHERIT | SET} {OPTION | TRUE | FALSE} [, ...]``."""
    options = []
    while True:
        option = st.word("ADMIN, INHERIT or SET")
        value = st.word("OPTION, TRUE or FALSE")
        if option not in ("admin", "inherit", "set") or value not in ("option", "true", "false"):
            raise _Refused(f"the grant option {option.upper()} {value.upper()}")
        options.append(f"{option.upper()} {value.upper()}")
        if not st.accept_op(","):
            return options


def _grant(st: _Statement) -> str:
    on_parameter = _parameter_grant(st)
    if on_parameter is not None:
        return on_parameter
    granted = st.listed(st.name)
    st.expect("to")
    members = st.listed(st.name)
    sql = f"GRANT {', '.join(map(quote_name, granted))} TO {', '.join(map(quote_name, members))}"
    if st.accept("with"):
        sql += " WITH " + ", ".join(_grant_options(st))
    sql += _granted_by(st)
    st.end()
    return sql


def _set(st: _Statement) -> str:
    return "SET " + _setting(st, None)


def _reset(st: _Statement) -> str:
    st.expect("all")
    st.end()
    return "RESET ALL"


def _create_role(st: _Statement) -> str:
    st.expect("role")
    role = st.name()
    st.accept("with")
    options = _role_options(st)
    return f"CREATE ROLE {quote_name(role)}" + (" WITH " + " ".join(options) if options else "")


def _alter_role(st: _Statement) -> str:
    st.expect("role")
    role = st.name()
    if st.accept("in"):
        st.expect("database")
        database = st.name()
        st.expect("set")
        setting = _setting(st, role)
        return f"ALTER ROLE {quote_name(role)} IN DATABASE {quote_name(database)} SET {setting}"
    if st.accept("set"):
        return f"ALTER ROLE {quote_name(role)} SET {_setting(st, role)}"
    st.accept("with")
    options = _role_options(st)
    if not options:
        raise _Refused("ALTER ROLE without role attributes")
    return f"ALTER ROLE {quote_name(role)} WITH {' '.join(options)}"


def _role_text(st: _Statement, head: str) -> str:
    """The rest of ``<head> ON ROLE r IS {'text' | NULL}`` (a comment or a security label)."""
    st.expect("on", "role")
    role = st.name()
    st.expect("is")
    value = "NULL" if st.accept("null") else quote_literal(st.string("a string or NULL"))
    st.end()
    return f"{head} ROLE {quote_name(role)} IS {value}"


def _comment(st: _Statement) -> str:
    return _role_text(st, "COMMENT ON")


def _security_label(st: _Statement) -> str:
    st.expect("label")
    provider = f" FOR {quote_name(st.name())}" if st.accept("for") else ""
    return _role_text(st, f"SECURITY LABEL{provider} ON")


# The statements a roles dump holds, by their first word.
_STATEMENTS: dict[str, Callable[[_Statement], str]] = {
    "set": _set,
    "reset": _reset,
    "create": _create_role,
    "alter": _alter_role,
    "comment": _comment,
    "security": _security_label,
    "grant": _grant,
}


def _statement(st: _Statement) -> str:
    """The canonical form of one accepted statement. Raises :class:`_Refused`."""
    verb = st.word("a statement")
    canonical = _STATEMENTS.get(verb)
    if canonical is None:
        raise _Refused(f"{verb.upper()} is not a role statement")
    return canonical(st)


def _excerpt(text: str, start: int, end: int) -> str:
    short = " ".join(text[start:end].split())
    return short if len(short) <= EXCERPT else short[: EXCERPT - 3] + "..."


def parse_roles(text: str, label: str = "roles.sql") -> list[str]:
    """The canonical role statements of a roles dump. Raises BackupError naming the first
    statement that is not one ``pg_dumpall --roles-only`` writes."""
    statements: list[str] = []
    current: list[Token] = []
    start = 0
    number = 0

    def refuse(reason: str, at: int, end: int) -> BackupError:
        line = text.count("\n", 0, at) + 1
        where = f"statement {number} (line {line})" if number else f"line {line}"
        return BackupError(
            f"{label}: {where} is not a role statement as "
            f"pg_dumpall --roles-only writes it ({reason}): {_excerpt(text, at, end)!r}; "
            "roles.sql runs as the staging superuser, so the backup set was refused before "
            "anything was restored: validate an untampered backup set."
        )

    try:
        tokens = _tokens(text)
    except _Refused as exc:
        at = exc.at or 0
        raise refuse(exc.reason, at, min(len(text), at + EXCERPT)) from None
    for tok in tokens:
        if tok.kind == "meta":
            if current or not _META.fullmatch(tok.value):
                number += 1
                raise refuse(
                    "a psql meta-command other than \\restrict or \\unrestrict, or one inside "
                    "a statement",
                    current[0].start if current else tok.start,
                    tok.end,
                )
            continue
        if tok.kind == "op" and tok.value == ";":
            if current:
                number += 1
                try:
                    statements.append(_statement(_Statement(current)))
                except _Refused as exc:
                    raise refuse(exc.reason, start, tok.end) from None
            current = []
            continue
        if not current:
            start = tok.start
        current.append(tok)
    if current:
        number += 1
        raise refuse("it does not end with ';': the file is truncated", start, len(text))
    return statements


def read_roles(path: Path) -> list[str]:
    """:func:`parse_roles` of a file that must be a regular file, not a symbolic link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise BackupError(
            f"{path}: cannot be read safely ({exc.strerror}); roles.sql must be a regular file "
            "of the backup set, not a symbolic link."
        ) from exc
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise BackupError(f"{path}: not a regular file; use an untampered backup set.")
        if info.st_size > MAX_BYTES:
            raise BackupError(
                f"{path}: {info.st_size} bytes, more than any roles dump ({MAX_BYTES} bytes at "
                "most); use an untampered backup set."
            )
        raw = fh.read(MAX_BYTES + 1)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BackupError(
            f"{path}: not UTF-8 text (byte {exc.start}); a roles dump is written in UTF8, so the "
            "file is damaged or not a roles dump: use an untampered backup set."
        ) from exc
    return parse_roles(text, label=path.name)
