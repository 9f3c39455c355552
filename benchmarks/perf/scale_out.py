"""Scale-out: task runs per minute on a Ray cluster of 1, 2 and 4 worker nodes
with k sandbox slots each (`--executor ray`).

The model is scripted (scripted:gold) with a fixed latency per call, so a
task run mostly waits for the model, as with a real provider, and this
machine's two cores are not the work. Every node is a Ray node on this
machine (its own raylet and worker processes); nodes alternate between the
default Docker engine and the second one (`scripts/ensure_second_dockerd.sh`)
when it is up. The head (this process) offers no sandboxes: it records runs
and serves the gateway, as the `dgm run` machine of a real cluster does.

For each size the seed agent runs nodes x k dgm-mini tasks `waves` times
each (so every slot is busy for `waves` runs in a row); throughput is runs per minute
of wall time, and scaling efficiency is throughput(n) / (n x throughput(1)).
Target (issue 18): >= 0.9 from 1 to 4 nodes while the machine is not saturated.

`throughput_scaling` is one part; the sandbox utilisation of a whole
campaign under the `generations` and `async` schedules is another
(`main` runs every part named in --parts; add one by adding a function and
an entry in PARTS).

usage: python benchmarks/perf/scale_out.py [--nodes 1,2,4] [--slots 2] [--latency 6] [--waves 2] [--parts throughput]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dgm.agent_code import SEED_AGENT_DIR, commit_agent_dir  # noqa: E402
from dgm.archive.store import ArchiveStore  # noqa: E402
from dgm.bench.evaluate import EvalSettings  # noqa: E402
from dgm.bench.registry import load_benchmark  # noqa: E402
from dgm.config import ExecutorConfig  # noqa: E402
from dgm.llm.scripted import BUILTIN_SPECS  # noqa: E402
from dgm.runs.stack import run_stack  # noqa: E402
from dgm.sandbox.docker import docker_client, drain_removals  # noqa: E402

SECOND_ENGINE = "unix:///run/dgm-dockerd2.sock"


def _engines() -> list[str]:
    import docker

    engines = [os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")]
    try:
        docker.DockerClient(base_url=SECOND_ENGINE, timeout=5).ping()
        engines.append(SECOND_ENGINE)
    except Exception:  # noqa: BLE001 - one engine then
        pass
    return engines


def _gold_with_latency(latency_s: float) -> str:
    spec = dict(BUILTIN_SPECS["gold"], latency_s=latency_s)
    path = Path(tempfile.mkdtemp(prefix="dgm-perf-")) / "gold_with_latency.json"
    path.write_text(json.dumps(spec))
    return f"scripted:{path}"


def throughput_scaling(nodes_list: list[int], slots: int, latency_s: float, waves: int) -> dict[int, float]:
    """Task runs per minute for each number of worker nodes (nodes are added to one cluster as it grows)."""
    from ray.cluster_utils import Cluster

    engines = _engines()
    bench = load_benchmark("dgm-mini")
    client = docker_client()
    store = ArchiveStore.open(None, Path(tempfile.mkdtemp(prefix="dgm-perf-")) / "archive")
    sha = commit_agent_dir(store, SEED_AGENT_DIR, "seed")
    campaign = store.create_campaign(name="perf-scale-out", kind="eval", config={})
    agent = store.add_agent(campaign.id, sha, status="seed", origin="seed")
    settings = EvalSettings(model=_gold_with_latency(latency_s), time_limit_s=600)
    all_tasks = bench.tasks()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    added = 0
    results: dict[int, float] = {}
    print(f"dgm-mini, seed agent + scripted:gold with {latency_s:g} s per model call, {slots} slot(s) per node, "
          f"{waves} wave(s), {os.cpu_count()} cores, {len(engines)} Docker engine(s)", flush=True)
    try:
        for nodes in sorted(nodes_list):
            while added < nodes:
                cluster.add_node(num_cpus=1, resources={"dgm_sandbox": slots},
                                 env_vars={"DOCKER_HOST": engines[added % len(engines)]})
                added += 1
            cluster.wait_for_nodes()
            tasks = all_tasks[: nodes * slots]
            executor = ExecutorConfig(kind="ray", address=cluster.address)
            with run_stack(store, client, bench, settings, workers=nodes * slots, executor=executor) as stack:
                # Warm every node (worker processes, the agent's code, images) outside the clock.
                stack.evaluator.run_tasks(agent, tasks, campaign_id=campaign.id, stage=f"warm-{nodes}",
                                          executor=stack.executor)
                started = time.monotonic()
                # Each wave is a repeat: every slot runs `waves` task runs in a row.
                runs = stack.evaluator.run_tasks(agent, tasks, campaign_id=campaign.id, stage=f"n{nodes}",
                                                 executor=stack.executor, repeats=waves)
                wall = time.monotonic() - started
            drain_removals()
            done = [r for r in runs if r is not None]
            bad = [r.status for r in done if r.status != "resolved"]
            results[nodes] = 60.0 * len(done) / wall
            print(f"  {nodes} node(s) x {slots} slot(s): {len(done)} runs in {wall:.1f} s = "
                  f"{results[nodes]:.1f} runs/min" + (f" ({len(bad)} not resolved: {sorted(set(bad))})" if bad else ""),
                  flush=True)
    finally:
        cluster.shutdown()
    base = results[min(results)] / min(results)
    for nodes, rate in sorted(results.items()):
        print(f"scaling efficiency {nodes} node(s): {rate / (base * nodes):.2f}")
    return results


PARTS = {"throughput": lambda args: throughput_scaling([int(n) for n in args.nodes.split(",")], args.slots,
                                                       args.latency, args.waves)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", default="1,2,4", help="worker node counts to measure")
    parser.add_argument("--slots", type=int, default=2, help="dgm_sandbox slots per node")
    parser.add_argument("--latency", type=float, default=6.0, help="seconds each model call takes")
    parser.add_argument("--waves", type=int, default=2, help="runs per slot in a measurement")
    parser.add_argument("--parts", default="throughput", help=f"comma-separated: {', '.join(PARTS)}")
    args = parser.parse_args()
    for part in args.parts.split(","):
        PARTS[part.strip()](args)


if __name__ == "__main__":
    main()
