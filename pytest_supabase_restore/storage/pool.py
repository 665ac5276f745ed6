"""``map`` on a thread pool with a bounded number of tasks in flight.

``ThreadPoolExecutor.map`` submits every task at once: for 12,000 objects that is 12,000
futures (and their arguments and results) alive together, memory that grows with the
bucket. Here at most ``window`` tasks are submitted ahead of the one being collected.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def bounded_map(
    pool: ThreadPoolExecutor, fn: Callable[[T], R], items: Iterable[T], *, window: int
) -> Iterator[R]:
    """``fn(item)`` for each item, results in order, at most ``window`` tasks in flight.

    A task's exception is raised when its result is reached, as with ``pool.map``."""
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            if len(pending) >= max(1, window):
                yield pending.popleft().result()
            pending.append(pool.submit(fn, item))
        while pending:
            yield pending.popleft().result()
    finally:  # abandoned (an exception, or the caller stopped): what has not started never will
        for future in pending:
            future.cancel()
