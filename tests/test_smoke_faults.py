"""Proving the smoke tests are alive: real faults in a restored copy make the right category fail.

The demo project is exported twice: a clean backup set, and one taken after an object's
bytes vanished from the source's Storage (its ``storage.objects`` row stays). Two drills
then run through ``pytester`` exactly as a user runs them (``--supabase-restore
--supabase-from-backup``), with a staging API on loopback HTTP (pytest-httpserver standing
in for PostgREST, Auth and Storage):

- the clean set, the API serving what the backup holds: every category passes;
- the damaged set, the API off by one row, one bucket and every user, and a plugin whose
  session fixture damages the restored staging copy before any smoke test runs: a deleted
  row, a changed value, a changed session, a dropped policy, an altered default, a sequence
  set back, an orphaned foreign key, a duplicate key and a broken check whose constraints
  went missing, an index lacking a heap tuple, a missing and a modified object, a changed
  bucket setting, a revoked grant, lost planner statistics and an RTO budget that cannot be
  met. Each must fail the test of the right category with a message naming the object;
  every other failure must be a stated knock-on; no output may carry row contents or the
  API key.

Also here: the pure helpers the smoke tests share (definition parsers, name splitting) and
the facts a backup without a manifest is parametrized from.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pytest_supabase_restore import CATEGORIES
from pytest_supabase_restore.demo import DemoProject
from pytest_supabase_restore.export import ExportOptions, export
from pytest_supabase_restore.fixtures import StagingStorage
from pytest_supabase_restore.manifest import read_manifest
from pytest_supabase_restore.model import Manifest
from pytest_supabase_restore.smoke_tests._support import (
    DefinitionError,
    Facts,
    check_expression,
    describe_privileges,
    grants_of_kind,
    object_id,
    object_key,
    owner_table,
    parse_foreign_key,
    relation_grants,
)
from pytest_supabase_restore.storage.client import make_client
from pytest_supabase_restore.storage.endpoint import S3Endpoint

MARKER = "FAULT-MARKER-3f9c"  # written into rows by the faults: must never be echoed


# ---------------------------------------------------------------------------------------------
# Pure helpers
# ---------------------------------------------------------------------------------------------


def test_parse_foreign_key_plain_and_quoted() -> None:
    fk = parse_foreign_key(
        "FOREIGN KEY (project_id) REFERENCES public.projects(id) ON DELETE CASCADE"
    )
    assert (fk.columns, fk.ref_schema, fk.ref_table, fk.ref_columns, fk.match_full) == (
        ["project_id"],
        "public",
        "projects",
        ["id"],
        False,
    )
    fk = parse_foreign_key(
        'FOREIGN KEY ("Bucket Id", "na""me") REFERENCES "My Schema"."Odd.Table"(a, "B") MATCH FULL'
    )
    assert fk.columns == ["Bucket Id", 'na"me']
    assert (fk.ref_schema, fk.ref_table, fk.ref_columns) == ("My Schema", "Odd.Table", ["a", "B"])
    assert fk.match_full


@pytest.mark.parametrize(
    "definition",
    [
        "CHECK ((a > 0))",
        "PRIMARY KEY (id)",
        "FOREIGN KEY (a, b) REFERENCES t(x)",
        'FOREIGN KEY ("a) REFERENCES t(x)',
    ],
)
def test_parse_foreign_key_rejects_other_shapes(definition: str) -> None:
    with pytest.raises(DefinitionError):
        parse_foreign_key(definition)


def test_check_expression() -> None:
    assert check_expression("CHECK ((priority >= 1))") == "((priority >= 1))"
    assert check_expression("CHECK ((a > 0)) NO INHERIT NOT VALID") == "((a > 0))"
    with pytest.raises(DefinitionError):
        check_expression("UNIQUE (a)")


def test_owner_table_prefers_the_longest_table() -> None:
    tables = ["public.a", "public.a.b", "public.tasks"]
    assert owner_table("public.a.b.c", tables) == ("public.a.b", "c")
    assert owner_table("public.tasks.own tasks", tables) == ("public.tasks", "own tasks")
    assert owner_table("auth.users.id", tables) is None
    assert object_id("public.tasks.own tasks", tables) == "public.tasks/own tasks"
    assert object_key("public.tasks/own tasks") == "public.tasks.own tasks"


def test_grant_helpers() -> None:
    grants = {
        "table public.t to anon": {"privileges": ["INSERT", "SELECT"]},
        "column public.t.c to authenticated": {"privileges": ["UPDATE"]},
        "sequence public.s to anon": {"privileges": ["USAGE"]},
        "sequence other.s to anon": {"privileges": ["USAGE"]},
        "function public.f() to postgres": {"privileges": ["EXECUTE"]},
    }
    got = relation_grants(grants, "public.t", ["anon", "authenticated"])
    assert got == {"anon": {"INSERT", "SELECT"}, "authenticated": {"UPDATE(c)"}}
    assert grants_of_kind(grants, "sequence", ["public"], ["anon"]) == {
        "public.s to anon": {"USAGE"}
    }
    assert grants_of_kind(grants, "function", ["public"], ["anon"]) == {}
    assert describe_privileges({"INSERT", "SELECT"}, {"SELECT", "TRUNCATE"}) == (
        "missing INSERT; extra TRUNCATE"
    )


# ---------------------------------------------------------------------------------------------
# Backup sets
# ---------------------------------------------------------------------------------------------


@dataclass
class BackupSets:
    clean: Path
    damaged: Path  # taken after one object's bytes vanished from the source
    vanished: tuple[str, str]  # (bucket, key) of that object
    live: Facts  # read from the source database itself, as for a backup without a manifest


@pytest.fixture(scope="module")
def backup_sets() -> Iterator[BackupSets]:
    base = Path(tempfile.mkdtemp(prefix="smoke-faults-"))
    try:
        with DemoProject(scale=1) as demo:
            clean = export(demo.db_url, base / "clean", s3=demo.s3, options=ExportOptions(jobs=2))
            # What a backup without a manifest (a Supabase CLI dump) is parametrized from:
            # the database itself, read the same way.
            with psycopg.connect(demo.db_url) as conn:
                live = Facts.from_staging(conn)
            client = make_client(demo.s3)
            key = sorted(o["Key"] for o in client.list_objects_v2(Bucket="avatars")["Contents"])[0]
            client.delete_object(Bucket="avatars", Key=key)
            damaged = export(
                demo.db_url, base / "damaged", s3=demo.s3, options=ExportOptions(jobs=2)
            )
        yield BackupSets(clean, damaged, ("avatars", key), live)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_facts_read_from_a_database_match_the_manifest(backup_sets: BackupSets) -> None:
    """A backup without a manifest is parametrized from the restored database: the same
    objects as a manifest would list, only without a reference to compare with."""
    recorded = Facts.from_manifest(read_manifest(backup_sets.clean))
    live = backup_sets.live
    assert live.reference is None and recorded.has_reference
    assert live.scope == recorded.scope
    assert sorted(live.tables) == sorted(recorded.tables)
    for key, entry in recorded.tables.items():
        assert live.tables[key].pk == entry.pk, key
        assert live.tables[key].kind == entry.kind, key
    assert {k: sorted(v) for k, v in live.inventory.items()} == {
        k: sorted(v) for k, v in recorded.inventory.items()
    }


# ---------------------------------------------------------------------------------------------
# Running the drill
# ---------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    passed: dict[str, list[str]] = field(default_factory=dict)  # category -> node ids
    failed: dict[str, str] = field(default_factory=dict)  # node id -> message
    category: dict[str, str] = field(default_factory=dict)  # node id -> category
    output: str = ""

    def failures(self, category: str) -> dict[str, str]:
        return {n: m for n, m in self.failed.items() if self.category.get(n) == category}

    def failed_test(self, category: str, test: str) -> str:
        """The message of the failed test whose id ends with ``test``."""
        for nodeid, message in self.failures(category).items():
            if nodeid.endswith("::" + test):
                return message
        raise AssertionError(
            f"{category}: {test} did not fail; failures: {sorted(self.failures(category))}"
        )


def _run(
    pytester: pytest.Pytester, backup: Path, *args: str, plugins: list[Any] | None = None
) -> Outcome:
    result = pytester.runpytest(
        "--supabase-restore",
        f"--supabase-from-backup={backup}",
        "--supabase-staging=ephemeral",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:benchmark",
        *args,
        plugins=plugins or [],
    )
    out = Outcome(output=result.stdout.str() + result.stderr.str())
    for report in result.reprec.getreports("pytest_runtest_logreport"):  # type: ignore[attr-defined]
        category = dict(report.user_properties).get("supabase_category", "")
        out.category[report.nodeid] = category
        if report.failed:
            out.failed[report.nodeid] = report.longreprtext.strip()
        elif report.passed and report.when == "call":
            out.passed.setdefault(category, []).append(report.nodeid)
    return out


API_KEY = "fake-header.fake-payload.fake-signature-7d41"  # must never be echoed


@dataclass
class FakeApi:
    """What the fake staging API (PostgREST, GoTrue, Storage) answers."""

    rows: dict[str, int]  # table name -> the Content-Range count PostgREST reports
    users: int
    buckets: list[str]

    @classmethod
    def matching(cls, manifest: Manifest) -> FakeApi:
        """An API that serves exactly what the backup holds."""
        tables = manifest.tables
        return cls(
            rows={e.name: e.rows for e in tables.values() if e.schema == "public"},
            users=tables["auth.users"].rows,
            buckets=manifest.storage.bucket_ids,
        )

    def serve(self, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
        def handle(request: Request) -> Response:
            path = request.path
            if path.startswith("/rest/v1/") and path[9:] in self.rows:
                return Response(b"", headers={"Content-Range": f"*/{self.rows[path[9:]]}"})
            if path == "/auth/v1/admin/users":
                page, per_page = int(request.args["page"]), int(request.args["per_page"])
                first = (page - 1) * per_page
                users = [
                    {
                        "id": str(uuid.UUID(int=i + 1)),  # synthetic users
                        "aud": "authenticated",
                        "app_metadata": {},
                        "user_metadata": {},
                        "created_at": "2025-01-01T00:00:00Z",
                    }
                    for i in range(first, min(first + per_page, self.users))
                ]
                return Response(
                    json.dumps({"users": users, "aud": "authenticated"}),
                    content_type="application/json",
                )
            if path == "/storage/v1/bucket":
                body = [
                    {
                        "id": b,
                        "name": b,
                        "owner": "",
                        "public": False,
                        "file_size_limit": None,
                        "allowed_mime_types": None,
                        "created_at": "2025-01-01T00:00:00Z",
                        "updated_at": "2025-01-01T00:00:00Z",
                    }
                    for b in self.buckets
                ]
                return Response(json.dumps(body), content_type="application/json")
            return Response(b"not found", status=404)

        httpserver.expect_request(re.compile(".*")).respond_with_handler(handle)
        monkeypatch.setenv("STAGING_SUPABASE_URL", httpserver.url_for("/").rstrip("/"))
        monkeypatch.setenv("STAGING_SUPABASE_SERVICE_ROLE_KEY", API_KEY)


def test_clean_restore_passes_every_category(
    pytester: pytest.Pytester,
    backup_sets: BackupSets,
    httpserver: HTTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    FakeApi.matching(read_manifest(backup_sets.clean)).serve(httpserver, monkeypatch)
    out = _run(pytester, backup_sets.clean)
    assert out.failed == {}, out.output[-3000:]
    for test in ("test_rest_api", "test_auth_api", "test_storage_api"):
        assert any(n.endswith("::" + test) for n in out.passed["api_connectivity"]), test
    assert any(n.endswith("::test_auth_api_lists_users") for n in out.passed["authentication"])
    assert API_KEY not in out.output
    for category in CATEGORIES:
        assert out.passed.get(category), f"{category}: no test passed\n{out.output[-3000:]}"
    assert "supabase restore drill: PASS" in out.output


# ---------------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------------


class FaultInjector:
    """A pytest plugin: before the first smoke test, damage the restored staging copy."""

    def __init__(self) -> None:
        self.evidence: list[str] = []  # row contents the output must never show
        self.deleted_object: tuple[str, str] | None = None
        self.modified_object: tuple[str, str] | None = None

    @pytest.fixture(scope="session", autouse=True)
    def _inject_faults(self, staging_dsn: str, staging_storage: StagingStorage) -> None:
        self.inject_database(staging_dsn)
        self.inject_storage(staging_storage.endpoint)

    def inject_database(self, dsn: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:

            def one(query: str) -> Any:
                row = conn.execute(query).fetchone()
                assert row is not None
                return row[0]

            # Keep what the changed rows held: none of it may appear in any output.
            self.evidence += [
                str(one("SELECT name FROM public.tags ORDER BY id LIMIT 1")),
                str(one("SELECT color FROM public.tags ORDER BY id LIMIT 1")),
                str(one("SELECT user_agent FROM auth.sessions ORDER BY id LIMIT 1")),
                str(one("SELECT email FROM auth.users ORDER BY id LIMIT 1")),
                str(one("SELECT name FROM public.tags ORDER BY id LIMIT 1 OFFSET 1")),
            ]
            conn.execute("SET session_replication_role = replica")  # no triggers, no FK checks
            # data_integrity: a deleted row and a changed value.
            conn.execute(
                "DELETE FROM auth.audit_log_entries WHERE id = (SELECT id FROM auth.audit_log_entries ORDER BY id LIMIT 1)"
            )
            conn.execute(
                "UPDATE public.tags SET color = %s WHERE id = (SELECT min(id) FROM public.tags)",
                (MARKER,),
            )
            # data_consistency: a duplicate key and a broken check, each after its
            # constraint went missing (as when a restore fails to recreate it).
            conn.execute("ALTER TABLE public.tags DROP CONSTRAINT tags_name_key")
            conn.execute(
                "UPDATE public.tags SET name = (SELECT name FROM public.tags ORDER BY id"
                " LIMIT 1 OFFSET 1) WHERE id = (SELECT min(id) FROM public.tags)"
            )
            conn.execute("ALTER TABLE public.projects DROP CONSTRAINT project_budget_positive")
            conn.execute(
                "UPDATE public.projects SET budget = -5 WHERE id = (SELECT min(id) FROM public.projects)"
            )
            # authentication: a changed session.
            conn.execute(
                "UPDATE auth.sessions SET user_agent = %s WHERE id = (SELECT id FROM auth.sessions ORDER BY id LIMIT 1)",
                (MARKER + "-ua",),
            )
            # database_schema + authentication: a dropped policy; an altered default.
            conn.execute('DROP POLICY "Users can read their own imports" ON public.import_log')
            conn.execute("ALTER TABLE public.profiles ALTER COLUMN locale SET DEFAULT 'fr'")
            # crud_operations + data_consistency: a sequence set back.
            conn.execute("SELECT setval('public.tasks_id_seq', 1)")
            # data_consistency: an orphan (foreign-key triggers are off in replica mode).
            conn.execute(
                "INSERT INTO public.task_tags (task_id, tag_id)"
                " VALUES (987654321, (SELECT min(id) FROM public.tags))"
            )
            # data_consistency: an index that lacks a heap tuple. With indisready off,
            # writes skip the index; moving a task to another project and back leaves the
            # row as it was but its live version unindexed.
            conn.execute(
                "UPDATE pg_catalog.pg_index SET indisready = false"
                " WHERE indexrelid = 'public.tasks_project_id_idx'::regclass"
            )
        with psycopg.connect(dsn) as conn:
            conn.execute("SET session_replication_role = replica")
            row = conn.execute(
                "SELECT id, project_id FROM public.tasks ORDER BY id LIMIT 1"
            ).fetchone()
            assert row is not None
            task, project = row
            conn.execute(
                "UPDATE public.tasks SET project_id = (SELECT min(id) FROM public.projects"
                " WHERE id <> %s) WHERE id = %s",
                (project, task),
            )
            conn.execute("UPDATE public.tasks SET project_id = %s WHERE id = %s", (project, task))
            conn.commit()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "UPDATE pg_catalog.pg_index SET indisready = true"
                " WHERE indexrelid = 'public.tasks_project_id_idx'::regclass"
            )
            # storage: a changed bucket setting.
            conn.execute("UPDATE storage.buckets SET file_size_limit = 1024 WHERE id = 'images'")
            # api_connectivity: a revoked grant.
            conn.execute("REVOKE INSERT ON public.tags FROM anon")
            # performance: statistics lost (as if ANALYZE had not run).
            conn.execute(
                "DELETE FROM pg_catalog.pg_statistic WHERE starelid = 'public.comments'::regclass"
            )
            conn.execute(
                "UPDATE pg_catalog.pg_class SET reltuples = -1 WHERE oid = 'public.comments'::regclass"
            )

    def inject_storage(self, endpoint: S3Endpoint) -> None:
        client = make_client(endpoint)
        documents = sorted(o["Key"] for o in client.list_objects_v2(Bucket="documents")["Contents"])
        client.delete_object(Bucket="documents", Key=documents[0])
        self.deleted_object = ("documents", documents[0])
        images = sorted(o["Key"] for o in client.list_objects_v2(Bucket="images")["Contents"])
        head = client.head_object(Bucket="images", Key=images[0])
        client.put_object(
            Bucket="images",
            Key=images[0],
            Body=b"\x00" * int(head["ContentLength"]),  # same size, other bytes
            ContentType=head["ContentType"],
            CacheControl=head.get("CacheControl", ""),
        )
        self.modified_object = ("images", images[0])


def test_each_fault_fails_the_right_category(
    pytester: pytest.Pytester,
    backup_sets: BackupSets,
    httpserver: HTTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The staging API is wrong too: one row too many, no users, a bucket missing.
    api = FakeApi.matching(read_manifest(backup_sets.damaged))
    largest = max(api.rows, key=lambda name: (api.rows[name], name))
    api.rows[largest] += 1
    users, api.users = api.users, 0
    api.buckets.remove("images")
    api.serve(httpserver, monkeypatch)
    injector = FaultInjector()
    out = _run(pytester, backup_sets.damaged, "--supabase-rto-budget=0.000001", plugins=[injector])
    assert injector.deleted_object and injector.modified_object, out.output[-3000:]
    deleted = "/".join(injector.deleted_object)
    modified = "/".join(injector.modified_object)
    vanished = "/".join(backup_sets.vanished)
    recorded = read_manifest(backup_sets.damaged).tables
    audit_rows = recorded["auth.audit_log_entries"].rows
    sessions = recorded["auth.sessions"].rows

    # (category, test id, text the one-line message must contain)
    expected = [
        (
            "data_integrity",
            "test_table_fingerprint[auth.audit_log_entries]",
            f"{audit_rows} rows expected, {audit_rows - 1} found",
        ),
        ("data_integrity", "test_table_fingerprint[public.tags]", "same count, contents differ"),
        (
            "database_schema",
            "test_table_schema[public.profiles]",
            "columns public.profiles.locale: changed (default",
        ),
        (
            "database_schema",
            "test_policy[public.import_log/Users can read their own imports]",
            "missing",
        ),
        ("crud_operations", "test_crud[public.tasks]", "the sequence is behind the data"),
        (
            "authentication",
            "test_auth_table_restored[auth.sessions]",
            f"auth.sessions: {sessions} rows expected, {sessions} found (same count",
        ),
        ("storage", "test_bucket_objects[documents]", f"'{deleted}': missing from the target"),
        ("storage", "test_bucket_objects[images]", f"'{modified}': content differs"),
        (
            "storage",
            "test_bucket_settings[images]",
            "file_size_limit: expected 2097152, found 1024",
        ),
        ("storage", "test_object_rows_have_bytes[documents]", f"{deleted}: row without bytes"),
        ("storage", "test_object_rows_have_bytes[avatars]", f"{vanished}: row without bytes"),
        (
            "storage",
            "test_source_had_every_object[avatars]",
            f"missing in the source for 1 object(s): {vanished}",
        ),
        ("performance", "test_planner_statistics[public.comments]", "no column statistics"),
        ("performance", "test_rto_within_budget", "over the budget of 1e-06 s"),
        (
            "data_consistency",
            "test_sequence_not_behind[public.tasks_id_seq]",
            "is not above max(public.tasks.id) = ",
        ),
        (
            "data_consistency",
            "test_foreign_key[public.task_tags/task_tags_task_id_fkey]",
            "1 row(s) of public.task_tags reference no row of public.tasks",
        ),
        (
            "data_consistency",
            "test_btree_index[public.tasks_project_id_idx]",
            'lacks matching index tuple within index "tasks_project_id_idx"',
        ),
        (
            "data_consistency",
            "test_unique_key[public.tags_name_key]",
            "1 key value(s) of public.tags occur more than once (2 rows) (the index itself is "
            "missing",
        ),
        (
            "data_consistency",
            "test_check_constraint[public.projects/project_budget_positive]",
            "1 row(s) of public.projects violate it",
        ),
        ("api_connectivity", "test_relation_grants[public.tags]", "anon: missing INSERT"),
        (
            "api_connectivity",
            "test_rest_api",
            f"REST API: public.{largest} counts {api.rows[largest]} rows, the backup holds "
            f"{api.rows[largest] - 1}",
        ),
        ("api_connectivity", "test_storage_api", "bucket(s) not listed: images"),
        (
            "authentication",
            "test_auth_api_lists_users",
            f"Auth API: lists 0 users, the backup holds {users}",
        ),
    ]
    problems: list[str] = []
    caught: set[str] = set()
    for category, test, needle in expected:
        try:
            message = out.failed_test(category, test)
        except AssertionError as exc:
            problems.append(str(exc))
            continue
        caught.update(n for n in out.failed if n.endswith("::" + test))
        if needle not in message.splitlines()[0]:
            problems.append(
                f"{category} {test}: {needle!r} not in the first line: {message[:300]!r}"
            )
    # A dropped policy changes what signed-in users see: authentication reports it by user.
    rls = {n: m for n, m in out.failures("authentication").items() if "test_rls_visibility[" in n}
    if not any("public.import_log" in m for m in rls.values()):
        problems.append(f"authentication: no RLS visibility failure names public.import_log: {rls}")
    caught.update(rls)

    # Knock-on failures that are right too, each for a stated reason; anything else is a
    # false alarm.
    knock_on = {
        # the orphan is a new row; the index fault leaves the data as it was
        "test_table_fingerprint[public.task_tags]": "data_integrity",
        # the changed session and the changed bucket setting are changed rows
        "test_table_fingerprint[auth.sessions]": "data_integrity",
        "test_table_fingerprint[storage.buckets]": "data_integrity",
        # the duplicate and the broken check are changed rows, their constraints schema
        "test_table_fingerprint[public.projects]": "data_integrity",
        "test_table_schema[public.tags]": "database_schema",
        "test_table_schema[public.projects]": "database_schema",
        # the revoked grant and the set-back sequence are schema facts as well
        "test_schema_kind[grants]": "database_schema",
        "test_schema_kind[sequences]": "database_schema",
    }
    for nodeid, message in out.failed.items():
        if nodeid in caught:
            continue
        test = nodeid.rpartition("::")[2]
        if knock_on.get(test) != out.category.get(nodeid):
            problems.append(
                f"unexpected failure {nodeid} ({out.category.get(nodeid)}): {message[:300]}"
            )
    # Every category failed, and the verdict says so.
    for category in CATEGORIES:
        if not out.failures(category):
            problems.append(f"{category}: nothing failed")
    if "supabase restore drill: FAIL" not in out.output:
        problems.append("the verdict is not FAIL")
    # No row contents anywhere: not the marker the faults wrote, not what they replaced.
    for text in [MARKER, API_KEY, *injector.evidence]:
        if text and len(text) >= 4 and text in out.output:
            problems.append(f"row contents in the output: {text[:20]!r}...")
    assert not problems, "\n".join(problems) + "\n\n" + out.output[-4000:]


# ---------------------------------------------------------------------------------------------
# Authentication: RLS evaluated as PostgREST would, on both sides
# ---------------------------------------------------------------------------------------------

# The issue: a policy calls a SECURITY DEFINER function (no search_path of its own) that
# names its table without the schema. Run as postgres, as a Supabase user's migration is.
UNQUALIFIED_POLICY_SQL = """
CREATE TABLE public.files (id int PRIMARY KEY, shared boolean NOT NULL);
INSERT INTO public.files SELECT g, g % 3 = 0 FROM generate_series(1, 30) AS g;
CREATE FUNCTION public.can_read_file(f int) RETURNS boolean
  LANGUAGE sql STABLE SECURITY DEFINER AS $$
  SELECT EXISTS (SELECT 1 FROM files WHERE id = f AND shared)
