"""The GitHub Actions workflows: offline lint, structure, and the drill step's own script.

The lint (``.ci/lint-workflows``) is run as is, and also against copies with a planted
defect to show it catches one. The structure tests read the YAML. The drill step's bash
script is executed for real with a stand-in ``python`` that records the command line, so
the flags each input combination produces are checked, not guessed from the text.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from pytest_supabase_restore.config import (
    BACKUP_ENV,
    OPTIONS,
    SOURCE_ENV,
    STAGING_ENV,
    STAGING_KINDS,
)

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
DRILL = WORKFLOWS / "monthly-backup-validation.yml"
CI = WORKFLOWS / "ci.yml"
LINT = ROOT / ".ci" / "lint-workflows"
RUNNER_TEMP_EXPR = "${{ runner.temp }}"

requires_linters = pytest.mark.skipif(
    not (shutil.which("check-jsonschema") and shutil.which("zizmor")),
    reason="check-jsonschema or zizmor is not installed (both are in the dev extra)",
)


def load(path: Path) -> dict[str, Any]:
    # ruamel's safe loader reads YAML 1.2, where the key `on` stays a string
    # (PyYAML would turn it into True).
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def drill() -> dict[str, Any]:
    return load(DRILL)


@pytest.fixture(scope="module")
def ci() -> dict[str, Any]:
    return load(CI)


def all_steps(workflow: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for job in workflow["jobs"].values():
        yield from job.get("steps", [])


def step_named(workflow: Mapping[str, Any], fragment: str) -> dict[str, Any]:
    matches = [s for s in all_steps(workflow) if fragment in s.get("name", "")]
    assert len(matches) == 1, f"expected one step named like {fragment!r}, found {len(matches)}"
    return matches[0]


def uploads(workflow: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        s for s in all_steps(workflow) if s.get("uses", "").startswith("actions/upload-artifact@")
    ]


def walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every scalar in a YAML document with its key path."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, str(index)))
    else:
        yield path, node


# -- the lint ------------------------------------------------------------------------------


def run_lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(root / ".ci" / "lint-workflows")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def lint_copy(tmp_path: Path) -> Path:
    """A copy of the linted files, so a test can plant a defect without touching the repo."""
    root = tmp_path / "repo"
    shutil.copytree(ROOT / ".ci", root / ".ci")
    shutil.copytree(ROOT / ".github", root / ".github")
    return root


@requires_linters
def test_lint_workflows_passes() -> None:
    result = run_lint(ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "lint-workflows: OK" in result.stdout
    # No finding of any severity: the workflows are clean, not merely below the threshold.
    assert "No findings to report" in output, output


def _can_unshare_network() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10, check=False)
    return probe.returncode == 0


@requires_linters
def test_lint_workflows_needs_no_network() -> None:
    if not _can_unshare_network():
        pytest.skip("cannot create a network namespace here (unshare -n needs root)")
    result = subprocess.run(
        ["unshare", "-n", str(LINT)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "lint-workflows: OK" in result.stdout


@requires_linters
def test_lint_fails_on_template_injection(tmp_path: Path) -> None:
    root = lint_copy(tmp_path)
    workflow = root / ".github" / "workflows" / DRILL.name
    text = workflow.read_text(encoding="utf-8")
    planted = text.replace(
        'python -m pip install "${PLUGIN_SPEC}"',
        'python -m pip install "${{ inputs.from_backup }}"',
    )
    assert planted != text
    workflow.write_text(planted, encoding="utf-8")
    result = run_lint(root)
    assert result.returncode != 0
    assert "template-injection" in result.stdout + result.stderr


@requires_linters
def test_lint_fails_on_schema_violation(tmp_path: Path) -> None:
    root = lint_copy(tmp_path)
    workflow = root / ".github" / "workflows" / CI.name
    text = workflow.read_text(encoding="utf-8")
    planted = text.replace("runs-on: ubuntu-latest", "runs_on: ubuntu-latest")
    assert planted != text
    workflow.write_text(planted, encoding="utf-8")
    result = run_lint(root)
    assert result.returncode != 0
    assert "does not match the GitHub workflow schema" in result.stderr


@requires_linters
def test_lint_warns_but_passes_below_high_severity(tmp_path: Path) -> None:
    root = lint_copy(tmp_path)
    workflow = root / ".github" / "workflows" / CI.name
    text = workflow.read_text(encoding="utf-8")
    # A checkout that keeps its credentials (the default) is a medium finding (artipacked).
    planted = text.replace("\n        with:\n          persist-credentials: false", "", 1)
    assert planted != text
    workflow.write_text(planted, encoding="utf-8")
    result = run_lint(root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "artipacked" in result.stdout
    assert "warning: zizmor reported findings below high severity" in result.stderr


# -- the monthly drill: triggers, permissions, limits ---------------------------------------


def test_monthly_schedule(drill: dict[str, Any]) -> None:
    assert drill["on"]["schedule"] == [{"cron": "0 2 1 * *"}]


def test_dispatch_inputs(drill: dict[str, Any]) -> None:
    inputs = drill["on"]["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"staging", "from_backup", "notify", "keep_backup_artifact"}
    assert inputs["staging"]["type"] == "choice"
    assert tuple(inputs["staging"]["options"]) == STAGING_KINDS
    assert inputs["staging"]["default"] == "auto"
    assert inputs["from_backup"]["type"] == "string"
    assert inputs["from_backup"].get("default", "") == ""
    assert inputs["notify"] == {**inputs["notify"], "type": "boolean", "default": True}
    assert inputs["keep_backup_artifact"] == {
        **inputs["keep_backup_artifact"],
        "type": "boolean",
        "default": False,
    }


def test_least_privilege(drill: dict[str, Any], ci: dict[str, Any]) -> None:
    for workflow in (drill, ci):
        assert workflow["permissions"] in ({}, {"contents": "read"})
        for name, job in workflow["jobs"].items():
            assert "permissions" in job, f"job {name} inherits default permissions"
    job = drill["jobs"]["drill"]
    assert job["permissions"]["contents"] == "read"
    assert job["permissions"]["issues"] == "write"
    writes = {scope for scope, level in job["permissions"].items() if level == "write"}
    assert writes == {"issues"}
    for job in ci["jobs"].values():
        assert job["permissions"] == {"contents": "read"}


def test_concurrency_never_cancels_a_drill(drill: dict[str, Any]) -> None:
    assert drill["concurrency"] == {"group": "backup-restore-drill", "cancel-in-progress": False}


def test_every_job_has_a_timeout(drill: dict[str, Any], ci: dict[str, Any]) -> None:
    for workflow in (drill, ci):
        for name, job in workflow["jobs"].items():
            minutes = job.get("timeout-minutes")
            assert isinstance(minutes, int) and 0 < minutes < 360, name


def test_checkout_does_not_persist_credentials(drill: dict[str, Any], ci: dict[str, Any]) -> None:
    for workflow in (drill, ci):
        checkouts = [
            s for s in all_steps(workflow) if s.get("uses", "").startswith("actions/checkout@")
        ]
        assert checkouts
        for step in checkouts:
            assert step["with"]["persist-credentials"] is False


PINS = ROOT / ".github" / "drill-requirements.txt"
PIN_TOOL = ROOT / ".ci" / "pin-drill-requirements"


def pinned() -> dict[str, str]:
    """Canonical name -> version of every line of the drill's requirements file."""
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    for line in PINS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and re.fullmatch(r"[\w.+!-]+", version), f"not an exact pin: {line!r}"
            pins[canonicalize_name(name)] = version
    return pins


