"""The storage package's shape, the one way a connection becomes an endpoint, and a local S3
server's stop that cleans up whatever fails."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import pytest_supabase_restore
from pytest_supabase_restore.connections import Connection
from pytest_supabase_restore.reaper import reaper
from pytest_supabase_restore.storage.endpoint import (
    DEFAULT_REGION,
    S3Endpoint,
    connection_endpoint,
)
from pytest_supabase_restore.storage.pool import bounded_map
from pytest_supabase_restore.storage.server import LocalS3Server

PACKAGE = Path(pytest_supabase_restore.__file__).parent / "storage"
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_"))


def imported_by(module: str) -> list[str]:
    """The modules a fresh interpreter has loaded after importing only ``module``."""
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent.parent)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    loaded: list[str] = json.loads(out.stdout)
    return loaded


def test_the_package_holds_the_expected_modules() -> None:
    assert MODULES == [
        "api",
        "client",
        "download",
        "endpoint",
        "faults",
        "pool",
        "records",
        "server",
        "stream",
        "upload",
        "verify",
    ]


@pytest.mark.parametrize("name", MODULES)
def test_each_module_imports_first_in_a_fresh_interpreter(name: str) -> None:
    """Imported before anything else of the package, each module loads: no import cycle."""
    loaded = imported_by(f"pytest_supabase_restore.storage.{name}")
    assert f"pytest_supabase_restore.storage.{name}" in loaded


def test_the_package_and_its_endpoint_load_no_s3_library_and_no_server() -> None:
    """Settings and staging targets name endpoints; that must not cost boto3 or moto."""
    for module in ("pytest_supabase_restore.storage", "pytest_supabase_restore.storage.endpoint"):
        heavy = [
            m
            for m in imported_by(module)
            if m.split(".")[0] in ("boto3", "botocore", "moto", "psycopg")
            or m == "pytest_supabase_restore.storage.server"
        ]
        assert heavy == [], module


def test_connection_endpoint_defaults_the_region() -> None:
    keys = {"s3_access_key_id": "id", "s3_secret_access_key": "secret"}
    url = "https://ref.supabase.co/storage/v1/s3"
    assert connection_endpoint(Connection(s3_endpoint=url, **keys)) == S3Endpoint(
        url, DEFAULT_REGION, "id", "secret"
    )
    assert DEFAULT_REGION == "us-east-1"
    with_region = Connection(s3_endpoint=url, s3_region="eu-central-1", **keys)
    assert connection_endpoint(with_region) == S3Endpoint(url, "eu-central-1", "id", "secret")
    assert connection_endpoint(Connection(s3_endpoint=url)) is None
    assert connection_endpoint(Connection(**keys)) is None
    endpoint = connection_endpoint(with_region)
    assert "secret" not in repr(endpoint) and "'id'" not in repr(endpoint)


def test_stop_after_the_server_was_killed_cleans_up_and_never_raises(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = LocalS3Server("stop-test").start()
    assert server.process is not None and server._log is not None
    assert server._store is not None and server._store.is_dir()
    proc, log_file, store = server.process, server._log, server._store
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)

    def broken(line: str) -> None:
        raise OSError("the watchdog's pipe is gone")

    # Each cleanup step fails on its own; the others still run.
    monkeypatch.setattr(reaper, "_send", broken)
    with caplog.at_level(logging.WARNING):
        server.stop()
        server.stop()  # twice: nothing left to do, nothing raised
    assert server.process is None and not log_file.exists() and not store.exists()
    assert "unregistering it: the watchdog's pipe is gone" in caplog.text
    with pytest.raises(Exception, match="is not running"):
        _ = server.endpoint


def test_bounded_map_keeps_at_most_window_tasks_ahead_and_raises_in_order() -> None:
    """Results come in order; no more than ``window`` items are taken ahead of the result
    being read (pool.map would take all 1,000 at once); a task's error surfaces at its turn."""
    from concurrent.futures import ThreadPoolExecutor

    taken = [0]
    ahead: list[int] = []

    def items() -> Iterator[int]:
        for i in range(1000):
            taken[0] += 1
            yield i

    with ThreadPoolExecutor(4) as pool:
        results = []
        for n, value in enumerate(bounded_map(pool, lambda i: i * 2, items(), window=8)):
            ahead.append(taken[0] - (n + 1))  # items taken beyond this result
            results.append(value)
        assert results == [i * 2 for i in range(1000)]
        assert max(ahead) == 8

        def fail_at_3(i: int) -> int:
            if i == 3:
                raise ValueError("three")
            return i

        seen: list[int] = []
        with pytest.raises(ValueError, match="three"):
            for value in bounded_map(pool, fail_at_3, range(10), window=2):
                seen.append(value)
        assert seen == [0, 1, 2]
