"""What a wheel of the plugin holds: every package of the source tree, and the built-in smoke
tests inside the plugin's namespace (``pyproject.toml`` lists the packages by hand, because
setuptools cannot discover a package mapped from another directory)."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11 and later
ROOT = Path(__file__).resolve().parent.parent


def _setuptools() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return dict(tomllib.load(fh)["tool"]["setuptools"])


def test_every_package_of_the_source_tree_is_listed() -> None:
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "pytest_supabase_restore").rglob("__init__.py")
    }
    listed = set(_setuptools()["packages"])  # type: ignore[call-overload]
    assert listed == found | {"pytest_supabase_restore.smoke_tests"}


def test_the_builtin_smoke_tests_are_installed_in_the_plugins_namespace() -> None:
    assert _setuptools()["package-dir"] == {"pytest_supabase_restore.smoke_tests": "smoke_tests"}
    assert (ROOT / "smoke_tests" / "__init__.py").is_file()
