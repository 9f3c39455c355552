"""`dgm estimate`: the pure estimator's arithmetic, calibration from an archive, the command.

How close an estimate comes to what a campaign then spends is measured on a
real campaign in tests/system/test_estimate.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dgm.evolution.estimate import (Calibration, CampaignShape, Price, RoleFigures, Span, estimate_campaign,
                                    stage_runs)
from tests.support.cli import run_dgm

ONE_CALL = RoleFigures(calls=Span.exactly(1), prompt_tokens=Span.exactly(100), completion_tokens=Span.exactly(10),
                       source="test")


def calibration(advance: Span, evaluated: Span = Span.exactly(1.0), heldout_new: Span = Span.exactly(0.0),
                task: RoleFigures = ONE_CALL) -> Calibration:
    return Calibration(roles={"task": task, "diagnose": ONE_CALL, "self_modify": ONE_CALL}, advance=(advance,),
                       evaluated=evaluated, heldout_new=heldout_new, source="test")


def test_an_agent_runs_the_first_stage_whole_and_later_ones_as_often_as_it_gets_there():
    assert stage_runs((6, 16), (Span(0.0, 0.5, 1.0),)) == Span(6.0, 14.0, 22.0)
    assert stage_runs((2, 3, 4), (Span.exactly(0.5), Span.exactly(0.5))) == Span.exactly(2 + 1.5 + 1.0)


def test_the_campaign_is_counted_as_the_loop_runs_it():
    shape = CampaignShape(stage_sizes=(6, 16), heldout_size=7, heldout_top_k=1, generations=3,
                          children_per_generation=2)
    price = Price(input_usd=1e-6, output_usd=4e-6)
    est = estimate_campaign(shape, calibration(Span(0.0, 0.5, 1.0), evaluated=Span(0.5, 1.0, 1.0),
                                               heldout_new=Span(0.0, 0.5, 1.0)),
                            {"task": price, "diagnose": price, "self_modify": price})
    seed = est.generations[0]
    # The seed: its stages, then the held-out tasks; no child, so no diagnosis or self-modification.
    assert seed.task_runs == Span(6 + 7, 14 + 7, 22 + 7)
    assert seed.roles["diagnose"].calls == Span.exactly(0)
    later = est.generations[1]
    # Two children; half of them (low end) evaluated; at most one new agent scored on held-out tasks.
    assert later.task_runs == Span(2 * 0.5 * 6, 2 * 14 + 0.5 * 7, 2 * 22 + 7)
    assert later.roles["diagnose"].units == Span.exactly(2) and later.roles["self_modify"].calls == Span.exactly(2)
    assert est.task_runs == seed.task_runs + later.task_runs * 3
    # Dollars: each call 100 prompt and 10 completion tokens at the price.
    per_call = 100 * 1e-6 + 10 * 4e-6
    assert est.usd.mid == pytest.approx(est.calls.mid * per_call)
    assert est.usd.low <= est.usd.mid <= est.usd.high
    assert est.tokens.mid == pytest.approx(est.calls.mid * 110)


def test_an_async_campaign_is_counted_as_its_children_one_per_generation():
    from dgm.config import CampaignConfig
    from dgm.runs.estimate import shape_of
    from dgm.evolution.staging import build_plan
    from dgm.bench.registry import load_benchmark

    bench = load_benchmark("dgm-mini")
    fields = dict(generations=6, children_per_generation=2, stages=[{"name": "all", "tasks": "rest"}], heldout=3)
    config = CampaignConfig(schedule="async", **fields)
    shape = shape_of(config, build_plan(config, bench))
    # `generations` counts children under the async schedule: six, not six times two.
    assert (shape.generations, shape.children_per_generation) == (6, 1)
    config = CampaignConfig(**fields)
    assert shape_of(config, build_plan(config, bench)).children_per_generation == 2


def test_a_role_without_a_price_leaves_the_total_unpriced_not_zero():
    shape = CampaignShape(stage_sizes=(2,), heldout_size=0, heldout_top_k=1, generations=1, children_per_generation=1)
    one_stage = Calibration(roles={"task": ONE_CALL, "diagnose": ONE_CALL, "self_modify": ONE_CALL}, advance=(),
                            evaluated=Span.exactly(1.0), heldout_new=Span.exactly(0.0), source="test")
    est = estimate_campaign(shape, one_stage,
                            {"task": Price(1e-6, 1e-6), "diagnose": None, "self_modify": Price(1e-6, 1e-6)})
    assert est.usd is None and est.roles["diagnose"].usd is None
    assert est.priced_usd.mid == pytest.approx((est.roles["task"].calls.mid + 1) * 110e-6)


# --------------------------------------------------------------------------- calibration from an archive
def _campaign_with_runs(store, *, model: str, benchmark: str, runs: int, calls_per_run: int, stage_reached: list[int]):
    """An evolution campaign on `benchmark` whose task runs each made `calls_per_run` calls of 1,000
    prompt and 100 completion tokens; children reaching the given stages, each diagnosed in 2 calls."""
    import secrets

    campaign = store.create_campaign(f"c-{secrets.token_hex(3)}", "evolution",
                                     {"benchmark": benchmark, "model": model}, seed=1)
    src = Path(store.root) / f"src-{secrets.token_hex(3)}"
    src.mkdir()
    (src / "main.py").write_text("print('agent')\n")
    sha = store.code.commit_tree(src, None, "agent")
    seed = store.add_agent(campaign.id, sha, status="admitted", origin="seed")
    for k in range(runs):
        run = store.start_task_run(campaign.id, seed.id, "task", benchmark, f"t-{k}", "small", model)
        for _ in range(calls_per_run):
            store.record_llm_call(model=model, request_hash="ab" * 32, purpose="task", task_run_id=run.id,
                                  prompt_tokens=1000, completion_tokens=100, cost_usd=0.001)
        store.finish_task_run(run.id, status="resolved", patch="x")
    for reached in stage_reached:
        child = store.add_agent(campaign.id, sha, parent_id=seed.id, generation=1, status="admitted",
                                origin="child")
        store.update_agent(child.id, stage_reached=reached)
        for _ in range(2):
            store.record_llm_call(model=model, request_hash="cd" * 32, purpose="diagnose", campaign_id=campaign.id,
                                  agent_id=child.id, prompt_tokens=5000, completion_tokens=500, cost_usd=0.01)
    store.record_generation_stat(campaign.id, 1, archive_size=1, best_score=1.0, mean_score=1.0, coverage=1,
                                 coverage_fraction=1.0, mean_jaccard_distance=0.0, spent_usd=0.0)
    return campaign


def test_the_figures_come_from_earlier_runs_of_the_same_model_and_benchmark(tmp_path):
    from dgm.archive.store import ArchiveStore
    from dgm.config import CampaignConfig
    from dgm.runs.estimate import estimate

    with ArchiveStore.open(None, tmp_path / "archive") as store:
        _campaign_with_runs(store, model="scripted:rehearsal", benchmark="dgm-mini", runs=5, calls_per_run=3,
                            stage_reached=[1, 2, 2, 2, 0])
        # Another benchmark's and another model's runs must not count.
        _campaign_with_runs(store, model="scripted:rehearsal", benchmark="other", runs=5, calls_per_run=9,
                            stage_reached=[1, 1, 1, 1])
        _campaign_with_runs(store, model="scripted:gold", benchmark="dgm-mini", runs=5, calls_per_run=7,
                            stage_reached=[])
        config = CampaignConfig(model="scripted:rehearsal", benchmark="dgm-mini", generations=2,
                                children_per_generation=2, seed=1)
        calibrated = estimate(config, lambda: store).estimate
        defaults = estimate(config, None).estimate
    task = calibrated.calibration.roles["task"]
    assert task.calls == Span(3.0, 3.0, 3.0) and task.prompt_tokens.mid == 1000 and task.completion_tokens.mid == 100
    assert task.source == "5 earlier task runs in this archive"
    diagnose = calibrated.calibration.roles["diagnose"]
    assert diagnose.calls.mid == 2 and diagnose.prompt_tokens.mid == 5000
    assert diagnose.source == "5 earlier diagnoses in this archive"
    # Children: 4 of 5 reached evaluation; 3 of those 4 went on past the first stage.
    assert calibrated.calibration.evaluated.mid == pytest.approx(0.8)
    assert calibrated.calibration.advance[0].mid == pytest.approx(0.75)
    assert calibrated.calibration.advance[0].low < 0.75 < calibrated.calibration.advance[0].high
    assert calibrated.calibration.source == "5 finished children in this archive"
    # Without an archive: the documented defaults, and they say so.
    assert defaults.calibration.roles["task"].source == "defaults for a scripted stand-in"
    assert defaults.calibration.roles["task"].calls.mid != 3.0
    # The scripted model's own price (rehearsal: $1 and $4 per million tokens) prices every role.
    assert calibrated.prices["task"] == Price(1e-6, 4e-6)


# --------------------------------------------------------------------------- the command
CONFIG = """[campaign]
benchmark = "dgm-mini"
model = "scripted:rehearsal"
generations = 3
children_per_generation = 2
heldout = 7
[[campaign.stages]]
name = "small"
tasks = 6
advance_threshold = 0.4
[[campaign.stages]]
name = "rest"
tasks = "rest"
"""


def test_dgm_estimate_prints_each_generation_and_the_total_with_a_range(tmp_path):
    config = tmp_path / "campaign.toml"
    config.write_text(CONFIG)
    archive = tmp_path / "archive"
    proc = run_dgm(["estimate", "--config", str(config), "--generations", "2", "--budget-usd", "0.05"],
                   archive_dir=archive)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "2 generation(s) x 2 child(ren) on dgm-mini" in out  # the override counts
    rows = [line for line in out.splitlines() if line.startswith("│ ")]
    assert [r.split("│")[1].strip() for r in rows[:4]] == ["0", "1", "2", "all"]
    assert "defaults for a scripted stand-in" in out
    import re

    total = re.search(r"total: \$([0-9.]+) expected, \$([0-9.]+) to \$([0-9.]+)", out)
    assert total, out
    mid, low, high = (float(x) for x in total.groups())
    assert low < mid < high
    assert "the high end passes it" in out  # a $0.05 cap is below what the campaign may cost
    assert not archive.exists()  # nothing written, not even an empty archive


def test_dgm_run_dry_run_is_the_estimate_and_starts_nothing(tmp_path):
    config = tmp_path / "campaign.toml"
    config.write_text(CONFIG)
    archive = tmp_path / "archive"
    dry = run_dgm(["run", "--config", str(config), "--dry-run"], archive_dir=archive)
    est = run_dgm(["estimate", "--config", str(config)], archive_dir=archive)
    assert dry.returncode == 0 and est.returncode == 0, (dry.stderr, est.stderr)
    assert dry.stdout == est.stdout and "total: $" in dry.stdout
    assert not archive.exists()


def test_a_bad_config_gets_the_same_one_line_error_as_dgm_run(tmp_path):
    from tests.support.cli import assert_one_line_error

    config = tmp_path / "campaign.toml"
    config.write_text(CONFIG.replace("tasks = 6", "tasks = 600"))
    assert_one_line_error(run_dgm(["estimate", "--config", str(config)], archive_dir=tmp_path / "a"),
                          "stage small", "asks for 600 tasks")
    assert_one_line_error(run_dgm(["estimate", "--model", "scripted:nonesuch"], archive_dir=tmp_path / "a"),
                          "unknown scripted model")


def test_a_real_model_is_estimated_from_litellms_prices_without_its_key_and_an_unpriced_one_says_so(tmp_path,
                                                                                                  monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    archive = tmp_path / "archive"
    priced = run_dgm(["estimate", "--model", "openai/gpt-4o-mini", "--generations", "1"], archive_dir=archive)
    assert priced.returncode == 0, priced.stderr
    assert "defaults for a real model" in priced.stdout
    assert "$0.1500 in / $0.6000 out per million tokens" in priced.stdout  # litellm's price of gpt-4o-mini
    unpriced = run_dgm(["estimate", "--model", "openai/a-local-model-nobody-prices", "--generations", "1"],
                       archive_dir=archive)
    assert unpriced.returncode == 0, unpriced.stderr
    assert "total: unpriced" in unpriced.stdout and "$0.0000" not in unpriced.stdout
    assert not archive.exists()


def test_a_stage_with_threshold_zero_is_run_by_every_evaluated_agent(tmp_path):
    from dgm.config import CampaignConfig
    from dgm.runs.estimate import estimate

    stages = [{"name": "small", "tasks": 4, "advance_threshold": 0.0}, {"name": "medium", "tasks": 4,
                                                                        "advance_threshold": 0.5},
              {"name": "rest", "tasks": 4}]
    config = CampaignConfig(model="scripted:rehearsal", benchmark="dgm-mini", stages=stages, heldout=2, seed=1)
    cal = estimate(config, None).estimate.calibration
    assert cal.advance[0] == Span.exactly(1.0)  # should_advance: any rate reaches 0
    assert cal.advance[1].low == 0.0 and cal.advance[1].high == 1.0
