"""The project's Auth and Storage settings and the manual restore steps in the backup set, and
the PITR rules against the previous drill, with a local stand-in for the Supabase platform
(tests/platform_standin.py; the real Management API cannot be reached here) and a local
GitHub issues API (tests/test_notify_github.py's FakeGitHub, real HTTP)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from platform_standin import REF, TOKEN, backups_answer, standin_platform
from pytest_httpserver import HTTPServer

from pytest_supabase_restore.config import Config
from pytest_supabase_restore.connections import Connection
from pytest_supabase_restore.notify.github import post_to_github
from pytest_supabase_restore.platform_health import compare_previous, health_reasons, read_health
from pytest_supabase_restore.project_settings import differences, is_secret, redact
from pytest_supabase_restore.redact import Redactor
from pytest_supabase_restore.results import DrillState, PlatformHealth
from pytest_supabase_restore.verdict import build_verdict, platform_lines
from tests.test_notify_github import REPO, FakeGitHub
from tests.test_notify_github import TOKEN as GH_TOKEN
from tests.test_platform_branch import CUSTOM, _env

NOW = datetime.now(timezone.utc)
SMTP_PASSWORD = "smtp-Pa55-never-in-the-set"
GOOGLE_SECRET = "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et"

# Field names of AuthConfigResponse (supabase/cli pkg/api/types.gen.go) that hold secrets,
# and some beside them that do not.
SECRET_FIELDS = [
    "external_google_secret",
    "external_apple_secret",
    "hook_send_sms_secrets",
    "hook_custom_access_token_secrets",
    "nimbus_oauth_client_secret",
    "security_captcha_secret",
    "sms_messagebird_access_key",
    "sms_textlocal_api_key",
    "sms_twilio_auth_token",
    "sms_twilio_verify_auth_token",
    "sms_vonage_api_key",
    "sms_vonage_api_secret",
    "smtp_pass",
    "sms_test_otp",
]
PLAIN_FIELDS = [
    "external_google_client_id",
    "external_google_enabled",
    "hook_send_sms_uri",
    "hook_send_sms_enabled",
    "jwt_exp",
    "password_min_length",
    "security_captcha_provider",
    "sms_twilio_account_sid",
    "sms_twilio_message_service_sid",
    "smtp_host",
    "smtp_user",
    "smtp_admin_email",
    "site_url",
    "rate_limit_token_refresh",
    "sessions_timebox",
    "mailer_otp_exp",
]


def test_secret_fields_are_named_by_their_names_and_never_kept() -> None:
    """No platform involved: which settings fields hold secrets."""
    assert [f for f in SECRET_FIELDS if not is_secret(f)] == []
    assert [f for f in PLAIN_FIELDS if is_secret(f)] == []
    config = {f: "x" for f in PLAIN_FIELDS} | {"smtp_pass": SMTP_PASSWORD, "external_x_secret": ""}
    kept, set_secrets = redact(config)
    assert set(kept) == set(PLAIN_FIELDS) and SMTP_PASSWORD not in json.dumps(kept)
    assert set_secrets == ("smtp_pass",)  # the empty one was not set
    live = dict(kept, site_url="https://staging.example.com", smtp_pass="other")
    assert differences("auth", kept, live) == ["auth.site_url"]  # never a secret, by name


def _health(
    pitr: bool, earliest: str | None, latest: str | None, rule: str = "warn"
) -> PlatformHealth:
    return PlatformHealth(
        project_ref=REF, pitr_enabled=pitr, pitr_earliest=earliest, pitr_latest=latest,
        pitr_rule=rule,
    )  # fmt: skip


def test_pitr_turned_off_or_a_shorter_window_warns_or_fails_by_the_rule() -> None:
    """No platform involved: the rules against the previous drill's recorded facts."""
    before = {"pitr_enabled": True, "pitr_earliest": "2026-11-01T00:00:00+00:00",
              "pitr_latest": "2026-11-08T00:00:00+00:00"}  # fmt: skip
    off = _health(False, None, None)
    compare_previous(off, "2026-11-08T01:00:00Z", before)
    assert off.warnings == [
        "platform backups: point-in-time recovery was on at the previous drill "
        "(2026-11-08T01:00:00Z) and is off now"
    ]
    assert health_reasons(off) == []  # warn: said, not a FAIL
    assert health_reasons(replace(off, pitr_rule="fail")) == off.warnings
    shorter = _health(True, "2026-11-30T00:00:00+00:00", "2026-12-02T00:00:00+00:00", "fail")
    compare_previous(shorter, "2026-11-08", before)
    assert shorter.warnings == [
        "platform backups: the point-in-time recovery window is 48.0 h, 168.0 h at the "
        "previous drill (2026-11-08)"
    ]
    assert health_reasons(shorter) == shorter.warnings
    same = _health(True, "2026-11-25T00:00:00+00:00", "2026-12-02T00:30:00+00:00")
    compare_previous(same, "2026-11-08", before)  # the window moved on, not shorter
    ignored = _health(False, None, None, "off")
    compare_previous(ignored, "2026-11-08", before)
    assert same.warnings == [] and ignored.warnings == []


