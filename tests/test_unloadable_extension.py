"""A backup that needs an extension the staging target cannot load, on real clusters.

Source and staging share this machine's PostgreSQL installation, so the staging target is
given a private view of it that lacks ``citext``: a directory tree mirroring the
installation's ``bin``, ``lib`` and ``share`` paths, every file a symbolic link to the real
one except ``citext``'s control and script files (left out) and the ``postgres`` and
``initdb`` executables (copied). PostgreSQL finds its ``share`` directory relative to the
real path of its own executable, which for the copies is inside the private tree; nothing
of the machine's installation changes. The staging is pointed at it with
``--supabase-pg-bindir``.

The source is the demo project plus a table with a ``citext`` column, its index, policy,
view, a function taking ``citext`` and a second table with a foreign key to the first.

- Restored into that staging, the drill PASSes: ``citext`` is *not restorable in this
  target* with every object that depends on it named, exactly those objects' checks are
  *not tested* with the reason, and every other check runs (also under xdist, whose
  workers read the map from the drill state).
- With roles the dump references removed from the set, the drill FAILs, and every unrelated
  error is reported, grouped by cause with its whole statement, in the terminal, the JSON
  summary and the HTML report, while the ``citext`` consequences stay expected.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pytest_supabase_restore import manifest as mf
from pytest_supabase_restore.backupdir import inventory_files
from pytest_supabase_restore.demo import DemoProject
from pytest_supabase_restore.export import ExportOptions, export
from pytest_supabase_restore.pg.binaries import find_server_tools
from pytest_supabase_restore.pg.cluster import Cluster

MISSING = "citext"
REASON = "depends on extension citext, which this staging target cannot load"

EXTENSION_SQL = "CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA extensions;"
APP_SQL = """
CREATE TABLE public.contacts (
    id bigint PRIMARY KEY,
    email extensions.citext NOT NULL UNIQUE,
    name text NOT NULL
);
INSERT INTO public.contacts SELECT i, 'Person' || i || '@Example.test', 'person ' || i
    FROM generate_series(1, 20) AS i;
CREATE INDEX contacts_name_idx ON public.contacts (name);
ALTER TABLE public.contacts ENABLE ROW LEVEL SECURITY;
CREATE POLICY "contacts are readable" ON public.contacts FOR SELECT TO authenticated
    USING (true);
GRANT SELECT ON public.contacts TO authenticated;
CREATE VIEW public.contact_emails AS SELECT id, email FROM public.contacts;
CREATE FUNCTION public.contact_by_email(q extensions.citext) RETURNS bigint
    LANGUAGE sql STABLE AS $$ SELECT id FROM public.contacts WHERE email = q $$;
