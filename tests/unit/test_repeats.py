"""Repeats: the figures `dgm eval --repeats K` shows, and the config that asks for them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from dgm.config import load_config, validate_config
from dgm.errors import UsageError
from dgm.repeats import summarize_repeats


def run(task, repeat, status):
    return SimpleNamespace(task_id=task, repeat=repeat, status=status)


def test_the_score_is_the_mean_of_all_runs_and_its_spread_is_measured_between_repeats():
    runs = [run("a", 0, "resolved"), run("b", 0, "resolved"), run("c", 0, "unresolved"), run("d", 0, "error"),
            run("a", 1, "resolved"), run("b", 1, "unresolved"), run("c", 1, "unresolved"), run("d", 1, "timeout"),
            run("a", 2, "resolved"), run("b", 2, "resolved"), run("c", 2, "resolved"), run("d", 2, "running")]
    summary = summarize_repeats(runs)
    assert summary.task_rates == {"a": (3, 3), "b": (2, 3), "c": (1, 3), "d": (0, 2)}
    assert summary.runs == 11 and summary.score == pytest.approx(6 / 11)
    assert summary.repeat_scores == pytest.approx((2 / 4, 1 / 4, 3 / 3))
    mean = (0.5 + 0.25 + 1.0) / 3
    sd = (((0.5 - mean) ** 2 + (0.25 - mean) ** 2 + (1.0 - mean) ** 2) / 2) ** 0.5
    assert summary.spread == pytest.approx(sd) and summary.standard_error == pytest.approx(sd / 3 ** 0.5)
    assert summary.unstable_tasks == ["b", "c"]


def test_identical_repeats_have_no_spread_and_one_repeat_has_none_measured():
    same = [run(t, r, s) for r in range(3) for t, s in (("a", "resolved"), ("b", "empty_patch"))]
    summary = summarize_repeats(same)
    assert summary.spread == 0.0 and summary.unstable_tasks == [] and summary.score == 0.5
    once = summarize_repeats([run("a", 0, "resolved"), None])
    assert once.spread is None and once.standard_error is None and once.score == 1.0
    assert summarize_repeats([]).score is None


def test_stage_repeats_and_evaluate_twins_are_checked_config_keys():
    config = load_config(None, {"stages": [{"name": "s", "tasks": 3, "repeats": 4}], "evaluate_twins": True})
    assert config.stages[0].repeats == 4 and config.evaluate_twins is True
    defaults = load_config(None, {"stages": [{"name": "s", "tasks": 3}]})
    assert defaults.stages[0].repeats == 1 and defaults.evaluate_twins is False
    for bad in (0, True, 1.5, "two", 101):
        with pytest.raises(UsageError, match=r"^c.toml: stages\.0\.repeats: "):
            validate_config({"stages": [{"name": "s", "tasks": 3, "repeats": bad}]}, "c.toml")
    with pytest.raises(UsageError, match="^c.toml: evaluate_twins: "):
        validate_config({"evaluate_twins": "maybe"}, "c.toml")


def test_the_plan_carries_each_stage_s_repeats():
    from dgm.bench.registry import load_benchmark
    from dgm.evolution.staging import build_plan

    config = load_config(None, {"heldout": 0, "stages": [{"name": "small", "tasks": 2, "repeats": 3},
                                                         {"name": "rest", "tasks": "rest"}]})
    plan = build_plan(config, load_benchmark("dgm-mini"))
    assert [(s.name, len(s.task_ids), s.repeats) for s in plan.stages] == [
        ("small", 2, 3), ("rest", len(plan.selection_task_ids) - 2, 1)]
