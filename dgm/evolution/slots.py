"""Sandbox slots, counted: how many of the executor's slots run a task now,
and how many task runs wait for one.

The asynchronous schedule starts a child when slots would otherwise go idle,
and the live view shows "slots busy / total"; both read these counts. The
executor itself is not changed (any `Executor` can be wrapped): each task
run handed to it is counted from when it is asked for until it is handed
back, and as busy while its function runs.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from dgm.executor import Executor


class SlotMeter:
    """An `Executor` that counts its slots' use; everything else is the wrapped executor's."""

    def __init__(self, executor: Executor):
        self.inner = executor
        self._lock = threading.Lock()
        self.busy = 0
        """Task runs executing now (each holds one slot)."""
        self.requested = 0
        """Task runs asked for and not yet handed back: executing or waiting for a slot."""
        self.callers = 0
        """Evaluations (one stage of one agent) waiting on the executor now."""
        self.busy_seconds = 0.0
        """Slot time used so far (seconds summed over slots)."""
        self._listeners: list[Callable[[], None]] = []

    @property
    def workers(self) -> int:
        return self.inner.workers

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` (from the thread that changed it) whenever a count changes."""
        self._listeners.append(listener)

    @property
    def waiting(self) -> int:
        """Task runs asked for that no slot runs yet."""
        with self._lock:
            return max(0, self.requested - self.busy)

    def _change(self, *, busy: int = 0, requested: int = 0, callers: int = 0) -> None:
        with self._lock:
            self.busy += busy
            self.requested += requested
            self.callers += callers
        for listener in list(self._listeners):
            listener()

    def map_unordered(self, fn, items):
        import time

        items = list(items)
        self._change(requested=len(items), callers=1)

        def counted(item):
            self._change(busy=1)
            started = time.monotonic()
            try:
                return fn(item)
            finally:
                with self._lock:
                    self.busy_seconds += time.monotonic() - started
                self._change(busy=-1)

        handed_back = 0
        try:
            for item, outcome in self.inner.map_unordered(counted, items):
                handed_back += 1
                self._change(requested=-1)
                yield item, outcome
        finally:
            self._change(requested=-(len(items) - handed_back), callers=-1)

    def shutdown(self) -> None:
        self.inner.shutdown()
