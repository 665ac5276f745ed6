"""The entry point's shape: a thin import, a collect-only that touches nothing, the verdict
hook, and a teardown in which every step runs whatever the others do."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_plugin import _clean_env  # noqa: F401 (autouse: the environment is the user's)

from pytest_supabase_restore.config import OPTIONS, Config, resolve
from pytest_supabase_restore.controller import DrillController
from pytest_supabase_restore.drill import Drill
from pytest_supabase_restore.redact import Redactor
from pytest_supabase_restore.staging import docker_available
from pytest_supabase_restore.staging.ephemeral import EphemeralStaging

REPO = Path(__file__).resolve().parents[1]
# What importing the pytest11 module must never load: drivers, S3 clients and servers, the
# cluster executor (it registers an atexit handler), the notifiers.
HEAVY = (
    "psycopg",
    "boto3",
    "botocore",
    "moto",
    # storage.endpoint (where an endpoint is; no S3 library) is light; the transfer is not.
    "pytest_supabase_restore.storage.client",
    "pytest_supabase_restore.storage.server",
    "pytest_supabase_restore.storage.stream",
    "pytest_supabase_restore.storage.download",
    "pytest_supabase_restore.storage.upload",
    "pytest_supabase_restore.storage.verify",
    "pytest_supabase_restore.pg.cluster",
    "pytest_supabase_restore.notify",
    "pytest_supabase_restore.drill",
    "pytest_supabase_restore.export",
    "pytest_supabase_restore.restore",
    "pytest_supabase_restore.staging",
)


def _loaded(modules: list[str], heavy: tuple[str, ...]) -> list[str]:
    return sorted(
        m
        for m in modules
        if any(m == h or m.startswith(h + ".") or m.startswith(h + "_") for h in heavy)
    )


def test_importing_the_entry_point_loads_nothing_heavy() -> None:
    """``python -X importtime -c "import pytest_supabase_restore.plugin"``, as pytest does on
    every run wherever the plugin is installed."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import pytest_supabase_restore.plugin"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
        timeout=60,
    )
    modules = [
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    ]
    assert "pytest_supabase_restore.plugin" in modules, result.stderr[-2000:]
    assert _loaded(modules, HEAVY) == []


