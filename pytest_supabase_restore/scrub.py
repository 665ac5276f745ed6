"""Every side channel of a pytest run goes through the redactor, not only the reports.

:class:`~pytest_supabase_restore.reporting.ReportingPlugin` scrubs test reports; this
module covers what pytest and libraries print or write on their own:

* **logging**: a :class:`RedactingFilter` on the root logger's handlers and on the handlers
  of pytest's ``logging-plugin`` (``caplog``, the report sections, ``--log-file``, live
  ``--log-cli-level`` logs), and a log-record factory, so that a record sent to a handler
  the plugin never saw (``boto3.set_stream_logger`` attaches its own to ``botocore``)
  is scrubbed as well. botocore's DEBUG log shows the S3 access key id in every signed
  request; it is one of ``Config.secrets()``.
* **warnings**: ``warnings.formatwarning`` (what pytest's summary and Python's own
  ``showwarning`` use to turn a warning into text) is wrapped, and the ``warnings``
  entries of the terminal reporter are redacted as they are recorded.
* **test ids**: a parametrized value that holds a secret gets a redacted id
  (``pytest_make_parametrize_id``), and an explicit id (``pytest.param(id=...)``,
  ``ids=``) is rewritten at collection, before pytest, xdist, JUnit or the HTML report
  see it.
* **pytest's debug trace** (``--debug`` writes ``pytestdebug.log``; ``PYTEST_DEBUG=1``
  writes to stderr): the trace writer is wrapped, so every hook call and its arguments
  are redacted before they are written. The file's first lines (versions, directories
  and the command line) are written before any plugin is configured; this plugin takes
  its secrets from the environment only, never from the command line, so they cannot
  be there.
* **pytest-xdist's debug output** (``--debug`` under ``-n``): the controller's, each
  worker controller's and each worker's ``log`` print to stderr, test reports included;
  they are replaced by redacting ones.

What stays out of reach: execnet's own ``EXECNET_DEBUG`` trace (written by execnet before
pytest runs in a worker) and output that a test writes straight to a file descriptor
with pytest's capturing turned off (``-s``). Do not set ``EXECNET_DEBUG`` in a job that
holds the secrets.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable
from typing import Any

import pytest

from .redact import Redactor


def scrub_record(record: logging.LogRecord, redactor: Redactor) -> None:
    """Redact a log record in place: its message (with its arguments merged in), its
    exception text and its stack. Idempotent, so that the record factory and every
    handler's filter may each apply it.

    Only what holds a secret is changed: a record without one keeps ``msg``/``args``
    apart (as structured handlers expect) and its exception is left to the handler's
    own formatter."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: logging would print its arguments raw
        message = f"{record.msg} {record.args!r}"
    redacted = redactor.redact(message)
    if redacted != message:
        record.msg, record.args = redacted, None
    if record.exc_info and not record.exc_text:
        # Formatted as the default formatter would; formatters use exc_text when set.
        text = logging.Formatter().formatException(record.exc_info)
        if redactor.contains_secret(text):
            record.exc_text = text
    if record.exc_text:
        record.exc_text = redactor.redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redactor.redact(record.stack_info)


