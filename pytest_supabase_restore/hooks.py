"""The hooks this plugin adds to pytest (registered by ``pytest_addhooks`` in ``plugin.py``).

Implement one in a ``conftest.py`` (or a plugin of your own) to extend the drill, e.g. to
send the verdict somewhere the plugin does not post to::

    def pytest_supabase_restore_verdict(verdict, config):
        if not verdict.passed:
            page_the_on_call_engineer(verdict.status, verdict.reason)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .verdict import Verdict


@pytest.hookspec()
def pytest_supabase_restore_verdict(verdict: Verdict, config: pytest.Config) -> None:
    """Called once per run with the drill's :class:`~pytest_supabase_restore.verdict.Verdict`,
    after it is built and the plugin's own outputs (JSON summary, GitHub, Slack) are done.

    Only on the controller process, never on an xdist worker, and not on ``--collect-only``
    (nothing ran, so there is no verdict). An implementation that raises does not hide
    the result: its error is shown with the drill's reporting problems and the exit status
    becomes non-zero.
    """