def _settings(api_url: str, github: FakeGitHub, rule: str) -> Config:
    return Config(
        enabled=True,
        access_token=TOKEN,
        management_api_url=api_url,
        source=Connection(api_url=f"https://{REF}.supabase.co"),
        github_issue=True,
        github_token=GH_TOKEN,
        github_repository=REPO,
        github_api_url=github.url,
        pitr_rule=rule,
    )


def test_pitr_turned_off_since_the_tracking_issues_last_drill_fails_with_the_rule(
    httpserver: HTTPServer,
) -> None:
    """Stands in for the platform (backups) and for GitHub (the tracking issue): a drill
    with PITR on is recorded in the issue's history; at the next drill PITR is off. With
    --supabase-pitr-rule=fail that is a FAIL reason naming the previous drill; with the
    default (warn) it is said in the platform section only."""
    github = FakeGitHub(httpserver)
    redactor = Redactor([TOKEN, GH_TOKEN])
    with standin_platform(backups=backups_answer(NOW - timedelta(hours=2), pitr=True)) as api:
        first = read_health(_settings(api.url, github, "fail"), NOW)
        assert first is not None and first.pitr_enabled and first.warnings == []
        verdict = build_verdict(
            [], DrillState(enabled=True, platform=first), _settings(api.url, github, "fail"), NOW
        )
        post_to_github(verdict, _settings(api.url, github, "fail"), redactor)
        api.backups = backups_answer(NOW - timedelta(hours=1), pitr=False)
        strict = read_health(_settings(api.url, github, "fail"), NOW)
        lenient = read_health(_settings(api.url, github, "warn"), NOW)
    assert strict is not None and lenient is not None
    (stored,) = github.issues.values()
    assert '"pitr_enabled":true' in stored["body"]  # the history keeps the fact, not a secret
    assert TOKEN not in stored["body"]
    failed = build_verdict(
        [], DrillState(enabled=True, platform=strict), _settings("x", github, "fail"), NOW
    )
    assert failed.status == "FAIL"
    assert any("was on at the previous drill" in r for r in failed.reasons), failed.reasons
    warned = build_verdict(
        [], DrillState(enabled=True, platform=lenient), _settings("x", github, "warn"), NOW
    )
    assert not [r for r in warned.reasons if "previous drill" in r]
    assert any("was on at the previous drill" in line for line in platform_lines(warned))


