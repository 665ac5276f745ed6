"""What the built-in smoke tests share: the :class:`Facts` they are parametrized from, name
resolution against the staging catalog, and parsers for the definitions the schema inventory
records. Messages built here name objects, counts and schema facts only, never the contents
of a user's rows.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pytest_supabase_restore.config import Config
from pytest_supabase_restore.connections import API_EXTRA
from pytest_supabase_restore.model import Manifest, TableEntry
from pytest_supabase_restore.proof.inventory import Inventory, InventoryView, schema_inventory
from pytest_supabase_restore.proof.scope import list_tables, schemas_in_scope
from pytest_supabase_restore.results import DrillState

Conn = psycopg.Connection[Any]

API_ROLES: tuple[str, ...] = ("anon", "authenticated", "service_role")
"""The roles PostgREST switches to for each request."""

EXPOSED_SCHEMAS: tuple[str, ...] = ("public",)
"""Schemas the Data API exposes by default (``graphql_public`` is outside the backup)."""

PLATFORM_SCHEMAS: frozenset[str] = frozenset(
    {"auth", "storage", "supabase_functions", "cron", "net", "pgmq"}
)
"""Schemas whose tables belong to Supabase's services, not to the application."""

AUTH_TABLES: tuple[str, ...] = ("auth.users", "auth.identities", "auth.sessions")
"""The Auth tables the authentication category compares on its own."""

TABLE_SCOPED_KINDS: tuple[str, ...] = ("tables", "columns", "constraints", "indexes", "triggers")
"""Inventory kinds checked per table by the database_schema category."""

LOOKUP_CAP = 10
"""How many tables (largest first) the performance category times a key lookup on."""

NO_API = "not tested: no staging API configured (STAGING_SUPABASE_URL)"

NO_MANIFEST = (
    "not tested: the backup set has no manifest (a Supabase CLI dump), so nothing was "
    "recorded at backup time to compare with"
)


# ---------------------------------------------------------------------------------------------
# Facts: what the smoke tests are parametrized from
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What the backup says the project consists of.

    From the manifest when there is one (``reference`` is then the manifest); for a backup
    without one (a Supabase CLI dump) from the restored staging copy itself, so the checks
    that need no reference (CRUD, consistency, performance) still run.
    """

    scope: list[str]
    tables: dict[str, TableEntry]  # "schema.name" -> its table entry
    inventory: Inventory
    reference: Manifest | None = field(default=None, repr=False)

    @property
    def has_reference(self) -> bool:
        return self.reference is not None

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> Facts:
        """Facts recorded in the source's snapshot."""
        return cls(
            scope=list(manifest.scope_schemas),
            tables=dict(manifest.tables),
            inventory={k: dict(v) for k, v in manifest.schema.items()},
            reference=manifest,
        )

    @classmethod
    def from_staging(cls, conn: Conn) -> Facts:
        """Facts read from the restored copy (no manifest to read them from)."""
        scope = schemas_in_scope(conn)
        refs = list_tables(conn, scope)
        tables = {ref.qualified: TableEntry.of(ref) for ref in refs}
        inventory = schema_inventory(conn, scope)
        conn.rollback()
        return cls(scope=scope, tables=tables, inventory=inventory, reference=None)


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------


def owner_table(key: str, tables: Iterable[str]) -> tuple[str, str] | None:
    """Split ``schema.table.rest`` into (``schema.table``, ``rest``) using the known tables.

    Inventory keys of columns, constraints, triggers and policies are dotted names whose
    parts may themselves contain dots; the longest known table that prefixes the key wins.
    """
    best: str | None = None
    for table in tables:
        if key.startswith(table + ".") and (best is None or len(table) > len(best)):
            best = table
    if best is None:
        return None
    return best, key[len(best) + 1 :]


def object_id(key: str, tables: Iterable[str]) -> str:
    """``schema.table/name`` for a table-scoped inventory key (the test id of a policy or
    constraint), or the key unchanged when no known table prefixes it."""
    split = owner_table(key, tables)
    return key if split is None else f"{split[0]}/{split[1]}"


def object_key(ident: str) -> str:
    """The inventory key behind an :func:`object_id` (``schema.table/name`` -> dotted)."""
    table, sep, name = ident.partition("/")
    return f"{table}.{name}" if sep else ident


