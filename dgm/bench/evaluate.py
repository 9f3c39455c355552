"""Evaluate an agent on tasks: run it in a sandbox, grade its diff, record the run.

Every run is recorded through the archive store as it starts and as it ends,
so a crash leaves a 'running' row that a resumed campaign redoes, and a
finished run is never redone.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from dgm.agent_code import AgentCodeCache
from dgm.bench.task_job import ShippedBenchmark, TaskJob
from dgm.bench.base import Benchmark
from dgm.bench.task import Task
from dgm.errors import BudgetExceeded, InfrastructureError
from dgm.llm import model_names
from dgm.llm.client import CallContext
from dgm.llm.gateway import Gateway
from dgm.recorded_run import start_recorded_run
from dgm.sandbox.docker import SandboxLimits
from dgm.executor import HeadSandboxHost, JobRunner, LocalJobs

if TYPE_CHECKING:
    from docker import DockerClient

    from dgm.archive.models import Agent, TaskRun
    from dgm.archive.store import ArchiveStore
    from dgm.executor import Executor
    from dgm.llm.client import Replayer
    from dgm.llm.roles import RoleModel


@dataclass
class EvalSettings:
    model: str
    time_limit_s: float = 900.0
    test_timeout_s: float = 600.0
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    role: RoleModel | None = None
    """How to reach `model` (endpoint, key variable, price, limits, params); None: litellm's defaults."""


def _import_grading() -> None:
    import swebench.harness.grading  # noqa: F401
    import swebench.harness.log_parsers  # noqa: F401


def _test_timeout_s(benchmark: Benchmark, settings: EvalSettings) -> float:
    """The benchmark's own allowance for its hidden tests wins over the run's setting."""
    return settings.test_timeout_s if benchmark.test_timeout_s is None else benchmark.test_timeout_s


