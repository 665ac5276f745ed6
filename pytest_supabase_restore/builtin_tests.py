"""The built-in smoke tests, collected under the names they are installed as.

pytest imports a test file under a module name it derives from where the file lies: the
directories above it that hold an ``__init__.py``. Installed from a wheel, the built-in tests
lie in ``site-packages/pytest_supabase_restore/smoke_tests/`` and would get their installed
names; from an editable install or a checkout they lie in the repository's top-level
``smoke_tests/`` and would be imported as ``smoke_tests.*``, a name a project's own
``smoke_tests`` package takes first (``FAIL: no smoke tests ran``, ``ModuleNotFoundError``).
Node ids would also depend on the install location and the rootdir
(``../main/smoke_tests/...``, ``.venv/lib/python3.11/site-packages/...``).

So the plugin collects that directory itself: every module is imported by its installed
name, ``pytest_supabase_restore.smoke_tests.<module>``, wherever the files are, and the node
ids read ``pytest_supabase_restore/smoke_tests/test_storage.py::...`` in every install. The
package's ``conftest.py`` (its parametrization and fixtures) is registered by that name too,
as a plugin of the run, instead of being imported from its path.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "pytest_supabase_restore.smoke_tests"
NODEID = PACKAGE.replace(".", "/")
PLUGIN_NAME = "supabase-restore-builtin-tests"
CONFTEST_NAME = f"{PACKAGE}.conftest"


def builtin_dir() -> Path:
    """The directory the built-in smoke tests are installed in."""
    package = importlib.import_module(PACKAGE)
    return Path(next(iter(package.__path__)))


class BuiltinModule(pytest.Module):
    """One category's module, imported by its installed name (not from its path)."""

    def _getobj(self) -> object:
        return importlib.import_module(f"{PACKAGE}.{self.path.stem}")


class BuiltinTests(pytest.Collector):
    """The built-in smoke tests' directory: its ``test_*.py`` modules, in name order.

    Not a :class:`pytest.Directory`, so pytest does not import the ``conftest.py`` there
    from its path: :class:`BuiltinCollection` registers it by name before collecting."""

    def collect(self) -> Iterator[pytest.Module]:
        assert self.path is not None
        for path in sorted(self.path.glob("test_*.py")):
            if self.ihook.pytest_ignore_collect(collection_path=path, config=self.config):
                continue
            yield BuiltinModule.from_parent(self, path=path, nodeid=f"{NODEID}/{path.name}")


class BuiltinCollection:
    """Plugin: collects the built-in smoke tests' directory as :class:`BuiltinTests`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @pytest.hookimpl(tryfirst=True)
    def pytest_collect_directory(
        self, path: Path, parent: pytest.Collector
    ) -> pytest.Collector | None:
        manager = parent.config.pluginmanager
        if path != self.directory or manager.has_plugin(str(path / "conftest.py")):
            # Given on the command line by its path, the directory had its conftest.py
            # imported from there already: pytest collects it as any other.
            return None
        if not manager.has_plugin(CONFTEST_NAME):
            manager.register(importlib.import_module(CONFTEST_NAME), CONFTEST_NAME)
        return BuiltinTests.from_parent(parent, name="smoke_tests", path=path, nodeid=NODEID)


def add_builtin_tests(config: pytest.Config) -> Path:
    """Register the collection of the built-in smoke tests; their directory."""
    directory = builtin_dir()
    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(BuiltinCollection(directory), PLUGIN_NAME)
    return directory
