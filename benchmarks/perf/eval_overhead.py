"""Harness overhead per task, and the speed-up of 2 workers over 1.

Overhead = a task run's wall time minus the agent's own work (its process in
the sandbox, LLM calls included) minus the test command's own time. It is
what the harness adds: container starts, copies, the diff, grading set-up,
archive writes. Runs the seed agent with scripted:gold on 20 dgm-mini tasks
in real sandboxes. Targets on 2 cores: median overhead <= 1.0 s, speed-up >= 1.7x.

usage: python benchmarks/perf/eval_overhead.py [--tasks 20] [--repeats 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dgm.archive.store import ArchiveStore  # noqa: E402
from dgm.bench.evaluate import SEED_AGENT_DIR, EvalSettings, Evaluator, commit_agent_dir  # noqa: E402
from dgm.bench.registry import load_benchmark  # noqa: E402
from dgm.executor import ThreadExecutor  # noqa: E402
from dgm.llm.client import LLMClient, load_litellm  # noqa: E402
from dgm.llm.gateway import Gateway  # noqa: E402
from dgm.sandbox.docker import docker_client, drain_removals  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=1, help="pairs of (1 worker, 2 workers) runs")
    args = parser.parse_args()
    load_litellm()
    bench = load_benchmark("dgm-mini")
    tasks = bench.tasks()[: args.tasks]
    client = docker_client()
    store = ArchiveStore.open(None, Path(tempfile.mkdtemp(prefix="dgm-perf-")) / "archive")
    sha = commit_agent_dir(store, SEED_AGENT_DIR, "seed")
    campaign = store.create_campaign(name="perf-eval-overhead", kind="eval", config={})
    agent = store.add_agent(campaign.id, sha, status="seed", origin="seed")
    settings = EvalSettings(model="scripted:gold", time_limit_s=300)
    overheads, walls = [], {1: [], 2: []}
    with Gateway(LLMClient(store)) as gateway:
        evaluator = Evaluator(store, client, gateway, bench, settings)
        evaluator.run_tasks(agent, tasks[:2], campaign_id=campaign.id, stage="warmup",
                            executor=ThreadExecutor(2))  # images, litellm, page cache
        for repeat in range(args.repeats):
            for workers in (1, 2):
                executor = ThreadExecutor(workers)
                started = time.monotonic()
                runs = evaluator.run_tasks(agent, tasks, campaign_id=campaign.id, stage=f"w{workers}-r{repeat}",
                                           executor=executor)
                drain_removals()
                walls[workers].append(time.monotonic() - started)
                executor.shutdown()
                evaluator.close()
                bad = [r.task_id for r in runs if r.status != "resolved"]
                if bad:
                    print(f"warning: not resolved: {bad}")
                if workers == 1:
                    overheads += [r.duration_s - (r.agent_duration_s or 0) - (r.test_duration_s or 0) for r in runs]
    w1, w2 = statistics.median(walls[1]), statistics.median(walls[2])
    print(f"dgm-mini, {len(tasks)} tasks, seed agent + scripted:gold, real Docker sandboxes")
    print(f"per-task harness overhead (1 worker): median {statistics.median(overheads):.3f} s, "
          f"p90 {sorted(overheads)[int(0.9 * (len(overheads) - 1))]:.3f} s (target <= 1.0 s)")
    print(f"wall time: 1 worker {w1:.1f} s, 2 workers {w2:.1f} s; speed-up {w1 / w2:.2f}x (target >= 1.7x)")


if __name__ == "__main__":
    main()
