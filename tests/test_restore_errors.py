"""Restore errors without a server: which object a statement is about, which errors an
unloadable extension causes, and how the unexpected ones are grouped, redacted and
shortened for every output.

The pg_restore output below is what PostgreSQL 15's pg_restore printed for a backup whose
``citext`` extension the target could not load (taken from a real run, shortened)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_supabase_restore import manifest as mf
from pytest_supabase_restore.config import Config
from pytest_supabase_restore.errors import BackupError
from pytest_supabase_restore.extdeps import (
    dependents_by_extension,
    members_from_manifest,
    not_restorable_line,
)
from pytest_supabase_restore.model import ExtensionEntry, Manifest, SourceInfo
from pytest_supabase_restore.notify.html import summary_html
from pytest_supabase_restore.notify.job_summary import markdown
from pytest_supabase_restore.notify.slack import slack_payload
from pytest_supabase_restore.redact import Redactor
from pytest_supabase_restore.restore import RestoreOutcome
from pytest_supabase_restore.restore_messages import _record, parse_pg_restore_errors
from pytest_supabase_restore.restore_report import (
    group_restore_errors,
    message_cause,
    report_statement,
    text_lines,
)
from pytest_supabase_restore.results import DrillState, RestoreIssue
from pytest_supabase_restore.smoke_tests._support import Unloadable
from pytest_supabase_restore.toc import ObjectIndex, parse_toc
from pytest_supabase_restore.verdict import CheckOutcome, build_verdict

TOC = """;
; Archive created at 2026-12-01 21:41:22 UTC
;     dbname: postgres
;
; Selected TOC Entries:
;
3474; 0 0 COMMENT - SCHEMA "public" pg_database_owner
2; 3079 16385 EXTENSION - citext \n3475; 0 0 COMMENT - EXTENSION "citext" \n216; 1259 16491 TABLE public items postgres
3476; 0 0 COMMENT public COLUMN "items"."email" postgres
3477; 0 0 ACL public TABLE "items" postgres
278; 1255 16521 FUNCTION public count_items() postgres
266; 1255 16520 FUNCTION public find_item("extensions"."citext") postgres
267; 1255 16530 FUNCTION public find_item(integer, "text") postgres
3478; 0 0 ACL public FUNCTION "find_item"("q" "extensions"."citext") postgres
219; 1259 16524 VIEW public item_emails postgres
217; 1259 16502 TABLE public refs postgres
3464; 0 16491 TABLE DATA public items postgres
3308; 2606 16499 CONSTRAINT public items items_email_key postgres
3306; 1259 16500 INDEX public items_email_idx postgres
3317; 2620 16523 TRIGGER public items items_touch postgres
3316; 2606 16507 FK CONSTRAINT public refs refs_item_id_fkey postgres
3462; 0 16491 ROW SECURITY public items postgres
3463; 3256 16519 POLICY public items own items postgres
"""

STDERR = """pg_restore: error: could not execute query: ERROR:  extension "citext" is not available
DETAIL:  Could not open extension control file "/x/share/extension/citext.control": No such file or directory.
HINT:  The extension must first be installed on the system where PostgreSQL is running.
Command was: CREATE EXTENSION IF NOT EXISTS "citext" WITH SCHEMA "extensions";


pg_restore: error: could not execute query: ERROR:  extension "citext" does not exist
Command was: COMMENT ON EXTENSION "citext" IS 'data type for case-insensitive character strings';


pg_restore: error: could not execute query: ERROR:  type "extensions.citext" does not exist
LINE 3:     "email" "extensions"."citext" NOT NULL,
                    ^
Command was: CREATE TABLE "public"."items" (
    "id" bigint NOT NULL,
    "email" "extensions"."citext" NOT NULL,
    "note" "text"
);


pg_restore: error: could not execute query: ERROR:  relation "public.items" does not exist
Command was: ALTER TABLE public.items OWNER TO postgres;

pg_restore: error: could not execute query: ERROR:  relation "public.items" does not exist
Command was: COMMENT ON COLUMN "public"."items"."email" IS 'the email';


pg_restore: error: could not execute query: ERROR:  relation "public.items" does not exist
LINE 5:     FROM "public"."items";
                 ^
Command was: CREATE FUNCTION "public"."count_items"() RETURNS bigint
    LANGUAGE "sql"
    BEGIN ATOMIC
 SELECT "count"(*) AS "count"
    FROM "public"."items";
