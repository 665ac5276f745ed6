"""No secret and no user's data leaves through any output of a real run.

Secrets are given the way the workflow gives them, through the environment, and then
used by tests the way tests and libraries really use them: in parametrized values and
ids, in warnings, in log records of the test's own logger and of botocore (whose DEBUG log
shows the S3 access key id in every signed request), on stdout. pytest then runs as a user
runs it (a subprocess, with ``--debug``, a log file, live logs, JUnit and HTML, once alone
and once under xdist), and every output is searched for every secret.

The drill itself fails at once here (its backup set is an empty directory): the channels
under test are pytest's, not the drill's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings

import pytest

from pytest_supabase_restore.builtin_tests import builtin_dir
from pytest_supabase_restore.manifest import FORMAT, VERSION
from pytest_supabase_restore.model import FileEntry, Manifest, RlsProof, SourceInfo

SMOKE_DIR = builtin_dir()

SECRETS = {
    "SUPABASE_DB_URL": "postgresql://postgres.ref:Pa?ss#W0rd-4711@db.example.supabase.co:5432/postgres",
    "SUPABASE_SERVICE_ROLE_KEY": "SRK-service-role-secret-0815",
    "SUPABASE_S3_ENDPOINT": "http://127.0.0.1:9/storage/v1/s3",
    "SUPABASE_S3_ACCESS_KEY_ID": "AKIASUPABASEKEYID4711",
    "SUPABASE_S3_SECRET_ACCESS_KEY": "s3-Secret-Access-Key-0815",
    "GITHUB_TOKEN": "GHT-token-secret-2222",
    "SLACK_WEBHOOK_URL": "https://hooks.example.test/services/SLACKHOOK3333",
}
# What must appear nowhere: each value, and the password on its own (prefixes included,
# as a cut would leave them).
FORBIDDEN = [
    "Pa?ss#W0rd",
    "W0rd-4711",
    "SRK-service",
    "AKIASUPABASEKEY",
    "s3-Secret-Access",
    "GHT-token",
    "SLACKHOOK",
]

LEAKY_TESTS = """
import logging
import os
import warnings

import pytest

URL = os.environ["SUPABASE_DB_URL"]
KEY_ID = os.environ["SUPABASE_S3_ACCESS_KEY_ID"]
SECRET = os.environ["SUPABASE_S3_SECRET_ACCESS_KEY"]
log = logging.getLogger("app.export")


@pytest.mark.parametrize("url", [URL])
def test_id_from_the_value(url):
    warnings.warn(f"slow connection to {url}")
    print("connecting to", url)


@pytest.mark.parametrize("key", [pytest.param(KEY_ID, id=f"key-{KEY_ID}")])
def test_explicit_id(key, caplog):
    log.warning("using key %s with %s", key, os.environ["SUPABASE_SERVICE_ROLE_KEY"])
    with open("caplog.txt", "w") as fh:  # what a test does with caplog is an output too
        fh.write(caplog.text)


@pytest.mark.parametrize("token", [os.environ["GITHUB_TOKEN"]], ids=lambda t: f"tok-{t}")
def test_id_from_a_function(token):
    log.info("token %s, webhook %s", token, os.environ["SLACK_WEBHOOK_URL"])


def test_botocore_debug_log():
    import boto3
    import botocore.config

    boto3.set_stream_logger("botocore", logging.DEBUG)  # its own handler, on stderr
    client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
        config=botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=2),
    )
    with pytest.raises(Exception):
        client.list_buckets()
