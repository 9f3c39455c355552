"""Where task runs execute. The loop and `dgm eval` only see `Executor`, so a
distributed engine (Ray workers with their own Docker engines) can replace the
thread pool by adding one class here, without touching the loop."""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable, Iterable, Iterator, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    workers: int

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R | BaseException]]:
        """Yield (item, result or the exception it raised) as each finishes."""
        ...

    def shutdown(self) -> None: ...


class ThreadExecutor:
    """Threads suffice: the work is waiting on Docker and on the LLM."""

    def __init__(self, workers: int):
        self.workers = max(1, workers)
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="dgm-worker")

    def submit(self, fn: Callable[..., R], *args) -> Future:
        return self._pool.submit(fn, *args)

    def map_unordered(self, fn, items):
        items = list(items)
        pending: dict[Future, object] = {}
        queue = iter(items)
        # Keep at most `workers` in flight so an interrupt leaves little half-done.
        for item in queue:
            pending[self._pool.submit(fn, item)] = item
            if len(pending) >= self.workers:
                break
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                item = pending.pop(future)
                # The task's own exception is handed over, returned rather than caught: a
                # Ctrl-C arriving in this thread just now must stop the caller, not be taken
                # for a task's failure while every remaining task is started anyway.
                error = future.exception()
                yield item, (error if error is not None else future.result())
                nxt = next(queue, None)
                if nxt is not None:
                    pending[self._pool.submit(fn, nxt)] = nxt

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