def resolve_relation(conn: Conn, qualified: str) -> tuple[int, str, str, str] | None:
    """(oid, regclass text, relkind, schema) of the relation whose unquoted ``schema.name``
    is ``qualified`` in the restored copy, or None when it does not exist there.

    The regclass text comes back quoted and schema-qualified (under ``pin_session``'s
    search_path), ready to be spliced into SQL as an identifier.
    """
    row = conn.execute(
        """
        SELECT c.oid::bigint, c.oid::pg_catalog.regclass::text, c.relkind::text,
            n.nspname::text
        FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) c.relname = %s
        ORDER BY pg_catalog.length(n.nspname::text) DESC
        LIMIT 1
        """,
        (qualified,),
    ).fetchone()
    if row is None:
        return None
    return int(row[0]), str(row[1]), str(row[2]), str(row[3])


class RunAsSuperuser(Exception):
    """No role without superuser rights is available to run a relation's restored code as."""


def unprivileged_role(
    conn: Conn, oid: int, facts: Facts, *, owner_only: bool = False
) -> str | None:
    """The role to run restored code of relation ``oid`` (its triggers, defaults, checks,
    materialized-view query) as in staging, or None when the session already is no superuser.

    Restored code must never run with more privilege than it had on the source. The staging
    session is the staging superuser; on Supabase the objects' owner (usually ``postgres``)
    is not one. So: the relation's owner when it is no superuser in staging, else the role
    the export logged in as (recorded in the manifest) when that is no superuser either.
    Raises :class:`RunAsSuperuser` when neither exists (with ``owner_only``, for statements
    only the owner may run, when the owner is a superuser).
    """
    row = conn.execute(
        """
        SELECT o.rolname::text, o.rolsuper, s.rolsuper
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_roles o ON o.oid = c.relowner
        JOIN pg_catalog.pg_roles s ON s.rolname = session_user
        WHERE c.oid = %s
        """,
        (oid,),
    ).fetchone()
    if row is None or not row[2]:
        return None
    owner, owner_super = str(row[0]), bool(row[1])
    if not owner_super:
        return owner
    if owner_only:
        raise RunAsSuperuser(f"its owner {owner} is a superuser in staging")
    login = facts.reference.source.login_role if facts.reference else None
    if login:
        found = conn.execute(
            "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = %s", (login,)
        ).fetchone()
        if found is not None and not found[0]:
            return login
    raise RunAsSuperuser(
        f"its owner {owner} is a superuser in staging and no unprivileged role of the "
        "source is known to run its triggers and functions as"
    )


# The search_path a session of the role starts with: ALTER ROLE ... IN DATABASE, then
# ALTER ROLE, then ALTER DATABASE (PostgreSQL's own order), else the server's default.
_ROLE_SEARCH_PATH = """
SELECT coalesce((
    SELECT pg_catalog.substr(c, 13)
    FROM pg_catalog.pg_db_role_setting s
    CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) AS c
    LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
    WHERE c LIKE 'search_path=%%'
      AND ((r.rolname = %(role)s AND s.setdatabase IN (0, d.oid))
           OR (s.setrole = 0 AND s.setdatabase = d.oid))
    ORDER BY s.setrole = 0, s.setdatabase = 0
    LIMIT 1
), (SELECT boot_val FROM pg_catalog.pg_settings WHERE name = 'search_path'))
FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()
"""


@contextlib.contextmanager
def acting_as(conn: Conn, role: str | None) -> Iterator[None]:
    """For the block (inside the caller's transaction), act as a session of ``role`` would:
    ``SET LOCAL ROLE`` and that role's own ``search_path`` (restored code such as a column
    default may name a function without its schema: ``gen_random_bytes`` lives in
    ``extensions``, which a Supabase role's search_path holds). A no-op for None; the role
    and search_path are restored afterwards."""
    if role is None:
        yield
        return
    row = conn.execute(
        "SELECT pg_catalog.current_setting('role'), pg_catalog.current_setting('search_path')"
    ).fetchone()
    previous, path = (str(row[0]), str(row[1])) if row else ("none", "pg_catalog")
    found = conn.execute(_ROLE_SEARCH_PATH, {"role": role}).fetchone()
    conn.execute("SELECT pg_catalog.set_config('role', %s, true)", (role,))
    if found is not None and found[0] is not None:
        conn.execute("SELECT pg_catalog.set_config('search_path', %s, true)", (str(found[0]),))
    try:
        yield
    finally:
        conn.execute("SELECT pg_catalog.set_config('role', %s, true)", (previous,))
        conn.execute("SELECT pg_catalog.set_config('search_path', %s, true)", (path,))


def quote_ident(name: str) -> str:
    """``name`` as a SQL identifier, always double-quoted."""
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------------------------------------
# Definitions recorded by the schema inventory (pg_get_constraintdef / pg_get_indexdef text)
# ---------------------------------------------------------------------------------------------

