"""Parent selectors: distributions match their formulas, determinism, eligibility, errors."""

from __future__ import annotations

import math
import random
import time
from collections import Counter

import numpy as np
import pytest

from dgm.evolution.selection import (
    NOVELTY_SHARE_MIX,
    SELECTORS,
    AgentStats,
    SelectionError,
    StatsTable,
    explain,
    select_parents,
)

METHODS = ["score_child_prop", "score_prop", "best", "random", "hgm_cmp", "novelty_share"]


def agent(agent_id, score=0.5, n_children=0, solved=(), failed=(), parent=None, eligible=True):
    return AgentStats(agent_id, parent, score, n_children, frozenset(solved), frozenset(failed), eligible)


def sigmoid(score):
    return 1.0 / (1.0 + math.exp(-10.0 * (score - 0.5)))


def draw_counts(method, stats, seeds=400, k=50):
    counts = Counter()
    for seed in range(seeds):
        counts.update(select_parents(method, stats, k, seed))
    return counts, seeds * k


def chi2_critical(df, z=3.09):
    """Wilson-Hilferty approximation of the chi-square quantile (z=3.09: p = 0.999)."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def chi2_stat(counts, probs, n):
    return sum((counts.get(a, 0) - n * p) ** 2 / (n * p) for a, p in probs.items() if p > 0)


def assert_matches(counts, probs, n):
    """Empirical counts are consistent with `probs` (chi-square test at p = 0.001)."""
    assert set(counts) <= {a for a, p in probs.items() if p > 0}, "drew an agent with probability 0"
    df = sum(p > 0 for p in probs.values()) - 1
    stat = chi2_stat(counts, probs, n)
    assert stat < chi2_critical(df), f"chi2 = {stat:.1f} with {df} df; counts {dict(counts)} vs {probs}"


def normalise(weights):
    total = sum(weights.values())
    return {a: w / total for a, w in weights.items()}


@pytest.fixture
def archive():
    # Varied scores and child counts; `x` is ineligible and would otherwise dominate.
    return [
        agent("a", 0.20, 0),
        agent("b", 0.45, 1),
        agent("c", 0.50, 0),
        agent("d", 0.60, 3),
        agent("e", 0.70, 1),
        agent("f", 0.80, 0),
        agent("x", 1.00, 0, eligible=False),
    ]


# -- weighted methods match their formulas --------------------------------------------------


def test_score_child_prop_frequencies_match_dgm_formula(archive):
    probs = normalise({s.agent_id: sigmoid(s.score) / (1 + s.n_children) if s.eligible else 0.0 for s in archive})
    counts, n = draw_counts("score_child_prop", archive)
    assert_matches(counts, probs, n)
    # The same data would fail against the formula without the child penalty: the test has teeth.
    no_penalty = normalise({s.agent_id: sigmoid(s.score) if s.eligible else 0.0 for s in archive})
    assert chi2_stat(counts, no_penalty, n) > 10 * chi2_critical(5)


def test_score_prop_frequencies_match_formula(archive):
    probs = normalise({s.agent_id: sigmoid(s.score) if s.eligible else 0.0 for s in archive})
    counts, n = draw_counts("score_prop", archive)
    assert_matches(counts, probs, n)
    with_penalty = normalise({s.agent_id: sigmoid(s.score) / (1 + s.n_children) if s.eligible else 0 for s in archive})
    assert chi2_stat(counts, with_penalty, n) > 10 * chi2_critical(5)


def test_random_is_uniform_over_eligible(archive):
    probs = normalise({s.agent_id: 1.0 if s.eligible else 0.0 for s in archive})
    counts, n = draw_counts("random", archive)
    assert_matches(counts, probs, n)


def test_draws_within_one_call_follow_the_distribution(archive):
    probs = normalise({s.agent_id: sigmoid(s.score) / (1 + s.n_children) if s.eligible else 0.0 for s in archive})
    picks = select_parents("score_child_prop", archive, 20_000, seed=7)
    assert_matches(Counter(picks), probs, len(picks))


def test_explain_gives_exact_probabilities(archive):
    probs = normalise({s.agent_id: sigmoid(s.score) / (1 + s.n_children) if s.eligible else 0.0 for s in archive})
    ex = explain("score_child_prop", archive)
    assert ex.exact
    for a in ex.agents:
        assert a.probability == pytest.approx(probs[a.agent_id], rel=1e-12, abs=1e-15)
        assert a.terms["child_penalty"] == pytest.approx(1 / (1 + a.terms["n_children"]))
    assert ex.probability("x") == 0.0
    for method in METHODS:
        e = explain(method, archive, seed=3, n_samples=500)
        assert sum(a.probability for a in e.agents) == pytest.approx(1.0)
        assert e.probability("x") == 0.0
    assert explain("best", archive).top(1)[0].agent_id == "f"


def test_child_penalty_divides_weight_by_one_plus_children():
    stats = [agent("fresh", 0.6, 0), agent("busy", 0.6, 3)]
    counts, n = draw_counts("score_child_prop", stats)
    assert_matches(counts, {"fresh": 0.8, "busy": 0.2}, n)
    counts, n = draw_counts("score_prop", stats)
    assert_matches(counts, {"fresh": 0.5, "busy": 0.5}, n)


# -- eligibility, determinism ---------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_ineligible_agents_are_never_chosen(method):
    # The ineligible agent is best on every criterion: top score, no children, the
    # only solver of a task, and the root of the strongest clade.
    stats = [
        agent("star", 1.0, 0, solved={"t1", "t2", "t3", "u"}, eligible=False),
        agent("m1", 0.5, 2, solved={"t1"}, failed={"t2"}, parent="star"),
        agent("m2", 0.25, 0, solved={"t1"}, failed={"t2", "t3", "u"}, parent="m1"),
        agent("m3", 0.4, 1, solved={"t2"}, failed={"t1"}),
    ]
    seen = Counter()
    for seed in range(200):
        seen.update(select_parents(method, stats, 5, seed))
    assert "star" not in seen
    assert set(seen) <= {"m1", "m2", "m3"}


@pytest.mark.parametrize("method", METHODS)
def test_deterministic_per_seed_and_input_order(method, archive):
    first = select_parents(method, archive, 10, seed=123)
    assert select_parents(method, list(archive), 10, seed=123) == first
    assert select_parents(method, tuple(archive), 10, seed=123) == first
    assert select_parents(method, StatsTable.from_stats(archive), 10, seed=123) == first
    assert SELECTORS[method](archive, 10, 123) == first
    if method != "best":
        outcomes = {tuple(select_parents(method, archive, 10, seed)) for seed in range(20)}
        assert len(outcomes) > 10, "different seeds should give different draws"


def test_from_columns_matches_from_stats():
    rnd = random.Random(5)
    tasks = [f"t{i}" for i in range(12)]
    stats = []
    for i in range(60):
        evaluated = rnd.sample(tasks, rnd.choice([4, 12]))
        solved = frozenset(t for t in evaluated if rnd.random() < 0.5)
        stats.append(AgentStats(
            f"g{i}", None if i == 0 else f"g{rnd.randrange(i)}", len(solved) / len(evaluated),
            rnd.randrange(3), solved, frozenset(evaluated) - solved, rnd.random() < 0.8,
        ))
    task_key = {t: 1000 + 7 * i for i, t in enumerate(tasks)}  # arbitrary integer task keys
    pairs = [(i, task_key[t]) for i, s in enumerate(stats) for t in sorted(s.solved)]
    table = StatsTable.from_columns(
        agent_ids=[s.agent_id for s in stats],
        parent_ids=[s.parent_id for s in stats],
        score=[s.score for s in stats],
        n_children=[s.n_children for s in stats],
        solved_agent=[p[0] for p in pairs],
        solved_task=[p[1] for p in pairs],
        n_failed=[len(s.failed) for s in stats],
        eligible=[s.eligible for s in stats],
    )
    for method in METHODS:
        for seed in range(5):
            assert select_parents(method, table, 8, seed) == select_parents(method, stats, 8, seed), method
    for got, want in zip(table.clade_totals, StatsTable.from_stats(stats).clade_totals):
        assert np.array_equal(got, want)


def test_k_zero_gives_nothing_and_selectors_cover_every_method(archive):
    assert set(SELECTORS) == set(METHODS)
    for method in METHODS:
        assert select_parents(method, archive, 0, 0) == []
        assert len(select_parents(method, archive, 3, 0)) == 3


# -- best -----------------------------------------------------------------------------------


def test_best_orders_by_score_then_fewer_children_then_id():
    stats = [
        agent("p", 0.9, 2),
        agent("q", 0.9, 0),
        agent("zz", 0.8, 0),
        agent("aa", 0.8, 0),
        agent("r", 0.8, 1),
        agent("low", 0.1, 0),
        agent("top", 1.0, 0, eligible=False),
    ]
    assert select_parents("best", stats, 1, 0) == ["q"]
    assert select_parents("best", stats, 2, 0) == ["q", "p"]
    assert select_parents("best", stats, 4, 0) == ["q", "p", "aa", "zz"]
    assert select_parents("best", stats, 5, 99) == ["q", "p", "aa", "zz", "r"]
    assert select_parents("best", stats, 6, 0) == ["q", "p", "aa", "zz", "r", "low"]


def test_best_cycles_when_fewer_eligible_than_k():
    stats = [agent("a", 0.3), agent("b", 0.7), agent("c", 0.9, eligible=False)]
    assert select_parents("best", stats, 5, 0) == ["b", "a", "b", "a", "b"]


def test_best_with_a_large_tie_picks_lowest_ids():
    stats = [agent(f"n{i:04d}", 0.5, i % 2) for i in range(2000)][::-1]
    assert select_parents("best", stats, 3, 0) == ["n0000", "n0002", "n0004"]


# -- hgm_cmp --------------------------------------------------------------------------------


def tree():
    #   root ── weak ── strong(ineligible) ── grandchild
    #        └─ medium
    #   orphan (parent not in the rows: a root)
    return [
        agent("root", 0.5, 2, solved={"t1"}, failed={"t2"}),
        agent("weak", 0.2, 1, solved={"t1", "t2"}, failed=[f"f{i}" for i in range(8)], parent="root"),
        agent("strong", 0.9, 1, solved=[f"s{i}" for i in range(45)], failed=[f"g{i}" for i in range(5)],
              parent="weak", eligible=False),
        agent("grandchild", 0.5, 0, solved={"t3"}, failed={"t4", "t5"}, parent="strong"),
        agent("medium", 0.5, 0, solved=[f"m{i}" for i in range(5)], failed=[f"n{i}" for i in range(5)], parent="root"),
        agent("orphan", 0.0, 0, solved=(), failed={"t1"}, parent="gone"),
    ]


def test_clade_totals_on_a_hand_built_tree():
    solved, failed, size = StatsTable.from_stats(tree()).clade_totals
    by_id = {a.agent_id: (solved[i], failed[i], size[i]) for i, a in enumerate(tree())}
    assert by_id["grandchild"] == (1, 2, 1)
    assert by_id["strong"] == (46, 7, 2)
    assert by_id["weak"] == (48, 15, 3)
    assert by_id["medium"] == (5, 5, 1)
    assert by_id["root"] == (54, 21, 5)
    assert by_id["orphan"] == (0, 1, 1)
    ex = explain("hgm_cmp", tree(), n_samples=10)
    assert ex.agents[1].terms["clade_solved"] == 48 and ex.agents[1].terms["clade_failed"] == 15


def lbeta(a, b):
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def p_beta_greater(a1, b1, a2, b2):
    """P(X > Y) for X ~ Beta(a1, b1), Y ~ Beta(a2, b2), a1 an integer (exact sum)."""
    return sum(
        math.exp(lbeta(a2 + i, b2 + b1) - math.log(b1 + i) - lbeta(1 + i, b1) - lbeta(a2, b2))
        for i in range(a1)
    )


def test_hgm_weak_node_with_strong_descendant_beats_medium_leaf():
    stats = [s for s in tree() if s.agent_id in ("weak", "strong", "medium")]
    for s in stats:  # only weak (clade 47/13 incl. strong) vs medium (5/5) compete
        assert s.parent_id in (None, "root", "weak")
    picks = Counter(p for seed in range(2000) for p in select_parents("hgm_cmp", stats, 1, seed))
    expected = p_beta_greater(1 + 47, 1 + 13, 1 + 5, 1 + 5)  # ≈ 0.97
    n = sum(picks.values())
    assert set(picks) <= {"weak", "medium"}
    assert abs(picks["weak"] / n - expected) < 4 * math.sqrt(expected * (1 - expected) / n)
    # Without its descendant, the weak node (2/8) rarely wins against the medium leaf.
    alone = [s for s in stats if s.agent_id != "strong"]
    wins = sum(select_parents("hgm_cmp", alone, 1, seed) == ["weak"] for seed in range(2000))
    assert wins / 2000 == pytest.approx(p_beta_greater(3, 9, 6, 6), abs=0.03)  # ≈ 0.09


def test_hgm_draws_beta_with_one_plus_counts():
    # Two leaves; P(a wins) = P(Beta(1+2, 1+0) > Beta(1+6, 1+2)) exactly.
    stats = [agent("a", 1.0, solved={"t1", "t2"}), agent("b", 0.75, solved=[f"u{i}" for i in range(6)],
                                                            failed={"v1", "v2"})]
    picks = select_parents("hgm_cmp", stats, 20_000, seed=11)
    expected = p_beta_greater(3, 1, 7, 3)  # 0.618; Beta(s, f) or Beta(1+f, 1+s) would be far off
    p = picks.count("a") / len(picks)
    assert abs(p - expected) < 4 * math.sqrt(expected * (1 - expected) / len(picks))
    ex = explain("hgm_cmp", stats, seed=1, n_samples=20_000)
    assert not ex.exact and ex.probability("a") == pytest.approx(expected, abs=0.015)


def test_hgm_clade_sums_on_a_100k_deep_chain_without_recursion():
    n = 100_000
    ids = [f"c{i}" for i in range(n)]
    table = StatsTable.from_columns(
        agent_ids=ids,
        parent_ids=[None] + ids[:-1],
        score=np.full(n, 0.5),
        n_children=np.r_[np.ones(n - 1, dtype=int), 0],
        solved_agent=np.arange(n),
        solved_task=np.arange(n) % 7,
        n_failed=np.full(n, 2),
    )
    t0 = time.perf_counter()
    solved, failed, size = table.clade_totals
    assert time.perf_counter() - t0 < 5.0  # O(n log depth); a per-level or per-ancestor walk is far slower
    assert (solved[0], failed[0], size[0]) == (n, 2 * n, n)
    assert (solved[n - 1], failed[n - 2]) == (1, 4)
    assert np.array_equal(size, np.arange(n, 0, -1))
    assert len(select_parents("hgm_cmp", table, 2, 0)) == 2


def test_hgm_rejects_parent_cycles():
    stats = [agent("a", parent="b"), agent("b", parent="a"), agent("c")]
    with pytest.raises(ValueError, match="cycle"):
        select_parents("hgm_cmp", stats, 1, 0)
    with pytest.raises(ValueError, match="cycle"):
        select_parents("hgm_cmp", [agent("self", parent="self")], 1, 0)


# -- novelty_share --------------------------------------------------------------------------


def novelty_archive():
    # Same score and children everywhere; only `u` solves task "rare".
    common = dict(score=0.75, solved={"t1", "t2", "t3"}, failed={"rare"})
    return [
        agent("u", 0.75, solved={"t1", "t2", "rare"}, failed={"t3"}),
        agent("b", **common),
        agent("c", **common),
        agent("d", **common),
        # An ineligible agent also solving "rare" must not dilute u's share.
        agent("ghost", 0.75, solved={"rare", "t1", "t2", "t3"}, eligible=False),
    ]


def expected_novelty(stats):
    elig = [s for s in stats if s.eligible]
    solvers = Counter(t for s in elig for t in s.solved)
    share = {s.agent_id: sum(1 / solvers[t] for t in s.solved) / (1 + s.n_children) for s in elig}
    perf = {s.agent_id: sigmoid(s.score) / (1 + s.n_children) for s in elig}
    ps, pp = normalise(share), normalise(perf)
    out = {a: (1 - NOVELTY_SHARE_MIX) * pp[a] + NOVELTY_SHARE_MIX * ps[a] for a in pp}
    out.update({s.agent_id: 0.0 for s in stats if not s.eligible})
    return out


def test_novelty_share_prefers_the_unique_solver():
    stats = novelty_archive()
    probs = expected_novelty(stats)
    # u's share: 1/4 + 1/4 + 1 = 1.5; the others: 1/4 + 1/4 + 1/3 = 0.83 each.
    assert probs["u"] == pytest.approx(0.5 * 0.25 + 0.5 * 1.5 / 4.0)
    counts, n = draw_counts("novelty_share", stats)
    assert_matches(counts, probs, n)
    assert counts["u"] > 1.25 * max(counts["b"], counts["c"], counts["d"])  # 0.31 vs 0.23
    # DGM's own selector cannot tell u from the others.
    dgm, n = draw_counts("score_child_prop", stats)
    assert_matches(dgm, {"u": 0.25, "b": 0.25, "c": 0.25, "d": 0.25, "ghost": 0.0}, n)


def test_novelty_share_matches_formula_with_children_and_scores(archive):
    rnd = random.Random(3)
    tasks = [f"t{i}" for i in range(8)]
    stats = [
        AgentStats(s.agent_id, None, s.score, s.n_children,
                   frozenset(rnd.sample(tasks, rnd.randrange(0, 5))), frozenset(), s.eligible)
        for s in archive
    ]
    probs = expected_novelty(stats)
    counts, n = draw_counts("novelty_share", stats)
    assert_matches(counts, probs, n)
    ex = explain("novelty_share", stats)
    for a in ex.agents:
        assert a.probability == pytest.approx(probs[a.agent_id], rel=1e-9, abs=1e-15)


def test_novelty_share_is_pure_score_child_prop_when_nothing_is_solved(archive):
    a = explain("novelty_share", archive)
    b = explain("score_child_prop", archive)
    assert [x.probability for x in a.agents] == pytest.approx([x.probability for x in b.agents])


def test_novelty_share_sums_do_not_depend_on_input_order():
    stats = novelty_archive()
    base = {a.agent_id: a.terms["task_share"] for a in explain("novelty_share", stats).agents}
    for seed in range(5):
        shuffled = stats[:]
        random.Random(seed).shuffle(shuffled)
        got = {a.agent_id: a.terms["task_share"] for a in explain("novelty_share", shuffled).agents}
        assert got == base  # exact: the sums are computed without rounding error


# -- errors ---------------------------------------------------------------------------------


def test_unknown_method_error_lists_known_methods(archive):
    with pytest.raises(ValueError) as err:
        select_parents("x", archive, 1, 0)
    assert str(err.value) == (
        "unknown selection method 'x' (known: best, hgm_cmp, novelty_share, random, score_child_prop, score_prop)"
    )
    with pytest.raises(ValueError, match="unknown selection method"):
        explain("nope", archive)


@pytest.mark.parametrize("method", METHODS)
def test_no_eligible_agent_is_an_error(method):
    with pytest.raises(ValueError, match="no eligible agent"):
        select_parents(method, [], 1, 0)
    with pytest.raises(ValueError, match="no eligible agent"):
        select_parents(method, [agent("a", eligible=False)], 2, 0)


@pytest.mark.parametrize(
    ("stats", "k", "seed", "message"),
    [
        ([agent("a")], -1, 0, "k must be a non-negative integer"),
        ([agent("a")], 1.5, 0, "k must be a non-negative integer"),
        ([agent("a")], 1, -3, "seed must be a non-negative integer"),
        ([agent("a", score=1.2)], 1, 0, r"agent 'a' has score 1.2"),
        ([agent("a", score=float("nan"))], 1, 0, r"agent 'a' has score nan"),
        ([agent("a", n_children=-1)], 1, 0, r"agent 'a' has n_children = -1"),
        ([agent("a"), agent("b"), agent("a")], 1, 0, r"agent id 'a' appears more than once"),
    ],
)
def test_bad_input_errors(stats, k, seed, message):
    with pytest.raises(SelectionError, match=message):
        select_parents("score_child_prop", stats, k, seed)


def test_selection_error_is_a_value_error():
    assert issubclass(SelectionError, ValueError)