def test_a_run_without_the_flag_loads_nothing_heavy(tmp_path: Path) -> None:
    """A whole pytest run without --supabase-restore: no driver, server or notifier."""
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    code = (
        "import sys, pytest\n"
        "code = pytest.main(['-q', '-p', 'no:cacheprovider', sys.argv[1]])\n"
        "print('MODULES', ' '.join(sys.modules))\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("MODULES "))
    modules = line.split()[1:]
    assert "pytest_supabase_restore.plugin" in modules
    assert _loaded(modules, HEAVY) == []


def _closed_port() -> int:
    """A local port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_collect_only_lists_the_tests_without_touching_the_source(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    """No export, no restore, no connection: the source is a closed port, and a connection
    attempt would fail the run (and take the drill's time)."""
    port = _closed_port()
    monkeypatch.setenv("SUPABASE_DB_URL", f"postgresql://postgres:pw@127.0.0.1:{port}/postgres")
    with socket.socket() as listener:  # the port again, listening: any connection shows up
        listener.bind(("127.0.0.1", port))
        listener.listen()
        listener.settimeout(0.5)
        result = pytester.runpytest_subprocess(
            "--supabase-restore", "--collect-only", "-q", "-p", "no:cacheprovider", *xdist
        )
        try:
            listener.accept()[0].close()
            connected = True
        except TimeoutError:
            connected = False
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.OK, out + result.stderr.str()
    assert not connected, out
    for name in ("api_connectivity", "database_schema", "data_integrity", "storage"):
        assert f"test_{name}.py::" in out, out
    assert "the drill does not run" in out, out


VERDICT_HOOK = """
import json, os

def pytest_supabase_restore_verdict(verdict, config):
    with open(os.environ["VERDICT_LOG"], "a") as fh:
        fh.write(json.dumps({
            "status": verdict.status,
            "worker": hasattr(config, "workerinput"),
            "pid": os.getpid(),
        }) + "\\n")
"""


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_conftest_receives_the_verdict_once_on_the_controller(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, xdist: list[str]
) -> None:
    log = tmp_path / "verdicts.jsonl"
    monkeypatch.setenv("VERDICT_LOG", str(log))
    pytester.makeconftest(VERDICT_HOOK)
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    (pytester.path / "empty-set").mkdir()
    # The drill fails fast (no manifest): a FAIL verdict, with no database at all.
    result = pytester.runpytest_subprocess(
        "--supabase-restore",
        "--supabase-from-backup=empty-set",
        "--no-supabase-builtin-tests",
        "-p",
        "no:cacheprovider",
        *xdist,
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls == [{"status": "FAIL", "worker": False, "pid": calls[0]["pid"]}]


def test_a_failing_verdict_hook_is_reported_and_fails_the_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        "def pytest_supabase_restore_verdict(verdict):\n    raise RuntimeError('pager down')\n"
    )
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    (pytester.path / "empty-set").mkdir()
    result = pytester.runpytest(
        "--supabase-restore", "--supabase-from-backup=empty-set", "--no-supabase-builtin-tests"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*pytest_supabase_restore_verdict failed: RuntimeError: pager down*"]
    )


class _Raises:
    """Stands in for a part of the drill whose stop fails (after doing its work, as
    ``LocalS3Server.stop`` could after ``kill()``)."""

    def __init__(self, message: str, then: Any = None) -> None:
        self.message = message
        self.then = then
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.then is not None:
            self.then()
        raise RuntimeError(self.message)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rpartition(")")[2].split()[0] == "Z")


SECRET = "hunter2-teardown-secret"


@pytest.mark.timeout(120)
def test_every_teardown_step_runs_when_one_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Staging's S3 server stop raises after stopping it, the demo's stop raises with a
    secret in its message: the staging cluster is still stopped and both temporary
    directories are removed; each failure is logged naming its step, the secret redacted."""
    from pytest_supabase_restore.connections import Connection

    settings = Config(
        enabled=True,
        staging="ephemeral",
        source=Connection(db_url=f"postgresql://postgres:{SECRET}@127.0.0.1:1/postgres"),
    )
    drill = Drill(settings, tmp_path, lambda line: None)
    staging = EphemeralStaging.start(15)
    assert staging.cluster is not None and staging.s3_server is not None
    assert staging.cluster.process is not None and staging.s3_server.process is not None
    cluster_pid, s3_pid = staging.cluster.process.pid, staging.s3_server.process.pid
    cluster_dir = staging.cluster.base_dir
    s3_stop = _Raises("S3 server did not answer", then=staging.s3_server.stop)
    staging.s3_server.stop = s3_stop  # type: ignore[method-assign]
    demo_stop = _Raises(f"could not reach postgresql://postgres:{SECRET}@demo/postgres")
    drill.staging = staging
    drill.demo = type("Demo", (), {"stop": demo_stop})()
    drill._temp_backups = Path(tempfile.mkdtemp(prefix="supabase-restore-backups-"))
    drill._decrypted = Path(tempfile.mkdtemp(prefix="supabase-restore-decrypted-"))
    (drill._decrypted / "data.sql").write_text("secret rows")
    temps = [drill._temp_backups, drill._decrypted]

    with caplog.at_level(logging.WARNING):
        messages = drill.teardown()

    assert s3_stop.calls == 1 and demo_stop.calls == 1
    assert not _alive(s3_pid) and not _alive(cluster_pid)
    assert not cluster_dir.exists()
    assert [t for t in temps if t.exists()] == []
    logged = caplog.text
    assert "stop the staging S3 server: RuntimeError: S3 server did not answer" in logged
    assert "stop the demo project: RuntimeError: could not reach" in logged
    assert SECRET not in logged and SECRET not in "\n".join(messages)
    assert any("stop the demo project" in m for m in messages), messages
    assert drill.teardown() == []  # nothing left to do, nothing done twice
    assert demo_stop.calls == 1


def test_the_controller_cleans_up_when_the_drill_teardown_raises(
    pytester: pytest.Pytester, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The drill's teardown raising skips neither the run directory nor the SIGTERM handler."""
    config = pytester.parseconfig()
    controller = DrillController(config, Config(enabled=True), Redactor([SECRET]))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "drill-state.json").write_text("{}")
    controller.run_dir = run_dir
    previous = signal.getsignal(signal.SIGTERM)
    controller._previous_sigterm = previous
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    teardown = _Raises(f"boom {SECRET}")
    controller.drill = type("FakeDrill", (), {"teardown": teardown})()  # type: ignore[assignment]
    try:
        with caplog.at_level(logging.WARNING):
            failures = controller.close()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert teardown.calls == 1
    assert not run_dir.exists()
    assert signal.getsignal(signal.SIGTERM) is previous
    assert len(failures) == 1, failures
    assert failures[0].startswith("tear down the drill: RuntimeError: boom"), failures
    assert SECRET not in failures[0]
    assert SECRET not in caplog.text


