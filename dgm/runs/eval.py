"""`dgm eval`: one agent (the seed, an archived one, or a directory) on
benchmark tasks, each run in a sandbox, graded, recorded in a campaign of
kind 'eval'. An evaluation is not resumed: however it stops, its campaign is
closed and no run is left 'running'."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ContextManager, Iterator

from dgm.errors import (ArchiveUnavailable, BudgetExceeded, DgmError, EvaluationStopped, InfrastructureError,
                        UsageError)

if TYPE_CHECKING:
    import docker

    from dgm.archive.models import Agent, Campaign, TaskRun
    from dgm.archive.store import ArchiveStore
    from dgm.bench.evaluate import EvalSettings
    from dgm.bench.base import Benchmark
    from dgm.bench.task import Task
    from dgm.llm.roles import RoleModel

OnDone = Callable[["Task", "TaskRun"], None]


def _nothing(*args) -> None:
    return None


@contextmanager
def _untracked(total: int) -> Iterator[OnDone | None]:
    yield None


@dataclass
class EvalHooks:
    """What the face of an evaluation is told, in order; each defaults to silence."""

    on_inputs_checked: Callable[[], None] = _nothing
    """Agent, tasks and model are fine; the engine is asked next (the CLI checks --json here)."""
    on_preparing_images: Callable[[int], None] = _nothing
    """A benchmark with per-task images: this many are looked at, built if missing."""
    on_image: Callable[["Task", str | None], None] = _nothing
    """One task's image is ready (None) or unavailable (the reason)."""
    on_no_image: Callable[[str, str], None] = _nothing
    """A task left out: (task id, reason)."""
    on_start: Callable[["EvalRun"], None] = _nothing
    """The evaluation's campaign and agent are recorded; the runs start."""
    track: Callable[[int], ContextManager[OnDone | None]] = _untracked
    """Around the runs, given their number: yields what to call as each finishes."""
    on_stopped: Callable[["EvalRun", str], None] = _nothing
    """Stopped early and closed ('budget_exhausted' or 'interrupted'); `run.runs` are those recorded."""


@dataclass
class EvalRun:
    store: ArchiveStore
    campaign: Campaign
    agent: Agent
    label: str
    """What the agent is called: 'seed', its directory's name, or its id."""
    tasks: list[Task]
    model: str
    workers: int
    benchmark: str
    runs: list[TaskRun] = field(default_factory=list)
    repeats: int = 1
    """Runs of the agent on each task."""

    @property
    def resolved(self) -> int:
        return sum(r.status == "resolved" for r in self.runs)


def _planned(tasks: int, repeats: int) -> str:
    return f"{tasks} task(s)" if repeats == 1 else f"{tasks * repeats} run(s) ({tasks} task(s) × {repeats} repeats)"


def evaluate_tasks(store: ArchiveStore, docker_client: docker.DockerClient, benchmark: Benchmark, agent: Agent,
                   tasks: list[Task], *, campaign_id: str, settings: EvalSettings, workers: int = 1,
                   stage: str = "eval", budget_usd: float | None = None, repeats: int = 1,
                   track: Callable[[int], ContextManager[OnDone | None]] = _untracked) -> list[TaskRun]:
    """Run `agent` on `tasks`, each `repeats` times, through a run stack of its own;
    the runs repeat by repeat, each in task order."""
    from dgm.runs.stack import run_stack, spend_cap

    budgets = {} if budget_usd is None else {campaign_id: spend_cap(store, campaign_id, budget_usd)}
    with run_stack(store, docker_client, benchmark, settings, budgets=budgets, workers=workers) as stack:
        # The tracking ends (an interrupt said) before the stack waits for the runs in flight.
        with track(len(tasks) * repeats) as on_done:
            return stack.evaluator.run_tasks(agent, tasks, campaign_id=campaign_id, stage=stage,
                                             executor=stack.executor, on_done=on_done, repeats=repeats)


