"""Which database object a restore statement is about, with pg_restore's table of contents.

pg_restore reports a failed statement as ``Command was: CREATE TABLE "public"."items" ...``
and nothing else about it. :class:`ObjectIndex` turns such a statement into a
:class:`DbObject` (``table public.items``, ``constraint public.refs/refs_item_fkey``,
``function public.match_items(extensions.vector)``), named the way the manifest's schema
inventory and the smoke tests' ids name objects. The archive's table of contents
(``pg_restore -l``: ``ID; OID TYPE schema name owner``) tells what a name really is (pg_dump
writes ``ALTER TABLE ... OWNER TO`` for views and sequences too) and gives a function's
argument types as the inventory spells them.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .pg.binaries import PgBinaries

# Entry types of a TOC line, longest first (several are more than one word).
_TOC_DESCS = sorted(
    (
        "ACCESS METHOD",
        "ACL",
        "AGGREGATE",
        "BLOB",
        "BLOB DATA",
        "BLOBS",
        "CAST",
        "CHECK CONSTRAINT",
        "COLLATION",
        "COMMENT",
        "CONSTRAINT",
        "CONVERSION",
        "DATABASE",
        "DATABASE PROPERTIES",
        "DEFAULT",
        "DEFAULT ACL",
        "DOMAIN",
        "ENCODING",
        "EVENT TRIGGER",
        "EXTENSION",
        "FK CONSTRAINT",
        "FOREIGN DATA WRAPPER",
        "FOREIGN SERVER",
        "FOREIGN TABLE",
        "FUNCTION",
        "INDEX",
        "INDEX ATTACH",
        "LARGE OBJECT",
        "MATERIALIZED VIEW",
        "MATERIALIZED VIEW DATA",
        "OPERATOR",
        "OPERATOR CLASS",
        "OPERATOR FAMILY",
        "POLICY",
        "PROCEDURE",
        "PROCEDURAL LANGUAGE",
        "PUBLICATION",
        "PUBLICATION TABLE",
        "PUBLICATION TABLES IN SCHEMA",
        "ROW SECURITY",
        "RULE",
        "SCHEMA",
        "SEARCHPATH",
        "SECURITY LABEL",
        "SEQUENCE",
        "SEQUENCE OWNED BY",
        "SEQUENCE SET",
        "SERVER",
        "SHELL TYPE",
        "STATISTICS",
        "STDSTRINGS",
        "SUBSCRIPTION",
        "TABLE",
        "TABLE ATTACH",
        "TABLE DATA",
        "TEXT SEARCH CONFIGURATION",
        "TEXT SEARCH DICTIONARY",
        "TEXT SEARCH PARSER",
        "TEXT SEARCH TEMPLATE",
        "TRANSFORM",
        "TRIGGER",
        "TYPE",
        "USER MAPPING",
        "VIEW",
    ),
    key=len,
    reverse=True,
)
_TOC_LINE = re.compile(r"^(?P<id>\d+); (?P<tableoid>\d+) (?P<oid>\d+) (?P<rest>.*)$")


@dataclass(frozen=True)
class TocEntry:
    """One line of ``pg_restore -l``: the entry's id, type, schema (None for ``-``), name
    (unquoted) and owner."""

    dump_id: int
    desc: str
    schema: str | None
    tag: str
    owner: str


def parse_toc(text: str) -> list[TocEntry]:
    """The entries of a ``pg_restore -l`` listing (comment lines and unknown types skipped)."""
    entries: list[TocEntry] = []
    for line in text.splitlines():
        m = _TOC_LINE.match(line)
        if m is None:
            continue
        rest = m.group("rest")
        desc = next((d for d in _TOC_DESCS if rest.startswith(d + " ")), None)
        if desc is None:
            continue
        schema, _, tail = rest[len(desc) + 1 :].partition(" ")
        tag, _, owner = tail.rpartition(" ")
        entries.append(
            TocEntry(
                dump_id=int(m.group("id")),
                desc=desc,
                schema=None if schema == "-" else schema,
                tag=unquote(tag),
                owner=owner,
            )
        )
    return entries


def list_archive(tools: PgBinaries, db_dir: Path) -> str | None:
    """``pg_restore -l`` of the pg_dump archive ``db_dir`` (reads the archive only, connects
    to nothing); None when it cannot be read."""
    try:
        result = subprocess.run(
            [tools.path("pg_restore"), "--list", str(db_dir)],
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


def read_toc(tools: PgBinaries, db_dir: Path) -> list[TocEntry]:
    """The table of contents of the pg_dump archive ``db_dir``. Empty when it cannot be
    read: naming objects then falls back to the statements alone."""
    listing = list_archive(tools, db_dir)
    return parse_toc(listing) if listing is not None else []


# ---------------------------------------------------------------------------------------------
# Names in SQL text
# ---------------------------------------------------------------------------------------------

_IDENT = r'(?:"(?:[^"]|"")*"|[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*)'
_QNAME = rf"{_IDENT}(?:\s*\.\s*{_IDENT})*"
_QUOTED = re.compile(r'"((?:[^"]|"")*)"')


def unquote(text: str) -> str:
    """``text`` with every double-quoted identifier written plainly (``"a""b"`` -> ``a"b``)."""
    return _QUOTED.sub(lambda m: m.group(1).replace('""', '"'), text)


def _parts(qname: str) -> list[str]:
    """The identifiers of a dotted name, unquoted (case kept as written)."""
    return [
        (p[1:-1].replace('""', '"') if p.startswith('"') else p) for p in re.findall(_IDENT, qname)
    ]


def plain_name(qname: str) -> str:
    """``"public"."items"`` -> ``public.items``."""
    return ".".join(_parts(qname))


def _unquoted(text: str, start: int = 0) -> Iterator[tuple[int, str, int]]:
    """(index, character, parenthesis depth before it) of every character of ``text`` from
    ``start`` that is outside quotes, for the two scanners below."""
    depth = 0
    quote = ""
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
            continue
        yield i, ch, depth
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1


def _split_top(text: str) -> list[str]:
    """``text`` split on commas outside parentheses and quotes."""
    parts: list[str] = []
    start = 0
    for i, ch, depth in _unquoted(text):
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _paren_body(text: str, start: int) -> str | None:
    """The text inside the parenthesis that opens at ``text[start]``."""
    for i, ch, depth in _unquoted(text, start):
        if ch == ")" and depth == 1:
            return text[start + 1 : i]
    return None


_ARG_MODES = re.compile(r"^(?:IN|OUT|INOUT|VARIADIC)\s+", re.I)
_TYPE_WORDS = {
    "bit",
    "character",
    "char",
    "double",
    "interval",
    "national",
    "time",
    "timestamp",
    "varchar",
}


def _argument_types(args: str) -> list[str]:
    """Best-effort input argument types of a ``CREATE FUNCTION`` argument list (names,
    defaults and OUT arguments dropped), for statements the TOC does not cover."""
    types: list[str] = []
    for arg in _split_top(args):
        mode = _ARG_MODES.match(arg)
        if mode and mode.group(0).strip().upper() == "OUT":
            continue
        arg = arg[mode.end() :] if mode else arg
        arg = re.split(r"\s+(?:DEFAULT\b|=)", arg, maxsplit=1, flags=re.I)[0].strip()
        first = re.match(_IDENT, arg)
        rest = arg[first.end() :].strip() if first else ""
        if first and rest and not rest.startswith(("(", "[", ".")):
            word = first.group(0).strip('"').lower()
            if word not in _TYPE_WORDS or first.group(0).startswith('"'):
                arg = rest  # the first word is the argument's name
        types.append(" ".join(unquote(arg).split()))
    return types


# ---------------------------------------------------------------------------------------------
# Objects
# ---------------------------------------------------------------------------------------------

# Object kinds, each the singular word the verdict and the smoke tests use.
RELATION_KINDS = ("table", "view", "materialized view", "sequence")
_DESC_KINDS = {
    "TABLE": "table",
    "FOREIGN TABLE": "table",
    "VIEW": "view",
    "MATERIALIZED VIEW": "materialized view",
    "SEQUENCE": "sequence",
    "INDEX": "index",
    "TYPE": "type",
    "DOMAIN": "type",
    "FUNCTION": "function",
    "PROCEDURE": "function",
    "AGGREGATE": "function",
    "SCHEMA": "schema",
}


@dataclass(frozen=True)
class DbObject:
    """A database object, named as the schema inventory names it.

    ``kind`` is one of ``table``, ``view``, ``materialized view``, ``sequence``, ``index``,
    ``constraint``, ``trigger``, ``policy``, ``rule``, ``column``, ``function``, ``type``,
    ``schema``, ``extension``, ``publication``, ``data`` (a table's rows) or ``object``.
    ``name`` is ``schema.name``, ``schema.table/name`` for what belongs to a table (the
    smoke tests' ids), ``schema.function(argument types)``, or a plain name.
    """

    kind: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"

    def references(self) -> list[str]:
        """The names by which later statements and error messages refer to this object:
        when it could not be created, whatever mentions them fails as a consequence."""
        if self.kind in (*RELATION_KINDS, "type", "index"):
            return [self.name]
        if self.kind == "function":
            return [self.name.split("(", 1)[0]]
        return []


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(
        pattern.replace("QNAME", f"(?P<name>{_QNAME})")
        .replace("TABLE_NAME", f"(?P<table>{_QNAME})")
        .replace("IDENT", f"(?P<ident>{_IDENT})"),
        re.I | re.S,
    )


_CREATE_RELATION = _rx(
    r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:(?:UNLOGGED|TEMP|TEMPORARY|FOREIGN|RECURSIVE)\s+)?"
    r"(?P<what>TABLE|VIEW|MATERIALIZED\s+VIEW|SEQUENCE)\s+(?:IF\s+NOT\s+EXISTS\s+)?QNAME"
)
_CREATE_INDEX = _rx(
    r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?IDENT\s+"
    r"ON\s+(?:ONLY\s+)?TABLE_NAME"
)
_CREATE_FUNCTION = _rx(
    r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|PROCEDURE|AGGREGATE)\s+QNAME\s*(?=\()"
)
_ALTER_FUNCTION = _rx(r"ALTER\s+(?:FUNCTION|PROCEDURE|AGGREGATE)\s+QNAME\s*(?=\()")
_CREATE_ON_TABLE = _rx(
    r"CREATE\s+(?:OR\s+REPLACE\s+)?(?P<what>(?:CONSTRAINT\s+)?TRIGGER|POLICY|RULE)\s+IDENT\s+"
    r".*?\b(?:ON|TO)\s+(?:ONLY\s+)?TABLE_NAME"
)
_CREATE_TYPE = _rx(r"CREATE\s+(?:TYPE|DOMAIN)\s+QNAME")
_CREATE_SCHEMA = _rx(r"CREATE\s+SCHEMA\s+(?:IF\s+NOT\s+EXISTS\s+)?IDENT")
_CREATE_EXTENSION = _rx(r"CREATE\s+EXTENSION\s+(?:IF\s+NOT\s+EXISTS\s+)?IDENT")
_PUBLICATION = _rx(r"(?:CREATE|ALTER)\s+PUBLICATION\s+IDENT")
_ALTER_RELATION = _rx(
    r"ALTER\s+(?P<what>TABLE|VIEW|MATERIALIZED\s+VIEW|SEQUENCE|FOREIGN\s+TABLE|INDEX)\s+"
    r"(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?QNAME(?P<rest>.*)"
)
_ALTER_TYPE = _rx(r"ALTER\s+(?:TYPE|DOMAIN)\s+QNAME")
_ALTER_SCHEMA = _rx(r"ALTER\s+SCHEMA\s+IDENT")
_COPY = _rx(r"COPY\s+QNAME")
_SETVAL = re.compile(r"SELECT\s+pg_catalog\.setval\('(?P<name>(?:[^']|'')*)'", re.I)
_REFRESH = _rx(r"REFRESH\s+MATERIALIZED\s+VIEW\s+(?:CONCURRENTLY\s+)?QNAME")
_COMMENT = re.compile(r"COMMENT\s+ON\s+(?P<spec>.*?)\s+IS\s", re.I | re.S)
_GRANT = _rx(
    r"(?:GRANT|REVOKE)\s.*?\sON\s+(?:(?P<what>TABLE|SEQUENCE|FUNCTION|PROCEDURE|SCHEMA|TYPE|"
    r"DOMAIN|FOREIGN\s+TABLE|LANGUAGE|LARGE\s+OBJECT|FOREIGN\s+DATA\s+WRAPPER|FOREIGN\s+SERVER)"
    r"\s+)?QNAME"
)
_ON_TABLE_SPEC = _rx(r"(?P<what>CONSTRAINT|TRIGGER|POLICY|RULE)\s+IDENT\s+ON\s+(?:DOMAIN\s+)?QNAME")
_SPEC = _rx(
    r"(?P<what>TABLE|VIEW|MATERIALIZED\s+VIEW|SEQUENCE|INDEX|FOREIGN\s+TABLE|FUNCTION|PROCEDURE|"
    r"AGGREGATE|TYPE|DOMAIN|SCHEMA|EXTENSION|COLUMN|PUBLICATION)\s+QNAME"
)
_SUBCOMMAND = {
    "constraint": re.compile(rf"\s*ADD\s+CONSTRAINT\s+(?P<ident>{_IDENT})", re.I),
    "column": re.compile(rf"\s*ALTER\s+COLUMN\s+(?P<ident>{_IDENT})", re.I),
    "attach": re.compile(rf"\s*ATTACH\s+PARTITION\s+(?P<name>{_QNAME})", re.I),
}