@pytest.fixture
def _fresh_docker_answer() -> Iterator[None]:
    """``docker info`` is asked once per process: forget the answer around the test."""
    docker_available.cache_clear()
    yield
    docker_available.cache_clear()


@pytest.mark.usefixtures("_fresh_docker_answer")
def test_container_staging_without_docker_is_a_usage_error_at_start(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(pytester.path))  # no docker client, so no engine
    result = pytester.runpytest(
        "--supabase-restore", "--supabase-demo", "--supabase-staging=container"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*needs a running Docker engine*--supabase-staging=ephemeral*"])


@pytest.mark.usefixtures("_fresh_docker_answer")
def test_container_staging_without_testcontainers_is_a_usage_error_at_start(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "testcontainers", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "testcontainers.postgres", None)
    result = pytester.runpytest(
        "--supabase-restore", "--supabase-demo", "--supabase-staging=container"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*needs testcontainers*pytest-supabase-restore[[]container[]]*"])


def test_a_staging_api_without_the_supabase_client_is_a_usage_error_at_start(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The supabase client is the api extra: a staging API configured without it is one
    error before anything is exported, naming the extra (never an ImportError later)."""
    monkeypatch.setitem(sys.modules, "supabase", None)  # import fails as if not installed
    monkeypatch.setenv("STAGING_SUPABASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("STAGING_SUPABASE_SERVICE_ROLE_KEY", "service-role-key-never-shown")
    result = pytester.runpytest("--supabase-restore", "--supabase-demo")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*STAGING_SUPABASE_URL*supabase client, which is not installed*[[]api[]]*"]
    )
    assert "service-role-key-never-shown" not in result.stdout.str() + result.stderr.str()
    assert "Traceback" not in result.stderr.str()
    monkeypatch.delenv("STAGING_SUPABASE_URL")  # no staging API: no client needed
    assert not resolve(pytester.parseconfig("--supabase-restore", "--supabase-demo")).target.has_api


def test_an_api_check_whose_client_does_not_import_is_not_tested_with_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A broken install (found at start, failing to import later): the API check is not
    tested, with the extra to install, instead of an ImportError."""
    from pytest_supabase_restore.connections import Connection
    from pytest_supabase_restore.results import DrillState
    from pytest_supabase_restore.smoke_tests._support import api_client

    monkeypatch.setitem(sys.modules, "supabase", None)
    target = Connection(api_url="http://127.0.0.1:9", service_role_key="k")
    state = DrillState(enabled=True, staging_kind="url")
    with pytest.raises(
        pytest.skip.Exception, match=r"not tested: .*pytest-supabase-restore\[api\]"
    ):
        api_client(Config(enabled=True, target=target), state)
    with pytest.raises(pytest.skip.Exception, match="no staging API configured"):
        api_client(Config(enabled=True), state)


def test_each_option_is_declared_once_with_its_default() -> None:
    """The option table is built from Config's fields: a default, help or name is written in
    one place, and every option is a setting (and no setting is an option twice)."""
    defaults = {f.name: f.default for f in dataclasses.fields(Config)}
    assert len({opt.name for opt in OPTIONS}) == len(OPTIONS)
    for opt in OPTIONS:
        assert defaults[opt.name] == opt.default, opt.name
    builtin = next(opt for opt in OPTIONS if opt.name == "builtin_tests")
    assert builtin.kind == "bool" and "yes/no" not in builtin.help


def test_every_plugin_object_is_unregistered_at_unconfigure(pytester: pytest.Pytester) -> None:
    """As pytest's junitxml does: what configure registered, unconfigure unregisters."""
    (pytester.path / "empty-set").mkdir()
    pytester.makeconftest(
        "import pytest\n"
        "NAMES = ('supabase-restore-drill', 'supabase-restore-reporting',\n"
        "         'supabase-restore-selection', 'supabase-restore-scrubber')\n"
        "@pytest.hookimpl(trylast=True)\n"
        "def pytest_unconfigure(config):\n"
        "    left = [n for n in NAMES if config.pluginmanager.get_plugin(n) is not None]\n"
        "    print('LEFT', left)\n"
        "def pytest_sessionfinish(session):\n"
        "    names = [n for n in NAMES if session.config.pluginmanager.get_plugin(n)]\n"
        "    print('DURING', len(names))\n"
    )
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    result = pytester.runpytest(
        "-s",
        "--supabase-restore",
        "--supabase-from-backup=empty-set",
        "--no-supabase-builtin-tests",
    )
    result.stdout.fnmatch_lines(["*DURING 4", "LEFT []"])
