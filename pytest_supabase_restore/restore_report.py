"""Restore errors for people: the cause an error message states, as one line."""

from __future__ import annotations

import re

_DETAIL = re.compile(r"\s+(?:LINE \d+:|DETAIL:|HINT:|CONTEXT:|QUERY:|WHERE:)\s.*$", re.S)
_ERROR_PREFIX = re.compile(r"^(?P<label>[\w.]+: )?(?:ERROR|FATAL):\s+")
_QUOTES_VALUE = re.compile(
    r"(?P<what>(?:invalid input (?:syntax|value) for (?:type|enum) [^:]+|"
    r"malformed \w+ literal|invalid byte sequence for encoding \S+|"
    r"invalid input syntax for [^:]+)): .*$"
)


def message_cause(message: str) -> str:
    """The cause an error message states, as one line: without ``ERROR:``, the statement
    excerpt (``LINE 3: ...``), DETAIL, HINT and CONTEXT (which may quote rows), and with a
    value the message quotes withheld (``invalid input syntax for type integer: ...``)."""
    text = " ".join(str(message).split())
    text = _DETAIL.sub("", text)
    for _ in range(2):  # "COPY failed for table "t": ERROR:  ..." carries a second prefix
        m = _ERROR_PREFIX.match(text)
        if m:
            text = (m.group("label") or "") + text[m.end() :]
    text = text.replace(": ERROR: ", ": ")
    return _QUOTES_VALUE.sub(lambda m: f"{m.group('what')}: (value withheld)", text).strip()


__all__ = ["message_cause"]