def test_the_drill_job_installs_only_pinned_packages(drill: dict[str, Any]) -> None:
    """The job that holds the secrets resolves no dependency and upgrades nothing: every
    pip install is --no-deps, from the pinned file (wheels only) or the checkout; pip check
    proves the file is complete on the runner."""
    script = step_named(drill, "Install pytest-supabase-restore")["run"]
    installs = [ln.strip() for ln in script.splitlines() if "pip install" in ln]
    assert installs == [
        "python -m pip install --no-deps --only-binary :all: --requirement "
        ".github/drill-requirements.txt",
        'python -m pip install "${PLUGIN_SPEC}" --no-deps --no-build-isolation',
    ]
    assert "python -m pip check" in script
    assert drill["jobs"]["drill"]["env"]["PLUGIN_SPEC"].startswith(".")  # the checkout
    others = [s for s in all_steps(drill) if s.get("name") != "Install pytest-supabase-restore"]
    assert not any("pip install" in s.get("run", "") for s in others)


def test_the_pins_cover_what_the_plugin_needs() -> None:
    """Every distribution of the plugin's dependency closure (with the container extra, for
    the runner's Python) is pinned, each pin satisfies what the plugin declares, and the
    build backend is pinned for --no-build-isolation."""
    import runpy

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    tool = runpy.run_path(str(PIN_TOOL))
    pins = pinned()
    missing = sorted(set(tool["closure"]()) - set(pins))
    assert missing == [], f"not pinned (run {PIN_TOOL.relative_to(ROOT)}): {missing}"
    assert {"setuptools", "wheel"} <= set(pins)
    for raw in importlib.metadata.requires("pytest-supabase-restore") or []:
        req = Requirement(raw)
        name = canonicalize_name(req.name)
        if name in pins:
            assert req.specifier.contains(pins[name], prereleases=True), (raw, pins[name])


