"""Running PostgreSQL client tools safely: credentials through the environment, never argv."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from psycopg.conninfo import conninfo_to_dict

from .childenv import client_env
from .connections import mask_url
from .errors import ConfigError
from .pg.binaries import library_env

# libpq's connection parameters and the environment variable of each (libpq's
# "Environment Variables" section): a parameter of the connection string wins over its
# variable, as in libpq itself.
_PARAM_ENV = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "passfile": "PGPASSFILE",
    "dbname": "PGDATABASE",
    "service": "PGSERVICE",
    "sslmode": "PGSSLMODE",
    "sslnegotiation": "PGSSLNEGOTIATION",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcertmode": "PGSSLCERTMODE",
    "sslcrl": "PGSSLCRL",
    "sslcrldir": "PGSSLCRLDIR",
    "sslsni": "PGSSLSNI",
    "sslcompression": "PGSSLCOMPRESSION",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
    "requirepeer": "PGREQUIREPEER",
    "require_auth": "PGREQUIREAUTH",
    "gssencmode": "PGGSSENCMODE",
    "krbsrvname": "PGKRBSRVNAME",
    "gsslib": "PGGSSLIB",
    "gssdelegation": "PGGSSDELEGATION",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "client_encoding": "PGCLIENTENCODING",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "load_balance_hosts": "PGLOADBALANCEHOSTS",
    "channel_binding": "PGCHANNELBINDING",
}
# Variables libpq reads that are no connection parameter: where service files are.
_LIBPQ_ONLY_ENV = ("PGSERVICEFILE", "PGSYSCONFDIR")
LIBPQ_ENV = (*_PARAM_ENV.values(), *_LIBPQ_ONLY_ENV)


def libpq_env(
    dsn: str,
    extra: Mapping[str, str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """An environment for libpq tools that reaches ``dsn`` as psycopg does from this
    process: libpq's own variables of ``environ`` (default: this process's; ``PGPASSWORD``,
    ``PGPASSFILE``, ``PGSSLROOTCERT``, ``PGSERVICE`` ...), then the parameters of ``dsn``
    over them, then ``extra``. The password never hits argv."""
    try:
        params: dict[str, Any] = conninfo_to_dict(dsn)
    except Exception as exc:  # psycopg raises ProgrammingError for bad conninfo
        raise ConfigError(f"Cannot parse the database URL {mask_url(dsn)}: {exc}") from exc
    source = os.environ if environ is None else environ
    # An allow-list, not a copy of this process's environment: a tool needs libpq's
    # settings and its own connection's credentials, never the run's other secrets.
    env = client_env({name: source[name] for name in LIBPQ_ENV if name in source})
    for key, value in params.items():
        name = _PARAM_ENV.get(key)
        if name and value is not None:
            env[name] = str(value)
    env.setdefault("PGCONNECT_TIMEOUT", "15")
    env.update(extra or {})
    return env


@dataclass
class ToolRun:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def run_tool(
    args: list[str],
    dsn: str,
    *,
    timeout: float | None = None,
    extra_env: dict[str, str] | None = None,
) -> ToolRun:
    """Run a client tool against ``dsn`` and capture its output.

    The tool runs in its own process group: pg_dump and pg_restore fork parallel workers,
    and on any interruption (Ctrl-C, SIGTERM, a time limit) the whole group is stopped,
    not only the leader. A tool of a relocatable build gets its own ``lib/`` first on
    LD_LIBRARY_PATH (:func:`.pg.binaries.library_env`).
    """
    bindir = os.path.dirname(args[0])
    env = {**(library_env(bindir) if bindir else {}), **(extra_env or {})}
    with subprocess.Popen(
        args,
        env=libpq_env(dsn, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except BaseException:
            stop_group(proc)
            raise
    return ToolRun(args, proc.returncode, stdout, stderr)


def stop_group(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """Stop ``proc`` and every process of its group (it must lead its own session)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; its workers may not be: they get the same signal.
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        return


_NOISE = re.compile(r"^pg_(dump|restore|dumpall): (detail|hint): ", re.M)


def first_error(stderr: str) -> str:
    """The first meaningful line of a tool's stderr (else its first line), for one-line
    messages. Whole lines only: the message is redacted later, and a line cut first could
    split a secret so that it no longer matches."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return next((line for line in lines if not _NOISE.match(line)), lines[0] if lines else "")


# Messages of libpq, pg_dump and pg_restore that mean the connection itself broke (the
# server or the network path went away), as opposed to one statement failing.
CONNECTION_LOST = re.compile(
    r"server closed the connection unexpectedly|connection to server .*(failed|lost|closed)|"
    r"could not receive data from server|could not send data to server|SSL SYSCALL error|"
    r"terminating connection|connection reset by peer|lost synchronization with server|"
    r"the connection is (lost|closed)|consuming input failed|the database system is "
    r"(shutting down|in recovery mode|starting up)",
    re.IGNORECASE,
)
NO_SPACE = "No space left on device"

# The server was reached and refused this login (credentials, pg_hba, TLS settings): not a
# lost connection, and a retry with the same settings fails the same way.
LOGIN_REFUSED = re.compile(
    r"password authentication failed|authentication failed for user|no password supplied|"
    r"fe_sendauth|no pg_hba\.conf entry|pg_hba\.conf rejects|server does not support SSL|"
    r"SSL (?:connection is required|off)|certificate verify failed|root certificate file|"
    r"(?:role|database) \"[^\"]*\" does not exist|server requested .*authentication|"
    r"channel binding (?:is )?required",
    re.IGNORECASE,
)

# The server (or a pooler in front of it) refused a new connection because its connection
# slots are taken: not a lost connection. Retrying with as many connections cannot help.
NO_SLOTS = re.compile(
    r"too many clients already|remaining connection slots are reserved|"
    r"too many connections for (role|database)|max client connections reached|"
    r"max clients reached|no more connections allowed",
    re.IGNORECASE,
)