"""


def run_leaky(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *extra: str
) -> dict[str, str]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile(test_leaky=LEAKY_TESTS)
    (pytester.path / "empty-backup-set").mkdir()
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--supabase-restore",
        "--supabase-from-backup",
        "empty-backup-set",
        "--no-supabase-builtin-tests",
        "--supabase-summary-json=summary.json",
        "--debug=pytestdebug.log",
        "--log-file=run.log",
        "--log-file-level=DEBUG",
        "--junitxml=junit.xml",
        "-o",
        "junit_logging=all",
        "--html=report.html",
        "--self-contained-html",
        "-rA",
        "-v",
        *extra,
        timeout=300,
    )
    outputs = {"stdout": result.stdout.str(), "stderr": result.stderr.str()}
    files = ("pytestdebug.log", "run.log", "junit.xml", "report.html", "summary.json", "caplog.txt")
    for name in files:
        path = pytester.path / name
        assert path.is_file(), f"{name} was not written:\n{outputs['stdout'][-3000:]}"
        outputs[name] = path.read_text(encoding="utf-8", errors="replace")
    # The run did what it was meant to: every test ran, the drill FAILed (no backup).
    assert "4 passed" in outputs["stdout"], outputs["stdout"][-3000:]
    assert json.loads(outputs["summary.json"])["status"] == "FAIL"
    return outputs


def assert_no_secret(outputs: dict[str, str]) -> None:
    leaks = [
        f"{secret!r} in {where}"
        for where, text in outputs.items()
        for secret in FORBIDDEN
        if secret in text
    ]
    assert not leaks, "\n".join(leaks)


def test_no_secret_in_any_output_of_a_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = run_leaky(pytester, monkeypatch, "--log-cli-level=DEBUG")
    assert_no_secret(outputs)
    out = outputs["stdout"]
    # Every channel carried its secret, masked: ids, warnings summary, live logs.
    assert "PASSED test_leaky.py::test_id_from_the_value[***]" in out
    assert "PASSED test_leaky.py::test_explicit_id[key-***]" in out
    assert "PASSED test_leaky.py::test_id_from_a_function[tok-***]" in out
    assert "UserWarning: slow connection to ***" in out
    assert "using key *** with ***" in out  # live log (--log-cli-level)
    assert "Credential=***/" in outputs["run.log"]  # botocore's signed request, log file
    # ... and through its own stream handler (stderr, captured into the report's sections)
    assert "Captured stderr call" in out and "Credential=***/" in outputs["junit.xml"]
    assert "token ***, webhook ***" in outputs["run.log"]
    assert "using key *** with ***" in outputs["caplog.txt"]
    assert "pytest_make_parametrize_id" in outputs["pytestdebug.log"]  # traced, redacted
    assert 'name="test_id_from_the_value[***]"' in outputs["junit.xml"]
    assert "test_explicit_id[key-***]" in outputs["report.html"]


def test_no_secret_in_any_output_under_xdist(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under ``-n 2 --debug`` xdist prints every event between controller and workers to
    stderr, raw test reports included."""
    outputs = run_leaky(pytester, monkeypatch, "-n", "2")
    assert_no_secret(outputs)
    assert "[worker-gw" in outputs["stderr"] and "testreport" in outputs["stderr"]
    assert "[dsession]" in outputs["stderr"]
    assert "UserWarning: slow connection to ***" in outputs["stdout"]


def test_an_in_process_run_leaves_logging_and_warnings_as_they_were(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    (pytester.path / "empty-backup-set").mkdir()
    factory, formatwarning = logging.getLogRecordFactory(), warnings.formatwarning
    filters = {id(h): list(h.filters) for h in logging.getLogger().handlers}
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--supabase-restore", "--supabase-from-backup",
        "empty-backup-set", "--no-supabase-builtin-tests",
    )  # fmt: skip
    assert result.ret == 1  # the drill FAILed: no backup set
    assert logging.getLogRecordFactory() is factory
    assert warnings.formatwarning is formatwarning
    assert {id(h): list(h.filters) for h in logging.getLogger().handlers} == filters


# -- users' data: RLS identities ----------------------------------------------------------

USERS = ["0b9d2c4e-8f1a-4c3b-9e2d-5a6f7b8c9d01", "1c0e3d5f-9a2b-4d4c-8f3e-6b7a8c9d0e12"]


def test_rls_test_ids_name_users_neutrally(pytester: pytest.Pytester) -> None:
    """The RLS checks are parametrized by the manifest's sampled ``auth.users`` ids; their
    test ids (terminal, JUnit, HTML, the JSON summary: a 30-day artifact) name them
    ``user1``, ``user2`` by their place in the sample, never by id."""
    backup = pytester.path / "set"
    backup.mkdir()
    manifest = Manifest(
        format=FORMAT,
        version=VERSION,
        snapshot_time="2026-11-24T17:29:00+00:00",
        source=SourceInfo(server_major=15),
        scope_schemas=("public",),
        rls=RlsProof(users=tuple(USERS), visibility={"anon": {}, USERS[0]: {}, USERS[1]: {}}),
        files={"db/toc.dat": FileEntry(0, hashlib.sha256(b"").hexdigest())},
    )
    (backup / "manifest.json").write_text(json.dumps(manifest.to_json()))
    # What the controller has at collection after a drill: its state, naming the set.
    pytester.makepyfile(
        drillstate=(
            "from pytest_supabase_restore.fixtures import STATE_KEY\n"
            "from pytest_supabase_restore.results import DrillState\n\n"
            "def pytest_configure(config):\n"
            "    config.stash[STATE_KEY] = DrillState(\n"
            f"        enabled=True, backup_format='manifest', backup_dir={str(backup)!r}\n"
            "    )\n"
        )
    )
    pytester.syspathinsert()
    pytester.makeini("[pytest]\n")
    result = pytester.runpytest(
        "-c", str(pytester.path / "tox.ini"), "-p", "drillstate", "--collect-only", "-q",
        str(SMOKE_DIR / "test_authentication.py"),
    )  # fmt: skip
    ids = [
        line.rpartition("::")[2] for line in result.stdout.lines if "test_rls_visibility" in line
    ]
    assert ids == [
        "test_rls_visibility[anon]",
        "test_rls_visibility[user1]",
        "test_rls_visibility[user2]",
    ], result.stdout.str()
    assert not any(user in result.stdout.str() for user in USERS)
