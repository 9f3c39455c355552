"""`dgm run` and `dgm resume`: an evolution campaign with its machinery.

`start_campaign` and `resume_campaign` check their inputs (in the order the
user meets them: config, models and tasks, then the engine, then the archive,
then images), record the campaign and `launch_campaign` it. `campaign_runner`
builds the runner over a run stack; tests and perf scripts use it too.
Rendering (banner, live view, summary) is the caller's, through `CampaignHooks`.
"""

from __future__ import annotations

import os
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable, Iterator, NoReturn

from dgm.errors import DgmError, InfrastructureError, UsageError

if TYPE_CHECKING:
    import docker

    from dgm.archive.models import Campaign
    from dgm.archive.store import ArchiveStore
    from dgm.bench.base import Benchmark
    from dgm.config import CampaignConfig
    from dgm.evolution.loop import CampaignRunner
    from dgm.evolution.staging import StagePlan


def _nothing(*args) -> None:
    return None


def _exit_at_once(campaign_id: str, signame: str) -> NoReturn:
    os._exit(130)


@dataclass
class CampaignHooks:
    """What the face of a campaign is told; each defaults to silence."""

    on_orphans_removed: Callable[[int], None] = _nothing
    """Sandboxes a crashed run left were removed (how many, more than 0)."""
    on_start: Callable[["CampaignRunner"], None] = _nothing
    """The runner is built and the signals are taken; it runs next."""
    on_event: Callable[[str], None] | None = None
    """Each event as a line (None: not wanted, e.g. a live view shows them)."""
    watch: Callable[["CampaignRunner", Callable[[], str]], str] | None = None
    """Runs the campaign (the callable; it returns the status) while showing it, e.g. a live view."""
    on_stop_requested: Callable[[str], None] = _nothing
    """A first SIGINT/SIGTERM: in-flight work finishes."""
    on_quit_at_once: Callable[[str, str], NoReturn] = _exit_at_once
    """A second signal (campaign id, signal name), the campaign marked interrupted: end the process now (exit 130)."""


@dataclass
class CampaignResult:
    store: ArchiveStore
    campaign: Campaign
    status: str
    broken: InfrastructureError | None = None
    """The failure of Docker, the archive or the model that stopped it, if one did."""

    def raise_if_broken(self) -> None:
        if self.broken is not None:
            raise InfrastructureError(
                f"{self.broken}. The campaign stopped; nothing finished is lost and the runs it interrupted are "
                f"not counted: once fixed, `dgm resume {self.campaign.id}` redoes them")


# --------------------------------------------------------------------------- checks
def check_config(config: CampaignConfig) -> tuple[Benchmark, StagePlan]:
    """The checks that need neither the archive nor Docker: models, benchmark, task ids."""
    from dgm.bench.registry import load_benchmark
    from dgm.evolution.staging import build_plan
    from dgm.runs.checks import check_roles

    check_roles(config.roles, budget_usd=config.budget_usd, allow_unpriced=config.allow_unpriced)
    bench = load_benchmark(config.benchmark, **config.benchmark_options)
    return bench, build_plan(config, bench)


def preflight(bench: Benchmark, plan: StagePlan, sandbox=None, *, resuming: bool = False) -> None:
    """With `check_config`'s benchmark and plan: the sandbox limits the engine
    can grant and the sandboxes' images, before anything is spent."""
    from dgm.llm.litellm_loader import start_loading_litellm
    from dgm.runs.checks import check_sandbox_cpus
    from dgm.sandbox.docker import docker_client, ensure_image
    from dgm.sandbox.images import base_image_tag

    client = docker_client()
    if sandbox is not None:
        check_sandbox_cpus(client, sandbox.cpus, resuming)
    # Seconds of import, overlapping the engine's work (image builds take minutes): started
    # only once the engine answers, so the errors before this are not slowed down by it.
    start_loading_litellm()
    ensure_image(client, base_image_tag())  # self-modification and the sanity gate run on it
    wanted = set(plan.selection_task_ids) | set(plan.heldout)
    failed = bench.prepare_images(client, [t for t in bench.tasks() if t.instance_id in wanted])
    if failed:
        first = next(iter(failed.items()))
        raise DgmError(f"{len(failed)} task(s) have no image (e.g. {first[0]}: {first[1]}); "
                       "choose other tasks or another --images provider")


def refuse_if_running(campaign: Campaign) -> None:
    """Two runners on one campaign would redo each other's runs and pay twice:
    refuse while its runner is alive: a fresh heartbeat and, when it ran on
    this machine, a live pid (a killed runner's pid is gone at once)."""
    from dgm.liveness import heartbeat_age, runner_checks_in

    if not runner_checks_in(campaign) or campaign.pid == os.getpid():
        return
    where = "" if campaign.runner_host in (None, socket.gethostname()) else f" on {campaign.runner_host}"
    raise UsageError(f"campaign {campaign.name} is running (pid {campaign.pid}{where}, heartbeat "
                     f"{heartbeat_age(campaign):.0f} s ago); stop it first (kill -INT {campaign.pid}), then resume")


