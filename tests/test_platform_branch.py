"""--supabase-staging=branch: a disposable branch of the project for each drill, against a
local stand-in for the Supabase platform (tests/platform_standin.py; the real Management
API cannot be reached here). Each run is a real ``pytest`` process with the demo project as
the source; each branch database is a real local PostgreSQL cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from platform_standin import REF, TOKEN, StandInPlatform, backups_answer, standin_platform

CUSTOM = (
    "import psycopg, pytest\n\n@pytest.mark.supabase_category('custom')\n"
    "def test_staging(staging_dsn):\n"
    "    with psycopg.connect(staging_dsn) as conn:\n"
    "        assert conn.execute('SELECT count(*) FROM auth.users').fetchone()[0] > 0\n"
)
# All the source project is ever asked: its backups, functions, settings, secret names, custom
# domain and network restrictions (all read), and to create a branch.
SOURCE_PATHS = (
    "/database/backups",
    "/branches",
    "/functions",
    "/config/auth",
    "/config/storage",
    "/secrets",
    "/custom-hostname",
    "/network-restrictions",
)


def _env(api: StandInPlatform, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE", "GITHUB"))}
    env.update(
        SUPABASE_ACCESS_TOKEN=TOKEN,
        SUPABASE_MANAGEMENT_API_URL=api.url,
        SUPABASE_URL=f"https://{REF}.supabase.co",
        GITHUB_STEP_SUMMARY=str(tmp_path / "job-summary.md"),
    )
    if api.api is not None:  # each branch's REST, Auth and Storage (tests/api_standin.py)
        env["SUPABASE_BRANCH_API_URL"] = api.api.template
    return env


def _args(tmp_path: Path, *extra: str, builtin: bool = False) -> list[str]:
    (tmp_path / "test_custom.py").write_text(CUSTOM)
    args = [sys.executable, "-m", "pytest", "--supabase-restore", "--supabase-demo",
            "--supabase-staging=branch", "-p", "no:cacheprovider",
            "--supabase-summary-json", str(tmp_path / "summary.json"),
            "--junitxml", str(tmp_path / "junit.xml"), *extra]  # fmt: skip
    return args if builtin else [*args, "--no-supabase-builtin-tests", "test_custom.py"]


def _run(api: StandInPlatform, tmp_path: Path, *extra: str, builtin: bool = False) -> str:
    proc = subprocess.run(
        _args(tmp_path, *extra, builtin=builtin),
        cwd=tmp_path,
        env=_env(api, tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return proc.stdout + proc.stderr


def _never_the_token(output: str, tmp_path: Path) -> None:
    artifacts = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert TOKEN not in output
    for path in artifacts:
        assert TOKEN not in path.read_text(errors="replace"), path


def _source_untouched_but_for_the_branch(api: StandInPlatform) -> None:
    """No restore, PITR or other endpoint of the source project was ever called."""
    for method, path in api.requests:
        route = path.split("?", 1)[0]
        if route.startswith(f"/v1/projects/{REF}"):
            rest = route.removeprefix(f"/v1/projects/{REF}")
            assert rest.startswith(SOURCE_PATHS), (method, path)
            assert method == "GET" or rest == "/branches", (method, path)
        assert "restore" not in route and "pitr" not in route, (method, path)


def test_a_branch_is_created_polled_restored_checked_and_deleted(tmp_path: Path) -> None:
    """Stands in for the platform: the branch is COMING_UP for two polls, then healthy; the
    full built-in drill runs against it and PASSes; the branch is deleted at the end; the
    verdict shows the platform's backups; the token is in no output or artifact."""
    with standin_platform(backups=backups_answer(datetime.now(timezone.utc))) as api:
        out = _run(api, tmp_path, builtin=True)
        (branch,) = api.branches.values()
    assert "supabase restore drill: PASS" in out, out[-4000:]
    assert branch.name.startswith("supabase-restore-drill-") and branch.deleted
    assert branch.body["persistent"] is False and branch.body["with_data"] is False
    assert f"branch {branch.name}: ACTIVE_HEALTHY after 3 poll(s)" in out
    assert ("DELETE", f"/v1/branches/{branch.id}?force=true") in api.requests
    assert ("GET", f"/v1/projects/{branch.ref}/api-keys?reveal=true") in api.requests
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["staging"] == "branch" and branch.name in data["staging_label"]
    assert data["platform"]["newest_completed_id"] == 1
    assert "Platform backups" in (tmp_path / "job-summary.md").read_text()
    _source_untouched_but_for_the_branch(api)
    _never_the_token(out, tmp_path)


