"""A watchdog that cleans up after this process when it dies without its teardown.

Teardown normally stops every server and removes every temporary directory (also after
Ctrl-C and SIGTERM). Some endings skip it: ``kill -9``, the out-of-memory killer, or
pytest-timeout's ``thread`` method, which ends the process with ``os._exit`` after a test
hangs. For those, each process that starts servers also starts one small watchdog in its
own session. The parent tells it, over a pipe, which processes and paths it owns, and which
HTTP requests undo what it created elsewhere (deleting a Supabase branch); the watchdog
only waits. When the pipe closes (the parent is gone, however it ended), it sends every
request still registered, stops every process still registered and removes every path
still registered. A request's headers (a token) travel only over the pipe, never in the
watchdog's arguments or environment. A normal teardown
unregisters everything first, so then the watchdog has nothing to do.

The watchdog uses only the standard library and never imports the rest of the package.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

__all__ = ["Reaper", "reaper"]


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (field 22 of /proc/PID/stat), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


class Reaper:
    """The parent's end: registers what the watchdog must clean up if this process dies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._pipe: IO[str] | None = None
        self._proc: subprocess.Popen[str] | None = None

    def _send(self, line: str) -> None:
        with self._lock:
            if self._pid != os.getpid() or self._pipe is None:
                self._spawn()  # first use, or first use after a fork
            assert self._pipe is not None
            try:
                self._pipe.write(line + "\n")
                self._pipe.flush()
            except (OSError, ValueError):  # the watchdog died: start another one
                self._spawn()
                self._pipe.write(line + "\n")
                self._pipe.flush()

    def _spawn(self) -> None:
        self._proc = subprocess.Popen(
            # Run as a script: it needs only the standard library, not an importable package.
            [sys.executable, "-I", os.path.abspath(__file__), str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # a Ctrl-C aimed at the test run does not reach it
            cwd="/",
            # It needs nothing of this process's environment, and must not hold its secrets.
            env={k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")},
        )
        self._pipe = self._proc.stdin
        self._pid = os.getpid()

    def watch_process(self, pid: int, stop_signal: int = signal.SIGTERM) -> None:
        """Stop ``pid`` (and its process group if it leads one) if this process dies."""
        start = _start_time(pid)
        if start is not None:
            self._send(f"P\t{pid}\t{start}\t{int(stop_signal)}")

    def forget_process(self, pid: int) -> None:
        self._send(f"p\t{pid}")

    def watch_path(self, path: str | os.PathLike[str]) -> None:
        """Remove ``path`` (a file or a directory tree) if this process dies."""
        self._send(f"D\t{os.fspath(path)}")

    def forget_path(self, path: str | os.PathLike[str]) -> None:
        self._send(f"d\t{os.fspath(path)}")

    def watch_request(self, method: str, url: str, headers: dict[str, str]) -> None:
        """Send ``method url`` (with ``headers``) if this process dies: e.g. the DELETE that
        removes a branch it created. ``url`` is the key of :meth:`forget_request`."""
        self._send(f"R\t{url}\t{method}\t{json.dumps(headers)}")

    def forget_request(self, url: str) -> None:
        self._send(f"r\t{url}")


reaper = Reaper()


# -- the watchdog process -----------------------------------------------------------------
def _alive(pid: int, start: str) -> bool:
    return _start_time(pid) == start


def _stop(pid: int, start: str, stop_signal: int) -> None:
    group = False
    with contextlib.suppress(OSError):
        group = os.getpgid(pid) == pid
    for sig, wait in ((stop_signal, 10.0), (signal.SIGKILL, 5.0)):
        if not _alive(pid, start):
            break
        with contextlib.suppress(OSError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _alive(pid, start):
            time.sleep(0.05)
    if group:  # children of a server (PostgreSQL backends) that outlived it
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)


def _remove(path: str) -> None:
    p = Path(path)
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            p.unlink()


def _request(url: str, method: str, headers: dict[str, str]) -> None:
    """Send one clean-up request: three tries, 30 s each, 5xx and connection errors retried."""
    for attempt in range(3):
        request = urllib.request.Request(url, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30):  # noqa: S310
                return
        except urllib.error.HTTPError as exc:
            if exc.code < 500 and exc.code != 429:
                return  # refused for good (already gone: 404): nothing more to try
        except (OSError, ValueError):
            pass
        time.sleep(2.0 * (attempt + 1))


def main() -> None:
    for ignored in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(ignored, signal.SIG_IGN)
    processes: dict[int, tuple[str, int]] = {}
    paths: dict[str, None] = {}
    requests: dict[str, tuple[str, dict[str, str]]] = {}
    for line in sys.stdin:
        kind, _, rest = line.rstrip("\n").partition("\t")
        if kind == "P":
            pid, start, stop_signal = rest.split("\t")
            processes[int(pid)] = (start, int(stop_signal))
        elif kind == "p":
            processes.pop(int(rest), None)
        elif kind == "D":
            paths[rest] = None
        elif kind == "d":
            paths.pop(rest, None)
        elif kind == "R":
            url, method, headers = rest.split("\t", 2)
            requests[url] = (method, json.loads(headers))
        elif kind == "r":
            requests.pop(rest, None)
    # The parent is gone. What it created elsewhere first (a branch costs money by the hour).
    for url, (method, headers) in requests.items():
        with contextlib.suppress(Exception):
            _request(url, method, headers)
    # Processes first (a server must stop before its directory goes).
    for pid, (start, stop_signal) in processes.items():
        _stop(pid, start, stop_signal)
    for path in reversed(list(paths)):
        _remove(path)


if __name__ == "__main__":
    main()