def test_settings_and_manual_steps_round_trip_through_the_backup_set(tmp_path: Path) -> None:
    """Stands in for the platform: a project with an SMTP password and a Google secret set,
    two Edge Function secrets, a custom domain and network restrictions. The set holds the
    Auth and Storage settings without any secret value, with their SHA-256 checked by the
    integrity check; the verdict's platform section lists what a restore does by hand; a
    changed settings file fails a later --supabase-from-backup run naming it."""
    sets = tmp_path / "sets"
    common = ["--no-supabase-builtin-tests", "test_custom.py", "-p", "no:cacheprovider"]
    (tmp_path / "test_custom.py").write_text(CUSTOM)
    with standin_platform(backups=backups_answer(NOW - timedelta(hours=2))) as api:
        api.auth_config.update(
            smtp_host="smtp.example.com", smtp_pass=SMTP_PASSWORD,
            external_google_enabled=True, external_google_secret=GOOGLE_SECRET,
        )  # fmt: skip
        api.secret_names = ["STRIPE_KEY", "OPENAI_API_KEY"]
        api.custom_hostname = "api.example.com"
        api.allowed_cidrs = ["203.0.113.0/24"]
        env = _env(api, tmp_path)
        first = subprocess.run(
            [sys.executable, "-m", "pytest", "--supabase-restore", "--supabase-demo",
             "--supabase-backup-dir", str(sets), "--supabase-summary-json",
             str(tmp_path / "first.json"), *common],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        (set_dir,) = [p for p in sets.iterdir() if p.is_dir()]
        manifest = json.loads((set_dir / "manifest.json").read_text())
        entries = {e["section"]: e for e in manifest["project_settings"]}
        auth = json.loads((set_dir / "settings" / "auth.json").read_text())
        tampered = set_dir / "settings" / "storage.json"
        tampered.write_text(tampered.read_text().replace("52428800", "1"))
        second = subprocess.run(
            [sys.executable, "-m", "pytest", "--supabase-restore", "--supabase-from-backup",
             str(set_dir), "--supabase-summary-json", str(tmp_path / "again.json"), *common],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    assert set(entries) == {"auth", "storage"}, first.stdout[-3000:]
    assert entries["auth"]["secrets_set"] == ["external_google_secret", "smtp_pass"]
    assert auth["smtp_host"] == "smtp.example.com" and "smtp_pass" not in auth
    for path in [p for p in set_dir.rglob("*") if p.is_file()]:
        raw = path.read_bytes()
        assert SMTP_PASSWORD.encode() not in raw and GOOGLE_SECRET.encode() not in raw, path
    steps = manifest["manual_restore"]
    assert steps[0] == (
        "auth settings: set 2 secret(s) again (never exported): external_google_secret, smtp_pass"
    )
    assert any("Edge Function secrets: set 2 again" in s and "STRIPE_KEY" in s for s in steps)
    assert any(s.startswith("custom domain api.example.com") for s in steps)
    assert any("1 allowed CIDR range(s)" in s for s in steps)
    data = json.loads((tmp_path / "first.json").read_text())
    lines = data["platform"]["lines"]
    assert sum(line.startswith("to do by hand after a full restore: ") for line in lines) == 4
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["status"] == "FAIL"
    assert any("settings/storage.json" in r for r in again["reasons"]), again["reasons"]
    outputs = first.stdout + first.stderr + second.stdout + second.stderr
    for secret in (TOKEN, SMTP_PASSWORD, GOOGLE_SECRET):
        assert secret not in outputs
        for path in [p for p in tmp_path.glob("*.json")]:
            assert secret not in path.read_text(), path


def test_a_token_that_may_not_read_a_part_says_so_in_the_manual_steps(tmp_path: Path) -> None:
    """Stands in for the platform: the token may not list the Edge Function secrets (403).
    The export goes on; the manual steps say that part could not be read."""
    from pytest_supabase_restore.management import ManagementApi
    from pytest_supabase_restore.project_settings import export_settings, manual_steps

    with standin_platform() as api:
        api.forbidden = {"/secrets"}
        client = ManagementApi(TOKEN, api.url, REF)
        settings = export_settings(client, tmp_path)
        steps = manual_steps(client, settings)
    assert [e.section for e in settings] == ["auth", "storage"]
    assert (tmp_path / "settings" / "auth.json").stat().st_mode & 0o777 == 0o600
    (step,) = steps
    assert step.startswith("Edge Function secrets: could not be listed (")
    assert "HTTP 403" in step and TOKEN not in step


def test_the_branch_names_the_settings_and_functions_it_runs_differently(tmp_path: Path) -> None:
    """Stands in for the platform: the source project has its own site URL, a shorter JWT
    expiry and an Edge Function; a new branch has a new project's settings and no function
    deployed. The drill restores into the branch, compares, and names each difference (field
    names and slugs only, never values) in the platform section; the branch is deleted."""
    from tests.test_platform_branch import _run

    with standin_platform(
        backups=backups_answer(NOW - timedelta(hours=2)), functions={"hello": b"ESZIP2 hello"}
    ) as api:
        api.auth_config.update(site_url="https://shop.example.com", jwt_exp=900)
        api.storage_config = dict(api.storage_config, fileSizeLimit=10_485_760)
        out = _run(api, tmp_path)
        (branch,) = api.branches.values()
    data = json.loads((tmp_path / "summary.json").read_text())
    found = data["platform"]["branch_differences"]
    assert found == [
        "auth settings differ in 2 field(s): auth.jwt_exp, auth.site_url",
        "storage settings differ in 1 field(s): storage.fileSizeLimit",
        "Edge Function hello: not deployed on the branch",
    ], out[-3000:]
    assert branch.deleted
    lines = data["platform"]["lines"]
    assert (
        "the branch differs from the backup: Edge Function hello: not deployed on the branch"
        in lines
    )
    assert "https://shop.example.com" not in json.dumps(found)
    assert TOKEN not in out