$$;
CREATE TABLE public.shared_docs (id int PRIMARY KEY, file_id int NOT NULL);
INSERT INTO public.shared_docs SELECT g, g % 30 + 1 FROM generate_series(1, 90) AS g;
ALTER TABLE public.shared_docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY "docs of shared files" ON public.shared_docs FOR SELECT
  TO anon, authenticated USING (public.can_read_file(file_id));
GRANT SELECT ON public.files, public.shared_docs TO anon, authenticated;
"""

# Added for the second backup: anon's policy divides by zero (an error on both sides), and
# authenticated's reads note_acl unqualified (the fault below drops it from staging only).
ERRORING_POLICIES_SQL = """
CREATE TABLE public.ratios (id int PRIMARY KEY, n int NOT NULL);
INSERT INTO public.ratios VALUES (1, 0), (2, 5);
ALTER TABLE public.ratios ENABLE ROW LEVEL SECURITY;
CREATE FUNCTION public.big_ratio(n int) RETURNS boolean LANGUAGE plpgsql STABLE AS $$
  BEGIN RETURN 10 / n > 1; END $$;
CREATE POLICY "anon sees big ratios" ON public.ratios FOR SELECT TO anon
  USING (public.big_ratio(n));
CREATE TABLE public.note_acl (note_id int PRIMARY KEY);
INSERT INTO public.note_acl SELECT g FROM generate_series(1, 10) AS g;
CREATE FUNCTION public.can_read_note(n int) RETURNS boolean
  LANGUAGE sql STABLE SECURITY DEFINER AS $$
  SELECT EXISTS (SELECT 1 FROM note_acl WHERE note_id = n)