_UNQUOTED = re.compile(r"[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*")


class DefinitionError(ValueError):
    """A recorded definition does not have the shape PostgreSQL writes."""


def _ident(text: str, pos: int) -> tuple[str, int]:
    """One identifier at ``pos`` (quoted or not) and the position after it."""
    while pos < len(text) and text[pos] == " ":
        pos += 1
    if pos < len(text) and text[pos] == '"':
        out: list[str] = []
        pos += 1
        while pos < len(text):
            if text[pos] == '"':
                if text.startswith('""', pos):
                    out.append('"')
                    pos += 2
                    continue
                return "".join(out), pos + 1
            out.append(text[pos])
            pos += 1
        raise DefinitionError(f"unterminated quoted identifier in {text!r}")
    m = _UNQUOTED.match(text, pos)
    if m is None:
        raise DefinitionError(f"expected an identifier at offset {pos} of {text!r}")
    return m.group(0), m.end()


def _ident_list(text: str, pos: int) -> tuple[list[str], int]:
    """``(a, "b c", d)`` at ``pos``: the names and the position after the ``)``."""
    while pos < len(text) and text[pos] == " ":
        pos += 1
    if pos >= len(text) or text[pos] != "(":
        raise DefinitionError(f"expected '(' at offset {pos} of {text!r}")
    names: list[str] = []
    pos += 1
    while True:
        name, pos = _ident(text, pos)
        names.append(name)
        while pos < len(text) and text[pos] == " ":
            pos += 1
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        if pos < len(text) and text[pos] == ")":
            return names, pos + 1
        raise DefinitionError(f"expected ',' or ')' at offset {pos} of {text!r}")


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key as ``pg_get_constraintdef`` writes it."""

    columns: list[str]
    ref_schema: str | None
    ref_table: str
    ref_columns: list[str]
    match_full: bool


def parse_foreign_key(definition: str) -> ForeignKey:
    """Parse ``FOREIGN KEY (a, b) REFERENCES s.t(x, y) [MATCH FULL] ...``."""
    prefix = "FOREIGN KEY"
    if not definition.startswith(prefix):
        raise DefinitionError(f"not a foreign key definition: {definition[:60]!r}")
    columns, pos = _ident_list(definition, len(prefix))
    rest = definition[pos:].lstrip()
    if not rest.startswith("REFERENCES "):
        raise DefinitionError(f"no REFERENCES clause in {definition[:120]!r}")
    pos = definition.index("REFERENCES ", pos) + len("REFERENCES ")
    first, pos = _ident(definition, pos)
    schema: str | None = None
    table = first
    if pos < len(definition) and definition[pos] == ".":
        schema, table = first, ""
        table, pos = _ident(definition, pos + 1)
    ref_columns, pos = _ident_list(definition, pos)
    if len(ref_columns) != len(columns):
        raise DefinitionError(f"column counts differ in {definition[:120]!r}")
    return ForeignKey(columns, schema, table, ref_columns, " MATCH FULL" in definition[pos:])


def check_expression(definition: str) -> str:
    """The boolean expression of ``CHECK (expr) [NO INHERIT] [NOT VALID]``."""
    text = definition.strip()
    if not text.startswith("CHECK "):
        raise DefinitionError(f"not a check constraint definition: {text[:60]!r}")
    for suffix in (" NOT VALID", " NO INHERIT"):
        if text.endswith(suffix):
            text = text[: -len(suffix)]
    return text[len("CHECK ") :].strip()


def unquoted_rel(schema: str | None, name: str) -> str:
    """``schema.name`` the way the inventory keys relations (unquoted)."""
    return f"{schema}.{name}" if schema else name


# ---------------------------------------------------------------------------------------------
# Objects that depend on an extension the staging target cannot load
# ---------------------------------------------------------------------------------------------

UNLOADABLE_REASON = (
    "not tested: {object}: depends on extension {extension}, which this staging target cannot load"
)
_GRANT_LABELS = ("table", "view", "materialized view", "foreign table", "sequence", "relation")


@dataclass(frozen=True)
class Unloadable:
    """What of the backup could not be restored because an extension it depends on cannot be
    loaded by this staging target: the drill's map of objects to extensions (labels such as
    ``table public.items``, ``policy public.items/own rows``), the extensions themselves and
    the schemas they provide. Exactly those objects' checks are *not tested*."""

    dependents: Mapping[str, str] = field(default_factory=dict)  # label -> extension
    extensions: frozenset[str] = frozenset()
    schemas: Mapping[str, str] = field(default_factory=dict)  # member schema -> extension

    @classmethod
    def from_state(cls, state: Any, manifest: Manifest | None) -> Unloadable:
        """From the drill state (``extension_dependents``, ``not_restorable``) and the
        manifest's ``extensions`` section (which schemas each extension provides)."""
        if state is None:
            return cls()
        names = frozenset(
            str(item)[len("extension ") :]
            for item in getattr(state, "not_restorable", [])
            if str(item).startswith("extension ")
        )
        section = manifest.extensions if manifest else {}
        schemas = {
            schema: name
            for name in names
            if name in section
            for schema in section[name].members.get("schemas", ())
        }
        return cls(dict(getattr(state, "extension_dependents", {}) or {}), names, schemas)

    def __bool__(self) -> bool:
        return bool(self.dependents or self.extensions)

    def cause(self, labels: Iterable[str]) -> tuple[str, str] | None:
        """(label, extension) of the first of ``labels`` that could not be restored."""
        for label in labels:
            ext = self.dependents.get(label)
            if ext is not None:
                return label, ext
            kind, _, name = label.partition(" ")
            if kind == "extension" and name in self.extensions:
                return label, name
            if kind == "schema" and name in self.schemas:
                return label, self.schemas[name]
            schema = next((s for s in self.schemas if name.startswith(s + ".")), None)
            if schema is not None:
                return label, self.schemas[schema]
        return None

    def reason(self, labels: Iterable[str]) -> str | None:
        """The skip reason for a check of ``labels``, or None when it can run."""
        found = self.cause(labels)
        if found is None:
            return None
        return UNLOADABLE_REASON.format(object=found[0], extension=found[1])

    def entry_labels(
        self, kind: str, key: str, entry: Mapping[str, Any], tables: Iterable[str]
    ) -> list[str]:
        """The objects an inventory entry stands for, and those it cannot exist without."""
        table_scoped = {"columns": "column", "constraints": "constraint"}
        table_scoped |= {"triggers": "trigger", "policies": "policy"}
        if kind in table_scoped:
            split = owner_table(key, tables)
            if split is None:
                return []
            labels = [f"{table_scoped[kind]} {split[0]}/{split[1]}", f"table {split[0]}"]
            if kind == "constraints" and entry.get("type") == "foreign key":
                try:
                    fk = parse_foreign_key(str(entry.get("definition", "")))
                except DefinitionError:
                    return labels
                labels.append(f"table {unquoted_rel(fk.ref_schema, fk.ref_table)}")
            return labels
        if kind == "indexes":
            table = str(entry.get("table") or "")
            name = key.rsplit(".", 1)[-1]
            return [f"index {key}", f"table {table}", f"constraint {table}/{name}"]
        if kind == "sequences":
            labels = [f"sequence {key}"]
            owner = owner_table(str(entry.get("owned_by") or ""), tables)
            return labels + ([f"table {owner[0]}"] if owner else [])
        if kind == "grants":
            rest, _, _grantee = key.rpartition(" to ")
            if rest.startswith("column "):
                owner = owner_table(rest[len("column ") :], tables)
                return [f"table {owner[0]}"] if owner else []
            for label in _GRANT_LABELS:
                if rest.startswith(label + " "):
                    name = rest[len(label) + 1 :]
                    return [
                        f"{k} {name}" for k in ("table", "view", "materialized view", "sequence")
                    ]
            return [rest]
        singular = {
            "tables": "table",
            "views": "view",
            "matviews": "materialized view",
            "functions": "function",
            "enums": "type",
            "extensions": "extension",
            "schemas": "schema",
            "publications": "publication",
        }
        return [f"{singular[kind]} {key}"] if kind in singular else []

    def split(
        self, inventory: InventoryView, tables: Iterable[str]
    ) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """``inventory`` without the entries that depend on an unloadable extension, and
        those entries as ``kind key (extension x)``, for the check to say what it left out."""
        known = list(tables)
        kept: dict[str, dict[str, Any]] = {}
        left_out: list[str] = []
        for kind, entries in inventory.items():
            kept[kind] = {}
            for key, entry in entries.items():
                found = self.cause(self.entry_labels(kind, key, entry, known)) if self else None
                if found is None:
                    kept[kind][key] = entry
                else:
                    left_out.append(f"{kind} {key} (extension {found[1]})")
        return kept, left_out