END;


pg_restore: error: could not execute query: ERROR:  function public.count_items() does not exist
Command was: ALTER FUNCTION "public"."count_items"() OWNER TO postgres;

pg_restore: error: could not execute query: ERROR:  type extensions.citext does not exist
Command was: CREATE FUNCTION "public"."find_item"("q" "extensions"."citext") RETURNS bigint
    LANGUAGE "sql"
    AS $$ SELECT id FROM public.items WHERE email = q $$;


pg_restore: error: could not execute query: ERROR:  relation "public.items" does not exist
LINE 4:    FROM "public"."items";
                ^
Command was: CREATE VIEW "public"."item_emails" AS
 SELECT "items"."id",
    "items"."email"
   FROM "public"."items";


pg_restore: error: could not execute query: ERROR:  relation "public.item_emails" does not exist
Command was: ALTER TABLE public.item_emails OWNER TO postgres;

pg_restore: error: could not execute query: ERROR:  role "ghost" does not exist
Command was: GRANT ALL ON FUNCTION "public"."find_item"("q" "extensions"."citext") TO "ghost";


pg_restore: error: could not execute query: ERROR:  schema "auth" does not exist
LINE 1: CREATE TABLE "auth"."logins" ("email" "extensions"."citext");
                     ^
Command was: CREATE TABLE "auth"."logins" ("email" "extensions"."citext");


pg_restore: error: could not execute query: ERROR:  relation "public.items" does not exist
Command was: COPY "public"."items" ("id", "email", "note") FROM stdin;
pg_restore: error: could not execute query: ERROR:  relation "public.items" does not exist
Command was: CREATE INDEX "items_email_idx" ON "public"."items" USING "btree" ("email");


pg_restore: error: could not execute query: ERROR:  relation "public.items" does not exist
Command was: ALTER TABLE ONLY "public"."items"
    ADD CONSTRAINT "items_email_key" UNIQUE ("email");


pg_restore: error: could not execute query: ERROR:  relation "public.items" does not exist
Command was: ALTER TABLE ONLY "public"."refs"
    ADD CONSTRAINT "refs_item_id_fkey" FOREIGN KEY ("item_id") REFERENCES "public"."items"("id");


pg_restore: error: could not execute query: ERROR:  relation "public.items" does not exist
Command was: CREATE TRIGGER "items_touch" BEFORE UPDATE ON "public"."items" FOR EACH ROW EXECUTE FUNCTION "public"."touch"();


pg_restore: error: could not execute query: ERROR:  relation "public.items" does not exist
Command was: CREATE POLICY "own items" ON "public"."items" USING ((("email")::"text" = ('a@x'::"extensions"."citext")::"text"));


