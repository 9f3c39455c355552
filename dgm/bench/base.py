"""The Benchmark seam: what every benchmark family implements.

A family (dgm-mini, SWE-bench, ...) is one package under `dgm/bench/` with a
subclass of `Benchmark` and one entry in `dgm.bench.registry`. Everything
else (evaluation, grading, validation, staging, the CLI) talks to benchmarks
through this class only, so the optional members have defaults here instead of
being probed for with `hasattr` at each call site.

Required: `name`, `tasks`, `image`, `repo_tar`.
Optional (defaults below): `select`, `subsets` / `subset`, `test_timeout_s`,
`grading_limits`, `needs_image_preparation` / `prepare_images`, `verdict`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Callable

from dgm.bench.task import Task
from dgm.errors import NotFound, UsageError

if TYPE_CHECKING:
    from dgm.sandbox.docker import SandboxLimits


class Benchmark(ABC):
    """A named set of tasks, where they run, and how they are graded."""

    name: str
    """The name the registry knows it by (also `Task.benchmark`)."""

    test_timeout_s: float | None = None
    """Seconds its hidden tests may take; None: the evaluator's own setting
    (EvalSettings.test_timeout_s). SWE-bench's harness allows 1800 s."""

    needs_image_preparation: bool = False
    """Whether `prepare_images` does per-task work that takes minutes (pull or
    build an image per instance) and may fail for some tasks and not others.
    Callers then say what is going on, pass `progress`, and go on without the
    tasks it returns. False: every image is one that must already exist."""

    # -- tasks ---------------------------------------------------------------
    @abstractmethod
    def tasks(self) -> list[Task]:
        """Every task, in a stable order."""

    def select(self, ids: list[str] | None) -> list[Task]:
        """The tasks with these ids, in their order, each once (all when None);
        unknown ids raise NotFound."""
        tasks = self.tasks()
        if ids is None:
            return tasks
        by_id = {t.instance_id: t for t in tasks}
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise NotFound(f"unknown {self.name} task id(s): {', '.join(unknown)} "
                           f"(see `dgm bench ls {self.name}` for the valid ids)")
        return [by_id[i] for i in dict.fromkeys(ids)]

    # -- named subsets -------------------------------------------------------
    def subsets(self) -> list[str]:
        """Names `subset` accepts; empty when the benchmark has none."""
        return []

    def subset(self, name: str) -> list[str]:
        """Instance ids of a named subset (a campaign's `subset:NAME`, `--subset NAME`)."""
        raise UsageError(f"benchmark {self.name} has no named subsets")

    # -- sandbox material ------------------------------------------------------
    @abstractmethod
    def image(self, task: Task) -> str:
        """Docker image to run the task in."""

    @abstractmethod
    def repo_tar(self, task: Task) -> bytes | None:
        """A tar of the repository at base_commit (with .git), members under
        `testbed/`, to extract at `/`; None when the image already holds /testbed."""

    def prepare_images(self, docker_client, tasks: list[Task], *,
                       progress: Callable[[Task, str | None], None] | None = None) -> dict[str, str]:
        """Make sure every task's image exists; {instance_id: reason} for the
        tasks left without one.

        By default the images are ones that must already exist (the sandbox
        base image): each distinct one is checked, and a missing one raises
        ImageUnavailable, which names the command that builds it. Benchmarks
        that pull or build images per task override this (and set
        `needs_image_preparation`)."""
        from dgm.sandbox.docker import ensure_image

        for image in sorted({self.image(t) for t in tasks}):
            ensure_image(docker_client, image)
        if progress:
            for task in tasks:
                progress(task, None)
        return {}

    # -- grading -----------------------------------------------------------------
    def grading_limits(self, limits: SandboxLimits) -> SandboxLimits:
        """The grading sandbox's limits given the agents' (see dgm.bench.grade);
        by default the same."""
        return limits

    def verdict(self, task: Task, test_log: str, exit_code: int | None) -> tuple[bool, dict, dict] | None:
        """(resolved, report, status map) from the test run's log and its
        command's exit status (None when it never finished); None: SWE-bench's
        rule, every FAIL_TO_PASS and PASS_TO_PASS test passes (dgm.bench.grade.decide)."""
        return None
