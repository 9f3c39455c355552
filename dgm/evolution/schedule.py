"""The asynchronous schedule (`schedule = "async"`): no generation barrier.

In DGM's schedule a generation's children start together and the next
generation waits for the slowest of them, so sandbox slots idle while one
child finishes its last stage. Here a child starts whenever the executor's
slots would otherwise run short of work: its parent is selected (by the
campaign's pure selector) from the archive as it stands, and it goes through
the same steps as any child (`CampaignRunner._finish_child`: diagnose,
self-modify, sanity gate, stages, admission); the stages of different
children interleave in the executor.

Generation numbers: a child's generation is its place in the order children
were started (1..N, one child per generation, slot 0). `generations = N`
is then the number of children; every view that orders agents by
(generation, slot) orders them by start; generation k's statistics describe
the archive of the seed and children 1..k, written once all of them are
finished. How deep a child is in the tree is read from its parent links
(`dgm lineage`), as in any campaign.

Crash safety is the generations schedule's: a child's row (its parent chosen)
is committed before it starts, each step commits before the next, and task
runs are unique per (agent, task, stage, attempt, repeat). A resume finishes
every child that is not final (its finished runs are kept, its 'running'
ones redone), writes the statistics not yet written, then starts children
until N exist.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from dgm.errors import BudgetExceeded, InfrastructureError
from dgm.evolution.selection import select_parents
from dgm.evolution.staging import SEQUENTIAL, sequential_rule

if TYPE_CHECKING:
    from dgm.evolution.loop import CampaignRunner

INTERRUPTIONS = (BudgetExceeded, InfrastructureError)
"""Besides `Stopped`: a child ended by one of these stays where it is, for a resume."""


def end_on_errors(runner, errors: list[BaseException], stopped: type[Exception]) -> None:
    """After children ended, under either schedule: the sandbox machinery's failure
    first, then a stop (`stopped`, the loop's), the budget's if it ran out."""
    broken = [e for e in errors if isinstance(e, InfrastructureError)]
    if broken:
        raise broken[0]
    if errors or runner._stop.is_set():
        if any(isinstance(e, BudgetExceeded) for e in errors):
            runner.request_stop("budget_exhausted")
        raise stopped(runner.stop_reason)


def children_to_start(*, slots: int, waiting_runs: int, preparing: int, expected_runs: int, in_flight: int,
                      started: int, total: int, max_in_flight: int) -> int:
    """How many children to start now: enough that the task runs waiting for a
    slot, plus those the children still preparing (diagnosis, self-modification,
    sanity gate) will ask for first, would fill every slot once more. So a slot
    that frees finds work waiting, and children are not started far ahead of the
    slots (a parent chosen later sees a fuller archive)."""
    count = 0
    while (started + count < total and in_flight + count < max_in_flight
           and waiting_runs + (preparing + count) * max(1, expected_runs) < slots):
        count += 1
    return count


class AsyncSchedule:
    """Runs a campaign's children asynchronously on `runner`'s machinery."""

    def __init__(self, runner: CampaignRunner, *, stopped: type[Exception], final_statuses: tuple[str, ...],
                 poll_s: float = 1.0):
        """`stopped`: the runner's exception for a requested stop; `final_statuses`: a child in one is done."""
        self.runner = runner
        self.stopped = stopped
        self.final_statuses = final_statuses
        self.slots = runner.tasks
        self.poll_s = poll_s
        self.max_in_flight = 4 * max(1, self.slots.workers)
        self._wake = threading.Event()
        self.slots.on_change(self._wake.set)

    def expected_runs(self) -> int:
        """Task runs a child asks for first: its first stage (or first batch, sequential staging)."""
        config, plan = self.runner.config, self.runner.plan
        if config.staging == SEQUENTIAL:
            return max(1, min(sequential_rule(config).batch, len(plan.selection_task_ids)))
        first = plan.stages[0] if plan.stages else None
        return max(1, len(first.task_ids) * first.repeats) if first else 1

    def run(self) -> None:
        Stopped, FINAL_STATUSES = self.stopped, self.final_statuses  # noqa: N806 - the loop's names
        runner = self.runner
        total = runner.config.generations
        done = runner._run_seed_generation()
        children = {a.generation: a for a in runner.store.list_agents(runner.campaign.id) if a.origin == "child"}
        finished = {g for g, a in children.items() if a.status in FINAL_STATUSES}
        next_generation = max(children, default=0) + 1
        # Statistics are written in generation order: the next one is the first not yet written.
        stat_next = next((g for g in range(1, total + 1) if g not in done), total + 1)
        expected = self.expected_runs()
        errors: list[BaseException] = []
        futures: dict[Future, int] = {}
        after: Future | None = None
        last_finish = time.monotonic()
        pool = ThreadPoolExecutor(max_workers=self.max_in_flight, thread_name_prefix="dgm-child")
        bookkeeping = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dgm-after")

        def submit(executor: ThreadPoolExecutor, fn, *args) -> Future:
            future = executor.submit(fn, *args)
            future.add_done_callback(lambda _: self._wake.set())
            return future

        def failed(exc: BaseException) -> None:
            if not isinstance(exc, (Stopped, *INTERRUPTIONS)):
                raise exc  # a bug or a broken harness: it ends the campaign, as in the generations schedule
            if isinstance(exc, InfrastructureError):
                runner._paused.set()  # the other children start nothing new
            errors.append(exc)

        try:
            for generation in sorted(g for g in children if g <= total and g not in finished):
                futures[submit(pool, runner._finish_child, children[generation])] = generation
            while True:
                self._wake.clear()
                for future in [f for f in futures if f.done()]:
                    generation = futures.pop(future)
                    if future.exception() is None:
                        finished.add(generation)
                        now = time.monotonic()
                        runner.state.generation_times.append(now - last_finish)
                        last_finish = now
                    else:
                        failed(future.exception())
                if after is not None and after.done():
                    error, after = after.exception(), None
                    if error is None:
                        stat_next += 1
                    else:
                        failed(error)
                if after is None and not errors and stat_next in finished and stat_next <= total:
                    after = submit(bookkeeping, runner._after_generation, stat_next)
                started_now = 0
                if not errors and not runner.stopping():
                    started_now = children_to_start(
                        slots=self.slots.workers, waiting_runs=self.slots.waiting,
                        preparing=max(0, len(futures) - self.slots.callers), expected_runs=expected,
                        in_flight=len(futures), started=next_generation - 1, total=total,
                        max_in_flight=self.max_in_flight)
                    for _ in range(started_now):
                        child = self._create_child(next_generation)
                        futures[submit(pool, runner._finish_child, child)] = next_generation
                        next_generation += 1
                runner.state.generation = len([g for g in finished if g <= total])
                runner.state.phase = (f"{len(futures)} child(ren) in flight, {next_generation - 1} of {total} started; "
                                      f"slots {self.slots.busy} busy / {self.slots.workers}")
                if not futures and after is None and not started_now:
                    if errors or runner.stopping() or stat_next > total:
                        break
                    if stat_next not in finished and next_generation > total:
                        break  # nothing left that could write the next statistics (cannot happen; never spin)
                self._wake.wait(self.poll_s)
        finally:
            # In flight: children end at their next check once a stop is asked for; they are waited for.
            pool.shutdown(wait=True)
            bookkeeping.shutdown(wait=True)
        end_on_errors(runner, errors, Stopped)
        if stat_next <= total:
            raise Stopped(runner.stop_reason)  # e.g. paused: not finished, nothing lost

    def _create_child(self, generation: int):
        """Child number `generation`, its parent selected from the archive as it stands, committed before it starts."""
        runner = self.runner
        config = runner.config
        (parent_id,) = select_parents(config.selection, runner._stats(), 1,
                                      seed=config.seed * 1_000_003 + generation)
        parent = runner.store.get_agent(parent_id)
        child = runner.store.add_agent(
            runner.campaign.id, parent.commit_sha, parent_id=parent.id, generation=generation, status="pending",
            origin="child", meta={"slot": 0, "own_commit": False, "selection": config.selection, "schedule": "async"})
        runner._event("agent_created", {"agent": child.id, "generation": generation, "parent": parent.id}, child.id)
        return child