pg_restore: warning: errors ignored on restore: 17
"""

CANNOT = "which this staging target cannot load"
MEMBERS = {"citext": {"types": ["extensions.citext"], "functions": ["extensions.citext"]}}


# ---------------------------------------------------------------------------------------------
# The TOC and the object of a statement
# ---------------------------------------------------------------------------------------------


def test_the_toc_listing_is_read_with_multi_word_types_and_empty_owners() -> None:
    entries = {e.dump_id: e for e in parse_toc(TOC)}
    assert len(entries) == 19
    assert (entries[2].desc, entries[2].schema, entries[2].tag, entries[2].owner) == (
        "EXTENSION",
        None,
        "citext",
        "",
    )
    assert (entries[3464].desc, entries[3464].tag) == ("TABLE DATA", "items")
    assert (entries[3316].desc, entries[3316].tag) == ("FK CONSTRAINT", "refs refs_item_id_fkey")
    assert (entries[3463].desc, entries[3463].tag) == ("POLICY", "items own items")
    assert entries[266].tag == "find_item(extensions.citext)"


@pytest.mark.parametrize(
    ("statement", "label"),
    [
        ('CREATE TABLE "public"."items" ("id" bigint);', "table public.items"),
        ("ALTER TABLE public.items OWNER TO postgres;", "table public.items"),
        # pg_dump writes ALTER TABLE for a view's owner too: the TOC says what it is.
        ("ALTER TABLE public.item_emails OWNER TO postgres;", "view public.item_emails"),
        ('CREATE VIEW "public"."item_emails" AS SELECT 1;', "view public.item_emails"),
        ('COMMENT ON COLUMN "public"."items"."email" IS \'x\';', "column public.items/email"),
        ('COPY "public"."items" ("id") FROM stdin;', "data public.items"),
        (
            'CREATE INDEX "items_email_idx" ON "public"."items" USING "btree" ("email");',
            "index public.items_email_idx",
        ),
        (
            'ALTER TABLE ONLY "public"."refs" ADD CONSTRAINT "refs_item_id_fkey" FOREIGN KEY'
            ' ("item_id") REFERENCES "public"."items"("id");',
            "constraint public.refs/refs_item_id_fkey",
        ),
        (
            'CREATE TRIGGER "items_touch" BEFORE UPDATE ON "public"."items" FOR EACH ROW EXECUTE'
            ' FUNCTION "public"."touch"();',
            "trigger public.items/items_touch",
        ),
        (
            'CREATE POLICY "own items" ON "public"."items" USING (true);',
            "policy public.items/own items",
        ),
        ('ALTER TABLE "public"."items" ENABLE ROW LEVEL SECURITY;', "table public.items"),
        (
            'ALTER TABLE ONLY "public"."items" ALTER COLUMN "id" SET DEFAULT 1;',
            "column public.items/id",
        ),
        # The function's argument types as the TOC (and the schema inventory) spell them,
        # whichever overload it is.
        (
            'CREATE FUNCTION "public"."find_item"("q" "extensions"."citext") RETURNS bigint'
            " LANGUAGE sql AS $$ SELECT 1 $$;",
            "function public.find_item(extensions.citext)",
        ),
        (
            'ALTER FUNCTION "public"."find_item"("n" integer, "t" "text") OWNER TO postgres;',
            "function public.find_item(integer, text)",
        ),
        (
            'GRANT ALL ON FUNCTION "public"."find_item"("q" "extensions"."citext") TO "anon";',
            "function public.find_item(extensions.citext)",
        ),
        ('GRANT SELECT ON TABLE "public"."items" TO "anon";', "table public.items"),
        (
            'SELECT pg_catalog.setval(\'"public"."items_id_seq"\', 5, true);',
            "sequence public.items_id_seq",
        ),
        ('CREATE EXTENSION IF NOT EXISTS "citext" WITH SCHEMA "extensions";', "extension citext"),
        ('CREATE SCHEMA "auth";', "schema auth"),
        # Without a TOC (a Supabase CLI dump) the statement alone is read.
        (
            "CREATE FUNCTION public.f(q text, n integer DEFAULT 1, OUT r int) RETURNS int AS ''",
            "function public.f(text, integer)",
        ),
        ("SET statement_timeout = 0;", None),
    ],
)
def test_a_statement_names_its_object(statement: str, label: str | None) -> None:
    obj = ObjectIndex(parse_toc(TOC)).object_of(statement)
    assert (obj.label if obj else None) == label


# ---------------------------------------------------------------------------------------------
# Classification: what an unloadable extension causes, and what it does not
# ---------------------------------------------------------------------------------------------


def _restore(stderr: str, members: Any = MEMBERS, toc: str = TOC) -> RestoreOutcome:
    out = RestoreOutcome()
    _record(out, parse_pg_restore_errors(stderr), False, toc=parse_toc(toc), extensions=members)
    return out


def test_what_an_unloadable_extension_causes_is_expected_and_named() -> None:
    out = _restore(STDERR)
    assert out.not_restorable == ["extension citext"]
    unexpected = [(i.message, i.statement[:40]) for i in out.unexpected]
    # A missing role and a missing schema are causes of their own, even in statements that
    # mention citext (the second one only in its LINE excerpt and statement).
    assert [m for m, _ in unexpected] == [
        'ERROR: role "ghost" does not exist',
        'ERROR: schema "auth" does not exist LINE 1: CREATE TABLE "auth"."logins" ("email" '
        '"extensions"."citext"); ^',
    ]
    assert out.extension_dependents == {
        "table public.items": "citext",
        "column public.items/email": "citext",
        "function public.count_items()": "citext",
        "function public.find_item(extensions.citext)": "citext",
        "view public.item_emails": "citext",
        "data public.items": "citext",
        "index public.items_email_idx": "citext",
        "constraint public.items/items_email_key": "citext",
        "constraint public.refs/refs_item_id_fkey": "citext",
        "trigger public.items/items_touch": "citext",
        "policy public.items/own items": "citext",
    }
    for issue in out.issues:
        assert issue.extension == ("citext" if issue.expected else "")
        if issue.expected and issue.object != "extension citext":
            assert issue.reason == f"depends on extension citext, {CANNOT}"
    by_extension = dependents_by_extension(out.extension_dependents)["citext"]
    assert by_extension[:2] == ["table public.items", "view public.item_emails"]


def test_without_members_only_the_extension_and_its_comment_are_expected() -> None:
    """Nothing known of what the extension provides: what its absence causes fails."""
    out = _restore(STDERR, members={})
    assert out.not_restorable == ["extension citext"]
    assert len(out.unexpected) == 16 and out.extension_dependents == {}
    assert [i.expected for i in out.issues[:3]] == [True, True, False]


def _typed(**sections: Any) -> Manifest:
    """A manifest with only the given sections (the rest empty)."""
    return Manifest(
        format=mf.FORMAT,
        version=mf.VERSION,
        snapshot_time="2026-11-24T17:29:00+00:00",
        source=SourceInfo(server_major=15),
        **sections,
    )


def test_an_older_manifest_still_names_the_extensions_type() -> None:
    older = _typed(schema={"extensions": {"citext": {"version": "1.6", "schema": "extensions"}}})
    members = members_from_manifest(older)
    assert members == {"citext": {"types": ["extensions.citext"]}}
    out = _restore(STDERR, members=members)
    assert len(out.unexpected) == 2 and "table public.items" in out.extension_dependents
    section = {k: ExtensionEntry.from_json(v) for k, v in MEMBERS_SECTION.items()}
    assert members_from_manifest(_typed(extensions=section)) == {
        "vector": {"types": ["extensions.vector"], "access_methods": ["hnsw"]}
    }


def test_an_extension_that_requires_an_unloadable_one_is_not_restorable_either() -> None:
    stderr = STDERR.split("\n\n\npg_restore: error: could not execute query: ERROR:  extension")[0]
    stderr += """

