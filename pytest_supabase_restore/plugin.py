"""pytest entry point (``pytest11``): options, configuration, the collection gate, the header.

Thin on purpose, as pytest imports it on every run wherever the plugin is installed: it
loads no database driver, S3 client or server, cluster module or notifier (a test checks
it). The fixtures it registers import what they need when they run; the run-once controller
(``controller.py``), the scrubber and the reporting plugin are imported and registered only
when ``--supabase-restore`` is on; the plugin's own hooks are in ``hooks.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from . import CATEGORIES, QUICK_CATEGORIES
from .config import OPTIONS, header_lines, resolve
from .fixtures import (  # noqa: F401 - fixtures are registered by being module attributes
    FLAG_REASON,
    HEADER_SHOWN_KEY,
    RUN_DIR_KEY,
    SETTINGS_KEY,
    drill_settings,
    drill_state,
    get_state,
    staging_db,
    staging_dsn,
    staging_storage,
    supabase_backup,
)

REGISTERED_KEY = pytest.StashKey[list[object]]()
MARKER = "supabase_category"
QUICK_MARKER = "supabase_quick"
DRILL_FIXTURES = {"supabase_backup", "staging_dsn", "staging_db", "staging_storage", "drill_state"}
SCRUBBER_NAME = "supabase-restore-scrubber"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hooks

    pluginmanager.add_hookspecs(hooks)


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
    _register(config, scrubber, SCRUBBER_NAME)
    scrubber.install()
    if settings.builtin_tests:
        _add_builtin_tests(config)  # also on xdist workers: they re-parse the invocation args
    from .reporting import SELECTION_PLUGIN_NAME, SelectionRecorder

    # Also on workers: under xdist they collect and deselect, and hand the result over.
    selection = SelectionRecorder()
    _register(config, selection, SELECTION_PLUGIN_NAME)
    from . import controller

    if _is_worker(config):
        run_dir = config.workerinput.get(controller.RUN_DIR_INPUT)  # type: ignore[attr-defined]
        if run_dir:
            config.stash[RUN_DIR_KEY] = Path(run_dir)
        return
    from .reporting import PLUGIN_NAME, ReportingPlugin

    controller.register(config, settings, scrubber.redactor)
    reporting = ReportingPlugin(
        settings, lambda: get_state(config), scrubber.redactor, selection=selection
    )
    _register(config, reporting, PLUGIN_NAME)


def _register(config: pytest.Config, plugin: object, name: str) -> None:
    """Register one of the plugin's objects, remembered in ``config.stash`` so that
    ``pytest_unconfigure`` unregisters it (as pytest's junitxml does with its LogXML)."""
    config.pluginmanager.register(plugin, name)
    config.stash.setdefault(REGISTERED_KEY, []).append(plugin)


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
    if settings is None or not settings.enabled or config.stash.get(HEADER_SHOWN_KEY, False):
        return None  # the controller printed it before the drill started
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


# First among the unconfigure hooks (as the controller's own hook used to be, registered
# after pytest's plugins): teardown messages still reach the terminal, and the scrubber,
# whose own unconfigure runs last, still redacts what teardown logs.
@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop everything the drill started (best effort) and unregister the plugin's objects.
    Their own ``pytest_unconfigure`` still runs in this call (pluggy calls the hooks it had
    when the call began): the scrubber's undoes what it installed."""
    from . import controller

    try:
        controller.unregister(config)
    finally:
        registered: list[object] = config.stash.get(REGISTERED_KEY, [])
        for plugin in reversed(registered):
            config.pluginmanager.unregister(plugin)
        config.stash[REGISTERED_KEY] = []
