"""Throwaway PostgreSQL clusters.

``initdb`` into a fresh temporary directory (mode 0700), a free port on loopback only
(plus a Unix socket inside that directory), a readiness check with a timeout, and a
teardown that also runs after a failed start. When this process runs as root, the server
runs as an unprivileged OS user (PostgreSQL refuses to run as root); on a developer's
laptop it simply runs as the user.

The cluster is private to this run: every connection, socket or TCP, must authenticate
with SCRAM, and each login role gets a random password that only this process knows. The
passwords live in a libpq password file (mode 0600, owned by this process's user) whose
path is part of every connection string :meth:`Cluster.dsn` returns, so no connection
string carries a secret and other OS users on the machine cannot log in. The server's
environment is an allow-list (:mod:`..childenv`): restored code that runs on it finds no
secret of the pytest process there.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ..childenv import server_env
from ..errors import ClusterError
from ..reaper import reaper
from ..redact import Redactor, tail
from .binaries import PgBinaries, find_server_tools

log = logging.getLogger(__name__)

TEMP_PREFIX = "supabase-restore-"
_LIVE: set[Cluster] = set()
_LIVE_LOCK = threading.Lock()


def _output_tail(text: str, limit: int = 2000) -> str:
    """The end of a server tool's output for an error message: redacted (URL passwords,
    ``password=`` values, token shapes), then cut between whole lines, never inside one."""
    return tail(Redactor().redact(text.strip()), limit)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _server_user() -> pwd.struct_passwd | None:
    """The OS user the server runs as: None for "this user"; an unprivileged one for root."""
    if os.geteuid() != 0:
        return None
    for name in (os.environ.get("SUPABASE_RESTORE_PG_OS_USER"), "postgres", "nobody"):
        if not name:
            continue
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ClusterError(
        "This process runs as root and PostgreSQL refuses to run as root, but no unprivileged "
        "OS user was found to run it as. Create one (`useradd --system postgres`) or set "
        "SUPABASE_RESTORE_PG_OS_USER to an existing unprivileged user."
    )


def _demote(user: pwd.struct_passwd | None) -> Callable[[], None] | None:
    if user is None:
        return None
    uid, gid = user.pw_uid, user.pw_gid

    def run_as() -> None:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    return run_as


class Cluster:
    """One throwaway PostgreSQL cluster. Use :func:`start_cluster` or ``with Cluster(...)``."""

    def __init__(
        self,
        binaries: PgBinaries | None = None,
        *,
        superuser: str = "postgres",
        name: str = "cluster",
        settings: dict[str, str] | None = None,
        start_timeout: float = 60.0,
        parent: Path | None = None,
    ) -> None:
        self.binaries = binaries or find_server_tools()
        self.superuser = superuser
        self.name = name
        self.settings = dict(settings or {})
        self.start_timeout = start_timeout
        self.parent = parent  # where the cluster's directory goes (default: the temp dir)
        self.port = 0
        self.base_dir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._os_user = _server_user()
        self._passwords: dict[str, str] = {}

    # -- paths ----------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / "sock"

    @property
    def log_path(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / "postgres.log"

    @property
    def passfile(self) -> Path:
        """The libpq password file of this cluster's login roles (outside the data dir)."""
        assert self.base_dir is not None
        return self.base_dir / "pgpass"

    def dsn(self, dbname: str = "postgres", user: str | None = None) -> str:
        """A connection string that authenticates through :attr:`passfile` (no secret in it).

        Immune to the libpq variables a user sets for the source (psycopg and the tools
        read them): an empty ``password`` keeps ``PGPASSWORD`` from shadowing the password
        file, and ``sslmode=disable`` (loopback, no TLS) overrides ``PGSSLMODE``."""
        return (
            f"postgresql://{user or self.superuser}@127.0.0.1:{self.port}/{dbname}"
            f"?passfile={self.passfile}&password=&sslmode=disable"
        )

    def set_password(self, role: str, password: str | None = None) -> str:
        """Give ``role`` (an existing login role) a password (random unless given) and record
        it in the password file; returns a connection string for it. Only the superuser has
        one from the start: no other role can log in before this."""
        password = password or secrets.token_urlsafe(24)
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            # Utility statements take no parameters: the literal is quoted client-side.
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)
                )
            )
        self._passwords[role] = password
        self._write_passfile()
        return self.dsn(user=role)

    def _write_passfile(self) -> None:
        def esc(text: str) -> str:
            return text.replace("\\", "\\\\").replace(":", "\\:")

        lines = "".join(f"*:*:*:{esc(role)}:{esc(pw)}\n" for role, pw in self._passwords.items())
        fd = os.open(self.passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(lines)

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn(dbname), **kwargs)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no server log)"
        return "\n".join(text[-lines:])

    # -- life cycle -----------------------------------------------------------------------
    def _run(self, args: list[str], timeout: float = 120) -> None:
        proc = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=_demote(self._os_user),
            cwd=str(self.base_dir),
            env=server_env(self.binaries.env()),
            check=False,
        )
        if proc.returncode != 0:
            raise ClusterError(
                f"{Path(args[0]).name} failed (exit {proc.returncode}) for the {self.name} "
                f"cluster: {_output_tail(proc.stderr or proc.stdout)}"
            )

    def start(self) -> Cluster:
        self.base_dir = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{self.name}-", dir=self.parent))
        reaper.watch_path(self.base_dir)  # removed even if this process dies without teardown
        with _LIVE_LOCK:
            _LIVE.add(self)
        try:
            self._initdb()
            for attempt in range(5):
                self.port = free_port()
                if self._launch():
                    return self
                log.warning("port %s was taken; retrying (%s)", self.port, attempt + 1)
            raise ClusterError(
                f"The {self.name} cluster did not start after 5 attempts on free ports. "
                f"Server log:\n{self.log_tail()}"
            )
        except BaseException:
            self.stop()
            raise

    def _initdb(self) -> None:
        assert self.base_dir is not None
        self.socket_dir.mkdir()
        if self._os_user is not None:
            for p in (self.base_dir, self.socket_dir):
                os.chown(p, self._os_user.pw_uid, self._os_user.pw_gid)
        os.chmod(self.base_dir, 0o700)
        # The superuser's password reaches initdb in a file only the server's OS user can
        # read, removed as soon as initdb has read it.
        password = secrets.token_urlsafe(24)
        pwfile = self.base_dir / "initdb.pw"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
        if self._os_user is not None:
            os.chown(pwfile, self._os_user.pw_uid, self._os_user.pw_gid)
        try:
            self._initdb_run(pwfile)
        finally:
            pwfile.unlink(missing_ok=True)
        self._passwords[self.superuser] = password
        self._write_passfile()
        # SCRAM everywhere, socket included: the socket directory is private too, but a
        # password is what keeps other local users out whatever the directory's mode.
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(
            "local all all scram-sha-256\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
            "host all all ::1/128 scram-sha-256\n"
            "host all all 0.0.0.0/0 reject\n"
            "host all all ::/0 reject\n"
        )

    def _initdb_run(self, pwfile: Path) -> None:
        self._run(
            [
                self.binaries.path("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.superuser,
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--no-sync",
            ]
        )

    def _launch(self) -> bool:
        assert self.base_dir is not None
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "logging_collector": "off",
            "max_connections": "100",
            "shared_buffers": "128MB",
            "max_worker_processes": "8",
            "max_parallel_workers_per_gather": "2",
            **self.settings,
        }
        args = [self.binaries.path("postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        log_file = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        if self._os_user is not None:
            os.chown(self.log_path, self._os_user.pw_uid, self._os_user.pw_gid)
        try:
            self.process = subprocess.Popen(
                args,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=_demote(self._os_user),
                # Own session: a Ctrl-C in the terminal reaches pytest, which then stops
                # the server in order, instead of killing it half way through a restore.
                start_new_session=True,
                cwd=str(self.base_dir),
                env=server_env(self.binaries.env()),
            )
        finally:
            log_file.close()
        # SIGQUIT is PostgreSQL's immediate shutdown: the data directory is thrown away anyway.
        reaper.watch_process(self.process.pid, signal.SIGQUIT)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_tail()
                if "could not bind" in tail or "Address already in use" in tail:
                    reaper.forget_process(self.process.pid)
                    self.process = None
                    return False
                raise ClusterError(
                    f"The {self.name} PostgreSQL server exited during start-up "
                    f"(exit {self.process.returncode}). Server log:\n{tail}"
                )
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2) as conn:
                    row = conn.execute("SELECT current_setting('data_directory')").fetchone()
                # Another server may own this port: only our own data directory counts.
                if row is not None and Path(row[0]).resolve() == self.data_dir.resolve():
                    return True
            except psycopg.Error:
                pass
            time.sleep(0.1)
        raise ClusterError(
            f"The {self.name} PostgreSQL server did not accept connections within "
            f"{self.start_timeout:.0f}s. Server log:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """Stop the server and remove its directory. Best effort; never raises."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            for sig, wait in ((signal.SIGINT, 20.0), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
                try:
                    proc.send_signal(sig)
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
                except OSError as exc:  # pragma: no cover - already gone
                    log.warning("stopping the %s cluster: %s", self.name, exc)
                    break
        if proc is not None:
            reaper.forget_process(proc.pid)
        if self.base_dir is not None and self.base_dir.exists():
            shutil.rmtree(self.base_dir, ignore_errors=True)
            if self.base_dir.exists():
                log.warning("could not remove %s", self.base_dir)
            else:
                reaper.forget_path(self.base_dir)
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def release(self) -> None:
        """Leave the server running for someone else: it is no longer stopped (or its
        directory removed) when this process ends, by ``stop_all`` or the watchdog."""
        if self.process is not None:
            reaper.forget_process(self.process.pid)
        if self.base_dir is not None:
            reaper.forget_path(self.base_dir)
        with _LIVE_LOCK:
            _LIVE.discard(self)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Cluster {self.name} port={self.port} {self.binaries.major}>"


@contextlib.contextmanager
def start_cluster(binaries: PgBinaries | None = None, **kwargs: Any) -> Iterator[Cluster]:
    """Start a throwaway cluster for the duration of the ``with`` block."""
    cluster = Cluster(binaries, **kwargs)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def stop_all() -> None:
    """Stop every cluster this process started (used at exit and on signals)."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for cluster in live:
        cluster.stop()


atexit.register(stop_all)