def test_branching_refused_names_the_apis_reason_and_an_old_backup_fails(tmp_path: Path) -> None:
    """Stands in for the platform: POST /branches answers 402 with the API's message, and
    the newest COMPLETED backup is 30 h old with --supabase-max-backup-age 26."""
    old = datetime.now(timezone.utc) - timedelta(hours=30)
    refusal = (402, "Branching is not available on the Free plan")
    with standin_platform(backups=backups_answer(old), branching_refusal=refusal) as api:
        out = _run(api, tmp_path, "--supabase-max-backup-age", "26")
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["status"] == "FAIL" and api.branches == {}
    (refused,) = [r for r in data["reasons"] if "no branch of project" in r]
    assert "HTTP 402: Branching is not available on the Free plan" in refused
    (aged,) = [r for r in data["reasons"] if r.startswith("platform backups")]
    assert "30.0 h old" in aged and "--supabase-max-backup-age 26 h" in aged
    assert "30.0 h old" in out
    _source_untouched_but_for_the_branch(api)
    _never_the_token(out, tmp_path)


def test_a_branch_that_fails_to_come_up_fails_the_drill_and_is_deleted(tmp_path: Path) -> None:
    """Stands in for the platform: the branch settles in INIT_FAILED after one poll."""
    with standin_platform(polls_until_healthy=1, final_state="INIT_FAILED") as api:
        _run(api, tmp_path)
        (branch,) = api.branches.values()
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["status"] == "FAIL" and branch.deleted
    assert any("reached INIT_FAILED instead of ACTIVE_HEALTHY" in r for r in data["reasons"])