def test_postgres_17_client_and_server_from_pgdg(drill: dict[str, Any]) -> None:
    assert drill["jobs"]["drill"]["env"]["PG_MAJOR"] == "17"
    script = step_named(drill, "Install PostgreSQL")["run"]
    assert "apt.postgresql.org.sh" in script
    assert '"postgresql-client-${PG_MAJOR}"' in script
    assert '"postgresql-${PG_MAJOR}"' in script


# -- secrets and inputs never reach a script as text -----------------------------------------


def test_no_expression_inside_any_run_script(drill: dict[str, Any], ci: dict[str, Any]) -> None:
    for workflow in (drill, ci):
        for step in all_steps(workflow):
            script = step.get("run", "")
            assert "${{ secrets." not in script, step.get("name")
            assert "${{ inputs." not in script, step.get("name")
            # Stricter than the rule: every value reaches a script through env.
            assert "${{" not in script, step.get("name")


def test_secrets_appear_only_as_env_or_token(drill: dict[str, Any], ci: dict[str, Any]) -> None:
    for workflow in (drill, ci):
        for path, value in walk(workflow):
            if not isinstance(value, str) or "secrets." not in value:
                continue
            if path[-2] == "env":
                assert value == f"${{{{ secrets.{path[-1]} }}}}", path
            else:
                assert path[-2:] == ("with", "github-token"), path
                assert value == "${{ secrets.GITHUB_TOKEN }}"


def test_drill_step_receives_every_secret(drill: dict[str, Any]) -> None:
    env = step_named(drill, "Run the backup-restore drill")["env"]
    for name in (*SOURCE_ENV, *STAGING_ENV, *BACKUP_ENV, "SLACK_WEBHOOK_URL", "GITHUB_TOKEN"):
        assert env.get(name) == f"${{{{ secrets.{name} }}}}", name


# -- uploads ----------------------------------------------------------------------------------


def test_reports_are_uploaded_always_for_30_days(drill: dict[str, Any]) -> None:
    reports = [s for s in uploads(drill) if s["with"]["path"].rstrip("/") == "reports"]
    assert len(reports) == 1
    step = reports[0]
    assert "always()" in step["if"]
    assert step["with"]["retention-days"] == 30


def test_backup_set_upload_is_opt_in(drill: dict[str, Any]) -> None:
    others = [s for s in uploads(drill) if s["with"]["path"].rstrip("/") != "reports"]
    assert len(others) == 1
    step = others[0]
    assert "inputs.keep_backup_artifact" in step["if"]
    assert step["with"]["retention-days"] <= 30
    assert drill["on"]["workflow_dispatch"]["inputs"]["keep_backup_artifact"]["default"] is False


# -- the drill step's script, executed -----------------------------------------------------

FAKE_PYTHON = """#!/bin/sh
# Stands in for the real interpreter: records where and with what it was called.
pwd > "$ARGS_FILE"
for arg in "$@"; do printf '%s\\n' "$arg" >> "$ARGS_FILE"; done
"""


