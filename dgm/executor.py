"""Where task runs execute. The loop and `dgm eval` only see `Executor`, so a
distributed engine (Ray workers with their own Docker engines,
`dgm.cluster.ray_executor`) replaces the thread pool without touching the loop.

An executor does two things: it runs the head's bookkeeping for each item
(`map_unordered`: recording a run's start and end, always in this process, the
archive's one writer), and it runs a run's sandbox work (`run_job`: a job of
plain data, see `dgm.bench.task_job`), here or on another node.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Protocol, TypeVar

if TYPE_CHECKING:
    from docker import DockerClient

    from dgm.agent_code import AgentCodeCache

T = TypeVar("T")
R = TypeVar("R")


class SandboxJob(Protocol[R]):
    """A run's sandbox work as plain data (picklable): see `dgm.bench.task_job.TaskJob`."""

    agent_sha: str
    images: list[str]

    def run(self, host) -> R: ...


class JobRunner(Protocol):
    def run_job(self, job: SandboxJob[R], host: HeadSandboxHost) -> R:
        """Run `job`'s sandboxes and return its outcome; `host` is this machine's, for running it here."""
        ...


class HeadSandboxHost:
    """This machine as a place for sandboxes: its Docker engine, the gateway's
    own socket directory, and the archive's agent code cache."""

    def __init__(self, docker_client: DockerClient, gateway_socket_dir: str, code_cache: AgentCodeCache):
        self.docker = docker_client
        self.gateway_socket_dir = gateway_socket_dir
        self.code_cache = code_cache

    def agent_dir(self, commit_sha: str) -> str:
        return self.code_cache.path(commit_sha)


class LocalJobs:
    """Sandbox work on this machine, in the calling thread."""

    def run_job(self, job, host):
        return job.run(host)


class Executor(JobRunner, Protocol):
    workers: int

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R | BaseException]]:
        """Yield (item, result or the exception it raised) as each finishes."""
        ...

    def shutdown(self) -> None: ...


class ThreadExecutor(LocalJobs):
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
