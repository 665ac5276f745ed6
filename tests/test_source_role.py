"""docs/SOURCE_ROLE.md's least-privilege role, created exactly from the doc's SQL block on
the demo project (a Supabase-like PostgreSQL 15 cluster and S3 server): the whole drill runs
through its URL to a PASS, its backup set holds what the ``postgres`` role's export holds,
and the role cannot write.

The SQL runs as the demo's bootstrap superuser; on a hosted project ``postgres`` runs it,
which this machine cannot test (the doc says so)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pytest_supabase_restore import manifest
from pytest_supabase_restore.demo import DemoProject
from pytest_supabase_restore.export import ExportOptions, export

DOC = Path(__file__).resolve().parents[1] / "docs" / "SOURCE_ROLE.md"
ROLE = "backup_drill_reader"


def role_sql() -> str:
    """The doc's one ``sql`` block, as written."""
    blocks = re.findall(r"^```sql\n(.*?)^```$", DOC.read_text(encoding="utf-8"), re.S | re.M)
    assert len(blocks) == 1, "docs/SOURCE_ROLE.md holds exactly one sql block: the role"
    return str(blocks[0])


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoProject]:
    with DemoProject(scale=1) as project:
        with psycopg.connect(project.admin_url, autocommit=True) as conn:
            conn.execute(role_sql())  # type: ignore[call-overload]  # the doc's text, as is
        yield project


@pytest.fixture(scope="module")
def reader_url(demo: DemoProject) -> str:
    return demo.cluster.set_password(ROLE)


def test_the_doc_sql_makes_a_read_only_role_with_only_what_the_drill_needs(
    demo: DemoProject, reader_url: str
) -> None:
    with psycopg.connect(demo.admin_url) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication "
            "FROM pg_roles WHERE rolname = %s",
            (ROLE,),
        ).fetchone()
    assert row == (False, True, False, False, False)
    with psycopg.connect(reader_url, autocommit=True) as conn:
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        conn.execute("SET default_transaction_read_only = off")  # not the boundary: grants are
        for statement in (
            "INSERT INTO public.tags (name) VALUES ('x')",
            "UPDATE auth.users SET email = email",
            "DELETE FROM storage.objects",
            "CREATE TABLE public.drill_was_here (id int)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        # It may become anon for a count, but holds none of anon's grants as itself.
        assert conn.execute(
            "SELECT pg_has_role(current_user, 'anon', 'MEMBER'), "
            "pg_has_role(current_user, 'anon', 'USAGE')"
        ).fetchone() == (True, False)


# With pg_cron, the demo's job adds a heartbeat row every minute (and pg_cron records each
# run): two exports a minute boundary apart differ there, and only there.
CRON_WRITTEN = ("public.cron_heartbeat", "cron.job_run_details")


def _content(set_dir: Path) -> dict[str, Any]:
    """What a backup set says about the source, without what differs between two exports
    of an unchanged project (times, snapshot ids, the exporting role, file hashes, the rows
    the demo's cron job writes meanwhile)."""
    data = json.loads((set_dir / manifest.MANIFEST).read_text())
    rls = data["rls"]
    rls["visibility"] = {
        who: {t: v for t, v in seen.items() if t not in CRON_WRITTEN}
        for who, seen in rls["visibility"].items()
    }
    rls["samples"] = {t: v for t, v in rls.get("samples", {}).items() if t not in CRON_WRITTEN}
    schema = data["schema"]
    schema["sequences"] = {  # the ids those rows take
        k: v
        for k, v in schema.get("sequences", {}).items()
        if not str(v.get("owned_by") or "").startswith(CRON_WRITTEN)
    }
    return {
        "tables": {k: v for k, v in data["tables"].items() if k not in CRON_WRITTEN},
        "schema": schema,
        "rls": rls,
        "storage": data["storage"]["objects"],
        "roles": (set_dir / "roles.sql").read_text(),
    }


def test_the_whole_drill_passes_through_the_role_and_backs_up_what_postgres_does(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    demo: DemoProject,
    reader_url: str,
    tmp_path: Path,
) -> None:
    s3 = demo.s3
    for name, value in {
        "SUPABASE_DB_URL": reader_url,
        "SUPABASE_S3_ENDPOINT": s3.url,
        "SUPABASE_S3_REGION": s3.region,
        "SUPABASE_S3_ACCESS_KEY_ID": s3.access_key_id,
        "SUPABASE_S3_SECRET_ACCESS_KEY": s3.secret_access_key,
    }.items():
        monkeypatch.setenv(name, value)
    summary, sets = tmp_path / "summary.json", tmp_path / "sets"
    result = pytester.runpytest(
        "--supabase-restore",
        "--supabase-staging=ephemeral",
        f"--supabase-backup-dir={sets}",
        f"--supabase-summary-json={summary}",
        "-n",
        "2",
        "-p",
        "no:cacheprovider",
    )
    verdict = json.loads(summary.read_text())
    assert verdict["status"] == "PASS", verdict["reason"] + "\n" + result.stdout.str()[-3000:]
    assert result.ret == 0
    (as_reader,) = [p for p in sets.iterdir() if (p / manifest.MANIFEST).is_file()]
    as_postgres = export(demo.db_url, tmp_path / "postgres", s3=s3, options=ExportOptions(jobs=2))
    theirs, ours = _content(as_postgres), _content(as_reader)
    assert ours["rls"]["visibility"], "the RLS counts ran as anon and as sampled users"
    for key in theirs:
        assert ours[key] == theirs[key], key


def test_without_bypassrls_the_dry_run_and_the_export_say_what_is_missing(
    demo: DemoProject, tmp_path: Path
) -> None:
    """The doc's role without BYPASSRLS: the preflight FAILs naming the tables with RLS and
    the fix, and an export stops with the same fix instead of pg_dump's bare error."""
    from pytest_supabase_restore.config import Config
    from pytest_supabase_restore.errors import SourceError
    from pytest_supabase_restore.preflight import FAIL, run_preflight

    sql = (
        role_sql()
        .replace("backup_drill_", "no_bypass_")
        .replace("  BYPASSRLS IN ROLE", "  IN ROLE")
    )
    assert "BYPASSRLS IN" not in sql
    with psycopg.connect(demo.admin_url, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[call-overload]
    url = demo.cluster.set_password("no_bypass_reader")
    config = Config(enabled=True, dry_run=True, jobs=2)
    checks = {c.check: c for c in run_preflight(config, url, None, [url])}
    rls = checks["source row-level security"]
    assert rls.status == FAIL and re.search(r"\d+ table\(s\) with RLS: auth\.", rls.result), rls
    assert "ALTER ROLE no_bypass_reader BYPASSRLS;" in rls.fix
    assert "docs/SOURCE_ROLE.md" in rls.fix
    with pytest.raises(SourceError, match="may not read every row past row-level security"):
        export(url, tmp_path / "sets", s3=None, options=ExportOptions(jobs=2))
    assert not any((tmp_path / "sets").glob("*/manifest.json"))