class StepRunner:
    """Runs one step's ``run:`` script the way Actions does (bash -eo pipefail, env: set)."""

    def __init__(self, tmp_path: Path, step: Mapping[str, Any]) -> None:
        self.step = step
        self.workspace = tmp_path / "workspace"
        self.runner_temp = tmp_path / "runner-temp"
        self.bin = tmp_path / "bin"
        self.args_file = tmp_path / "python-args"
        self.output_file = tmp_path / "github-output"
        for d in (self.workspace, self.runner_temp, self.bin):
            d.mkdir()
        python = self.bin / "python"
        python.write_text(FAKE_PYTHON, encoding="utf-8")
        python.chmod(python.stat().st_mode | stat.S_IXUSR)
        self.output_file.touch()

    def run(
        self, runner: Mapping[str, str] | None = None, **values: str
    ) -> subprocess.CompletedProcess[str]:
        """``values``: the step's env: keys; ``runner``: variables the runner itself sets
        (GITHUB_API_URL, GITHUB_REPOSITORY, GITHUB_WORKFLOW_REF ...)."""
        unknown = set(values) - set(self.step["env"])
        assert not unknown, f"not in the step's env: {unknown}"
        env = {
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(self.workspace),
            "GITHUB_WORKSPACE": str(self.workspace),
            "RUNNER_TEMP": str(self.runner_temp),
            "GITHUB_OUTPUT": str(self.output_file),
            "ARGS_FILE": str(self.args_file),
            **(runner or {}),
        }
        # Actions sets every env: key; an absent secret or input becomes "".
        env.update({key: values.get(key, "") for key in self.step["env"]})
        script = self.workspace.parent / "step.sh"
        script.write_text(self.step["run"], encoding="utf-8")
        return subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=self.workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def pytest_call(self, **values: str) -> tuple[Path, list[str]]:
        result = self.run(**values)
        assert result.returncode == 0, result.stdout + result.stderr
        cwd, *args = self.args_file.read_text(encoding="utf-8").splitlines()
        assert args[:2] == ["-m", "pytest"]
        return Path(cwd), args[2:]


@pytest.fixture
def drill_step(tmp_path: Path, drill: dict[str, Any]) -> StepRunner:
    return StepRunner(tmp_path, step_named(drill, "Run the backup-restore drill"))


def value_after(args: list[str], flag: str) -> str:
    assert flag in args, f"{flag} not in {args}"
    return args[args.index(flag) + 1]


def test_drill_defaults(drill_step: StepRunner) -> None:
    cwd, args = drill_step.pytest_call(DRILL_STAGING="auto", DRILL_NOTIFY="true")
    reports = drill_step.workspace / "reports"
    assert reports.is_dir()
    # Outside the checkout, so the repository's own test suite is not collected.
    assert cwd == drill_step.runner_temp / "drill"
    assert "--supabase-restore" in args
    assert value_after(args, "-n") == "auto"
    assert value_after(args, "--supabase-staging") == "auto"
    assert value_after(args, "--html") == str(reports / "drill.html")
    assert "--self-contained-html" in args
    assert value_after(args, "--junitxml") == str(reports / "junit.xml")
    assert value_after(args, "--supabase-summary-json") == str(reports / "summary.json")
    assert "--supabase-github-issue" in args
    assert "--supabase-slack" not in args  # no webhook configured
    assert "--supabase-backup-dir" not in args  # the set stays in a temporary directory
    assert "--supabase-from-backup" not in args


def test_drill_uses_only_flags_the_plugin_defines(drill_step: StepRunner) -> None:
    _, args = drill_step.pytest_call(
        DRILL_STAGING="url",
        DRILL_NOTIFY="true",
        DRILL_KEEP_BACKUP="true",
        SLACK_WEBHOOK_URL="https://example.invalid/hook",
    )
    defined = {opt.flag for opt in OPTIONS}
    used = {arg for arg in args if arg.startswith("--supabase-")}
    assert used - defined == set()
    assert value_after(args, "--supabase-staging") in STAGING_KINDS


