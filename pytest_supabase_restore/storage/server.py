"""A local S3-compatible server (moto) on loopback, in its own process.

Used as the demo project's Storage backend and as the object store of throwaway staging
targets. It runs as a separate process so that object bytes never count against the
pytest process's memory, and so that every xdist worker reaches it over real HTTP. Object
bytes live in files under a private temporary directory (see ``_server_main``), removed
when the server stops, so its memory does not grow with the bytes it holds. It
authenticates every request against a key pair it generates at start (see ``_server_main``),
so the restored objects are private to this run.
"""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..childenv import python_env
from ..errors import StorageError
from ..pg.cluster import free_port
from ..reaper import reaper
from ..redact import Redactor, tail
from .endpoint import LOCAL_REGION, S3Endpoint

log = logging.getLogger(__name__)

# The server's program, run as a script (see its docstring).
_MAIN = str(Path(__file__).with_name("_server_main.py"))


class LocalS3Server:
    """``moto_server`` on 127.0.0.1 and a free port; ``stop()`` ends it."""

    def __init__(self, name: str = "s3") -> None:
        self.name = name
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None
        self._store: Path | None = None
        self._keys: tuple[str, str] | None = None

    @property
    def endpoint(self) -> S3Endpoint:
        """Where to reach the server, with the key pair it generated when it started."""
        if self._keys is None:
            raise StorageError(f"The local S3 server ({self.name}) is not running.")
        return S3Endpoint(
            url=f"http://127.0.0.1:{self.port}",
            region=LOCAL_REGION,
            access_key_id=self._keys[0],
            secret_access_key=self._keys[1],
        )

    def start(self, timeout: float = 30.0) -> LocalS3Server:
        fd, log_path = tempfile.mkstemp(prefix=f"supabase-restore-{self.name}-", suffix=".log")
        os.close(fd)
        self._log = Path(log_path)
        reaper.watch_path(self._log)
        self._store = Path(tempfile.mkdtemp(prefix=f"supabase-restore-{self.name}-objects-"))
        reaper.watch_path(self._store)
        for _ in range(5):
            self.port = free_port()
            # -I: the program needs only moto from site-packages; the environment is an
            # allow-list (no AWS_* settings, no secrets of this process).
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    _MAIN,
                    "127.0.0.1",
                    str(self.port),
                    str(self._log),
                    str(self._store),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                env=python_env({"MALLOC_ARENA_MAX": "2"}),
            )
            reaper.watch_process(self.process.pid)  # stopped even if this process dies
            if self._wait(timeout):
                return self
            self.stop(keep_log=True)
        raise StorageError(
            f"The local S3 server ({self.name}) did not start. It needs moto[s3], flask and "
            f"flask-cors (dependencies of pytest-supabase-restore). Log: {self._tail()}"
        )

    def _wait(self, timeout: float) -> bool:
        """Read the key pair the server prints, then wait until its port accepts."""
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + timeout
        out = self.process.stdout
        ready, _, _ = select.select([out], [], [], timeout)
        line = out.readline() if ready else b""
        out.close()
        try:
            keys = json.loads(line)
            self._keys = (str(keys["access_key_id"]), str(keys["secret_access_key"]))
        except (ValueError, KeyError, TypeError):
            return False
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2):
                    return True
            except OSError:
                time.sleep(0.05)
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
        """Stop the server and remove its objects and its log. Best effort: each step is
        guarded, and what fails is logged, never raised."""
        proc, self.process = self.process, None
        self._keys = None
        if proc is not None and self._end(proc):
            try:
                reaper.forget_process(proc.pid)
            except Exception as exc:  # the watchdog checks a pid's start time: no harm
                log.warning("the local S3 server (%s): unregistering it: %s", self.name, exc)
        store, self._store = self._store, None
        if store is not None:
            try:
                shutil.rmtree(store, ignore_errors=True)
                reaper.forget_path(store)
            except Exception as exc:
                log.warning("the local S3 server (%s): removing its objects: %s", self.name, exc)
        if not keep_log and self._log is not None:
            try:
                self._log.unlink(missing_ok=True)
                reaper.forget_path(self._log)
            except Exception as exc:
                log.warning("the local S3 server (%s): removing its log: %s", self.name, exc)

    def release(self) -> None:
        """Leave the server running for someone else: the watchdog no longer stops it, nor
        removes its log or its objects, when this process ends."""
        if self.process is not None:
            reaper.forget_process(self.process.pid)
        if self._store is not None:
            reaper.forget_path(self._store)
        if self._log is not None:
            reaper.forget_path(self._log)

    def _end(self, proc: subprocess.Popen[bytes]) -> bool:
        """Terminate, then kill; whether the process is gone."""
        for stop in (proc.terminate, proc.kill):
            if proc.poll() is not None:
                return True
            try:
                stop()
                proc.wait(timeout=10.0)
                return True
            except subprocess.TimeoutExpired:
                continue
            except OSError as exc:  # already gone, or not ours to signal
                log.warning("stopping the local S3 server (%s): %s", self.name, exc)
                return proc.poll() is not None
        # Still running: left registered, so the watchdog stops it when this process ends.
        log.warning(
            "the local S3 server (%s, pid %d) did not exit after SIGKILL", self.name, proc.pid
        )
        return False

    def __enter__(self) -> LocalS3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