def _until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _interrupted(tmp_path: Path, sig: int) -> StandInPlatform:
    """Start a drill whose branch never becomes healthy, send ``sig`` once the branch
    exists, and wait until the stand-in saw it deleted."""
    with standin_platform(polls_until_healthy=10_000) as api:
        proc = subprocess.Popen(
            _args(tmp_path),
            cwd=tmp_path,
            env=_env(api, tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            _until(lambda: any(b.polls for b in api.branches.values()), 300, "the branch")
            proc.send_signal(sig)
            proc.wait(timeout=120)
            _until(lambda: not api.live_branches(), 60, "the branch's deletion")
        finally:
            if proc.poll() is None:
                proc.kill()
            assert proc.stdout is not None
            out = proc.stdout.read()
        assert TOKEN not in out
        return api


def test_ctrl_c_while_waiting_for_the_branch_deletes_it(tmp_path: Path) -> None:
    """Stands in for the platform: Ctrl-C (SIGINT) while the branch is COMING_UP."""
    api = _interrupted(tmp_path, signal.SIGINT)
    assert [m for m, p in api.requests if p.startswith("/v1/branches/")].count("DELETE") >= 1


def test_kill_9_leaves_the_deletion_to_the_watchdog(tmp_path: Path) -> None:
    """Stands in for the platform: ``kill -9`` of pytest while the branch is COMING_UP; no
    teardown runs, so the watchdog sends the DELETE it was given."""
    api = _interrupted(tmp_path, signal.SIGKILL)
    (branch,) = api.branches.values()
    assert branch.deleted


def test_a_kept_branch_is_left_and_says_how_to_delete_it(tmp_path: Path) -> None:
    """Stands in for the platform: --supabase-keep-staging keeps the branch after the
    process ended (neither teardown nor the watchdog deletes it)."""
    with standin_platform() as api:
        out = _run(api, tmp_path, "--supabase-keep-staging")
        time.sleep(2)  # the watchdog has seen the pipe close by now
        (branch,) = api.branches.values()
        assert not branch.deleted, out[-3000:]
    assert f"delete branch {branch.name} ({branch.ref})" in out
    assert api.api is not None
    assert f"APIs are at {api.api.template.replace('{ref}', branch.ref)}." in out
    assert branch.password not in out and TOKEN not in out


def test_sigterm_while_waiting_for_the_branch_deletes_it(tmp_path: Path) -> None:
    """Stands in for the platform: SIGTERM (a CI job cancelled) while the branch is COMING_UP."""
    api = _interrupted(tmp_path, signal.SIGTERM)
    (branch,) = api.branches.values()
    assert branch.deleted


def test_the_time_limit_stops_the_wait_and_deletes_the_branch(tmp_path: Path) -> None:
    """Stands in for the platform: the branch never becomes healthy, and the drill's time
    limit (--supabase-drill-timeout) ends the wait: FAIL, and the branch is deleted."""
    with standin_platform(polls_until_healthy=10_000) as api:
        _run(api, tmp_path, "--supabase-drill-timeout", "45")
        (branch,) = api.branches.values()
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["status"] == "FAIL" and branch.deleted and branch.polls > 1


def test_edge_function_bundles_round_trip_through_the_backup_set(tmp_path: Path) -> None:
    """Stands in for the platform: two deployed Edge Functions. Their bundles are exported
    into the set with their SHA-256, checked by the integrity check, and a
    changed bundle fails a later --supabase-from-backup run naming its file."""
    import hashlib

    bundles = {"hello-world": b"ESZIP2\x00hello" * 100, "send_mail": os.urandom(5000)}
    sets = tmp_path / "sets"
    common = ["--no-supabase-builtin-tests", "test_custom.py", "-p", "no:cacheprovider"]
    with standin_platform(functions=bundles) as api:
        env = _env(api, tmp_path)
        (tmp_path / "test_custom.py").write_text(CUSTOM)
        first = subprocess.run(
            [sys.executable, "-m", "pytest", "--supabase-restore", "--supabase-demo",
             "--supabase-backup-dir", str(sets), *common],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        # Only the custom test ran, so the verdict is FAIL; the set is what is looked at.
        (set_dir,) = [p for p in sets.iterdir() if p.is_dir()]
        manifest = json.loads((set_dir / "manifest.json").read_text())
        listed = {f["slug"]: f for f in manifest["functions"]}
        assert set(listed) == set(bundles)
        for slug, body in bundles.items():
            entry = listed[slug]
            assert entry["sha256"] == hashlib.sha256(body).hexdigest()
            assert manifest["files"][entry["file"]]["sha256"] == entry["sha256"]
            assert (set_dir / entry["file"]).read_bytes() == body
        (set_dir / "functions" / "send_mail.bundle").write_bytes(b"changed")
        second = subprocess.run(
            [sys.executable, "-m", "pytest", "--supabase-restore", "--supabase-from-backup",
             str(set_dir), "--supabase-summary-json", str(tmp_path / "again.json"), *common],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    data = json.loads((tmp_path / "again.json").read_text())
    assert data["status"] == "FAIL"
    assert any("functions/send_mail.bundle" in r for r in data["reasons"]), data["reasons"]
    assert TOKEN not in first.stdout + first.stderr + second.stdout + second.stderr


def test_a_create_whose_answer_is_lost_is_not_retried_and_its_branch_is_deleted(
    tmp_path: Path,
) -> None:
    """Stands in for the platform: POST /branches makes the branch, then answers 500. The
    drill does not retry (a second branch would be made), finds the branch by its name,
    deletes it and FAILs naming the API's answer."""
    with standin_platform(fail_after_create=True) as api:
        out = _run(api, tmp_path)
        (branch,) = api.branches.values()
    posts = [p for m, p in api.requests if m == "POST"]
    assert len(posts) == 1 and branch.deleted
    assert ("GET", f"/v1/projects/{REF}/branches") in api.requests
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["status"] == "FAIL"
    assert "no branch of project" in out and "last: HTTP 500" in out, out[-3000:]