@pytest.mark.parametrize(
    ("notify", "slack", "expected"),
    [
        ("true", "", {"--supabase-github-issue"}),
        ("true", "https://example.invalid/hook", {"--supabase-github-issue", "--supabase-slack"}),
        ("false", "https://example.invalid/hook", set()),
        ("false", "", set()),
    ],
)
def test_drill_notification_flags(
    drill_step: StepRunner, notify: str, slack: str, expected: set[str]
) -> None:
    _, args = drill_step.pytest_call(
        DRILL_STAGING="auto", DRILL_NOTIFY=notify, SLACK_WEBHOOK_URL=slack
    )
    assert {a for a in args if a in ("--supabase-github-issue", "--supabase-slack")} == expected


def test_drill_keeps_the_backup_set_where_the_upload_looks(
    drill_step: StepRunner, drill: dict[str, Any]
) -> None:
    _, args = drill_step.pytest_call(DRILL_STAGING="auto", DRILL_KEEP_BACKUP="true")
    (backup_upload,) = [s for s in uploads(drill) if s["with"]["path"].rstrip("/") != "reports"]
    upload_path = backup_upload["with"]["path"].replace(
        RUNNER_TEMP_EXPR, str(drill_step.runner_temp)
    )
    assert Path(value_after(args, "--supabase-backup-dir")) == Path(upload_path)


def test_drill_from_a_path_in_the_checkout(drill_step: StepRunner) -> None:
    backup = drill_step.workspace / "backups" / "20260101T020000Z"
    backup.mkdir(parents=True)
    _, args = drill_step.pytest_call(
        DRILL_STAGING="auto",
        DRILL_FROM_BACKUP="./backups/20260101T020000Z",
        DRILL_KEEP_BACKUP="true",
    )
    # pytest runs in another directory: the path must arrive absolute.
    assert value_after(args, "--supabase-from-backup") == str(backup.resolve())
    assert "--supabase-backup-dir" not in args  # nothing new is exported


def test_drill_from_an_artifact_of_an_earlier_run(
    drill_step: StepRunner, drill: dict[str, Any]
) -> None:
    download = step_named(drill, "Download the backup-set artifact")
    target = Path(download["with"]["path"].replace(RUNNER_TEMP_EXPR, str(drill_step.runner_temp)))
    backup = target / "20260101T020000Z"
    backup.mkdir(parents=True)
    (backup / "manifest.json").write_text("{}", encoding="utf-8")
    _, args = drill_step.pytest_call(DRILL_STAGING="auto", DRILL_FROM_RUN="123")
    assert value_after(args, "--supabase-from-backup") == str(backup.resolve())


def test_drill_refuses_an_artifact_without_manifest(
    drill_step: StepRunner, drill: dict[str, Any]
) -> None:
    download = step_named(drill, "Download the backup-set artifact")
    Path(download["with"]["path"].replace(RUNNER_TEMP_EXPR, str(drill_step.runner_temp))).mkdir()
    result = drill_step.run(DRILL_STAGING="auto", DRILL_FROM_RUN="123")
    assert result.returncode != 0
    assert "no manifest.json" in result.stdout
    assert not drill_step.args_file.exists()


def test_drill_runs_the_users_own_tests(drill_step: StepRunner) -> None:
    for name in ("drill_tests", "more_tests"):
        (drill_step.workspace / name).mkdir()
    _, args = drill_step.pytest_call(DRILL_STAGING="auto", DRILL_TESTS="drill_tests more_tests")
    assert args[-2:] == [
        str((drill_step.workspace / "drill_tests").resolve()),
        str((drill_step.workspace / "more_tests").resolve()),
    ]


