"""Harness overhead per Polyglot task: a task run's wall time minus the
agent's own work (its process in the sandbox) minus the test command's own
time (the language's build and tests). What remains is the harness's:
sandbox starts, the repository's tar and unpacking, the diff, grading set-up
(restoring tests and build files), archive writes. Runs the seed agent with
scripted:gold, one worker, on the repository's own tiny exercises (one per
language) or on a dataset's. Target: median <= 1.0 s.

usage: python benchmarks/perf/polyglot_overhead.py [--dataset DIR --tasks dgm-small] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from dgm.agent_code import SEED_AGENT_DIR, commit_agent_dir  # noqa: E402
from dgm.archive.store import ArchiveStore  # noqa: E402
from dgm.bench.evaluate import EvalSettings  # noqa: E402
from dgm.bench.registry import load_benchmark  # noqa: E402
from dgm.executor import ThreadExecutor  # noqa: E402
from dgm.llm.litellm_loader import load_litellm  # noqa: E402
from dgm.runs.stack import run_stack  # noqa: E402
from dgm.sandbox.docker import docker_client, drain_removals  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default=str(ROOT / "tests" / "fixtures" / "polyglot"))
    parser.add_argument("--tasks", default="dgm-small", help="a subset name or comma-separated ids")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    load_litellm()
    bench = load_benchmark("polyglot", dataset=args.dataset)
    tasks = bench.select(bench.subset(args.tasks) if args.tasks in bench.subsets() else args.tasks.split(","))
    client = docker_client()
    bench.prepare_images(client, tasks)
    store = ArchiveStore.open(None, Path(tempfile.mkdtemp(prefix="dgm-perf-")) / "archive")
    campaign = store.create_campaign(name="perf-polyglot-overhead", kind="eval", config={})
    agent = store.add_agent(campaign.id, commit_agent_dir(store, SEED_AGENT_DIR, "seed"), status="seed", origin="seed")
    settings = EvalSettings(model="scripted:gold", time_limit_s=300)
    rows: dict[str, list[tuple[float, float, float, float]]] = {}
    with run_stack(store, client, bench, settings, workers=1) as stack:
        stack.evaluator.run_tasks(agent, tasks[:1], campaign_id=campaign.id, stage="warmup", executor=stack.executor)
        for repeat in range(args.repeats):
            executor = ThreadExecutor(1)
            runs = stack.evaluator.run_tasks(agent, tasks, campaign_id=campaign.id, stage=f"r{repeat}",
                                             executor=executor)
            drain_removals()
            executor.shutdown()
            for task, r in zip(tasks, runs):
                if r.status != "resolved":
                    print(f"warning: {r.task_id} {r.status}: {r.error}")
                overhead = r.duration_s - (r.agent_duration_s or 0) - (r.test_duration_s or 0)
                rows.setdefault(task.extra["language"], []).append(
                    (overhead, r.duration_s, r.agent_duration_s or 0, r.test_duration_s or 0))
    print(f"{'language':12} {'runs':>5} {'overhead s':>11} {'wall s':>8} {'agent s':>8} {'tests s':>8}  (medians)")
    for lang, vs in sorted(rows.items()):
        med = [statistics.median(v[i] for v in vs) for i in range(4)]
        print(f"{lang:12} {len(vs):5d} {med[0]:11.3f} {med[1]:8.2f} {med[2]:8.2f} {med[3]:8.2f}")
    overheads = [v[0] for vs in rows.values() for v in vs]
    print(f"per-task harness overhead: median {statistics.median(overheads):.3f} s over {len(overheads)} runs "
          f"(target <= 1.0 s)")


if __name__ == "__main__":
    main()
