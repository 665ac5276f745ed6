"""The verdict model and the redactor: the rules that decide PASS or FAIL."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from pytest_supabase_restore import CATEGORIES, QUICK_CATEGORIES
from pytest_supabase_restore.config import Config
from pytest_supabase_restore.connections import Connection
from pytest_supabase_restore.redact import Redactor
from pytest_supabase_restore.results import BackupSizes, DrillState, FaultResult, RestoreIssue
from pytest_supabase_restore.verdict import (
    FAILURES_LIMIT,
    CategoryCounts,
    CheckOutcome,
    build_verdict,
    one_line,
    run_url,
)
from pytest_supabase_restore.verdict_text import (
    category_status,
    format_bytes,
    format_seconds,
    scope_line,
)

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
DB_PASSWORD = "Pw-SECRET-db-4711"
DB_URL = f"postgresql://postgres:{DB_PASSWORD}@db.example.supabase.co:5432/postgres"
SERVICE_KEY = "SECRET-service-role-key-0815"

CONTRACT_KEYS = {
    "status",
    "categories",
    "failures",
    "rto_seconds",
    "phases",
    "backup",
    "staging",
    "not_tested",
    "reason",
    "rpo",
    "versions",
    "run_url",
    "generated_at",
}


def settings(**kw: object) -> Config:
    base: dict[str, object] = {
        "enabled": True,
        "source": Connection(db_url=DB_URL, service_role_key=SERVICE_KEY),
    }
    base.update(kw)
    return Config(**base)  # type: ignore[arg-type]


def state(**kw: object) -> DrillState:
    st = DrillState(
        enabled=True,
        mode="export",
        rto_seconds=42.5,
        snapshot_time="2025-03-01T11:50:00+00:00",
        server_version="15.8",
        tool_version="pg_dump (PostgreSQL) 15.8",
        staging_kind="ephemeral",
        staging_label="ephemeral cluster on 127.0.0.1:54321",
        staging_dsn=f"postgresql://postgres:{DB_PASSWORD}@127.0.0.1:54321/postgres",
        backup=BackupSizes(
            tables=12, rows=3400, db_bytes=1_234_567, objects=10, object_bytes=2_345_678
        ),
    )
    st.add_phase("export", 3.21)
    st.add_phase("restore", 8.05)
    for key, value in kw.items():
        setattr(st, key, value)
    return st


# Every key the JSON summary had before the scope was added: none may change or go.
JSON_KEYS_BEFORE_SCOPE = {
    "schema_version",
    "status",
    "reason",
    "reasons",
    "categories",
    "failures",
    "failures_omitted",
    "tests",
    "rto_seconds",
    "rto_budget_seconds",
    "phases",
    "backup",
    "rpo",
    "staging",
    "staging_label",
    "source",
    "project",
    "mode",
    "dry_run",
    "not_tested",
    "not_restorable",
    "side_effects_off",
    "restore_errors",
    "extension_dependents",
    "versions",
    "run_url",
    "generated_at",
}
EXPENSIVE = [c for c in CATEGORIES if c not in QUICK_CATEGORIES]


def passing(extra: list[CheckOutcome] | None = None) -> list[CheckOutcome]:
    outcomes = [CheckOutcome(f"smoke/test_{c}.py::test_ok", c, "passed") for c in CATEGORIES]
    return outcomes + (extra or [])


def test_all_categories_passing_is_pass_with_the_documented_json() -> None:
    verdict = build_verdict(passing(), state(), settings(), NOW, env={})
    assert verdict.status == "PASS", verdict.reasons
    data = verdict.to_json()
    assert set(data) >= CONTRACT_KEYS
    assert list(data["categories"])[:8] == list(CATEGORIES)
    for name in CATEGORIES:
        counts = data["categories"][name]
        assert {k: counts[k] for k in ("passed", "failed", "skipped", "errors")} == {
            "passed": 1,
            "failed": 0,
            "skipped": 0,
            "errors": 0,
        }
    assert data["rto_seconds"] == 42.5
    assert data["phases"] == {"export": 3.21, "restore": 8.05}
    assert data["backup"] == {
        "snapshot_time": "2025-03-01T11:50:00+00:00",
        "tables": 12,
        "rows": 3400,
        "db_bytes": 1_234_567,
        "objects": 10,
        "object_bytes": 2_345_678,
    }
    assert data["rpo"] == {"snapshot_time": "2025-03-01T11:50:00+00:00", "age_seconds": 600.0}
    assert data["staging"] == "ephemeral"
    assert data["versions"]["server"] == "15.8"
    assert data["versions"]["plugin"]
    assert data["failures"] == [] and data["not_tested"] == []
    assert data["run_url"] is None
    assert data["generated_at"] == "2025-03-01T12:00:00+00:00"
    json.dumps(data)  # serialisable as is


def test_one_failure_fails_with_a_one_line_redacted_truncated_message() -> None:
    message = f"connect to {DB_URL} failed\nsecond line\n" + "x" * 1000
    failed = CheckOutcome("smoke/test_storage.py::test_bad", "storage", "failed", [message])
    verdict = build_verdict(passing([failed]), state(), settings(), NOW, env={})
    assert verdict.status == "FAIL"
    assert "1 test failed" in verdict.reason
    (failure,) = verdict.to_json()["failures"]
    assert failure["test"] == "smoke/test_storage.py::test_bad"
    assert failure["category"] == "storage"
    assert "\n" not in failure["message"] and "second line" not in failure["message"]
    assert DB_PASSWORD not in failure["message"] and "***" in failure["message"]
    assert verdict.categories["storage"].failed == 1


def test_a_category_with_only_skipped_tests_fails_and_lists_the_reason() -> None:
    outcomes = [o for o in passing() if o.category != "storage"] + [
        CheckOutcome("s.py::a", "storage", "skipped", skip_reason="no S3 endpoint configured"),
        CheckOutcome("s.py::b", "storage", "skipped", skip_reason="no S3 endpoint configured"),
    ]
    verdict = build_verdict(outcomes, state(), settings(), NOW, env={})
    assert verdict.status == "FAIL"
    assert "category storage did not run (all 2 skipped)" in verdict.reasons
    # Deduplicated: one entry for the two tests that skipped for the same reason.
    assert verdict.not_tested == ["storage: no S3 endpoint configured"]


def test_a_skip_next_to_a_pass_is_not_tested_but_not_a_failure() -> None:
    skipped = CheckOutcome("s.py::c", "authentication", "skipped", skip_reason="no API URL")
    st = state(not_tested=["realtime: not part of the backup"])
    verdict = build_verdict(passing([skipped]), st, settings(), NOW, env={})
    assert verdict.status == "PASS"
    assert verdict.not_tested == ["realtime: not part of the backup", "authentication: no API URL"]


def test_a_category_without_tests_fails() -> None:
    outcomes = [o for o in passing() if o.category != "performance"]
    verdict = build_verdict(outcomes, state(), settings(), NOW, env={})
    assert verdict.status == "FAIL"
    assert verdict.reasons == ["category performance did not run (no tests)"]
    assert verdict.categories["performance"].total == 0  # still present in the JSON


def test_errors_and_xfail() -> None:
    extra = [
        CheckOutcome("t.py::setup_err", "crud_operations", "error", ["error in setup: boom"]),
        CheckOutcome("t.py::xf", "data_integrity", "xfailed", skip_reason="known issue"),
    ]
    verdict = build_verdict(passing(extra), state(), settings(), NOW, env={})
    assert verdict.status == "FAIL"
    assert verdict.reasons == ["1 test errored"]
    assert verdict.categories["crud_operations"].errors == 1
    assert verdict.categories["data_integrity"].xfail == 1
    assert [f.test for f in verdict.failures] == ["t.py::setup_err"]

    only_xfail = [CheckOutcome("t.py::xf", "data_integrity", "xfailed", skip_reason="known")]
    outcomes = [o for o in passing() if o.category != "data_integrity"] + only_xfail
    verdict = build_verdict(outcomes, state(), settings(), NOW, env={})
    # An expected failure is not a pass: the category has no proof.
    assert verdict.status == "FAIL"
    assert "category data_integrity did not run (all 1 skipped)" in verdict.reasons
    assert "data_integrity: expected failure (known)" in verdict.not_tested


def test_custom_categories_are_counted_and_their_failures_count() -> None:
    custom_pass = CheckOutcome("u.py::mine", "custom", "passed")
    verdict = build_verdict(passing([custom_pass]), state(), settings(), NOW, env={})
    assert verdict.status == "PASS"
    assert list(verdict.categories)[-1] == "custom"
    custom_fail = CheckOutcome("u.py::mine2", "custom", "failed", ["nope"])
    verdict = build_verdict(passing([custom_fail]), state(), settings(), NOW, env={})
    assert verdict.status == "FAIL" and verdict.failures[0].category == "custom"


def test_no_tests_ran_fails_unless_dry_run() -> None:
    verdict = build_verdict([], state(), settings(), NOW, env={})
    assert verdict.status == "FAIL" and verdict.reason == "no smoke tests ran"
    dry = build_verdict([], state(mode="dry-run"), settings(dry_run=True), NOW, env={})
    assert dry.status == "PASS" and dry.dry_run
    assert dry.not_tested[0].startswith("dry run")
    dry_error = build_verdict([], state(mode="dry-run", error="unreachable"), settings(), NOW)
    assert dry_error.status == "FAIL"


def test_drill_state_problems_fail_the_verdict() -> None:
    no_state = build_verdict(passing(), None, settings(), NOW, env={})
    assert no_state.status == "FAIL" and "no drill state" in no_state.reason

    err = state(error=f"pg_restore failed against {DB_URL}\ndetails", error_phase="restore")
    verdict = build_verdict(passing(), err, settings(), NOW, env={})
    assert verdict.status == "FAIL"
    assert verdict.reason.startswith("the drill failed in restore: pg_restore failed")
    assert DB_PASSWORD not in json.dumps(verdict.to_json())

    integrity = state(integrity_problems=["data/public.orders.dat: sha256 mismatch"])
    verdict = build_verdict(passing(), integrity, settings(), NOW, env={})
    assert verdict.reasons == [
        "backup integrity check found 1 problem: data/public.orders.dat: sha256 mismatch"
    ]

    issues = [
        RestoreIssue("CREATE EXTENSION pg_graphql", "not available", expected=True),
        RestoreIssue("ALTER TABLE x", 'relation "x" does not exist', expected=False),
    ]
    verdict = build_verdict(passing(), state(restore_issues=issues), settings(), NOW, env={})
    assert verdict.reasons == ['restore reported 1 unexpected error: relation "x" does not exist']


def test_rto_budget() -> None:
    within = build_verdict(passing(), state(), settings(rto_budget=60.0), NOW, env={})
    assert within.status == "PASS" and within.rto_budget_seconds == 60.0
    over = build_verdict(passing(), state(rto_budget_seconds=30.0), settings(), NOW, env={})
    assert over.reasons == ["RTO 42.5 s exceeded the budget of 30.0 s"]


def test_collection_errors_fail_and_interruptions_fail() -> None:
    broken = CheckOutcome(
        "smoke/test_x.py", "collection", "error", ["collection error: SyntaxError"]
    )
    verdict = build_verdict(passing([broken]), state(), settings(), NOW, env={})
    assert verdict.reasons == ["1 collection error"]
    assert verdict.failures[0].category == "collection"
    assert "collection" not in verdict.categories
    interrupted = build_verdict(passing(), state(), settings(), NOW, env={}, interrupted=True)
    assert interrupted.status == "FAIL" and "interrupted" in interrupted.reason


def test_failures_are_capped() -> None:
    many = [CheckOutcome(f"t.py::f{i}", "storage", "failed", ["bad"]) for i in range(150)]
    verdict = build_verdict(passing(many), state(), settings(), NOW, env={})
    data = verdict.to_json()
    assert len(data["failures"]) == FAILURES_LIMIT
    assert data["failures_omitted"] == 150 - FAILURES_LIMIT


def test_run_url_and_rpo_without_snapshot() -> None:
    env = {
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_RUN_ID": "123",
        "GITHUB_RUN_ATTEMPT": "2",
    }
    assert run_url(env) == "https://github.com/acme/shop/actions/runs/123/attempts/2"
    assert run_url({}) is None
    verdict = build_verdict(passing(), state(snapshot_time=None), settings(), NOW, env=env)
    assert verdict.run_url == "https://github.com/acme/shop/actions/runs/123/attempts/2"
    assert verdict.rpo == {"snapshot_time": None, "age_seconds": None}
    naive = state(snapshot_time="2025-03-01 11:00:00")
    assert build_verdict(passing(), naive, settings(), NOW, env={}).rpo["age_seconds"] == 3600.0


def test_self_test_is_included_when_present() -> None:
    caught = FaultResult("deleted row in public.t", "data_integrity", True, "1 row missing")
    st = state(self_test=[caught])
    assert build_verdict(passing(), st, settings(), NOW, env={}).to_json()["self_test"] == [
        {
            "fault": "deleted row in public.t",
            "category": "data_integrity",
            "caught": True,
            "evidence": "1 row missing",
            "injected": True,
        }
    ]
    missed = FaultResult("dropped policy public.t.p", "database_schema", False, "")
    verdict = build_verdict(passing(), state(self_test=[missed]), settings(), NOW, env={})
    assert verdict.status == "FAIL" and "dropped policy public.t.p" in verdict.reason
    assert "self_test" not in build_verdict(passing(), state(), settings(), NOW).to_json()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "n/a"), (4.24, "4.2 s"), (125, "2 min 05 s"), (3725, "1 h 02 min")],
)
def test_format_seconds(seconds: float | None, text: str) -> None:
    assert format_seconds(seconds) == text


def test_format_bytes_and_one_line() -> None:
    assert format_bytes(999) == "999 B"
    assert format_bytes(1_234_567) == "1.2 MB"
    assert format_bytes(None) == "n/a"
    assert one_line("\n\n  a   b \n c") == "a b"
    assert one_line("y" * 50, limit=10) == "y" * 9 + "…"


def test_redactor_masks_known_values_url_passwords_and_token_shapes() -> None:
    redactor = Redactor([DB_URL, DB_PASSWORD, SERVICE_KEY, "p@ss word"])
    text = (
        f"url={DB_URL} pw={DB_PASSWORD} key={SERVICE_KEY} encoded=p%40ss%20word "
        "other=postgresql://u:hunter22@h:5432/d dsn='host=h password=opensesame user=u' "
        "hook=https://hooks.slack.com/services/T0/B0/abcdef gh=ghp_0123456789abcdefghijABCDEFGHIJ "
        "jwt=eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZSJ9.c2lnbmF0dXJl "
        "plain=https://example.com/path?q=1 short=abc"
    )
    out = redactor.redact(text)
    for secret in (
        DB_PASSWORD,
        SERVICE_KEY,
        "p%40ss%20word",
        "hunter22",
        "opensesame",
        "T0/B0/abcdef",
        "ghp_0123456789",
        "eyJhbGciOiJIUzI1NiJ9",
    ):
        assert secret not in out, secret
    assert "postgresql://u:***@h:5432/d" in out
    assert "https://example.com/path?q=1" in out  # URLs without a password stay as they are
    assert "short=abc" in out
    assert redactor.contains_secret(text) and not redactor.contains_secret("nothing here")
    nested = redactor.redact_obj({"a": [SERVICE_KEY, 1, None], SERVICE_KEY: {"b": DB_URL}})
    assert SERVICE_KEY not in json.dumps(nested) and DB_PASSWORD not in json.dumps(nested)
    assert nested["a"][1:] == [1, None]


def test_generated_at_is_the_given_time() -> None:
    later = NOW + timedelta(hours=1)
    assert build_verdict(passing(), state(), settings(), later, env={}).generated == later


def quick(extra: list[CheckOutcome] | None = None) -> list[CheckOutcome]:
    """What a quick check reports: a pass in each cheap category, nothing of the others."""
    return [o for o in passing(extra) if o.category not in EXPENSIVE]


def test_the_cheap_categories_are_five_of_the_eight() -> None:
    assert set(QUICK_CATEGORIES) < set(CATEGORIES)
    assert EXPENSIVE == ["data_integrity", "storage", "data_consistency"]


def test_a_full_run_has_scope_full_and_keeps_every_json_key() -> None:
    verdict = build_verdict(passing(), state(), settings(), NOW, env={})
    data = verdict.to_json()
    assert set(data) == JSON_KEYS_BEFORE_SCOPE | {"scope"}
    assert data["scope"] == "full" and verdict.proven
    assert verdict.reason == "restored and verified: 8 checks passed in all 8 categories"
    assert scope_line(verdict) == "full (all 8 categories)"


def test_a_quick_check_passes_and_lists_what_was_not_selected() -> None:
    skipped = CheckOutcome("s.py::api", "authentication", "skipped", skip_reason="no API URL")
    verdict = build_verdict(
        quick([skipped]), state(), settings(), NOW, env={}, not_selected=EXPENSIVE
    )
    assert verdict.status == "PASS", verdict.reasons
    assert verdict.reason == (
        "quick check: 5 checks passed in 5 of 8 categories; not a full proof of the backup"
    )
    assert not verdict.proven  # a PASS, but not a proven restore
    data = verdict.to_json()
    assert set(data) == JSON_KEYS_BEFORE_SCOPE | {"scope"}
    assert data["scope"] == "quick"
    assert data["not_tested"] == [
        "data_integrity: not selected in this run (quick check)",
        "storage: not selected in this run (quick check)",
        "data_consistency: not selected in this run (quick check)",
        "authentication: no API URL",
    ]
    assert list(data["categories"]) == list(CATEGORIES)  # still all eight, with zero counts
    assert data["categories"]["storage"]["passed"] == 0
    assert scope_line(verdict) == (
        "quick check (5 of 8 categories; not selected: data_integrity, storage, data_consistency)"
    )


def test_a_selected_category_without_a_pass_still_fails_a_quick_check() -> None:
    outcomes = [o for o in quick() if o.category != "authentication"] + [
        CheckOutcome("s.py::a", "authentication", "skipped", skip_reason="no API URL")
    ]
    verdict = build_verdict(outcomes, state(), settings(), NOW, env={}, not_selected=EXPENSIVE)
    assert verdict.status == "FAIL"
    assert verdict.reasons == ["category authentication did not run (all 1 skipped)"]
    assert verdict.scope == "quick"  # the scope is still reported on a FAIL

    failed = CheckOutcome("s.py::b", "crud_operations", "failed", ["insert refused"])
    verdict = build_verdict(
        quick([failed]), state(), settings(), NOW, env={}, not_selected=EXPENSIVE
    )
    assert verdict.status == "FAIL" and verdict.reasons == ["1 test failed"]


def test_without_a_selection_the_missing_categories_fail_as_before() -> None:
    verdict = build_verdict(quick(), state(), settings(), NOW, env={})
    assert verdict.status == "FAIL" and verdict.scope == "full"
    assert verdict.reasons == [f"category {c} did not run (no tests)" for c in EXPENSIVE]


def test_a_category_that_ran_counts_as_selected() -> None:
    # The caller's list is not trusted over what ran: storage ran and failed, so it fails.
    failed = CheckOutcome("s.py::sha", "storage", "failed", ["sha256 differs"])
    verdict = build_verdict(
        passing([failed]), state(), settings(), NOW, env={}, not_selected=["storage"]
    )
    assert verdict.status == "FAIL" and verdict.scope == "full"
    assert not any("not selected" in t for t in verdict.not_tested)


def test_deselecting_every_category_is_not_a_pass() -> None:
    custom = [CheckOutcome("u.py::mine", "custom", "passed")]
    verdict = build_verdict(custom, state(), settings(), NOW, env={}, not_selected=CATEGORIES)
    assert verdict.status == "FAIL"
    assert verdict.reasons == ["none of the 8 categories was selected"]
    nothing = build_verdict([], state(), settings(), NOW, env={}, not_selected=CATEGORIES)
    assert nothing.status == "FAIL" and nothing.reason == "no smoke tests ran"


def test_a_category_not_selected_shows_as_a_dash_not_as_not_run() -> None:
    empty = CategoryCounts()
    assert category_status(empty) == "NOT RUN"
    assert category_status(empty, selected=False) == "-"
    assert category_status(CategoryCounts(failed=1), selected=False) == "FAIL"


def test_a_backup_without_storage_passes_the_storage_category_and_says_why() -> None:
    """No bucket in the backup: the storage tests all skip, the category passes (vacuously)
    and the run is a proven restore; with a bucket, the same skips fail the run."""
    skipped = CheckOutcome("s.py::test_bucket[none]", "storage", "skipped", skip_reason="none")
    outcomes = [o for o in passing() if o.category != "storage"] + [skipped]
    why = "the source has no Storage buckets (storage.buckets is empty)"
    verdict = build_verdict(
        outcomes, state(not_applicable={"storage": why}), settings(), NOW, env={}
    )
    assert verdict.status == "PASS" and verdict.proven, verdict.reasons
    assert verdict.category_result("storage") == "PASS"
    assert f"storage: nothing to restore: {why}" in verdict.not_tested
    assert "nothing to check in storage" in verdict.reason
    # The same skips with buckets in the backup are no proof: FAIL, storage NOT RUN.
    failing = build_verdict(outcomes, state(), settings(), NOW, env={})
    assert failing.status == "FAIL" and failing.category_result("storage") == "NOT RUN"
    # A storage check that failed is a failure, whatever the backup holds.
    broken = CheckOutcome("s.py::test_bucket[x]", "storage", "failed", ["differs"])
    verdict = build_verdict(
        [*outcomes, broken], state(not_applicable={"storage": why}), settings(), NOW, env={}
    )
    assert verdict.status == "FAIL" and verdict.category_result("storage") == "FAIL"


def test_what_is_cut_short_names_the_json_summary_only_when_one_is_written() -> None:
    """The job summary and the issue comment list 50 failures; "see the JSON summary" only
    when --supabase-summary-json writes one."""
    from pytest_supabase_restore.notify.job_summary import markdown

    many = [CheckOutcome(f"t.py::f{i}", "storage", "failed", ["bad"]) for i in range(60)]
    verdict = build_verdict(passing(many), state(), settings(), NOW, env={})
    plain = markdown(verdict)
    assert "- … and 10 more\n" in plain and "JSON summary" not in plain
    named = markdown(verdict, rest_in="the JSON summary")
    assert "- … and 10 more (see the JSON summary)" in named