class ObjectIndex:
    """Names restore statements' objects, with the archive's TOC when there is one."""

    def __init__(self, entries: Iterable[TocEntry] = ()) -> None:
        self._kinds: dict[str, str] = {}  # "schema.name" -> kind, from the TOC
        self._functions: dict[str, list[str]] = {}  # "schema.name" -> "schema.name(args)"
        for e in entries:
            kind = _DESC_KINDS.get(e.desc)
            if kind is None or (e.schema is None and kind != "schema"):
                continue
            if kind == "schema":
                self._kinds.setdefault(e.tag, kind)
            elif kind == "function":
                full = f"{e.schema}.{e.tag}"
                self._functions.setdefault(full.split("(", 1)[0], []).append(full)
            else:
                self._kinds.setdefault(f"{e.schema}.{e.tag}", kind)

    # -- helpers --------------------------------------------------------------------------
    def _relation(self, name: str, default: str) -> DbObject:
        kind = self._kinds.get(name, default)
        return DbObject(kind if kind in (*RELATION_KINDS, "index") else default, name)

    def _function(self, qname: str, statement: str, end: int) -> DbObject:
        name = plain_name(qname)
        body = _paren_body(statement, end) if end < len(statement) else None
        types = _argument_types(body) if body is not None else []
        candidates = self._functions.get(name, [])
        if len(candidates) == 1:
            return DbObject("function", candidates[0])
        for full in candidates:
            recorded = _split_top(full[len(name) + 1 : -1])
            if len(recorded) == len(types) and all(
                t.endswith(r) for t, r in zip(types, recorded, strict=True)
            ):
                return DbObject("function", full)
        return DbObject("function", f"{name}({', '.join(types)})")

    @staticmethod
    def _member(kind: str, table: str, ident: str) -> DbObject:
        return DbObject(kind, f"{plain_name(table)}/{plain_name(ident)}")

    def _spec(self, spec: str, statement: str) -> DbObject | None:
        """The object of ``COMMENT ON <spec>`` / ``GRANT ... ON <spec>``."""
        m = _ON_TABLE_SPEC.match(spec)
        if m:
            what = m.group("what").lower()
            return self._member(what, m.group("name"), m.group("ident"))
        m = _SPEC.match(spec)
        if m is None:
            return None
        what = " ".join(m.group("what").upper().split())
        name = plain_name(m.group("name"))
        if what == "COLUMN":
            table, _, column = name.rpartition(".")
            return DbObject("column", f"{table}/{column}") if table else None
        if what in ("FUNCTION", "PROCEDURE", "AGGREGATE"):
            start = statement.find(m.group("name")) + len(m.group("name"))
            while start < len(statement) and statement[start].isspace():
                start += 1
            return self._function(m.group("name"), statement, start)
        if what in ("TYPE", "DOMAIN"):
            return DbObject("type", name)
        if what in ("SCHEMA", "EXTENSION", "PUBLICATION"):
            return DbObject(what.lower(), name)
        if what == "INDEX":
            return DbObject("index", name)
        return self._relation(name, "table" if what == "FOREIGN TABLE" else what.lower())

    # -- the object of a statement --------------------------------------------------------
    def object_of(self, statement: str) -> DbObject | None:
        """The object ``statement`` creates, loads or changes; None when it cannot be told
        (a role statement, a ``SET``, an unknown shape)."""
        s = statement.strip()
        for shape, read in _SHAPES:
            m = shape.match(s)
            if m:
                return read(self, m, s)
        return None

    def _created_relation(self, m: re.Match[str], _statement: str) -> DbObject:
        what = " ".join(m.group("what").lower().split())
        return self._relation(plain_name(m.group("name")), what)

    def _function_of(self, m: re.Match[str], statement: str) -> DbObject:
        return self._function(m.group("name"), statement, m.end())

    def _member_of(self, m: re.Match[str], _statement: str) -> DbObject:
        what = m.group("what").split()[-1].lower()
        return self._member(what, m.group("table"), m.group("ident"))

    def _commented(self, m: re.Match[str], statement: str) -> DbObject | None:
        return self._spec(m.group("spec"), statement)

    def _granted(self, m: re.Match[str], statement: str) -> DbObject | None:
        what = m.group("what") or "TABLE"
        return self._spec(f"{what} {m.group('name')}", statement)

    def _altered(self, m: re.Match[str], _statement: str) -> DbObject:
        what = " ".join(m.group("what").lower().split())
        name = plain_name(m.group("name"))
        rest = m.group("rest")
        sub = _SUBCOMMAND["constraint"].match(rest)
        if sub:
            return self._member("constraint", m.group("name"), sub.group("ident"))
        sub = _SUBCOMMAND["column"].match(rest)
        if sub:
            return self._member("column", m.group("name"), sub.group("ident"))
        sub = _SUBCOMMAND["attach"].match(rest)
        if sub:
            child = plain_name(sub.group("name"))
            return DbObject("index", child) if what == "index" else self._relation(child, "table")
        if what == "index":
            return DbObject("index", name)
        return self._relation(name, "table" if what == "foreign table" else what)


