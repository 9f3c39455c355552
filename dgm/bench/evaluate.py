"""Evaluate an agent on tasks: run it in a sandbox, grade its diff, record the run.

Every run is recorded through the archive store as it starts and as it ends,
so a crash leaves a 'running' row that a resumed campaign redoes, and a
finished run is never redone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dgm.bench.grade import grade, prepare_grading_sandbox
from dgm.bench.task import Benchmark, Task
from dgm.llm import scripted
from dgm.llm.client import CallContext
from dgm.llm.gateway import CONTAINER_SOCKET, Gateway
from dgm.sandbox.agent_run import agent_sandbox, run_agent
from dgm.sandbox.docker import SandboxLimits

SEED_AGENT_DIR = Path(__file__).resolve().parent.parent / "seed_agent"
IGNORED_NAMES = ("__pycache__", ".pytest_cache", ".git")


@dataclass
class EvalSettings:
    model: str
    time_limit_s: float = 900.0
    test_timeout_s: float = 600.0
    limits: SandboxLimits = field(default_factory=SandboxLimits)


class AgentCodeCache:
    """Agent commits materialised once on the host, mounted read-only into sandboxes."""

    def __init__(self, store):
        self.store = store
        # Absolute: Docker refuses relative bind-mount sources.
        self.root = Path(store.root).resolve() / "cache" / "agents"
        self._lock = threading.Lock()

    def path(self, commit_sha: str) -> str:
        dest = self.root / commit_sha
        with self._lock:
            if not dest.is_dir():
                self.root.mkdir(parents=True, exist_ok=True)
                tmp = Path(tempfile.mkdtemp(prefix=f".{commit_sha[:12]}-", dir=self.root))
                self.store.code.materialize(commit_sha, str(tmp))
                # The sandbox's agent user (uid 1000) must read it; nobody may write it.
                for base, dirs, files in os.walk(tmp):
                    os.chmod(base, 0o755)
                    for name in files:
                        os.chmod(os.path.join(base, name), 0o644)
                os.chmod(tmp, 0o755)
                os.replace(tmp, dest)
        return str(dest)


def commit_agent_dir(store, path: Path, message: str, parent_sha: str | None = None) -> str:
    """Commit an agent directory to the code store (ignoring caches)."""
    if not (path / "main.py").is_file():
        from dgm.errors import UsageError

        raise UsageError(f"agent directory {path} has no main.py (see the agent contract in the README)")
    with tempfile.TemporaryDirectory() as tmp:
        clean = Path(tmp) / "agent"
        shutil.copytree(path, clean, ignore=shutil.ignore_patterns(*IGNORED_NAMES, "*.pyc"))
        return store.code.commit_tree(str(clean), parent_sha=parent_sha, message=message)


def _import_grading() -> None:
    import swebench.harness.grading  # noqa: F401
    import swebench.harness.log_parsers  # noqa: F401


class _Prepared:
    """A sandbox being started in the background; `get` waits, `discard` removes."""

    def __init__(self, start: Callable):
        self._box = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(start,), daemon=True)
        self._thread.start()

    def _run(self, start) -> None:
        try:
            self._box = start()
        except BaseException as exc:  # noqa: BLE001 - re-raised by get()
            self._error = exc

    def get(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        box, self._box = self._box, None
        return box

    def discard(self) -> None:
        self._thread.join()
        if self._box is not None:
            self._box.remove(wait=False)
            self._box = None


class Evaluator:
    def __init__(self, store, docker_client, gateway: Gateway, benchmark: Benchmark, settings: EvalSettings):
        self.store = store
        self.docker = docker_client
        self.gateway = gateway
        self.benchmark = benchmark
        self.settings = settings
        self.code_cache = AgentCodeCache(store)
        # Fresh agent sandboxes started ahead of time, per agent, so a task run
        # does not wait for a container start (the grading one is started
        # during the agent's run for the same reason).
        self._spares: dict[str, list[_Prepared]] = {}
        self._spares_lock = threading.Lock()
        # swebench's parsers take seconds to import: pay it now, not in the first grading.
        threading.Thread(target=_import_grading, daemon=True).start()

    def _new_agent_sandbox(self, agent, image: str):
        return agent_sandbox(self.docker, image=image, agent_dir=self.code_cache.path(agent.commit_sha),
                             gateway_socket_dir=self.gateway.socket_dir,
                             gateway_socket_path_in_container=CONTAINER_SOCKET, limits=self.settings.limits,
                             labels={"dgm.agent": agent.id})

    def _take_agent_sandbox(self, agent, image: str, prewarm_next: bool):
        key = f"{agent.commit_sha}|{image}"
        with self._spares_lock:
            spares = self._spares.setdefault(key, [])
            spare = spares.pop() if spares else None
            if prewarm_next:
                spares.append(_Prepared(lambda: self._new_agent_sandbox(agent, image)))
        if spare is not None:
            try:
                return spare.get()
            except Exception:  # noqa: BLE001 - a failed pre-start: start one now instead
                pass
        return self._new_agent_sandbox(agent, image)

    def close(self) -> None:
        """Remove the sandboxes started ahead of time that no run took."""
        with self._spares_lock:
            spares = [p for group in self._spares.values() for p in group]
            self._spares.clear()
        for prepared in spares:
            prepared.discard()

    def run_task(self, agent, task: Task, *, campaign_id: str, stage: str, attempt: int = 0,
                 kind: str = "task", replay=None, prewarm_next: bool = False):
        """One task run, recorded. Returns the finished TaskRun (possibly an earlier one).

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
        # The grading sandbox starts while the agent works: its start-up is then free.
        grading_box = _Prepared(lambda: prepare_grading_sandbox(
            self.docker, self.benchmark, task, limits=settings.limits, labels=labels))
        try:
            box = self._take_agent_sandbox(agent, self.benchmark.image(task), prewarm_next)
            agent_result = run_agent(
                self.docker, sandbox=box, image=self.benchmark.image(task),
                agent_dir=self.code_cache.path(agent.commit_sha),
                # SWE-bench images: the diff starts at the post-setup commit, and the
                # agent runs on the image's own Python, not the testbed's.
                repo_tar=self.benchmark.repo_tar(task), base_commit=task.extra.get("diff_base", task.base_commit),
                python=task.extra.get("agent_python", "python3"),
                problem=task.problem_statement, gateway_socket_dir=self.gateway.socket_dir,
                gateway_socket_path_in_container=CONTAINER_SOCKET, token=token, model=settings.model,
                time_limit_s=settings.time_limit_s, limits=settings.limits, labels=labels,
            )
        except Exception as exc:  # noqa: BLE001 - a run fails alone; the others carry on
            grading_box.discard()
            return self.store.finish_task_run(
                run.id, status="error", error=f"{type(exc).__name__}: {exc}",
                duration_s=time.monotonic() - started)
        finally:
            self.gateway.revoke(token)
        try:
            self.gateway.raise_if_budget_hit(token)
        except Exception:
            grading_box.discard()
            raise

        artifacts = self.store.artifacts
        trajectory_id = artifacts.put(agent_result.outputs["trajectory.json"]) \
            if "trajectory.json" in agent_result.outputs else None
        agent_log_id = artifacts.put(agent_result.agent_log) if agent_result.agent_log else None
        common = dict(patch=agent_result.patch, agent_duration_s=agent_result.agent_duration_s,
                      trajectory_artifact=trajectory_id, agent_log_artifact=agent_log_id)
        if agent_result.status == "error" or not agent_result.patch.strip():
            grading_box.discard()
        if agent_result.status == "error":
            return self.store.finish_task_run(run.id, status="error", error=agent_result.error,
                                              duration_s=time.monotonic() - started, **common)
        if not agent_result.patch.strip():
            status = "timeout" if agent_result.status == "timeout" else "empty_patch"
            return self.store.finish_task_run(run.id, status=status, error=agent_result.error,
                                              duration_s=time.monotonic() - started, **common)
        try:
            graded = grade(self.docker, self.benchmark, task, agent_result.patch, limits=settings.limits,
                           test_timeout_s=settings.test_timeout_s, labels=labels, sandbox=grading_box.get())
        except Exception as exc:  # noqa: BLE001
            grading_box.discard()
            return self.store.finish_task_run(run.id, status="error", error=f"grading failed: {exc}",
                                              duration_s=time.monotonic() - started, **common)
        if agent_result.status == "timeout":
            status = "timeout"  # an overrun counts as unresolved whatever its partial diff does
        else:
            status = "resolved" if graded.resolved else "unresolved"
        return self.store.finish_task_run(
            run.id, status=status, tests_status=graded.tests_status,
            error=graded.error or agent_result.error, duration_s=time.monotonic() - started,
            test_duration_s=graded.test_duration_s, eval_log_artifact=artifacts.put(graded.log), **common,
        )

    def run_tasks(self, agent, tasks: list[Task], *, campaign_id: str, stage: str, executor,
                  on_done: Callable | None = None, should_stop: Callable[[], bool] | None = None) -> list:
        """Run tasks through the executor; results in task order.

        When `should_stop` turns true, tasks not yet started are skipped and
        come back as None (they were never recorded, so a resume runs them).
        """
        not_started = {"n": len(tasks)}
        counter_lock = threading.Lock()

        def one(task):
            if should_stop is not None and should_stop():
                return None
            with counter_lock:
                not_started["n"] -= 1
                # Pre-start a sandbox for a later task only if one is coming.
                prewarm = not_started["n"] >= executor.workers
            return self.run_task(agent, task, campaign_id=campaign_id, stage=stage, prewarm_next=prewarm)

        results: dict[str, object] = {}
        failure: BaseException | None = None
        for task, outcome in executor.map_unordered(one, tasks):
            if isinstance(outcome, BaseException):
                failure = failure or outcome  # let the other in-flight runs finish and be recorded
                continue
            results[task.instance_id] = outcome
            if on_done and outcome is not None:
                on_done(task, outcome)
        if failure is not None:
            raise failure
        return [results.get(t.instance_id) for t in tasks]
