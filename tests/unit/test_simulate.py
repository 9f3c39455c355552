"""`dgm simulate` and sequential staging: the rule, the worlds, and the
simulator's numbers against a direct calculation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import integrate, stats

from dgm.errors import UsageError
from dgm.evolution.staging import (CONTINUE, DONE, NO_PATCH, WORSE, SequentialRule, close_calls,
                                   comparable_scores, next_batch,
                                   paired_margin_probability, paired_win_probability, sequential_reference,
                                   sequential_verdict, settle_batches)
from dgm.simulate.policies import Policy, dgm_counts, standard_policies
from dgm.simulate.run import simulate, simulate_one
from dgm.simulate.world import (RecordedAgent, RecordedWorld, SyntheticParams, SyntheticWorld, WorldAgent)
from tests.support.cli import assert_one_line_error, run_dgm


# --------------------------------------------------------------------------- the rule
def test_paired_win_probability_is_the_beta_posterior_tail():
    for wins, losses in [(0, 0), (0, 3), (4, 1), (7, 9), (20, 2)]:
        expected = stats.beta.sf(0.5, 1 + wins, 1 + losses)
        assert paired_win_probability(wins, losses) == pytest.approx(expected, abs=1e-12)


def test_a_child_clearly_worse_on_shared_tasks_stops_and_an_equal_one_goes_on():
    rule = SequentialRule(batch=5, max_tasks=40, confidence=0.8)
    reference = [True, True, False, True, True, False, True, True, False, True]
    # Loses three tasks the reference solved, wins none: P(better) = 1/16 < 0.2.
    assert sequential_verdict(rule, [False, False, False, True, True], reference, 100) == WORSE
    # Same outcomes as the reference: no evidence either way.
    assert sequential_verdict(rule, reference[:5], reference, 100) == CONTINUE
    # Tasks the reference never ran say nothing: only the shared prefix counts.
    assert sequential_verdict(rule, [True] * 5 + [False] * 5, reference[:5], 100) == CONTINUE
    # No reference (the seed): run to the cap.
    assert sequential_verdict(rule, [False] * 35, None, 100) == CONTINUE
    assert sequential_verdict(rule, [False] * 40, None, 100) == DONE
    # The cap never exceeds the tasks there are.
    assert sequential_verdict(rule, [True] * 12, reference, 12) == DONE


def test_batches_and_reference():
    rule = SequentialRule(batch=5, max_tasks=12)
    assert list(next_batch(rule, 0, 100)) == [0, 1, 2, 3, 4]
    assert list(next_batch(rule, 10, 100)) == [10, 11]
    assert list(next_batch(SequentialRule(batch=5, max_tasks=None), 8, 10)) == [8, 9]
    # Only agents evaluated to the cap can be the reference; ties go to the first given.
    cands = [("a", 0.5, 12), ("b", 0.9, 7), ("c", 0.6, 12), ("d", 0.6, 20)]
    assert sequential_reference(cands, 100, rule) == "c"
    assert sequential_reference([("b", 0.9, 7)], 100, rule) is None


def test_close_calls_extend_the_leader_and_its_likeliest_challenger_until_settled():
    rule = SequentialRule(batch=5, max_tasks=10, confidence=0.8, settle_confidence=0.9)
    leader = [True] * 8 + [False] * 2
    near = [True] * 7 + [False] * 3          # one task behind: a close call
    nearer = [True] * 7 + [False, True, False]  # one won, one lost: the likelier challenger
    far = [False] * 10                       # eight behind: settled
    assert close_calls(rule, [("L", leader), ("far", far)], 200) == []
    # A twin that never differed from the leader is no close call: nothing would be decided.
    assert close_calls(rule, [("L", leader), ("twin", list(leader))], 200) == []
    assert close_calls(rule, [("L", leader), ("near", near), ("nearer", nearer), ("far", far)], 200) == \
        ["L", "nearer"]
    # Both have run every task: nothing left to decide with.
    assert close_calls(rule, [("L", leader), ("near", near)], 10) == []
    assert close_calls(rule, [("L", leader)], 200) == []


def test_paired_margin_probability_is_the_dirichlet_posterior_of_the_rate_difference():
    """P(π_w − π_l > margin) for (π_w, π_l, π_same) ~ Dirichlet(1 + w, 1 + l, 1 + same), against
    Monte Carlo draws of that posterior; margin 0 is the Beta tail."""
    rng = np.random.default_rng(4)
    for wins, losses, shared, margin in [(5, 3, 40, 0.05), (2, 6, 21, 0.03), (0, 0, 21, 0.03), (9, 2, 60, 0.1)]:
        draws = rng.dirichlet([1 + wins, 1 + losses, 1 + shared - wins - losses], 200_000)
        expected = float(np.mean(draws[:, 0] - draws[:, 1] > margin))
        assert paired_margin_probability(wins, losses, shared, margin) == pytest.approx(expected, abs=0.006)
        assert paired_margin_probability(wins, losses, shared, 0.0) == paired_win_probability(wins, losses)
    # More shared tasks without a difference make a difference of the margin less and less likely.
    assert paired_margin_probability(0, 0, 200, 0.03) < paired_margin_probability(0, 0, 20, 0.03)


def test_a_child_whose_first_batch_produced_no_patch_stops():
    rule = SequentialRule(batch=3, max_tasks=21)
    reference = [False] * 3 + [True] * 18  # level with the child on its first batch: only the patch tells
    assert sequential_verdict(rule, [False] * 3, reference, 100, produced_patch=False) == NO_PATCH
    assert sequential_verdict(rule, [False] * 3, reference, 100, produced_patch=True) == CONTINUE
    # Before its first batch nothing is known yet.
    assert sequential_verdict(rule, [], reference, 100, produced_patch=False) == CONTINUE


def test_settling_runs_the_one_behind_first():
    rule = SequentialRule(batch=5, max_tasks=20)
    # The paired test reads only shared tasks: the leader, 40 ahead, waits while the challenger catches up.
    assert settle_batches(rule, {"L": 60, "c": 20}, 200) == {"c": range(20, 25)}
    assert settle_batches(rule, {"L": 22, "c": 20}, 200) == {"L": range(22, 25), "c": range(20, 25)}
    assert settle_batches(rule, {"L": 20, "c": 20}, 200) == {"L": range(20, 25), "c": range(20, 25)}
    assert settle_batches(rule, {"L": 200, "c": 198}, 200) == {"c": range(198, 200)}


def test_a_settle_margin_lets_a_difference_too_small_to_matter_go():
    leader = [True] * 30 + [False] * 10
    challenger = [True] * 29 + [False] * 10 + [True]   # one task each: no evidence either way
    plain = SequentialRule(batch=5, max_tasks=40, settle_confidence=0.8)
    assert close_calls(plain, [("L", leader), ("c", challenger)], 200) == ["L", "c"]
    # Better by more than 0.1 of the tasks? On 40 shared tasks with 2 discordant, hardly.
    margin = SequentialRule(batch=5, max_tasks=40, settle_confidence=0.8, settle_margin=0.1)
    assert close_calls(margin, [("L", leader), ("c", challenger)], 200) == []


def test_comparable_scores_correct_a_short_record_by_what_its_tasks_are_worth_to_the_longest():
    # The first two tasks of the order are easy: the agents that ran all six solved both.
    records = {"seed": [True, True, False, False, True, False],     # 3/6
               "capped": [True, True, True, False, False, False],  # 3/6
               "stopped": [True, False],                           # 1/2 on the easy two, where the others got 2/2
               "none": []}
    scores = comparable_scores(records)
    assert set(scores) == {"seed", "capped", "stopped"}  # an agent with no outcome is left out
    assert scores["seed"] == scores["capped"] == pytest.approx(0.5)
    # Bare, the stopped child's 1/2 would tie with the agents it lost to; on their scale it is 0.5 − 0.5.
    assert scores["stopped"] == pytest.approx(0.0)
    # Hard first tasks: a short record is raised, and the scale stays within [0, 1].
    hard = comparable_scores({"a": [False, False, True, True], "b": [False, False, True, True], "c": [True]})
    assert hard["c"] == pytest.approx(1.0) and hard["a"] == pytest.approx(0.5)
    assert comparable_scores({}) == {}


def test_under_sequential_staging_the_campaign_s_selector_reads_comparable_scores(store):
    """`CampaignRunner._stats`, what the campaign's selector reads: a child stopped after the two easy
    first tasks of the order, solving one, scores 0 on the scale of the agents that ran on (it lost
    to both of them there), not its bare 0.5; under stages the bare rate stands."""
    from types import SimpleNamespace

    from dgm.agent_code import SEED_AGENT_DIR, commit_agent_dir
    from dgm.evolution.loop import CampaignRunner
    from dgm.evolution.staging import Stage, StagePlan

    campaign = store.create_campaign("seq", "evolution", {})
    sha = commit_agent_dir(store, SEED_AGENT_DIR, "seed agent")
    seed = store.add_agent(campaign.id, sha, status="admitted", origin="seed")
    capped = store.add_agent(campaign.id, sha, parent_id=seed.id, generation=1, status="admitted", origin="child")
    stopped = store.add_agent(campaign.id, sha, parent_id=seed.id, generation=1, status="admitted",
                              origin="child", meta={"slot": 1})
    order = [f"t-{k}" for k in range(6)]
    records = {seed.id: [1, 1, 0, 0, 1, 0], capped.id: [1, 1, 1, 0, 0, 0], stopped.id: [1, 0]}
    for agent_id, outcomes in records.items():
        for task_id, ok in zip(order, outcomes):
            run = store.start_task_run(campaign.id, agent_id, "task", "dgm-mini", task_id, "small", "scripted:gold")
            store.finish_task_run(run.id, status="resolved" if ok else "unresolved", patch="x")
        store.update_agent(agent_id, score=sum(outcomes) / len(outcomes))
    plan = StagePlan(stages=(Stage("small", tuple(order), 0.0),), heldout=())
    for staging, expected in (("sequential", 0.0), ("stages", 0.5)):
        runner = SimpleNamespace(store=store, campaign=campaign, plan=plan, config=SimpleNamespace(staging=staging))
        scores = {s.agent_id: s.score for s in CampaignRunner._stats(runner)}
        assert scores[seed.id] == scores[capped.id] == pytest.approx(0.5)
        assert scores[stopped.id] == pytest.approx(expected), staging


def test_under_sequential_staging_the_simulated_selector_reads_comparable_scores():
    """The simulator's selector table, as the campaign's (`CampaignRunner._stats`), holds the agents'
    comparable scores under sequential staging and bare rates under stages."""
    from dgm.simulate.run import _Campaign

    world = SyntheticWorld(SyntheticParams(), 5)
    for staging in ("sequential", "dgm"):
        policy = standard_policies(generations=1, children=1)[staging]
        campaign = _Campaign(world, policy, 5)
        seed = campaign._add(world.seed(), -1, 0)
        child = campaign._add(world.child(seed.world, 0), seed.index, 1)
        campaign._run(seed, 21)
        campaign._run(child, 3)
        seed.admitted = child.admitted = seed.capped = True
        table = campaign._table()
        scores = dict(zip(table.agent_ids, table.score.tolist()))
        bare = {"0": seed.seen[:21].mean(), "1": child.seen[:3].mean()}
        expected = comparable_scores({"0": seed.seen[:21].tolist(), "1": child.seen[:3].tolist()}) \
            if staging == "sequential" else bare
        assert scores == pytest.approx(expected)
        if staging == "sequential":
            assert scores["1"] == pytest.approx(bare["1"] + bare["0"] - seed.seen[:3].mean())


@pytest.mark.parametrize("kwargs, needle", [
    (dict(batch=0), "batch must be at least 1"),
    (dict(max_tasks=0), "max_tasks must be at least 1"),
    (dict(confidence=1.0), "confidence must be in [0.5, 1)"),
    (dict(settle_confidence=0.2), "settle_confidence must be in [0.5, 1)"),
    (dict(settle_margin=-0.1), "settle_margin must be in [0, 1)"),
])
def test_a_bad_rule_is_a_usage_error(kwargs, needle):
    with pytest.raises(UsageError, match=needle.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        SequentialRule(**kwargs)


def test_the_campaign_config_takes_sequential_staging(tmp_path):
    from dgm.config import load_config
    from dgm.evolution.staging import sequential_rule

    cfg = tmp_path / "c.toml"
    cfg.write_text('[campaign]\nstaging = "sequential"\nsequential_batch = 3\nsequential_max_tasks = 9\n'
                   'sequential_confidence = 0.85\n')
    rule = sequential_rule(load_config(cfg, {}))
    assert rule == SequentialRule(batch=3, max_tasks=9, confidence=0.85, settle_confidence=0.9, settle_margin=0.03)
    cfg.write_text('[campaign]\nstaging = "adaptive"\n')
    with pytest.raises(UsageError, match="staging"):
        load_config(cfg, {})
    cfg.write_text('[campaign]\nsequential_confidence = 1.5\n')
    with pytest.raises(UsageError, match="sequential_confidence"):
        load_config(cfg, {})


# --------------------------------------------------------------------------- the simulator vs the truth
class TwoWayWorld:
    """A tiny world whose truth is known in closed form: every agent solves every
    task with the same probability; a child is its parent + STEP with
    probability UP, − STEP otherwise (clipped to [0, 1]): most children are worse."""

    STEP = 0.4
    UP = 0.3

    def __init__(self, seed: int, n_tasks: int = 3, seed_p: float = 0.5):
        self.name, self.n_tasks, self.seed_value, self.seed_p = "two-way", n_tasks, seed, seed_p

    def _agent(self, path, p):
        rng = np.random.default_rng([5, self.seed_value, len(path), *path])
        return WorldAgent(path=path, p=np.full(self.n_tasks, p), outcomes=rng.random(self.n_tasks) < p)

    def seed(self):
        return self._agent((), self.seed_p)

    def child(self, parent, ordinal):
        path = (*parent.path, ordinal)
        up = np.random.default_rng([6, self.seed_value, len(path), *path]).random() < self.UP
        return self._agent(path, min(1.0, max(0.0, parent.p[0] + (self.STEP if up else -self.STEP))))


def _score_dist(p: float, n_tasks: int, first: int, staged: bool):
    """[(probability, resolved, evaluated)] of one agent under a stage of `first`
    tasks then the rest if all of the first resolved (threshold 1.0), or all tasks."""
    if not staged:
        return [(stats.binom.pmf(s, n_tasks, p), s, n_tasks) for s in range(n_tasks + 1)]
    out = [(stats.binom.pmf(s, first, p), s, first) for s in range(first)]  # stopped early
    p_all = p ** first
    rest = n_tasks - first
    out += [(p_all * stats.binom.pmf(s, rest, p), first + s, n_tasks) for s in range(rest + 1)]
    return out


def _exact(selection: str, n_tasks: int, first: int):
    """E[task runs] and E[true quality of the pick] for 2 generations of 1 child,
    by enumerating every child type, parent choice and outcome."""
    step, p0, up = TwoWayWorld.STEP, 0.5, TwoWayWorld.UP
    clip = lambda x: min(1.0, max(0.0, x))  # noqa: E731
    exp_runs = exp_quality = 0.0
    for up1 in (True, False):
        w1 = up if up1 else 1 - up
        p1 = clip(p0 + (step if up1 else -step))
        for s0 in _score_dist(p0, n_tasks, first, staged=False):
            for s1 in _score_dist(p1, n_tasks, first, staged=True):
                score0, score1 = s0[1] / s0[2], s1[1] / s1[2]
                if selection == "random":
                    parents = [(0.5, 0), (0.5, 1)]
                else:  # best: higher score; a tie goes to fewer children (agent 1), then the smaller id
                    parents = [(1.0, 0 if score0 > score1 else 1)]
                for w_parent, parent in parents:
                    base = p0 if parent == 0 else p1
                    for up2 in (True, False):
                        w2 = up if up2 else 1 - up
                        p2 = clip(base + (step if up2 else -step))
                        for s2 in _score_dist(p2, n_tasks, first, staged=True):
                            w = w1 * s0[0] * s1[0] * w_parent * w2 * s2[0]
                            scores = [score0, score1, s2[1] / s2[2]]
                            pick = max(range(3), key=lambda i: (scores[i], -i))  # ties: the earlier
                            exp_runs += w * (s0[2] + s1[2] + s2[2])
                            exp_quality += w * [p0, p1, p2][pick]
    return exp_runs, exp_quality


@pytest.mark.parametrize("selection", ["random", "best"])
def test_the_simulator_matches_exact_enumeration_on_a_tiny_world(selection):
    n_tasks, first, seeds = 3, 1, 1000
    policy = Policy("t", "stages", selection=selection, generations=2, children_per_generation=1,
                    stages=((first, 1.0), (None, 0.0)))
    runs, quality = [], []
    for seed in range(seeds):
        r = simulate_one(TwoWayWorld(seed, n_tasks), policy, seed)
        runs.append(r.task_runs)
        quality.append(r.pick_quality)
    exp_runs, exp_quality = _exact(selection, n_tasks, first)
    runs, quality = np.array(runs, float), np.array(quality)
    # Four standard errors of a mean over `seeds` independent campaigns: a correct
    # simulator fails this about once in 16,000 seed sets.
    assert abs(runs.mean() - exp_runs) < 4 * runs.std(ddof=1) / math.sqrt(seeds)
    assert abs(quality.mean() - exp_quality) < 4 * quality.std(ddof=1) / math.sqrt(seeds)
    # And the two selectors differ where they should: `best` breeds from the better agent.
    if selection == "best":
        assert exp_quality > _exact("random", n_tasks, first)[1]


def test_synthetic_children_follow_the_documented_law():
    """Without task spread, mutation or breakage every task of a child has
    p = sigmoid(logit(seed_rate) + shift), shift = +Exp(gain) w.p. p_better,
    −Exp(loss) otherwise: its expected quality is a one-dimensional integral."""
    prm = SyntheticParams(n_tasks=4, seed_rate=0.4, task_spread=0.0, mutation=0.0, p_broken=0.0,
                          p_better=0.2, gain=0.5, loss=0.8)
    world = SyntheticWorld(prm, seed=3)
    seed = world.seed()
    assert seed.quality == pytest.approx(0.4)
    q = np.array([world.child(seed, i).quality for i in range(4000)])
    base = math.log(0.4 / 0.6)
    from scipy.special import expit as sig
    up = integrate.quad(lambda x: sig(base + x) * math.exp(-x / 0.5) / 0.5, 0, math.inf)[0]
    down = integrate.quad(lambda x: sig(base - x) * math.exp(-x / 0.8) / 0.8, 0, math.inf)[0]
    expected = 0.2 * up + 0.8 * down
    assert abs(q.mean() - expected) < 4 * q.std(ddof=1) / math.sqrt(len(q))
    assert np.mean(q > 0.4) == pytest.approx(0.2, abs=4 * math.sqrt(0.16 / 4000))
    # The same (parent, ordinal) is the same child: common random numbers across policies.
    again = SyntheticWorld(prm, seed=3)
    assert np.array_equal(again.child(again.seed(), 7).outcomes, world.child(seed, 7).outcomes)


def test_recorded_world_children_come_from_the_recorded_lineage():
    agents = [RecordedAgent("s", None, {"t1": 1.0, "t2": 0.0, "t3": 0.5}, True),
              RecordedAgent("a", "s", {"t1": 1.0, "t2": 1.0}, True),
              RecordedAgent("b", "s", {"t1": 0.0}, False),
              RecordedAgent("c", "a", {"t1": 1.0, "t2": 1.0, "t3": 1.0}, True)]
    world = RecordedWorld("rec", agents, ["t1", "t2", "t3"], seed=1)
    seed = world.seed()
    assert seed.label == "s" and seed.p.tolist() == [1.0, 0.0, 0.5]
    kids = {world.child(seed, i).label for i in range(40)}
    assert kids == {"a", "b"}
    a = next(world.child(seed, i) for i in range(40) if world.child(seed, i).label == "a")
    assert a.p[2] == pytest.approx(3 / 4)  # unobserved: (2 solved + 1) / (2 run + 2)
    assert world.child(seed, [world.child(seed, i).label for i in range(40)].index("b")).broken
    # "c" had no children: its relatives (its parent's children) stand in.
    c = world.child(a, 0)
    assert c.label == "c" and world.child(c, 0).label == "c"
    with pytest.raises(UsageError, match="one seed agent"):
        RecordedWorld("rec", agents[1:], ["t1"], 0)


def test_dgm_schedule_counts_and_policies():
    assert dgm_counts(200) == (10, 50)
    assert dgm_counts(20) == (1, 5)
    pol = standard_policies(generations=10, children=2)
    assert pol["hgm"].budget() == round(20 ** (1 / 0.6))
    with pytest.raises(UsageError, match="unknown staging"):
        Policy("x", "adaptive")


def test_dgm_spends_what_its_schedule_says_on_a_world_of_certain_outcomes():
    """Every agent solves everything: DGM runs 10, then 50, then the full 200
    for each child (all reach the threshold), the seed 200; sequential stops no
    one (nobody is worse) and runs each child to its cap of 21; ties that never
    differed on a task are not settled."""
    prm = SyntheticParams(seed_rate=0.999999, task_spread=0.0, p_better=0.0, gain=0.0, loss=0.0,
                          mutation=0.0, p_broken=0.0)
    pol = standard_policies(generations=3, children=2)
    res = {s.policy: s for s in simulate(lambda seed: SyntheticWorld(prm, seed), "certain",
                                         [pol["dgm"], pol["dgm60"], pol["sequential"]], seeds=2)}
    assert res["dgm"].task_runs.tolist() == [200 + 6 * 200] * 2
    assert res["dgm60"].task_runs.tolist() == [60 + 6 * 60] * 2
    assert res["sequential"].task_runs.tolist() == [7 * 21] * 2


def test_sequential_spends_one_batch_on_a_broken_child():
    """A broken child produces no patch on any task: sequential staging stops it after its first
    batch, as the campaign does; DGM's schedule still runs its 10 tasks."""
    prm = SyntheticParams(p_broken=1.0)
    rule = SequentialRule(batch=4, max_tasks=20)
    pol = standard_policies(generations=3, children=2, rule=rule)
    res = {s.policy: s for s in simulate(lambda seed: SyntheticWorld(prm, seed), "broken",
                                         [pol["dgm"], pol["sequential"]], seeds=3)}
    assert res["sequential"].task_runs.tolist() == [20 + 6 * 4] * 3
    assert res["dgm"].task_runs.tolist() == [200 + 6 * 10] * 3