NOT_RESUMABLE = {"eval": "an evaluation (`dgm eval`)", "import": "an import of a DGM run (`dgm import-dgm`)",
                 "replay": "a replay (`dgm replay`)"}
INSTEAD = {"eval": "run `dgm eval` again for the tasks it did not finish (`dgm ls` shows what it recorded)",
           "import": "it is there to be browsed (`dgm ls`, `dgm lineage`), not continued",
           "replay": "run `dgm replay` again"}


# --------------------------------------------------------------------------- start / resume
def start_campaign(config: CampaignConfig, open_store: Callable[[], ArchiveStore],
                   hooks: CampaignHooks | None = None) -> CampaignResult:
    """`dgm run`: bad ids and models, then the engine, are refused before
    anything is written (the archive included); then images; then the campaign."""
    from dgm.runs.checks import check_sandbox_cpus
    from dgm.sandbox.docker import docker_client

    bench, plan = check_config(config)
    # Likewise the engine and the limits it can grant: refused, no archive is made (images are checked below).
    check_sandbox_cpus(docker_client(), config.sandbox.cpus, resuming=False)
    store = open_store()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    preflight(bench, plan)
    campaign = store.create_campaign(name=config.name or f"campaign-{stamp}-{os.getpid()}", kind="evolution",
                                     config=config.model_dump(mode="json"), seed=config.seed,
                                     budget_usd=config.budget_usd)
    return launch_campaign(store, config, campaign, hooks, benchmark=bench)


def resume_campaign(store: ArchiveStore, campaign_ref: str, *, budget_usd: float | None = None,
                    generations: int | None = None, max_hours: float | None = None, workers: int | None = None,
                    hooks: CampaignHooks | None = None, allow_unpriced: bool = False,
                    executor: dict | None = None) -> CampaignResult:
    """`dgm resume`: the campaign goes on from what it committed, with the
    options given (`executor`: fields of [campaign.executor]); nothing is
    changed until every check has passed."""
    from dgm.config import validate_config

    campaign = store.get_campaign(campaign_ref)
    if campaign.kind != "evolution":
        raise UsageError(f"campaign {campaign.name} is {NOT_RESUMABLE.get(campaign.kind, f'a {campaign.kind} run')}, "
                         f"not an evolution campaign: only those are resumed"
                         + (f"; {INSTEAD[campaign.kind]}" if campaign.kind in INSTEAD else ""))
    refuse_if_running(campaign)
    given = {k: v for k, v in {"budget_usd": budget_usd, "generations": generations, "max_hours": max_hours,
                               "workers": workers, "allow_unpriced": allow_unpriced or None}.items() if v is not None}
    data = {**(campaign.config or {}), **given}
    if executor:
        stored = data.get("executor")
        data["executor"] = given["executor"] = {**(stored if isinstance(stored, dict) else {}), **executor}
    if isinstance(data.get("name"), str) and not data["name"].strip():
        data["name"] = campaign.name  # recorded before blank names were refused: it ran under a generated one
    agents = store.list_agents(campaign.id)
    absent = set(store.code.missing(sorted({a.commit_sha for a in agents})))
    missing = [a.id for a in agents if a.commit_sha in absent]
    if missing:
        raise UsageError(f"the code of {len(missing)} agent(s) of campaign {campaign.name} (e.g. {missing[0]}) is not "
                         f"in {store.code.path}: pass the --archive-dir the campaign was started with")
    config = validate_config(data, "options", from_options=frozenset(given))
    spent = store.campaign_spend(campaign.id)
    if budget_usd is not None and budget_usd <= spent:
        raise UsageError(f"--budget-usd {budget_usd:g} is not above what campaign {campaign.name} has spent already "
                         f"(${spent:.4f}): give a larger cap")
    bench, plan = check_config(config)
    preflight(bench, plan, config.sandbox, resuming=True)
    # Claimed only now, against the campaign as read above: another resume
    # that started meanwhile has either claimed it already (this one stops
    # here, having changed nothing) or will find this one's claim.
    if not store.claim_runner(campaign.id, campaign):
        other = store.get_campaign(campaign.id)
        raise UsageError(f"campaign {campaign.name} was taken over by another runner (pid {other.pid}) while this "
                         f"resume was starting; nothing was changed here (see `dgm status {campaign.name}`)")
    if set(given) - {"max_hours"}:
        # A resume's --max-hours is for this session: kept out of the campaign's
        # config, or every later resume would stop after it too.
        kept = {**config.model_dump(mode="json"), "max_hours": (campaign.config or {}).get("max_hours")}
        campaign = store.update_campaign(campaign.id, config=kept, budget_usd=config.budget_usd)
    return launch_campaign(store, config, campaign, hooks, benchmark=bench)


