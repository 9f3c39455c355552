"""A task is one SWE-bench-format instance plus what is needed to run and grade it.

The benchmarks that hold tasks implement `dgm.bench.base.Benchmark`."""

from __future__ import annotations

from dataclasses import dataclass, field


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

