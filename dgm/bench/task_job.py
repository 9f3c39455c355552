"""A task run's sandbox work as a self-contained job: what runs between the
head recording the run's start and recording its end.

The head (the process that writes the archive) builds a `TaskJob` from the
agent, the task and the benchmark, and hands it to the executor. The job holds
plain data only (the task, its image and repository, the grading rules'
outcome, the limits, the run's gateway token), so it can be pickled and run on
another machine: there it needs a Docker engine, the gateway reachable through
a Unix socket, and the agent's code in a directory (`SandboxHost`), nothing
of the archive. It comes back as a `TaskOutcome` of plain data the head turns
into the run's record. The thread executor runs the very same job on the head,
so both executors record the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from dgm.bench.base import Benchmark
from dgm.bench.grade import GradeResult, grade
from dgm.bench.task import Task
from dgm.errors import InfrastructureError
from dgm.llm.gateway import CONTAINER_SOCKET
from dgm.sandbox.agent_run import AgentRunResult, run_agent
from dgm.sandbox.limits import SandboxLimits

if TYPE_CHECKING:
    from docker import DockerClient


class SandboxHost(Protocol):
    """Where a job's sandboxes run: the head itself or a worker node."""

    docker: DockerClient
    gateway_socket_dir: str
    """A directory holding the gateway's socket (the head's own, or a node's relay to it)."""

    def agent_dir(self, commit_sha: str) -> str:
        """The agent's code at `commit_sha`, in a directory sandboxes can mount."""
        ...


class ShippedBenchmark(Benchmark):
    """What grading needs of a benchmark for one task, computed on the head:
    its image, repository, grading limits, and the benchmark's class for its
    verdict rule (a rule of the task and the log, never of the benchmark's own
    state, so it runs the same on any node)."""

    def __init__(self, name: str, image: str, repo_tar: bytes | None, grading_limits: SandboxLimits,
                 verdict_rule: type[Benchmark] | None, test_timeout_s: float | None):
        self.name = name
        self._image, self._repo_tar, self._grading_limits = image, repo_tar, grading_limits
        self._verdict_rule = verdict_rule
        self.test_timeout_s = test_timeout_s

    @classmethod
    def of(cls, benchmark: Benchmark, task: Task, limits: SandboxLimits) -> "ShippedBenchmark":
        # Only a benchmark with a rule of its own ships its class (pickled by
        # name: dgm installed on the node has it); the others take SWE-bench's.
        rule = type(benchmark) if type(benchmark).verdict is not Benchmark.verdict else None
        return cls(benchmark.name, benchmark.image(task), benchmark.repo_tar(task), benchmark.grading_limits(limits),
                   rule, benchmark.test_timeout_s)

    def tasks(self) -> list[Task]:
        return []

    def image(self, task: Task) -> str:
        return self._image

    def repo_tar(self, task: Task) -> bytes | None:
        return self._repo_tar

    def grading_limits(self, limits: SandboxLimits) -> SandboxLimits:
        return self._grading_limits

    def verdict(self, task: Task, test_log: str, exit_code: int | None):
        if self._verdict_rule is None:
            return None
        return self._verdict_rule.verdict(self, task, test_log, exit_code)


@dataclass
class TaskOutcome:
    """What a task run's sandboxes gave: plain data for the head to record."""

    agent: AgentRunResult | None = None
    agent_error: str | None = None
    """The agent's run failed for a reason of its own (not the sandbox machinery's)."""
    graded: GradeResult | None = None
    grading_error: str | None = None


@dataclass
class TaskJob:
    task: Task
    benchmark: ShippedBenchmark
    agent_sha: str
    model: str
    token: str
    """The run's gateway token: the only credential the sandbox gets."""
    time_limit_s: float
    test_timeout_s: float
    limits: SandboxLimits
    labels: dict[str, str] = field(default_factory=dict)
    context_window: int | None = None
    max_output_tokens: int | None = None

    @property
    def images(self) -> list[str]:
        return [self.benchmark.image(self.task)]

    def run(self, host: SandboxHost) -> TaskOutcome:
        """Agent sandbox, agent, diff; then, for a diff, the grading sandbox and the hidden tests.

        Raises InfrastructureError (no sandbox): the head leaves the run unfinished."""
        task = self.task
        try:
            agent = run_agent(
                host.docker, image=self.benchmark.image(task), agent_dir=host.agent_dir(self.agent_sha),
                # SWE-bench images: the diff starts at the post-setup commit, and the
                # agent runs on the image's own Python, not the testbed's.
                repo_tar=self.benchmark.repo_tar(task), base_commit=task.extra.get("diff_base", task.base_commit),
                python=task.extra.get("agent_python", "python3"), problem=task.problem_statement,
                gateway_socket_dir=host.gateway_socket_dir, gateway_socket_path_in_container=CONTAINER_SOCKET,
                token=self.token, model=self.model, time_limit_s=self.time_limit_s, limits=self.limits,
                labels=self.labels, context_window=self.context_window, max_output_tokens=self.max_output_tokens,
            )
        except InfrastructureError:
            raise
        except Exception as exc:  # noqa: BLE001 - a run fails alone; the others carry on
            return TaskOutcome(agent_error=f"{type(exc).__name__}: {exc}")
        if agent.status == "error" or not agent.patch.strip():
            return TaskOutcome(agent=agent)
        try:
            graded = grade(host.docker, self.benchmark, task, agent.patch, limits=self.limits,
                           test_timeout_s=self.test_timeout_s, labels=self.labels)
        except InfrastructureError:
            raise
        except Exception as exc:  # noqa: BLE001
            return TaskOutcome(agent=agent, grading_error=f"grading failed: {exc}")
        return TaskOutcome(agent=agent, graded=graded)
