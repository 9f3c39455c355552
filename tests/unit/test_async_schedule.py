"""The asynchronous schedule's decisions, on a runner whose children are
timed stand-ins (the real steps are exercised in tests/system/test_async_schedule.py):
it starts a child as soon as a slot would go idle, never waits for a slow
sibling, writes statistics in generation order, and counts slots right."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from dgm.evolution.loop import FINAL_STATUSES, RunnerState, Stopped
from dgm.evolution.schedule import AsyncSchedule, children_to_start
from dgm.evolution.selection import AgentStats
from dgm.evolution.slots import SlotMeter
from dgm.executor import ThreadExecutor


def test_children_are_started_to_fill_the_slots_once_more_and_no_further():
    base = dict(slots=8, in_flight=0, started=0, total=100, max_in_flight=32)
    # Nothing waiting, nobody preparing: children whose first runs fill the 8 slots.
    assert children_to_start(waiting_runs=0, preparing=0, expected_runs=2, **base) == 4
    assert children_to_start(waiting_runs=0, preparing=0, expected_runs=3, **base) == 3
    # Children preparing already count for the runs they will ask for.
    assert children_to_start(waiting_runs=0, preparing=3, expected_runs=2, **base) == 1
    # Enough runs waiting for a slot: none.
    assert children_to_start(waiting_runs=8, preparing=0, expected_runs=2, **base) == 0
    assert children_to_start(waiting_runs=7, preparing=0, expected_runs=2, **base) == 1
    # Never past the total, nor past the cap on children in flight.
    assert children_to_start(waiting_runs=0, preparing=0, expected_runs=1, **{**base, "started": 98}) == 2
    assert children_to_start(waiting_runs=0, preparing=0, expected_runs=1, **{**base, "in_flight": 30}) == 2


class _Store:
    def __init__(self):
        self.agents = {"seed": SimpleNamespace(id="seed", generation=0, origin="seed", status="admitted",
                                               commit_sha="s", parent_id=None, meta={})}
        self.lock = threading.Lock()

    def list_agents(self, campaign_id, statuses=None):
        with self.lock:
            return sorted(self.agents.values(), key=lambda a: a.generation)

    def get_agent(self, agent_id):
        return self.agents[agent_id]

    def add_agent(self, campaign_id, commit_sha, *, parent_id, generation, status, origin, meta):
        agent = SimpleNamespace(id=f"c{generation}", generation=generation, origin=origin, status=status,
                                commit_sha=commit_sha, parent_id=parent_id, meta=meta)
        with self.lock:
            self.agents[agent.id] = agent
        return agent


class _Runner:
    """What the schedule uses of a CampaignRunner; a child prepares for `prepare_s`, then asks for one task run."""

    def __init__(self, children: int, slots: int, run_s: dict[int, float], prepare_s: float = 0.02):
        self.tasks = SlotMeter(ThreadExecutor(slots))
        self.config = SimpleNamespace(generations=children, staging="stages", selection="best", seed=0)
        self.plan = SimpleNamespace(stages=[SimpleNamespace(task_ids=["t1"], repeats=1)], selection_task_ids=["t1"])
        self.store = _Store()
        self.campaign = SimpleNamespace(id="c")
        self.state = RunnerState()
        self._stop, self._paused = threading.Event(), threading.Event()
        self.stop_reason = None
        self.run_s, self.prepare_s = run_s, prepare_s
        self.timeline: dict[int, tuple[float, float]] = {}
        self.stats_written: list[int] = []
        self.events: list[tuple] = []

    def _run_seed_generation(self):
        return {0}

    def stopping(self):
        return self._stop.is_set()

    def request_stop(self, reason):
        self.stop_reason = reason
        self._stop.set()

    def _event(self, kind, payload, agent_id=None):
        self.events.append((kind, payload))

    def _stats(self):
        return [AgentStats(agent_id=a.id, parent_id=a.parent_id, score=0.5, n_children=0, solved=frozenset(),
                           failed=frozenset(), eligible=a.status == "admitted") for a in self.store.list_agents("c")]

    def _finish_child(self, agent):
        started = time.monotonic()
        time.sleep(self.prepare_s)
        if self._stop.is_set():
            raise Stopped("stop")
        seconds = self.run_s.get(agent.generation, 0.05)
        list(self.tasks.map_unordered(lambda _: time.sleep(seconds), ["t1"]))
        agent.status = "admitted"
        self.timeline[agent.generation] = (started, time.monotonic())

    def _after_generation(self, generation):
        self.stats_written.append(generation)


def _schedule(runner):
    return AsyncSchedule(runner, stopped=Stopped, final_statuses=FINAL_STATUSES, poll_s=0.5)


def test_a_slow_child_holds_one_slot_and_the_others_keep_starting_children():
    runner = _Runner(children=7, slots=2, run_s={1: 2.0})
    _schedule(runner).run()
    assert sorted(runner.timeline) == list(range(1, 8))
    slow_start, slow_end = runner.timeline[1]
    # Children 2..7 started and finished on the other slot while child 1 ran: no generation
    # barrier holds a child back until its slow sibling is done.
    assert all(runner.timeline[g][1] < slow_end for g in range(2, 8)), runner.timeline
    # A new child starts as soon as one finishes (here: its only run ends), not a poll later.
    for g in range(3, 8):
        assert runner.timeline[g][0] - runner.timeline[g - 1][1] < 0.3, (g, runner.timeline)
    # Statistics in generation order, each once; parents chosen from the archive as it stood.
    assert runner.stats_written == list(range(1, 8))
    parents = {p["agent"]: p["parent"] for k, p in runner.events if k == "agent_created"}
    assert all(runner.store.get_agent(p).generation < runner.store.get_agent(c).generation
               for c, p in parents.items())
    assert runner.tasks.busy == runner.tasks.requested == runner.tasks.callers == 0
    runner.tasks.shutdown()


def test_slots_stay_busy_with_more_slots_than_a_generation_would_fill():
    # 4 slots, children of one task run each: a schedule of 2 children per generation
    # would keep half of them idle; here children are started to fill them all.
    runner = _Runner(children=16, slots=4, run_s={g: 0.3 for g in range(1, 17)})
    started = time.monotonic()
    _schedule(runner).run()
    wall = time.monotonic() - started
    utilisation = runner.tasks.busy_seconds / (4 * wall)
    assert utilisation > 0.6, utilisation
    in_flight_max = max(sum(1 for s, e in runner.timeline.values() if s <= t < e)
                        for t, _ in runner.timeline.values())
    assert in_flight_max >= 4
    runner.tasks.shutdown()


def test_a_stop_starts_no_more_children_and_finishes_nothing_twice():
    runner = _Runner(children=50, slots=2, run_s={g: 0.1 for g in range(1, 51)})
    threading.Timer(0.5, runner.request_stop, args=("SIGINT",)).start()
    try:
        _schedule(runner).run()
    except Stopped:
        pass
    else:
        raise AssertionError("a stopped schedule must raise Stopped")
    assert 0 < len(runner.timeline) < 50
    created = [p["generation"] for k, p in runner.events if k == "agent_created"]
    assert created == list(range(1, len(created) + 1))
    runner.tasks.shutdown()

    # Resumed: the children left unfinished are finished, then new ones up to the total.
    unfinished = [a.generation for a in runner.store.list_agents("c") if a.status not in FINAL_STATUSES]
    runner._stop.clear()
    runner.tasks = SlotMeter(ThreadExecutor(2))
    runner._run_seed_generation = lambda: {0, *runner.stats_written}
    _schedule(runner).run()
    assert all(g in runner.timeline for g in unfinished)
    assert sorted(a.generation for a in runner.store.list_agents("c") if a.origin == "child") == list(range(1, 51))
    assert sorted(runner.stats_written) == list(range(1, 51)) and len(set(runner.stats_written)) == 50
    runner.tasks.shutdown()