def run_eval(open_store: Callable[[bool], ArchiveStore], *, agent: str | None, agent_dir: Path | None,
             benchmark: str, benchmark_options: dict, task_ids: list[str] | None, model: str, workers: int,
             time_limit_s: float, budget_usd: float | None, hooks: EvalHooks | None = None,
             role: RoleModel | None = None, allow_unpriced: bool = False,
             repeats: int = 1) -> EvalRun:
    """Check the inputs, prepare the images, record the agent, run the tasks.

    `role`: how to reach `model` (endpoint, key variable, price, limits, params;
    its model is `model`); `allow_unpriced`: a budget may run on an unpriced model.

    `open_store(create)` opens the archive (an archived agent needs one that
    exists). Raises EvaluationStopped (budget spent), KeyboardInterrupt, or
    InfrastructureError, each after closing the evaluation's campaign.
    """
    from dgm.agent_code import SEED_AGENT_DIR, check_agent_dir, commit_agent_dir
    from dgm.bench.evaluate import EvalSettings
    from dgm.bench.registry import load_benchmark
    from dgm.liveness import heartbeat
    from dgm.llm.litellm_loader import start_loading_litellm
    from dgm.llm.roles import RoleModel
    from dgm.runs.checks import check_role
    from dgm.sandbox.docker import docker_client, remove_orphans

    hooks = hooks or EvalHooks()
    if repeats < 1:
        raise UsageError(f"--repeats: runs per task must be at least 1, not {repeats}")
    if agent_dir is not None:
        check_agent_dir(agent_dir)  # now, not after the images are ready
    bench = load_benchmark(benchmark, **benchmark_options)
    if task_ids == []:
        raise UsageError("--tasks names no task id (leave it out to run them all)")
    if task_ids is not None and len(task_ids) == 1 and task_ids[0] in bench.subsets():
        task_ids = bench.subset(task_ids[0])  # `--tasks dgm-small`: a named subset
    selected = bench.select(task_ids)
    role = role or RoleModel(model=model)
    if role.name != model:
        raise ValueError(f"the role's model {role.name} is not the evaluation's {model}")
    check_role(role, budget_usd=budget_usd, allow_unpriced=allow_unpriced)
    hooks.on_inputs_checked()
    client = docker_client()  # before the archive is opened: without an engine, no archive is made
    # An archived agent is looked up in an archive that exists; seed or a directory may start one.
    store = open_store(agent is None or agent == "seed")
    archived = None
    if agent is not None and agent != "seed":
        archived = store.get_agent(agent)  # an unknown id fails here, before any image is prepared
        from dgm.lineage.details import require_runnable

        require_runnable(store, archived)
    # Seconds of import, overlapping the engine's work below (orphans, images): started only
    # now, so an error above is not slowed down by it.
    start_loading_litellm()
    remove_orphans(client)
    if bench.needs_image_preparation:
        hooks.on_preparing_images(len(selected))  # a cold offline build takes minutes per instance
    failed = bench.prepare_images(client, selected,
                                  progress=hooks.on_image if bench.needs_image_preparation else None)
    if failed:
        for task_id, reason in failed.items():
            hooks.on_no_image(task_id, reason)
        selected = [t for t in selected if t.instance_id not in failed]
        if not selected:
            raise DgmError("no task has an image; see the reasons above")

    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    if agent_dir is not None:
        sha = commit_agent_dir(store, agent_dir, f"agent from {agent_dir}")
        label = agent_dir.name
    elif agent == "seed":
        sha = commit_agent_dir(store, SEED_AGENT_DIR, "seed agent")
        label = "seed"
    else:
        sha, label = archived.commit_sha, archived.id
    campaign = store.create_campaign(
        name=f"eval-{label}-{stamp}-{os.getpid()}", kind="eval",
        config={"benchmark": benchmark, "model": model, "tasks": [t.instance_id for t in selected],
                "time_limit_s": time_limit_s, "workers": workers, "agent": agent or str(agent_dir),
                "models": {"task": role.model_dump(mode="json")}, "allow_unpriced": allow_unpriced,
                "repeats": repeats},
        budget_usd=budget_usd,
    )
    if archived is not None:
        the_agent = archived
    else:
        the_agent = store.add_agent(campaign.id, sha, status="seed" if agent == "seed" else "admitted",
                                    origin="seed" if agent == "seed" else "dir", generation=0)
    run = EvalRun(store=store, campaign=campaign, agent=the_agent, label=label, tasks=selected, model=model,
                  workers=workers, benchmark=benchmark, repeats=repeats)
    hooks.on_start(run)
    settings = EvalSettings(model=model, time_limit_s=time_limit_s, role=role)
    try:
        with heartbeat(store, campaign.id):
            run.runs = evaluate_tasks(store, client, bench, the_agent, selected, campaign_id=campaign.id,
                                      settings=settings, workers=workers, budget_usd=budget_usd, repeats=repeats,
                                      track=hooks.track)
    except BudgetExceeded:
        # Runs the cap cut are not the agent's results: closed as errors saying why, the rest kept.
        spent = store.campaign_spend(campaign.id)
        cut = store.close_campaign(campaign.id, "budget_exhausted",
                                   unfinished_error=f"cut short by the ${budget_usd:g} --budget-usd cap")
        run.runs = store.list_task_runs(campaign_id=campaign.id)
        hooks.on_stopped(run, "budget_exhausted")
        raise EvaluationStopped(
            f"the ${budget_usd:g} budget is spent (${spent:.4f}; what is left cannot pay for another call): "
            f"{len(run.runs) - cut} of {_planned(len(selected), repeats)} "
            f"finished, {cut} cut short (recorded as errors), the rest not started; campaign {campaign.id}") from None
    except KeyboardInterrupt:
        # The runs in flight were let finish (and recorded); the evaluation is closed, not left 'running'.
        store.close_campaign(campaign.id, "interrupted", unfinished_error="interrupted before it finished")
        run.runs = store.list_task_runs(campaign_id=campaign.id)
        hooks.on_stopped(run, "interrupted")
        raise
    except InfrastructureError as exc:
        # An evaluation is not resumed: the runs the failure cut short are closed as errors of the harness.
        try:
            cut = store.close_campaign(campaign.id, "failed",
                                       unfinished_error=f"cut short by the sandbox machinery: {exc}")
            finished = len(store.list_task_runs(campaign_id=campaign.id)) - cut
        except ArchiveUnavailable:
            raise InfrastructureError(f"{exc}. The evaluation stopped (campaign {campaign.id}); "
                                      "its unfinished runs could not be closed") from None
        raise InfrastructureError(
            f"{exc}. The evaluation stopped: {finished} of {_planned(len(selected), repeats)} finished "
            f"(kept in campaign {campaign.id}), {cut} cut short (recorded as errors), the rest not started") from None
    store.set_campaign_status(campaign.id, "completed", finished=True)
    return run
