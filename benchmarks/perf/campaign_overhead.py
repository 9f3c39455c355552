"""Orchestration overhead of a campaign: wall time beyond the work it could not avoid.

Runs a real campaign on dgm-mini (real sandboxes, gateway, litellm, archive)
with the scripted rehearsal model given a fixed latency per call, then
compares its wall time with a lower bound built from what was recorded:

  per generation g (the seed's evaluation is generation 0):
    serial_c = diagnosis latency + self-modification run + sanity run   (child c)
    tasks_c  = sum of c's task-run durations (sandbox work incl. LLM latency)
    bound_g  = max( max_c(serial_c + tasks_c / W),  min_c(serial_c) + sum_c(tasks_c) / W )
  + held-out runs / W;  W = workers.

A child's serial steps cannot overlap its own tasks, and W task runs at most
run at once, so no scheduler could finish faster. Overhead = (wall - bound) /
wall: selection, prompt building, commits, archive writes, statistics and
any idle time the loop leaves. Target <= 5 %.

usage: python benchmarks/perf/campaign_overhead.py [--latency 0.5] [--generations 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from dgm.archive.store import ArchiveStore  # noqa: E402
from dgm.bench.registry import load_benchmark  # noqa: E402
from dgm.config import CampaignConfig  # noqa: E402
from dgm.llm.litellm_loader import load_litellm  # noqa: E402
from dgm.runs.campaign import campaign_runner  # noqa: E402
from dgm.sandbox.docker import docker_client, drain_removals  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per scripted LLM call")
    parser.add_argument("--generations", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    load_litellm()
    tmp = Path(tempfile.mkdtemp(prefix="dgm-perf-"))
    spec = json.loads((ROOT / "dgm/llm/scripted_models/rehearsal.json").read_text())
    spec["latency_s"] = args.latency
    rules = tmp / "fixed_latency.json"
    rules.write_text(json.dumps(spec))
    bench = load_benchmark("dgm-mini")
    config = CampaignConfig(model=f"scripted:{rules}", generations=args.generations, children_per_generation=2,
                            workers=args.workers, seed=1, heldout=2, time_limit_s=300,
                            stages=[{"name": "small", "tasks": 4, "advance_threshold": 0.0},
                                    {"name": "more", "tasks": 4}])
    store = ArchiveStore.open(None, tmp / "archive")
    campaign = store.create_campaign(name="perf", kind="evolution", config=config.model_dump(mode="json"))
    client = docker_client()
    # The runner `dgm run` builds (no budget cap: the config has none).
    with campaign_runner(store, config, campaign, docker_client=client, benchmark=bench) as runner:
        started = time.monotonic()
        status = runner.run()
        drain_removals()
        wall = time.monotonic() - started

    agents = store.list_agents(campaign.id)
    runs = store.list_task_runs(campaign_id=campaign.id)
    calls = store.list_llm_calls(campaign_id=campaign.id)
    W = args.workers
    bound = 0.0
    for generation in sorted({a.generation for a in agents}):
        members = [a for a in agents if a.generation == generation]
        serial, tasks = [], []
        for agent in members:
            own = [r for r in runs if r.agent_id == agent.id]
            diag = sum(c.latency_s for c in calls if c.agent_id == agent.id and c.purpose == "diagnose")
            serial.append(diag + sum(r.duration_s or 0 for r in own if r.kind in ("self_modify", "sanity")))
            tasks.append(sum(r.duration_s or 0 for r in own if r.kind == "task" and r.stage != "heldout"))
        bound += max(max(s + t / W for s, t in zip(serial, tasks)), min(serial) + sum(tasks) / W)
    heldout = sum(r.duration_s or 0 for r in runs if r.stage == "heldout")
    bound += heldout / W
    n_calls = sum(c.status == "ok" for c in calls)
    print(f"campaign {status}: {len(agents)} agents, {sum(r.kind == 'task' for r in runs)} task runs, "
          f"{n_calls} LLM calls at {args.latency:.2f} s each, {W} workers")
    print(f"wall {wall:.1f} s, unavoidable lower bound {bound:.1f} s, "
          f"orchestration overhead {100 * (wall - bound) / wall:.1f} % (target <= 5 %)")


if __name__ == "__main__":
    main()