class RedactingFilter(logging.Filter):
    """A handler filter that redacts every record it passes (it never drops one)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record, self.redactor)
        return True


class _RedactingProducer:
    """Stands in for pytest-xdist's ``Producer`` (its ``log`` objects): the same
    ``[name] message`` lines on stderr, redacted."""

    def __init__(self, name: str, enabled: bool, redactor: Redactor) -> None:
        self.name = name
        self.enabled = enabled
        self._redactor = redactor

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        if self.enabled:
            text = self._redactor.redact(" ".join(str(a) for a in args))
            print(f"[{self.name}]", text, file=sys.stderr)

    def __getattr__(self, name: str) -> _RedactingProducer:
        return _RedactingProducer(name, self.enabled, self._redactor)


def _redacting_log(owner: Any, redactor: Redactor) -> None:
    log = getattr(owner, "log", None)
    if log is None or isinstance(log, _RedactingProducer):
        return
    name = getattr(log, "name", None)
    if isinstance(name, str):
        owner.log = _RedactingProducer(name, bool(getattr(log, "enabled", False)), redactor)


class OutputScrubber:
    """A pytest plugin (controller and xdist workers) that routes pytest's and libraries'
    side outputs through ``redactor``. :meth:`install` when registered; everything is
    undone at ``pytest_unconfigure``."""

    def __init__(self, config: pytest.Config, redactor: Redactor) -> None:
        self.config = config
        self.redactor = redactor
        self.filter = RedactingFilter(redactor)
        self._handlers: list[logging.Handler] = []
        self._factory: Callable[..., logging.LogRecord] | None = None
        self._our_factory: Callable[..., logging.LogRecord] | None = None
        self._formatwarning: Any = None
        self._our_formatwarning: Any = None
        self._warnings_seen = 0

    # -- installing -----------------------------------------------------------------------
    def install(self) -> None:
        for handler in logging.getLogger().handlers:
            self._guard_handler(handler)
        self._install_record_factory()
        self._install_formatwarning()
        self._install_trace_writer()

    def _guard_handler(self, handler: logging.Handler | None) -> None:
        if handler is not None and self.filter not in handler.filters:
            handler.addFilter(self.filter)
            self._handlers.append(handler)

    def _install_record_factory(self) -> None:
        previous = logging.getLogRecordFactory()
        redactor = self.redactor

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            scrub_record(record, redactor)
            return record

        self._factory, self._our_factory = previous, factory
        logging.setLogRecordFactory(factory)

    def _install_formatwarning(self) -> None:
        previous = warnings.formatwarning
        redactor = self.redactor

        def formatwarning(*args: Any, **kwargs: Any) -> str:
            return redactor.redact(previous(*args, **kwargs))

        self._formatwarning, self._our_formatwarning = previous, formatwarning
        warnings.formatwarning = formatwarning

    def _install_trace_writer(self) -> None:
        # pytest's TagTracer keeps its writer in _writer (set by --debug or PYTEST_DEBUG);
        # setwriter() is public, reading it back is not. Without a writer there is no
        # trace to protect.
        root = self.config.trace.root
        writer = getattr(root, "_writer", None)
        if writer is None:
            return
        redactor = self.redactor

        def write(text: str) -> object:
            return writer(redactor.redact(text))

        # Not undone at unconfigure: the tracer belongs to this run's config, and pytest
        # writes to it until its own cleanup closes the file.
        root.setwriter(write)

    # -- hooks ----------------------------------------------------------------------------
    def pytest_plugin_registered(self, plugin: object, plugin_name: str) -> None:
        """Guard what other plugins create after this one: pytest's log handlers and
        xdist's debug printers."""
        if plugin_name == "logging-plugin":
            for attr in ("caplog_handler", "report_handler", "log_file_handler", "log_cli_handler"):
                self._guard_handler(getattr(plugin, attr, None))
        elif plugin_name == "dsession" or type(plugin).__name__ == "WorkerInteractor":
            _redacting_log(plugin, self.redactor)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist: each worker controller's debug printer."""
        _redacting_log(node, self.redactor)

    def pytest_make_parametrize_id(self, val: object, argname: str) -> str | None:
        """A parametrized string or bytes value that holds a secret gets a redacted id."""
        if isinstance(val, bytes):
            text = val.decode("ascii", "backslashreplace")
        elif isinstance(val, str):
            text = val
        else:
            return None
        redacted = self.redactor.redact(text)
        if redacted == text:
            return None
        return redacted.encode("ascii", "backslashreplace").decode("ascii")

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Rewrite the ids the hook above never saw (``pytest.param(id=...)``, ``ids=``,
        an ``ids`` function): first, so every later hook, xdist and the reports see the
        redacted id only."""
        for item in items:
            if not self.redactor.contains_secret(item.nodeid):
                continue
            old_name = item.name
            item._nodeid = self.redactor.redact(item.nodeid)
            item.name = self.redactor.redact(old_name)
            item.__dict__.pop("location", None)  # a cached_property built from the name
            keywords = getattr(item.keywords, "_markers", None)
            if isinstance(keywords, dict) and old_name in keywords:
                keywords[item.name] = keywords.pop(old_name)

    @pytest.hookimpl(trylast=True)
    def pytest_warning_recorded(self) -> None:
        """After the terminal reporter stored a warning: redact the new entries of its
        ``warnings`` list, which its summary prints as they are."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        entries = getattr(reporter, "stats", {}).get("warnings", [])
        for entry in entries[self._warnings_seen :]:
            message = getattr(entry, "message", None)
            if isinstance(message, str):
                entry.message = self.redactor.redact(message)
        self._warnings_seen = len(entries)

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self) -> None:
        """Undo what is global to the process: an in-process pytest run (pytester) must not
        leave filters, a record factory or a warning formatter behind for the next one.
        What another party installed after this plugin is left in place."""
        for handler in self._handlers:
            handler.removeFilter(self.filter)
        self._handlers.clear()
        if self._factory is not None and logging.getLogRecordFactory() is self._our_factory:
            logging.setLogRecordFactory(self._factory)
        if self._formatwarning is not None and warnings.formatwarning is self._our_formatwarning:
            warnings.formatwarning = self._formatwarning
        self._factory = self._formatwarning = None
