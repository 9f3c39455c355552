"""Sandbox-slot utilisation over a whole campaign: `generations` vs `async` schedule.

Runs real campaigns on dgm-mini (real sandboxes, gateway, litellm, archive)
with the scripted rehearsal model given a fixed latency per call, so waiting
on the model, not this machine's cores, is most of a task run's time. DGM's
setting, 2 children per generation, with 8 executor slots (`--workers 8`):
the generations schedule runs G generations of 2 children; the async schedule
runs the same number of children (2 G), each started as soon as slots would
go idle.

  utilisation = sum over task runs of the time each held a slot
                / (slots x the campaign's wall time)

measured two ways: from the archive (each task run's row, from its creation
to its end: the run's slot is held that long) and from the executor's own
count (`SlotMeter.busy_seconds`, the time task functions ran). Wall time is
the runner's whole run, from start (seed evaluation included) to its end.
Every child is evaluated (`evaluate_twins`) on two stages (`--stage-tasks`
each, everyone goes on to the second), so both schedules do the same work. Target: >= 90 % with async (issue 18).

usage: python benchmarks/perf/schedule_utilisation.py [--children 16] [--slots 8] [--latency 3]
           [--stage-tasks 8] [--schedules generations,async]
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

CHILDREN_PER_GENERATION = 2  # DGM's setting


def fixed_latency_model(directory: Path, latency_s: float) -> str:
    spec = json.loads((ROOT / "dgm/llm/scripted_models/rehearsal.json").read_text())
    spec["latency_s"] = latency_s
    rules = directory / "fixed_latency.json"
    rules.write_text(json.dumps(spec))
    return f"scripted:{rules}"


def run_schedule(schedule: str, *, children: int, slots: int, stage_tasks: int, model: str, directory: Path) -> dict:
    """One campaign under `schedule`; its utilisation figures."""
    bench = load_benchmark("dgm-mini")
    generations = children if schedule == "async" else -(-children // CHILDREN_PER_GENERATION)
    config = CampaignConfig(model=model, schedule=schedule, generations=generations,
                            children_per_generation=CHILDREN_PER_GENERATION, workers=slots, seed=1, heldout=0,
                            time_limit_s=300, evaluate_twins=True,
                            stages=[{"name": "small", "tasks": stage_tasks, "advance_threshold": 0.0},
                                    {"name": "more", "tasks": stage_tasks}])
    store = ArchiveStore.open(None, directory / f"archive-{schedule}")
    campaign = store.create_campaign(name=schedule, kind="evolution", config=config.model_dump(mode="json"))
    client = docker_client()
    with campaign_runner(store, config, campaign, docker_client=client, benchmark=bench) as runner:
        started = time.monotonic()
        status = runner.run()
        wall = time.monotonic() - started
        metered = runner.tasks.busy_seconds
    drain_removals()
    runs = [r for r in store.list_task_runs(campaign_id=campaign.id, kind="task") if r.finished_at]
    held = sum((r.finished_at - r.created_at).total_seconds() for r in runs)
    n_children = sum(a.origin == "child" for a in store.list_agents(campaign.id))
    return {"schedule": schedule, "status": status, "children": n_children, "task_runs": len(runs),
            "wall_s": round(wall, 1), "utilisation_archive": held / (slots * wall),
            "utilisation_executor": metered / (slots * wall)}


def utilisation_main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=16, help="children in all (generations: children / 2)")
    parser.add_argument("--slots", type=int, default=8, help="executor slots (--workers)")
    parser.add_argument("--latency", type=float, default=3.0, help="seconds per scripted LLM call")
    parser.add_argument("--stage-tasks", type=int, default=8,
                        help="tasks in each of the two stages (DGM's first stage has 10; dgm-mini has 29 tasks)")
    parser.add_argument("--schedules", default="generations,async")
    args = parser.parse_args(argv)
    load_litellm()
    tmp = Path(tempfile.mkdtemp(prefix="dgm-perf-util-"))
    model = fixed_latency_model(tmp, args.latency)
    results = []
    for schedule in args.schedules.split(","):
        result = run_schedule(schedule.strip(), children=args.children, slots=args.slots,
                              stage_tasks=args.stage_tasks, model=model, directory=tmp)
        results.append(result)
        print(f"{result['schedule']:>11}: {result['status']}, {result['children']} children, "
              f"{result['task_runs']} task runs, wall {result['wall_s']:.0f} s; slot utilisation "
              f"{100 * result['utilisation_archive']:.1f} % (archive), "
              f"{100 * result['utilisation_executor']:.1f} % (executor)  "
              f"[{args.slots} slots, {CHILDREN_PER_GENERATION} children/generation, stages of {args.stage_tasks} tasks, "
              f"{args.latency:g} s per call]",
              flush=True)
    asynchronous = next((r for r in results if r["schedule"] == "async"), None)
    if asynchronous is not None:
        met = "met" if asynchronous["utilisation_archive"] >= 0.9 else "NOT met"
        print(f"async utilisation {100 * asynchronous['utilisation_archive']:.1f} % (target >= 90 %: {met})")
    return results


if __name__ == "__main__":
    utilisation_main()
