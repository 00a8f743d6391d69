"""Work one step ahead on a background thread: one write in flight, one read ahead.

Parquet and Arrow IPC writers encode and compress with the GIL released, so a
reader can parse (or a stage compute) the next chunk while the previous one is
written. At most one write is pending: memory stays at about two chunks.
`prefetch` is the same for reading: the next item is produced while the caller
works on this one.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
_END = object()


class BackgroundWriter:
    """submit(fn, ...) runs fn on the writer thread after the previous call finished;
    wait() re-raises the error of the pending call, if any; close() waits and stops."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[Any] | None = None

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self.wait()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
        self._pending = self._pool.submit(fn, *args)

    def wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None


def prefetch(items: Iterator[T], name: str) -> Generator[T, None, None]:
    """What `items` yields, in order, each next item produced on a thread while the
    caller works on the current one (one item ahead, never more). An error raised by
    `items` is raised here, at the item it stopped at. Closing this generator waits
    for the item in flight, so `items` is never left running."""

    def step() -> Any:
        return next(items, _END)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as pool:
        pending = pool.submit(step)
        while True:
            item = pending.result()
            if item is _END:
                return
            pending = pool.submit(step)
            yield item