class Evaluator:
    def __init__(self, store: ArchiveStore, docker_client: DockerClient, gateway: Gateway, benchmark: Benchmark,
                 settings: EvalSettings):
        self.store = store
        self.docker = docker_client
        self.gateway = gateway
        self.benchmark = benchmark
        self.settings = settings
        self.code_cache = AgentCodeCache(store)
        self.host = HeadSandboxHost(docker_client, gateway.socket_dir, self.code_cache)
        """Where jobs run when they run on this machine."""
        self.jobs: JobRunner = LocalJobs()
        """Who runs the sandbox work: here, or (set by the run stack) a cluster executor."""
        # swebench's parsers take seconds to import: pay it now, not in the first grading.
        threading.Thread(target=_import_grading, daemon=True).start()

    def run_task(self, agent: Agent, task: Task, *, campaign_id: str, stage: str, attempt: int = 0,
                 repeat: int = 0, kind: str = "task", replay: Replayer | None = None) -> TaskRun:
        """One task run, recorded. Returns the finished TaskRun (possibly an earlier one).

        Its steps run one after another: agent sandbox, agent, diff, grading
        sandbox, tests. Nothing is started ahead of time, so `--workers N` is
        the only concurrency: a worker keeps about one core busy, and N
        workers scale on N cores (starting sandboxes ahead bought 10% with one
        worker on two cores and nothing once workers filled the cores).

        With `replay` (a `Replayer`), the agent's LLM calls are answered from a
        recording instead of the model: offline, free, and reproducible.
        """
        settings = self.settings
        recorded = start_recorded_run(
            self.store, campaign_id=campaign_id, agent_id=agent.id, kind=kind, benchmark=self.benchmark.name,
            task_id=task.instance_id, stage=stage, model=settings.model, attempt=attempt, repeat=repeat,
        )
        if recorded.finished:
            return recorded.row  # finished before a crash: never redo it
        is_scripted = model_names.is_scripted(settings.model)
        call = CallContext(
            purpose="task", model=settings.model, campaign_id=campaign_id, agent_id=agent.id,
            task_run_id=recorded.row.id, task_id=task.instance_id,
            gold_patch=task.patch if is_scripted else None, replay=replay,
            task_difficulty=task.difficulty if is_scripted else None, role=settings.role,
        )
        try:
            # The sandbox work is a job of plain data: the executor runs it here
            # or on another node, and only this process records its outcome.
            outcome, overflow = recorded.under_token(
                self.gateway, call, settings.time_limit_s,
                lambda token: self.jobs.run_job(self._task_job(agent, task, token, recorded.labels), self.host))
        except (InfrastructureError, BudgetExceeded):
            # Not the agent's doing (no sandbox; the budget or the model gave out
            # during the run): the run stays unfinished, for a resume to redo.
            raise
        if outcome.agent_error is not None:
            return recorded.finish(status="error", error=outcome.agent_error)
        agent_result = outcome.agent
        if overflow is not None:  # beside any other error (a timeout, say): the diagnosis looks for it
            agent_result.error = overflow if agent_result.error is None else f"{agent_result.error}; {overflow}"

        common = dict(patch=agent_result.patch, agent_duration_s=agent_result.agent_duration_s,
                      **recorded.keep_agent_outputs(agent_result))
        if agent_result.status == "error":
            return recorded.finish(status="error", error=agent_result.error, **common)
        if not agent_result.patch.strip():
            status = "timeout" if agent_result.status == "timeout" else "empty_patch"
            return recorded.finish(status=status, error=agent_result.error, **common)
        if outcome.grading_error is not None:
            return recorded.finish(status="error", error=outcome.grading_error, **common)
        graded = outcome.graded
        if agent_result.status == "timeout":
            status = "timeout"  # an overrun counts as unresolved whatever its partial diff does
        else:
            status = "resolved" if graded.resolved else "unresolved"
        return recorded.finish(
            status=status, tests_status=graded.archived_tests_status(), error=graded.error or agent_result.error,
            test_duration_s=graded.test_duration_s, eval_log_artifact=self.store.artifacts.put(graded.log), **common,
        )

    def _task_job(self, agent: Agent, task: Task, token: str, labels: dict[str, str]) -> TaskJob:
        settings = self.settings
        return TaskJob(
            task=task, benchmark=ShippedBenchmark.of(self.benchmark, task, settings.limits),
            agent_sha=agent.commit_sha, model=settings.model, token=token, time_limit_s=settings.time_limit_s,
            test_timeout_s=_test_timeout_s(self.benchmark, settings), limits=settings.limits, labels=labels,
            # The agent keeps its history within its model's window (seed agent: DGM_CONTEXT_WINDOW).
            context_window=settings.role.context_window if settings.role else None,
            max_output_tokens=settings.role.max_output_tokens if settings.role else None,
        )

    def run_tasks(self, agent: Agent, tasks: list[Task], *, campaign_id: str, stage: str, executor: Executor,
                  on_done: Callable | None = None, should_stop: Callable[[], bool] | None = None,
                  repeats: int = 1) -> list:
        """Run tasks through the executor, each `repeats` times (a stochastic
        model's outcome on a task is a sample: repeat r of a task is a run of its
        own, recorded once); results repeat by repeat, each in task order, so an
        evaluation cut short holds whole samples first.

        When `should_stop` turns true, tasks not yet started are skipped and
        come back as None (they were never recorded, so a resume runs them).
        After an `InfrastructureError` or a `BudgetExceeded` no further task
        starts either, and the error is raised once the runs in flight have ended.
        """
        # The gateway imports litellm in the background (seconds); wait for it
        # here, or the first runs would spend their time limit waiting for it.
        from dgm.llm.litellm_loader import load_litellm

        load_litellm()
        broken = threading.Event()

        def one(job):
            task, repeat = job
            if broken.is_set() or (should_stop is not None and should_stop()):
                return None
            try:
                return self.run_task(agent, task, campaign_id=campaign_id, stage=stage, repeat=repeat)
            except (InfrastructureError, BudgetExceeded):
                broken.set()  # no sandbox, or no money: starting more runs would only waste them
                raise

        jobs = [(task, repeat) for repeat in range(max(1, repeats)) for task in tasks]
        results: dict[tuple[str, int], object] = {}
        failure: BaseException | None = None
        for (task, repeat), outcome in executor.map_unordered(one, jobs):
            if isinstance(outcome, BaseException):
                # The sandbox machinery's failure explains the others: report it first.
                if failure is None or (isinstance(outcome, InfrastructureError)
                                       and not isinstance(failure, InfrastructureError)):
                    failure = outcome  # let the other in-flight runs finish and be recorded
                continue
            results[task.instance_id, repeat] = outcome
            if on_done and outcome is not None:
                on_done(task, outcome)
        if failure is not None:
            raise failure
        return [results.get((t.instance_id, r)) for t, r in jobs]
