"""A local S3-compatible server (moto) on loopback, in its own process.

Used as the demo project's Storage backend and as the object store of throwaway staging
targets. It runs as a separate process so that object bytes never count against the
pytest process's memory, and so that every xdist worker reaches it over real HTTP.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import StorageError
from .pg.cluster import free_port
from .reaper import reaper
from .redact import Redactor, tail

log = logging.getLogger(__name__)

LOCAL_REGION = "local"


@dataclass(frozen=True)
class S3Endpoint:
    """Where and how to reach an S3-compatible endpoint. Both keys are kept out of its repr:
    the secret is a secret, and the access key id names the account in logs and tracebacks
    (botocore logs it in every signed request), so it is treated as one too."""

    url: str
    region: str
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client for this endpoint (path-style, as Supabase requires)."""
        from .storage import make_client

        return make_client(self, **config)


class LocalS3Server:
    """``moto_server`` on 127.0.0.1 and a free port; ``stop()`` ends it."""

    def __init__(self, name: str = "s3") -> None:
        self.name = name
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    @property
    def endpoint(self) -> S3Endpoint:
        # moto accepts any key pair; these are not secrets, only placeholders.
        return S3Endpoint(
            url=f"http://127.0.0.1:{self.port}",
            region=LOCAL_REGION,
            access_key_id="local-access-key",
            secret_access_key="local-secret-key",  # noqa: S106
        )

    def start(self, timeout: float = 30.0) -> LocalS3Server:
        fd, log_path = tempfile.mkstemp(prefix=f"supabase-restore-{self.name}-", suffix=".log")
        os.close(fd)
        self._log = Path(log_path)
        reaper.watch_path(self._log)
        for _ in range(5):
            self.port = free_port()
            env = dict(os.environ)
            # moto must not pick up real AWS settings or CA bundles from the environment.
            for key in list(env):
                if key.startswith("AWS_"):
                    del env[key]
            with open(self._log, "ab") as out:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=env,
                )
            reaper.watch_process(self.process.pid)  # stopped even if this process dies
            if self._wait(timeout):
                return self
            self.stop(keep_log=True)
        raise StorageError(
            f"The local S3 server ({self.name}) did not start. Is moto[server] installed? "
            f"Log: {self._tail()}"
        )

    def _wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/moto-api/", timeout=2):
                    return True
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        return False

    def _tail(self) -> str:
        if self._log is None:
            return ""
        try:
            # Redacted, then cut between whole lines: a cut inside a line could split a
            # signed URL's credential so that no rule matches it any more.
            return tail(Redactor().redact(self._log.read_text(errors="replace")), 2000)
        except OSError:
            return ""

    def stop(self, keep_log: bool = False) -> None:
        """Stop the server. Best effort; never raises."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if proc is not None:
            reaper.forget_process(proc.pid)
        if not keep_log and self._log is not None:
            self._log.unlink(missing_ok=True)
            reaper.forget_path(self._log)

    def __enter__(self) -> LocalS3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