def test_drill_env_comes_from_inputs_and_steps(drill: dict[str, Any]) -> None:
    env = step_named(drill, "Run the backup-restore drill")["env"]
    assert env["DRILL_STAGING"] == "${{ inputs.staging || 'auto' }}"
    assert env["DRILL_FROM_BACKUP"] == "${{ inputs.from_backup }}"
    assert env["DRILL_FROM_RUN"] == "${{ steps.trusted.outputs.run_id }}"
    assert "inputs.notify" in env["DRILL_NOTIFY"]
    assert "github.event_name == 'schedule'" in env["DRILL_NOTIFY"]  # scheduled runs notify
    assert "inputs.keep_backup_artifact" in env["DRILL_KEEP_BACKUP"]
    source = step_named(drill, "Resolve the backup to validate")
    assert source["id"] == "source"
    assert source["env"] == {"FROM_BACKUP": "${{ inputs.from_backup }}"}
    trusted = step_named(drill, "Check that the run is")
    assert trusted["id"] == "trusted"
    assert trusted["if"] == "steps.source.outputs.run_id != ''"
    assert trusted["env"]["RUN_ID"] == "${{ steps.source.outputs.run_id }}"
    assert trusted["env"]["DEFAULT_BRANCH"] == "${{ github.event.repository.default_branch }}"
    # Only a run the guard accepted is downloaded, and only after the guard.
    download = step_named(drill, "Download the backup-set artifact")
    assert download["if"] == "steps.trusted.outputs.run_id != ''"
    assert download["with"]["run-id"] == "${{ steps.trusted.outputs.run_id }}"
    steps = drill["jobs"]["drill"]["steps"]
    assert steps.index(source) < steps.index(trusted) < steps.index(download)


@pytest.fixture
def source_step(tmp_path: Path, drill: dict[str, Any]) -> StepRunner:
    return StepRunner(tmp_path, step_named(drill, "Resolve the backup to validate"))


def test_resolve_step_accepts_export_and_paths(source_step: StepRunner) -> None:
    assert source_step.run(FROM_BACKUP="").returncode == 0
    (source_step.workspace / "backups").mkdir()
    assert source_step.run(FROM_BACKUP="backups").returncode == 0
    assert source_step.output_file.read_text(encoding="utf-8") == ""


def test_resolve_step_passes_on_a_run_id(source_step: StepRunner) -> None:
    result = source_step.run(FROM_BACKUP="run:8123456789")
    assert result.returncode == 0, result.stdout + result.stderr
    assert source_step.output_file.read_text(encoding="utf-8") == "run_id=8123456789\n"


@pytest.mark.parametrize("value", ["run:", "run:12; touch pwned", "run:$(id)", "no/such/dir"])
def test_resolve_step_refuses_bad_values(source_step: StepRunner, value: str) -> None:
    result = source_step.run(FROM_BACKUP=value)
    assert result.returncode != 0
    assert "::error::" in result.stdout
    assert source_step.output_file.read_text(encoding="utf-8") == ""
    assert not (source_step.workspace / "pwned").exists()


# -- the guard before an artifact of another run is downloaded -------------------------------
# The step's script runs for real against a local HTTP server standing in for the GitHub API
# (pytest-httpserver), with the variables the runner sets.

GUARD_REPO = "octo-org/backups"
GUARD_WORKFLOW = ".github/workflows/monthly-backup-validation.yml"
GUARD_TOKEN = "ghs_token-of-the-guard-tests-4711"
GUARD_RUN = f"/repos/{GUARD_REPO}/actions/runs/8123456789"


def drill_run(**changes: Any) -> dict[str, Any]:
    """The API's answer for a scheduled run of the drill on main, with ``changes``."""
    run: dict[str, Any] = {
        "id": 8123456789,
        "event": "schedule",
        "head_branch": "main",
        "path": GUARD_WORKFLOW,
        "status": "completed",
        "conclusion": "success",
        "repository": {"full_name": GUARD_REPO},
        "head_repository": {"full_name": GUARD_REPO},
    }
    run.update(changes)
    return run


@pytest.fixture
def guard(tmp_path: Path, drill: dict[str, Any], httpserver: Any) -> Any:
    runner = StepRunner(tmp_path, step_named(drill, "Check that the run is"))

    def check(answer: Any, status: int = 200) -> subprocess.CompletedProcess[str]:
        httpserver.expect_request(
            GUARD_RUN,
            method="GET",
            headers={"Authorization": f"Bearer {GUARD_TOKEN}"},
        ).respond_with_json(answer, status=status)
        return runner.run(
            runner={
                "GITHUB_API_URL": httpserver.url_for("/").rstrip("/"),
                "GITHUB_REPOSITORY": GUARD_REPO,
                "GITHUB_WORKFLOW_REF": f"{GUARD_REPO}/{GUARD_WORKFLOW}@refs/heads/main",
            },
            GITHUB_TOKEN=GUARD_TOKEN,
            RUN_ID="8123456789",
            DEFAULT_BRANCH="main",
        )

    check.output = runner.output_file  # type: ignore[attr-defined]
    return check


