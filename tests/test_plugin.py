"""The plugin's activation and configuration, through pytest itself (pytester)."""

from __future__ import annotations

import pytest

from pytest_supabase_restore.config import OPTIONS, resolve
from pytest_supabase_restore.connections import mask_url

SMOKE = """
import pytest

@pytest.mark.supabase_category("storage")
def test_marked():
    pass

def test_uses_fixture(staging_dsn):
    pass

def test_plain():
    pass
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for opt in OPTIONS:
        if opt.env:
            monkeypatch.delenv(opt.env, raising=False)
    for name in ("SUPABASE_DB_URL", "STAGING_DB_URL", "GITHUB_TOKEN", "SLACK_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)


def test_without_flag_drill_tests_are_skipped_naming_the_flag(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SMOKE)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*--supabase-restore*"])


def test_help_lists_every_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    for opt in OPTIONS:
        result.stdout.fnmatch_lines([f"*{opt.flag}*"])


def test_help_works_with_broken_configuration(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nsupabase_demo_scale = lots\n")
    assert pytester.runpytest("--help").ret == 0


def test_missing_source_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--supabase-restore")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*SUPABASE_DB_URL*--supabase-demo*"])


@pytest.mark.parametrize(
    ("args", "env", "ini", "expected"),
    [
        (
            ["--supabase-demo-scale=3"],
            {"SUPABASE_RESTORE_DEMO_SCALE": "5"},
            "7",
            "demo_scale=3 (command line)",
        ),
        (
            [],
            {"SUPABASE_RESTORE_DEMO_SCALE": "5"},
            "7",
            "demo_scale=5 (env SUPABASE_RESTORE_DEMO_SCALE)",
        ),
        ([], {}, "7", "demo_scale=7 (ini supabase_demo_scale)"),
    ],
)
def test_precedence_cli_env_ini(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    ini: str,
    expected: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    pytester.makeini(f"[pytest]\nsupabase_demo_scale = {ini}\n")
    pytester.makeconftest(
        "def pytest_configure(config):\n"
        "    from pytest_supabase_restore.config import header_lines, resolve\n"
        "    print('HEADER', header_lines(resolve(config))[0])\n"
    )
    result = pytester.runpytest("--collect-only", *args)
    result.stdout.fnmatch_lines([f"*{expected}*"])


def test_falsy_cli_value_beats_env(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPABASE_RESTORE_BUILTIN_TESTS", "yes")
    pytester.makeconftest(
        "def pytest_configure(config):\n"
        "    from pytest_supabase_restore.config import resolve\n"
        "    print('BUILTIN', resolve(config).builtin_tests)\n"
    )
    result = pytester.runpytest("--collect-only", "--no-supabase-builtin-tests")
    result.stdout.fnmatch_lines(["BUILTIN False"])


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--supabase-restore", "--supabase-demo", "--supabase-demo-scale=-1"],
            {},
            "*demo_scale*must not be negative*",
        ),
        (
            ["--supabase-restore", "--supabase-demo", "--supabase-compression=brotli"],
            {},
            "*--supabase-compression*",
        ),
        (
            ["--supabase-restore", "--supabase-staging=url", "--supabase-demo"],
            {},
            "*STAGING_DB_URL*",
        ),
        (
            ["--supabase-restore"],
            {"SUPABASE_DB_URL": "mysql://u:hunter2secret@h/db"},
            "*postgresql://*",
        ),
        (
            ["--supabase-restore", "--supabase-demo", "--supabase-github-issue"],
            {},
            "*GITHUB_TOKEN*",
        ),
        (["--supabase-restore", "--supabase-demo", "--supabase-slack"], {}, "*SLACK_WEBHOOK_URL*"),
        (["--supabase-restore", "--supabase-from-backup=/nonexistent/x"], {}, "*does not exist*"),
        (
            ["--supabase-restore"],
            {"SUPABASE_RESTORE_DRY_RUN": "maybe", "SUPABASE_DB_URL": "postgresql://x@h/d"},
            "*env SUPABASE_RESTORE_DRY_RUN*",
        ),
    ],
)
def test_invalid_configuration_names_the_setting(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "hunter2secret" not in result.stderr.str() + result.stdout.str()


def test_header_masks_passwords(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "SUPABASE_DB_URL", "postgresql://postgres.ref:hunter2secret@db.example:5432/postgres"
    )
    pytester.makeconftest(
        "def pytest_configure(config):\n"
        "    from pytest_supabase_restore.config import header_lines, resolve\n"
        "    print('\\n'.join(header_lines(resolve(config))))\n"
    )
    result = pytester.runpytest("--collect-only")
    out = result.stdout.str()
    assert "hunter2secret" not in out
    assert "postgres.ref:***@db.example:5432/postgres" in out


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:p4ss@h:5432/d", "postgresql://u:***@h:5432/d"),
        ("postgresql://u@h/d", "postgresql://u@h/d"),
        (
            "postgresql://h/d?password=p4ss&sslmode=require",
            "postgresql://h/d?password=***&sslmode=require",
        ),
        ("host=h password=p4ss dbname=d", "host=h password=*** dbname=d"),
        (None, ""),
    ],
)
def test_mask_url(url: str | None, masked: str) -> None:
    assert mask_url(url) == masked


def test_builtin_smoke_tests_are_importable_as_a_package() -> None:
    """Users who pip-install the plugin run
    `pytest --supabase-restore --pyargs pytest_supabase_restore.smoke_tests`."""
    import pytest_supabase_restore.smoke_tests

    names = {
        p.name
        for p in __import__("pathlib")
        .Path(next(iter(pytest_supabase_restore.smoke_tests.__path__)))
        .glob("test_*.py")
    }
    assert {f"test_{c}.py" for c in __import__("pytest_supabase_restore").CATEGORIES} <= names


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--supabase-drill-timeout=nan"], "*drill_timeout*'nan'*finite number of SECONDS*"),
        (["--supabase-drill-timeout=inf"], "*drill_timeout*'inf'*finite number of SECONDS*"),
        (["--supabase-drill-timeout=-5"], "*drill_timeout*SECONDS greater than 0, or 0 for no*"),
        (["--supabase-rto-budget=nan"], "*rto_budget*finite number of SECONDS*--supabase-rto-*"),
        (["--supabase-rto-budget=inf"], "*rto_budget*finite number of SECONDS*"),
        (["--supabase-rto-budget=0"], "*rto_budget*'0'*SECONDS greater than 0)*"),
        (["--supabase-lookup-threshold-ms=-inf"], "*lookup_threshold_ms*finite number of MS*"),
        (["--supabase-lookup-threshold-ms=0"], "*lookup_threshold_ms*MS greater than 0)*"),
        (["--supabase-retain-days=NaN"], "*retain_days*finite number of DAYS*"),
        (["--supabase-compression=gzip:99"], "*--supabase-compression: gzip level 99*1 to 9*"),
        (["--supabase-compression=gzip:0"], "*--supabase-compression: gzip level 0*1 to 9*"),
        (["--supabase-compression=lz4:13"], "*--supabase-compression: lz4 level 13*1 to 12*"),
        (["--supabase-compression=zstd:23"], "*--supabase-compression: zstd level 23*1 to 22*"),
        (["--supabase-compression=zstd:-1"], "*--supabase-compression: 'zstd:-1' is not one of*"),
    ],
)
def test_time_limits_and_levels_that_could_never_work_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    """Before: nan and inf made checks that can never fail (or an INTERNALERROR in the
    timer), and gzip:99 reached pg_dump."""
    result = pytester.runpytest("--supabase-restore", "--supabase-demo", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines([message])


@pytest.mark.parametrize(
    ("env", "value", "attr", "expected"),
    [
        ("SUPABASE_RESTORE_DRILL_TIMEOUT", "0", "drill_timeout", 0.0),  # documented: no limit
        ("SUPABASE_RESTORE_RTO_BUDGET", "0.5", "rto_budget", 0.5),
        ("SUPABASE_RESTORE_LOOKUP_THRESHOLD_MS", "1e3", "lookup_threshold_ms", 1000.0),
        ("SUPABASE_RESTORE_COMPRESSION", "gzip:9", "compression", "gzip:9"),
        ("SUPABASE_RESTORE_COMPRESSION", "lz4:12", "compression", "lz4:12"),
        ("SUPABASE_RESTORE_COMPRESSION", "zstd:22", "compression", "zstd:22"),
        ("SUPABASE_RESTORE_COMPRESSION", "zstd", "compression", "zstd"),
    ],
)
def test_limits_and_levels_in_range_are_accepted(
    pytester: pytest.Pytester, env: str, value: str, attr: str, expected: object
) -> None:
    config = pytester.parseconfig()
    settings = resolve(config, {"SUPABASE_RESTORE": "1", "SUPABASE_RESTORE_DEMO": "1", env: value})
    assert getattr(settings, attr) == expected


@pytest.mark.parametrize("value", ["inf", "nan"])
def test_a_session_timeout_of_inf_or_nan_is_no_drill_time_limit(
    pytester: pytest.Pytester, value: str
) -> None:
    """pytest-timeout's --session-timeout becomes the drill's time limit; inf and nan used to
    reach the timer and end the run in an INTERNALERROR."""
    (pytester.path / "empty-set").mkdir()
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    result = pytester.runpytest(
        "--supabase-restore",
        "--supabase-from-backup=empty-set",
        "--no-supabase-builtin-tests",
        f"--session-timeout={value}",
    )
    # The drill runs without a limit and FAILs for its own reason (no manifest).
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.stdout.fnmatch_lines(["*drill failed in integrity*manifest.json: missing*"])