$$;
CREATE TABLE public.doc_notes (id int PRIMARY KEY);
INSERT INTO public.doc_notes SELECT g FROM generate_series(1, 20) AS g;
ALTER TABLE public.doc_notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY "notes with an acl" ON public.doc_notes FOR SELECT TO authenticated
  USING (public.can_read_note(id));
GRANT SELECT ON public.ratios, public.doc_notes TO anon, authenticated;
"""


@dataclass
class RlsSets:
    base: Path
    demo: DemoProject
    unqualified: Path  # the demo plus UNQUALIFIED_POLICY_SQL


@pytest.fixture(scope="module")
def rls_sets() -> Iterator[RlsSets]:
    base = Path(tempfile.mkdtemp(prefix="smoke-rls-"))
    try:
        with DemoProject(scale=1) as demo:
            with psycopg.connect(demo.db_url, autocommit=True) as conn:
                conn.execute(UNQUALIFIED_POLICY_SQL)
            unqualified = export(
                demo.db_url, base / "unqualified", s3=demo.s3, options=ExportOptions(jobs=2)
            )
            yield RlsSets(base, demo, unqualified)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def erroring_set(rls_sets: RlsSets) -> Path:
    with psycopg.connect(rls_sets.demo.db_url, autocommit=True) as conn:
        conn.execute(ERRORING_POLICIES_SQL)
    return export(
        rls_sets.demo.db_url,
        rls_sets.base / "erroring",
        s3=rls_sets.demo.s3,
        options=ExportOptions(jobs=2),
    )


def test_auth_rls_parity_with_a_security_definer_function_naming_an_unqualified_table(
    pytester: pytest.Pytester, rls_sets: RlsSets
) -> None:
    """The issue's drill: anon and the 5 sampled users each see the same rows of
    public.shared_docs in staging as at export, where it used to fail with a raw
    UndefinedTable because staging counted with search_path pg_catalog."""
    out = _run(pytester, rls_sets.unqualified, "-k", "test_rls_visibility")
    assert out.failed == {}, out.output[-3000:]
    assert len(out.passed["authentication"]) == 6, out.output[-3000:]
    manifest = read_manifest(rls_sets.unqualified)
    visibility = manifest.rls.visibility
    assert len(visibility) == 6
    # Every identity sees exactly the sampled docs whose file is shared (file_id % 3 = 0).
    sample = manifest.rls.samples["public.shared_docs"]
    shared = [i for i, (doc,) in enumerate(sample.keys) if (int(doc) % 30 + 1) % 3 == 0]
    assert shared
    seen = {who: v["public.shared_docs"] for who, v in visibility.items()}
    assert seen == {who: {"visible": shared} for who in visibility}
    session = manifest.rls.session.to_json()  # what a future reader learns from the manifest
    assert session["search_path"] == '"public", "public", "extensions"'
    assert session["role_settings"] == {}  # the demo's anon/authenticated have time limits only
    assert set(session["not_applied"]["anon"]) == {"statement_timeout"}


def test_auth_rls_errors_same_on_both_sides_pass_staging_only_errors_fail_precisely(
    pytester: pytest.Pytester, rls_sets: RlsSets, erroring_set: Path
) -> None:
    """anon's policy on public.ratios divides by zero at export and on staging: recorded,
    equal behaviour, a note. authenticated's policy on public.doc_notes reads note_acl,
    which staging lost: every user's test fails naming the table, the policy, the role and
    the error, and no user's id."""
    manifest = read_manifest(erroring_set)
    visibility = manifest.rls.visibility
    users = manifest.rls.users
    withheld = "22012 DivisionByZero (message withheld: it may quote row values)"
    assert visibility["anon"]["public.ratios"] == {"error": withheld}
    notes = manifest.rls.samples["public.doc_notes"]  # 20 rows: every key sampled
    assert notes.whole and sorted(int(k) for (k,) in notes.keys) == list(range(1, 21))
    with_acl = [i for i, (k,) in enumerate(notes.keys) if int(k) <= 10]
    assert all(visibility[u]["public.doc_notes"] == {"visible": with_acl} for u in users)

    class DropNoteAcl:
        @pytest.fixture(scope="session", autouse=True)
        def _drop(self, staging_dsn: str) -> None:
            with psycopg.connect(staging_dsn, autocommit=True) as conn:
                conn.execute("DROP TABLE public.note_acl")

    result = pytester.runpytest(
        "--supabase-restore",
        f"--supabase-from-backup={erroring_set}",
        "--supabase-staging=ephemeral",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:benchmark",
        "-k",
        "test_rls_visibility",
        plugins=[DropNoteAcl()],
    )
    reports = [
        r
        for r in result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
        if "test_rls_visibility[" in r.nodeid and (r.when == "call" or r.failed)
    ]
    output = result.stdout.str() + result.stderr.str()
    by_identity = {r.nodeid.rpartition("[")[2].rstrip("]"): r for r in reports}
    labels = [f"user{i}" for i in range(1, len(users) + 1)]  # test ids never carry user ids
    assert set(by_identity) == {"anon", *labels}, output[-3000:]

    anon = by_identity["anon"]
    assert anon.passed, anon.longreprtext
    notes = dict(anon.user_properties).get("supabase_rls_notes", "")  # see drill_fact
    assert notes.startswith("anon (anon): public.ratios: raises " + withheld), notes
    assert '(SELECT policy for anon: "anon sees big ratios")' in notes

    for i, user in enumerate(users, start=1):
        report = by_identity[f"user{i}"]
        assert report.failed, user
        message = report.longreprtext.strip()
        assert message.startswith(
            f"user{i} (authenticated): row-level security differs in 1 "
            "table(s): public.doc_notes: 10 of 20 sampled rows expected, but counting raised "
            "42P01 relation "
            '"note_acl" does not exist in the restored copy (SELECT policy for authenticated: '
            '"notes with an acl")'
        ), message
        assert not any(u in message for u in users), message
        assert "Traceback" not in message and "UndefinedTable" not in message


