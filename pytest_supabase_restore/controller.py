"""The run-once controller: runs the drill once per run, before collection, and owns its end.

Registered on the controller process only (never on an xdist worker), kept in
``config.stash`` and unregistered at unconfigure, as pytest's ``junitxml`` does with its
``LogXML``: :func:`register` in ``pytest_configure``, :func:`unregister` in
``pytest_unconfigure``. It

* runs the :class:`~pytest_supabase_restore.drill.Drill` at session start, unless the run
  only collects (``--collect-only`` lists the tests: no export, no restore, no connection);
* turns SIGTERM (a cancelled CI job) into the KeyboardInterrupt of Ctrl-C while the run
  lasts, so that teardown still runs;
* tells each xdist worker where the drill state is;
* hands the verdict, once built, to ``pytest_supabase_restore_verdict`` (:mod:`.hooks`);
* tears everything down at the end, each step best effort (:mod:`.cleanup`).
"""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .cleanup import remove_dir, run_steps
from .config import header_lines
from .fixtures import HEADER_SHOWN_KEY, RUN_DIR_KEY, STATE_KEY

if TYPE_CHECKING:
    from .config import Config
    from .drill import Drill
    from .redact import Redactor
    from .results import DrillState

CONTROLLER_NAME = "supabase-restore-drill"
RUN_DIR_INPUT = "supabase_run_dir"  # key in an xdist worker's workerinput
PREFIX = "[supabase-restore]"


class DrillController:
    """Controller-side: runs the drill once before collection, owns its teardown."""

    def __init__(self, config: pytest.Config, settings: Config, redactor: Redactor) -> None:
        self.config = config
        self.settings = settings
        self.redactor = redactor
        self.run_dir: Path | None = None
        self.drill: Drill | None = None
        self._previous_sigterm: Any = None

    def _progress(self, message: str) -> None:
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line(f"{PREFIX} {self.redactor.redact(message)}")

    def _run_drill(self, drill: Drill) -> DrillState:
        """Run the drill with its live progress (a heartbeat while a phase is quiet)."""
        from .progress import LiveProgress

        live = LiveProgress(
            self.config.pluginmanager.get_plugin("terminalreporter"),
            self.redactor,
            lambda: drill.current_phase,
            drill.work,
        )
        drill.progress = live
        live.start()
        try:
            return drill.run()
        finally:
            live.stop()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.config.option.collectonly:
            # Listing the tests needs no backup: the smoke tests are collected once each,
            # not parametrized from a manifest.
            self._progress("--collect-only: the drill does not run (no export, no restore)")
            return
        from .drill import Drill
        from .reaper import reaper

        self._header()
        self.run_dir = Path(tempfile.mkdtemp(prefix="supabase-restore-run-"))
        os.chmod(self.run_dir, 0o700)
        reaper.watch_path(self.run_dir)  # removed even if this process is killed
        self.config.stash[RUN_DIR_KEY] = self.run_dir
        # SIGTERM (a cancelled CI job) stops the drill like Ctrl-C, so teardown still runs.
        self._previous_sigterm = signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
        self.drill = Drill(self.settings, self.run_dir, self._progress, self.redactor)
        state = self._run_drill(self.drill)
        self.config.stash[STATE_KEY] = state
        state.save(self.run_dir)

    def _header(self) -> None:
        """The settings header, before the drill starts (pytest's own header comes after
        the drill, and not at all with ``-q``): what runs, and where each setting came from."""
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is None:
            return
        for line in header_lines(self.settings):
            tr.write_line(self.redactor.redact(line))
        self.config.stash[HEADER_SHOWN_KEY] = True

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist: tell each worker where the drill state is."""
        if self.run_dir is not None:
            node.workerinput[RUN_DIR_INPUT] = str(self.run_dir)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """After the reporting plugin built the verdict: the verdict hook, once."""
        from .reporting import PLUGIN_NAME

        reporting = self.config.pluginmanager.get_plugin(PLUGIN_NAME)
        verdict = getattr(reporting, "verdict", None)
        if reporting is None or verdict is None:
            return
        try:
            self.config.hook.pytest_supabase_restore_verdict(verdict=verdict, config=self.config)
        except Exception as exc:  # a team's notifier must not hide the result
            reporting.problems.append(
                self.redactor.line(
                    f"pytest_supabase_restore_verdict failed: {type(exc).__name__}: {exc}", 500
                )
            )
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def close(self) -> list[str]:
        """Stop everything the drill started, remove the run directory and give SIGTERM its
        handler back: every step runs even when another one fails. Returns the failures."""
        steps = [
            ("tear down the drill", self._teardown_drill),
            ("remove the run directory", self._remove_run_dir),
            ("restore the SIGTERM handler", self._restore_sigterm),
        ]
        return run_steps(steps, redactor=self.redactor)

    def _teardown_drill(self) -> None:
        drill, self.drill = self.drill, None
        if drill is not None:
            for message in drill.teardown():
                self._progress(message)

    def _remove_run_dir(self) -> None:
        run_dir, self.run_dir = self.run_dir, None
        if run_dir is not None:
            remove_dir(run_dir)

    def _restore_sigterm(self) -> None:
        previous, self._previous_sigterm = self._previous_sigterm, None
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


CONTROLLER_KEY = pytest.StashKey[DrillController]()


def register(config: pytest.Config, settings: Config, redactor: Redactor) -> DrillController:
    """Create the controller, keep it in ``config.stash`` and register it as a plugin."""
    controller = DrillController(config, settings, redactor)
    config.stash[CONTROLLER_KEY] = controller
    config.pluginmanager.register(controller, CONTROLLER_NAME)
    return controller


def unregister(config: pytest.Config) -> None:
    """Tear the controller's drill down (best effort) and unregister it; a no-op when
    :func:`register` was never called (no ``--supabase-restore``, or an xdist worker)."""
    controller = config.stash.get(CONTROLLER_KEY, None)
    if controller is None:
        return
    del config.stash[CONTROLLER_KEY]
    try:
        controller.close()
    finally:
        config.pluginmanager.unregister(controller)


def _sigterm_to_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
