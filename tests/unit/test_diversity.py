"""Archive diversity metrics on hand-computed examples."""

from __future__ import annotations

import itertools
import random

import pytest

from dgm.evolution.diversity import coverage, jaccard_distance, mean_pairwise_jaccard_distance


def test_coverage_counts_tasks_solved_by_anyone():
    assert coverage([{"a", "b"}, {"b", "c"}, set()]) == 3
    assert coverage([frozenset({"x"}), ["x", "y"], ("z",)]) == 3
    assert coverage([set(), set()]) == 0
    assert coverage([]) == 0


def test_jaccard_distance_by_hand():
    assert jaccard_distance({"a", "b"}, {"b", "c"}) == pytest.approx(2 / 3)
    assert jaccard_distance({"a"}, {"a"}) == 0.0
    assert jaccard_distance({"a"}, set()) == 1.0
    assert jaccard_distance(set(), set()) == 0.0


def test_mean_pairwise_jaccard_distance_by_hand():
    # d(A,B) = 1 - 1/3, d(A,C) = d(B,C) = 1  ->  mean = (2/3 + 2) / 3 = 8/9
    assert mean_pairwise_jaccard_distance([{"a", "b"}, {"b", "c"}, set()]) == pytest.approx(8 / 9)
    # d = 1 - 2/4 for the one pair
    assert mean_pairwise_jaccard_distance([["a", "b", "c"], ("b", "c", "d")]) == pytest.approx(0.5)
    assert mean_pairwise_jaccard_distance([set(), set()]) == 0.0
    assert mean_pairwise_jaccard_distance([{"a", "b"}] * 4) == 0.0


def test_fewer_than_two_agents_have_no_pairwise_distance():
    assert mean_pairwise_jaccard_distance([]) is None
    assert mean_pairwise_jaccard_distance([{"a"}]) is None


def random_sets(n, seed):
    rnd = random.Random(seed)
    tasks = [f"t{i}" for i in range(30)]
    return [frozenset(rnd.sample(tasks, rnd.randrange(0, 12))) for _ in range(n)]


def test_exact_up_to_max_pairs():
    sets = random_sets(40, 1)  # 780 pairs
    brute = sum(jaccard_distance(a, b) for a, b in itertools.combinations(sets, 2)) / 780
    assert mean_pairwise_jaccard_distance(sets, max_pairs=780) == pytest.approx(brute, rel=1e-12)
    # Exact results do not depend on the seed.
    assert mean_pairwise_jaccard_distance(sets, max_pairs=780, seed=5) == mean_pairwise_jaccard_distance(sets)


def test_sampled_estimate_is_close_seeded_and_never_pairs_an_agent_with_itself():
    sets = random_sets(400, 2)  # 79,800 pairs
    exact = mean_pairwise_jaccard_distance(sets, max_pairs=100_000)
    est = mean_pairwise_jaccard_distance(sets, max_pairs=5_000, seed=3)
    assert est != exact
    assert est == pytest.approx(exact, abs=0.02)
    assert mean_pairwise_jaccard_distance(sets, max_pairs=5_000, seed=3) == est
    assert mean_pairwise_jaccard_distance(sets, max_pairs=5_000, seed=4) != est
    # Distinct singletons: every pair of different agents is at distance 1, a self-pair at 0.
    singletons = [{f"t{i}"} for i in range(1000)]
    assert mean_pairwise_jaccard_distance(singletons, max_pairs=2_000, seed=0) == 1.0


def test_bad_max_pairs():
    with pytest.raises(ValueError, match="max_pairs"):
        mean_pairwise_jaccard_distance([{"a"}, {"b"}], max_pairs=0)
