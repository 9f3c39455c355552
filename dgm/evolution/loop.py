"""The campaign runner: select → diagnose → self-modify → sanity → staged
evaluation → admission, generation after generation, resumable at any point.

Crash safety comes from one rule: every step commits its result in one
transaction (through the archive store) before the next step starts, and
every step first looks at what is already committed. A child's status says
where it is: pending (needs a diagnosis) → self_modifying (has a proposal) →
evaluating (has its own commit) → admitted / rejected; or, when its code
equals an agent's already in the campaign, twin (recorded with its commit, in
the same transaction, and never evaluated). Task runs are unique per (agent,
task, stage, attempt, repeat), so a finished one is never redone; one left
'running' by a crash is reset and redone. A generation's parents are chosen
and recorded before any child of it starts, so a resumed generation never
re-selects against a half-updated archive.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from dgm.errors import (ArchiveIncomplete, ArchiveUnavailable, BudgetExceeded, InfrastructureError,
                        ModelUnavailable, NotFound)
from dgm.evolution import diagnose as diag
from dgm.evolution.admission import keep_better_refusal
from dgm.evolution.budget_marks import BUDGET_MARKS, marks_passed
from dgm.evolution.diversity import coverage, mean_pairwise_jaccard_distance
from dgm.evolution.selection import AgentStats, select_parents
from dgm.evolution.schedule import end_on_errors
from dgm.evolution.slots import SlotMeter
from dgm.evolution.self_modify import RejectChild, commit_child, run_self_modification, sanity_gate
from dgm.evolution.staging import (CONTINUE, HELDOUT, NO_PATCH, SEQUENTIAL, WORSE, StagePlan, build_plan,
                                   close_calls, comparable_scores, next_batch, sequential_reference, sequential_rule,
                                   sequential_verdict, settle_batches, should_advance)
from dgm.liveness import heartbeat
from dgm.llm.client import CallContext, UpstreamError
from dgm.llm.gateway import CONTAINER_SOCKET
from dgm.ranking import best_key

if TYPE_CHECKING:
    import docker

    from dgm.archive.models import Campaign
    from dgm.archive.store import ArchiveStore
    from dgm.bench.evaluate import Evaluator
    from dgm.bench.base import Benchmark
    from dgm.config import CampaignConfig
    from dgm.executor import Executor
    from dgm.llm.client import LLMClient
    from dgm.llm.gateway import Gateway


FINAL_STATUSES = ("admitted", "rejected", "twin")
"""A child in one of these is done: a resumed generation leaves it as it is."""


class SlotOrder:
    """A step the children of one generation pass in slot order: a child waits
    until the children before it have passed (or given up on) the step. What
    a child sees at that step (its siblings' proposals, the code already in
    the campaign) then never depends on which thread ran first, so a seeded
    campaign stays reproducible. Children past the step before a restart are
    not waited for."""

    def __init__(self) -> None:
        self._passed: dict[str, threading.Event] = {}

    def expect(self, agent_ids) -> None:
        self._passed = {agent_id: threading.Event() for agent_id in agent_ids}

    def wait_for(self, agent_ids, check: Callable[[], None]) -> None:
        for agent_id in agent_ids:
            passed = self._passed.get(agent_id)
            while passed is not None and not passed.wait(1.0):
                check()  # a stop is not held up by a slow sibling

    def passed(self, agent_id: str) -> None:
        event = self._passed.get(agent_id)
        if event is not None:
            event.set()


class Stopped(Exception):
    """A stop was requested (signal, wall time, budget); in-flight work is checkpointed."""


@dataclass
class RunnerState:
    """What the live dashboard shows; written by the runner, read by the view."""

    generation: int = 0
    phase: str = "starting"
    in_flight: dict[str, str] = field(default_factory=dict)
    best_agent: str | None = None
    best_score: float | None = None
    archive_size: int = 0
    started_at: float = field(default_factory=time.monotonic)
    generation_times: list[float] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set_child(self, agent_id: str, text: str | None) -> None:
        with self.lock:
            if text is None:
                self.in_flight.pop(agent_id, None)
            else:
                self.in_flight[agent_id] = text

    def note(self, line: str) -> None:
        with self.lock:
            self.log.append(line)
            del self.log[:-200]


@dataclass(frozen=True)
class CampaignContext:
    """Everything a campaign runs with, built once (`dgm.runs.campaign`)."""

    store: ArchiveStore
    config: CampaignConfig
    campaign: Campaign
    benchmark: Benchmark
    docker: docker.DockerClient
    llm: LLMClient
    gateway: Gateway
    evaluator: Evaluator
    executor: Executor
    """Where task runs execute."""
    on_event: Callable[[str], None] | None = None
    """Each event as a line, as it is recorded (the CLI prints them when there is no live view)."""


class CampaignRunner:
    def __init__(self, context: CampaignContext):
        self.context = context
        self.store: ArchiveStore = context.store
        self.config: CampaignConfig = context.config
        self.campaign: Campaign = context.campaign
        self.benchmark: Benchmark = context.benchmark
        self.docker: docker.DockerClient = context.docker
        self.llm: LLMClient = context.llm
        self.gateway: Gateway = context.gateway
        self.evaluator: Evaluator = context.evaluator
        # Counted, for the asynchronous schedule and the views' "slots busy / total".
        self.tasks: SlotMeter = SlotMeter(context.executor)
        self.plan: StagePlan = build_plan(self.config, self.benchmark)
        self.tasks_by_id = {t.instance_id: t for t in self.benchmark.tasks()}
        self.state = RunnerState()
        self.stop_reason: str | None = None
        self._stop = threading.Event()
        # Set when run() returns: the heartbeat lasts until then, through a
        # graceful stop's in-flight work, so no second runner takes over meanwhile.
        # Set while an infrastructure failure is being waited out: children start nothing new.
        self._paused = threading.Event()
        self._on_event = context.on_event
        self._marks_lock = threading.Lock()
        self._marks_said: set[int] | None = None
        self._deadline = (time.monotonic() + self.config.max_hours * 3600) if self.config.max_hours else None
        # Children of one parent are diagnosed in slot order (each is told what the earlier ones
        # were asked to do); children of a generation record their code in slot order (the earlier
        # of two with the same code is the original, the later its twin).
        self._diagnosed = SlotOrder()
        self._coded = SlotOrder()

    # -- stopping ------------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        if not self._stop.is_set():
            self.stop_reason = reason
            self._stop.set()
            self._event("stop_requested", {"reason": reason})

    def _stop_description(self, status: str) -> str:
        """Why the campaign stopped, in words (what `dgm status` shows in the morning)."""
        reason = self.stop_reason or "done"
        if status == "budget_exhausted":
            budget = self.llm.budget_for(self.campaign.id)
            cap = f"${budget.cap_usd:.2f} " if budget is not None and budget.cap_usd is not None else ""
            return (f"its {cap}budget is spent (${self.store.campaign_spend(self.campaign.id):.4f}); "
                    "--budget-usd on resume raises it")
        if reason == "max_hours":
            return f"its {self.config.max_hours:g} h time limit (--max-hours) was reached"
        if reason in ("SIGINT", "SIGTERM"):
            return f"stopped by {reason}"
        return reason

    def stopping(self) -> bool:
        if self._deadline is not None and time.monotonic() > self._deadline:
            self.request_stop("max_hours")
        budget = self.llm.budget_for(self.campaign.id)
        if budget is not None and budget.exhausted():
            self.request_stop("budget_exhausted")
        return self._stop.is_set() or self._paused.is_set()

    def _check(self) -> None:
        if self.stopping():
            raise Stopped(self.stop_reason)

    def _event(self, kind: str, payload: dict, agent_id: str | None = None, line: str | None = None) -> None:
        """Record the event; `line` is how the dashboard says it (default: its kind and payload)."""
        self.store.add_event(self.campaign.id, kind, payload, agent_id=agent_id)
        text = line or f"{kind}: " + ", ".join(f"{k}={v}" for k, v in payload.items())
        self.state.note(text)
        if self._on_event:
            self._on_event(text)

    # -- budget marks ------------------------------------------------------------
    def _watch_budget_marks(self) -> None:
        """Announce spend crossing each of the BUDGET_MARKS of the cap, as the call that crosses it
        is recorded. Marks said before (this cap, an earlier session) are not said again;
        one passed while nobody watched (a resume) is said now."""
        budget = self.llm.budget_for(self.campaign.id)
        if budget is None or budget.cap_usd is None or self._marks_said is not None:
            return
        self._marks_said = {int((e.payload or {}).get("percent", 0))
                            for e in self.store.list_events(self.campaign.id, kinds=["budget_mark"])
                            if (e.payload or {}).get("budget_usd") == budget.cap_usd}
        budget.after_call.append(self._say_budget_marks)
        self._say_budget_marks()

    def _say_budget_marks(self) -> None:
        budget = self.llm.budget_for(self.campaign.id)
        if budget is None or budget.cap_usd is None or self._marks_said is None:
            return
        with self._marks_lock:
            if self._marks_said.issuperset(BUDGET_MARKS):
                return
            try:
                spent = self.store.campaign_spend(self.campaign.id)
                for mark in marks_passed(spent, budget.cap_usd):
                    if mark not in self._marks_said:
                        self._event("budget_mark", {"percent": mark, "spent_usd": round(spent, 6),
                                                    "budget_usd": budget.cap_usd},
                                    line=f"budget: {mark} % of ${budget.cap_usd:g} spent (${spent:.4f})")
                        self._marks_said.add(mark)
            except ArchiveUnavailable:
                return  # said after a later call, once the archive answers; the call itself is not at fault

    # -- the campaign ----------------------------------------------------------
    def run(self) -> str:
        """Run (or resume) to the end or a stop; returns the final campaign status."""
        with heartbeat(self.store, self.campaign.id):  # until the stop is recorded
            return self._run_to_a_stop()

    def _run_to_a_stop(self) -> str:
        self.store.set_campaign_status(self.campaign.id, "running")
        status = "completed"
        try:
            self._watch_budget_marks()
            self._run_waiting_out_outages()
            self._event("campaign_done", {"generations": self.config.generations})
        except Stopped:
            status = "budget_exhausted" if self.stop_reason == "budget_exhausted" else "interrupted"
        except BudgetExceeded:
            self.request_stop("budget_exhausted")
            status = "budget_exhausted"
        except InfrastructureError as exc:
            # Sandboxes cannot run: going on would only spend on children that
            # cannot be evaluated. Work in flight stays unfinished, for `dgm resume`.
            self.stop_reason = f"infrastructure: {exc}"
            status = "failed"
            raise
        except BaseException:
            status = "failed"  # a bug or a broken harness; `dgm resume` retries after the fix
            raise
        finally:
            try:
                self.store.set_campaign_status(self.campaign.id, status, finished=True)
                self._event("campaign_stopped", {"status": status, "reason": self._stop_description(status)})
            except ArchiveUnavailable:
                # The archive itself failed: the stop cannot be recorded (its heartbeat
                # goes stale instead), and the failure that got us here is the one to report.
                if status == "completed":
                    raise
        return status

    def _run_schedule(self) -> None:
        """The campaign's schedule: generation after generation (DGM's), or asynchronous (`dgm.evolution.schedule`)."""
        if self.config.schedule == "async":
            from dgm.evolution.schedule import AsyncSchedule

            return AsyncSchedule(self, stopped=Stopped, final_statuses=FINAL_STATUSES).run()
        return self._run_generations()

    def _run_seed_generation(self) -> set[int]:
        """Generation 0, the seed, evaluated (unless it was before a restart); the generations finished so far."""
        # litellm takes seconds to import (the gateway started it in the background): before any run starts.
        from dgm.llm.litellm_loader import load_litellm

        self.state.phase = "loading litellm"
        load_litellm()
        seed = self._ensure_seed()
        done = {s.generation for s in self.store.list_generation_stats(self.campaign.id)}
        if 0 not in done:
            self.state.phase = "evaluating the seed agent"
            self._finish_child(seed)
            self._check_harness(seed)
            self._after_generation(0)
            done.add(0)
        return done

    def _run_generations(self) -> None:
        done = self._run_seed_generation()
        for generation in range(1, self.config.generations + 1):
            if generation in done:
                continue  # finished before a restart: its statistics are its commit mark
            self._check()
            self._run_generation(generation)
            self._after_generation(generation)

    def _run_waiting_out_outages(self) -> None:
        """Run the generations; when Docker, the archive or the model fails, wait
        (with backoff, up to `infrastructure_wait_minutes` in all) and go on
        from what is committed, exactly as `dgm resume` would; past that, the
        InfrastructureError stops the campaign. An overnight campaign thus
        rides out a restart of dockerd or a provider's bad quarter hour."""
        allowance = self.config.infrastructure_wait_minutes * 60.0
        waited, pause = 0.0, 10.0
        while True:
            try:
                return self._run_schedule()
            except InfrastructureError as exc:
                if waited >= allowance or self._stop.is_set():
                    raise
                wait = min(pause, allowance - waited)
                self._event("infrastructure_wait", {"reason": str(exc)[:300], "retry_in_s": round(wait),
                                                    "waited_s": round(waited)})
                self.state.phase = f"waiting {wait:.0f} s for the infrastructure: {str(exc)[:120]}"
                if self._stop.wait(wait):
                    raise Stopped(self.stop_reason) from None
                waited, pause = waited + wait, min(pause * 2, 300.0)
                self._paused.clear()  # the children left waiting may start again

    def _check_harness(self, seed) -> None:
        """If every seed run errored, the harness is broken (not the agent): stop loudly."""
        runs = [r for r in self.store.list_task_runs(agent_id=seed.id, kind="task", campaign_id=self.campaign.id)]
        if runs and all(r.status == "error" for r in runs):
            from dgm.errors import DgmError

            raise DgmError(f"every task run of the seed agent failed; first error: {runs[0].error}")

    def _ensure_seed(self):
        seeds = [a for a in self.store.list_agents(self.campaign.id) if a.origin == "seed"]
        if seeds:
            return seeds[0]
        from dgm.agent_code import SEED_AGENT_DIR, commit_agent_dir

        sha = commit_agent_dir(self.store, SEED_AGENT_DIR, "seed agent")
        agent = self.store.add_agent(self.campaign.id, sha, generation=0, status="evaluating", origin="seed",
                                     meta={"slot": 0, "own_commit": True})
        self._event("agent_created", {"agent": agent.id, "generation": 0, "origin": "seed"}, agent.id)
        return agent

    # -- generations -------------------------------------------------------------
    def _run_generation(self, generation: int) -> None:
        started = time.monotonic()
        self.state.generation = generation
        self.state.phase = f"generation {generation}: selecting parents"
        # A generation's statistics are written last: without them it is unfinished.
        children = self._children_of(generation)
        if len(children) < self.config.children_per_generation:
            children = self._create_children(generation, children)
        pending = [c for c in children if c.status not in FINAL_STATUSES]
        self._diagnosed.expect(c.id for c in pending if c.status == "pending")
        self._coded.expect(c.id for c in pending if c.status in ("pending", "self_modifying"))
        self.state.phase = f"generation {generation}: {len(pending)} child(ren) in flight"
        errors: list[BaseException] = []
        with ThreadPoolExecutor(max_workers=max(1, len(pending)), thread_name_prefix="dgm-child") as pool:
            futures = [pool.submit(self._finish_child, child) for child in pending]
            for future in futures:
                try:
                    future.result()
                except (Stopped, BudgetExceeded, InfrastructureError) as exc:
                    if isinstance(exc, InfrastructureError):
                        self._paused.set()  # the other children start nothing new
                    errors.append(exc)
        end_on_errors(self, errors, Stopped)
        self.state.generation_times.append(time.monotonic() - started)

    def _children_of(self, generation: int) -> list:
        return sorted((a for a in self.store.list_agents(self.campaign.id) if a.generation == generation
                       and a.origin == "child"), key=lambda a: (a.meta or {}).get("slot", 0))

    def _stats(self) -> list[AgentStats]:
        # Rows in (generation, slot) order, never id order: ids are random, and a
        # seeded selector is only reproducible over the same rows in the same order.
        agents = sorted(self.store.list_agents(self.campaign.id),
                        key=lambda a: (a.generation, (a.meta or {}).get("slot", 0)))
        outcomes = self.store.agent_task_outcomes(self.campaign.id, stages=self.plan.stage_names)
        children = self.store.children_counts(self.campaign.id)
        comparable = {}
        if self.config.staging == SEQUENTIAL:  # records of different lengths, put on one scale
            order = self.plan.selection_task_ids
            comparable = comparable_scores({a.id: _prefix_outcomes(order, outcomes.get(a.id, {})) for a in agents})
        stats = []
        for agent in agents:
            results = outcomes.get(agent.id, {})
            if agent.status != "admitted" and not results:
                continue
            # A twin that was not evaluated again scores as the agent it is a twin of.
            score = comparable.get(agent.id, comparable.get(agent.twin_of, agent.score or 0.0))
            stats.append(AgentStats(
                agent_id=agent.id, parent_id=agent.parent_id, score=float(score),
                n_children=children.get(agent.id, 0),
                solved=frozenset(t for t, ok in results.items() if ok),
                failed=frozenset(t for t, ok in results.items() if not ok),
                eligible=agent.status == "admitted",
            ))
        return stats

    def _create_children(self, generation: int, existing: list) -> list:
        stats = self._stats()
        parents = select_parents(self.config.selection, stats, self.config.children_per_generation,
                                 seed=self.config.seed * 1_000_003 + generation)
        have = {(c.meta or {}).get("slot") for c in existing}
        created = list(existing)
        for slot, parent_id in enumerate(parents):
            if slot in have:
                continue
            parent = self.store.get_agent(parent_id)
            child = self.store.add_agent(
                self.campaign.id, parent.commit_sha, parent_id=parent.id, generation=generation,
                status="pending", origin="child",
                meta={"slot": slot, "own_commit": False, "selection": self.config.selection},
            )
            self._event("agent_created", {"agent": child.id, "generation": generation, "parent": parent.id},
                        child.id)
            created.append(child)
        return sorted(created, key=lambda a: (a.meta or {}).get("slot", 0))

    # -- one child -------------------------------------------------------------
    def _finish_child(self, agent) -> None:
        """Take one agent from whatever state it is in to admitted or rejected."""
        try:
            agent = self.store.get_agent(agent.id)
            if agent.status == "pending":
                self._check()
                self.state.set_child(agent.id, "diagnosing")
                try:
                    agent = self._diagnose(agent)
                finally:
                    self._diagnosed.passed(agent.id)
            if agent.status == "self_modifying":
                self._check()
                self.state.set_child(agent.id, "self-modifying")
                agent = self._self_modify(agent)
            if agent.status == "evaluating":
                if agent.origin == "child":
                    self._check()
                    self.state.set_child(agent.id, "sanity gate")
                    sanity_gate(store=self.store, docker_client=self.docker, code_cache=self.evaluator.code_cache,
                                campaign_id=self.campaign.id, child=agent, image=self._image(),
                                limits=self.evaluator.settings.limits,
                                time_limit_s=self.config.sanity_time_limit_s,
                                jobs=self.evaluator.jobs, host=self.evaluator.host)
                self._evaluate_staged(agent)
                self._admit(self.store.get_agent(agent.id))
        except RejectChild as exc:
            self._reject(agent, str(exc))
        except (Stopped, BudgetExceeded, InfrastructureError):
            raise  # InfrastructureError: the child is not at fault; it stays where it is, for a resume
        except NotFound as exc:
            # The archive lacks what its own rows name: rejecting the child would
            # make a wrong --archive-dir (or a damaged one) permanent.
            raise ArchiveIncomplete(f"the archive in {self.store.root} lacks what its rows reference ({exc}); "
                                    f"nothing was changed: check --archive-dir and run `dgm resume`") from None
        except Exception as exc:  # noqa: BLE001 - one broken child must not end the campaign
            if agent.origin == "seed":
                raise  # without a working seed there is no campaign
            self._reject(agent, f"internal error: {type(exc).__name__}: {str(exc)[:300]}")
        finally:
            # Also when it stopped or was rejected before them: the later siblings go on.
            self._diagnosed.passed(agent.id)
            self._coded.passed(agent.id)
            self.state.set_child(agent.id, None)

    def _earlier_siblings(self, child, same_parent: bool) -> list[str]:
        """Ids of the children of the child's generation in lower slots (of its parent only: `same_parent`)."""
        slot = (child.meta or {}).get("slot", 0)
        return [c.id for c in self._children_of(child.generation)
                if (c.meta or {}).get("slot", 0) < slot and (not same_parent or c.parent_id == child.parent_id)]

    def _image(self) -> str:
        from dgm.sandbox.images import base_image_tag

        return base_image_tag()

    def _reject(self, agent, reason: str) -> None:
        self.store.update_agent(agent.id, status="rejected", rejection_reason=reason)
        self._event("agent_rejected", {"agent": agent.id, "reason": reason}, agent.id)

    def _siblings_proposals(self, child) -> list[dict]:
        """What the other children of the child's parent in this campaign were
        already told to do, oldest first: the proposer is asked not to repeat it.
        A sibling of this generation with a lower slot is waited for, so the
        proposals a child sees do not depend on which thread ran first."""
        def order(agent) -> tuple[int, int]:
            return agent.generation, (agent.meta or {}).get("slot", 0)

        self._diagnosed.wait_for(self._earlier_siblings(child, same_parent=True), self._check)
        # Only those before it (a resumed run sees what an uninterrupted one did).
        siblings = sorted((c for c in self.store.children_of(child.parent_id)
                           if c.campaign_id == self.campaign.id and c.proposal and order(c) < order(child)),
                          key=order)
        return [{"agent": s.id, "generation": s.generation, **s.proposal} for s in siblings]

    def _diagnose(self, child):
        parent = self.store.get_agent(child.parent_id)
        slot = (child.meta or {}).get("slot", 0)
        siblings = self._siblings_proposals(child)
        rng = random.Random(f"dgm-target-{self.config.seed}-{child.generation}-{slot}")
        runs = [r for r in self.store.list_task_runs(agent_id=parent.id, kind="task", campaign_id=self.campaign.id)
                if r.stage in self.plan.stage_names]
        target = diag.choose_target(runs, rng)
        evidence = {}
        if target.task_run_id:
            run = self.store.get_task_run(target.task_run_id)
            task = self.tasks_by_id.get(run.task_id)
            raw = self.store.artifacts.get(run.trajectory_artifact) if run.trajectory_artifact else None
            evidence = {"problem_statement": task.problem_statement if task else "", "patch": run.patch,
                        "trajectory": diag.render_trajectory(raw, self.config.trajectory_chars),
                        "tests_status": run.tests_status, "status": run.status, "error": run.error}
        # From the parent's checked-out code (cached for its evaluation), not one git process per file:
        # an agent may have grown thousands of files.
        code_dir = Path(self.evaluator.code_cache.path(parent.commit_sha))
        files = {}
        for path in self.store.code.tree_files(parent.commit_sha):
            file = code_dir / path
            if path.endswith((".py", ".md", ".txt", ".toml", ".json")) and file.is_file() and not file.is_symlink():
                files[path] = file.read_bytes().decode("utf-8", "replace")
        proposer = self.config.roles.proposer
        fits = diag.prompt_chars(proposer.context_window, proposer.max_output_tokens or self.llm.max_output_tokens)
        messages = diag.build_messages(diag.agent_code_text(files), target, evidence, siblings=siblings,
                                       max_chars=fits)
        ctx = CallContext(purpose="diagnose", model=proposer.name, campaign_id=self.campaign.id,
                          agent_id=child.id, role=proposer)
        try:
            proposal = diag.diagnose(self.llm, ctx, messages, self.config.diagnosis_retries)
        except diag.DiagnosisFailed as exc:
            raise RejectChild(f"diagnosis: {exc}") from None
        except UpstreamError as exc:
            if exc.outage:  # the provider is down: no fault of this child's
                raise ModelUnavailable(f"the proposer model {self.config.diagnosis_model} was unavailable: {exc}") from None
            raise RejectChild(f"diagnosis: the proposer model failed: {exc}") from None
        agent = self.store.update_agent(child.id, status="self_modifying", proposal=proposal.model_dump(),
                                        diagnosis_target=target.as_dict())
        self._event("agent_diagnosed", {"agent": child.id, "target": target.kind,
                                        "proposal": proposal.improvement_proposal[:80]}, child.id)
        return agent

    def _self_modify(self, child):
        parent = self.store.get_agent(child.parent_id)
        result = run_self_modification(
            store=self.store, docker_client=self.docker, gateway=self.gateway,
            code_cache=self.evaluator.code_cache, campaign_id=self.campaign.id, parent=parent, child=child,
            proposal=child.proposal, role=self.config.roles.self_modify, time_limit_s=self.config.self_modify_time_limit_s,
            limits=self.evaluator.settings.limits, image=self._image(),
            socket_path_in_container=CONTAINER_SOCKET, jobs=self.evaluator.jobs, host=self.evaluator.host,
        )
        summary = (child.proposal or {}).get("summary", "")[:72]
        sha = commit_child(self.store, self.evaluator.code_cache, parent, result.patch,
                           message=f"generation {child.generation}: {summary}", error=result.error,
                           usable=result.usable)
        # Where the child's code is first known: the store records it, and whether it is a twin, at once.
        self._coded.wait_for(self._earlier_siblings(child, same_parent=False), self._check)
        agent = self.store.record_child_code(child.id, sha, {**(child.meta or {}), "own_commit": True},
                                             evaluate_twins=self.config.evaluate_twins)
        self._coded.passed(child.id)
        self._event("agent_modified", {"agent": child.id, "commit": sha[:10]}, child.id)
        if agent.twin_of is not None:
            self._event("agent_twin", {"agent": child.id, "twin_of": agent.twin_of,
                                       "evaluated": agent.status == "evaluating"}, child.id)
        return agent

    def _evaluate_staged(self, agent) -> None:
        if self.config.staging == SEQUENTIAL:
            return self._evaluate_sequential(agent)
        resolved = evaluated = 0
        for index, stage in enumerate(self.plan.stages):
            runs = self._run_tasks(agent, stage.task_ids, stage.name, stage.repeats)
            resolved += sum(r.status == "resolved" for r in runs)
            evaluated += len(runs)
            self.store.update_agent(agent.id, score=resolved / evaluated, stage_reached=index + 1)
            if index + 1 < len(self.plan.stages) and not should_advance(stage, resolved, evaluated):
                break

    def _evaluate_sequential(self, agent) -> None:
        """Batches of the selection tasks in the plan's order until the rule says
        stop (`staging.sequential_verdict`; `dgm simulate` runs the same rule).
        Each task run keeps the name of the stage its task belongs to, so every
        view of stages reads a sequential campaign as it reads a staged one."""
        rule = sequential_rule(self.config)
        order = self.plan.selection_task_ids
        mine = self.store.agent_task_outcomes(self.campaign.id, stages=self.plan.stage_names).get(agent.id, {})
        child = _prefix_outcomes(order, mine)  # a resumed child goes on from the batches it finished
        # The seed is never rejected for want of a patch (`_admit`), so it is never stopped for it either.
        patched = agent.origin == "seed" or any(
            (r.patch or "").strip() for r in self.store.list_task_runs(agent_id=agent.id, kind="task",
                                                                      campaign_id=self.campaign.id)
            if r.stage in self.plan.stage_names)
        while True:
            reference = None if agent.origin == "seed" else self._sequential_reference(agent, rule, order)
            verdict = sequential_verdict(rule, child, reference[1] if reference else None, len(order),
                                         produced_patch=patched)
            if verdict != CONTINUE:
                if verdict == WORSE:
                    self._event("evaluation_stopped", {"agent": agent.id, "tasks": len(child),
                                                       "worse_than": reference[0]}, agent.id)
                elif verdict == NO_PATCH:
                    self._event("evaluation_stopped", {"agent": agent.id, "tasks": len(child),
                                                       "no_patch": True}, agent.id)
                return
            runs = self._run_batch(agent, [order[i] for i in next_batch(rule, len(child), len(order))], child)
            patched = patched or any((r.patch or "").strip() for r in runs)

    def _run_batch(self, agent, batch: list[str], outcomes: list[bool]) -> list:
        """Run `batch` (the next tasks of the order), each under its stage's name; extend `outcomes`.
        Returns the task runs."""
        stage_index = {t: i for i, s in enumerate(self.plan.stages) for t in s.task_ids}
        done = []
        for index in sorted({stage_index[t] for t in batch}):
            stage = self.plan.stages[index]
            runs = self._run_tasks(agent, [t for t in batch if stage_index[t] == index], stage.name)
            outcomes += [r.status == "resolved" for r in runs]
            done += runs
        self.store.update_agent(agent.id, score=sum(outcomes) / len(outcomes),
                                stage_reached=stage_index[batch[-1]] + 1)
        return done

    def _settle_close_calls(self) -> None:
        """Sequential staging: while the best agent is a close call against a
        challenger (`staging.close_calls`), both run their next batch, so the
        agent shown as best has beaten the others on the tasks that decide it."""
        rule = sequential_rule(self.config)
        order = self.plan.selection_task_ids
        cap = rule.cap(len(order))
        while True:
            self._check()
            outcomes = self.store.agent_task_outcomes(self.campaign.id, stages=self.plan.stage_names)
            admitted = sorted(self.store.list_agents(self.campaign.id, statuses=["admitted"]),
                              key=lambda a: (a.generation, (a.meta or {}).get("slot", 0)))
            pool = {a.id: _prefix_outcomes(order, outcomes.get(a.id, {})) for a in admitted}
            pool = {i: o for i, o in pool.items() if len(o) >= cap}
            ids = close_calls(rule, list(pool.items()), len(order))
            if not ids:
                return
            self._event("close_call", {"leader": ids[0], "challenger": ids[1]})
            for agent_id, positions in settle_batches(rule, {i: len(pool[i]) for i in ids}, len(order)).items():
                done = pool[agent_id]
                batch = [order[i] for i in positions]
                if batch:
                    self.state.set_child(agent_id, "settling a close call")
                    try:
                        self._run_batch(self.store.get_agent(agent_id), batch, done)
                    finally:
                        self.state.set_child(agent_id, None)

    def _sequential_reference(self, agent, rule, order) -> tuple[str, list[bool]] | None:
        """(id, outcomes in task order) of the best admitted agent evaluated to the cap."""
        outcomes = self.store.agent_task_outcomes(self.campaign.id, stages=self.plan.stage_names)
        admitted = sorted((a for a in self.store.list_agents(self.campaign.id, statuses=["admitted"])
                           if a.id != agent.id), key=lambda a: (a.generation, (a.meta or {}).get("slot", 0)))
        prefixes = {a.id: _prefix_outcomes(order, outcomes.get(a.id, {})) for a in admitted}
        best = sequential_reference([(a.id, a.score or 0.0, len(prefixes[a.id])) for a in admitted],
                                    len(order), rule)
        return (best, prefixes[best]) if best else None

    def _run_tasks(self, agent, task_ids, stage: str, repeats: int = 1) -> list:
        tasks = [self.tasks_by_id[t] for t in task_ids]
        total = len(tasks) * repeats
        done = {"n": 0, "resolved": 0}

        def progress(task, run) -> None:
            done["n"] += 1
            done["resolved"] += run.status == "resolved"
            self.state.set_child(agent.id, f"stage {stage}: {done['n']}/{total} run, "
                                           f"{done['resolved']} resolved")

        self.state.set_child(agent.id, f"stage {stage}: 0/{total} run")
        runs = self.evaluator.run_tasks(agent, tasks, campaign_id=self.campaign.id, stage=stage,
                                        executor=self.tasks, should_stop=self.stopping, on_done=progress,
                                        repeats=repeats)
        if any(r is None for r in runs):
            raise Stopped(self.stop_reason)
        return runs

    def _admit(self, agent) -> None:
        runs = [r for r in self.store.list_task_runs(agent_id=agent.id, kind="task", campaign_id=self.campaign.id)
                if r.stage in self.plan.stage_names]
        if agent.origin == "child":
            if not any((r.patch or "").strip() for r in runs):
                # Say how the runs ended: a child that hangs or crashes is not one that gives up.
                how = ", ".join(f"{n} {status}" for status, n in Counter(r.status for r in runs).most_common())
                raise RejectChild(f"produced no non-empty patch on any task ({how})" if how else
                                  "produced no non-empty patch on any task")
            if self.config.admission == "keep_better":
                parent = self.store.get_agent(agent.parent_id)
                outcomes = self.store.task_run_outcomes([agent.id, parent.id], campaign_id=self.campaign.id,
                                                        stages=self.plan.stage_names)
                refusal = keep_better_refusal(
                    test=self.config.admission_test, child_score=agent.score, parent_score=parent.score,
                    child_outcomes=outcomes.get(agent.id, {}), parent_outcomes=outcomes.get(parent.id, {}),
                    alpha=self.config.admission_alpha, allowance=self.config.noise_allowance)
                if refusal is not None:
                    raise RejectChild(refusal)
        self.store.update_agent(agent.id, status="admitted")
        self._event("agent_admitted", {"agent": agent.id, "score": round(agent.score or 0.0, 4)}, agent.id)

    # -- after each generation -----------------------------------------------------
    def _after_generation(self, generation: int) -> None:
        if self.config.staging == SEQUENTIAL and generation == self.config.generations:
            # Once, at the end: `dgm simulate` found settling every generation costs more for no better pick.
            self.state.phase = f"generation {generation}: settling close calls"
            self._settle_close_calls()
        self.state.phase = f"generation {generation}: held-out and diversity"

        # The archive as of this generation, also when a resumed run redoes
        # this step after later agents exist.
        def archive_now():
            return [a for a in self.store.list_agents(self.campaign.id, statuses=["admitted"])
                    if a.generation <= generation]

        self._score_heldout(archive_now())
        admitted = archive_now()
        outcomes = self.store.agent_task_outcomes(self.campaign.id, stages=self.plan.stage_names)
        solved = [frozenset(t for t, ok in outcomes.get(a.id, {}).items() if ok) for a in admitted]
        scores = [a.score or 0.0 for a in admitted]
        n_tasks = len(self.plan.selection_task_ids)
        cov = coverage(solved)
        best = min(admitted, key=lambda a: best_key(a.score, a.heldout_score, a.generation,
                                                    (a.meta or {}).get("slot", 0)), default=None)
        self.store.record_generation_stat(
            self.campaign.id, generation, archive_size=len(admitted),
            best_score=max(scores, default=0.0), mean_score=sum(scores) / len(scores) if scores else 0.0,
            coverage=cov, coverage_fraction=cov / n_tasks if n_tasks else 0.0,
            mean_jaccard_distance=mean_pairwise_jaccard_distance(solved, seed=self.config.seed),
            spent_usd=self.store.campaign_spend(self.campaign.id),
        )
        with self.state.lock:
            self.state.archive_size = len(admitted)
            self.state.best_agent = best.id if best else None
            self.state.best_score = best.score if best else None
        self._event("generation_done", {"generation": generation, "archive": len(admitted),
                                        "best": round(max(scores, default=0.0), 4), "coverage": cov})

    def _score_heldout(self, admitted: list) -> None:
        if not self.plan.heldout or self.config.heldout_top_k == 0:
            return
        # Ties go to the older agent, then the lower slot: never to a random id,
        # so two runs with the same seed score the same agents on held-out tasks.
        ranked = sorted(admitted, key=lambda a: (-(a.score or 0.0), a.generation, (a.meta or {}).get("slot", 0)))
        for agent in ranked[: self.config.heldout_top_k]:
            if agent.heldout_score is not None:
                continue
            self._check()
            self.state.set_child(agent.id, "held-out evaluation")
            try:
                runs = self._run_tasks(agent, self.plan.heldout, HELDOUT)
            finally:
                self.state.set_child(agent.id, None)
            score = sum(r.status == "resolved" for r in runs) / len(runs)
            self.store.update_agent(agent.id, heldout_score=score)
            self._event("heldout_scored", {"agent": agent.id, "selection": round(agent.score or 0.0, 4),
                                           "heldout": round(score, 4)}, agent.id)


def _prefix_outcomes(order, outcomes: dict[str, bool]) -> list[bool]:
    """The outcomes of the first tasks of `order` that the agent has run, up to the first it has not."""
    prefix = []
    for task_id in order:
        if task_id not in outcomes:
            break
        prefix.append(outcomes[task_id])
    return prefix