# --------------------------------------------------------------------------- running
def launch_campaign(store: ArchiveStore, config: CampaignConfig, campaign: Campaign,
                    hooks: CampaignHooks | None = None, *, benchmark: Benchmark | None = None) -> CampaignResult:
    """`run_campaign` (on `benchmark`, the one the checks loaded, if given); if it ends by an exception before its runner recorded how the
    campaign stopped (a Ctrl-C or an error in the seconds before the runner
    starts), record it here: the campaign must not stay `running` with no runner."""
    try:
        return run_campaign(store, config, campaign, hooks or CampaignHooks(), benchmark=benchmark)
    except BaseException as exc:
        try:
            now = store.get_campaign(campaign.id)
            if now.status == "running" and now.pid == os.getpid():
                status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                store.set_campaign_status(campaign.id, status, finished=True)
                why = "interrupted" if status == "interrupted" else f"{type(exc).__name__}: {str(exc)[:200]}"
                store.add_event(campaign.id, "campaign_stopped", {
                    "status": status, "reason": f"stopped before its runner started ({why}); `dgm resume` goes on"})
        except Exception:  # noqa: BLE001 - best effort: the archive may be what failed
            pass
        raise


@contextmanager
def campaign_runner(store: ArchiveStore, config: CampaignConfig, campaign: Campaign, *,
                    docker_client: docker.DockerClient, benchmark: Benchmark,
                    on_event: Callable[[str], None] | None = None) -> Iterator[CampaignRunner]:
    """The campaign's runner over a run stack built from `config` (its sandbox
    limits included); on the way out in-flight runs end and sandboxes are removed."""
    from dgm.bench.evaluate import EvalSettings
    from dgm.evolution.loop import CampaignContext, CampaignRunner
    from dgm.runs.stack import run_stack, spend_cap
    from dgm.sandbox.docker import drain_removals

    roles = config.roles
    settings = EvalSettings(model=roles.task.name, time_limit_s=config.time_limit_s, limits=config.sandbox,
                            role=roles.task)
    budgets = {campaign.id: spend_cap(store, campaign.id, config.budget_usd)}
    try:
        with run_stack(store, docker_client, benchmark, settings, budgets=budgets, workers=config.workers,
                       executor=config.executor) as stack:
            yield CampaignRunner(CampaignContext(
                store=store, config=config, campaign=campaign, benchmark=benchmark, docker=docker_client,
                llm=stack.llm, gateway=stack.gateway, evaluator=stack.evaluator, executor=stack.executor,
                on_event=on_event))
    finally:
        drain_removals()


def run_campaign(store: ArchiveStore, config: CampaignConfig, campaign: Campaign,
                 hooks: CampaignHooks, *, benchmark: Benchmark | None = None) -> CampaignResult:
    """Run the campaign to its end or a stop. A first SIGINT/SIGTERM asks for a
    graceful stop (in-flight work finishes); a second quits at once."""
    import signal

    from dgm.bench.registry import load_benchmark
    from dgm.sandbox.docker import docker_client, remove_orphans

    # Loaded once: a SWE-bench dataset takes seconds to read and check.
    bench = benchmark or load_benchmark(config.benchmark, **config.benchmark_options)
    client = docker_client()
    removed = remove_orphans(client)
    if removed:
        hooks.on_orphans_removed(removed)
    broken = None
    with campaign_runner(store, config, campaign, docker_client=client, benchmark=bench,
                         on_event=hooks.on_event) as runner:
        interrupts = {"n": 0}

        def on_signal(signum, frame):
            interrupts["n"] += 1
            if interrupts["n"] > 1:
                quit_at_once(store, campaign, signal.Signals(signum).name, hooks.on_quit_at_once)
            runner.request_stop(signal.Signals(signum).name)
            hooks.on_stop_requested(signal.Signals(signum).name)

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            hooks.on_start(runner)
            status = hooks.watch(runner, runner.run) if hooks.watch is not None else runner.run()
        except InfrastructureError as exc:
            broken, status = exc, "failed"
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return CampaignResult(store=store, campaign=campaign, status=status, broken=broken)


def quit_at_once(store: ArchiveStore, campaign: Campaign, signame: str,
                 exit_now: Callable[[str, str], NoReturn] = _exit_at_once) -> NoReturn:
    """The second signal: exit now, as a kill would, but say so. Unwinding the
    threads instead (children waiting on task runs the executor no longer
    takes) hung for good or rejected healthy children. What was in flight
    stays unfinished, for `dgm resume` to redo; the sandboxes are left to
    the next dgm command's orphan sweep: removing them here would make the
    runs still in flight record their own sandbox's death as the agent's
    error. The campaign is marked interrupted, given a few seconds at most
    (the interrupted thread may hold the archive's lock); then `exit_now`."""

    def mark() -> None:
        try:
            store.set_campaign_status(campaign.id, "interrupted", finished=True)
            store.add_event(campaign.id, "campaign_stopped", {
                "status": "interrupted", "reason": f"second {signame}: quit at once; `dgm resume` redoes the work "
                                                  "that was in flight"})
        except Exception:  # noqa: BLE001 - best effort: a stale heartbeat tells the same later
            pass

    worker = threading.Thread(target=mark, daemon=True)
    worker.start()
    worker.join(3)
    exit_now(campaign.id, signame)
