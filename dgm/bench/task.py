"""A task is one SWE-bench instance plus what is needed to run and grade it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Task:
    """One SWE-bench-format instance.

    The first nine fields are exactly SWE-bench's; the rest say how to run it.
    """

    instance_id: str
    repo: str
    base_commit: str
    problem_statement: str
    patch: str
    """The reference (gold) patch. Never shown to an agent."""
    test_patch: str
    """The hidden tests, applied only at grading time."""
    FAIL_TO_PASS: tuple[str, ...]
    PASS_TO_PASS: tuple[str, ...]
    version: str
    benchmark: str
    test_command: str
    """Shell command, run in the repository root, whose log the parser reads."""
    log_parser: str = "pytest"
    """Name of the swebench log parser to use (see dgm.bench.grade)."""
    summary: str = ""
    """One line for listings."""
    difficulty: int = 1
    """1 (one-line fix) .. 5 (multi-module change); informational."""
    extra: dict = field(default_factory=dict, hash=False, compare=False)


class Benchmark(Protocol):
    """A named set of tasks and how to materialise their repositories."""

    name: str

    def tasks(self) -> list[Task]:
        """Every task, in a stable order."""
        ...

    def select(self, ids: list[str] | None) -> list[Task]:
        """The tasks with these ids (all when None); unknown ids raise NotFound."""
        ...

    def image(self, task: Task) -> str:
        """Docker image to run the task in."""
        ...

    def repo_tar(self, task: Task) -> bytes | None:
        """A tar of the repository at base_commit (with .git), members under
        `testbed/`, to extract at `/`; None when the image already holds /testbed."""
        ...

    # Optional: `test_timeout_s`, how long its hidden tests may take (default
    # EvalSettings.test_timeout_s; SWE-bench's harness allows 1800 s).
    # Optional: `grading_limits(limits) -> SandboxLimits`, the limits of the
    # grading sandbox given the agents' (see dgm.bench.grade). Without it,
    # grading gets the agents' limits.