CREATE TABLE public.contact_notes (
    id bigint PRIMARY KEY,
    contact_id bigint REFERENCES public.contacts (id),
    body text NOT NULL
);
INSERT INTO public.contact_notes SELECT i, i, 'note ' || i FROM generate_series(1, 10) AS i;
"""
# Roles the second backup's dump references (and then loses from its roles.sql).
GHOST_ROLES_SQL = """
CREATE ROLE ghost_owner NOLOGIN;
CREATE ROLE ghost_reader NOLOGIN;
GRANT ghost_owner TO postgres;
GRANT CREATE ON SCHEMA public TO ghost_owner;
"""
GHOST_SQL = """
CREATE TABLE public.ghost_things (id int PRIMARY KEY, label text);
INSERT INTO public.ghost_things VALUES (1, 'a'), (2, 'b');
ALTER TABLE public.ghost_things OWNER TO ghost_owner;
GRANT SELECT ON public.ghost_things TO ghost_reader;
GRANT SELECT ON public.contact_notes TO ghost_reader;
"""


def installation_without(extension: str, root: Path) -> Path:
    """A private view of this machine's PostgreSQL installation without ``extension``;
    returns its ``bin`` directory (see the module docstring)."""
    real = find_server_tools(15).bindir
    pg_config = real / "pg_config"

    def config(flag: str) -> Path:
        out = subprocess.run([str(pg_config), flag], capture_output=True, text=True, check=True)
        return Path(out.stdout.strip())

    bindir, sharedir, pkglibdir = config("--bindir"), config("--sharedir"), config("--pkglibdir")

    def mirror(path: Path) -> Path:
        return root / path.relative_to(path.anchor)

    target = mirror(bindir)
    target.mkdir(parents=True)
    for item in bindir.iterdir():
        if item.name in ("postgres", "initdb"):
            shutil.copy2(item, target / item.name)  # real path inside the private tree
        else:
            os.symlink(item, target / item.name)
    mirror(pkglibdir).parent.mkdir(parents=True, exist_ok=True)
    if not mirror(pkglibdir).exists():
        os.symlink(pkglibdir, mirror(pkglibdir))
    share = mirror(sharedir)
    share.mkdir(parents=True)
    for item in sharedir.iterdir():
        if item.name != "extension":
            os.symlink(item, share / item.name)
    (share / "extension").mkdir()
    for item in (sharedir / "extension").iterdir():
        if not item.name.startswith(f"{extension}.") and not item.name.startswith(f"{extension}--"):
            os.symlink(item, share / "extension" / item.name)
    # The server may run as another OS user (this process being root): let it in.
    for directory, _dirs, _files in os.walk(root):
        os.chmod(directory, 0o755)  # noqa: S103 - links and copies of public files only
    return target


@dataclass
class Setup:
    bindir: Path  # the installation without citext
    backup: Path  # every role the dump needs is in roles.sql
    roles_lost: Path  # a later set whose roles.sql lost the ghost roles its dump references


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    base = Path(tempfile.mkdtemp(prefix="unloadable-ext-"))
    os.chmod(base, 0o755)  # noqa: S103 - the server's OS user must reach the installation
    try:
        bindir = installation_without(MISSING, base / "pg")
        probe = Cluster(find_server_tools(15, str(bindir)), name="probe")
        with probe, probe.connect() as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_available_extensions WHERE name = %s", (MISSING,)
            ).fetchone()
            other = conn.execute(
                "SELECT count(*) FROM pg_available_extensions WHERE name = 'pgcrypto'"
            ).fetchone()
        assert row == (0,) and other == (1,), "the private installation must lack citext only"
        with DemoProject(scale=1) as demo:
            with psycopg.connect(demo.admin_url, autocommit=True) as conn:
                conn.execute(EXTENSION_SQL)
            with psycopg.connect(demo.db_url, autocommit=True) as conn:
                conn.execute(APP_SQL)
            backup = export(demo.db_url, base / "sets", s3=demo.s3, options=ExportOptions(jobs=2))
            with psycopg.connect(demo.admin_url, autocommit=True) as conn:
                conn.execute(GHOST_ROLES_SQL)
            with psycopg.connect(demo.db_url, autocommit=True) as conn:
                conn.execute(GHOST_SQL)
            roles_lost = export(
                demo.db_url, base / "ghost-sets", s3=demo.s3, options=ExportOptions(jobs=2)
            )
        roles = roles_lost / "roles.sql"
        kept = [ln for ln in roles.read_text().splitlines() if "ghost_" not in ln]
        roles.write_text("\n".join(kept) + "\n")
        data = mf.read_manifest(roles_lost)
        mf.write_manifest(roles_lost, dataclasses.replace(data, files=inventory_files(roles_lost)))
        yield Setup(bindir, backup, roles_lost)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _drill(
    pytester: pytest.Pytester, setup: Setup, backup: Path, tmp_path: Path, *args: str
) -> tuple[Any, dict[str, Any], str, dict[str, str]]:
    """Run the drill on ``backup`` into the staging without citext: (result, JSON summary,
    HTML report, {node id: skip reason})."""
    summary, html = tmp_path / "summary.json", tmp_path / "drill.html"
    result = pytester.runpytest(
        "--supabase-restore",
        f"--supabase-from-backup={backup}",
        "--supabase-staging=ephemeral",
        f"--supabase-pg-bindir={setup.bindir}",
        f"--supabase-summary-json={summary}",
        f"--html={html}",
        "--self-contained-html",
        "-p",
        "no:cacheprovider",
        "-rs",
        *args,
    )
    skipped: dict[str, str] = {}
    for report in result.reprec.getreports("pytest_runtest_logreport"):  # type: ignore[attr-defined]
        if report.skipped and isinstance(report.longrepr, tuple):
            skipped[report.nodeid] = str(report.longrepr[2]).removeprefix("Skipped: ")
    return result, json.loads(summary.read_text()), html.read_text(), skipped


def test_objects_of_an_unloadable_extension_are_not_tested_and_the_rest_passes(
    pytester: pytest.Pytester, setup: Setup, tmp_path: Path
) -> None:
    result, verdict, html, skipped = _drill(pytester, setup, setup.backup, tmp_path, "-n", "2")
    out = result.stdout.str()
    assert verdict["status"] == "PASS", verdict["reasons"]
    assert result.ret == 0
    assert verdict["restore_errors"] == []
    assert verdict["not_restorable"] == ["extension citext"]

    dependents = verdict["extension_dependents"][MISSING]
    for label in (
        "table public.contacts",
        "data public.contacts",
        "index public.contacts_name_idx",
        "constraint public.contacts/contacts_pkey",
        "constraint public.contacts/contacts_email_key",
        "policy public.contacts/contacts are readable",
        "view public.contact_emails",
        "function public.contact_by_email(extensions.citext)",
        "constraint public.contact_notes/contact_notes_contact_id_fkey",
    ):
        assert label in dependents, (label, dependents)
    assert "table public.contact_notes" not in dependents
    # Grants the platform gave on citext's own functions are part of the extension, not
    # objects that depend on it.
    assert not [d for d in dependents if d.startswith("function extensions.")], dependents
    line = next(t for t in verdict["not_tested"] if t.startswith("extension citext:"))
    assert line.startswith(
        "extension citext: not restorable in this target (ephemeral); depends on it: "
    )
    assert "table public.contacts" in line and "function public.contact_by_email" in line
    assert "extension citext: not restorable in this target (ephemeral)" in out

    # Exactly the checks of those objects are not tested, each naming its object.
    def reason_of(test: str) -> str:
        found = [r for n, r in skipped.items() if n.endswith(test)]
        assert found, (test, sorted(skipped))
        return found[0]

    for test, obj in (
        ("test_table_fingerprint[public.contacts]", "table public.contacts"),
        ("test_crud[public.contacts]", "table public.contacts"),
        ("test_table_schema[public.contacts]", "table public.contacts"),
        (
            "test_policy[public.contacts/contacts are readable]",
            "policy public.contacts/contacts are readable",
        ),
        ("test_planner_statistics[public.contacts]", "table public.contacts"),
        ("test_relation_grants[public.contacts]", "table public.contacts"),
        ("test_relation_grants[public.contact_emails]", "view public.contact_emails"),
        ("test_unique_key[public.contacts_email_key]", "table public.contacts"),
        ("test_btree_index[public.contacts_name_idx]", "index public.contacts_name_idx"),
        (
            "test_foreign_key[public.contact_notes/contact_notes_contact_id_fkey]",
            "constraint public.contact_notes/contact_notes_contact_id_fkey",
        ),
    ):
        assert reason_of(test) == f"not tested: {obj}: {REASON}", test
    for reason in verdict["not_tested"]:
        if REASON in reason:
            assert reason.split(": ", 1)[0] in (
                "data_integrity",
                "crud_operations",
                "database_schema",
                "performance",
                "data_consistency",
                "api_connectivity",
            ), reason
    # Every unrelated check still ran and counts: the second table, its rows, CRUD on it,
    # its schema (without the foreign key that needs the first), and the rest of the demo.
    reports = result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    passed = {r.nodeid for r in reports if r.passed and r.when == "call"}
    for test in (
        "test_table_fingerprint[public.contact_notes]",
        "test_crud[public.contact_notes]",
        "test_table_schema[public.contact_notes]",
        "test_schema_kind[functions]",
        "test_schema_kind[extensions]",
        "test_schema_kind[views]",
    ):
        assert any(n.endswith(test) for n in passed), (test, sorted(passed)[:40])
    for name, counts in verdict["categories"].items():
        assert counts["passed"] > 0 and counts["failed"] == 0 and counts["errors"] == 0, name
    assert "not restorable in this target" in html and "public.contacts" in html


def test_unrelated_restore_errors_fail_grouped_by_cause_with_whole_statements(
    pytester: pytest.Pytester, setup: Setup, tmp_path: Path
) -> None:
    result, verdict, html, _ = _drill(pytester, setup, setup.roles_lost, tmp_path)
    out = result.stdout.str()
    assert verdict["status"] == "FAIL" and result.ret != 0
    groups = {g["cause"]: g for g in verdict["restore_errors"]}
    owner, reader = 'role "ghost_owner" does not exist', 'role "ghost_reader" does not exist'
    assert set(groups) == {owner, reader}, groups
    # Every statement of every cause, whole: each names its object.
    assert groups[reader]["count"] == 2 and len(groups[reader]["statements"]) == 2
    # An ACL entry is one statement of several GRANTs: all of it is shown, ghost's last.
    grants = sorted(groups[reader]["statements"], key=lambda g: "ghost_things" in g)
    assert grants[0].startswith('GRANT ALL ON TABLE "public"."contact_notes" TO "anon";')
    assert grants[0].endswith('GRANT SELECT ON TABLE "public"."contact_notes" TO "ghost_reader";')
    assert 'GRANT SELECT ON TABLE "public"."ghost_things" TO "ghost_reader";' in grants[1]
    assert any(
        "ghost_things OWNER TO" in s and "ghost_owner" in s for s in groups[owner]["statements"]
    )
    assert groups[owner]["count"] == len(groups[owner]["statements"]) >= 1
    # The citext consequences are still expected, and named: not among the failures.
    assert not any("citext" in c or "contacts" in c for c in groups)
    assert "table public.contacts" in verdict["extension_dependents"][MISSING]
    # The reason names both causes and how many statements each has.
    assert owner in verdict["reason"] and reader in verdict["reason"]
    assert len([r for r in verdict["reasons"] if owner in r]) == 1  # said once
    # Terminal: every cause with its statements.
    assert "unexpected restore errors of 2 causes" in out
    assert f"- {reader}: 2 statements" in out
    assert 'GRANT SELECT ON TABLE "public"."contact_notes" TO "ghost_reader";' in out
    # HTML: every cause and every statement.
    assert "drill-restore-errors" in html
    for group in groups.values():
        for statement in group["statements"]:
            assert escape(statement) in html