@pytest.mark.parametrize(
    "run",
    [
        drill_run(),
        drill_run(event="workflow_dispatch"),
        drill_run(conclusion="failure"),  # a FAIL verdict: re-validating it is the point
        drill_run(path=f"{GUARD_WORKFLOW}@refs/heads/main"),
    ],
    ids=["schedule", "dispatch", "failed-drill", "path-with-ref"],
)
def test_guard_accepts_the_drills_own_runs_on_the_default_branch(
    guard: Any, run: dict[str, Any]
) -> None:
    result = guard(run)
    assert result.returncode == 0, result.stdout + result.stderr
    assert guard.output.read_text(encoding="utf-8") == "run_id=8123456789\n"
    assert GUARD_TOKEN not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("run", "reason"),
    [
        (drill_run(event="pull_request", head_branch="evil"), "started by pull_request"),
        (drill_run(event="pull_request_target"), "started by pull_request_target"),
        (drill_run(event="push"), "started by push"),
        (drill_run(event="workflow_dispatch", head_branch="feature"), "ran on feature, not on"),
        (drill_run(path=".github/workflows/ci.yml"), "ran .github/workflows/ci.yml, not"),
        (
            drill_run(head_repository={"full_name": "fork-owner/backups"}),
            "its code came from fork-owner/backups",
        ),
        (drill_run(status="in_progress", conclusion=None), "has not completed"),
        (drill_run(conclusion="cancelled"), "did not run to its end (conclusion cancelled)"),
        ({"message": "Not Found"}, "started by null"),
        ("not json at all {", "the API answer is not a workflow run"),
    ],
)
def test_guard_refuses_any_other_run(guard: Any, run: Any, reason: str) -> None:
    result = guard(run)
    assert result.returncode != 0
    assert result.stdout.startswith(
        "::error::from_backup: the artifact of run 8123456789 is refused: "
    ), result.stdout + result.stderr
    assert reason in result.stdout
    assert guard.output.read_text(encoding="utf-8") == ""


def test_guard_refuses_a_run_the_api_does_not_know(guard: Any) -> None:
    result = guard({"message": "Not Found"}, status=404)
    assert result.returncode != 0
    assert "cannot be read from the GitHub API" in result.stdout
    assert guard.output.read_text(encoding="utf-8") == ""


def test_guard_output_cannot_carry_workflow_commands(guard: Any) -> None:
    """The refused run's fields are an attacker's text: shown, but never as a command."""
    result = guard(drill_run(event="workflow_dispatch", head_branch="x::set-env name=A::%0Ab"))
    assert result.returncode != 0
    assert result.stdout.count("::") == 2  # only the ::error:: of the guard itself
    assert "ran on x??set-env name?A???0Ab, not on the default branch main" in result.stdout


# -- the project's CI -----------------------------------------------------------------------


def test_ci_triggers_and_matrix(ci: dict[str, Any]) -> None:
    assert set(ci["on"]) == {"push", "pull_request"}
    (job,) = ci["jobs"].values()
    versions = job["strategy"]["matrix"]["python-version"]
    assert versions == ["3.10", "3.11", "3.12"]
    requires = importlib.metadata.metadata("pytest-supabase-restore")["Requires-Python"]
    minimum = re.fullmatch(r">=\s*(\d+\.\d+)", requires or "")
    assert minimum and minimum.group(1) == versions[0]


def test_ci_runs_lint_types_and_tests_both_ways(ci: dict[str, Any]) -> None:
    commands = [s["run"] for s in all_steps(ci) if "run" in s]
    script = "\n".join(commands)
    assert 'pip install -e ".[dev]"' in script
    assert "apt.postgresql.org.sh" in script
    assert "chromium" in script
    for expected in (
        "ruff check .",
        "ruff format --check .",
        "mypy",
        "python -m pytest tests",
        "python -m pytest tests -n auto",
    ):
        assert expected in commands, expected
