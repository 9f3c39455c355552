"""Harness overhead per task, and the speed-up of 2 workers over 1.

Overhead = a task run's wall time minus the agent's own work (its process in
the sandbox, LLM calls included) minus the test command's own time. It is
what the harness adds: container starts, copies, the diff, grading set-up,
archive writes. Runs the seed agent with scripted:gold on 20 dgm-mini tasks
in real sandboxes. Targets on 2 cores: median overhead <= 1.0 s, speed-up >= 1.7x.

Each repeat runs the tasks with 1 worker and with 2, back to back, in
alternating order (1-2, 2-1, ...) so a drift in the machine's load does not
favour either; the speed-up quoted is the median of those pairs' ratios (the
machine is shared and its load drifts, so a ratio is taken within one pair). Also printed: how
many cores each configuration kept busy (from /proc/stat) and how much CPU
time the hypervisor gave to other guests meanwhile (steal),
and, right after each pair, how much faster two processes finish pure CPU
work than one: the ceiling this (virtual, shared) machine put on any 2-worker
speed-up at that moment. The target is on the raw ratio, not on the ratio to
that ceiling. Dividing that ceiling by the cores one worker kept busy gives
the speed-up attainable at all, printed with how much of it was reached.

A second, tighter bound: every task pays two bare sandbox cycles (create,
start, the process exits, remove), and those are mostly Docker's and the
kernel's work, not ours. After each pair the benchmark times such cycles alone
(running `true`) with one thread and with two. Their share of a task's
1-worker wall time, scaling as measured, with the rest of the task scaling
like pure CPU work, bounds the speed-up (Amdahl's law with two parts).

`--llm-latency S` makes every model call take S seconds (a scripted gold
model with latency): the regime of a real campaign, where agents mostly wait
for the model. The targets are for the default, zero latency.

usage: python benchmarks/perf/eval_overhead.py [--tasks 20] [--repeats 5] [--llm-latency 0]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dgm.archive.store import ArchiveStore  # noqa: E402
from dgm.agent_code import SEED_AGENT_DIR, commit_agent_dir  # noqa: E402
from dgm.bench.evaluate import EvalSettings  # noqa: E402
from dgm.bench.registry import load_benchmark  # noqa: E402
from dgm.executor import ThreadExecutor  # noqa: E402
from dgm.llm.litellm_loader import load_litellm  # noqa: E402
from dgm.llm.scripted import BUILTIN_SPECS  # noqa: E402
from dgm.sandbox.agent_run import OUTPUT_DIR, OUTPUT_TMPFS_MB  # noqa: E402
from dgm.sandbox.docker import Sandbox, docker_client, drain_removals  # noqa: E402
from dgm.sandbox.images import base_image_tag  # noqa: E402
from dgm.runs.stack import run_stack  # noqa: E402
from dgm.sandbox.testbed import REPO_PATH, REPO_TMPFS_MB  # noqa: E402


def cpu_seconds() -> tuple[float, float]:
    """CPU time the whole machine spent busy (user, nice, system, irq, softirq),
    and the time the hypervisor gave its CPUs to other guests (steal)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / tick, fields[7] / tick


def _spin(n: int) -> float:
    started = time.perf_counter()
    x = 0
    for i in range(n):
        x += i * i % 7
    return time.perf_counter() - started


def machine_cpu_scaling(repeats: int = 1, n: int = 6_000_000) -> float:
    """How much faster two processes finish two units of pure CPU work than
    one process finishes one, twice over: the ceiling any 2-worker speed-up
    meets on this machine (on a shared VM it is often below 2)."""
    from concurrent.futures import ProcessPoolExecutor

    ratios = []
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_spin, [1000, 1000]))  # both processes up
        for _ in range(repeats):
            started = time.perf_counter()
            _spin(n)
            _spin(n)
            one = time.perf_counter() - started
            started = time.perf_counter()
            list(pool.map(_spin, [n, n]))
            ratios.append(one / (time.perf_counter() - started))
    return statistics.median(ratios)