def _named(kind: str, group: str = "name") -> Callable[[ObjectIndex, re.Match[str], str], DbObject]:
    """A reader of a statement whose object is ``kind`` named by its ``group``."""

    def read(_index: ObjectIndex, m: re.Match[str], _statement: str) -> DbObject:
        return DbObject(kind, plain_name(m.group(group)))

    return read


def _created_index(_index: ObjectIndex, m: re.Match[str], _statement: str) -> DbObject:
    schema = _parts(m.group("table"))[:-1]
    return DbObject("index", ".".join([*schema, plain_name(m.group("ident"))]))


def _set_sequence(_index: ObjectIndex, m: re.Match[str], _statement: str) -> DbObject:
    return DbObject("sequence", plain_name(m.group("name").replace("''", "'")))


# Each statement shape with the reader of its object, the first that matches wins.
_SHAPES: tuple[
    tuple[re.Pattern[str], Callable[[ObjectIndex, re.Match[str], str], DbObject | None]], ...
] = (
    (_CREATE_RELATION, ObjectIndex._created_relation),
    (_CREATE_INDEX, _created_index),
    (_CREATE_FUNCTION, ObjectIndex._function_of),
    (_ALTER_FUNCTION, ObjectIndex._function_of),
    (_CREATE_ON_TABLE, ObjectIndex._member_of),
    (_CREATE_TYPE, _named("type")),
    (_ALTER_TYPE, _named("type")),
    (_CREATE_SCHEMA, _named("schema", "ident")),
    (_ALTER_SCHEMA, _named("schema", "ident")),
    (_CREATE_EXTENSION, _named("extension", "ident")),
    (_PUBLICATION, _named("publication", "ident")),
    (_ALTER_RELATION, ObjectIndex._altered),
    (_COPY, _named("data")),
    (_SETVAL, _set_sequence),
    (_REFRESH, _named("materialized view")),
    (_COMMENT, ObjectIndex._commented),
    (_GRANT, ObjectIndex._granted),
)