# ---------------------------------------------------------------------------------------------
# Grants (inventory "grants" keys are "<object type> <name> to <grantee>")
# ---------------------------------------------------------------------------------------------

_RELATION_LABELS = ("table", "view", "materialized view", "foreign table", "relation")


def relation_grants(
    grants: Mapping[str, Mapping[str, Any]], relation: str, roles: Sequence[str]
) -> dict[str, set[str]]:
    """Privileges on ``relation`` (and its columns) per role, as ``{"anon": {"SELECT", ...}}``.

    Column privileges are named ``SELECT(col)``.
    """
    out: dict[str, set[str]] = {role: set() for role in roles}
    for role in roles:
        for label in _RELATION_LABELS:
            entry = grants.get(f"{label} {relation} to {role}")
            if entry:
                out[role].update(entry.get("privileges", []))
        prefix, suffix = f"column {relation}.", f" to {role}"
        for key, entry in grants.items():
            if key.startswith(prefix) and key.endswith(suffix):
                column = key[len(prefix) : -len(suffix)]
                out[role].update(f"{p}({column})" for p in entry.get("privileges", []))
    return out


def grants_of_kind(
    grants: Mapping[str, Mapping[str, Any]],
    label: str,
    schemas: Sequence[str],
    roles: Sequence[str],
) -> dict[str, set[str]]:
    """``{"<name> to <role>": privileges}`` for objects of one kind in ``schemas``."""
    out: dict[str, set[str]] = {}
    for key, entry in grants.items():
        if not key.startswith(label + " "):
            continue
        rest = key[len(label) + 1 :]
        name, sep, role = rest.rpartition(" to ")
        if not sep or role not in roles:
            continue
        if not any(name.startswith(schema + ".") for schema in schemas):
            continue
        out[f"{name} to {role}"] = set(entry.get("privileges", []))
    return out