# --------------------------------------------------------------------------- the command
def test_simulate_command_prints_the_table_and_writes_json(tmp_path):
    out = tmp_path / "sim.json"
    proc = run_dgm(["simulate", "--world", "gentle", "--seeds", "3", "--generations", "3", "--json", str(out)])
    assert proc.returncode == 0, proc.stderr
    for word in ("gentle", "dgm60", "hgm", "sequential", "true quality of pick"):
        assert word in proc.stdout
    data = json.loads(out.read_text())
    assert {r["policy"] for r in data["results"]} == {"dgm", "dgm60", "hgm", "sequential"}
    assert all(r["seeds"] == 3 and r["task_runs_mean"] > 0 for r in data["results"])


def test_simulate_bad_input_is_one_line(tmp_path):
    assert_one_line_error(run_dgm(["simulate", "--world", "moon", "--seeds", "1"]), "--world moon")
    assert_one_line_error(run_dgm(["simulate", "--policy", "magic", "--seeds", "1"]), "--policy magic")
    assert_one_line_error(run_dgm(["simulate", "--policy", "hgm", "--seeds", "1"]), "--baseline dgm")


def test_simulate_from_a_recorded_campaign(tmp_path):
    from dgm.agent_code import SEED_AGENT_DIR, commit_agent_dir
    from dgm.archive import ArchiveStore

    root = tmp_path / "archive"
    store = ArchiveStore.open(None, root)
    campaign = store.create_campaign("rec", "evolution", {"generations": 2})
    sha = commit_agent_dir(store, SEED_AGENT_DIR, "seed agent")
    seed = store.add_agent(campaign.id, sha, status="admitted", origin="seed")
    child = store.add_agent(campaign.id, sha, parent_id=seed.id, generation=1, status="admitted", origin="child")
    outcomes = {seed.id: ["resolved", "unresolved", "resolved", "unresolved"],
                child.id: ["resolved", "resolved", "resolved", "unresolved"]}
    for agent_id, statuses in outcomes.items():
        for k, status in enumerate(statuses):
            run = store.start_task_run(campaign.id, agent_id, "task", "dgm-mini", f"t-{k}", "small", "scripted:gold")
            store.finish_task_run(run.id, status=status, patch="x")
    store.close()
    proc = run_dgm(["simulate", "--from", "rec", "--seeds", "4", "--generations", "2",
                    "--json", str(tmp_path / "r.json")], archive_dir=root)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((tmp_path / "r.json").read_text())["results"]
    assert {r["world"] for r in rows} == {"recorded:rec"}
    # The truth of this world: the seed solves 2 of 4, its child 3 of 4; every pick is one of them.
    assert all(0.5 - 1e-9 <= r["pick_quality_mean"] <= 0.75 + 1e-9 for r in rows)
    assert_one_line_error(run_dgm(["simulate", "--from", "nope", "--seeds", "1"], archive_dir=root), "nope")


def test_a_campaign_config_becomes_its_policy(tmp_path):
    from dgm.config import load_config
    from dgm.simulate.policies import from_config

    cfg = tmp_path / "c.toml"
    cfg.write_text('[campaign]\ngenerations = 7\nselection = "hgm_cmp"\nadmission = "keep_better"\n'
                   '[[campaign.stages]]\nname = "a"\ntasks = 3\nadvance_threshold = 0.5\n'
                   '[[campaign.stages]]\nname = "b"\ntasks = "rest"\n')
    policy = from_config(load_config(cfg, {}))
    assert (policy.staging, policy.stages, policy.generations, policy.selection, policy.admission) == \
        ("stages", ((3, 0.5), (None, 0.0)), 7, "hgm_cmp", "keep_better")
    cfg.write_text('[campaign]\nstaging = "sequential"\nsequential_batch = 2\n')
    policy = from_config(load_config(cfg, {}))
    assert policy.staging == "sequential" and policy.sequential.batch == 2