def test_auth_rls_a_policy_that_hides_rows_or_shows_more_fails_by_user_and_table(
    pytester: pytest.Pytester, rls_sets: RlsSets
) -> None:
    """Two policy faults in staging only: the tasks policy now lets nobody read a task (users
    see fewer of the sampled rows), and a new policy lets everyone read every attachment
    (users see more). Each user that saw some of its tasks fails naming public.tasks and how
    many sampled rows are no longer visible; each that could not see every sampled
    attachment fails naming public.attachments and how many are newly visible. Counts and
    names only: no user id, no key value."""
    manifest = read_manifest(rls_sets.unqualified)
    rls = manifest.rls
    tasks, attachments = rls.samples["public.tasks"], rls.samples["public.attachments"]

    class ChangePolicies:
        @pytest.fixture(scope="session", autouse=True)
        def _change(self, staging_dsn: str) -> None:
            with psycopg.connect(staging_dsn, autocommit=True) as conn:
                conn.execute(
                    'ALTER POLICY "Creators and assignees can read tasks" ON public.tasks '
                    "USING (false)"
                )
                conn.execute(
                    'CREATE POLICY "everyone reads attachments" ON public.attachments '
                    "FOR SELECT TO authenticated USING (true)"
                )

    out = _run(
        pytester,
        rls_sets.unqualified,
        "-k",
        "test_rls_visibility",
        plugins=[ChangePolicies()],
    )
    failed = {n.rpartition("[")[2].rstrip("]"): m for n, m in out.failed.items()}
    assert "anon" not in failed, out.output[-3000:]  # neither policy applies to anon
    expected_failures = 0
    for i, user in enumerate(rls.users, start=1):
        saw_tasks = rls.visibility[user]["public.tasks"]["visible"]  # type: ignore[index]
        saw_files = rls.visibility[user]["public.attachments"]["visible"]  # type: ignore[index]
        message = failed.get(f"user{i}", "")
        asked_tasks, asked_files = len(tasks.probed(user)), len(attachments.probed(user))
        if saw_tasks:
            assert (
                f"public.tasks: {len(saw_tasks)} of {asked_tasks} sampled rows visible "
                f"expected, 0 found ({len(saw_tasks)} no longer visible, 0 newly visible)"
            ) in message, message or out.output[-3000:]
        hidden = asked_files - len(saw_files)
        if hidden:
            assert (
                f"public.attachments: {len(saw_files)} of {asked_files} sampled rows "
                f"visible expected, {asked_files} found (0 no longer visible, "
                f"{hidden} newly visible)"
            ) in message, message or out.output[-3000:]
        expected_failures += bool(saw_tasks or hidden)
        assert user not in out.output
    assert expected_failures >= 1 and len(failed) == expected_failures, out.output[-3000:]
    for sample in (tasks, attachments):
        for key in sample.keys:
            assert all(len(v) < 8 or v not in out.output for v in key)