pg_restore: error: could not execute query: ERROR:  required extension "citext" is not installed
HINT:  Use CREATE EXTENSION ... CASCADE to install required extensions too.
Command was: CREATE EXTENSION IF NOT EXISTS "needs_citext" WITH SCHEMA "extensions";


pg_restore: error: could not execute query: ERROR:  function extensions.needs_it() does not exist
Command was: CREATE TABLE "public"."t" ("id" integer DEFAULT "extensions"."needs_it"());
"""
    members = {**MEMBERS, "needs_citext": {"functions": ["extensions.needs_it"]}}
    out = _restore(stderr, members=members)
    assert out.not_restorable == ["extension citext", "extension needs_citext"]
    assert out.unexpected == [] and out.extension_dependents == {"table public.t": "needs_citext"}


def test_a_grant_on_the_extensions_own_function_is_part_of_it_not_a_dependent() -> None:
    stderr = STDERR.split("\n\n\npg_restore: error: could not execute query: ERROR:  extension")[0]
    stderr += """

pg_restore: error: could not execute query: ERROR:  function extensions.citext(boolean) does not exist
Command was: GRANT ALL ON FUNCTION "extensions"."citext"(boolean) TO "postgres";
"""
    out = _restore(stderr)
    assert out.unexpected == [] and out.extension_dependents == {}
    assert out.issues[-1].reason == f"part of extension citext, {CANNOT}"


def test_an_access_method_or_operator_class_of_the_extension_is_recognised() -> None:
    stderr = """pg_restore: error: could not execute query: ERROR:  extension "vector" is not available
Command was: CREATE EXTENSION IF NOT EXISTS "vector" WITH SCHEMA "extensions";


pg_restore: error: could not execute query: ERROR:  access method "hnsw" does not exist
Command was: CREATE INDEX "docs_idx" ON "public"."docs" USING "hnsw" ("body");


