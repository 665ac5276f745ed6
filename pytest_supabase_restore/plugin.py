"""pytest entry point (``pytest11``): options, configuration, the collection gate, the header.

Thin on purpose: the drill, the fixtures and the reporting live in their own modules and are
imported only when ``--supabase-restore`` is on.
"""

from __future__ import annotations

import math
import os
import signal
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import CATEGORIES, QUICK_CATEGORIES
from .config import OPTIONS, Config, header_lines, resolve
from .fixtures import (  # noqa: F401 - fixtures are registered by being module attributes
    FLAG_REASON,
    RUN_DIR_KEY,
    SETTINGS_KEY,
    STATE_KEY,
    drill_settings,
    drill_state,
    get_state,
    staging_db,
    staging_dsn,
    staging_storage,
    supabase_backup,
)

if TYPE_CHECKING:
    from .redact import Redactor

MARKER = "supabase_category"
QUICK_MARKER = "supabase_quick"
DRILL_FIXTURES = {"supabase_backup", "staging_dsn", "staging_db", "staging_storage", "drill_state"}
CONTROLLER_NAME = "supabase-restore-drill"
SCRUBBER_NAME = "supabase-restore-scrubber"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("supabase-restore", "backup-restore drill for Supabase projects")
    for opt in OPTIONS:
        kwargs: dict[str, Any] = {"dest": opt.name, "default": None, "help": opt.help}
        if opt.kind == "bool":
            group.addoption(opt.flag, action="store_const", const=True, **kwargs)
            group.addoption(
                "--no-" + opt.flag[2:],
                action="store_const",
                const=False,
                dest=opt.name,
                default=None,
                help=f"Turn {opt.flag} off (overrides env and ini).",
            )
        else:
            if opt.choices:
                kwargs["choices"] = list(opt.choices)
            group.addoption(opt.flag, metavar=opt.metavar or opt.name.upper(), **kwargs)
        if opt.ini:
            parser.addini(opt.ini, help=f"{opt.help} (same as {opt.flag})", default=None)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(name): the drill category a smoke test counts towards "
        f"({', '.join(CATEGORIES)} or your own, e.g. custom).",
    )
    config.addinivalue_line(
        "markers",
        f"{QUICK_MARKER}: set by the plugin on the smoke tests of the cheap categories "
        f"({', '.join(QUICK_CATEGORIES)}); -m {QUICK_MARKER} runs a quick check, "
        "as --supabase-quick does.",
    )
    if config.option.help or getattr(config.option, "version", False):
        return  # --help keeps working on a broken configuration
    settings = resolve(config)
    config.stash[SETTINGS_KEY] = settings
    if not settings.enabled:
        return
    from .redact import Redactor
    from .scrub import OutputScrubber

    # Logs, warnings, test ids and debug traces, on the controller and on every worker;
    # registered first, so that the drill's own logs are covered too.
    scrubber = OutputScrubber(config, Redactor(settings.secrets()))
    config.pluginmanager.register(scrubber, SCRUBBER_NAME)
    scrubber.install()
    if settings.builtin_tests:
        _add_builtin_tests(config)  # also on xdist workers: they re-parse the invocation args
    from .reporting import SELECTION_PLUGIN_NAME, SelectionRecorder

    # Also on workers: under xdist they collect and deselect, and hand the result over.
    selection = SelectionRecorder()
    config.pluginmanager.register(selection, SELECTION_PLUGIN_NAME)
    if _is_worker(config):
        run_dir = config.workerinput.get("supabase_run_dir")  # type: ignore[attr-defined]
        if run_dir:
            config.stash[RUN_DIR_KEY] = Path(run_dir)
        return
    from .reporting import PLUGIN_NAME, ReportingPlugin

    controller = DrillController(config, settings, scrubber.redactor)
    config.pluginmanager.register(controller, CONTROLLER_NAME)
    config.pluginmanager.register(
        ReportingPlugin(
            settings,
            lambda: get_state(config),
            scrubber.redactor,
            selection=selection,
        ),
        PLUGIN_NAME,
    )


