"""The one rule for the first line of an error message."""

from __future__ import annotations

import pytest

from pytest_supabase_restore.errors import first_line


@pytest.mark.parametrize("message", ["", "   ", "\n\n", " \n\t\n "])
def test_an_empty_message_gives_the_fallback(message: str) -> None:
    assert first_line(message, "OperationalError") == "OperationalError"
    assert first_line(Exception(message), "Exception") == "Exception"
    assert first_line(message) == ""


def test_the_first_non_empty_line_stripped() -> None:
    assert first_line("\n  connection refused  \nDETAIL: more\n", "x") == "connection refused"
    assert first_line(ValueError("one line")) == "one line"
