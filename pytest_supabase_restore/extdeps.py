"""Extensions a staging target cannot load, and everything of the backup that depends on them.

At export the manifest records, per extension, the objects it provides (``pg_depend``
entries of type ``e``): its types, functions, operators, operator classes, access methods,
relations and schemas, by name (``extensions.vector``), nothing else. At restore, once an
extension could not be created (``could not open extension control file``), every error
caused by its absence is expected: an error whose message or statement names one of those
objects, and, in cascade, an error on anything that needs an object which already failed
for that reason (``relation "public.items" does not exist`` for the COPY, the indexes, the
foreign keys and the policies of a table whose ``CREATE TABLE`` needed the ``vector`` type).
Each such object is mapped to its extension, so that exactly its checks are *not tested*.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from .model import ExtensionEntry, Manifest
from .restore_report import message_cause
from .results import RestoreIssue
from .toc import DbObject, unquote

MEMBER_KINDS: tuple[str, ...] = (
    "schemas",
    "types",
    "functions",
    "operators",
    "opclasses",
    "access_methods",
    "relations",
)
"""The kinds of extension members the manifest lists (only the non-empty ones are kept)."""

_IS_MEMBER = (
    "JOIN pg_catalog.pg_depend d ON d.objid = x.oid AND d.classid = '{catalog}'::pg_catalog.regclass"
    " AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.deptype = 'e'"
)
_Q_MEMBERS = " UNION ALL ".join(
    f"SELECT d.refobjid, '{kind}', {name} FROM {catalog} x "
    + _IS_MEMBER.format(catalog=catalog)
    + (f" JOIN pg_catalog.pg_namespace n ON n.oid = x.{nsp}" if nsp else "")
    + (f" WHERE {where}" if where else "")
    for kind, catalog, nsp, name, where in (
        ("schemas", "pg_catalog.pg_namespace", None, "x.nspname::text", None),
        (
            "types",
            "pg_catalog.pg_type",
            "typnamespace",
            "pg_catalog.format('%s.%s', n.nspname, x.typname)",
            None,
        ),
        (
            "functions",
            "pg_catalog.pg_proc",
            "pronamespace",
            "pg_catalog.format('%s.%s', n.nspname, x.proname)",
            None,
        ),
        (
            "operators",
            "pg_catalog.pg_operator",
            "oprnamespace",
            "pg_catalog.format('%s.%s', n.nspname, x.oprname)",
            None,
        ),
        (
            "opclasses",
            "pg_catalog.pg_opclass",
            "opcnamespace",
            "pg_catalog.format('%s.%s', n.nspname, x.opcname)",
            None,
        ),
        ("access_methods", "pg_catalog.pg_am", None, "x.amname::text", None),
        (
            "relations",
            "pg_catalog.pg_class",
            "relnamespace",
            "pg_catalog.format('%s.%s', n.nspname, x.relname)",
            "x.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')",
        ),
    )
)
_Q_EXTENSIONS = """
SELECT e.oid, e.extname::text, e.extversion, n.nspname::text
FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
"""


def extension_members(conn: psycopg.Connection[Any]) -> dict[str, ExtensionEntry]:
    """Every extension of the database with what it provides: the manifest's ``extensions``
    section, by extension name. Member names are
    ``schema.name`` (schemas and access methods: the plain name), unquoted, each once:
    functions and operators without their argument types."""
    found: dict[int, dict[str, Any]] = {}
    for oid, name, version, schema in conn.execute(_Q_EXTENSIONS).fetchall():
        found[int(oid)] = {"name": name, "version": version, "schema": schema, "members": {}}
    for ext_oid, kind, member in conn.execute(_Q_MEMBERS).fetchall():
        entry = found.get(int(ext_oid))
        if entry is not None:
            entry["members"].setdefault(kind, set()).add(str(member))
    return {
        str(e["name"]): ExtensionEntry(
            version=e["version"],
            schema=e["schema"],
            members={
                k: tuple(sorted(e["members"][k])) for k in MEMBER_KINDS if e["members"].get(k)
            },
        )
        for e in sorted(found.values(), key=lambda e: str(e["name"]))
    }


def members_from_manifest(manifest: Manifest | None) -> dict[str, dict[str, list[str]]]:
    """What each extension provides, by kind, from a manifest.

    An older manifest has no ``extensions`` section; its schema inventory still says where
    each extension lives, and the one member assumed then is the type named like the
    extension in that schema (``extensions.vector``, ``public.citext``), which only the
    extension can provide.
    """
    if manifest is None:
        return {}
    section = manifest.extensions
    if section:
        return {name: {k: list(vs) for k, vs in e.members.items()} for name, e in section.items()}
    inventory = manifest.schema.get("extensions") or {}
    return {
        str(name): {"types": [f"{e['schema']}.{name}"]}
        for name, e in inventory.items()
        if isinstance(e, Mapping) and isinstance(e.get("schema"), str)
    }


# ---------------------------------------------------------------------------------------------
# Classification at restore time
# ---------------------------------------------------------------------------------------------

_NOT_EXISTS_NAMED = re.compile(
    r"\b(?P<kind>type|function|operator class|access method|relation|schema|extension)\s+"
    r'"?(?P<name>[^"(]+?)"?(?:\(|\s+does not exist|\s+is not available|\s+for access method)'
)
_UNRELATED_MISSING = re.compile(
    r'\b(?:role|user|database|tablespace|schema|extension|language|server)\s+"[^"]*"\s+does not exist'
)
_REQUIRED_EXTENSION = re.compile(r'required extension "(?P<name>[^"]+)" is not installed')
_OPERATOR_CHARS = r"~!@#^&|`?+\-*/%<>="


_WORD = r"[^\W\d][\w$]*"
_NAME_TOKEN = re.compile(rf"(?<![\w.$]){_WORD}(?:\.{_WORD})*")
_OPERATOR_TOKEN = re.compile(rf"(?<![\w.$]){_WORD}\.[{_OPERATOR_CHARS}]+")
_SCHEMA_PHRASE = re.compile(rf"\bschema ({_WORD})")
_AM_PHRASE = re.compile(rf"\b(?:access method|USING) ({_WORD})")
_SIMPLE = re.compile(rf"{_WORD}(?:\.{_WORD})*")


def _names(text: str) -> set[str]:
    """Every dotted name in ``text`` (unquoted) and each of its leading parts:
    ``public.items.email`` gives ``public``, ``public.items`` and ``public.items.email``."""
    found: set[str] = set()
    for m in _NAME_TOKEN.finditer(text):
        parts = m.group(0).split(".")
        found.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return found


@dataclass
class _Unloadable:
    """What an extension the target cannot load provides, and what failed because of it.

    Names are looked up in sets (a large extension provides thousands of functions, a
    large schema fails in thousands of statements); names that are not plain identifiers
    are looked for as text."""

    name: str
    members: dict[str, list[str]]
    failed: list[DbObject] = field(default_factory=list)
    _names: set[str] = field(default_factory=set, repr=False)
    _odd: set[str] = field(default_factory=set, repr=False)
    _operators: set[str] = field(default_factory=set, repr=False)
    _schemas: set[str] = field(default_factory=set, repr=False)
    _access_methods: set[str] = field(default_factory=set, repr=False)
    _failed: set[DbObject] = field(default_factory=set, repr=False)
    _plain: dict[str, set[str]] = field(default_factory=dict, repr=False)  # kind -> names
    _exact: dict[str, set[str]] = field(default_factory=dict, repr=False)  # kind -> names

    def __post_init__(self) -> None:
        for kind, names in self.members.items():
            # Each name also without its schema, for messages of statements written
            # without schemas (type "vector" does not exist).
            self._exact[kind] = set(names)
            self._plain[kind] = self._exact[kind] | {n.rsplit(".", 1)[-1] for n in names}
            if kind == "operators":
                self._operators.update(names)
            elif kind == "schemas":
                self._schemas.update(names)
            elif kind == "access_methods":
                self._access_methods.update(names)
            else:
                self._add_names(names)

    def _add_names(self, names: Iterable[str]) -> None:
        for name in names:
            (self._names if _SIMPLE.fullmatch(name) else self._odd).add(name)

    def add_failed(self, obj: DbObject) -> None:
        """``obj`` could not be created because of this extension: what needs it fails too."""
        if obj in self._failed:
            return
        self._failed.add(obj)
        self.failed.append(obj)
        if obj.kind == "schema":
            self._schemas.add(obj.name)
        else:
            self._add_names(obj.references())

    def named_in(self, text: str) -> bool:
        """A member of the extension, or an object that failed because of it, is named."""
        names = _names(text)
        if names & self._names:
            return True
        if self._schemas and (
            any("." in n and n.split(".", 1)[0] in self._schemas for n in names)
            or any(m.group(1) in self._schemas for m in _SCHEMA_PHRASE.finditer(text))
        ):
            return True
        if (
            self._operators
            and {m.group(0) for m in _OPERATOR_TOKEN.finditer(text)} & self._operators
        ):
            return True
        if self._access_methods and any(
            m.group(1) in self._access_methods for m in _AM_PHRASE.finditer(text)
        ):
            return True
        return any(odd in text for odd in self._odd)

    def owns(self, obj: DbObject | None) -> bool:
        """``obj`` is one of the extension's own members (a grant on one of its functions),
        not something that depends on it."""
        if obj is None:
            return False
        kinds = {"function": "functions", "type": "types", "schema": "schemas"}
        kinds |= dict.fromkeys(("table", "view", "materialized view", "sequence"), "relations")
        name = obj.name.split("(", 1)[0] if obj.kind == "function" else obj.name
        return name in self._exact.get(kinds.get(obj.kind, ""), set())

    def unqualified_in(self, message: str) -> bool:
        """The message says a member is missing by its plain name (a statement written
        without schemas: ``type "vector" does not exist``)."""
        kinds = {
            "type": "types",
            "function": "functions",
            "operator class": "opclasses",
            "access method": "access_methods",
            "relation": "relations",
            "schema": "schemas",
        }
        for m in _NOT_EXISTS_NAMED.finditer(message):
            names = self._plain.get(kinds.get(m.group("kind"), ""), set())
            if m.group("name").strip() in names:
                return True
        return False


def _extension_named(message: str) -> str | None:
    m = re.search(r'extension "([^"]+)" does not exist', message)
    return m.group(1) if m else None


def mark_extension_dependents(
    issues: Sequence[RestoreIssue],
    objects: Sequence[DbObject | None],
    not_restorable: list[str],
    members: Mapping[str, Mapping[str, Sequence[str]]],
) -> dict[str, str]:
    """Classify as expected every error caused by an extension the target cannot load.

    ``issues`` are the restore's errors in order, ``objects`` the object of each (or None),
    ``not_restorable`` the items already found not restorable (``extension x``; extensions
    that need a missing one are added), ``members`` what each extension provides (see
    :func:`members_from_manifest`). The issues are updated in place; returns the objects
    that depend on an unloadable extension, ``{"table public.items": "vector"}``.
    """
    unloadable: dict[str, _Unloadable] = {}

    def add(name: str) -> None:
        if name not in unloadable:
            raw = members.get(name, {})
            unloadable[name] = _Unloadable(name, {k: list(v) for k, v in raw.items()})
        if f"extension {name}" not in not_restorable:
            not_restorable.append(f"extension {name}")

    for item in not_restorable:
        if item.startswith("extension "):
            add(item[len("extension ") :])
    dependents: dict[str, str] = {}
    changed = bool(unloadable)
    while changed:  # a failure can make an earlier statement's failure a consequence
        changed = False
        for issue, obj in zip(issues, objects, strict=True):
            if issue.expected or not unloadable:
                continue
            cause = _cause(issue, unloadable)
            if cause is None:
                continue
            if obj is not None and obj.kind == "extension":
                add(obj.name)
            issue.expected = True
            issue.extension = cause
            own = unloadable[cause].owns(obj)
            issue.reason = (
                f"{'part of' if own else 'depends on'} extension {cause}, which this staging "
                "target cannot load"
            )
            if obj is not None and obj.kind != "extension" and not own:
                dependents.setdefault(obj.label, cause)
                unloadable[cause].add_failed(obj)
            changed = True
    return dependents


def _cause(issue: RestoreIssue, unloadable: Mapping[str, _Unloadable]) -> str | None:
    """The unloadable extension ``issue`` is a consequence of, or None.

    Only the message's own first line counts (its ``LINE 3: ...`` excerpt quotes the
    statement, which is matched on its own terms below)."""
    raw = message_cause(issue.message)
    named = _extension_named(raw)
    if named in unloadable:
        return named
    required = _REQUIRED_EXTENSION.search(raw)
    if required and required.group("name") in unloadable:
        return required.group("name")
    message = unquote(raw)
    for ext in unloadable.values():
        if ext.named_in(message) or ext.unqualified_in(raw):
            return ext.name
    # The statement names what is missing while the message names nothing unrelated (a
    # missing role or schema is a cause of its own).
    if "does not exist" not in raw or _UNRELATED_MISSING.search(raw):
        return None
    statement = unquote(issue.statement)
    for ext in unloadable.values():
        if ext.named_in(statement):
            return ext.name
    return None


_KIND_ORDER = (
    "schema",
    "type",
    "table",
    "view",
    "materialized view",
    "function",
    "sequence",
    "index",
    "constraint",
    "trigger",
    "policy",
    "rule",
    "column",
    "data",
    "publication",
)


def _label_order(label: str) -> tuple[int, str]:
    kind = next(
        (k for k in sorted(_KIND_ORDER, key=len, reverse=True) if label.startswith(k + " ")), ""
    )
    return (_KIND_ORDER.index(kind) if kind else len(_KIND_ORDER), label)


def dependents_by_extension(dependents: Mapping[str, str]) -> dict[str, list[str]]:
    """``{"vector": ["table public.items", "function public.match_items(...)", ...]}`` from
    ``{object: extension}``: per extension, its objects by kind (tables first), then name."""
    out: dict[str, list[str]] = {}
    for label, ext in dependents.items():
        out.setdefault(ext, []).append(label)
    return {ext: sorted(labels, key=_label_order) for ext, labels in sorted(out.items())}


def not_restorable_line(
    item: str, kind: str | None, dependents: Iterable[str], limit: int = 480
) -> str:
    """``extension vector: not restorable in this target (ephemeral); depends on it: table
    public.items, function public.match_items(...)`` within ``limit`` characters (the rest is
    counted: every object is in the JSON summary's ``extension_dependents``)."""
    line = f"{item}: not restorable in this target ({kind or 'unknown'})"
    names = list(dependents)
    if not names:
        return line
    shown: list[str] = []
    for i, name in enumerate(names):
        rest = len(names) - i - 1
        more = f" (+{rest} more)" if rest else ""
        candidate = line + "; depends on it: " + ", ".join([*shown, name]) + more
        if len(candidate) > limit and shown:
            return line + "; depends on it: " + ", ".join(shown) + f" (+{len(names) - i} more)"
        shown.append(name)
    return line + "; depends on it: " + ", ".join(shown)


__all__ = [
    "MEMBER_KINDS",
    "dependents_by_extension",
    "extension_members",
    "mark_extension_dependents",
    "members_from_manifest",
    "not_restorable_line",
]