def describe_privileges(expected: set[str], actual: set[str]) -> str:
    """``missing INSERT, UPDATE; extra TRUNCATE`` (empty when equal)."""
    parts = []
    missing, extra = sorted(expected - actual), sorted(actual - expected)
    if missing:
        parts.append("missing " + ", ".join(missing))
    if extra:
        parts.append("extra " + ", ".join(extra))
    return "; ".join(parts)


def shorten(items: Sequence[str], limit: int = 10) -> str:
    """``a; b; c (and 4 more)``: failure messages stay readable for large differences."""
    shown = "; ".join(items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


# ---------------------------------------------------------------------------------------------
# Errors and connections
# ---------------------------------------------------------------------------------------------

# Data exceptions (22xxx: "invalid input syntax for type integer: \"...\"") and messages a
# function or trigger raised itself (P0xxx) can quote the value that caused them, which may
# be a user's data: only their SQLSTATE and condition name are shown.
_QUOTING_CLASSES = ("22", "P0")


def describe_error(exc: psycopg.Error) -> str:
    """``SQLSTATE message`` of a database error, safe for a failure message: never the
    DETAIL (which quotes rows), and no message at all for errors that may quote a value."""
    state = exc.sqlstate or "?"
    if state.startswith(_QUOTING_CLASSES):
        return f"{state} {type(exc).__name__} (message withheld: it may quote row values)"
    return f"{state} {exc.diag.message_primary or type(exc).__name__}"


def authenticator_conninfo(staging_dsn: str, staging_kind: str | None) -> str | None:
    """The staging DSN logged in as ``authenticator`` (PostgREST's role), or None when the
    target is a ``url`` one, whose authenticator has a password the drill does not know.
    A throwaway staging cluster gives ``authenticator`` a password in its password file,
    whose path the staging DSN carries (``passfile``), so none is needed here."""
    if staging_kind in ("url", "branch"):
        return None
    params = conninfo_to_dict(staging_dsn)
    params["user"] = "authenticator"
    params["password"] = ""  # empty, not absent: PGPASSWORD must not shadow the passfile
    return make_conninfo("", **params)


def api_client(settings: Config, state: DrillState) -> Any:
    """The ``supabase`` client of the staging project's API (``STAGING_SUPABASE_URL``, or the
    branch's); skips (not tested, with the reason) when there is no staging API or the client
    is not installed (the ``api`` extra)."""
    from pytest_supabase_restore.staging.api import staging_api

    api = staging_api(settings, state)
    if api is None:
        pytest.skip(NO_API)
    try:
        from supabase import create_client
    except ImportError as exc:  # the settings check names it at start; a broken install
        pytest.skip(f"not tested: the supabase client does not import ({exc}): {API_EXTRA}")
    return create_client(api.url, api.service_role_key)