def _add_builtin_tests(config: pytest.Config) -> None:
    """Collect the built-in smoke tests: instead of the default test paths, or beside
    explicitly given paths (so ``pytest --supabase-restore`` alone runs the drill)."""
    from .builtin_tests import add_builtin_tests

    builtin = str(add_builtin_tests(config))
    explicit = config.args_source == pytest.Config.ArgsSource.ARGS
    args = list(config.args) if explicit else []
    if builtin not in args:
        args.append(builtin)
    config.args[:] = args


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None or not settings.enabled:
        return None
    return header_lines(settings)


def _category(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker(MARKER)
    if marker is not None:
        return str(marker.args[0]) if marker.args else str(marker.kwargs.get("name", "custom"))
    if DRILL_FIXTURES & set(getattr(item, "fixturenames", ())):
        return "custom"
    return None


# First, so that -m/-k (pytest's own hook) and the selection recorder see the markers and
# categories set here.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    settings = config.stash.get(SETTINGS_KEY, None)
    enabled = settings is not None and settings.enabled
    quick = settings is not None and settings.quick
    skip = pytest.mark.skip(reason=FLAG_REASON)
    deselected: list[pytest.Item] = []
    for item in items:
        category = _category(item)
        if category is None:
            continue
        if category in QUICK_CATEGORIES:
            item.add_marker(QUICK_MARKER)
        elif quick and category in CATEGORIES:
            deselected.append(item)  # custom categories are kept
        if not enabled:
            item.add_marker(skip)
            continue
        item.user_properties.append(("supabase_category", category))
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        dropped = {id(item) for item in deselected}
        items[:] = [item for item in items if id(item) not in dropped]


class DrillController:
    """Controller-side: runs the drill once before collection, owns its teardown."""

    def __init__(self, config: pytest.Config, settings: Config, redactor: Redactor) -> None:
        self.config = config
        self.settings = settings
        self.redactor = redactor
        self.run_dir = Path(tempfile.mkdtemp(prefix="supabase-restore-run-"))
        os.chmod(self.run_dir, 0o700)
        from .reaper import reaper

        reaper.watch_path(self.run_dir)  # removed even if this process is killed
        config.stash[RUN_DIR_KEY] = self.run_dir
        self.drill: Any = None
        self._previous_sigterm: Any = None

    def _progress(self, message: str) -> None:
        text = self.redactor.redact(message)
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line(f"[supabase-restore] {text}")

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        from .drill import Drill

        if self.config.option.collectonly and not self.settings.dry_run:
            pass  # collecting still needs the manifest to parametrize; run the drill anyway
        # SIGTERM (a cancelled CI job) stops the drill like Ctrl-C, so teardown still runs.
        self._previous_sigterm = signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
        self.drill = Drill(self.settings, self.run_dir, self._progress)
        state = self.drill.run(time_limit=self._time_limit())
        self.config.stash[STATE_KEY] = state
        state.save(self.run_dir)

    def _time_limit(self) -> float | None:
        """--supabase-drill-timeout, else pytest-timeout's session timeout (which on its own
        only acts between tests, so it would never stop a drill that hangs)."""
        if self.settings.drill_timeout is not None:
            return self.settings.drill_timeout or None
        try:
            session = self.config.getoption("session_timeout", None)
            if session is None:
                session = self.config.getini("session_timeout")
        except ValueError:  # pytest-timeout is not installed
            return None
        try:
            seconds = float(session)
        except (TypeError, ValueError):  # unset ("" from the ini) or not a number
            return None
        # inf or nan would overflow the timer (an INTERNALERROR); neither is a limit.
        return seconds if math.isfinite(seconds) and seconds > 0 else None

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist: tell each worker where the drill state is."""
        node.workerinput["supabase_run_dir"] = str(self.run_dir)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        import shutil

        if self.drill is not None:
            for message in self.drill.teardown():
                self._progress(message)
            self.drill = None
        from .reaper import reaper

        shutil.rmtree(self.run_dir, ignore_errors=True)
        reaper.forget_path(self.run_dir)
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)


def _sigterm_to_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
