"""Evaluate an agent on tasks: run it in a sandbox, grade its diff, record the run.

Every run is recorded through the archive store as it starts and as it ends,
so a crash leaves a 'running' row that a resumed campaign redoes, and a
finished run is never redone.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from dgm.agent_code import AgentCodeCache
from dgm.bench.grade import grade
from dgm.bench.task import Benchmark, Task
from dgm.errors import BudgetExceeded, InfrastructureError
from dgm.llm import scripted
from dgm.llm.client import CallContext
from dgm.llm.gateway import CONTAINER_SOCKET, Gateway
from dgm.sandbox.agent_run import run_agent
from dgm.sandbox.docker import SandboxLimits


@dataclass
class EvalSettings:
    model: str
    time_limit_s: float = 900.0
    test_timeout_s: float = 600.0
    limits: SandboxLimits = field(default_factory=SandboxLimits)


def _import_grading() -> None:
    import swebench.harness.grading  # noqa: F401
    import swebench.harness.log_parsers  # noqa: F401


class Evaluator:
    def __init__(self, store, docker_client, gateway: Gateway, benchmark: Benchmark, settings: EvalSettings):
        self.store = store
        self.docker = docker_client
        self.gateway = gateway
        self.benchmark = benchmark
        self.settings = settings
        self.code_cache = AgentCodeCache(store)
        # swebench's parsers take seconds to import: pay it now, not in the first grading.
        threading.Thread(target=_import_grading, daemon=True).start()

    def run_task(self, agent, task: Task, *, campaign_id: str, stage: str, attempt: int = 0,
                 kind: str = "task", replay=None):
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
        run = self.store.start_task_run(
            campaign_id=campaign_id, agent_id=agent.id, kind=kind, benchmark=self.benchmark.name,
            task_id=task.instance_id, stage=stage, model=settings.model, attempt=attempt,
        )
        if run.status != "running":
            return run  # finished before a crash: never redo it
        started = time.monotonic()
        is_scripted = scripted.is_scripted(settings.model)
        token = self.gateway.grant(CallContext(
            purpose="task", model=settings.model, campaign_id=campaign_id, agent_id=agent.id,
            task_run_id=run.id, task_id=task.instance_id,
            gold_patch=task.patch if is_scripted else None, replay=replay,
            task_difficulty=task.difficulty if is_scripted else None,
        ))
        labels = {"dgm.task_run": run.id, "dgm.agent": agent.id}
        try:
            agent_result = run_agent(
                self.docker, image=self.benchmark.image(task),
                agent_dir=self.code_cache.path(agent.commit_sha),
                # SWE-bench images: the diff starts at the post-setup commit, and the
                # agent runs on the image's own Python, not the testbed's.
                repo_tar=self.benchmark.repo_tar(task), base_commit=task.extra.get("diff_base", task.base_commit),
                python=task.extra.get("agent_python", "python3"),
                problem=task.problem_statement, gateway_socket_dir=self.gateway.socket_dir,
                gateway_socket_path_in_container=CONTAINER_SOCKET, token=token, model=settings.model,
                time_limit_s=settings.time_limit_s, limits=settings.limits, labels=labels,
            )
        except InfrastructureError:
            raise  # not the agent's doing: the run stays unfinished, for a resume to redo
        except Exception as exc:  # noqa: BLE001 - a run fails alone; the others carry on
            return self.store.finish_task_run(
                run.id, status="error", error=f"{type(exc).__name__}: {exc}",
                duration_s=time.monotonic() - started)
        finally:
            self.gateway.revoke(token)
        self.gateway.raise_if_run_spoiled(token)

        artifacts = self.store.artifacts
        trajectory_id = artifacts.put(agent_result.outputs["trajectory.json"]) \
            if "trajectory.json" in agent_result.outputs else None
        agent_log_id = artifacts.put(agent_result.agent_log) if agent_result.agent_log else None
        common = dict(patch=agent_result.patch, agent_duration_s=agent_result.agent_duration_s,
                      trajectory_artifact=trajectory_id, agent_log_artifact=agent_log_id)
        if agent_result.status == "error":
            return self.store.finish_task_run(run.id, status="error", error=agent_result.error,
                                              duration_s=time.monotonic() - started, **common)
        if not agent_result.patch.strip():
            status = "timeout" if agent_result.status == "timeout" else "empty_patch"
            return self.store.finish_task_run(run.id, status=status, error=agent_result.error,
                                              duration_s=time.monotonic() - started, **common)
        try:
            graded = grade(self.docker, self.benchmark, task, agent_result.patch, limits=settings.limits,
                           test_timeout_s=getattr(self.benchmark, "test_timeout_s", settings.test_timeout_s),
                           labels=labels)
        except InfrastructureError:
            raise
        except Exception as exc:  # noqa: BLE001
            return self.store.finish_task_run(run.id, status="error", error=f"grading failed: {exc}",
                                              duration_s=time.monotonic() - started, **common)
        if agent_result.status == "timeout":
            status = "timeout"  # an overrun counts as unresolved whatever its partial diff does
        else:
            status = "resolved" if graded.resolved else "unresolved"
        return self.store.finish_task_run(
            run.id, status=status, tests_status=graded.archived_tests_status(),
            error=graded.error or agent_result.error, duration_s=time.monotonic() - started,
            test_duration_s=graded.test_duration_s, eval_log_artifact=artifacts.put(graded.log), **common,
        )

    def run_tasks(self, agent, tasks: list[Task], *, campaign_id: str, stage: str, executor,
                  on_done: Callable | None = None, should_stop: Callable[[], bool] | None = None) -> list:
        """Run tasks through the executor; results in task order.

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

        def one(task):
            if broken.is_set() or (should_stop is not None and should_stop()):
                return None
            try:
                return self.run_task(agent, task, campaign_id=campaign_id, stage=stage)
            except (InfrastructureError, BudgetExceeded):
                broken.set()  # no sandbox, or no money: starting more runs would only waste them
                raise

        results: dict[str, object] = {}
        failure: BaseException | None = None
        for task, outcome in executor.map_unordered(one, tasks):
            if isinstance(outcome, BaseException):
                # The sandbox machinery's failure explains the others: report it first.
                if failure is None or (isinstance(outcome, InfrastructureError)
                                       and not isinstance(failure, InfrastructureError)):
                    failure = outcome  # let the other in-flight runs finish and be recorded
                continue
            results[task.instance_id] = outcome
            if on_done and outcome is not None:
                on_done(task, outcome)
        if failure is not None:
            raise failure
        return [results.get(t.instance_id) for t in tasks]