def sandbox_cycle_scaling(client, n: int = 30) -> tuple[float, float]:
    """Seconds one bare sandbox cycle takes with one thread, and how much
    faster two threads get through n of them than one thread does. The
    sandbox is built like an agent's (stage mount, two tmpfs, pooled network
    namespace) and runs `true`: what remains is the sandbox's own cost."""
    from concurrent.futures import ThreadPoolExecutor

    def cycle(_) -> None:
        with Sandbox(client, base_image_tag(), stage=True,
                     tmpfs={REPO_PATH: REPO_TMPFS_MB, OUTPUT_DIR: OUTPUT_TMPFS_MB}) as box:
            box.run(["true"], timeout_s=60)

    walls = {}
    for threads in (1, 2):
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(cycle, range(2 * threads)))  # namespace pool and page cache warm
            drain_removals()
            started = time.perf_counter()
            list(pool.map(cycle, range(n)))
            drain_removals()
            walls[threads] = time.perf_counter() - started
    return walls[1] / n, walls[1] / walls[2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--llm-latency", type=float, default=0.0, help="seconds each model call takes")
    parser.add_argument("--repeats", type=int, default=5, help="pairs of (1 worker, 2 workers) runs")
    args = parser.parse_args()
    load_litellm()
    bench = load_benchmark("dgm-mini")
    tasks = bench.tasks()[: args.tasks]
    client = docker_client()
    store = ArchiveStore.open(None, Path(tempfile.mkdtemp(prefix="dgm-perf-")) / "archive")
    sha = commit_agent_dir(store, SEED_AGENT_DIR, "seed")
    campaign = store.create_campaign(name="perf-eval-overhead", kind="eval", config={})
    agent = store.add_agent(campaign.id, sha, status="seed", origin="seed")
    model = "scripted:gold"
    if args.llm_latency > 0:
        spec = dict(BUILTIN_SPECS["gold"], latency_s=args.llm_latency)
        spec_path = Path(tempfile.mkdtemp(prefix="dgm-perf-")) / "gold_with_latency.json"
        spec_path.write_text(json.dumps(spec))
        model = f"scripted:{spec_path}"
    settings = EvalSettings(model=model, time_limit_s=300)
    overheads, walls, cores, stolen, ceilings = [], {1: [], 2: []}, {1: [], 2: []}, {1: [], 2: []}, []
    cycle_bounds, cycle_shares, cycle_scalings = [], [], []
    # The stack `dgm eval` builds; each measured pass brings its own executor (1 or 2 workers).
    with run_stack(store, client, bench, settings, workers=2) as stack:
        evaluator = stack.evaluator
        evaluator.run_tasks(agent, tasks[:2], campaign_id=campaign.id, stage="warmup",
                            executor=stack.executor)  # images, litellm, page cache
        for repeat in range(args.repeats):
            for workers in ((1, 2) if repeat % 2 == 0 else (2, 1)):
                executor = ThreadExecutor(workers)
                started, (busy, steal) = time.monotonic(), cpu_seconds()
                runs = evaluator.run_tasks(agent, tasks, campaign_id=campaign.id, stage=f"w{workers}-r{repeat}",
                                           executor=executor)
                drain_removals()
                wall = time.monotonic() - started
                walls[workers].append(wall)
                busy_after, steal_after = cpu_seconds()
                cores[workers].append((busy_after - busy) / wall)
                stolen[workers].append((steal_after - steal) / wall)
                executor.shutdown()
                bad = [r.task_id for r in runs if r.status != "resolved"]
                if bad:
                    print(f"warning: not resolved: {bad}")
                if workers == 1:
                    overheads += [r.duration_s - (r.agent_duration_s or 0) - (r.test_duration_s or 0) for r in runs]
            ceilings.append(machine_cpu_scaling())
            cycle_s, cycle_scaling = sandbox_cycle_scaling(client)
            # Two sandboxes per task; the rest of a task scales at best like pure CPU work.
            share = min(1.0, 2 * cycle_s / (walls[1][-1] / len(tasks)))
            cycle_shares.append(share)
            cycle_scalings.append(cycle_scaling)
            cycle_bounds.append(1 / (share / cycle_scaling + (1 - share) / ceilings[-1]))
            print(f"  pair {repeat + 1}: 1 worker {walls[1][-1]:.1f} s ({cores[1][-1]:.2f} cores busy, "
                  f"{stolen[1][-1]:.2f} stolen), 2 workers {walls[2][-1]:.1f} s ({cores[2][-1]:.2f} cores busy, "
                  f"{stolen[2][-1]:.2f} stolen), "
                  f"ratio {walls[1][-1] / walls[2][-1]:.2f}; pure-CPU ceiling {ceilings[-1]:.2f}x; "
                  f"bare sandbox cycle {1000 * cycle_s:.0f} ms ({100 * share:.0f} % of a task), "
                  f"scaling {cycle_scaling:.2f}x", flush=True)
    w1, w2 = statistics.median(walls[1]), statistics.median(walls[2])
    ratio = statistics.median(a / b for a, b in zip(walls[1], walls[2]))
    latency = f", {args.llm_latency:g} s per model call" if args.llm_latency else ""
    print(f"dgm-mini, {len(tasks)} tasks, seed agent + scripted:gold{latency}, real Docker sandboxes, "
          f"{os.cpu_count()} cores")
    print(f"this machine's own 2-process scaling on pure CPU work, after each pair: "
          f"median {statistics.median(ceilings):.2f}x, range {min(ceilings):.2f}-{max(ceilings):.2f}x")
    print(f"per-task harness overhead (1 worker): median {statistics.median(overheads):.3f} s, "
          f"p90 {sorted(overheads)[int(0.9 * (len(overheads) - 1))]:.3f} s (target <= 1.0 s)")
    print(f"wall time (medians of {args.repeats}): 1 worker {w1:.1f} s, 2 workers {w2:.1f} s; "
          f"speed-up (median of the pairs' ratios) {ratio:.2f}x (target >= 1.7x)")
    # The work is CPU-bound: one worker keeps about one core busy. So two
    # workers can at best do what two processes of pure CPU work do on this
    # machine, divided by the cores one worker already kept busy.
    attainable = statistics.median(c / b for c, b in zip(ceilings, cores[1]))
    print(f"attainable here (pure-CPU scaling / cores busy with 1 worker, median of the pairs): "
          f"{attainable:.2f}x; the speed-up measured is {100 * ratio / attainable:.0f} % of it")
    bound = statistics.median(cycle_bounds)
    print(f"bare sandbox cycles (create, start `true`, exit, remove): {100 * statistics.median(cycle_shares):.0f} % "
          f"of a task's 1-worker wall time, 2 threads get through them {statistics.median(cycle_scalings):.2f}x "
          f"faster than 1 (range {min(cycle_scalings):.2f}-{max(cycle_scalings):.2f}x); with the rest scaling like "
          f"pure CPU work, the speed-up attainable is {bound:.2f}x (median of the pairs); "
          f"the speed-up measured is {100 * ratio / bound:.0f} % of it")
    if ratio > attainable:
        # Only possible when something else loaded the machine while the ceiling was measured.
        print("note: the speed-up measured exceeds that ceiling: other work shared the machine during the "
              "run, so its figures are unreliable; run it again on a quiet machine")
    worst_steal = max(stolen[1] + stolen[2])
    if worst_steal > STEAL_UNRELIABLE:
        # The hypervisor ran other guests on these cores: one side of a pair was slowed by what no
        # harness controls, so its ratio says nothing about the harness (seen: 0.80x and 2.53x in one run).
        print(f"note: the hypervisor took up to {worst_steal:.2f} cores (CPU steal) during a run, so the "
              "figures are unreliable; run it again when the host is quiet")


# Cores the hypervisor may take (average over a run) before a run's figures are called unreliable.
STEAL_UNRELIABLE = 0.1


if __name__ == "__main__":
    main()