pg_restore: error: could not execute query: ERROR:  operator class "vector_cosine_ops" does not exist for access method "btree"
Command was: CREATE INDEX "docs_idx2" ON "public"."docs" USING "btree" ("body" "vector_cosine_ops");
"""
    members = {
        "vector": {"access_methods": ["hnsw"], "opclasses": ["extensions.vector_cosine_ops"]}
    }
    out = _restore(stderr, members=members, toc="")
    assert out.unexpected == []
    assert set(out.extension_dependents) == {"index public.docs_idx", "index public.docs_idx2"}


# ---------------------------------------------------------------------------------------------
# The manifest's extensions section
# ---------------------------------------------------------------------------------------------

MEMBERS_SECTION = {
    "vector": {
        "version": "0.7.0",
        "schema": "extensions",
        "members": {"types": ["extensions.vector"], "access_methods": ["hnsw"]},
    }
}


def _manifest(**extra: Any) -> dict[str, Any]:
    return {
        "format": mf.FORMAT,
        "version": 1,
        "snapshot_time": "2026-01-01T00:00:00+00:00",
        "source": {"server_major": 15},
        "tables": {},
        "schema": {},
        "storage": {},
        "files": {"db/toc.dat": {"size": 1, "sha256": "0" * 64}},
        **extra,
    }


def test_the_extensions_section_is_optional_and_checked() -> None:
    path = Path("/nowhere/manifest.json")
    mf.validate_manifest(_manifest(), path)  # an older set: no section at all
    mf.validate_manifest(_manifest(extensions=MEMBERS_SECTION), path)
    for bad, where in (
        ([], "extensions: must be an object"),
        ({"vector": []}, "extensions['vector']: must be an object"),
        ({"vector": {"version": 7}}, "extensions['vector'].version: not a string"),
        ({"vector": {"members": []}}, "extensions['vector'].members: must be an object"),
        (
            {"vector": {"members": {"types": "extensions.vector"}}},
            "extensions['vector'].members['types']: must be a list of names",
        ),
        (
            {"vector": {"members": {"types": ["x", 3]}}},
            "extensions['vector'].members['types']: must be a list of names",
        ),
        ({"": {}}, "extensions['']: not an extension name"),
    ):
        with pytest.raises(BackupError, match="malformed manifest") as info:
            mf.validate_manifest(_manifest(extensions=bad), path)
        assert where in str(info.value), (bad, str(info.value))


# ---------------------------------------------------------------------------------------------
# Grouping, redaction and shortening
# ---------------------------------------------------------------------------------------------

SECRET = "s3cr3t-value-that-must-never-show"


def _many_issues() -> list[RestoreIssue]:
    long_body = "x" * 1490 + " " + SECRET + " " + "y" * 2000
    issues = [
        RestoreIssue(
            f'CREATE TABLE "auth"."t{i}" (\n    "id" integer\n);',
            'ERROR: schema "auth" does not exist',
            expected=False,
            object=f"table auth.t{i}",
        )
        for i in range(89)
    ]
    issues.append(
        RestoreIssue(
            f'CREATE FUNCTION "public"."f"() RETURNS text LANGUAGE sql AS $$ SELECT \'{long_body}\' $$;',
            'ERROR: role "ghost" does not exist',
            expected=False,
        )
    )
    issues.append(RestoreIssue("CREATE EXTENSION vector", "not available", expected=True))
    issues.append(
        RestoreIssue(
            'COPY "public"."items" ("id", "email") FROM stdin;\n1\tsomeone@example.test\n',
            'ERROR: invalid input syntax for type integer: "someone@example.test" CONTEXT: COPY'
            ' items, line 1, column id: "someone@example.test"',
            expected=False,
        )
    )
    issues.append(
        RestoreIssue(
            "INSERT INTO public.people (id, email) VALUES (1, 'someone@example.test');",
            'data.sql: duplicate key value violates unique constraint "people_pkey"',
            expected=False,
        )
    )
    return issues


def test_unexpected_errors_are_grouped_by_cause_with_every_whole_statement() -> None:
    groups = group_restore_errors(_many_issues(), Redactor([SECRET]))
    assert [(g.cause, g.count) for g in groups] == [
        ('schema "auth" does not exist', 89),
        ('role "ghost" does not exist', 1),
        ("invalid input syntax for type integer: (value withheld)", 1),
        ('data.sql: duplicate key value violates unique constraint "people_pkey"', 1),
    ]
    auth = groups[0]
    assert len(auth.statements) == 89 and len(auth.objects) == 89
    # Whole statements, never cut at their first line.
    assert auth.statements[0] == 'CREATE TABLE "auth"."t0" ( "id" integer );'
    # A long one is shortened in the middle: its head (naming the object) and its tail stay;
    # the secret was redacted before the cut, so no part of it is left.
    long = groups[1].statements[0]
    assert long.startswith('CREATE FUNCTION "public"."f"() RETURNS text') and long.endswith("$$;")
    assert " … " in long and len(long) <= 2000
    assert SECRET[:8] not in long
    # Never row contents: a COPY is its header line, an INSERT its columns.
    assert groups[2].statements == ['COPY "public"."items" ("id", "email") FROM stdin;']
    assert groups[3].statements == [
        "INSERT INTO public.people (id, email) VALUES … (values withheld)"
    ]
    everything = json.dumps([g.to_json() for g in groups])
    assert "someone@example.test" not in everything and SECRET not in everything


def test_message_causes_drop_excerpts_details_and_quoted_values() -> None:
    assert (
        message_cause(
            'ERROR:  type "extensions.vector" does not exist LINE 3: "e" "extensions"."vector", ^'
        )
        == 'type "extensions.vector" does not exist'
    )
    assert message_cause('roles: role "a" already exists') == 'roles: role "a" already exists'
    assert (
        message_cause(
            'COPY failed for table "t": ERROR:  invalid input value for enum public.mood: "happy"'
        )
        == 'COPY failed for table "t": invalid input value for enum public.mood: (value withheld)'
    )
    assert (
        report_statement("COPY public.t (a) FROM stdin;\n1\n2") == "COPY public.t (a) FROM stdin;"
    )


def _verdict(issues: list[RestoreIssue], **state: Any) -> Any:
    outcomes = [CheckOutcome(f"t.py::{c}", c, "passed") for c in ("database_schema",)]
    drill = DrillState(enabled=True, restore_issues=issues, **state)
    return build_verdict(outcomes, drill, Config(enabled=True), _NOW, env={})


_NOW = __import__("datetime").datetime(2026, 1, 1, tzinfo=__import__("datetime").timezone.utc)


def test_every_output_has_every_cause_and_json_every_statement() -> None:
    verdict = _verdict(
        _many_issues(),
        extension_dependents={"table public.items": "vector", "index public.i": "vector"},
    )
    data = verdict.to_json()
    assert [g["count"] for g in data["restore_errors"]] == [89, 1, 1, 1]
    assert len(data["restore_errors"][0]["statements"]) == 89
    assert data["extension_dependents"] == {"vector": ["table public.items", "index public.i"]}
    assert verdict.reasons[0].startswith(
        'restore reported 92 unexpected errors of 4 causes: schema "auth" does not exist '
        '(89 statements); role "ghost" does not exist;'
    )
    lines = text_lines(verdict.restore_errors)
    assert lines[:5] == [
        '- schema "auth" does not exist: 89 statements',
        '    CREATE TABLE "auth"."t0" ( "id" integer );',
        '    CREATE TABLE "auth"."t1" ( "id" integer );',
        '    CREATE TABLE "auth"."t2" ( "id" integer );',
        "    ... and 86 more",
    ]
    html = summary_html(verdict)
    assert html.count("<pre ") == 92 and "89 statements" in html
    assert "CREATE TABLE &quot;auth&quot;.&quot;t88&quot;" in html
    md = markdown(verdict)
    assert 'schema "auth" does not exist**: 89 statements' in md.replace("\\", "")
    assert md.count('CREATE TABLE "auth"') == 10 and "… and 79 more" in md
    payload = slack_payload(verdict, Redactor())
    texts = [b["text"]["text"] for b in payload["blocks"] if isinstance(b.get("text"), dict)]
    block = next(t for t in texts if "unexpected restore errors" in t)
    assert block.startswith("*92 unexpected restore errors of 4 causes*")
    assert '• schema "auth" does not exist: 89 statements' in block
    slack = json.dumps(payload)
    for text in (json.dumps(data), html, md, slack, "\n".join(lines)):
        assert SECRET not in text and "someone@example.test" not in text


def test_not_restorable_line_names_the_dependents_within_its_limit() -> None:
    names = [f"table public.t{i:03d}" for i in range(100)]
    line = not_restorable_line("extension vector", "ephemeral", names)
    assert line.startswith(
        "extension vector: not restorable in this target (ephemeral); depends on it: "
        "table public.t000, table public.t001"
    )
    assert len(line) <= 480 and line.endswith(" more)")
    assert not_restorable_line("extension x", "url", []) == (
        "extension x: not restorable in this target (url)"
    )


def test_the_map_survives_the_state_file(tmp_path: Path) -> None:
    """xdist workers read the drill state from the run directory."""
    state = DrillState(
        enabled=True,
        not_restorable=["extension vector"],
        extension_dependents={"table public.items": "vector"},
        restore_issues=[
            RestoreIssue("s", "m", True, "r", object="table public.items", extension="vector")
        ],
    )
    state.save(tmp_path)
    loaded = DrillState.load(tmp_path)
    assert loaded.extension_dependents == {"table public.items": "vector"}
    assert loaded.restore_issues[0].extension == "vector"
    old = json.loads((tmp_path / "drill-state.json").read_text())
    del old["extension_dependents"]
    for issue in old["restore_issues"]:
        del issue["object"], issue["extension"]
    (tmp_path / "drill-state.json").write_text(json.dumps(old))
    assert DrillState.load(tmp_path).extension_dependents == {}  # an older state file


# ---------------------------------------------------------------------------------------------
# The smoke tests' view
# ---------------------------------------------------------------------------------------------


def test_smoke_tests_leave_out_exactly_the_dependent_objects() -> None:
    state = DrillState(
        not_restorable=["extension vector"],
        extension_dependents={
            "table public.items": "vector",
            "constraint public.refs/refs_item_fkey": "vector",
            "function public.match(extensions.vector)": "vector",
        },
    )
    manifest = _typed(
        extensions={"vector": ExtensionEntry(None, None, members={"schemas": ("vectors",)})}
    )
    unloadable = Unloadable.from_state(state, manifest)
    assert unloadable.reason(["table public.items"]) == (
        "not tested: table public.items: depends on extension vector, which this staging "
        "target cannot load"
    )
    assert unloadable.reason(["table public.refs"]) is None
    tables = ["public.items", "public.refs"]
    inventory = {
        "tables": {"public.items": {}, "public.refs": {}},
        "columns": {"public.items.id": {}, "public.refs.item_id": {}},
        "constraints": {
            "public.refs.refs_item_fkey": {
                "type": "foreign key",
                "definition": "FOREIGN KEY (item_id) REFERENCES public.items(id)",
            },
            "public.refs.refs_pkey": {"type": "primary key", "definition": "PRIMARY KEY (id)"},
        },
        "indexes": {"public.items_pkey": {"table": "public.items"}},
        "functions": {"public.match(extensions.vector)": {}, "public.other()": {}},
        "extensions": {"vector": {}, "pgcrypto": {}},
        "grants": {
            "table public.items to anon": {},
            "function public.match(extensions.vector) to anon": {},
            "table public.refs to anon": {},
        },
        "schemas": {"vectors": {}, "public": {}},
    }
    kept, left_out = unloadable.split(inventory, tables)
    assert kept == {
        "tables": {"public.refs": {}},
        "columns": {"public.refs.item_id": {}},
        "constraints": {"public.refs.refs_pkey": inventory["constraints"]["public.refs.refs_pkey"]},
        "indexes": {},
        "functions": {"public.other()": {}},
        "extensions": {"pgcrypto": {}},
        "grants": {"table public.refs to anon": {}},
        "schemas": {"public": {}},
    }
    assert "constraints public.refs.refs_item_fkey (extension vector)" in left_out
    assert len(left_out) == 9
    assert not Unloadable.from_state(DrillState(), None)


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        ("issue_pg_net_access", True),
        ("pgrst_ddl_watch", True),
        ("audit_every_ddl", False),  # the project's own event trigger: its owner matters
    ],
)
def test_a_platform_event_trigger_owned_by_the_demoted_postgres_is_expected(
    trigger: str, expected: bool
) -> None:
    """Projects older than supabase/postgres 20250402065937 have issue_pg_net_access owned
    by postgres, which is no longer a superuser: no restore can give it that owner. Only the
    platform's six triggers are excused."""
    from pytest_supabase_restore.restore_messages import classify

    message = f'permission denied to change owner of event trigger "{trigger}"'
    statement = f"ALTER EVENT TRIGGER {trigger} OWNER TO postgres;"
    ok, reason, item = classify(message, statement, platform_present=False)
    assert (ok, item) == (expected, None)
    assert ("superuser" in reason) is expected
