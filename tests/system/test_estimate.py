"""The estimate against what a real campaign then spends, and the budget marks.

A campaign shaped like `make demo`'s (a small first stage with a threshold,
then the rest; held-out tasks for the top agent; two children a generation)
runs for real on a small benchmark with the scripted rehearsal model (real
sandboxes, gateway, litellm pricing). `dgm estimate`'s figures, from the
defaults before the run and from the archive after it, must come within a
factor of 1.5 of what it spent. The same campaign, resumed under a cap,
announces 50 % and 80 % of it once each.
"""

from __future__ import annotations

import pytest

from dgm.config import CampaignConfig
from tests.support.campaign import run_campaign
from tests.support.tiny_bench import TinyBenchmark

pytestmark = pytest.mark.docker

DEMO_SHAPE = dict(model="scripted:rehearsal", children_per_generation=2, seed=1, heldout=1, heldout_top_k=1,
                  time_limit_s=60, stages=[{"name": "small", "tasks": 2, "advance_threshold": 0.4},
                                           {"name": "rest", "tasks": "rest"}])


def _estimate(store, bench, config: CampaignConfig, calibrated: bool):
    from dgm.runs.estimate import estimate

    return estimate(config, (lambda: store) if calibrated else None, benchmark=bench).estimate


def test_the_estimate_is_within_half_again_of_the_spend_and_the_budget_marks_fire_once(tmp_path, store,
                                                                                       docker_client):
    bench = TinyBenchmark(tmp_path / "bench", n_tasks=5, difficulties=[1, 4, 4, 1, 4])
    config = CampaignConfig(benchmark=bench.name, generations=1, **DEMO_SHAPE)
    before = _estimate(store, bench, config, calibrated=False)
    assert before.calibration.roles["task"].source == "defaults for a scripted stand-in"

    campaign, status = run_campaign(store, docker_client, bench, name="shaped", generations=1, **DEMO_SHAPE)
    assert status == "completed"
    spent = store.campaign_spend(campaign.id)
    assert spent > 0
    assert before.usd.low <= spent <= before.usd.high, (before.usd, spent)
    assert spent / 1.5 <= before.usd.mid <= spent * 1.5, (before.usd.mid, spent)
    runs = len(store.list_task_runs(campaign_id=campaign.id, kind="task"))
    assert before.task_runs.low <= runs <= before.task_runs.high

    after = _estimate(store, bench, config, calibrated=True)
    print(f"spent ${spent:.4f} in {runs} task runs; estimated before ${before.usd.mid:.4f} "
          f"(${before.usd.low:.4f}-${before.usd.high:.4f}), {before.task_runs.mid:.0f} task runs; "
          f"calibrated after ${after.usd.mid:.4f} (${after.usd.low:.4f}-${after.usd.high:.4f})")
    assert after.calibration.roles["task"].source.endswith("earlier task runs in this archive")
    assert spent / 1.5 <= after.usd.mid <= spent * 1.5, (after.usd.mid, spent)

    # Under a cap that generation 1's spend already passes half of: 50 % is said as the
    # resumed runner starts, 80 % when a call in generation 2 crosses it.
    cap = round(spent / 0.6, 6)
    runners = []
    campaign, status = run_campaign(store, docker_client, bench, campaign=campaign, generations=2,
                                    budget_usd=cap, on_runner=runners.append, **DEMO_SHAPE)
    marks = [e.payload for e in store.list_events(campaign.id) if e.kind == "budget_mark"]
    assert [m["percent"] for m in marks] == [50, 80], marks
    assert all(m["budget_usd"] == cap for m in marks)
    assert marks[0]["spent_usd"] >= cap * 0.5 and marks[1]["spent_usd"] >= cap * 0.8
    assert marks[1]["spent_usd"] < cap * 0.8 + max(c.cost_usd for c in store.list_llm_calls(campaign_id=campaign.id))
    # The dashboard's lines, as `dgm run` shows them.
    assert any(line.startswith(f"budget: 50 % of ${cap:g} spent") for line in runners[0].state.log)
    assert any(line.startswith(f"budget: 80 % of ${cap:g} spent") for line in runners[0].state.log)
    from rich.console import Console

    from dgm.cli.dashboard import live_view

    screen = Console(record=True, width=200)
    screen.print(live_view(runners[0]))
    assert "past 80 % of the budget" in screen.export_text()

    # Resumed again under the same cap: nothing is said twice.
    run_campaign(store, docker_client, bench, campaign=campaign, generations=3, budget_usd=cap, **DEMO_SHAPE)
    again = [e.payload["percent"] for e in store.list_events(campaign.id) if e.kind == "budget_mark"]
    assert again == [50, 80]
