"""Work run in a thread of its own, whose outcome the starting thread collects later."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Background(Generic[T]):
    """Start ``fn`` in a daemon thread now; :meth:`result` waits for it and returns its
    value or raises its exception in the caller's thread. ``seconds`` is how long it ran."""

    def __init__(self, fn: Callable[[], T], name: str) -> None:
        self._fn = fn
        self._value: T | None = None
        self.error: BaseException | None = None
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        try:
            self._value = self._fn()
        except BaseException as exc:  # handed to the thread that collects the result
            self.error = exc
        finally:
            self.seconds = time.monotonic() - started

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def result(self) -> T:
        self._thread.join()
        if self.error is not None:
            raise self.error
        return self._value  # type: ignore[return-value]  # set when no error was raised
