"""dgm.stats: the Wilson interval every score carries, and the paired test of `dgm compare` and keep_better."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from scipy.stats import binomtest, wilcoxon

from dgm.stats.intervals import interval_fields, rate_label, score_label, wilson_interval
from dgm.stats.paired import (A_BETTER, B_BETTER, MCNEMAR, NO_EVIDENCE, WILCOXON, compare_outcomes,
                              mcnemar_exact_p)


@pytest.mark.parametrize("n", [1, 2, 5, 6, 10, 22, 50, 200])
def test_wilson_interval_matches_scipy_at_every_count(n):
    for k in range(n + 1):
        ours = wilson_interval(k, n)
        ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert ours.low == pytest.approx(ref.low, abs=1e-9) and ours.high == pytest.approx(ref.high, abs=1e-9), (k, n)
        assert 0.0 <= ours.low <= k / n <= ours.high <= 1.0


def test_wilson_interval_at_another_level_and_bad_counts():
    ref = binomtest(7, 20).proportion_ci(confidence_level=0.9, method="wilson")
    assert wilson_interval(7, 20, 0.9) == pytest.approx((ref.low, ref.high))
    for k, n in ((0, 0), (3, 2), (-1, 4)):
        with pytest.raises(ValueError):
            wilson_interval(k, n)


def test_score_label_is_the_score_its_interval_and_n():
    assert score_label(16 / 22, 16, 22) == "0.73 [0.52\u20130.87] n=22"
    assert score_label(None, 3, 4) == "-"
    assert score_label(0.5, 0, 0) == "0.50 n=0"  # an imported score with no runs behind it
    assert score_label(0.0, 0, 6) == "0.00 [0.00\u20130.39] n=6"
    assert rate_label(3, 6) == "0.50 [0.19\u20130.81] n=6" and rate_label(0, 0) == "-"
    assert interval_fields(3, 6) == {"n": 6, "resolved": 3, "low": 0.1876, "high": 0.8124}
    assert interval_fields(None, 0) == {"n": 0, "low": None, "high": None}


def test_importing_the_statistics_imports_no_scipy():
    # The browsing commands show intervals; scipy's import costs more than they do.
    code = "import sys, dgm.stats.intervals, dgm.stats.paired; print('scipy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def _single(outcomes: dict[str, bool]) -> dict[str, list[bool]]:
    return {t: [ok] for t, ok in outcomes.items()}


def test_mcnemar_counts_only_discordant_tasks_and_names_them():
    a = _single({f"t{i}": True for i in range(10)} | {"x1": True, "x2": False})
    b = _single({f"t{i}": i >= 8 for i in range(10)} | {"x1": True, "x2": False, "only_b": True})
    result = compare_outcomes(a, b)
    assert result.test == MCNEMAR and result.shared_tasks == 12 and result.only_b == 1 and result.only_a == 0
    assert [d.task_id for d in result.differing] == [f"t{i}" for i in range(8)]
    assert result.a_wins == 8 and result.b_wins == 0
    assert result.p_value == pytest.approx(binomtest(8, 8, 0.5).pvalue) == pytest.approx(2 / 256)
    assert result.verdict == A_BETTER and (result.a_resolved, result.b_resolved) == (11, 3)
    # Concordant tasks change nothing: 100 more tasks both resolve leave the p-value as it was.
    more = {f"c{i}": [True] for i in range(100)}
    assert compare_outcomes(a | more, b | more).p_value == pytest.approx(result.p_value)
    swapped = compare_outcomes(b, a)
    assert swapped.verdict == B_BETTER and swapped.p_value == pytest.approx(result.p_value)


def test_a_few_tasks_apart_is_no_evidence():
    # 3 against 1 discordant tasks: a "win" by two tasks, which noise makes every day.
    a = _single({"t1": True, "t2": True, "t3": True, "t4": False, "t5": True})
    b = _single({"t1": False, "t2": False, "t3": False, "t4": True, "t5": True})
    result = compare_outcomes(a, b)
    assert result.verdict == NO_EVIDENCE and result.p_value == pytest.approx(0.625)
    assert compare_outcomes(a, a).p_value == 1.0 and compare_outcomes(a, a).differing == []
    assert compare_outcomes({}, b).shared_tasks == 0 and compare_outcomes({}, b).verdict == NO_EVIDENCE


def test_the_level_decides_the_verdict():
    assert mcnemar_exact_p(7, 1) == pytest.approx(binomtest(7, 8).pvalue)  # 0.0703
    a = _single({f"t{i}": i < 7 for i in range(8)})
    b = _single({f"t{i}": i == 7 for i in range(8)})
    assert compare_outcomes(a, b, alpha=0.05).verdict == NO_EVIDENCE
    assert compare_outcomes(a, b, alpha=0.1).verdict == A_BETTER
    with pytest.raises(ValueError):
        compare_outcomes(a, b, alpha=1.5)


def test_repeats_use_per_task_rates_and_the_signed_rank_test():
    rng = random.Random(4)
    a = {f"t{i}": [rng.random() < 0.8 for _ in range(3)] for i in range(15)}
    b = {f"t{i}": [rng.random() < 0.3 for _ in range(3)] for i in range(15)}
    result = compare_outcomes(a, b)
    diffs = [sum(a[t]) / 3 - sum(b[t]) / 3 for t in sorted(a)]
    expected = wilcoxon([d for d in diffs if d], zero_method="wilcox").pvalue
    assert result.test == WILCOXON and result.p_value == pytest.approx(expected)
    assert result.verdict == A_BETTER and result.a_runs == result.b_runs == 45
    assert len(result.differing) == sum(1 for d in diffs if d)


def test_equal_agents_are_rarely_called_different():
    # Two agents with the same resolve rate: the exact test keeps its level.
    rng = random.Random(0)
    wrong = 0
    for _ in range(400):
        a = _single({f"t{i}": rng.random() < 0.5 for i in range(30)})
        b = _single({f"t{i}": rng.random() < 0.5 for i in range(30)})
        wrong += compare_outcomes(a, b).verdict != NO_EVIDENCE
    assert wrong / 400 <= 0.05


def test_the_written_out_normal_quantile_is_the_975th_percentile():
    from statistics import NormalDist

    from dgm.stats import intervals

    assert intervals._Z[0.95] == NormalDist().inv_cdf(0.975)
